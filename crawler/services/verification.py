"""Training the verifier (pipelines/verifier.py): ``claimwatch eval fit-verifier``.

Training rows come from labelled passages (JSONL lines ``{"passage", "claim_id": restated claim or
null, "language", "kind"}``): each passage is matched by the production matcher's first stage
(pipelines/matcher.py, no verifier), and each of its candidate claims becomes one row — its features,
labelled 1 when it is the passage's claim. Every file is used twice: with the claims as given
(translations, examples) and with the claims stripped to their own text, so that the verifier also
learns claims files that carry nothing but ``id`` and ``text``.

The logistic regression is fitted on all rows (deterministic gradient descent). Thresholds are chosen
on out-of-fold probabilities (``FOLDS`` folds of the passages, seeded shuffle): per language with at
least ``MIN_LANGUAGE_POSITIVES`` restating and ``MIN_LANGUAGE_NEGATIVES`` other passages, and one for
all others (the cross-validated scores of the other languages are reported at that one); each is
the highest whose F1 is within 0.01 of the best (pipelines/calibrate.py). Never train on a test split.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from crawler.config import Settings
from crawler.services.matching import build_matcher
from pipelines.calibrate import choose_threshold, score_threshold, sweep
from pipelines.claims import Claim, ClaimsFileError, iter_jsonl, read_text
from pipelines.encoding import EmbeddingCache
from pipelines.matcher import CANDIDATES, ClaimMatcher, guess_language
from pipelines.verifier import (
    VERIFIER_FILE,
    Verifier,
    fit_logistic,
    load_verifier,
    weights_version,
)

logger = logging.getLogger(__name__)

SEED = 12
FOLDS = 5
# a language gets its own threshold with at least this many restating and other passages
MIN_LANGUAGE_POSITIVES = 10
MIN_LANGUAGE_NEGATIVES = 20
L2 = 1.0
MATCH_BATCH = 64


@dataclass(frozen=True)
class TrainingPassage:
    text: str
    label: str | None
    language: str | None
    kind: str
    source: str


def read_training(path: Path, claim_ids: set[str]) -> list[TrainingPassage]:
    """The labelled passages of a JSONL file; labels must be ids of the claims file."""
    items = []
    for number, record in iter_jsonl(read_text(path).splitlines(), path):
        if not isinstance(record, dict):
            raise ClaimsFileError(f"{path}:{number}: expected a JSON object")
        text = record.get("passage", record.get("text"))
        if not isinstance(text, str) or not text.strip():
            raise ClaimsFileError(f"{path}:{number}: no `passage`")
        label = record.get("claim_id", record.get("label"))
        label = None if label is None else str(label)
        if label is not None and label not in claim_ids:
            raise ClaimsFileError(f"{path}:{number}: claim {label!r} is not in the claims file")
        language = record.get("language") or None
        items.append(TrainingPassage(text, label, language, str(record.get("kind") or ""), path.name))
    return items


def bare(claims: Sequence[Claim]) -> list[Claim]:
    """The claims with nothing but their own text (no translations, examples)."""
    return [Claim(c.id, c.text, c.paragraph, c.claim_set, {}) for c in claims]


@dataclass
class Rows:
    features: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    passage: list[int] = field(default_factory=list)  # index of the labelled passage (for folds)
    claims: list[str] = field(default_factory=list)

    def add(self, features: np.ndarray, label: int, passage: int, claim: str) -> None:
        self.features.append(features)
        self.labels.append(label)
        self.passage.append(passage)
        self.claims.append(claim)


def collect_rows(
    matcher: ClaimMatcher,
    items: Sequence[TrainingPassage],
    rows: Rows,
    offset: int,
    say: Callable[[str], None],
) -> None:
    """Add the candidates of each passage (its first stage, as matched in production) to ``rows``."""
    languages = [item.language or guess_language(item.text) for item in items]
    for start in range(0, len(items), MATCH_BATCH):
        batch = items[start : start + MATCH_BATCH]
        results = matcher.match(
            [item.text for item in batch],
            languages[start : start + MATCH_BATCH],
            top_k=CANDIDATES,
            keep_candidates=True,
        )
        for number, (item, result) in enumerate(zip(batch, results, strict=True)):
            for candidate in result.candidates:
                claim = matcher.claims[candidate.column].id
                rows.add(candidate.features, int(claim == item.label), offset + start + number, claim)
        say(f"  {min(start + MATCH_BATCH, len(items))}/{len(items)} passages")


def predictions(probabilities: np.ndarray, rows: Rows, passages: int) -> tuple[list[str], np.ndarray]:
    """Each passage's best claim by probability and that probability (-1 when it had no candidate)."""
    best_claim = [""] * passages
    best = np.full(passages, -1.0)
    for p, passage, claim in zip(probabilities, rows.passage, rows.claims, strict=True):
        if p > best[passage]:
            best[passage], best_claim[passage] = float(p), claim
    return best_claim, best


@dataclass
class VerifierFit:
    verifier: Verifier
    rows: int
    passages: int
    cross_validated: dict[str, dict[str, float]]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@dataclass
class TrainingSet:
    """Candidate rows of labelled passages (each passage twice: claims as given, then bare)."""

    x: np.ndarray
    y: np.ndarray
    rows: Rows
    gold: list[str | None]  # per passage
    languages: list[str]  # per passage
    sources: list[str]  # per passage: the file it comes from
    routes: list[str]

    @property
    def passages(self) -> int:
        return len(self.gold)


def training_set(
    settings: Settings,
    claims: Sequence[Claim],
    paths: Sequence[Path],
    cache: EmbeddingCache | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainingSet:
    """The candidate rows of the labelled passages of ``paths`` (never a test split)."""
    say = progress or (lambda message: None)
    if any("test" in path.name for path in paths):
        raise ClaimsFileError("the verifier is never trained on a test split")
    claim_ids = {claim.id for claim in claims}
    items: list[TrainingPassage] = []
    for path in paths:
        items += read_training(path, claim_ids)
    if not items:
        raise ClaimsFileError("no labelled passages to train on")
    languages = [item.language or guess_language(item.text) for item in items]
    rows = Rows()
    full = build_matcher(settings, claims, cache, languages=languages, verifier=False, threshold=-1.0)
    full.passage_cache = cache
    say(f"{len(items)} passages, claims as given")
    collect_rows(full, items, rows, 0, say)
    stripped = ClaimMatcher(bare(claims), verifier=None, threshold=-1.0, passage_cache=cache)
    for route in full.routes:
        stripped.add_route(route.encoder, cache, route.index.fusion)
    say(f"{len(items)} passages, claims stripped to their text")
    collect_rows(stripped, items, rows, len(items), say)
    return TrainingSet(
        x=np.vstack(rows.features),
        y=np.asarray(rows.labels),
        rows=rows,
        gold=[item.label for item in items] * 2,
        languages=[(item.language or languages[n] or "und") for n, item in enumerate(items)] * 2,
        sources=[item.source for item in items] * 2,
        routes=[route.encoder.model_name for route in full.routes],
    )


def row_weights(data: TrainingSet, real_weight: float) -> np.ndarray:
    """``real_weight`` for the rows of passages from files other than the seed's written passages."""
    return np.array([1.0 if data.sources[p].startswith("seed") else real_weight for p in data.rows.passage])


def out_of_fold(
    data: TrainingSet, l2: float = L2, columns: Sequence[int] | None = None, real_weight: float = 1.0
) -> np.ndarray:
    """Each row's probability from a model trained without its passage's fold (both copies of a
    passage share a fold)."""
    half = data.passages // 2
    order = list(range(half))
    random.Random(SEED).shuffle(order)
    fold_of = {passage: n % FOLDS for n, passage in enumerate(order)}
    fold = np.array([fold_of[p % half] for p in data.rows.passage])
    x = data.x if columns is None else data.x[:, list(columns)]
    held_out = np.zeros(len(data.y))
    weights = row_weights(data, real_weight)
    for k in range(FOLDS):
        train = fold != k
        w, b, mean, scale = fit_logistic(x[train], data.y[train], l2=l2, row_weight=weights[train])
        z = ((x[~train] - mean) / scale) @ w + b
        held_out[~train] = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
    return held_out


def choose(claims_of: list[str], scores: np.ndarray, gold: list[str | None], members: list[int]) -> Any:
    return choose_threshold(
        sweep(
            [claims_of[n] for n in members],
            scores[members],
            [gold[n] for n in members],
            low=0.05,
            high=0.95,
            step=0.01,
        )
    )


def score_at_threshold(
    claims_of: list[str], scores: np.ndarray, gold: list[str | None], members: list[int], chosen: Any
) -> Any:
    return score_threshold(
        [claims_of[n] for n in members], scores[members], [gold[n] for n in members], chosen.threshold
    )


def fit_verifier(
    settings: Settings,
    claims: Sequence[Claim],
    paths: Sequence[Path],
    cache: EmbeddingCache | None = None,
    progress: Callable[[str], None] | None = None,
) -> VerifierFit:
    """Train the verifier on labelled passage files (never a test split): see the module docstring."""
    data = training_set(settings, claims, paths, cache, progress)
    claims_of, scores = predictions(out_of_fold(data), data.rows, data.passages)
    everything = choose(claims_of, scores, data.gold, list(range(data.passages)))
    by_language: dict[str, float] = {}
    cross: dict[str, dict[str, float]] = {"all": score_dict(everything)}
    for language in sorted(set(data.languages)):
        members = [n for n in range(data.passages) if data.languages[n] == language]
        first = members[: len(members) // 2]  # each passage once
        positives = sum(data.gold[n] is not None for n in first)
        if positives < MIN_LANGUAGE_POSITIVES or len(first) - positives < MIN_LANGUAGE_NEGATIVES:
            cross[language] = score_dict(
                score_at_threshold(claims_of, scores, data.gold, members, everything)
            )
            continue
        chosen = choose(claims_of, scores, data.gold, members)
        cross[language] = score_dict(chosen)
        if chosen.threshold != everything.threshold:
            by_language[language] = chosen.threshold
    w, b, mean, scale = fit_logistic(data.x, data.y, l2=L2)
    trained_on = {
        "files": [[path.name, file_digest(path)] for path in paths],  # in training order
        "passages": data.passages // 2,
        "rows": int(len(data.y)),
        "positives": int(data.y.sum()),
        "seed": SEED,
        "folds": FOLDS,
        "l2": L2,
        "fitted": date.today().isoformat(),
        "routes": data.routes,
    }
    verifier = Verifier(
        weights=w,
        bias=float(b),
        mean=mean,
        scale=scale,
        threshold=everything.threshold,
        language_thresholds=by_language,
        version=weights_version(w, b, mean, scale),
        trained_on=trained_on,
    )
    return VerifierFit(verifier, int(len(data.y)), data.passages // 2, cross)


def score_dict(score: Any) -> dict[str, float]:
    return {
        "threshold": score.threshold,
        "precision": round(score.precision, 4),
        "recall": round(score.recall, 4),
        "f1": round(score.f1, 4),
    }


def write_verifier(fit: VerifierFit, path: Path = VERIFIER_FILE) -> None:
    data = fit.verifier.as_dict()
    data["cross_validated"] = fit.cross_validated
    data["about"] = (
        "The matcher's second stage (pipelines/verifier.py): logistic regression weights and thresholds, "
        "written by `claimwatch eval fit-verifier --write`."
    )
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    load_verifier.cache_clear()
