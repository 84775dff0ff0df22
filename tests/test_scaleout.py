"""Scale-out: crawl processes sharing a Redis run, match workers sharing PostgreSQL's pending documents.

Needs the Redis server at 127.0.0.1:6379 and the PostgreSQL server at 127.0.0.1:5432 (skipped when
either is unreachable, except in CI).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from crawler.config import load_settings
from crawler.demo.site import DemoSite
from db.queries import claim_pending_documents, store_documents
from db.session import make_engine, make_sessionmaker, session_scope
from tests.helpers import (
    claimwatch,
    create_postgres_database,
    drop_postgres_database,
    loopback_crawl_env,
    postgres_available,
    require_service,
    start_claimwatch,
)

REDIS_URL = os.environ.get("CLAIMWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
STATUSES = "SELECT match_status, count(*) FROM documents GROUP BY 1"


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except Exception:
        return False


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_service(postgres_available(), "PostgreSQL at 127.0.0.1:5432")
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


class CountingSite(DemoSite):
    """The demo site, counting the requests per path."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def redirect_for(self, path: str) -> Any:  # called first for every request
        with self._lock:
            self.counts[path] += 1
        return super().redirect_for(path)

    def article_requests(self) -> Counter[str]:
        paths = {a.path for a in self.articles()}
        with self._lock:
            found = Counter({p: n for p, n in self.counts.items() if p in paths})
            self.counts.clear()
        return found


class HashEncoder:
    """A deterministic stand-in for the model: a unit vector per text, from its hash."""

    model_name, revision, languages = "hash", "1", None

    def encode(self, texts: Any, **kwargs: Any) -> np.ndarray:
        rows = [
            np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8])).standard_normal(16)
            for t in texts
        ]
        out = np.array(rows, dtype=np.float32).reshape(len(rows), 16)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


# --- claims of pending documents never overlap ----------------------------------------------------


def pending_record(n: int) -> dict[str, Any]:
    return {
        "url": f"https://example.org/news/{n}",
        "status": "ok",
        "match_status": "pending",
        "text": f"Document {n} about Baku and Moscow.",
    }


def test_concurrent_claims_never_overlap_and_a_dropped_claim_returns(postgres_url: str) -> None:
    from db.migrate import upgrade_database

    upgrade_database(postgres_url)
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as session:
        store_documents(session, [pending_record(n) for n in range(10)])
    first, second, third = sessions(), sessions(), sessions()
    try:
        a = {d.id for d in claim_pending_documents(first, 4)}
        b = {d.id for d in claim_pending_documents(second, 4)}  # while the first claim is held
        c = {d.id for d in claim_pending_documents(third, 4)}
        assert len(a) == len(b) == 4 and len(c) == 2
        assert not (a & b) and not (a & c) and not (b & c)
        # the first worker dies: its transaction ends without a commit, its batch is pending again
        first.connection().invalidate()
        first.close()
        again = sessions()
        assert {d.id for d in claim_pending_documents(again, 10)} == a
        again.close()
    finally:
        for session in (second, third):
            session.close()
        engine.dispose()


def test_two_matchers_in_parallel_match_every_document_once(postgres_url: str) -> None:
    """Two Matchers (as two worker processes would) draining one queue with a slow encoder: every
    document is matched by exactly one of them."""
    from crawler.services.app import initialise
    from crawler.services.matching import CountingEncoder, run_match

    settings = dataclasses.replace(
        load_settings(environ={}), database_url=postgres_url, match_batch_documents=3, match_threshold=-1.0
    )
    initialise(settings, load_default_sources=False)
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as session:
        store_documents(session, [pending_record(n) for n in range(30)])

    class SlowEncoder(HashEncoder):
        def encode(self, texts: Any, **kwargs: Any) -> Any:
            time.sleep(0.05)  # long enough for the two workers' batches to interleave
            return super().encode(texts, **kwargs)

    results: list[Any] = []

    def work() -> None:
        results.append(run_match(settings, sessions, encoder=CountingEncoder(SlowEncoder())))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [r.status for r in results] == ["succeeded", "succeeded"]
    counts = [r.counters["documents_matched"] for r in results]
    assert sum(counts) == 30 and min(counts) > 0, counts  # shared, each document once
    with engine.connect() as connection:
        statuses = dict(connection.execute(text(STATUSES)).all())
        runs = {row[0] for row in connection.execute(text("SELECT DISTINCT crawl_run_id FROM matches"))}
        twice = connection.execute(
            text(
                "SELECT count(*) FROM (SELECT document_id, claim_id FROM matches "
                "GROUP BY 1, 2 HAVING count(*) > 1) t"
            )
        ).scalar()
    engine.dispose()
    assert statuses == {"matched": 30}
    assert runs == {r.run_id for r in results} and twice == 0


# --- 2 crawlers + 2 match workers == one `claimwatch run` ----------------------------------------


def environment(url: str, **extra: str) -> dict[str, str]:
    return loopback_crawl_env(url, CLAIMWATCH_STORE_BATCH_SIZE="3", **extra)


def prepare(url: str, site: CountingSite, cwd: Path) -> None:
    from crawler.services.app import initialise
    from db.queries import upsert_sources

    settings = dataclasses.replace(load_settings(environ={}), database_url=url, sources_file="")
    initialise(settings, load_default_sources=False)
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        upsert_sources(session, site.sources())
    engine.dispose()


def outcome(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    with engine.connect() as connection:
        documents = [row[0] for row in connection.execute(text("SELECT url FROM documents"))]
        story_of = dict(
            connection.execute(text("SELECT url, coalesce(duplicate_of_id, id) FROM documents")).all()
        )
        members: dict[int, set[str]] = {}
        for page, story in story_of.items():
            members.setdefault(story, set()).add(page)
        matches = connection.execute(
            text(
                "SELECT d.url, c.key FROM matches m JOIN documents d ON d.id = m.document_id "
                "JOIN claims c ON c.id = m.claim_id"
            )
        ).all()
        statuses = dict(connection.execute(text(STATUSES)).all())
        runs = connection.execute(
            text("SELECT kind, status, documents_matched FROM crawl_runs ORDER BY id")
        ).all()
    engine.dispose()
    # Which copy of a syndicated story is stored first (and matched) depends on arrival order, in a
    # single process too, and copies differ in their credit lines: for those stories, whether the
    # story matched is compared; for single articles, every (document, claim) pair.
    story = {page: frozenset(members[s]) for page, s in story_of.items()}
    return {
        "documents": documents,
        "matches": [tuple(m) for m in matches],
        "single_matches": sorted((page, claim) for page, claim in matches if len(story[page]) == 1),
        "syndicated_matched": {story[page] for page, _ in matches if len(story[page]) > 1},
        "stories": set(story.values()),
        "statuses": statuses,
        "runs": [tuple(r) for r in runs],
    }


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return start_claimwatch(args, cwd, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[str], timeout: float = 600) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return err


@pytest.mark.slow
def test_two_crawlers_and_two_workers_equal_one_run(tmp_path: Path) -> None:
    require_service(redis_available(), f"Redis at {REDIS_URL}")
    require_service(postgres_available(), "PostgreSQL at 127.0.0.1:5432")
    import redis

    single_url, shared_url = create_postgres_database(), create_postgres_database()
    key = f"test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        with CountingSite() as site:
            # the reference: one `claimwatch run` (crawl and overlapping match in one process)
            prepare(single_url, site, tmp_path)
            result = claimwatch("run", cwd=tmp_path, env=environment(single_url))
            assert result.returncode == 0, result.stderr[-3000:]
            single_requests = site.article_requests()
            reference = outcome(single_url)

            # the same with 2 crawler processes sharing a Redis run and 2 match workers
            prepare(shared_url, site, tmp_path)
            shared_env = environment(shared_url, CLAIMWATCH_REDIS_URL=REDIS_URL)
            crawlers = [spawn(["crawl", "--shared-run", key], shared_env, tmp_path) for _ in range(2)]
            workers = [
                spawn(["match", "--worker", "--idle-exit", "20", "--poll", "0.5"], shared_env, tmp_path)
                for _ in range(2)
            ]
            crawl_logs = [finish(p) for p in crawlers]
            worker_logs = [finish(p) for p in workers]
            shared_requests = site.article_requests()
        shared = outcome(shared_url)
        leftover = client.keys(f"claimwatch:{key}:*")
    finally:
        client.close()
        drop_postgres_database(single_url)
        drop_postgres_database(shared_url)

    # every article page fetched once, by one of the two crawlers; the same pages as the single run
    assert shared_requests and set(shared_requests) == set(single_requests)
    assert set(shared_requests.values()) == {1}, shared_requests
    assert all("crawl run" in log and "succeeded" in log for log in crawl_logs)
    # the same documents and the same (document, claim) matches; nothing twice
    assert len(shared["documents"]) == len(set(shared["documents"]))
    assert sorted(shared["documents"]) == sorted(reference["documents"])
    assert len(shared["matches"]) == len(set(shared["matches"]))
    assert shared["stories"] == reference["stories"]
    assert shared["single_matches"] == reference["single_matches"] and reference["single_matches"]
    assert shared["syndicated_matched"] == reference["syndicated_matched"]
    assert shared["statuses"] == reference["statuses"] and "pending" not in shared["statuses"]
    # each worker recorded its own match run; together they matched every document once
    match_runs = [r for r in shared["runs"] if r[0] == "match"]
    assert len(match_runs) == 2 and all(status == "succeeded" for _, status, _ in match_runs), worker_logs
    matched = sum(n for _, _, n in match_runs)
    done = ("matched", "no_match", "not_scored")
    assert matched == sum(v for k, v in shared["statuses"].items() if k in done)
    assert [r[:2] for r in shared["runs"] if r[0] == "crawl"] == [("crawl", "succeeded")] * 2
    assert leftover == []  # the last crawler out removed the run's Redis keys


# --- the run lock and shared-work members ---------------------------------------------------------


def test_run_lock_holder_spares_live_members_runs_and_closes_dead_ones(sessions) -> None:  # type: ignore[no-untyped-def]
    from crawler.services.locks import RunLockHandle, live_members, member_lock
    from db.models import CrawlRun, RunLock
    from db.queries import start_run

    settings = dataclasses.replace(load_settings(environ={}), lock_ttl=30)
    with session_scope(sessions) as session:
        alive, dead = start_run(session, "match").id, start_run(session, "match").id
    with member_lock(sessions, settings, "match --worker", alive):
        with session_scope(sessions) as session:  # a worker on this host that was SIGKILLed
            session.add(
                RunLock(
                    name=f"member:{dead}",
                    holder="x",
                    purpose="match --worker",
                    pid=2**22 + 12345,  # no such process
                    host=socket.gethostname(),
                    expires_at=datetime(2999, 1, 1),
                )
            )
        # members never block each other nor the exclusive lock
        with RunLockHandle(sessions, 30, "run"):
            pass
        with sessions() as session:
            status = {r.id: r.status for r in session.query(CrawlRun)}
        assert status[alive] == "running" and status[dead] == "interrupted"
        assert [m.name for m in live_members(sessions)] == [f"member:{alive}"]
    assert live_members(sessions) == []  # released on exit
