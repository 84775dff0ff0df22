"""Downloader middlewares: address policy (no private networks), the known-URL filter, Retry-After."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future

from db.queries import known_urls
from db.session import make_engine, make_sessionmaker
from pipelines.urls import ALLOWED_SCHEMES, blocked_address_reason, ip_literal

logger = logging.getLogger(__name__)


class PolicyRefusal(IgnoreRequest):
    """A request claimwatch decided not to make (address policy, known URL): not a failed page."""


async def resolve_host(host: str) -> str:
    """The IPv4 address of a host name through the reactor's resolver (Scrapy's DNS cache, which the
    download then uses too)."""
    from twisted.internet import reactor

    return await maybe_deferred_to_future(reactor.resolve(host))  # type: ignore[attr-defined]


class AddressPolicyMiddleware:
    """Refuses non-http(s) URLs and private, link-local or (unless allowed) loopback hosts, whether
    written as addresses or host names resolving to them."""

    def __init__(
        self,
        crawler: Crawler,
        allow_loopback: bool,
        resolve: Callable[[str], Awaitable[str]] = resolve_host,
    ) -> None:
        self.crawler = crawler
        self.allow_loopback = allow_loopback
        self.resolve = resolve

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressPolicyMiddleware:
        return cls(crawler, crawler.settings.getbool("CLAIMWATCH_ALLOW_LOOPBACK"))

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ALLOWED_SCHEMES:
            raise PolicyRefusal(f"scheme {parts.scheme!r} not crawled")
        host = parts.hostname or ""
        reason = blocked_address_reason(host, allow_loopback=self.allow_loopback)
        if reason is None and host and ip_literal(host) is None:
            reason = await self._resolved_reason(host)
        if reason:
            self.crawler.stats.inc_value("claimwatch/blocked_address")
            logger.warning("refusing %s: %s", request.url, reason)
            raise PolicyRefusal(f"blocked: {reason}")

    async def _resolved_reason(self, host: str) -> str | None:
        try:
            address = await self.resolve(host)
        except Exception:  # the download reports DNS failures
            return None
        reason = blocked_address_reason(address, allow_loopback=self.allow_loopback)
        return f"{host} resolves to {address}: {reason}" if reason else None


class KnownUrlMiddleware:
    """Drops article requests whose canonical URL is already in the database: never refetch."""

    def __init__(self, crawler: Crawler, database_url: str) -> None:
        self.crawler = crawler
        self.engine = make_engine(database_url)
        self.sessions = make_sessionmaker(self.engine)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> KnownUrlMiddleware:
        return cls(crawler, crawler.settings.get("CLAIMWATCH_DATABASE_URL"))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        url = request.meta.get("canonical_url")
        if not request.meta.get("article") or url is None:
            return None
        with self.sessions() as session:
            if known_urls(session, [url]):
                self.crawler.stats.inc_value("claimwatch/known_url_skipped")
                raise PolicyRefusal(f"known URL {url}")
        return None


class RetryAfterMiddleware:
    """A 429 or 503 with Retry-After is not retried at once within the crawl (Scrapy's retries ignore the
    header): the page is recorded as a retryable failure and the next run tries again.

    Must sit above RetryMiddleware (550): process_response runs from the highest number down.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        if response.status in (429, 503) and response.headers.get("Retry-After"):
            request.meta["dont_retry"] = True
            self.crawler.stats.inc_value("claimwatch/retry_after_respected")
        return response
