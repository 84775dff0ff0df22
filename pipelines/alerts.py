"""Recurrence rules and alert digests: pure functions over plain data (no database, no network).

Recurrence (docs/alerts.md): a claim recurs when it is matched in *new* documents — documents not
covered by any earlier alert of that claim — counting a syndicated copy and its original as one
document, with at least N new documents from at least M distinct sources; or, when it has new
documents at all, when today's document count spikes against the trailing daily mean.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
MAX_HEADER_CHARS = 180
MAX_PASSAGE_CHARS = 400


class AddressError(ValueError):
    """An e-mail address claimwatch will not send to (or from)."""


@dataclass(frozen=True)
class ClaimRef:
    id: int
    claim_set: str
    key: str
    text: str
    verdict: str | None = None  # a fact-checker's review of the claim (ClaimReview), when it has one
    claimant: str | None = None
    review_url: str | None = None
    reviewer: str | None = None

    def review_line(self) -> str | None:
        """``Fact-check: False (Example Checker) · claimed by X · <url>``, or None without a review."""
        if not (self.verdict or self.review_url):
            return None
        parts = [f"{clean_text(self.verdict, 120) or 'reviewed'}"]
        if self.reviewer:
            parts[0] += f" ({clean_text(self.reviewer, 120)})"
        if self.claimant:
            parts.append(f"claimed by {clean_text(self.claimant, 120)}")
        link = safe_link(self.review_url or "")
        if link:
            parts.append(link)
        return "Fact-check: " + " · ".join(parts)


@dataclass(frozen=True)
class MatchedPassage:
    """One stored match, described by its story: the original document of a syndicated copy."""

    match_id: int
    claim_id: int
    story_id: int
    title: str | None
    outlet: str | None
    url: str
    language: str | None
    seen_at: datetime
    passage: str
    score: float
    stance: str | None = None  # restates, rebuts or reports: the reviewed verdict, else predicted
    reviewed: bool = False  # stance is a researcher's verdict, not a prediction

    @property
    def stance_label(self) -> str:
        """How a digest names the stance: a rebuttal stands out; a prediction says so."""
        if not self.stance:
            return ""
        name = {"rebuts": "REBUTTAL", "reports": "reported", "restates": "restates"}.get(
            self.stance, self.stance
        )
        return f"{name}, {'reviewed' if self.reviewed else 'predicted'}"

    @property
    def source(self) -> str:
        """What counts as one source: the outlet, else the host of the URL."""
        if self.outlet and self.outlet.strip():
            return self.outlet.strip().casefold()
        return (urlsplit(self.url).hostname or self.url).removeprefix("www.")


@dataclass(frozen=True)
class RecurrenceRules:
    min_documents: int = 1
    min_sources: int = 1
    spike_factor: float = 3.0
    spike_min_documents: int = 3
    spike_days: int = 28
    top_passages: int = 3
    trend_days: int = 30

    @property
    def history_days(self) -> int:
        """Days of match history the rules need (the trend and the spike window, today included)."""
        return max(self.trend_days, self.spike_days + 1)


@dataclass(frozen=True)
class Trend:
    first_day: date
    counts: tuple[int, ...]
    today: int
    baseline_mean: float

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class ClaimAlert:
    claim: ClaimRef
    reasons: tuple[str, ...]
    new_documents: int
    new_sources: int
    languages: tuple[str, ...]
    top: tuple[MatchedPassage, ...]
    trend: Trend
    covered: tuple[MatchedPassage, ...] = field(repr=False)


@dataclass(frozen=True)
class SubscriptionRef:
    email: str
    claim_set: str = ""
    claim_key: str = ""

    def covers(self, claim: ClaimRef) -> bool:
        return self.claim_set in ("", claim.claim_set) and self.claim_key in ("", claim.key)


# --- recurrence ----------------------------------------------------------------------------------


def daily_trend(history: Iterable[tuple[int, datetime]], today: date, rules: RecurrenceRules) -> Trend:
    """Distinct stories per day (by publication, else fetch date) for the trend and the spike rule."""
    first = today - timedelta(days=rules.history_days - 1)
    seen: dict[date, set[int]] = {}
    for story_id, seen_at in history:
        day = seen_at.date()
        if first <= day <= today:
            seen.setdefault(day, set()).add(story_id)
    per_day = [len(seen.get(first + timedelta(days=i), ())) for i in range(rules.history_days)]
    baseline = per_day[-1 - rules.spike_days : -1]
    return Trend(
        first_day=today - timedelta(days=rules.trend_days - 1),
        counts=tuple(per_day[-rules.trend_days :]),
        today=per_day[-1],
        baseline_mean=sum(baseline) / rules.spike_days if rules.spike_days else 0.0,
    )


def is_spike(trend: Trend, rules: RecurrenceRules) -> bool:
    if trend.today < max(1, rules.spike_min_documents):
        return False
    return trend.baseline_mean == 0 or trend.today >= rules.spike_factor * trend.baseline_mean


def evaluate_claim(
    claim: ClaimRef,
    new: Sequence[MatchedPassage],
    history: Iterable[tuple[int, datetime]],
    today: date,
    rules: RecurrenceRules,
) -> ClaimAlert | None:
    """The alert for ``claim`` when its new matches make it recur, else None."""
    if not new:
        return None
    best: dict[int, MatchedPassage] = {}
    for passage in new:
        kept = best.get(passage.story_id)
        if kept is None or passage.score > kept.score:
            best[passage.story_id] = passage
    sources = {p.source for p in best.values()}
    trend = daily_trend(history, today, rules)
    reasons = []
    if len(best) >= rules.min_documents and len(sources) >= rules.min_sources:
        reasons.append("recurrence")
    if is_spike(trend, rules):
        reasons.append("spike")
    if not reasons:
        return None
    ranked = sorted(best.values(), key=lambda p: (-p.score, p.story_id))
    languages = sorted({(p.language or "?").lower() for p in best.values()})
    return ClaimAlert(
        claim=claim,
        reasons=tuple(reasons),
        new_documents=len(best),
        new_sources=len(sources),
        languages=tuple(languages),
        top=tuple(ranked[: rules.top_passages]),
        trend=trend,
        covered=tuple(new),
    )


def alerts_for(
    recipient_subscriptions: Sequence[SubscriptionRef], alerts: Sequence[ClaimAlert]
) -> list[ClaimAlert]:
    return [a for a in alerts if any(s.covers(a.claim) for s in recipient_subscriptions)]


# --- safe text and addresses ---------------------------------------------------------------------

_WHITESPACE = re.compile(r"\s+")


def clean_text(value: str | None, limit: int | None = None) -> str:
    """One line of printable text: control and format characters dropped, whitespace collapsed."""
    if not value:
        return ""
    kept = "".join(
        " " if ch.isspace() else ch for ch in value if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    text = _WHITESPACE.sub(" ", kept).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def header_safe(value: str | None, limit: int = MAX_HEADER_CHARS) -> str:
    """A header value that cannot start a new header line (CR, LF and other controls removed)."""
    return clean_text(value, limit)


def parse_address(value: str) -> Address:
    """A single, plain e-mail address (``Name <a@b>`` or ``a@b``); AddressError otherwise."""
    raw = value.strip()
    if not raw or any(unicodedata.category(ch)[0] == "C" for ch in raw) or not raw.isascii():
        raise AddressError(f"not a usable e-mail address: {clean_text(value)!r}")
    name, addr = parseaddr(raw)
    if "@" not in addr or addr.startswith("@") or addr.endswith("@") or len(addr) > 254:
        raise AddressError(f"not a usable e-mail address: {raw!r}")
    try:
        return Address(display_name=header_safe(name), addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise AddressError(f"not a usable e-mail address: {raw!r} ({exc})") from None


def normalise_address(value: str) -> str:
    """The bare address in lower case: the key under which a recipient is stored and compared."""
    return parse_address(value).addr_spec.lower()


def parse_recipients(value: str) -> list[str]:
    """Comma-separated addresses (the ``alert_to`` setting), normalised and de-duplicated."""
    return list(dict.fromkeys(normalise_address(part) for part in value.split(",") if part.strip()))


def safe_link(url: str) -> str | None:
    """The URL when it is a plain http(s) link, else None (never a javascript: or data: link)."""
    cleaned = clean_text(url)
    parts = urlsplit(cleaned)
    return cleaned if parts.scheme in ("http", "https") and parts.netloc else None


def message_id_for(alert_id: int, recipient: str, domain: str) -> str:
    """Deterministic per (alert, recipient): the same digest always carries the same Message-ID."""
    digest = hashlib.sha256(recipient.casefold().encode()).hexdigest()[:20]
    host = re.sub(r"[^A-Za-z0-9.-]", "", domain) or "claimwatch.invalid"
    return f"<claimwatch.alert-{alert_id}.{digest}@{host}>"


# --- digest --------------------------------------------------------------------------------------


def sparkline(counts: Sequence[int]) -> str:
    peak = max(counts, default=0)
    if peak == 0:
        return "·" * len(counts)
    return "".join(
        "·" if n == 0 else SPARK_LEVELS[min(len(SPARK_LEVELS) - 1, (n * len(SPARK_LEVELS) - 1) // peak)]
        for n in counts
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def digest_subject(alerts: Sequence[ClaimAlert]) -> str:
    documents = sum(a.new_documents for a in alerts)
    if len(alerts) == 1:
        (alert,) = alerts
        text = (
            f"[claimwatch] {alert.claim.key} recurs in {plural(documents, 'new document')} "
            f"from {plural(alert.new_sources, 'source')}"
        )
    else:
        keys = ", ".join(a.claim.key for a in alerts)
        text = f"[claimwatch] {len(alerts)} claims recur in {plural(documents, 'new document')}: {keys}"
    return header_safe(text)


def trend_sentence(trend: Trend, rules_days: int) -> str:
    return (
        f"{plural(trend.total, 'document')} in the last {len(trend.counts)} days; today {trend.today}, "
        f"daily mean of the previous {rules_days} days {trend.baseline_mean:.1f}"
    )


def passage_date(passage: MatchedPassage) -> str:
    return f"{passage.seen_at:%Y-%m-%d}"


def digest_text(alerts: Sequence[ClaimAlert], when: datetime, spike_days: int) -> str:
    lines = [
        f"claimwatch digest, {when:%Y-%m-%d %H:%M} UTC: {plural(len(alerts), 'claim')} "
        f"{'recurs' if len(alerts) == 1 else 'recur'} in new documents.",
        "",
    ]
    for alert in alerts:
        claim = alert.claim
        lines += [
            f"== {clean_text(claim.key)} ({clean_text(claim.claim_set)}) [{', '.join(alert.reasons)}]",
            f"Claim: {clean_text(claim.text)}",
            *[line for line in [claim.review_line()] if line],
            f"New: {plural(alert.new_documents, 'document')} from {plural(alert.new_sources, 'source')}; "
            f"languages: {', '.join(alert.languages)}",
            f"Trend: {sparkline(alert.trend.counts)} ({alert.trend.first_day:%m-%d} … today)",
            f"       {trend_sentence(alert.trend, spike_days)}",
            "Top passages:",
        ]
        for number, p in enumerate(alert.top, 1):
            lines += [
                f"  {number}. \u201c{clean_text(p.passage, MAX_PASSAGE_CHARS)}\u201d (score {p.score:.2f}"
                + (f"; {p.stance_label})" if p.stance else ")"),
                f"     {clean_text(p.title, 200) or '(untitled)'} | {clean_text(p.outlet, 80) or p.source} "
                f"| {passage_date(p)}",
                f"     {safe_link(p.url) or '(no link)'}",
            ]
        lines.append("")
    lines.append("You receive this because you subscribed to claimwatch alerts (claimwatch unsubscribe).")
    return "\n".join(lines) + "\n"


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def digest_html(alerts: Sequence[ClaimAlert], when: datetime, spike_days: int) -> str:
    parts = [
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>claimwatch digest</title></head>',
        '<body style="font-family: sans-serif; max-width: 48em">',
        f"<p>claimwatch digest, {when:%Y-%m-%d %H:%M} UTC: {_e(plural(len(alerts), 'claim'))} "
        f"{'recurs' if len(alerts) == 1 else 'recur'} in new documents.</p>",
    ]
    for alert in alerts:
        claim = alert.claim
        parts += [
            f"<h2>{_e(clean_text(claim.key))} <small>({_e(clean_text(claim.claim_set))}; "
            f"{_e(', '.join(alert.reasons))})</small></h2>",
            f"<p><strong>{_e(clean_text(claim.text))}</strong></p>",
            *([f"<p>{_e(claim.review_line() or '')}</p>"] if claim.review_line() else []),
            f"<p>New: {_e(plural(alert.new_documents, 'document'))} from "
            f"{_e(plural(alert.new_sources, 'source'))}; languages: {_e(', '.join(alert.languages))}</p>",
            f'<p>Trend: <span style="font-family: monospace">{_e(sparkline(alert.trend.counts))}</span> '
            f"{_e(trend_sentence(alert.trend, spike_days))}</p>",
            "<ol>",
        ]
        for p in alert.top:
            title = _e(clean_text(p.title, 200) or "(untitled)")
            link = safe_link(p.url)
            heading = f'<a href="{_e(link)}">{title}</a>' if link else title
            parts.append(
                f"<li><blockquote>{_e(clean_text(p.passage, MAX_PASSAGE_CHARS))}</blockquote>"
                f"{heading} — {_e(clean_text(p.outlet, 80) or p.source)}, {_e(passage_date(p))} "
                f"(score {p.score:.2f}{_e('; ' + p.stance_label) if p.stance else ''})</li>"
            )
        parts.append("</ol>")
    parts.append("<p><small>You receive this because you subscribed to claimwatch alerts.</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def compose_digest(
    alerts: Sequence[ClaimAlert],
    *,
    sender: Address,
    recipient: str,
    message_id: str,
    when: datetime,
    alert_id: int | None,
    spike_days: int = 28,
) -> EmailMessage:
    """The digest e-mail: plain-text and HTML parts; every header value is sanitised."""
    stamp = when if when.tzinfo else when.replace(tzinfo=UTC)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = parse_address(recipient)
    message["Subject"] = digest_subject(alerts)
    message["Date"] = format_datetime(stamp.astimezone(UTC))
    message["Message-ID"] = header_safe(message_id, 250)
    message["Auto-Submitted"] = "auto-generated"
    if alert_id is not None:
        message["X-Claimwatch-Alert"] = str(alert_id)
    naive = stamp.astimezone(UTC).replace(tzinfo=None)
    message.set_content(digest_text(alerts, naive, spike_days), charset="utf-8", cte="quoted-printable")
    message.add_alternative(
        digest_html(alerts, naive, spike_days), subtype="html", charset="utf-8", cte="quoted-printable"
    )
    return message
