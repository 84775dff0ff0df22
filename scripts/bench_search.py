"""Benchmark `claimwatch search` over a synthetic passage archive (default 1,000,000 passages).

    python scripts/bench_search.py                      # 1,000,000 passages, 100 queries
    python scripts/bench_search.py --passages 100000 --queries 50 --keep /tmp/bench-search

Synthetic but shaped like real embeddings: the bundled MiniLM encodes the demo site's sentences and
the labelled passages (a few thousand real vectors); each synthetic passage is a random mix of two
of them plus noise, normalised — so the archive has the clustered, low-intrinsic-dimension
structure of real sentence embeddings (uniform random vectors would be a far harder, unrealistic
case). They are stored in a fresh SQLite archive (documents of 20 passages), the vector index is
built by ``rebuild_index`` (timed), then each query — a held-out real sentence's vector plus noise —
goes through ``search_archive`` (index lookup, exact re-scoring from the archived float16 vectors,
the documents' metadata from SQL): median and p95 latency after the index is loaded, and recall@10
against exact search (a dot product with every archived vector).
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

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.config import load_settings  # noqa: E402
from crawler.services.archive import index_directory, load_index, rebuild_index  # noqa: E402
from crawler.services.search import search_archive  # noqa: E402
from db.migrate import upgrade_database  # noqa: E402
from db.models import Document, PassageVector  # noqa: E402
from db.session import make_engine, make_sessionmaker, session_scope  # noqa: E402
from pipelines.vector_index import from_bytes, to_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PER_DOCUMENT = 20
MODEL_KEY = "bench@synthetic"


def real_sentences(articles: Path) -> list[str]:
    from pipelines.segment import split_sentences

    data = yaml.safe_load(articles.read_text(encoding="utf-8"))
    sentences = [s.text for a in data["articles"] for s in split_sentences(a["body"])]
    for name in ("seed_dev.jsonl", "seed_test.jsonl"):
        for line in (ROOT / "crawler" / "data" / "labelled" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                sentences.append(json.loads(line)["passage"])
    return list(dict.fromkeys(sentences))


class QueryEncoder:
    """Hands search_archive the prepared query vector (the benchmark times search, not encoding)."""

    model_name, revision, languages = "bench", "synthetic", None

    def __init__(self) -> None:
        self.vector = np.zeros(0, dtype=np.float32)

    def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
        return self.vector[None, :]


def synthesise(base: np.ndarray, count: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    first = base[rng.integers(0, len(base), count)]
    second = base[rng.integers(0, len(base), count)]
    weight = rng.uniform(0.5, 1.0, (count, 1)).astype(np.float32)
    mixed = weight * first + (1 - weight) * second
    mixed += noise * rng.standard_normal(mixed.shape).astype(np.float32) / np.sqrt(base.shape[1])
    return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)


def fill(url: str, base: np.ndarray, passages: int, rng: np.random.Generator, noise: float) -> float:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    started = time.monotonic()
    text = " ".join(f"Synthetic passage number {i:02d} of this document." for i in range(PER_DOCUMENT))
    offsets = []
    position = 0
    for i in range(PER_DOCUMENT):
        sentence = f"Synthetic passage number {i:02d} of this document."
        offsets.append((position, position + len(sentence)))
        position += len(sentence) + 1
    chunk = 50_000
    for start in range(0, passages, chunk):
        count = min(chunk, passages - start)
        vectors = to_bytes(synthesise(base, count, rng, noise))
        first_doc = start // PER_DOCUMENT
        documents = [
            {
                "id": first_doc + d + 1,
                "url": f"https://bench.example/{first_doc + d}",
                "status": "ok",
                "match_status": "matched",
                "language": ("en", "ru", "az")[(first_doc + d) % 3],
                "outlet": f"outlet-{(first_doc + d) % 40}",
                "title": f"Document {first_doc + d}",
                "text": text,
            }
            for d in range(count // PER_DOCUMENT)
        ]
        rows = [
            {
                "document_id": (start + k) // PER_DOCUMENT + 1,
                "model_key": MODEL_KEY,
                "passage_start": offsets[(start + k) % PER_DOCUMENT][0],
                "passage_end": offsets[(start + k) % PER_DOCUMENT][1],
                "whole": False,
                "language": ("en", "ru", "az")[((start + k) // PER_DOCUMENT) % 3],
                "vector": vectors[k],
            }
            for k in range(count)
        ]
        with session_scope(sessions) as session:
            session.execute(Document.__table__.insert(), documents)
            session.execute(PassageVector.__table__.insert(), rows)
        print(f"  stored {start + count:,} passages", file=sys.stderr, flush=True)
    engine.dispose()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--noise", type=float, default=0.6, help="norm of the noise added to each mix")
    parser.add_argument("--keep", type=Path, help="directory to keep the database and index in")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: use the archive already filled there (same --passages)",
    )
    parser.add_argument(
        "--candidates",
        default="400",
        help="comma-separated candidate counts taken from the index per query (one result row each)",
    )
    parser.add_argument(
        "--articles",
        type=Path,
        default=ROOT / "crawler" / "demo" / "articles.yaml",
        help="demo articles file giving the real sentences (with --reuse: the one the archive was filled "
        "from, so that the held-out query sentences are the same and were never mixed into passages)",
    )
    args = parser.parse_args()
    from pipelines.embed import load_encoder

    rng = np.random.default_rng(13)
    sentences = real_sentences(args.articles)
    encoder = load_encoder()
    vectors = encoder.encode(sentences)
    order = rng.permutation(len(sentences))
    held_out = vectors[order[: args.queries]]
    base = vectors[order[args.queries :]]
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-search-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'archive.db'}"
    print(f"{len(sentences)} real sentences; archive in {workdir}", file=sys.stderr)
    if args.reuse and (workdir / "archive.db").exists():
        fill_seconds = 0.0
    else:
        upgrade_database(url)
        fill_seconds = fill(url, base, args.passages, rng, args.noise)
    settings = dataclasses.replace(load_settings(environ={}), database_url=url, archive_index_dir="")
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    build_seconds = None
    if not (args.reuse and any(index_directory(settings).glob("*.usearch"))):
        (report,) = rebuild_index(settings, sessions)
        build_seconds = round(report.seconds, 1)
    started = time.perf_counter()
    indexes = {MODEL_KEY: load_index(settings, sessions, MODEL_KEY)}
    load_seconds = time.perf_counter() - started
    # exact search below: every archived vector, float32, in chunks
    queries = held_out + args.noise * 0.5 * rng.standard_normal(held_out.shape).astype(np.float32) / np.sqrt(
        held_out.shape[1]
    )
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact_scores = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    exact_ids = np.zeros((len(queries), 10), dtype=np.int64)
    with sessions() as session:
        last = 0
        while True:
            rows = session.execute(
                PassageVector.__table__.select()
                .with_only_columns(PassageVector.id, PassageVector.vector)
                .where(PassageVector.id > last)
                .order_by(PassageVector.id)
                .limit(100_000)
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            block = from_bytes([r[1] for r in rows])
            block_ids = np.array([r[0] for r in rows])
            scores = queries @ block.T
            merged = np.concatenate([exact_scores, scores], axis=1)
            merged_ids = np.concatenate([exact_ids, np.broadcast_to(block_ids, scores.shape)], axis=1)
            top = np.argsort(-merged, axis=1)[:, :10]
            exact_scores = np.take_along_axis(merged, top, axis=1)
            exact_ids = np.take_along_axis(merged_ids, top, axis=1)
    query_encoder = QueryEncoder()
    query_encoder.vector = queries[0]
    search_archive(
        settings, sessions, "warm-up", limit=10, encoders={MODEL_KEY: query_encoder}, indexes=indexes
    )
    # search_archive hands passage rows back; map them to archive ids by (document, start)
    with sessions() as session:
        id_of = {
            (d, s): i
            for i, d, s in session.execute(
                PassageVector.__table__.select().with_only_columns(
                    PassageVector.id, PassageVector.document_id, PassageVector.passage_start
                )
            )
        }
    index_files = sorted(index_directory(settings).glob("*"))
    result: dict[str, object] = {
        "passages": args.passages,
        "queries": len(queries),
        "fill_seconds": round(fill_seconds, 1),
        "index_build_seconds": build_seconds,
        "index_load_seconds": round(load_seconds, 1),
        "index_bytes": sum(f.stat().st_size for f in index_files),
        "database_bytes": (workdir / "archive.db").stat().st_size,
        "vector_bytes_per_passage": len(to_bytes(queries[:1])[0]),
        "index_vectors": len(indexes[MODEL_KEY]),
        "runs": [],
    }
    for candidates in [int(c) for c in args.candidates.split(",")]:
        timings, recalls = [], []
        for row, query in enumerate(queries):
            query_encoder.vector = query
            started = time.perf_counter()
            hits = search_archive(
                settings,
                sessions,
                "query",
                limit=10,
                encoders={MODEL_KEY: query_encoder},
                indexes=indexes,
                candidates=candidates,
            )
            timings.append(time.perf_counter() - started)
            found = {id_of[(h.document_id, h.start)] for h in hits}
            recalls.append(len(found & set(exact_ids[row].tolist())) / 10)
        run = {
            "candidates": candidates,
            "median_ms": round(1000 * statistics.median(timings), 1),
            "p95_ms": round(1000 * sorted(timings)[int(0.95 * len(timings)) - 1], 1),
            "recall_at_10": round(float(np.mean(recalls)), 4),
        }
        print(json.dumps(run), file=sys.stderr, flush=True)
        result["runs"].append(run)  # type: ignore[union-attr]
    print(json.dumps(result))
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
