"""Benchmark the passage archive's cost and backfill's speed on the match stage (SQLite).

    python scripts/bench_archive.py                    # 240 documents, 2 rounds
    python scripts/bench_archive.py --documents 600 --rounds 3

Documents: the demo site's English articles, each stored several times with a distinct first line
(so none is a duplicate), matched by the bundled MiniLM against the seed claims minus seed-24.
Per round, on fresh databases, the match stage runs with ``archive_passages`` on and off
(alternating which goes first): documents per second, archive bytes per passage and per document,
database growth. Then, on the archived database, seed-24 is loaded and ``match --backfill`` is timed
against ``match --rematch`` (requeue + the match stage) and their matches compared.
Not a test: a measurement (numbers in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from sqlalchemy import delete, func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.config import load_settings  # noqa: E402
from crawler.services.app import initialise  # noqa: E402
from crawler.services.backfill import run_backfill  # noqa: E402
from crawler.services.matching import CountingEncoder, run_match  # noqa: E402
from db.archive import archive_bytes, archive_counts  # noqa: E402
from db.models import Claim, Match  # noqa: E402
from db.queries import requeue_documents, store_documents, sync_claims  # noqa: E402
from db.session import make_engine, make_sessionmaker, session_scope  # noqa: E402
from pipelines.claims import default_claims_path, load_claims  # noqa: E402
from pipelines.encoding import text_hash  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NEW_CLAIM = "seed-24"


def documents(count: int) -> list[dict[str, object]]:
    data = yaml.safe_load((ROOT / "crawler" / "demo" / "articles.yaml").read_text(encoding="utf-8"))
    bodies = [
        a["body"].strip()
        for a in data["articles"]
        if a.get("language") == "en" and not a.get("syndicated_from")
    ]
    return [
        {
            "url": f"https://bench.example/{n}",
            "status": "ok",
            "match_status": "pending",
            "language": "en",
            "text": f"Report number {n} from the bench desk.\n" + bodies[n % len(bodies)],
        }
        for n in range(count)
    ]


def prepare(directory: Path, name: str, count: int, leave_out: bool) -> tuple[object, object]:
    url = f"sqlite:///{directory / name}.db"
    settings = dataclasses.replace(
        load_settings(environ={}),
        database_url=url,
        multilingual_model="",
        archive_index_dir=str(directory / name),
    )
    initialise(settings, load_default_sources=False)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    claims = [c for c in load_claims(default_claims_path()) if not (leave_out and c.id == NEW_CLAIM)]
    with session_scope(sessions) as session:
        sync_claims(session, "seed", claims, text_hash)
        store_documents(session, documents(count))
    return settings, sessions


def snapshot(sessions: object) -> set[tuple[object, ...]]:
    with sessions() as session:  # type: ignore[operator]
        return set(
            session.execute(
                select(
                    Match.document_id, Claim.key, Match.passage_start, Match.passage_end, Match.score
                ).join(Claim, Claim.id == Match.claim_id)
            ).all()
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from pipelines.embed import load_encoder

    encoder = load_encoder()
    rates: dict[bool, list[float]] = {True: [], False: []}
    result: dict[str, object] = {"documents": args.documents}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for round_ in range(args.rounds):
            for archive in (True, False) if round_ % 2 == 0 else (False, True):
                name = f"r{round_}-{'on' if archive else 'off'}"
                settings, sessions = prepare(directory, name, args.documents, leave_out=True)
                settings = dataclasses.replace(settings, archive_passages=archive)
                started = time.perf_counter()
                stage = run_match(settings, sessions, encoder=CountingEncoder(encoder))
                seconds = time.perf_counter() - started
                rates[archive].append(args.documents / seconds)
                print(f"  {name}: {args.documents / seconds:.2f} documents/s", file=sys.stderr, flush=True)
                if archive and round_ == 0:
                    with sessions() as session:
                        counts = archive_counts(session)
                        stored = archive_bytes(session)
                    passages = sum(counts.values())
                    index_bytes = sum(f.stat().st_size for f in (directory / name).glob("*.usearch"))
                    result.update(
                        passages=passages,
                        passages_per_document=round(passages / args.documents, 1),
                        vector_bytes_per_passage=round(stored / passages, 1),
                        index_bytes_per_passage=round(index_bytes / passages, 1),
                        passages_encoded=stage.counters.get("passages_encoded"),
                    )
                    archived = (settings, sessions)
        result["documents_per_second_on"] = round(statistics.median(rates[True]), 2)
        result["documents_per_second_off"] = round(statistics.median(rates[False]), 2)
        result["throughput_on_vs_off"] = round(
            statistics.median(rates[True]) / statistics.median(rates[False]), 3
        )
        # backfill of one new claim vs a full rematch, on the archived database of round 0
        settings, sessions = archived
        with session_scope(sessions) as session:
            sync_claims(session, "seed", load_claims(default_claims_path()), text_hash)
        before = snapshot(sessions)
        started = time.perf_counter()
        outcome = run_backfill(settings, sessions, encoder=encoder)
        backfill_seconds = time.perf_counter() - started
        backfilled = snapshot(sessions)
        with session_scope(sessions) as session:
            session.execute(delete(Match).where(Match.crawl_run_id == outcome.result.run_id))
            requeue_documents(session)
        assert snapshot(sessions) == before
        started = time.perf_counter()
        run_match(settings, sessions, encoder=CountingEncoder(encoder))
        rematch_seconds = time.perf_counter() - started
        with sessions() as session:
            total = session.scalar(select(func.count()).select_from(Match))
        result.update(
            backfill_seconds=round(backfill_seconds, 2),
            rematch_seconds=round(rematch_seconds, 2),
            backfill_vs_rematch=round(backfill_seconds / rematch_seconds, 4),
            backfill_matches_added=outcome.result.counters.get("matches_stored"),
            identical_matches=snapshot(sessions) == backfilled,
            matches=total,
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
