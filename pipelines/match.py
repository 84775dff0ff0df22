"""Matching passages of texts against claims by cosine similarity of their embeddings.

A text is segmented into sentences and two-sentence windows (``pipelines.segment``); all passages of
a batch of texts are encoded in one call, then scored against the claim matrix in bounded chunks, so
15,000 claims × hundreds of long texts stay within memory. For each text and claim only the best
passage is kept (``per_claim`` widens that); a text's matches are sorted best first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from pipelines.claims import Claim
from pipelines.embed import EmbeddingCache, Encoder, encode_cached, model_key
from pipelines.segment import Passage, split_sentences, windows_of

logger = logging.getLogger(__name__)

THRESHOLDS_FILE = Path(__file__).with_name("thresholds.json")
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


@dataclass
class ClaimIndex:
    """Claims with their normalised embeddings (one row per claim)."""

    claims: list[Claim]
    vectors: np.ndarray
    model_key: str

    @classmethod
    def build(
        cls, encoder: Encoder, claims: Sequence[Claim], cache: EmbeddingCache | None = None
    ) -> ClaimIndex:
        vectors = encode_cached(encoder, [claim.text for claim in claims], cache, kind="claim")
        return cls(list(claims), vectors, model_key(encoder))

    def __len__(self) -> int:
        return len(self.claims)


@cache
def load_thresholds() -> dict[str, dict[str, float | str]]:
    try:
        return json.loads(THRESHOLDS_FILE.read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("cannot read %s: %s", THRESHOLDS_FILE, exc)
        return {}


FALLBACK_THRESHOLD = 0.6


def default_threshold(model: str) -> float:
    """The calibrated threshold of a model (see pipelines/calibrate.py); a conservative fallback for
    models that were never calibrated."""
    from pipelines.embed import BUNDLED_ALIASES, DEFAULT_MODEL

    name = DEFAULT_MODEL if model.lower() in BUNDLED_ALIASES else model
    entry = load_thresholds().get(name)
    if entry is None:
        logger.warning(
            "model %s has no calibrated threshold: using %.2f (run `claimwatch calibrate`)",
            model,
            FALLBACK_THRESHOLD,
        )
        return FALLBACK_THRESHOLD
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
    candidates = []
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
    found: list[tuple[int, int, float]] = []
    for start in range(0, len(index), CLAIM_CHUNK):
        block = index.vectors[start : start + CLAIM_CHUNK]
        scores = passage_vectors @ block.T
        found.extend(
            (start + col, row, score)
            for col, row, score in best_per_claim(scores, threshold, top_k, per_claim)
        )
    found.sort(key=lambda item: (-item[2], item[0], item[1]))
    return [
        PassageMatch(
            claim_id=index.claims[col].id,
            score=round(min(score, 1.0), 6),
            passage=passages[row].text,
            start=passages[row].start,
            end=passages[row].end,
        )
        for col, row, score in found[:top_k]
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
    """For each text, its matches at or above ``threshold`` (best first, at most ``top_k``)."""
    if top_k < 1:
        raise ValueError("top_k must be at least 1")
    sentences = [split_sentences(text) for text in texts]
    wholes = [whole_text_passage(text, s) for text, s in zip(texts, sentences, strict=True)]
    flat = [sentence.text for text_sentences in sentences for sentence in text_sentences]
    flat += [whole.text for whole in wholes if whole is not None]
    if not flat or len(index) == 0:
        return [[] for _ in texts]
    vectors = encode_cached(encoder, flat, cache, kind="passage")
    whole_rows = iter(vectors[len(flat) - sum(w is not None for w in wholes) :])
    results = []
    offset = 0
    for text, text_sentences, whole in zip(texts, sentences, wholes, strict=True):
        own = vectors[offset : offset + len(text_sentences)]
        offset += len(text_sentences)
        passages = windows_of(text, text_sentences, window)
        rows = window_vectors(own, passages, window)
        if whole is not None:
            passages.append(whole)
            rows = np.vstack([rows, next(whole_rows)[None, :]])
        results.append(match_passages(rows, passages, index, threshold, top_k, per_claim))
    return results
