"""Downloader middlewares: address policy (no private networks) and the known-URL filter."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest

from db.queries import known_urls
from db.session import make_engine, make_sessionmaker
from pipelines.urls import ALLOWED_SCHEMES, blocked_address_reason

logger = logging.getLogger(__name__)


class AddressPolicyMiddleware:
    """Refuses non-http(s) URLs and literal private, link-local or (unless allowed) loopback hosts."""

    def __init__(self, crawler: Crawler, allow_loopback: bool) -> None:
        self.crawler = crawler
        self.allow_loopback = allow_loopback

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressPolicyMiddleware:
        return cls(crawler, crawler.settings.getbool("CLAIMWATCH_ALLOW_LOOPBACK"))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ALLOWED_SCHEMES:
            raise IgnoreRequest(f"scheme {parts.scheme!r} not crawled")
        reason = blocked_address_reason(parts.hostname or "", allow_loopback=self.allow_loopback)
        if reason:
            self.crawler.stats.inc_value("claimwatch/blocked_address")
            logger.warning("refusing %s: %s", request.url, reason)
            raise IgnoreRequest(f"blocked: {reason}")


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
                raise IgnoreRequest(f"known URL {url}")
        return None
