"""The passage archive: the match stage's hook that keeps every encoded passage's vector, and the
vector index kept in step with it.

``ArchiveHook`` is called by the match stage (crawler/services/matching.py): ``capture`` rounds a
batch's sentence vectors to their float16 storage form *before* they are scored (so that scoring the
archive later — backfill — reproduces the live scores exactly) and returns the ``passage_vectors``
rows, which ``write_batch`` stores in the transaction that stores the batch's matches;
``batch_written`` then adds the committed rows to the vector index (saved at most every
``archive_index_save_seconds`` and when the stage ends).

The database is the source of truth. An index file per model revision (``archive_index_dir``) is a
cache: ``sync_index`` catches it up from the database by row id (and finds rows a concurrent worker
committed below its watermark), ``rebuild_index`` builds it anew.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings
from db.archive import (
    archive_counts,
    count_up_to,
    iter_vectors,
    max_vector_id,
    require_model,
    vector_ids_up_to,
    vectors_by_id,
)
from pipelines.encoding import default_cache_dir
from pipelines.match import EncodedText
from pipelines.vector_index import IndexMissingError, VectorIndex, from_bytes, round_trip, to_bytes

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


class ArchivedText(Protocol):
    id: int
    language: str | None


def database_fingerprint(settings: Settings) -> str:
    """Which database an index mirrors (an index file is never used with another database)."""
    return hashlib.sha256(settings.database_url.encode()).hexdigest()[:16]


def index_directory(settings: Settings) -> Path:
    """Where the index files live (``archive_index_dir``; by default next to a SQLite file)."""
    if settings.archive_index_dir:
        return Path(settings.archive_index_dir).expanduser()
    if settings.is_sqlite:
        from sqlalchemy.engine import make_url

        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            return Path(database + ".index")
    cache = Path(settings.cache_dir).expanduser() if settings.cache_dir else default_cache_dir()
    return cache / "index" / database_fingerprint(settings)


def capture_rows(
    model_key: str, documents: Sequence[ArchivedText], encoded: Sequence[EncodedText]
) -> list[dict[str, Any]]:
    """Round each text's vectors to their stored form (in place: the caller scores those) and return
    the archive rows: one per sentence, then the whole text (short texts)."""
    rows: list[dict[str, Any]] = []
    for document, text in zip(documents, encoded, strict=True):
        if text.vectors.size == 0:
            continue
        text.vectors = round_trip(text.vectors)
        spans = [(p.start, p.end, False) for p in text.sentences]
        if text.whole is not None:
            spans.append((text.whole.start, text.whole.end, True))
        language = (document.language or "")[:12] or None
        rows.extend(
            {
                "document_id": document.id,
                "model_key": model_key,
                "passage_start": start,
                "passage_end": end,
                "whole": whole,
                "language": language,
                "vector": blob,
            }
            for (start, end, whole), blob in zip(spans, to_bytes(text.vectors), strict=True)
        )
    return rows


class ArchiveHook:
    """The match stage's archive: built by ``from_settings`` (None when ``archive_passages`` is off)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.indexes: dict[str, VectorIndex] = {}
        self.unsaved: set[str] = set()
        self.saved_at = time.monotonic()

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveHook | None:
        return cls(settings) if settings.archive_passages else None

    def capture(
        self, model_key: str, documents: Sequence[ArchivedText], encoded: Sequence[EncodedText]
    ) -> list[dict[str, Any]]:
        return capture_rows(model_key, documents, encoded)

    def batch_written(self, sessions: sessionmaker[Session], model_keys: Sequence[str]) -> None:
        """After a batch committed: add its rows to the vector indexes (when ``archive_index_update``)."""
        if not self.settings.archive_index_update:
            return
        for key in model_keys:
            try:
                index = self.indexes.get(key)
                with sessions() as session:
                    if index is None:
                        index = self.indexes[key] = open_index(self.settings, session, key, create=True)
                    if sync_index(session, index):
                        self.unsaved.add(key)
            except Exception as exc:  # the index is a cache: never fail the match stage for it
                logger.warning("vector index of %s not updated (rebuild it later): %s", key, exc)
                self.indexes.pop(key, None)
        if time.monotonic() - self.saved_at >= self.settings.archive_index_save_seconds:
            self.save()

    def save(self) -> None:
        for key in sorted(self.unsaved):
            try:
                self.indexes[key].save()
            except OSError as exc:
                logger.warning("cannot save the vector index of %s: %s", key, exc)
        self.unsaved.clear()
        self.saved_at = time.monotonic()

    def close(self) -> None:
        self.save()
        self.indexes.clear()


def open_index(settings: Settings, session: Session, model_key: str, create: bool = False) -> VectorIndex:
    """The index file of ``model_key`` (a new empty one with ``create`` when there is none, or when
    the file mirrors another database); IndexMissingError otherwise."""
    directory = index_directory(settings)
    fingerprint = database_fingerprint(settings)
    try:
        index = VectorIndex.load(directory, model_key)
        if index.meta.database == fingerprint:
            return index
        if not create:
            raise IndexMissingError(
                f"the vector index in {directory} belongs to another database "
                "(rebuild it: `claimwatch index rebuild`)"
            )
    except IndexMissingError:
        if not create:
            raise
    sample = next(iter_vectors(session, model_key, batch=1), None)
    if sample is None:
        raise IndexMissingError(f"nothing archived under {model_key} yet")
    dimension = from_bytes([sample[0][1]]).shape[1]
    return VectorIndex.create(directory, model_key, dimension, fingerprint)


def sync_index(session: Session, index: VectorIndex, progress: ProgressCallback | None = None) -> int:
    """Add the archive rows the index lacks: those above its watermark, and (when the count below
    it disagrees — a concurrent worker committed late, or rows were replaced) the missing ones below,
    dropping the ones the database no longer has. Returns the rows added."""
    key = index.meta.model_key
    added = 0
    if index.meta.watermark and count_up_to(session, key, index.meta.watermark) != len(index):
        # rows committed below the watermark after it was set (another worker), or rows deleted
        # (a rematched document's passages are replaced): reconcile with the database
        stored = vector_ids_up_to(session, key, index.meta.watermark)
        index.remove(sorted(index.keys() - set(stored)))
        missing = index.missing(stored)
        found = vectors_by_id(session, missing)
        if found:
            ids = np.array(sorted(found), dtype=np.int64)
            index.add(ids, from_bytes([found[int(i)] for i in ids]))
            added += len(ids)
    total = max_vector_id(session, key)
    for batch in iter_vectors(session, key, after_id=index.meta.watermark):
        ids = np.array([ident for ident, _ in batch], dtype=np.int64)
        index.add(ids, from_bytes([blob for _, blob in batch]))
        added += len(batch)
        if progress is not None:
            progress(int(ids[-1]), total)
    return added


@dataclass(frozen=True)
class IndexReport:
    model_key: str
    vectors: int
    path: Path
    seconds: float


def rebuild_index(
    settings: Settings,
    sessions: sessionmaker[Session],
    model_keys: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> list[IndexReport]:
    """Build the index of each archived model revision (or of ``model_keys``) from the database."""
    reports = []
    with sessions() as session:
        keys = list(model_keys or sorted(archive_counts(session)))
        if not keys:
            require_model(session, "")  # raises: the archive is empty
        for key in keys:
            require_model(session, key)
            started = time.monotonic()
            sample = next(iter_vectors(session, key, batch=1))
            dimension = from_bytes([sample[0][1]]).shape[1]
            index = VectorIndex.create(
                index_directory(settings), key, dimension, database_fingerprint(settings)
            )
            sync_index(session, index, progress)
            index.save()
            reports.append(IndexReport(key, len(index), index.path, time.monotonic() - started))
    return reports


def load_index(settings: Settings, sessions: sessionmaker[Session], model_key: str) -> VectorIndex:
    """The index of ``model_key``, caught up with the database (and saved when it was behind)."""
    with sessions() as session:
        require_model(session, model_key)
        index = open_index(settings, session, model_key)
        if sync_index(session, index):
            try:
                index.save()
            except OSError as exc:
                logger.warning("cannot save the caught-up vector index: %s", exc)
    return index
