"""`claimwatch report`: one self-contained HTML page about the claims' trends.

A heat map of claims × weeks, a trend plot per claim (documents per day and their 7-day mean), the
top outlets and the latest matches with links. Plots are drawn with matplotlib's Agg backend and
embedded as base64 PNG, so the page needs nothing but itself (no scripts, no network).
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from db.research import ViewQuery, latest_matches, latest_seen_day, top_outlets, view_rows
from db.timeutil import utcnow
from db.views import get_view

logger = logging.getLogger(__name__)

DEFAULT_DAYS = 90
MIN_AXIS_DAYS = 14  # a plot spans at least two weeks, however short the data


@dataclass(frozen=True)
class ReportOptions:
    since: date | None = None  # default: DEFAULT_DAYS before the latest seen day
    max_claims: int = 30  # trend plots for the claims with most documents
    outlets: int = 20
    latest: int = 50
    # discovered candidate claims (crawler/services/discovery.py) for the "emerging, unlisted claims"
    # section; None: the section says discovery was not run
    emerging: tuple[Any, ...] | None = None
    emerging_shown: int = 10


@dataclass(frozen=True)
class ClaimSeries:
    key: str
    claim_set: str
    text: str
    days: dict[date, int]
    total: int
    # documents per day with a restating / rebutting / reporting passage (verdict, else predicted)
    stances: dict[date, tuple[int, int, int]] = field(default_factory=dict)


# --- data ----------------------------------------------------------------------------------------


def _series(session: Session, since: date) -> list[ClaimSeries]:
    texts = {
        (row["claim_set"], row["claim_key"]): row["claim_text"]
        for row in view_rows(session, ViewQuery(get_view("claim_lifecycle")))
    }
    days: dict[tuple[str, str], dict[date, int]] = defaultdict(dict)
    stances: dict[tuple[str, str], dict[date, tuple[int, int, int]]] = defaultdict(dict)
    for row in view_rows(session, ViewQuery(get_view("claim_daily"), since=since)):
        days[(row["claim_set"], row["claim_key"])][row["day"]] = row["documents"]
        stances[(row["claim_set"], row["claim_key"])][row["day"]] = (
            row["restating"],
            row["rebutting"],
            row["reporting"],
        )
    series = [
        ClaimSeries(
            key, claim_set, texts.get((claim_set, key), ""), counts, sum(counts.values()),
            stances[(claim_set, key)],
        )
        for (claim_set, key), counts in days.items()
    ]  # fmt: skip
    return sorted(series, key=lambda s: (-s.total, s.claim_set, s.key))


def _unmatched(session: Session, matched: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """(key, text) of the active claims without documents in the period: listed, collapsed, after the
    trend plots instead of as empty plots."""
    rows = view_rows(session, ViewQuery(get_view("claim_lifecycle")))
    several_sets = len({r["claim_set"] for r in rows}) > 1
    return [
        (f"{r['claim_set']}/{r['claim_key']}" if several_sets else r["claim_key"], r["claim_text"])
        for r in rows
        if r["active"] and (r["claim_set"], r["claim_key"]) not in matched
    ]


def _weeks(session: Session, since: date, until: date) -> tuple[list[str], list[date], list[list[int]]]:
    """Claims (most documents first), every week from ``since`` to ``until``, documents per cell."""
    first = since - timedelta(days=since.weekday())
    rows = view_rows(session, ViewQuery(get_view("claim_weekly"), since=first))
    weeks = [first + timedelta(weeks=i) for i in range((until - first).days // 7 + 1)]
    totals: dict[str, int] = defaultdict(int)
    cells: dict[tuple[str, date], int] = {}
    several_sets = len({r["claim_set"] for r in rows}) > 1
    for r in rows:
        label = f"{r['claim_set']}/{r['claim_key']}" if several_sets else r["claim_key"]
        totals[label] += r["documents"]
        cells[(label, r["week_start"])] = r["documents"]
    claims = sorted(totals, key=lambda k: (-totals[k], k))
    matrix = [[cells.get((claim, week), 0) for week in weeks] for claim in claims]
    return claims, weeks, matrix


def axis_span(series: list[ClaimSeries], since: date, until: date) -> tuple[date, date]:
    """The days the plots span: from the first to the last day with a document (within the period
    ``since``..``until``), widened backwards to MIN_AXIS_DAYS; the whole period when there is no
    data. The period selects the data; the axis fits what it selected."""
    days = [day for item in series for day, count in item.days.items() if count and since <= day <= until]
    if not days:
        return since, until
    first, last = min(days), max(days)
    first = max(since, min(first, last - timedelta(days=MIN_AXIS_DAYS - 1)))
    return first, last


# --- plots ---------------------------------------------------------------------------------------


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


STANCE_COLORS = (("restating", "#9ecae1"), ("rebutting", "#fd8d3c"), ("reporting", "#bdbdbd"))


def trend_plot(series: ClaimSeries, since: date, until: date) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    counts = [series.days.get(day, 0) for day in days]
    mean = [sum(counts[max(0, i - 6) : i + 1]) / len(counts[max(0, i - 6) : i + 1]) for i in range(len(days))]
    figure, axes = plt.subplots(figsize=(7.5, 1.9))
    if any(series.stances.values()):  # stacked by stance (a document with two stances counts in both)
        bottom = [0] * len(days)
        for index, (label, color) in enumerate(STANCE_COLORS):
            heights = [series.stances.get(day, (0, 0, 0))[index] for day in days]
            axes.bar(days, heights, width=1.0, bottom=bottom, color=color, label=label)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    else:
        axes.bar(days, counts, width=1.0, color="#9ecae1", label="documents per day")
    axes.plot(days, mean, color="#08519c", linewidth=1.8, label="7-day mean")
    axes.set_xlim(since - timedelta(days=1), until + timedelta(days=1))
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # documents are whole
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    axes.legend(fontsize=7, frameon=False, loc="lower left", bbox_to_anchor=(0, 1), ncol=4, borderaxespad=0)
    figure.autofmt_xdate(rotation=0, ha="center")
    return _png(figure)


def heat_map(claims: list[str], weeks: list[date], matrix: list[list[int]]) -> str:
    return _png(heat_map_figure(claims, weeks, matrix))


def heat_map_figure(claims: list[str], weeks: list[date], matrix: list[list[int]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm
    from matplotlib.ticker import MaxNLocator

    height = max(2.2, 0.28 * len(claims) + 1.2)
    figure, axes = plt.subplots(figsize=(11, height))
    top = max(1, max((max(row) for row in matrix if row), default=1))
    cmap = plt.get_cmap("YlOrRd")
    # document counts are whole: up to 12, one colour per count; above, integer ticks on a scale
    norm = BoundaryNorm([n - 0.5 for n in range(top + 2)], cmap.N) if top <= 12 else None
    image = axes.imshow(matrix, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
    axes.set_yticks(range(len(claims)), claims, fontsize=8)
    step = max(1, -(-len(weeks) // 16))
    labels = [f"{w:%Y-%m-%d}" for w in weeks][::step]
    axes.set_xticks(range(0, len(weeks), step), labels, fontsize=8, rotation=45, ha="right")
    axes.set_xlabel("week starting (Monday, UTC)", fontsize=9)
    if top <= 12:
        colorbar = figure.colorbar(image, ax=axes, pad=0.01, ticks=range(top + 1))
    else:
        colorbar = figure.colorbar(image, ax=axes, pad=0.01)
        colorbar.locator = MaxNLocator(integer=True)
        colorbar.update_ticks()
    colorbar.set_label("documents", fontsize=9)
    return figure


# --- HTML ----------------------------------------------------------------------------------------

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1180px; color: #222; }
h1 { margin-bottom: 0; } .lead { color: #555; margin-top: 4px; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.claims { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 12px 20px; }
figure { margin: 0; } figcaption { font-size: 13px; } figcaption b { font-family: monospace; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } .passage { color: #444; }
a { color: #08519c; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _link(url: str | None, label: str | None) -> str:
    """A link only for http(s) URLs (crawled data could carry javascript: or data: URLs)."""
    text = _e(label or url or "")
    if url and urlsplit(url).scheme in {"http", "https"}:
        return f'<a href="{_e(url)}" rel="noopener noreferrer nofollow">{text}</a>'
    return text


def _stance(match: dict[str, Any]) -> str:
    """A reviewed verdict as it is; a predicted stance marked as a prediction."""
    if match.get("verdict"):
        return f"{_e(match['verdict'])} <small>(reviewed)</small>"
    if match.get("predicted_stance"):
        return f"{_e(match['predicted_stance'])} <small>(predicted)</small>"
    return ""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


def emerging_section(options: ReportOptions) -> list[str]:
    """Candidate claims that no active claim covers, fastest-growing first (``claimwatch discover``)."""
    parts = ["<h2>Emerging, unlisted claims</h2>"]
    if options.emerging is None:
        return parts + [
            "<p>Not computed: the passage archive is empty or discovery was skipped "
            "(<code>claimwatch discover</code>).</p>"
        ]
    if not options.emerging:
        return parts + ["<p>None: every passage recurring in two or more documents matches a claim.</p>"]
    parts += [
        '<p class="lead">Passages that match no active claim but restate one another across documents '
        "(syndicated copies once), clustered; promote one with "
        "<code>claimwatch claims promote ID --id KEY --text ...</code>.</p>",
        "<table><tr><th>candidate</th><th>documents</th><th>sources</th><th>languages</th>"
        "<th>first seen</th><th>last seen</th><th>growth</th><th>representative passages</th></tr>",
    ]
    for candidate in options.emerging[: options.emerging_shown]:
        passages = "<br>".join(f"{_link(r['url'], r['passage'][:220])}" for r in candidate.representatives)
        parts.append(
            f"<tr><td><b>{_e(candidate.id)}</b><br><small>{_e(candidate.label)}</small></td>"
            f"<td class=n>{candidate.documents}</td><td>{_e(', '.join(candidate.sources))}</td>"
            f"<td>{_e(', '.join(candidate.languages))}</td><td>{_e(candidate.first_seen)}</td>"
            f"<td>{_e(candidate.last_seen)}</td><td class=n>{candidate.growth}</td>"
            f"<td class=passage>{passages}</td></tr>"
        )
    return parts + ["</table>"]


def build_report(session: Session, options: ReportOptions | None = None, now: datetime | None = None) -> str:
    """The report as one HTML page."""
    options = options or ReportOptions()
    now = now or utcnow()
    latest_day = latest_seen_day(session)
    until = max(now.date(), latest_day or now.date())
    since = options.since or ((latest_day or now.date()) - timedelta(days=DEFAULT_DAYS))
    series = _series(session, since)
    first, last = axis_span(series, since, until)
    claims, weeks, matrix = _weeks(session, first, last)
    unmatched = _unmatched(session, {(s.claim_set, s.key) for s in series})
    outlets = top_outlets(session, since, options.outlets)
    latest = latest_matches(session, since, options.latest)
    reviewed = [r for r in view_rows(session, ViewQuery(get_view("claim_review_stats"))) if r["reviewed"]]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>claimwatch report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>claimwatch report</h1>",
        f'<p class="lead">Documents matching each claim from {since:%Y-%m-%d} to {until:%Y-%m-%d} '
        f"(UTC; publication date, else fetch date; syndicated copies counted once). Generated "
        f"{now:%Y-%m-%d %H:%M} UTC."
        + (f" Plots span {first:%Y-%m-%d} to {last:%Y-%m-%d}, the days with data." if series else "")
        + "</p>",
    ]
    if not series:
        parts.append("<p><b>No matches in this period.</b> Run <code>claimwatch run</code> first.</p>")
    else:
        parts += [
            "<h2>Claims × weeks</h2>",
            f'<img id="heatmap" alt="heat map of documents per claim and week" '
            f'src="data:image/png;base64,{heat_map(claims, weeks, matrix)}">',
            "<h2>Trend per claim</h2>",
            '<div class="claims">',
        ]
        for item in series[: options.max_claims]:
            parts.append(
                f'<figure class="trend"><figcaption><b>{_e(item.key)}</b> · '
                f"{_plural(item.total, 'document')} — {_e(item.text)}</figcaption>"
                f'<img alt="documents per day matching {_e(item.key)}" '
                f'src="data:image/png;base64,{trend_plot(item, first, last)}"></figure>'
            )
        parts.append("</div>")
        if len(series) > options.max_claims:
            parts.append(f"<p>{len(series) - options.max_claims} claims with fewer documents not shown.</p>")
    if unmatched:
        parts += [
            f'<details id="unmatched"><summary>{_plural(len(unmatched), "claim")} without documents in '
            "this period</summary><ul>",
            *(f"<li><b>{_e(key)}</b> — {_e(text)}</li>" for key, text in unmatched),
            "</ul></details>",
        ]
    parts += [
        "<h2>Reviewed precision per claim</h2>",
        "<p>Among the matches researchers reviewed (<code>claimwatch review</code>): the share about the "
        "claim (restates, rebuts or reports) against <i>wrong</i>. Matches reviewed wrong count nowhere "
        "else in this report. Trend bars are split by stance: the reviewed verdict, else the predicted "
        "stance.</p>",
    ]
    if reviewed:
        parts += [
            "<table id=reviews><tr><th>claim</th><th>matches</th><th>reviewed</th><th>precision</th>"
            "<th>restates</th><th>rebuts</th><th>reports</th><th>wrong</th></tr>",
            *(
                f"<tr><td>{_e(r['claim_key'])}</td><td class=n>{r['matches']}</td>"
                f"<td class=n>{r['reviewed']}</td><td class=n>{r['precision']:.2f}</td>"
                f"<td class=n>{r['restates']}</td><td class=n>{r['rebuts']}</td>"
                f"<td class=n>{r['reports']}</td><td class=n>{r['wrong']}</td></tr>"
                for r in sorted(reviewed, key=lambda r: (-r["reviewed"], r["claim_key"]))
            ),
            "</table>",
        ]
    else:
        parts.append("<p>No match reviewed yet.</p>")
    parts += emerging_section(options)
    parts += [
        "<h2>Top outlets</h2>",
        "<table><tr><th>outlet</th><th>documents</th><th>claims</th><th>matches</th>"
        "<th>first seen</th><th>last seen</th></tr>",
        *(
            f"<tr><td>{_e(o['outlet'])}</td><td class=n>{o['documents']}</td>"
            f"<td class=n>{o['claims']}</td><td class=n>{o['matches']}</td>"
            f"<td>{_when(o['first_seen'])}</td><td>{_when(o['last_seen'])}</td></tr>"
            for o in outlets
        ),
        "</table>",
        "<h2>Latest matches</h2>",
        "<table><tr><th>seen</th><th>claim</th><th>score</th><th>stance</th><th>document</th>"
        "<th>passage</th></tr>",
        *(
            f'<tr><td>{_when(m["seen_at"])}</td><td title="{_e(m["claim_text"])}">{_e(m["claim_key"])}</td>'
            f"<td class=n>{m['score']:.2f}</td><td>{_stance(m)}</td>"
            f"<td>{_link(m['url'], m['title'])}<br><small>{_e(m['outlet'])}"
            f" · {_e(m['language'])}</small></td><td class=passage>{_e(m['passage'])}</td></tr>"
            for m in latest
        ),
        "</table>",
        "</body></html>",
    ]
    return "\n".join(parts)
