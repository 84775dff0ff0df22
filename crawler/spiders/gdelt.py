"""GDELT DOC 2.0 API discovery: keyword queries in artlist JSON mode, one request per 5 s at most."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.items import SourceStateItem
from crawler.spiders.base import ArticleSpider
from pipelines.sourcecheck import gdelt_query_url, parse_seendate

logger = logging.getLogger(__name__)

GDELT_LANGUAGES = {
    "english": "en",
    "russian": "ru",
    "azerbaijani": "az",
    "turkish": "tr",
    "ukrainian": "uk",
    "armenian": "hy",
    "georgian": "ka",
    "german": "de",
    "french": "fr",
    "spanish": "es",
}


class GdeltSpider(ArticleSpider):
    """Runs every enabled ``gdelt`` source; a gdelt source's ``url`` holds its query text."""

    name = "gdelt"
    discovered_via = "gdelt"
    custom_settings = {"CONCURRENT_REQUESTS_PER_DOMAIN": 1}

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> GdeltSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.api_url = crawler.settings.get("CLAIMWATCH_GDELT_API_URL")
        spider.download_delay = crawler.settings.getfloat("CLAIMWATCH_GDELT_DELAY")
        spider.max_records = crawler.settings.getint("CLAIMWATCH_GDELT_MAX_RECORDS")
        return spider

    async def start(self) -> AsyncIterator[Any]:
        now = datetime.now(UTC)
        for source in self.sources:
            if source.get("kind") != "gdelt":
                continue
            yield scrapy.Request(
                gdelt_query_url(self.api_url, source["url"], self.since, self.max_records, now),
                callback=self.parse_results,
                errback=self.source_failed,
                dont_filter=True,
                meta={"source": source},
            )

    def parse_results(self, response: Response) -> Iterator[Any]:
        source = response.meta["source"]
        try:
            articles = json.loads(response.text or "{}").get("articles", [])
        except (ValueError, AttributeError) as exc:
            # GDELT answers query errors with a plain-text message and status 200.
            reason = f"not JSON: {response.text[:120]!r}" if hasattr(response, "text") else str(exc)
            logger.warning("gdelt %s: %s", source["key"], reason)
            yield SourceStateItem(source["key"], f"error: {reason}"[:200], False)
            return
        new = 0
        for article in articles if isinstance(articles, list) else []:
            if not isinstance(article, dict) or not article.get("url"):
                continue
            published = parse_seendate(article.get("seendate"))
            if self.is_before_since(published):
                continue
            language = GDELT_LANGUAGES.get(str(article.get("language", "")).lower())
            request = self.article_request(
                article["url"],
                source["key"],
                title=article.get("title"),
                published=published,
                language=language,
            )
            if request is not None:
                new += 1
                yield request
        yield SourceStateItem(
            source["key"], f"{response.status} ok", True, entries=len(articles), new_entries=new
        )
