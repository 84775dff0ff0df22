"""The crawl subprocess: ``python -m crawler.crawl_process --run-id N``.

Twisted's reactor cannot be restarted inside one process, so every crawl runs in a fresh process
started by ``crawler.services.crawling``. This process runs the requested spiders together, then records the
outcome and the Scrapy stats on its crawl-run row.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings as ScrapySettings

from crawler.config import Settings, load_settings
from db.queries import finish_run, list_sources
from db.session import check_connection, make_engine, make_sessionmaker, session_scope
from pipelines.status import RunStatus

logger = logging.getLogger(__name__)

SPIDER_KINDS = {"feeds": "feed", "sitemaps": "sitemap", "gdelt": "gdelt"}


def build_scrapy_settings(settings: Settings, run_id: int | None, log_file: Path | None) -> ScrapySettings:
    """crawler.settings overlaid with the user's claimwatch settings."""
    scrapy_settings = ScrapySettings()
    scrapy_settings.setmodule("crawler.settings", priority="project")
    overrides: dict[str, Any] = {
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_OBEY": settings.robotstxt_obey,
        "DOWNLOAD_TIMEOUT": settings.download_timeout,
        "DOWNLOAD_MAXSIZE": settings.download_maxsize,
        "DOWNLOAD_WARNSIZE": min(settings.download_maxsize, 4 * 1024 * 1024),
        "CONCURRENT_REQUESTS": settings.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": settings.concurrent_per_domain,
        "DOWNLOAD_DELAY": settings.download_delay,
        "AUTOTHROTTLE_ENABLED": settings.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(settings.download_delay, 0.1),
        "LOG_LEVEL": settings.log_level,
        "LOG_INSTALL_ROOT_HANDLER": True,
        "CLAIMWATCH_DATABASE_URL": settings.database_url,
        "CLAIMWATCH_RUN_ID": run_id,
        "CLAIMWATCH_ALLOW_LOOPBACK": settings.allow_loopback,
        "CLAIMWATCH_GDELT_API_URL": settings.gdelt_api_url,
        "CLAIMWATCH_GDELT_DELAY": settings.gdelt_delay,
        "CLAIMWATCH_GDELT_MAX_RECORDS": settings.gdelt_max_records,
        "CLAIMWATCH_MAX_SOURCE_ENTRIES": settings.max_source_entries,
        "CLAIMWATCH_RELEVANCE_FILTER": settings.relevance_filter,
        "CLAIMWATCH_STORE_BATCH_SIZE": settings.store_batch_size,
        "CLAIMWATCH_STORE_FLUSH_SECONDS": settings.store_flush_seconds,
    }
    if log_file is not None:
        overrides["LOG_FILE"] = str(log_file)
    if settings.redis_url:
        from crawler.shared_crawl import scrapy_overrides

        overrides.update(scrapy_overrides(settings))
    scrapy_settings.setdict(overrides, priority="cmdline")
    return scrapy_settings


def spider_classes() -> dict[str, type]:
    from crawler.spiders.feeds import FeedSpider
    from crawler.spiders.gdelt import GdeltSpider
    from crawler.spiders.sitemaps import NewsSitemapSpider

    return {"feeds": FeedSpider, "sitemaps": NewsSitemapSpider, "gdelt": GdeltSpider}


def source_dicts(settings: Settings, kinds: list[str]) -> list[dict[str, Any]]:
    engine = make_engine(settings.database_url)
    check_connection(engine)
    with make_sessionmaker(engine)() as session:
        sources = list_sources(session, kinds=kinds)
        rows = [
            {c: getattr(s, c) for c in ("key", "kind", "url", "language", "country", "etag", "last_modified")}
            for s in sources
        ]
    engine.dispose()
    return rows


def summarize_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Scrapy stats as JSON-safe values."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in sorted(stats.items())}


def run(
    settings: Settings, run_id: int | None, spiders: list[str], since: str | None, log_file: Path | None
) -> dict[str, dict[str, Any]]:
    kinds = [SPIDER_KINDS[name] for name in spiders]
    sources = source_dicts(settings, kinds)
    # the root log handler comes from the LOG_INSTALL_ROOT_HANDLER setting: the install_root_handler
    # argument is deprecated (a ScrapyDeprecationWarning on every crawl)
    process = CrawlerProcess(build_scrapy_settings(settings, run_id, log_file))
    classes = spider_classes()
    crawlers = {}
    for name in spiders:
        mine = [s for s in sources if s["kind"] == SPIDER_KINDS[name]]
        if not mine:
            continue
        crawler = process.create_crawler(classes[name])
        crawlers[name] = crawler
        process.crawl(crawler, since=since, sources=json.dumps(mine))
    if crawlers:
        process.start()
    return {name: summarize_stats(crawler.stats.get_stats()) for name, crawler in crawlers.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--spiders", default="feeds,sitemaps,gdelt")
    parser.add_argument("--since", default=None, help="ISO datetime (UTC)")
    parser.add_argument("--log-file", type=Path, default=None)
    args = parser.parse_args(argv)
    settings = load_settings()
    spiders = [s for s in args.spiders.split(",") if s]
    unknown = set(spiders) - set(SPIDER_KINDS)
    if unknown:
        parser.error(f"unknown spiders: {', '.join(sorted(unknown))}")
    sessions = make_sessionmaker(make_engine(settings.database_url))
    try:
        if settings.redis_url:
            from crawler import shared_crawl

            members = shared_crawl.join(settings)
            logger.info("joined shared run %s (%d crawl processes)", shared_crawl.run_key(settings), members)
        try:
            stats = run(settings, args.run_id, spiders, args.since, args.log_file)
        finally:
            if settings.redis_url:
                shared_crawl.leave(settings)
    except Exception as exc:
        logger.exception("crawl failed")
        with session_scope(sessions) as session:
            finish_run(session, args.run_id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        return 1
    pages = sum(s.get("downloader/response_count", 0) for s in stats.values())
    store_errors = sum(s.get("claimwatch/unstored_at_close", 0) for s in stats.values())
    status = RunStatus.FAILED if store_errors else RunStatus.SUCCEEDED
    error = f"{store_errors} documents could not be stored" if store_errors else None
    with session_scope(sessions) as session:
        finish_run(session, args.run_id, status, error=error, stats=stats, counters={"pages_fetched": pages})
    return 0 if status == RunStatus.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
