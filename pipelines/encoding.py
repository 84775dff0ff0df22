"""What every encoder backend shares: the ``Encoder`` and ``EmbeddingCache`` protocols, the load error,
text keys and length-sorted batching. The backends (pipelines/embed.py's sentence-transformers
encoder, pipelines/encoders.py, pipelines/onnx_backend.py) import this module; the factory that picks a
backend (``pipelines.embed.load_encoder``) imports them.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np


class ModelLoadError(RuntimeError):
    """The configured model cannot be loaded (bad name or path, no hub access, broken files)."""


class Encoder(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def revision(self) -> str: ...

    @property
    def languages(self) -> frozenset[str] | None: ...

    def encode(self, texts: Sequence[str], kind: str = "passage") -> np.ndarray: ...


class EmbeddingCache(Protocol):
    def get(self, model_key: str, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put(self, model_key: str, items: dict[str, np.ndarray]) -> None: ...


def normalise_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def text_hash(text: str) -> str:
    """Stable key of a text for caches (whitespace and Unicode form do not matter)."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def model_key(encoder: Encoder) -> str:
    return f"{encoder.model_name}@{encoder.revision}"


# Padded tokens per forward pass. Attention memory grows with batch x length^2: 64 passages at
# MiniLM's 256-token limit took the process from 0.66 to 1.09 GB; 32 x 256 bounds that batch at half
# the extra memory, while batches of short sentences keep their full ``batch_size``.
MAX_BATCH_TOKENS = 8192


def length_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int = MAX_BATCH_TOKENS
) -> list[list[int]]:
    """Row numbers grouped into batches of similar length, longest first: at most ``batch_size``
    rows and ``max_tokens`` padded tokens (rows x the longest row) per batch."""
    order = sorted(range(len(lengths)), key=lambda row: -lengths[row])
    batches: list[list[int]] = []
    current: list[int] = []
    for row in order:
        # sorted longest first: a batch's first row sets its padded length
        width = max(lengths[current[0]] if current else lengths[row], 1)
        if current and (len(current) >= batch_size or (len(current) + 1) * width > max_tokens):
            batches.append(current)
            current = []
        current.append(row)
    if current:
        batches.append(current)
    return batches


def default_cache_dir() -> Path:
    """``$CLAIMWATCH_CACHE_DIR`` or ``~/.cache/claimwatch``: embeddings and ONNX exports."""
    return Path(os.environ.get("CLAIMWATCH_CACHE_DIR") or Path.home() / ".cache" / "claimwatch").expanduser()
