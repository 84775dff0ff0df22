"""What every claimwatch spider shares: turning listed article URLs into requests and pages into items."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest, ResponseDataLossError
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.items import PageItem, SourceStateItem
from crawler.middlewares import PolicyRefusal
from pipelines.urls import canonicalize_url

logger = logging.getLogger(__name__)

RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504, 522, 524})
ROBOTS_REFUSAL = "Forbidden by robots.txt"  # scrapy.downloadermiddlewares.robotstxt


def is_refusal(failure: Failure) -> bool:
    """robots.txt, the address policy or an already-stored URL: a decision, not a failed download."""
    return bool(failure.check(PolicyRefusal)) or (
        bool(failure.check(IgnoreRequest)) and failure.getErrorMessage() == ROBOTS_REFUSAL
    )


def failure_reason(failure: Failure, maxsize: int) -> tuple[str, bool]:
    """A short reason for a failed download, and whether a later run may well succeed."""
    response = getattr(failure.value, "response", None)
    if failure.check(HttpError) and response is not None:
        return f"http {response.status}", response.status in RETRYABLE_HTTP
    message = failure.getErrorMessage()
    if is_refusal(failure):
        return message, False
    if failure.check(IgnoreRequest):
        if message == "max redirections reached":  # scrapy.downloadermiddlewares.redirect
            return "too many redirects (redirect loop?)", False
        if "DOWNLOAD_MAXSIZE" in message:  # a compressed body growing too large (gzip bomb)
            return f"too large: {message}"[:300], False
        return f"ignored: {message}"[:300], False
    if failure.check(DownloadCancelledError):
        # the download handler cancels bodies larger than DOWNLOAD_MAXSIZE (with no message when the
        # body had no Content-Length)
        return f"too large: {message or f'body larger than DOWNLOAD_MAXSIZE ({maxsize} bytes)'}"[:300], False
    if failure.check(ResponseDataLossError) and not message:
        message = "the connection closed before the whole body arrived"
    return f"{failure.type.__name__}: {message}"[:300], True


def parse_since(value: str | datetime | None) -> datetime | None:
    """The since-window as an aware UTC datetime (spider arguments arrive as ISO strings)."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_sources(value: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Sources arrive as a JSON string from the command line, or as a list from Python."""
    if not value:
        return []
    return json.loads(value) if isinstance(value, str) else list(value)


class ArticleSpider(scrapy.Spider):
    """Base class: ``article_request`` for a listed URL; ``parse_article`` yields a PageItem."""

    discovered_via = "unknown"

    def __init__(self, *args: Any, since: str | None = None, sources: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.since = parse_since(since)
        self.sources = parse_sources(sources)
        self._requested: set[str] = set()

    def is_before_since(self, published: datetime | None) -> bool:
        return published is not None and self.since is not None and published < self.since

    def article_request(
        self,
        url: str,
        source_key: str | None,
        *,
        title: str | None = None,
        published: datetime | None = None,
        language: str | None = None,
    ) -> scrapy.Request | None:
        canonical = canonicalize_url(url)
        if canonical is None:
            logger.info("skipping non-http(s) or malformed link %r from %s", url[:200], source_key)
            self.crawler.stats.inc_value("claimwatch/links_rejected")
            return None
        if canonical in self._requested:
            return None
        self._requested.add(canonical)
        # dont_filter: every link is requested once anyway (above), and a redirect loop must run into
        # REDIRECT_MAX_TIMES (and be recorded) rather than vanish in the duplicate filter.
        return scrapy.Request(
            canonical,
            callback=self.parse_article,
            errback=self.article_failed,
            dont_filter=True,
            meta={
                "article": True,
                "canonical_url": canonical,
                "source_key": source_key,
                "listed_title": title,
                "listed_published": published.isoformat() if published else None,
                "listed_language": language,
            },
        )

    def _page_item(self, meta: dict[str, Any], **values: Any) -> PageItem:
        return PageItem(
            url=meta["canonical_url"],
            source_key=meta.get("source_key"),
            discovered_via=self.discovered_via,
            listed_title=meta.get("listed_title"),
            listed_published=meta.get("listed_published"),
            listed_language=meta.get("listed_language"),
            **values,
        )

    def parse_article(self, response: Response) -> Iterator[PageItem]:
        content_type = response.headers.get("Content-Type", b"").decode("latin-1") or None
        encoding = getattr(response, "encoding", None)
        yield self._page_item(
            response.meta,
            final_url=canonicalize_url(response.url) or response.url,
            http_status=response.status,
            content_type=content_type,
            body=response.body,
            encoding=encoding,
        )

    def article_failed(self, failure: Failure) -> Iterator[PageItem]:
        request = failure.request  # type: ignore[attr-defined]
        if is_refusal(failure):
            if not request.meta.get("redirect_urls"):
                # robots.txt, the address policy or an already-stored URL: a decision, not a document
                logger.info("not fetching %s: %s", request.url, failure.getErrorMessage())
                return
            # the listed URL was fetched and redirected somewhere claimwatch does not go
            reason, retryable = f"redirect to {request.url} refused: {failure.getErrorMessage()}"[:300], False
        else:
            reason, retryable = failure_reason(failure, self.crawler.settings.getint("DOWNLOAD_MAXSIZE"))
        response = getattr(failure.value, "response", None)
        status = response.status if response is not None else None
        logger.info("failed to fetch %s: %s", request.url, reason)
        yield self._page_item(request.meta, http_status=status, error=reason, retryable=retryable)

    def source_failed(self, failure: Failure) -> Iterator[SourceStateItem]:
        """Errback of feed, sitemap and API requests: record the failure on the source."""
        request = failure.request  # type: ignore[attr-defined]
        source = request.meta["source"]
        reason, _ = failure_reason(failure, self.crawler.settings.getint("DOWNLOAD_MAXSIZE"))
        logger.warning("%s: fetching %s failed: %s", source["key"], request.url, reason)
        yield SourceStateItem(source["key"], f"error: {reason}"[:200], False)
