"""Item pipelines: extraction + relevance (pure functions from ``pipelines``), then batched storage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from scrapy.crawler import Crawler
from sqlalchemy.exc import SQLAlchemyError

from crawler.items import PageItem, SourceStateItem
from db.queries import add_run_counters, source_ids_by_key, store_documents, update_source_state
from db.session import make_engine, make_sessionmaker, session_scope
from db.timeutil import to_naive_utc, utcnow
from pipelines.dedup import content_hash, simhash
from pipelines.extract import Article, decode_html, extract_article, sniff_non_html
from pipelines.records import DocumentRecord
from pipelines.relevance import assess_relevance
from pipelines.status import DocumentStatus, MatchStatus
from pipelines.urls import host_of

logger = logging.getLogger(__name__)

# Less text than this is a menu, a cookie wall or a script shell, not an article (a short news brief has
# several hundred characters); without the check a nav bar naming both countries is queued as relevant.
MIN_ARTICLE_CHARS = 100


def parse_date(value: str | None) -> datetime | None:
    """An ISO date or datetime as naive UTC, or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return to_naive_utc(moment) if moment.tzinfo else moment


def failure_record(item: PageItem, reason: str, retryable: bool = False) -> DocumentRecord:
    return DocumentRecord(
        url=item.url,
        final_url=item.final_url,
        discovered_via=item.discovered_via,
        http_status=item.http_status,
        content_type=item.content_type,
        status=DocumentStatus.FAILED,
        reason=reason[:500],
        retryable=retryable,
        title=item.listed_title,
        published_at=parse_date(item.listed_published),
        outlet=host_of(item.final_url or item.url),
        match_status=MatchStatus.SKIPPED,
    )


def article_record(item: PageItem, article: Article, relevance_filter: bool = True) -> DocumentRecord:
    relevance = assess_relevance(article.text, article.title)
    relevant = relevance.relevant or not relevance_filter
    # The feed's / sitemap's date is stated by the publisher; a page date may come from trafilatura's
    # search of the text ("the 2025 budget" → 2025-01-01), so it only fills in when the listing has none.
    published = parse_date(item.listed_published) or parse_date(article.date)
    return DocumentRecord(
        url=item.url,
        final_url=item.final_url,
        discovered_via=item.discovered_via,
        http_status=item.http_status,
        content_type=item.content_type,
        status=DocumentStatus.OK if relevant else DocumentStatus.IRRELEVANT,
        reason=None if relevant else relevance.reason,
        retryable=False,
        title=article.title or item.listed_title,
        author=article.author,
        published_at=published,
        sitename=article.sitename,
        # the publication's own name (og:site_name, JSON-LD publisher) when the page states it
        outlet=(article.sitename or "").strip()[:255] or host_of(item.final_url or item.url),
        language=article.language or item.listed_language,
        description=article.description,
        text=article.text,
        text_chars=len(article.text),
        relevance_terms=relevance.terms or None,
        content_hash=content_hash(article.text),
        simhash=simhash(article.text),
        match_status=MatchStatus.PENDING if relevant else MatchStatus.SKIPPED,
    )


def page_to_record(item: PageItem, relevance_filter: bool = True) -> DocumentRecord:
    """What to store for one fetched page: an article, an irrelevant page, or a failure (with
    ``relevance_filter`` off every article is relevant)."""
    if item.error is not None:
        return failure_record(item, item.error, item.retryable)
    body = item.body or b""
    reason = sniff_non_html(body, item.content_type)
    if reason is not None:
        return failure_record(item, reason)
    html = decode_html(body, item.encoding)
    if html is None:
        return failure_record(item, "undecodable body")
    article = extract_article(html, item.final_url or item.url)
    if article is None or len(article.text) < MIN_ARTICLE_CHARS:
        return failure_record(item, "no article text extracted")
    return article_record(item, article, relevance_filter)


class ExtractPipeline:
    """Turns PageItems into DocumentRecords; SourceStateItems pass through."""

    def __init__(self, crawler: Crawler, relevance_filter: bool = True) -> None:
        self.crawler = crawler
        self.relevance_filter = relevance_filter

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractPipeline:
        return cls(crawler, crawler.settings.getbool("CLAIMWATCH_RELEVANCE_FILTER"))

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, PageItem):
            return item
        record = page_to_record(item, self.relevance_filter)
        record.source_key = item.source_key
        self.crawler.stats.inc_value(f"claimwatch/documents_{record.status}")
        if record.status == DocumentStatus.FAILED:
            logger.info("page %s failed: %s", item.url, record.reason)
        return record


class StorePipeline:
    """Stores document records in batches (one transaction per batch), and the sources' fetch
    states (ETag, Last-Modified, last success) with the last batch only: a crawl killed midway must
    not record a feed as seen while some of its articles are not stored, or the next run's
    conditional GET would get 304 and never fetch them.

    A batch is written when it holds ``batch_size`` documents or its first document has waited
    ``flush_seconds``: the matcher runs while the crawl stores, and must not wait for a full batch.
    A batch that cannot be written stays in memory and is retried with the next one; whatever is
    not stored when the crawl ends is simply fetched again by the next run (its URL is not known).
    """

    def __init__(
        self,
        crawler: Crawler,
        database_url: str,
        run_id: int | None,
        batch_size: int,
        flush_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.crawler = crawler
        self.run_id = run_id
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.waiting_since: float | None = None
        self.timer: Any = None
        self.engine = make_engine(database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.documents: list[DocumentRecord] = []
        self.states: list[SourceStateItem] = []
        self.source_ids: dict[str, int] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(
            crawler,
            crawler.settings.get("CLAIMWATCH_DATABASE_URL"),
            crawler.settings.getint("CLAIMWATCH_RUN_ID") or None,
            # crawler/config.py store_batch_size, store_flush_seconds
            crawler.settings.getint("CLAIMWATCH_STORE_BATCH_SIZE"),
            crawler.settings.getfloat("CLAIMWATCH_STORE_FLUSH_SECONDS"),
        )

    def open_spider(self, spider: Any = None) -> None:
        with self.sessions() as session:
            self.source_ids = source_ids_by_key(session)
        if self.flush_seconds > 0:
            # a batch whose first document has waited long enough is written even when no item
            # follows it (the next ones may be minutes away: slow sites, download delays)
            from twisted.internet.task import LoopingCall

            self.timer = LoopingCall(self.flush_if_due)
            self.timer.start(max(self.flush_seconds / 2, 0.1), now=False)

    def flush_if_due(self) -> None:
        if self.batch_due():
            self.flush()

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, SourceStateItem):
            self.states.append(item)
        elif isinstance(item, DocumentRecord):
            if item.source_id is None and item.source_key:
                item.source_id = self.source_ids.get(item.source_key)
            item.crawl_run_id = self.run_id
            item.fetched_at = utcnow()
            self.documents.append(item)
            if self.waiting_since is None:
                self.waiting_since = self.clock()
        if self.batch_due():
            self.flush()
        return item

    def batch_due(self) -> bool:
        if not self.documents:
            return False
        if len(self.documents) >= self.batch_size:
            return True
        return self.waiting_since is not None and self.clock() - self.waiting_since >= self.flush_seconds

    def flush(self, final: bool = False) -> bool:
        """Store the pending documents, and with ``final`` (the crawl has ended) the source states."""
        states = self.states if final else []
        if not self.documents and not states:
            return True
        try:
            with session_scope(self.sessions) as session:
                counts = store_documents(session, self.documents)
                for state in states:
                    update_source_state(
                        session,
                        state.source_key,
                        status=state.status,
                        ok=state.ok,
                        etag=state.etag,
                        last_modified=state.last_modified,
                    )
                if self.run_id is not None:
                    add_run_counters(session, self.run_id, counts.as_run_counters())
        except SQLAlchemyError as exc:
            self.crawler.stats.inc_value("claimwatch/store_errors")
            logger.error("could not store %d documents (will retry): %s", len(self.documents), exc)
            return False
        stats = self.crawler.stats
        stats.inc_value("claimwatch/stored", counts.stored)
        stats.inc_value("claimwatch/duplicates", counts.duplicates)
        stats.inc_value("claimwatch/already_known", counts.skipped_known)
        self.documents.clear()
        self.waiting_since = None
        if final:
            self.states.clear()
        return True

    def close_spider(self, spider: Any = None) -> None:
        if self.timer is not None and self.timer.running:
            self.timer.stop()
        if not self.flush(final=True):
            self.crawler.stats.set_value("claimwatch/unstored_at_close", len(self.documents))
        self.engine.dispose()
