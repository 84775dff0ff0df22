"""Measuring the matcher: CLEF CheckThat! 2A retrieval, labelled passages, and threshold calibration.

Used by the ``claimwatch eval`` and ``claimwatch calibrate`` commands (crawler/cli_eval.py).

* ``evaluate_checkthat`` ranks the vclaims of a CheckThat! split for every tweet with the production
  matcher (``ClaimIndex`` + ``match_texts``: sentences and two-sentence windows, best passage per
  claim) and scores the ranking with the official metrics (pipelines/retrieval_metrics.py).
* ``evaluate_labels`` reports precision/recall/F1 of the best match of labelled texts at a threshold.
* ``calibrate_model`` chooses a model's default threshold on the labelled seed passages (see
  pipelines/calibrate.py) and ``write_calibration`` stores it in pipelines/thresholds.json.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from crawler.matching import CountingEncoder
from pipelines.calibrate import (
    LabelledPassage,
    ThresholdScore,
    best_matches,
    choose_threshold,
    load_labelled,
    score_threshold,
    sweep,
)
from pipelines.checkthat import CheckThatSplit
from pipelines.claims import Claim, ClaimsFileError, iter_jsonl, read_text
from pipelines.embed import EmbeddingCache, Encoder
from pipelines.match import THRESHOLDS_FILE, ClaimIndex, load_thresholds, match_texts
from pipelines.retrieval_metrics import mean_average_precision, mean_reciprocal_rank

logger = logging.getLogger(__name__)

LABELLED_DIR = Path(__file__).resolve().parent / "data" / "labelled"
# Candidates kept per query: MRR and MAP@k (k <= depth) are computed over this many.
MIN_DEPTH = 20
MATCH_BATCH = 256
UNKNOWN_LANGUAGE = "und"


# --- CheckThat! 2A -------------------------------------------------------------------------------


@dataclass
class CheckThatReport:
    edition: str
    split: str
    model: str
    revision: str
    with_title: bool
    k: int
    depth: int
    metrics: dict[str, float]
    queries: int
    claims: int
    claims_encoded: int
    texts_encoded: int
    encode_seconds: float
    seconds: float

    @property
    def encodes_per_second(self) -> float:
        return self.texts_encoded / self.encode_seconds if self.encode_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        metrics = data.pop("metrics")
        return {
            **{
                key: data[key]
                for key in ("edition", "split", "model", "revision", "with_title", "k", "depth")
            },
            **{name: round(value, 4) for name, value in metrics.items()},
            "queries": self.queries,
            "claims": self.claims,
            "claims_encoded": self.claims_encoded,
            "texts_encoded": self.texts_encoded,
            "seconds": round(self.seconds, 2),
            "encode_seconds": round(self.encode_seconds, 2),
            "encodes_per_second": round(self.encodes_per_second, 1),
        }


def claim_for_matching(claim: Claim, with_title: bool) -> Claim:
    title = str(claim.extra.get("title") or "").strip()
    if not with_title or not title:
        return claim
    return Claim(claim.id, f"{claim.text} {title}", claim.paragraph, claim.claim_set, claim.extra)


def subset(
    queries: list[tuple[str, str]],
    qrels: dict[str, set[str]],
    vclaims: list[Claim],
    limit_queries: int | None,
    limit_claims: int | None,
) -> tuple[list[tuple[str, str]], dict[str, set[str]], list[Claim]]:
    """The first ``limit_queries`` queries; their relevant vclaims plus random (seeded) distractors up
    to ``limit_claims`` vclaims in all (never fewer than the relevant ones)."""
    if limit_queries is not None:
        queries = queries[:limit_queries]
        kept = {ident for ident, _ in queries}
        qrels = {query: relevant for query, relevant in qrels.items() if query in kept}
    if limit_claims is not None and limit_claims < len(vclaims):
        relevant = {v for ids in qrels.values() for v in ids}
        others = [claim.id for claim in vclaims if claim.id not in relevant]
        chosen = relevant | set(
            random.Random(0).sample(others, max(0, min(len(others), limit_claims - len(relevant))))
        )
        vclaims = [claim for claim in vclaims if claim.id in chosen]
    return queries, qrels, vclaims


def evaluate_checkthat(
    encoder: Encoder,
    data: CheckThatSplit,
    cache: EmbeddingCache | None = None,
    with_title: bool = False,
    k: int = 5,
    limit_queries: int | None = None,
    limit_claims: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckThatReport:
    """Rank the split's vclaims for each tweet with the matcher; MAP@1, MAP@k and MRR of the ranking.

    Only claim vectors go through ``cache``; tweets are encoded on every run. ``progress`` (optional)
    is called with one-line status messages."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    edition, split = data.edition, data.split
    queries, qrels, vclaims = subset(data.queries, data.qrels, data.vclaims, limit_queries, limit_claims)
    counting = CountingEncoder(encoder)
    say(f"CheckThat! {edition} {split}: {len(queries)} tweets, {len(vclaims)} vclaims; embedding the vclaims")
    index = ClaimIndex.build(counting, [claim_for_matching(c, with_title) for c in vclaims], cache=cache)
    claims_encoded = counting.encoded
    say(f"{claims_encoded} vclaims encoded ({len(vclaims) - claims_encoded} from the cache); matching")
    depth = max(MIN_DEPTH, k)
    runs: dict[str, list[tuple[str, float]]] = {}
    for start in range(0, len(queries), MATCH_BATCH):
        batch = queries[start : start + MATCH_BATCH]
        results = match_texts(counting, index, [text for _, text in batch], threshold=-1, top_k=depth)
        for (ident, _), matches in zip(batch, results, strict=True):
            runs[ident] = [(m.claim_id, m.score) for m in matches]
    metrics = {
        "map@1": mean_average_precision(runs, qrels, 1),
        f"map@{k}": mean_average_precision(runs, qrels, k),
        "mrr": mean_reciprocal_rank(runs, qrels),
    }
    return CheckThatReport(
        edition=edition,
        split=split,
        model=encoder.model_name,
        revision=encoder.revision,
        with_title=with_title,
        k=k,
        depth=depth,
        metrics=metrics,
        queries=len(queries),
        claims=len(vclaims),
        claims_encoded=claims_encoded,
        texts_encoded=counting.encoded,
        encode_seconds=counting.seconds,
        seconds=time.perf_counter() - started,
    )


# --- labelled texts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledText:
    id: str
    text: str
    label: str | None
    language: str


def read_labels(path: Path, claim_ids: set[str]) -> list[LabelledText]:
    """JSONL lines ``{"id", "text", "label", "language"?}`` (label: a claim id or null). The seed
    format ``{"passage", "claim_id", "language"}`` is accepted too (id = line number)."""
    items = []
    for number, record in iter_jsonl(read_text(path).splitlines(), path):
        where = f"{path}:{number}"
        if not isinstance(record, dict):
            raise ClaimsFileError(f'{where}: expected {{"id": ..., "text": "...", "label": ...}}')
        text = record.get("text", record.get("passage"))
        if not isinstance(text, str):
            raise ClaimsFileError(f'{where}: expected {{"id": ..., "text": "...", "label": ...}}')
        if "label" not in record and "claim_id" not in record:
            raise ClaimsFileError(f"{where}: no `label` (a claim id, or null for no claim)")
        label = record.get("label", record.get("claim_id"))
        if label is not None:
            label = str(label)
            if label not in claim_ids:
                raise ClaimsFileError(f"{where}: label {label!r} is not a claim id of the claims file")
        language = record.get("language") or UNKNOWN_LANGUAGE
        if not isinstance(language, str):
            raise ClaimsFileError(f"{where}: `language` must be a string")
        items.append(LabelledText(str(record.get("id", number)), text, label, language.strip().lower()))
    if not items:
        raise ClaimsFileError(f"{path}: no labelled texts")
    return items


@dataclass
class LabelsReport:
    model: str
    threshold: float
    languages: dict[str, ThresholdScore]  # "all" first, then each language
    items: dict[str, int]
    covered: frozenset[str] | None
    sweep: list[ThresholdScore] = field(default_factory=list)
    sweep_languages: list[str] | None = None  # None: all texts

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "threshold": self.threshold,
            "languages": {
                name: {**asdict(score), "items": self.items[name], "covered": self.is_covered(name)}
                for name, score in self.languages.items()
            },
            "sweep": [asdict(score) for score in self.sweep],
            "sweep_languages": self.sweep_languages,
        }

    def is_covered(self, language: str) -> bool:
        return self.covered is None or language == "all" or language in self.covered


def best_claims_of(encoder: Encoder, index: ClaimIndex, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Best claim and score of each text with the production matcher (passages, best one per claim)."""
    claims: list[str] = []
    scores: list[float] = []
    for start in range(0, len(texts), MATCH_BATCH):
        for matches in match_texts(encoder, index, texts[start : start + MATCH_BATCH], threshold=-1, top_k=1):
            claims.append(matches[0].claim_id if matches else "")
            scores.append(matches[0].score if matches else -2.0)
    return claims, np.array(scores, dtype=np.float64)


def evaluate_labels(
    encoder: Encoder, index: ClaimIndex, items: Sequence[LabelledText], threshold: float
) -> LabelsReport:
    claims, scores = best_claims_of(encoder, index, [item.text for item in items])
    gold = [item.label for item in items]
    groups: dict[str, list[int]] = {"all": list(range(len(items)))}
    for number, item in enumerate(items):
        groups.setdefault(item.language, []).append(number)
    by_language = {}
    for name, rows in groups.items():
        by_language[name] = score_threshold(
            [claims[r] for r in rows], scores[rows], [gold[r] for r in rows], threshold
        )
    # the sweep only counts texts the model can score, when it declares its languages and has some
    covered = encoder.languages
    swept = [r for r in groups["all"] if covered is None or items[r].language in covered] or groups["all"]
    sweep_languages = None if len(swept) == len(items) else sorted(covered or ())
    return LabelsReport(
        model=encoder.model_name,
        threshold=threshold,
        languages=by_language,
        items={name: len(rows) for name, rows in groups.items()},
        covered=covered,
        sweep=sweep(
            [claims[r] for r in swept], scores[swept], [gold[r] for r in swept], low=0.3, high=0.9, step=0.05
        ),
        sweep_languages=sweep_languages,
    )


# --- calibration ---------------------------------------------------------------------------------


@dataclass
class Calibration:
    model: str
    revision: str
    languages: list[str] | None
    dev_passages: int
    test_passages: int
    chosen: ThresholdScore
    held_out: ThresholdScore


def read_labelled(path: Path, languages: list[str] | None, claim_ids: set[str]) -> list[LabelledPassage]:
    """The labelled passages of a calibration file in ``languages``; one-line errors for bad files."""
    try:
        items = load_labelled(path, languages)
    except FileNotFoundError:
        raise ClaimsFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClaimsFileError(f"{path}: cannot read: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ClaimsFileError(
            f'{path}: expected JSONL lines {{"passage", "claim_id", "language", "kind"}} ({detail})'
        ) from None
    if not items:
        raise ClaimsFileError(f"{path}: no labelled passages in the model's languages ({languages or 'all'})")
    unknown = sorted({item.claim_id for item in items if item.claim_id is not None} - claim_ids)
    if unknown:
        raise ClaimsFileError(f"{path}: claim ids not in the claims file: {', '.join(unknown[:5])}")
    return items


def best_of_passages(
    encoder: Encoder, index: ClaimIndex, items: Sequence[LabelledPassage]
) -> tuple[list[str], np.ndarray, list[str | None]]:
    """Best claim and score of each whole passage (as calibrated: no sentence splitting), and gold."""
    vectors = encoder.encode([item.passage for item in items])
    claims, scores = best_matches(vectors @ index.vectors.T, [c.id for c in index.claims])
    return claims, scores, [item.claim_id for item in items]


def calibrate_model(encoder: Encoder, claims: Sequence[Claim], dev: Path, test: Path) -> Calibration:
    """Choose the threshold on ``dev`` (best F1 within tolerance, highest threshold) and report it on
    ``test``; only passages in the model's languages count."""
    index = ClaimIndex.build(encoder, claims)
    languages = sorted(encoder.languages) if encoder.languages else None
    claim_ids = {claim.id for claim in claims}
    dev_items = read_labelled(dev, languages, claim_ids)
    test_items = read_labelled(test, languages, claim_ids)
    chosen = choose_threshold(sweep(*best_of_passages(encoder, index, dev_items)))
    held_out = score_threshold(*best_of_passages(encoder, index, test_items), chosen.threshold)
    return Calibration(
        encoder.model_name, encoder.revision, languages, len(dev_items), len(test_items), chosen, held_out
    )


def write_calibration(result: Calibration, path: Path = THRESHOLDS_FILE) -> None:
    """Store the chosen threshold in the thresholds file read by ``default_threshold()``."""
    try:
        table = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError as exc:
        raise ClaimsFileError(f"{path}: not valid JSON: {exc}") from None
    table.setdefault("models", {})[result.model] = {
        "threshold": result.chosen.threshold,
        "revision": result.revision,
        "languages": result.languages,
        "dev_f1": round(result.chosen.f1, 4),
        "test_precision": round(result.held_out.precision, 4),
        "test_recall": round(result.held_out.recall, 4),
        "test_f1": round(result.held_out.f1, 4),
        "calibrated_on": date.today().isoformat(),
    }
    table["about"] = "Default match thresholds per model, chosen by `claimwatch calibrate`."
    path.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    load_thresholds.cache_clear()  # default_threshold() reads the new value
