"""``claimwatch demo``: the whole chain on an offline news site served on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from crawler.config import Settings, redact_url
from crawler.services.app import LogObserver, StageObserver, do_crawl_and_match, initialise, open_sessions
from crawler.services.crawling import StageResult

logger = logging.getLogger(__name__)


def demo_settings(settings: Settings, database_url: str) -> Settings:
    """The user's settings, pointed at the demo database and allowed to crawl loopback quickly."""
    return dataclasses.replace(
        settings,
        database_url=database_url,
        allow_loopback=True,
        download_delay=0.0,
        autothrottle=False,
        concurrent_per_domain=8,
        gdelt_enabled=False,
        sources_file="",
    )


@dataclass(frozen=True)
class DemoOutcome:
    crawled: StageResult
    matched: StageResult
    seconds: float

    @property
    def ok(self) -> bool:
        return self.crawled.ok and self.matched.ok


def run_demo(
    settings: Settings, database_url: str, port: int, observer: StageObserver | None = None
) -> DemoOutcome:
    """Serve the demo site, crawl it with the real spiders, match and store."""
    from crawler.demo.site import DemoSite
    from crawler.services.locks import run_lock
    from db.queries import upsert_sources
    from db.session import session_scope

    observer = observer or LogObserver()
    settings = demo_settings(settings, database_url)
    observer.note(f"demo database: {redact_url(database_url)}")
    initialise(settings, load_default_sources=False)
    started = time.monotonic()
    with run_lock(settings, "demo"), DemoSite(port=port) as site:
        observer.note(f"demo site: {site.base_url}/ ({len(site.articles())} articles)")
        with session_scope(open_sessions(settings)) as session:
            upsert_sources(session, site.sources())
        crawled, matched = do_crawl_and_match(settings, ["feeds", "sitemaps"], observer=observer)
    return DemoOutcome(crawled, matched, time.monotonic() - started)


def serve_demo(port: int, on_ready: Callable[[str], None] = lambda _url: None) -> None:
    """Serve the demo site until Ctrl-C; ``on_ready`` gets its base URL."""
    from crawler.demo.site import DemoSite

    with DemoSite(port=port) as site:
        on_ready(site.base_url)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
