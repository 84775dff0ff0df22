"""The article-extraction-benchmark metric (Zyte / Scrapinghub), reimplemented from its description.

Texts become ``\\w+`` tokens (case kept); every 4 consecutive tokens form a shingle, counted as a
multiset. Per page the shingle overlap gives TP, surplus predicted shingles FP, missing true shingles
FN, normalised by their sum so that each page weighs the same. Corpus precision is the mean over
pages with a prediction, recall the mean over pages with a true body, F1 the harmonic mean of those
two means; accuracy is the share of pages whose token lists are equal.
``iter_benchmark`` reads the benchmark's files (``ground-truth.json`` and ``html/<id>.html.gz``).
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SHINGLE_SIZE = 4
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class ExtractionScore:
    precision: float
    recall: float
    f1: float
    accuracy: float
    pages: int


@dataclass(frozen=True)
class BenchmarkPage:
    item_id: str
    url: str
    html: str
    body: str


def iter_benchmark(root: Path) -> Iterator[BenchmarkPage]:
    """The pages of an article-extraction-benchmark checkout, in item id order."""
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    for item_id in sorted(truth):
        with gzip.open(root / "html" / f"{item_id}.html.gz") as handle:
            html = handle.read().decode("utf-8")
        yield BenchmarkPage(item_id, truth[item_id].get("url", ""), html, truth[item_id]["articleBody"])


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text or "")


def shingles(text: str, size: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    """Multiset of word ``size``-grams; a non-empty text shorter than ``size`` tokens gives one shingle."""
    tokens = tokenize(text)
    if not tokens:
        return Counter()
    return Counter(tuple(tokens[i : i + size]) for i in range(max(1, len(tokens) - size + 1)))


def page_counts(true: str, predicted: str) -> tuple[float, float, float]:
    """Normalised (TP, FP, FN) of one page; all zero when both texts are empty."""
    true_shingles = shingles(true)
    predicted_shingles = shingles(predicted)
    tp = fp = fn = 0
    for shingle in true_shingles.keys() | predicted_shingles.keys():
        t = true_shingles[shingle]
        p = predicted_shingles[shingle]
        tp += min(t, p)
        fp += max(0, p - t)
        fn += max(0, t - p)
    total = tp + fp + fn
    if total == 0:
        return 0.0, 0.0, 0.0
    return tp / total, fp / total, fn / total


def _page_precision_recall(tp: float, fp: float, fn: float) -> tuple[float, float]:
    if fp == 0 and fn == 0:
        return 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    return precision, recall


def score_corpus(pairs: Iterable[tuple[str, str]]) -> ExtractionScore:
    """Score (true body, predicted body) pairs, one per page."""
    precisions: list[float] = []
    recalls: list[float] = []
    exact = 0
    pages = 0
    for true, predicted in pairs:
        pages += 1
        tp, fp, fn = page_counts(true, predicted)
        precision, recall = _page_precision_recall(tp, fp, fn)
        if tp + fp > 0:
            precisions.append(precision)
        if tp + fn > 0:
            recalls.append(recall)
        exact += tokenize(true) == tokenize(predicted)
    mean_precision = sum(precisions) / len(precisions) if precisions else 0.0
    mean_recall = sum(recalls) / len(recalls) if recalls else 0.0
    denominator = mean_precision + mean_recall
    f1 = 2 * mean_precision * mean_recall / denominator if denominator else 0.0
    return ExtractionScore(
        precision=mean_precision,
        recall=mean_recall,
        f1=f1,
        accuracy=exact / pages if pages else 0.0,
        pages=pages,
    )
