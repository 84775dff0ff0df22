"""RSS/Atom feed spider: conditional GET per feed, feedparser for parsing, one request per new entry."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import feedparser
import scrapy
from scrapy.http import Response

from crawler.items import SourceStateItem
from crawler.spiders.base import ArticleSpider
from pipelines.sourcecheck import feed_entry_time
from pipelines.xml_prolog import without_internal_dtd

logger = logging.getLogger(__name__)

_ENTRY_START = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?(?:item|entry)[\s>/]")
_ENTRY_END = re.compile(rb"</(?:[A-Za-z][\w.-]*:)?(?:item|entry)\s*>")


def first_entries(body: bytes, limit: int) -> tuple[bytes, int]:
    """The feed without the items or entries after the first ``limit``, and how many the whole feed
    has (by a cheap count of their start tags)."""
    starts = [m.start() for m in _ENTRY_START.finditer(body)]
    if len(starts) <= limit:
        return body, len(starts)
    # keep what follows the last entry (</channel></rss>, </feed>) so that the feed stays well-formed
    last_end = None
    for match in _ENTRY_END.finditer(body, starts[-1]):
        last_end = match.end()
    return body[: starts[limit]] + (body[last_end:] if last_end else b""), len(starts)


def entry_published(entry: Any) -> datetime | None:
    return feed_entry_time(entry)


class FeedSpider(ArticleSpider):
    """Fetches every enabled feed source; ``sources`` is a JSON list of source dicts."""

    name = "feeds"
    discovered_via = "feed"

    async def start(self) -> AsyncIterator[Any]:
        for source in self.sources:
            if source.get("kind") != "feed":
                continue
            headers = {
                "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
            }
            if source.get("etag"):
                headers["If-None-Match"] = source["etag"]
            if source.get("last_modified"):
                headers["If-Modified-Since"] = source["last_modified"]
            yield scrapy.Request(
                source["url"],
                callback=self.parse_feed,
                errback=self.source_failed,
                headers=headers,
                dont_filter=True,
                meta={"source": source, "handle_httpstatus_list": [304]},
            )

    def parse_feed(self, response: Response) -> Iterator[Any]:
        source = response.meta["source"]
        etag = response.headers.get("ETag", b"").decode("latin-1") or None
        last_modified = response.headers.get("Last-Modified", b"").decode("latin-1") or None
        if response.status == 304:
            self.crawler.stats.inc_value("claimwatch/feeds_not_modified")
            yield SourceStateItem(
                source["key"], "304 not modified", True, source.get("etag"), source.get("last_modified")
            )
            return
        limit = self.settings.getint("CLAIMWATCH_MAX_SOURCE_ENTRIES")
        body, had_dtd = without_internal_dtd(response.body)
        body, total = first_entries(body, limit)
        parsed = feedparser.parse(body, response_headers={"content-location": response.url})
        entries = parsed.get("entries", [])[:limit]
        if not entries and parsed.get("bozo"):
            reason = f"malformed feed: {parsed.get('bozo_exception')}"[:200]
            logger.warning("%s: %s", source["key"], reason)
            yield SourceStateItem(source["key"], reason, False)
            return
        new = 0
        for entry in entries:
            link = entry.get("link")
            if not link:
                continue
            published = entry_published(entry)
            if self.is_before_since(published):
                continue
            request = self.article_request(
                link,
                source["key"],
                title=entry.get("title"),
                published=published,
                language=source.get("language"),
            )
            if request is not None:
                new += 1
                yield request
        self.crawler.stats.inc_value("claimwatch/feed_entries", len(entries))
        notes = [f"first {limit} of {total} entries"] if total > limit else []
        if had_dtd:
            notes.append("DTD entity declarations ignored")
        yield SourceStateItem(
            source["key"],
            f"{response.status} ok" + (f" ({'; '.join(notes)})" if notes else ""),
            True,
            etag,
            last_modified,
            entries=len(entries),
            new_entries=new,
        )
