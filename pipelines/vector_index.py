"""Archived vectors: their compact storage form, and the approximate nearest-neighbour index over them.

Storage: every archived vector is an L2-normalised float32 vector rounded to float16 (half the
bytes; cosine changes by ~1e-4). The match stage scores the *rounded* vectors when it archives
(``round_trip``), so scoring archived vectors later (backfill) gives exactly the live scores.

Index: a usearch HNSW index (inner product = cosine on normalised vectors, int8 scalar-quantised
in memory) per model revision, keyed by the archive row id. The database is the source of truth: the
index file is a rebuildable cache that records the highest row id it holds (its *watermark*) and
catches up from the database by id (``VectorIndex.add``). usearch is imported lazily.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STORAGE_DTYPE = np.float16
INDEX_DTYPE = "i8"
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 96


class IndexMissingError(RuntimeError):
    """No index file for a model revision (build it with `claimwatch index rebuild`)."""


def to_bytes(vectors: np.ndarray) -> list[bytes]:
    """Storage bytes of each row (float16, little-endian)."""
    rows = np.ascontiguousarray(vectors, dtype="<f2")
    return [row.tobytes() for row in rows]


def round_trip(vectors: np.ndarray) -> np.ndarray:
    """The float32 vectors that the stored form gives back (what live scoring uses when archiving)."""
    return np.asarray(vectors, dtype=STORAGE_DTYPE).astype(np.float32)


def from_bytes(blobs: list[bytes]) -> np.ndarray:
    """float32 matrix of stored vectors (rows in order)."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f2").reshape(len(blobs), -1).astype(np.float32)


def index_name(model_key: str) -> str:
    """A file-name-safe name for a model key (name@revision)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", model_key)[:180]


@dataclass
class IndexMeta:
    model_key: str
    dimension: int
    watermark: int  # highest archive row id in the index
    count: int
    database: str  # which database the index mirrors (a fingerprint of its URL)


class VectorIndex:
    """A usearch HNSW index of one model revision's archived vectors, with its meta data."""

    def __init__(self, path: Path, meta: IndexMeta, index: Any) -> None:
        self.path = path
        self.meta = meta
        self.index = index

    @staticmethod
    def files(directory: Path, model_key: str) -> tuple[Path, Path]:
        base = index_name(model_key)
        return directory / f"{base}.usearch", directory / f"{base}.json"

    @classmethod
    def create(cls, directory: Path, model_key: str, dimension: int, database: str) -> VectorIndex:
        from usearch.index import Index

        index = Index(
            ndim=dimension,
            metric="ip",
            dtype=INDEX_DTYPE,
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        path, _ = cls.files(directory, model_key)
        return cls(path, IndexMeta(model_key, dimension, 0, 0, database), index)

    @classmethod
    def load(cls, directory: Path, model_key: str, view: bool = False) -> VectorIndex:
        """The saved index of ``model_key``; IndexMissingError when there is none. ``view``
        memory-maps the file instead of reading it (read-only use)."""
        from usearch.index import Index

        path, meta_path = cls.files(directory, model_key)
        if not path.exists() or not meta_path.exists():
            raise IndexMissingError(
                f"no vector index for {model_key} in {directory} (build it: `claimwatch index rebuild`)"
            )
        meta = IndexMeta(**json.loads(meta_path.read_text(encoding="utf-8")))
        index = Index.restore(str(path), view=view)
        if index is None:
            raise IndexMissingError(
                f"cannot read the vector index {path} (rebuild it: `claimwatch index rebuild`)"
            )
        index.expansion_search = EXPANSION_SEARCH  # type: ignore[misc]  # usearch declares its setter apart from the getter
        return cls(path, meta, index)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows (ids greater than the watermark, or missing ones found by ``missing``)."""
        if len(ids) == 0:
            return
        fresh = np.array([i for i in ids if not self.index.contains(int(i))], dtype=np.uint64)
        if len(fresh) < len(ids):
            keep = np.isin(ids.astype(np.uint64), fresh)
            ids, vectors = ids[keep], vectors[keep]
        if len(ids):
            self.index.add(ids.astype(np.uint64), np.ascontiguousarray(vectors, dtype=np.float32))
        self.meta.watermark = max(self.meta.watermark, int(np.max(ids)) if len(ids) else 0)
        self.meta.count = len(self.index)

    def missing(self, ids: list[int]) -> list[int]:
        return [i for i in ids if not self.index.contains(int(i))]

    def keys(self) -> set[int]:
        return {int(key) for key in self.index.keys}

    def remove(self, ids: list[int]) -> None:
        """Drop rows the database no longer has (a rematched document's old passages)."""
        if ids:
            self.index.remove(ids)
            self.meta.count = len(self.index)

    def search(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cosine similarities) of the ``count`` nearest rows, best first."""
        if len(self.index) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        count = min(count, len(self.index))
        self.index.expansion_search = max(EXPANSION_SEARCH, count)
        found = self.index.search(np.asarray(query, dtype=np.float32), count)
        return found.keys.astype(np.int64), (1.0 - found.distances).astype(np.float32)

    def save(self) -> None:
        """Write the index and its meta data atomically (temporary files renamed over the old)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _, meta_path = self.files(self.path.parent, self.meta.model_key)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".usearch.tmp")
        os.close(handle)
        self.index.save(temporary)
        os.replace(temporary, self.path)
        temporary_meta = meta_path.parent / (meta_path.name + ".tmp")
        temporary_meta.write_text(json.dumps(self.meta.__dict__), encoding="utf-8")
        os.replace(temporary_meta, meta_path)

    def __len__(self) -> int:
        return len(self.index)
