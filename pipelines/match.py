"""Matching passages of texts against claims: embedding cosine, fused with a lexical signal.

A text is segmented into sentences and two-sentence windows (``pipelines.segment``); passages with
the same normalised text are scored once. All passages of a batch of texts are encoded in one call,
then scored against the claims in bounded chunks, so 15,000 claims × hundreds of long texts stay
within memory. For each text and claim only the best passage is kept (``per_claim`` widens that); a
text's matches are sorted best first.

The score of a passage for a claim is a weighted mean of three components (``Fusion``):

* ``cosine``: cosine of the passage and claim embeddings;
* ``context``: cosine of the passage and the claim's ``title`` (the claim's own text when it has none);
* ``lexical``: BM25 of the passage against the claim's text + context (title, subtitle, keywords:
  ``claim_context``), divided by the best BM25 score of any passage of the text for any claim
  (pipelines/lexical.py): 1 for the text's lexically best claim, relative within a text.

The weights are fitted per model (pipelines/fusion.json, ``claimwatch eval fit-fusion``); with both weights
0 the score is the plain cosine. Thresholds (pipelines/thresholds.json) are calibrated on the fused
score, per model and, where they differ, per language.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.claims import Claim
from pipelines.embed import EmbeddingCache, Encoder, encode_cached, model_key
from pipelines.lexical import LexicalIndex
from pipelines.segment import Passage, split_sentences, windows_of

logger = logging.getLogger(__name__)

THRESHOLDS_FILE = Path(__file__).with_name("thresholds.json")
FUSION_FILE = Path(__file__).with_name("fusion.json")
# Claim fields that give a claim its context (besides its text); the title is also embedded.
CONTEXT_FIELDS = ("title", "subtitle", "keywords")
# Texts up to this long with several sentences are also matched as one passage.
WHOLE_TEXT_CHARS = 600
# Claim columns scored at once: bounds the score matrix to about rows × 2048 floats.
CLAIM_CHUNK = 2048


@dataclass(frozen=True)
class PassageMatch:
    claim_id: str
    score: float
    passage: str
    start: int
    end: int
    # the score's parts: cosine, context, lexical (and the fused score itself)
    components: dict[str, float] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Fusion:
    """Weights of the score components; the score is their weighted mean."""

    context: float = 0.0
    lexical: float = 0.0
    cosine: float = 1.0

    @property
    def is_cosine(self) -> bool:
        return self.context == 0 and self.lexical == 0 and self.cosine == 1

    def combine(
        self, cosine: np.ndarray, context: np.ndarray | None, lexical: np.ndarray | None
    ) -> np.ndarray:
        """The weighted mean of the components (a missing one counts as the cosine)."""
        if self.is_cosine:
            return cosine
        total = self.cosine * cosine + self.context * (cosine if context is None else context)
        total = total + self.lexical * (cosine if lexical is None else lexical)
        return total / (self.cosine + self.context + self.lexical)

    def as_dict(self) -> dict[str, float]:
        return {"cosine": self.cosine, "context": self.context, "lexical": self.lexical}


COSINE = Fusion()


def claim_context(claim: Claim) -> str:
    """A claim's context: its title, subtitle and keywords (a list or a string), as one string; may
    be empty."""
    parts = []
    for name in CONTEXT_FIELDS:
        value = claim.extra.get(name)
        if isinstance(value, list | tuple):
            value = " ".join(str(item) for item in value)
        if value:
            parts.append(" ".join(str(value).split()))
    return " ".join(parts)


@dataclass
class ClaimIndex:
    """Claims with their normalised embeddings (one row per claim) and, for fused scoring, the
    embeddings of their contexts and a BM25 index of their text + context."""

    claims: list[Claim]
    vectors: np.ndarray
    model_key: str
    fusion: Fusion = COSINE
    context_vectors: np.ndarray | None = None
    lexical: LexicalIndex | None = None

    @classmethod
    def build(
        cls,
        encoder: Encoder,
        claims: Sequence[Claim],
        cache: EmbeddingCache | None = None,
        fusion: Fusion | None = None,
    ) -> ClaimIndex:
        """``fusion``: the score's weights; default: the ones fitted for the encoder's model."""
        fusion = default_fusion(encoder.model_name) if fusion is None else fusion
        vectors = encode_cached(encoder, [claim.text for claim in claims], cache, kind="claim")
        contexts = [claim_context(claim) for claim in claims]
        titles = [" ".join(str(claim.extra.get("title") or "").split()) for claim in claims]
        context_vectors = None
        if fusion.context and any(titles):
            with_title = [row for row, title in enumerate(titles) if title]
            context_vectors = vectors.copy()
            context_vectors[with_title] = encode_cached(
                encoder, [titles[row] for row in with_title], cache, kind="claim"
            )
        lexical = None
        if fusion.lexical:
            documents = [f"{claim.text} {context}" for claim, context in zip(claims, contexts, strict=True)]
            lexical = LexicalIndex.build(documents)
        return cls(list(claims), vectors, model_key(encoder), fusion, context_vectors, lexical)

    def __len__(self) -> int:
        return len(self.claims)

    def components(
        self,
        passage_vectors: np.ndarray,
        lexical_queries: Any,
        claims: slice,
        lexical_scale: float | np.ndarray = 1.0,
    ) -> dict[str, np.ndarray]:
        """Passages × claims matrices of the score components of the ``claims`` slice and the fused
        ``score``; ``lexical_queries``: ``self.lexical.query_matrix`` of the passages (or None), their
        BM25 scores divided by ``lexical_scale`` (a number, or one per passage as a column)."""
        cosine = passage_vectors @ self.vectors[claims].T
        parts = {"cosine": cosine}
        if self.context_vectors is not None:
            parts["context"] = passage_vectors @ self.context_vectors[claims].T
        if self.lexical is not None and lexical_queries is not None:
            scale = np.maximum(lexical_scale, 1e-12)
            parts["lexical"] = (self.lexical.scores(lexical_queries, claims) / scale).astype(cosine.dtype)
        parts["score"] = self.fusion.combine(cosine, parts.get("context"), parts.get("lexical"))
        return parts

    def score_passages(self, passage_vectors: np.ndarray, passages: Sequence[str]) -> np.ndarray:
        """Fused scores of whole passages (rows, each a text of its own) against all claims (columns)."""
        if self.lexical is None:
            return self.components(passage_vectors, None, slice(None))["score"]
        queries = self.lexical.query_matrix(passages)
        scale = self.lexical.best_scores(queries)
        return self.components(passage_vectors, queries, slice(None), scale[:, None])["score"]


def read_models_file(path: Path) -> dict[str, dict[str, Any]]:
    """The per-model entries of a shipped JSON file (thresholds, fusion weights); {} with a warning
    when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return {}


@cache
def load_thresholds() -> dict[str, dict[str, Any]]:
    return read_models_file(THRESHOLDS_FILE)


@cache
def load_fusions() -> dict[str, dict[str, Any]]:
    return read_models_file(FUSION_FILE)


FALLBACK_THRESHOLD = 0.6


def canonical_model(model: str) -> str:
    from pipelines.embed import BUNDLED_ALIASES, DEFAULT_MODEL

    return DEFAULT_MODEL if model.lower() in BUNDLED_ALIASES else model


def default_fusion(model: str) -> Fusion:
    """The fusion weights fitted for a model (pipelines/fusion.json); plain cosine for other models."""
    entry = load_fusions().get(canonical_model(model))
    if entry is None:
        return COSINE
    return Fusion(float(entry.get("context", 0.0)), float(entry.get("lexical", 0.0)))


def default_threshold(model: str, language: str | None = None) -> float:
    """The calibrated threshold of a model (see pipelines/calibrate.py) for texts in ``language``
    (the model's own threshold for that language if it has one, else its default); a conservative
    fallback for models that were never calibrated."""
    entry = load_thresholds().get(canonical_model(model))
    if entry is None:
        logger.warning(
            "model %s has no calibrated threshold: using %.2f (run `claimwatch calibrate`)",
            model,
            FALLBACK_THRESHOLD,
        )
        return FALLBACK_THRESHOLD
    by_language = entry.get("language_thresholds") or {}
    if language and language.lower() in by_language:
        return float(by_language[language.lower()])
    return float(entry["threshold"])


def best_per_claim(
    scores: np.ndarray, threshold: float, top_k: int, per_claim: int
) -> list[tuple[int, int, float]]:
    """(claim column, passage row, score) of the best matches in a passages × claims score matrix."""
    if scores.size == 0:
        return []
    depth = min(per_claim, scores.shape[0])
    # argmax is much cheaper than a full sort for the usual single best passage
    rows = scores.argmax(axis=0)[None, :] if depth == 1 else np.argsort(-scores, axis=0)[:depth]
    candidates: list[tuple[int, int, float]] = []
    for rank in range(depth):
        row_scores = scores[rows[rank], np.arange(scores.shape[1])]
        keep = np.flatnonzero(row_scores >= threshold)
        if keep.size > top_k:
            keep = keep[np.argpartition(-row_scores[keep], top_k - 1)[:top_k]]
        candidates.extend((int(col), int(rows[rank][col]), float(row_scores[col])) for col in keep)
    candidates.sort(key=lambda item: (-item[2], item[0], item[1]))
    return candidates[:top_k]


def match_passages(
    passage_vectors: np.ndarray,
    passages: Sequence[Passage],
    index: ClaimIndex,
    threshold: float,
    top_k: int,
    per_claim: int = 1,
) -> list[PassageMatch]:
    """The best matches of one text's passages (rows of ``passage_vectors``) against the index."""
    queries, scale = None, 1.0
    if index.lexical is not None:
        queries = index.lexical.query_matrix([passage.text for passage in passages])
        scale = index.lexical.best_score(queries)
    found: list[tuple[int, int, float, dict[str, float]]] = []
    for start in range(0, len(index), CLAIM_CHUNK):
        parts = index.components(passage_vectors, queries, slice(start, start + CLAIM_CHUNK), scale)
        for col, row, score in best_per_claim(parts["score"], threshold, top_k, per_claim):
            components = {name: round(float(values[row, col]), 6) for name, values in parts.items()}
            found.append((start + col, row, score, components))
    found.sort(key=lambda item: (-item[2], item[0], item[1]))
    return [
        PassageMatch(
            claim_id=index.claims[col].id,
            score=round(min(score, 1.0), 6),
            passage=passages[row].text,
            start=passages[row].start,
            end=passages[row].end,
            components=components,
        )
        for col, row, score, components in found[:top_k]
    ]


def window_vectors(sentence_vectors: np.ndarray, passages: Sequence[Passage], window: int) -> np.ndarray:
    """Vectors of a text's passages from its sentences' vectors: a window of consecutive sentences is
    the normalised sum of theirs (cheap, and close to encoding the window: the encoder is the
    bottleneck, and windows would triple its work)."""
    count = len(sentence_vectors)
    rows = [sentence_vectors]
    for size in range(2, window + 1):
        if count < size:
            break
        summed = sum(sentence_vectors[i : count - size + 1 + i] for i in range(size))
        rows.append(summed / np.linalg.norm(summed, axis=1, keepdims=True).clip(min=1e-12))
    vectors = np.vstack(rows)
    return vectors[: len(passages)]


def whole_text_passage(text: str, sentences: Sequence[Passage]) -> Passage | None:
    """A short text of several sentences (a tweet, a lede) is also one passage of its own: encoded
    as a whole, not approximated from its sentences."""
    if len(sentences) < 2 or sentences[-1].end - sentences[0].start > WHOLE_TEXT_CHARS:
        return None
    return Passage(text[sentences[0].start : sentences[-1].end], sentences[0].start, sentences[-1].end)


def passage_key(text: str) -> str:
    """Passages with the same key are scored once: case, punctuation and spacing ignored."""
    return " ".join(PUNCTUATION.sub(" ", text.lower()).split())


PUNCTUATION = re.compile(r"[^\w\s]+", re.UNICODE)


def unique_passages(
    passages: list[Passage], vectors: np.ndarray, whole: Passage | None, whole_vector: np.ndarray | None
) -> tuple[list[Passage], np.ndarray]:
    """A text's passages and their vectors with near-identical passages (same ``passage_key``) once:
    the first of repeated sentences or windows; the whole text rather than a window equal to it (its
    vector is encoded, not approximated)."""
    keys = [passage_key(passage.text) for passage in passages]
    first = {key: row for row, key in reversed(list(enumerate(keys)))}
    rows = [row for row, key in enumerate(keys) if first[key] == row]
    kept, kept_vectors = [passages[row] for row in rows], vectors[rows]
    if whole is not None and whole_vector is not None:
        key = passage_key(whole.text)
        same = [n for n, row in enumerate(rows) if keys[row] == key]
        if same:
            kept[same[0]] = whole
            kept_vectors[same[0]] = whole_vector
        else:
            kept.append(whole)
            kept_vectors = np.vstack([kept_vectors, whole_vector[None, :]])
    return kept, kept_vectors


def match_texts(
    encoder: Encoder,
    index: ClaimIndex,
    texts: Sequence[str],
    threshold: float,
    top_k: int = 10,
    per_claim: int = 1,
    cache: EmbeddingCache | None = None,
    window: int = 2,
) -> list[list[PassageMatch]]:
    """For each text, its matches scoring at or above ``threshold`` (best first, at most ``top_k``);
    the score is the index's fused score (``Fusion``), its parts in each match's ``components``."""
    if top_k < 1:
        raise ValueError("top_k must be at least 1")
    if len(index) == 0:
        return [[] for _ in texts]
    return [
        match_passages(rows, passages, index, threshold, top_k, per_claim) if passages else []
        for passages, rows in text_passages(encoder, texts, cache, window)
    ]


def segment_texts(texts: Sequence[str]) -> tuple[list[list[Passage]], list[Passage | None], list[str]]:
    """Each text's sentences and whole-text passage (short texts only), and what the encoder is given
    for them, in one list: every sentence, then the whole texts."""
    sentences = [split_sentences(text) for text in texts]
    wholes = [whole_text_passage(text, s) for text, s in zip(texts, sentences, strict=True)]
    flat = [sentence.text for text_sentences in sentences for sentence in text_sentences]
    flat += [whole.text for whole in wholes if whole is not None]
    return sentences, wholes, flat


@dataclass
class EncodedText:
    """One text as the encoder saw it: its sentences and (short texts) whole-text passage, with their
    vectors (rows: the sentences in order, then the whole text). Everything the scorer needs comes
    from this, so an archived copy (crawler/services/archive.py) is scored exactly like a fresh one."""

    text: str
    sentences: list[Passage]
    whole: Passage | None
    vectors: np.ndarray

    def passages(self, window: int = 2) -> tuple[list[Passage], np.ndarray]:
        """The text's passages (sentences, windows, the whole of a short text; near-identical ones
        once) and their vectors; windows are computed from the sentences' vectors."""
        count = len(self.sentences)
        if count == 0 and self.whole is None:
            return [], np.zeros((0, self.vectors.shape[1] if self.vectors.ndim == 2 else 0), np.float32)
        passages = windows_of(self.text, self.sentences, window)
        rows = window_vectors(self.vectors[:count], passages, window)
        whole_vector = self.vectors[count] if self.whole is not None else None
        return unique_passages(passages, rows, self.whole, whole_vector)


def encode_texts(
    encoder: Encoder, texts: Sequence[str], cache: EmbeddingCache | None = None
) -> list[EncodedText]:
    """Segment texts and encode their sentences and whole-text passages, in one encoder call."""
    sentences, wholes, flat = segment_texts(texts)
    if not flat:
        empty = np.zeros((0, 0), dtype=np.float32)
        return [EncodedText(text, s, w, empty) for text, s, w in zip(texts, sentences, wholes, strict=True)]
    vectors = encode_cached(encoder, flat, cache, kind="passage")
    whole_rows = iter(vectors[len(flat) - sum(w is not None for w in wholes) :])
    results = []
    offset = 0
    for text, text_sentences, whole in zip(texts, sentences, wholes, strict=True):
        own = vectors[offset : offset + len(text_sentences)]
        offset += len(text_sentences)
        if whole is not None:
            own = np.vstack([own, next(whole_rows)[None, :]])
        results.append(EncodedText(text, text_sentences, whole, own))
    return results


def text_passages(
    encoder: Encoder, texts: Sequence[str], cache: EmbeddingCache | None = None, window: int = 2
) -> list[tuple[list[Passage], np.ndarray]]:
    """Each text's passages (sentences, windows, the whole of a short text; near-identical ones once)
    and their vectors; only sentences and whole texts go through the encoder, in one call."""
    encoded = encode_texts(encoder, texts, cache)
    if all(e.vectors.size == 0 for e in encoded):
        return [([], np.zeros((0, 0), dtype=np.float32)) for _ in texts]
    return [e.passages(window) for e in encoded]
