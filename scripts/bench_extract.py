"""Score our article extraction against trafilatura's defaults on the article-extraction-benchmark.

    python scripts/bench_extract.py                      # ../shared/corpora/article-extraction-benchmark
    python scripts/bench_extract.py /path/to/article-extraction-benchmark

A relative path is taken from the repository root. "defaults" is ``trafilatura.bare_extraction``
with its default options except ``include_comments=False``; "claimwatch" is
``pipelines.extract.extract_article`` (tuned options, metadata, language). The data is read in
place, never copied. Not a test: a measurement (the floors live in ``tests/test_extract.py``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import trafilatura  # noqa: E402

from pipelines.extract import extract_article  # noqa: E402
from pipelines.extraction_metric import BenchmarkPage, ExtractionScore, iter_benchmark, score_corpus  # noqa: E402

logger = logging.getLogger("bench_extract")

DEFAULT_BENCHMARK = Path("../shared/corpora/article-extraction-benchmark")


def claimwatch_text(page: BenchmarkPage) -> str:
    article = extract_article(page.html, page.url or None)
    return article.text if article is not None else ""


def trafilatura_default_text(page: BenchmarkPage) -> str:
    document = trafilatura.bare_extraction(page.html, url=page.url or None, include_comments=False)
    return (document.text or "") if document is not None else ""


def run(
    pages: Sequence[BenchmarkPage], extractor: Callable[[BenchmarkPage], str]
) -> tuple[ExtractionScore, float]:
    started = time.perf_counter()
    predictions = [extractor(page) for page in pages]
    elapsed = time.perf_counter() - started
    return score_corpus(zip((page.body for page in pages), predictions, strict=True)), elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score article extraction on the benchmark.")
    parser.add_argument("benchmark", nargs="?", type=Path, default=DEFAULT_BENCHMARK)
    args = parser.parse_args(argv)
    root = args.benchmark if args.benchmark.is_absolute() else REPO_ROOT / args.benchmark
    if not (root / "ground-truth.json").is_file():
        parser.error(f"no article-extraction-benchmark at {root}")
    # trafilatura logs every page it discards; the scores are what matters here.
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    pages = list(iter_benchmark(root))
    print(f"trafilatura {trafilatura.__version__}, {len(pages)} pages from {root.resolve()}")
    print(f"{'extractor':<22}{'F1':>8}{'precision':>11}{'recall':>8}{'accuracy':>10}{'seconds':>9}")
    for name, extractor in (
        ("trafilatura defaults", trafilatura_default_text),
        ("claimwatch", claimwatch_text),
    ):
        score, elapsed = run(pages, extractor)
        print(
            f"{name:<22}{score.f1:>8.3f}{score.precision:>11.3f}{score.recall:>8.3f}"
            f"{score.accuracy:>10.3f}{elapsed:>9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
