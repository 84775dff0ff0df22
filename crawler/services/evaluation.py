"""Measuring the matcher: CLEF CheckThat! 2A retrieval, labelled passages, and threshold calibration.

Used by the ``claimwatch eval`` and ``claimwatch calibrate`` commands (crawler/cli/evaluation.py).

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

from crawler.services.matching import CountingEncoder
from pipelines.calibrate import (
    LabelledPassage,
    ThresholdScore,
    best_matches,
    choose_threshold,
    load_labelled,
    score_at,
    score_threshold,
    sweep,
)
from pipelines.checkthat import CheckThatSplit
from pipelines.claims import Claim, ClaimsFileError, iter_jsonl, read_text
from pipelines.encoding import EmbeddingCache, Encoder
from pipelines.match import (
    COSINE,
    FUSION_FILE,
    THRESHOLDS_FILE,
    ClaimIndex,
    Fusion,
    default_fusion,
    load_fusions,
    load_thresholds,
    match_texts,
    text_passages,
)
from pipelines.matcher import ClaimMatcher, guess_language
from pipelines.retrieval_metrics import mean_average_precision, mean_reciprocal_rank

logger = logging.getLogger(__name__)

LABELLED_DIR = Path(__file__).resolve().parents[1] / "data" / "labelled"
# Candidates kept per query: MRR and MAP@k (k <= depth) are computed over this many.
MIN_DEPTH = 20
MATCH_BATCH = 256
UNKNOWN_LANGUAGE = "und"
# A language gets its own threshold when its dev set has at least this many restating passages.
MIN_LANGUAGE_POSITIVES = 10
# --scoring of `eval checkthat`: the components a score is made of.
SCORINGS = ("hybrid", "cosine", "context", "lexical")
# Candidates per query and component kept while fitting fusion weights.
FIT_DEPTH = 50
FIT_CONTEXT_WEIGHTS = tuple(round(0.1 * n, 2) for n in range(11))
FIT_LEXICAL_WEIGHTS = tuple(round(0.1 * n, 2) for n in range(16))


# --- CheckThat! 2A -------------------------------------------------------------------------------


@dataclass
class CheckThatReport:
    edition: str
    split: str
    model: str
    revision: str
    with_title: bool
    scoring: str
    fusion: dict[str, float]
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
                for key in (
                    "edition",
                    "split",
                    "model",
                    "revision",
                    "with_title",
                    "scoring",
                    "fusion",
                    "k",
                    "depth",
                )
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


def scoring_fusion(scoring: str, model: str) -> Fusion:
    """The fusion weights of a --scoring choice: the model's fitted ones, or one component alone."""
    if scoring == "hybrid":
        return default_fusion(model)
    if scoring == "cosine":
        return COSINE
    if scoring == "context":
        return Fusion(context=1.0, cosine=0.0)
    if scoring == "lexical":
        return Fusion(lexical=1.0, cosine=0.0)
    raise ClaimsFileError(f"unknown scoring {scoring!r} (expected one of: {', '.join(SCORINGS)})")


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
    scoring: str = "hybrid",
) -> CheckThatReport:
    """Rank the split's vclaims for each tweet with the matcher; MAP@1, MAP@k and MRR of the ranking.

    ``scoring``: ``hybrid`` (the model's fitted fusion) or one component alone (see ``SCORINGS``).
    Only claim vectors go through ``cache``; tweets are encoded on every run. ``progress`` (optional)
    is called with one-line status messages."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    edition, split = data.edition, data.split
    queries, qrels, vclaims = subset(data.queries, data.qrels, data.vclaims, limit_queries, limit_claims)
    counting = CountingEncoder(encoder)
    say(f"CheckThat! {edition} {split}: {len(queries)} tweets, {len(vclaims)} vclaims; embedding the vclaims")
    fusion = scoring_fusion(scoring, encoder.model_name)
    claims = [claim_for_matching(c, with_title) for c in vclaims]
    index = ClaimIndex.build(counting, claims, cache=cache, fusion=fusion)
    claims_encoded = counting.encoded
    say(f"{claims_encoded} vclaim and title texts newly encoded (the others from the cache); matching")
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
        scoring=scoring,
        fusion=fusion.as_dict(),
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


# --- fitting the fusion weights ------------------------------------------------------------------


@dataclass
class QueryComponents:
    """One query's candidate claims (the best ``FIT_DEPTH`` by each component) and the passages ×
    candidates matrices of the components."""

    claim_ids: list[str]
    parts: dict[str, np.ndarray]


def collect_components(
    encoder: Encoder,
    index: ClaimIndex,
    texts: Sequence[str],
    cache: EmbeddingCache | None = None,
    depth: int = FIT_DEPTH,
) -> list[QueryComponents]:
    """Component matrices of each text's passages against its candidate claims (``index`` must hold
    context vectors and a lexical index: built with both fusion weights non-zero)."""
    collected = []
    for start in range(0, len(texts), MATCH_BATCH):
        for passages, rows in text_passages(encoder, texts[start : start + MATCH_BATCH], cache):
            if not passages:
                collected.append(QueryComponents([], {}))
                continue
            queries = index.lexical.query_matrix([p.text for p in passages]) if index.lexical else None
            scale = index.lexical.best_score(queries) if index.lexical else 1.0
            parts = index.components(rows, queries, slice(None), scale)
            parts.pop("score")
            candidates: set[int] = set()
            for values in parts.values():
                best = values.max(axis=0)
                candidates.update(np.argpartition(-best, min(depth, len(best) - 1))[:depth].tolist())
            columns = sorted(candidates)
            collected.append(
                QueryComponents(
                    [index.claims[c].id for c in columns],
                    {name: values[:, columns] for name, values in parts.items()},
                )
            )
    return collected


def rank_with(fusion: Fusion, items: Sequence[QueryComponents], k: int) -> list[list[tuple[str, float]]]:
    """Each query's top ``k`` candidates by their best passage's fused score."""
    runs = []
    for item in items:
        if not item.claim_ids:
            runs.append([])
            continue
        best = fusion.combine(item.parts["cosine"], item.parts.get("context"), item.parts.get("lexical"))
        best = best.max(axis=0)
        top = np.argsort(-best)[:k]
        runs.append([(item.claim_ids[c], float(best[c])) for c in top])
    return runs


@dataclass
class FusionFit:
    model: str
    revision: str
    fusion: Fusion
    fitted_on: list[str]
    queries: int
    map_at_5: float
    cosine_map_at_5: float


def fit_fusion(
    encoder: Encoder,
    splits: Sequence[CheckThatSplit],
    cache: EmbeddingCache | None = None,
    progress: Callable[[str], None] | None = None,
) -> FusionFit:
    """The context and lexical weights that maximise MAP@5 over the queries of ``splits`` (grid
    search; the cosine's weight is 1). Fit on train/dev splits only, never on a test split."""
    say = progress or (lambda message: None)
    names = [f"{split.edition} {split.split}" for split in splits]
    if any(split.split == "test" for split in splits):
        raise ClaimsFileError("fusion weights are never fitted on a test split")
    items: list[QueryComponents] = []
    qrels: dict[str, set[str]] = {}
    for split in splits:
        say(f"CheckThat! {split.edition} {split.split}: {len(split.queries)} tweets; scoring the components")
        index = ClaimIndex.build(encoder, split.vclaims, cache=cache, fusion=Fusion(1.0, 1.0))
        items += collect_components(encoder, index, [text for _, text in split.queries], cache)
        qrels.update({f"{split.edition}/{split.split}/{q}": ids for q, ids in split.qrels.items()})
    keys = [f"{split.edition}/{split.split}/{q}" for split in splits for q, _ in split.queries]

    def score(fusion: Fusion) -> float:
        return mean_average_precision(dict(zip(keys, rank_with(fusion, items, 5), strict=True)), qrels, 5)

    grid = [Fusion(c, x) for c in FIT_CONTEXT_WEIGHTS for x in FIT_LEXICAL_WEIGHTS]
    say(f"grid search over {len(grid)} weight pairs")
    scored = [(score(fusion), -(fusion.context + fusion.lexical), fusion) for fusion in grid]
    best, _, fusion = max(scored, key=lambda item: item[:2])  # ties: the smaller weights
    return FusionFit(encoder.model_name, encoder.revision, fusion, names, len(keys), best, score(COSINE))


def write_model_entry(path: Path, model: str, entry: dict[str, Any], about: str) -> None:
    """Set ``model``'s entry of a per-model JSON file (pipelines/thresholds.json, fusion.json: read by
    ``pipelines.match.read_models_file``), keeping the other models' entries."""
    try:
        table = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError as exc:
        raise ClaimsFileError(f"{path}: not valid JSON: {exc}") from None
    table.setdefault("models", {})[model] = entry
    table["about"] = about
    path.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_fusion(result: FusionFit, path: Path = FUSION_FILE) -> None:
    """Store fitted fusion weights in the file read by ``default_fusion()``."""
    entry = {
        "context": result.fusion.context,
        "lexical": result.fusion.lexical,
        "revision": result.revision,
        "fitted_on": [f"CheckThat! 2A {name}" for name in result.fitted_on],
        "queries": result.queries,
        "fit_map@5": round(result.map_at_5, 4),
        "fit_cosine_map@5": round(result.cosine_map_at_5, 4),
        "fitted": date.today().isoformat(),
    }
    about = (
        "Weights of the match score's components per model (cosine weight 1), fitted by "
        "`claimwatch eval fit-fusion` on CheckThat! 2A train/dev splits."
    )
    write_model_entry(path, result.model, entry, about)
    load_fusions.cache_clear()


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
    threshold: float | None  # None: each text's calibrated threshold (per language)
    languages: dict[str, ThresholdScore]  # "all" first, then each language
    items: dict[str, int]
    covered: frozenset[str] | None
    sweep: list[ThresholdScore] = field(default_factory=list)
    sweep_languages: list[str] | None = None  # None: all texts
    verifier: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "threshold": self.threshold,
            "verifier": self.verifier,
            "languages": {
                name: {**asdict(score), "items": self.items[name], "covered": self.is_covered(name)}
                for name, score in self.languages.items()
            },
            "sweep": [asdict(score) for score in self.sweep],
            "sweep_languages": self.sweep_languages,
        }

    def is_covered(self, language: str) -> bool:
        return self.covered is None or language == "all" or language in self.covered


def best_claims_of(
    matcher: ClaimMatcher, texts: Sequence[str], languages: Sequence[str | None]
) -> tuple[list[str], np.ndarray, np.ndarray, list[str | None]]:
    """Best claim, its score, the text's calibrated threshold and the model of each text, matched by
    the production matcher (``matcher`` must keep every candidate: threshold -1)."""
    claims: list[str] = []
    scores: list[float] = []
    cutoffs: list[float] = []
    models: list[str | None] = []
    for start in range(0, len(texts), MATCH_BATCH):
        batch = slice(start, start + MATCH_BATCH)
        for result, language in zip(
            matcher.match(texts[batch], languages[batch], top_k=1), languages[batch], strict=True
        ):
            matches = result.matches
            claims.append(matches[0].claim_id if matches else "")
            scores.append(matches[0].score if matches else -2.0)
            route = matcher.route_for(language)
            cutoffs.append(matcher.threshold_for(route, language, override=False) if route else np.inf)
            models.append(result.model)
    return claims, np.array(scores), np.array(cutoffs), models


def evaluate_labels(
    matcher: ClaimMatcher, items: Sequence[LabelledText], threshold: float | None
) -> LabelsReport:
    """Precision/recall/F1 of the best match of each labelled text, per language, at ``threshold``
    (None: each text's calibrated per-language threshold), and a sweep of one threshold for all.
    ``matcher`` must keep every candidate (threshold -1)."""
    languages = [None if item.language == UNKNOWN_LANGUAGE else item.language for item in items]
    languages = [
        language or guess_language(item.text) for language, item in zip(languages, items, strict=True)
    ]
    claims, scores, cutoffs, models = best_claims_of(matcher, [item.text for item in items], languages)
    if threshold is not None:
        cutoffs = np.where(np.isfinite(cutoffs), threshold, np.inf)
    gold = [item.label for item in items]
    groups: dict[str, list[int]] = {"all": list(range(len(items)))}
    for number, item in enumerate(items):
        groups.setdefault(item.language, []).append(number)
    by_language = {
        name: score_at([claims[r] for r in rows], scores[rows], [gold[r] for r in rows], cutoffs[rows])
        for name, rows in groups.items()
    }
    swept = [r for r in groups["all"] if models[r] is not None] or groups["all"]
    low, high, step = (0.05, 0.95, 0.05) if matcher.verifier is not None else (0.3, 0.9, 0.05)
    covered = frozenset(
        language for n, language in enumerate(languages) if models[n] is not None and language
    )
    return LabelsReport(
        model=", ".join(dict.fromkeys(m for m in models if m)) or matcher.routes[0].encoder.model_name,
        threshold=threshold,
        languages=by_language,
        items={name: len(rows) for name, rows in groups.items()},
        covered=None if len(swept) == len(items) else covered,
        sweep=sweep([claims[r] for r in swept], scores[swept], [gold[r] for r in swept], low, high, step),
        sweep_languages=None if len(swept) == len(items) else sorted(covered),
        verifier=matcher.verifier_version,
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
    # per language with enough dev passages: (chosen on dev, held-out test) at its own threshold
    by_language: dict[str, tuple[ThresholdScore, ThresholdScore]] = field(default_factory=dict)
    fusion: Fusion = COSINE


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
    """Best claim and (fused) score of each whole passage (as calibrated: no sentence splitting), and
    the gold claims."""
    texts = [item.passage for item in items]
    scores = index.score_passages(encoder.encode(texts), texts)
    claims, best = best_matches(scores, [c.id for c in index.claims])
    return claims, best, [item.claim_id for item in items]


def select(
    scored: tuple[list[str], np.ndarray, list[str | None]], rows: Sequence[int]
) -> tuple[list[str], np.ndarray, list[str | None]]:
    claims, scores, gold = scored
    return [claims[r] for r in rows], scores[list(rows)], [gold[r] for r in rows]


def calibrate_model(
    encoder: Encoder,
    claims: Sequence[Claim],
    dev: Path,
    test: Path,
    fusion: Fusion | None = None,
    cache: EmbeddingCache | None = None,
) -> Calibration:
    """Choose the threshold on ``dev`` (best F1 within tolerance, highest threshold) and report it on
    ``test``; only passages in the model's languages count. When the passages are in several
    languages, each language with at least ``MIN_LANGUAGE_POSITIVES`` restating dev passages gets its
    own threshold too (the fused score's scale differs between languages: the lexical component
    cannot match an English claim in Cyrillic text). ``fusion``: default, the model's fitted one."""
    index = ClaimIndex.build(encoder, claims, cache=cache, fusion=fusion)
    languages = sorted(encoder.languages) if encoder.languages else None
    claim_ids = {claim.id for claim in claims}
    dev_items = read_labelled(dev, languages, claim_ids)
    test_items = read_labelled(test, languages, claim_ids)
    dev_scored = best_of_passages(encoder, index, dev_items)
    test_scored = best_of_passages(encoder, index, test_items)
    chosen = choose_threshold(sweep(*dev_scored))
    held_out = score_threshold(*test_scored, chosen.threshold)
    by_language = {}
    found = sorted({item.language for item in dev_items})
    for language in found if len(found) > 1 else []:
        dev_rows = [n for n, item in enumerate(dev_items) if item.language == language]
        test_rows = [n for n, item in enumerate(test_items) if item.language == language]
        if sum(dev_items[n].claim_id is not None for n in dev_rows) < MIN_LANGUAGE_POSITIVES or not test_rows:
            continue
        own = choose_threshold(sweep(*select(dev_scored, dev_rows)))
        by_language[language] = (own, score_threshold(*select(test_scored, test_rows), own.threshold))
    return Calibration(
        encoder.model_name,
        encoder.revision,
        languages,
        len(dev_items),
        len(test_items),
        chosen,
        held_out,
        by_language,
        index.fusion,
    )


def write_calibration(result: Calibration, path: Path = THRESHOLDS_FILE) -> None:
    """Store the chosen threshold in the thresholds file read by ``default_threshold()``."""
    entry: dict[str, Any] = {
        "threshold": result.chosen.threshold,
        "revision": result.revision,
        "languages": result.languages,
        "dev_f1": round(result.chosen.f1, 4),
        "test_precision": round(result.held_out.precision, 4),
        "test_recall": round(result.held_out.recall, 4),
        "test_f1": round(result.held_out.f1, 4),
        "calibrated_on": date.today().isoformat(),
        "fusion": result.fusion.as_dict(),
    }
    own = {
        language: chosen.threshold
        for language, (chosen, _) in result.by_language.items()
        if chosen.threshold != result.chosen.threshold
    }
    if own:
        entry["language_thresholds"] = own
        entry["language_test_f1"] = {
            language: round(result.by_language[language][1].f1, 4) for language in own
        }
    about = "Default match thresholds per model, chosen by `claimwatch calibrate`."
    write_model_entry(path, result.model, entry, about)
    load_thresholds.cache_clear()  # default_threshold() reads the new value
