"""Choosing and checking a model's match threshold on labelled passages.

A labelled passage either restates one claim (``claim_id``) or restates none (hard negatives on the
same topic, claim-free news on the topic, off-topic news). At threshold ``t`` the matcher predicts,
for each passage, its best-scoring claim if that score is ``>= t`` and nothing otherwise:

* a prediction is a true positive when it names the passage's claim, else a false positive;
* a restating passage without a correct prediction is a false negative.

The default threshold is the highest one whose F1 on the development set is within ``tolerance``
(0.01) of the best F1: where the F1 curve is flat, fewer false alerts win. The held-out test set
reports what to expect.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledPassage:
    passage: str
    claim_id: str | None
    language: str
    kind: str


@dataclass(frozen=True)
class ThresholdScore:
    threshold: float
    precision: float
    recall: float
    f1: float
    predicted: int
    positives: int


def load_labelled(path: Path | str, languages: Iterable[str] | None = None) -> list[LabelledPassage]:
    wanted = set(languages) if languages is not None else None
    items = []
    with Path(path).open(encoding="utf-8") as stream:
        for line in stream:
            if not line.strip():
                continue
            record = json.loads(line)
            item = LabelledPassage(
                record["passage"], record.get("claim_id"), record.get("language", "en"), record["kind"]
            )
            if wanted is None or item.language in wanted:
                items.append(item)
    return items


def score_threshold(
    best_claims: Sequence[str], best_scores: np.ndarray, gold: Sequence[str | None], threshold: float
) -> ThresholdScore:
    cutoffs = np.full(len(best_claims), float(threshold))
    return dataclasses.replace(
        score_at(best_claims, best_scores, gold, cutoffs), threshold=round(threshold, 3)
    )


def score_at(
    claims: Sequence[str], scores: np.ndarray, gold: Sequence[str | None], cutoffs: np.ndarray
) -> ThresholdScore:
    """Precision, recall and F1 with a threshold per text (reported threshold: their median)."""
    predicted = scores >= cutoffs
    correct = np.array([claim == truth for claim, truth in zip(claims, gold, strict=True)], dtype=bool)
    true_positives = int(np.sum(predicted & correct))
    predictions = int(np.sum(predicted))
    positives = sum(1 for truth in gold if truth is not None)
    precision = true_positives / predictions if predictions else 1.0
    recall = true_positives / positives if positives else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    finite = cutoffs[np.isfinite(cutoffs)]
    middle = float(np.median(finite)) if finite.size else 0.0
    return ThresholdScore(round(middle, 3), precision, recall, f1, predictions, positives)


def best_matches(scores: np.ndarray, claim_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Best claim and its score for each row of a passages × claims score matrix."""
    columns = scores.argmax(axis=1)
    return [claim_ids[c] for c in columns], scores[np.arange(len(scores)), columns]


def sweep(
    best_claims: Sequence[str],
    best_scores: np.ndarray,
    gold: Sequence[str | None],
    low: float = 0.3,
    high: float = 0.9,
    step: float = 0.01,
) -> list[ThresholdScore]:
    steps = int(round((high - low) / step)) + 1
    return [score_threshold(best_claims, best_scores, gold, low + i * step) for i in range(steps)]


def choose_threshold(results: Sequence[ThresholdScore], tolerance: float = 0.01) -> ThresholdScore:
    best = max(result.f1 for result in results)
    return max((r for r in results if r.f1 >= best - tolerance), key=lambda r: r.threshold)
