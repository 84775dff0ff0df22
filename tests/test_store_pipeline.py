"""The crawl's StorePipeline writes a batch when it is full or when its first document has waited
``store_flush_seconds``, so the matcher (running beside the crawl) is not kept waiting."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from sqlalchemy import func, select

from crawler.item_pipelines import StorePipeline, failure_record
from crawler.items import PageItem
from db.migrate import upgrade_database
from db.models import Document
from db.session import make_engine, make_sessionmaker
from pipelines.records import DocumentRecord


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeCrawler:
    def __init__(self) -> None:
        self.settings = Settings()
        self.stats = MemoryStatsCollector(self)  # type: ignore[arg-type]


def stored(url: str) -> int:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return int(session.scalar(select(func.count()).select_from(Document)) or 0)
    finally:
        engine.dispose()


def record(n: int) -> DocumentRecord:
    item = PageItem(url=f"http://127.0.0.1:1/a/{n}", source_key=None, discovered_via="test", http_status=404)
    return failure_record(item, "http 404")


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_database(url)
    return url


def pipeline(url: str, batch_size: int, flush_seconds: float, clock: FakeClock) -> StorePipeline:
    store = StorePipeline(FakeCrawler(), url, None, batch_size, flush_seconds, clock=clock)  # type: ignore[arg-type]
    with store.sessions() as session:
        from db.queries import source_ids_by_key

        store.source_ids = source_ids_by_key(session)
    return store


def test_a_full_batch_is_written_at_once(database: str) -> None:
    clock = FakeClock()
    store = pipeline(database, batch_size=3, flush_seconds=60, clock=clock)
    store.process_item(record(1))
    store.process_item(record(2))
    assert stored(database) == 0
    store.process_item(record(3))
    assert stored(database) == 3
    assert not store.documents and store.waiting_since is None
    store.close_spider()


def test_a_partial_batch_is_written_once_its_first_document_has_waited(database: str) -> None:
    clock = FakeClock()
    store = pipeline(database, batch_size=50, flush_seconds=2.0, clock=clock)
    store.process_item(record(1))
    clock.now += 1.0
    store.flush_if_due()
    assert stored(database) == 0, "not due yet: 1 s of 2"
    store.process_item(record(2))
    clock.now += 1.0
    store.flush_if_due()  # the timer's tick: no further item needed
    assert stored(database) == 2
    # the wait restarts with the next batch's first document
    clock.now += 10.0
    store.process_item(record(3))
    assert stored(database) == 2
    clock.now += 2.0
    store.process_item(record(4))
    assert stored(database) == 4
    store.close_spider()


def test_zero_flush_seconds_writes_every_document_at_once(database: str) -> None:
    store = pipeline(database, batch_size=50, flush_seconds=0, clock=FakeClock())
    store.process_item(record(1))
    assert stored(database) == 1
    store.close_spider()


def test_nothing_is_due_with_no_documents(database: str) -> None:
    clock = FakeClock()
    store = pipeline(database, batch_size=1, flush_seconds=0, clock=clock)
    assert not store.batch_due()
    store.close_spider()
