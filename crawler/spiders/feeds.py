"""RSS/Atom feed spider: conditional GET per feed, feedparser for parsing, one request per new entry."""

from __future__ import annotations

import calendar
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import feedparser
import scrapy
from scrapy.http import Response

from crawler.items import SourceStateItem
from crawler.spiders.base import ArticleSpider

logger = logging.getLogger(__name__)


def entry_published(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError):
        return None


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
        parsed = feedparser.parse(response.body, response_headers={"content-location": response.url})
        entries = parsed.get("entries", [])
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
        yield SourceStateItem(
            source["key"],
            f"{response.status} ok",
            True,
            etag,
            last_modified,
            entries=len(entries),
            new_entries=new,
        )
