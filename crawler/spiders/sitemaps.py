"""News sitemap spider: Scrapy's sitemap support (index, gzip, size limits), filtered by date."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urljoin

import scrapy
from lxml import etree
from scrapy.http import Response
from scrapy.spiders import SitemapSpider
from scrapy.utils.sitemap import Sitemap

from crawler.items import SourceStateItem
from crawler.spiders.base import ArticleSpider
from pipelines.sourcecheck import parse_w3c_datetime
from pipelines.urls import canonicalize_url
from pipelines.xml_prolog import declares_entities

logger = logging.getLogger(__name__)

NEWS_NS = "{http://www.google.com/schemas/sitemap-news/0.9}"
MAX_SITEMAP_DEPTH = 3


class NewsSitemap(Sitemap):
    """Scrapy's Sitemap parser that also reads ``news:publication_date``, ``news:title`` and
    ``news:language`` (the parent flattens the nested ``news:news`` element away)."""

    __slots__ = ()

    def _process_sitemap_element(self, elem: etree._Element) -> dict[str, Any] | None:
        news: dict[str, str] = {}
        for child in elem.iter(f"{NEWS_NS}publication_date", f"{NEWS_NS}title", f"{NEWS_NS}language"):
            if child.text:
                news["news_" + child.tag.removeprefix(NEWS_NS)] = child.text.strip()
        entry = super()._process_sitemap_element(elem)
        if entry is not None:
            entry.update(news)
        return entry


def robots_sitemap_urls(body: bytes, base_url: str) -> Iterator[str]:
    """The ``Sitemap:`` lines of a robots.txt, resolved against its URL; a line urljoin cannot read
    (``http://[::1:bad/``) is skipped: Scrapy's own helper raises and so ended the callback."""
    for line in body.decode("utf-8", errors="ignore").splitlines():
        if line.lstrip().lower().startswith("sitemap:"):
            try:
                yield urljoin(base_url, line.split(":", 1)[1].strip())
            except ValueError:
                logger.info("skipping unreadable robots.txt sitemap line %r", line[:200])


class NewsSitemapSpider(ArticleSpider, SitemapSpider):
    """Fetches every enabled sitemap source (a news sitemap, a sitemap index or a robots.txt)."""

    name = "sitemaps"
    discovered_via = "sitemap"

    async def start(self) -> AsyncIterator[Any]:
        for source in self.sources:
            if source.get("kind") != "sitemap":
                continue
            yield scrapy.Request(
                source["url"],
                callback=self.parse_sitemap,
                errback=self.source_failed,
                dont_filter=True,
                meta={"source": source, "depth_in_index": 0},
            )

    def parse_sitemap(self, response: Response) -> Iterator[Any]:
        source = response.meta["source"]
        depth = response.meta["depth_in_index"]
        if response.url.endswith("/robots.txt"):
            for url in robots_sitemap_urls(response.body, response.url):
                request = self._child_sitemap(url, source, depth)
                if request is not None:
                    yield request
            return
        body = self._get_sitemap_body(response)
        if body and declares_entities(body):
            reason = "error: malformed sitemap: DTD entity declarations refused (entity amplification risk)"
            logger.warning("%s: %s: %s", source["key"], response.url, reason)
            yield SourceStateItem(source["key"], reason, False)
            return
        sitemap = None
        if body:
            try:
                sitemap = NewsSitemap(body)
            except (etree.XMLSyntaxError, StopIteration) as exc:
                logger.warning("%s: unreadable sitemap %s: %s", source["key"], response.url, exc)
        if sitemap is None or sitemap.type not in {"urlset", "sitemapindex"}:
            if depth == 0:
                reason = "not a sitemap"
                if body is None and response.body[:2] == b"\x1f\x8b":
                    reason = f"too large: gzipped sitemap over DOWNLOAD_MAXSIZE ({self._max_size} B) unpacked"
                yield SourceStateItem(source["key"], f"error: {reason}", False)
            return
        limit = self.settings.getint("CLAIMWATCH_MAX_SOURCE_ENTRIES")
        if sitemap.type == "sitemapindex":
            for n, entry in enumerate(sitemap):
                if n >= limit:
                    break
                if not self.is_before_since(parse_w3c_datetime(entry.get("lastmod"))):
                    request = self._child_sitemap(entry["loc"], source, depth)
                    if request is not None:
                        yield request
            if depth == 0:
                yield SourceStateItem(source["key"], f"{response.status} ok (index)", True)
            return
        entries = new = 0
        capped = False
        for entry in sitemap:
            if entries >= limit:
                capped = True
                break
            entries += 1
            published = parse_w3c_datetime(entry.get("news_publication_date") or entry.get("lastmod"))
            if self.is_before_since(published):
                continue
            request = self.article_request(
                entry["loc"],
                source["key"],
                title=entry.get("news_title"),
                published=published,
                language=entry.get("news_language") or source.get("language"),
            )
            if request is not None:
                new += 1
                yield request
        self.crawler.stats.inc_value("claimwatch/sitemap_entries", entries)
        # lxml recovers from errors by dropping what it cannot read
        errors = getattr(getattr(sitemap, "xmliter", None), "error_log", None)
        if not entries and errors:
            reason = f"error: malformed sitemap: {errors[-1].message}"
            logger.warning("%s: %s: %s", source["key"], response.url, reason)
            yield SourceStateItem(source["key"], reason[:200], False)
            return
        status = f"{response.status} ok" + (f" (first {limit} entries)" if capped else "")
        yield SourceStateItem(source["key"], status, True, entries=entries, new_entries=new)

    def _child_sitemap(self, url: str, source: dict[str, Any], depth: int) -> scrapy.Request | None:
        if depth + 1 > MAX_SITEMAP_DEPTH:
            logger.warning(
                "%s: sitemap index nested deeper than %d, ignoring %s", source["key"], MAX_SITEMAP_DEPTH, url
            )
            return None
        canonical = canonicalize_url(url)
        if canonical is None:  # a relative, non-http(s) or malformed <loc> (Request would raise)
            logger.info("%s: skipping non-http(s) or malformed sitemap link %r", source["key"], url[:200])
            self.crawler.stats.inc_value("claimwatch/links_rejected")
            return None
        return scrapy.Request(
            canonical,
            callback=self.parse_sitemap,
            errback=self.source_failed,
            meta={"source": source, "depth_in_index": depth + 1},
        )
