"""What a source's response holds, and what that says about the source: the pure half of
``claimwatch doctor --sources`` (crawler/services/doctor.py fetches; this module reads and judges).

A response body is read as the kind of source it is configured as: an RSS/Atom feed (feedparser), a
sitemap (a news sitemap, a sitemap index or a robots.txt listing sitemaps) or a GDELT DOC 2.0 artlist
JSON response. ``classify`` turns what was found into one verdict: ok, moved, stale, empty,
not-a-feed, blocked-by-robots or error.

The date helpers are shared with the spiders so that the doctor and the crawl read dates alike.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urljoin

VERDICTS = ("ok", "moved", "stale", "empty", "not-a-feed", "blocked-by-robots", "error")
RECENT_DAYS = 7
GDELT_MAX_WINDOW = timedelta(days=90)
PERMANENT_REDIRECTS = frozenset({301, 308})

# An internal DTD subset may declare entities that expand exponentially; feeds and sitemaps have no
# use for one (the feed spider strips it the same way).
_DTD_SUBSET = re.compile(rb"<!DOCTYPE[^\[>]{0,1000}\[.*?\]\s*>", re.DOTALL)
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


# --- dates ---------------------------------------------------------------------------------------


def feed_entry_time(entry: Any) -> datetime | None:
    """An entry's publication time (UTC), else its update time. ``updated_parsed`` is read only when
    the entry has one: feedparser's fallback from it to ``published_parsed`` is deprecated and warns."""
    parsed = entry.get("published_parsed")
    if not parsed and "updated_parsed" in entry:
        parsed = entry.get("updated_parsed")
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError):
        return None


def parse_w3c_datetime(value: str | None) -> datetime | None:
    """A sitemap ``lastmod`` / ``publication_date`` (W3C datetime) as an aware UTC datetime."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_seendate(value: str | None) -> datetime | None:
    """GDELT's ``seendate`` looks like ``20251124T063000Z``."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def gdelt_query_url(api_url: str, query: str, since: datetime | None, max_records: int, now: datetime) -> str:
    """The GDELT DOC 2.0 artlist request of a query, newest first, from ``since`` (default: 7 days)."""
    params = {
        "query": query,
        "mode": "artlist",
        "format": "json",
        "sort": "datedesc",
        "maxrecords": str(max(1, min(max_records, 250))),
    }
    start = max(since or now - timedelta(days=7), now - GDELT_MAX_WINDOW)
    params["startdatetime"] = start.strftime("%Y%m%d%H%M%S")
    params["enddatetime"] = now.strftime("%Y%m%d%H%M%S")
    return f"{api_url}?{urlencode(params)}"


def robots_sitemap_lines(body: bytes, base_url: str) -> Iterator[str]:
    """The ``Sitemap:`` lines of a robots.txt, resolved against its URL (unreadable lines skipped)."""
    for line in body.decode("utf-8", errors="ignore").splitlines():
        if line.lstrip().lower().startswith("sitemap:"):
            try:
                yield urljoin(base_url, line.split(":", 1)[1].strip())
            except ValueError:
                continue


# --- reading a body ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contents:
    """What a response body holds: ``parsed_as`` (rss20, atom10, urlset, sitemapindex, robots.txt,
    gdelt) or None when it is not what the source should serve, with the reason."""

    parsed_as: str | None
    items: int = 0
    newest: datetime | None = None
    recent: int = 0  # items dated within RECENT_DAYS
    reason: str | None = None


def _summarise(parsed_as: str, times: Iterable[datetime | None], count: int, now: datetime) -> Contents:
    dated = [t for t in times if t is not None]
    cutoff = now - timedelta(days=RECENT_DAYS)
    return Contents(
        parsed_as=parsed_as,
        items=count,
        newest=max(dated) if dated else None,
        recent=sum(1 for t in dated if t >= cutoff),
    )


def read_feed(body: bytes, now: datetime) -> Contents:
    import feedparser

    parsed = feedparser.parse(_DTD_SUBSET.sub(b"", body, count=1))
    version = parsed.get("version") or ""
    if not version:
        problem = parsed.get("bozo_exception")
        return Contents(None, reason=f"not an RSS or Atom feed{f' ({problem})' if problem else ''}")
    entries = list(parsed.entries)
    return _summarise(version, (feed_entry_time(e) for e in entries), len(entries), now)


def read_sitemap(body: bytes, url: str, now: datetime) -> Contents:
    from lxml import etree

    if url.rstrip("/").endswith("/robots.txt"):
        listed = list(robots_sitemap_lines(body, url))
        if not listed:
            return Contents(None, reason="robots.txt lists no Sitemap: lines")
        return Contents("robots.txt", items=len(listed))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(_DTD_SUBSET.sub(b"", body, count=1), parser=parser)
    except etree.XMLSyntaxError as exc:
        return Contents(None, reason=f"not XML ({exc.msg})" if exc.msg else "not XML")
    tag = etree.QName(root).localname if isinstance(root.tag, str) else ""
    if tag not in {"urlset", "sitemapindex"}:
        return Contents(None, reason=f"XML but not a sitemap (<{tag}>)")
    entries = [child for child in root if isinstance(child.tag, str)]
    times = []
    for entry in entries:
        stamps = [
            node.text
            for node in entry.iter()
            if isinstance(node.tag, str) and etree.QName(node).localname in {"lastmod", "publication_date"}
        ]
        moments = [m for m in (parse_w3c_datetime(s) for s in stamps) if m is not None]
        times.append(max(moments) if moments else None)
    return _summarise(tag, times, len(entries), now)


def read_gdelt(body: bytes, now: datetime) -> Contents:
    try:
        data = json.loads(body.decode("utf-8", errors="replace") or "null")
    except json.JSONDecodeError:
        text = body.decode("utf-8", errors="replace").strip().splitlines()
        return Contents(None, reason=f"not GDELT JSON: {text[0][:120] if text else 'empty body'}")
    if not isinstance(data, dict):
        return Contents(None, reason="not a GDELT artlist response (no JSON object)")
    articles = data.get("articles", [])
    if not isinstance(articles, list):
        return Contents(None, reason="not a GDELT artlist response (`articles` is not a list)")
    times = [parse_seendate(a.get("seendate")) if isinstance(a, dict) else None for a in articles]
    return _summarise("gdelt", times, len(articles), now)


def read_body(kind: str, body: bytes, url: str, now: datetime) -> Contents:
    """Read ``body`` as a source of ``kind`` (feed, sitemap or gdelt) fetched from ``url``."""
    if kind == "feed":
        return read_feed(body, now)
    if kind == "sitemap":
        return read_sitemap(body, url, now)
    if kind == "gdelt":
        return read_gdelt(body, now)
    raise ValueError(f"unknown source kind {kind!r}")


# --- the verdict ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    status: str  # one of VERDICTS
    detail: str
    fix: str


def moved_to(url: str, hops: list[tuple[int, str]]) -> str | None:
    """The new address of a source whose redirects ``hops`` ((status, location) in order) begin with
    a permanent one: the address after the last permanent hop of that unbroken run. None when the
    first hop is temporary (302, 303, 307) or there is none."""
    new = None
    for status, location in hops:
        if status not in PERMANENT_REDIRECTS:
            break
        new = location
    return new if new and new != url else None


def classify(
    *,
    contents: Contents | None,
    status: int | None,
    error: str | None = None,
    robots_blocked: bool = False,
    new_url: str | None = None,
    not_modified: bool = False,
    now: datetime,
    stale_days: int,
) -> Verdict:
    """One verdict from a probe's outcome (checked in this order): robots.txt forbids the address;
    the request failed or answered >= 400; 304 (unchanged since the last crawl: ok); the body is not
    what the source should serve; the source moved permanently; it lists nothing; its newest item is
    older than ``stale_days``; else ok."""
    if robots_blocked:
        return Verdict(
            "blocked-by-robots",
            "robots.txt forbids this address to our User-Agent; not fetched",
            "ask the site for access, or disable the source (enabled: false in your sources file)",
        )
    if error is not None or status is None:
        return Verdict(
            "error", error or "no response", "check the address in a browser; retry later if the site is down"
        )
    if status >= 400:
        fix = (
            "the address is gone: find the outlet's current feed or sitemap and update the sources file"
            if status in (404, 410)
            else "the site refuses or fails: retry later; if it lasts, disable the source"
        )
        return Verdict("error", f"HTTP {status}", fix)
    if not_modified:
        return Verdict("ok", "not modified since the last crawl (304)", "")
    if contents is None or contents.parsed_as is None:
        reason = contents.reason if contents is not None else "nothing to read"
        return Verdict(
            "not-a-feed",
            reason or "not a feed",
            "the address serves something else (a home page?): find the feed or sitemap link on the site",
        )
    counted = f"{contents.items} items, {contents.recent} in the last {RECENT_DAYS} days"
    if new_url is not None:
        return Verdict(
            "moved",
            f"permanently redirected to {new_url} ({counted})",
            "run `claimwatch doctor --sources --fix-moved`, then update your sources file",
        )
    if contents.items == 0:
        return Verdict(
            "empty", f"{contents.parsed_as} with no items", "check again later; disable it if it stays empty"
        )
    if contents.newest is not None and contents.newest < now - timedelta(days=stale_days):
        return Verdict(
            "stale",
            f"newest item {contents.newest:%Y-%m-%d}, over {stale_days} days old ({counted})",
            "the outlet may have moved its feed: look for a newer one, or disable the source",
        )
    return Verdict("ok", counted + ("" if contents.newest else "; items carry no dates"), "")
