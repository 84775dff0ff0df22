"""``claimwatch demo``: the whole chain on an offline news site served on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
import time

import typer

from crawler.app import do_crawl_and_match, initialise, open_sessions, print_summary
from crawler.config import Settings, redact_url

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


def run_demo(settings: Settings, database_url: str, port: int) -> bool:
    """Serve the demo site, crawl it with the real spiders, match, store and summarise."""
    from crawler.demo.site import DemoSite
    from crawler.scheduling import run_lock
    from db.queries import upsert_sources
    from db.session import session_scope

    settings = demo_settings(settings, database_url)
    typer.echo(f"demo database: {redact_url(database_url)}", err=True)
    initialise(settings, load_default_sources=False)
    started = time.monotonic()
    with run_lock(settings, "demo"), DemoSite(port=port) as site:
        typer.echo(f"demo site: {site.base_url}/ ({len(site.articles())} articles)", err=True)
        with session_scope(open_sessions(settings)) as session:
            upsert_sources(session, site.sources())
        crawled, matched = do_crawl_and_match(settings, ["feeds", "sitemaps"])
    seconds = time.monotonic() - started
    print_summary(settings)
    documents = crawled.counters["documents_stored"]
    passages = matched.counters["passages_encoded"]
    typer.echo(
        f"demo finished in {seconds:.1f}s: crawl {documents / max(crawled.seconds, 1e-9):.1f} documents/s, "
        f"match {passages / max(matched.seconds, 1e-9):.0f} passages/s",
        err=True,
    )
    return crawled.ok and matched.ok


def serve_demo(port: int) -> None:
    from crawler.demo.site import DemoSite

    with DemoSite(port=port) as site:
        typer.echo(f"serving the demo site at {site.base_url}/ — Ctrl-C to stop", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
