"""Per-claim thresholds fitted on reviewed verdicts (``claimwatch calibrate --from-reviews``).

Every reviewed match was stored, so it scored at or above the threshold in force; a verdict says
whether it was about its claim (``restates``, ``rebuts``, ``reports``) or ``wrong``. Raising a claim's
threshold to ``t`` keeps the reviewed matches scoring ``>= t``:

* precision at ``t``: correct among the kept ones;
* retained recall at ``t``: kept correct ones among all correct ones (the matches the default
  threshold found; what it missed, no review can show).

The fitted threshold is the highest whose F1 of those two is within ``tolerance`` of the best (as
pipelines/calibrate.py picks the default one); a claim with fewer than ``min_reviews`` reviews, or with
no ``wrong`` verdict, keeps the default. Held-out evaluation: every third reviewed match of each claim
(in match id order) is held out, thresholds are fitted on the others, and precision and retained recall
are compared on the held-out ones at the default and at the fitted threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TOLERANCE = 0.01
STEP_ABOVE = 1e-6  # a threshold just above a wrong match's score


@dataclass(frozen=True)
class Reviewed:
    match_id: int
    claim_id: int
    score: float
    correct: bool


@dataclass(frozen=True)
class ClaimFit:
    claim_id: int
    reviews: int
    threshold: float | None  # None: too few reviews (or none wrong): the default applies
    precision: float  # on the fitting reviews, at the threshold (or all of them)
    recall: float


@dataclass(frozen=True)
class HeldOut:
    reviews: int
    correct: int
    precision_default: float
    precision_fitted: float
    recall_fitted: float  # correct kept by the fitted thresholds / correct


def _scores(items: Sequence[Reviewed], threshold: float) -> tuple[float, float]:
    kept = [i for i in items if i.score >= threshold]
    correct = sum(i.correct for i in items)
    kept_correct = sum(i.correct for i in kept)
    precision = kept_correct / len(kept) if kept else 1.0
    recall = kept_correct / correct if correct else 1.0
    return precision, recall


def fit_claim(items: Sequence[Reviewed], min_reviews: int, tolerance: float = TOLERANCE) -> ClaimFit:
    """The threshold of one claim from its reviewed matches."""
    claim_id = items[0].claim_id if items else 0
    base_precision, _ = _scores(items, float("-inf"))
    if len(items) < min_reviews or all(i.correct for i in items):
        return ClaimFit(claim_id, len(items), None, base_precision, 1.0)
    if not any(i.correct for i in items):
        return ClaimFit(claim_id, len(items), max(i.score for i in items) + STEP_ABOVE, 1.0, 1.0)
    candidates = sorted({i.score for i in items})
    scored = []
    for threshold in candidates:
        precision, recall = _scores(items, threshold)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scored.append((threshold, precision, recall, f1))
    best = max(f1 for *_, f1 in scored)
    threshold, precision, recall, _ = max(s for s in scored if s[3] >= best - tolerance)
    if threshold == candidates[0]:
        return ClaimFit(claim_id, len(items), None, precision, recall)  # the default is as good
    return ClaimFit(claim_id, len(items), threshold, precision, recall)


def by_claim(items: Iterable[Reviewed]) -> dict[int, list[Reviewed]]:
    grouped: dict[int, list[Reviewed]] = {}
    for item in items:
        grouped.setdefault(item.claim_id, []).append(item)
    return grouped


def fit_thresholds(items: Iterable[Reviewed], min_reviews: int) -> dict[int, ClaimFit]:
    return {claim_id: fit_claim(group, min_reviews) for claim_id, group in sorted(by_claim(items).items())}


def split_held_out(items: Iterable[Reviewed]) -> tuple[list[Reviewed], list[Reviewed]]:
    """(fitting, held out): per claim, every third reviewed match by match id is held out."""
    fitting: list[Reviewed] = []
    held: list[Reviewed] = []
    for group in by_claim(items).values():
        for index, item in enumerate(sorted(group, key=lambda i: i.match_id)):
            (held if index % 3 == 2 else fitting).append(item)
    return fitting, held


def _threshold(fits: dict[int, ClaimFit], claim_id: int) -> float:
    fit = fits.get(claim_id)
    return float("-inf") if fit is None or fit.threshold is None else fit.threshold


def held_out_evaluation(items: Sequence[Reviewed], min_reviews: int) -> tuple[dict[int, ClaimFit], HeldOut]:
    """Fit on two thirds of the reviews, measure on the held-out third (``split_held_out``)."""
    fitting, held = split_held_out(items)
    fits = fit_thresholds(fitting, min_reviews)
    correct = sum(i.correct for i in held)
    kept = [i for i in held if i.score >= _threshold(fits, i.claim_id)]
    kept_correct = sum(i.correct for i in kept)
    return fits, HeldOut(
        reviews=len(held),
        correct=correct,
        precision_default=correct / len(held) if held else 0.0,
        precision_fitted=kept_correct / len(kept) if kept else 0.0,
        recall_fitted=kept_correct / correct if correct else 0.0,
    )
