"""Data access of the passage archive (table ``passage_vectors``): every sentence (and short whole
text) the match stage encoded, with its float16 vector per model revision.

Functions take a Session; the caller owns the transaction. The match stage writes a batch's archive
rows in the transaction that stores its matches (``replace_passage_vectors``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from db.models import Claim, Document, PassageVector, Source

_IN_CHUNK = 500


class ArchiveError(RuntimeError):
    """The archive cannot answer: it is empty, or holds nothing of the asked model revision."""


def replace_passage_vectors(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Store archive rows (dicts of PassageVector columns), replacing what the archive held for the
    same documents and model revisions (a rematched document is archived once per model)."""
    if not rows:
        return 0
    pairs = sorted({(row["document_id"], row["model_key"]) for row in rows})
    by_model: dict[str, list[int]] = {}
    for document_id, model_key in pairs:
        by_model.setdefault(model_key, []).append(document_id)
    for model_key, ids in by_model.items():
        for start in range(0, len(ids), _IN_CHUNK):
            session.execute(
                delete(PassageVector).where(
                    PassageVector.model_key == model_key,
                    PassageVector.document_id.in_(ids[start : start + _IN_CHUNK]),
                )
            )
    session.execute(insert(PassageVector), list(rows))
    return len(rows)


def archive_counts(session: Session) -> dict[str, int]:
    """Archived passages per model key."""
    query = select(PassageVector.model_key, func.count()).group_by(PassageVector.model_key)
    return {key: int(count) for key, count in session.execute(query)}


def archive_bytes(session: Session, model_key: str | None = None) -> int:
    query = select(func.coalesce(func.sum(func.length(PassageVector.vector)), 0))
    if model_key is not None:
        query = query.where(PassageVector.model_key == model_key)
    return int(session.scalar(query) or 0)


def require_model(session: Session, model_key: str) -> int:
    """The number of passages archived under ``model_key``; ArchiveError when there are none."""
    counts = archive_counts(session)
    if not counts:
        raise ArchiveError(
            "the passage archive is empty: match documents with archive_passages on "
            "(`claimwatch match`, or `claimwatch match --rematch` for documents matched before)"
        )
    if model_key not in counts:
        known = ", ".join(sorted(counts))
        raise ArchiveError(f"no passages archived under model revision {model_key!r} (archived: {known})")
    return counts[model_key]


def iter_vectors(
    session: Session, model_key: str, after_id: int = 0, batch: int = 20_000
) -> Iterator[list[tuple[int, bytes]]]:
    """(id, vector bytes) of a model's archived passages with id > ``after_id``, in id order, in
    batches."""
    last = after_id
    while True:
        rows = session.execute(
            select(PassageVector.id, PassageVector.vector)
            .where(PassageVector.model_key == model_key, PassageVector.id > last)
            .order_by(PassageVector.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield [(int(i), bytes(v)) for i, v in rows]
        last = int(rows[-1][0])


def vector_ids_up_to(session: Session, model_key: str, last_id: int) -> list[int]:
    return list(
        session.scalars(
            select(PassageVector.id)
            .where(PassageVector.model_key == model_key, PassageVector.id <= last_id)
            .order_by(PassageVector.id)
        )
    )


def count_up_to(session: Session, model_key: str, last_id: int) -> int:
    query = select(func.count()).where(PassageVector.model_key == model_key, PassageVector.id <= last_id)
    return int(session.scalar(query) or 0)


def max_vector_id(session: Session, model_key: str) -> int:
    query = select(func.max(PassageVector.id)).where(PassageVector.model_key == model_key)
    return int(session.scalar(query) or 0)


def vectors_by_id(session: Session, ids: Sequence[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = list(ids[start : start + _IN_CHUNK])
        for ident, blob in session.execute(
            select(PassageVector.id, PassageVector.vector).where(PassageVector.id.in_(chunk))
        ):
            found[int(ident)] = bytes(blob)
    return found


@dataclass(frozen=True)
class PassageHit:
    """An archived passage with its document's metadata (a search hit, a cluster member)."""

    id: int
    document_id: int
    start: int
    end: int
    passage: str
    language: str | None
    title: str | None
    url: str
    outlet: str | None
    source: str | None
    date: datetime | None


def passage_details(
    session: Session,
    ids: Sequence[int],
    *,
    language: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    source: str | None = None,
) -> dict[int, PassageHit]:
    """The passages ``ids`` that pass the filters (language; document seen — published, else fetched
    — in [since, until); source key or name, or outlet), with their text cut from documents.text."""
    seen = func.coalesce(Document.published_at, Document.fetched_at)
    found: dict[int, PassageHit] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        query = (
            select(
                PassageVector.id,
                PassageVector.document_id,
                PassageVector.passage_start,
                PassageVector.passage_end,
                PassageVector.language,
                func.substr(
                    Document.text,
                    PassageVector.passage_start + 1,
                    PassageVector.passage_end - PassageVector.passage_start,
                ),
                Document.title,
                Document.url,
                Document.outlet,
                Source.name,
                seen,
            )
            .join(Document, Document.id == PassageVector.document_id)
            .outerjoin(Source, Source.id == Document.source_id)
            .where(PassageVector.id.in_(list(ids[start : start + _IN_CHUNK])))
        )
        if language:
            query = query.where(PassageVector.language == language)
        if since is not None:
            query = query.where(seen >= since)
        if until is not None:
            query = query.where(seen < until)
        if source:
            query = query.where(
                (Source.key == source) | (Source.name == source) | (Document.outlet == source)
            )
        for row in session.execute(query):
            found[int(row[0])] = PassageHit(
                id=int(row[0]),
                document_id=int(row[1]),
                start=int(row[2]),
                end=int(row[3]),
                passage=row[5] or "",
                language=row[4],
                title=row[6],
                url=row[7],
                outlet=row[8],
                source=row[9],
                date=row[10],
            )
    return found


def filtered_ids(
    session: Session,
    model_key: str,
    *,
    language: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    source: str | None = None,
) -> list[int]:
    """Ids of a model's archived passages passing the filters (for exact search over a filtered
    subset)."""
    seen = func.coalesce(Document.published_at, Document.fetched_at)
    query = (
        select(PassageVector.id)
        .join(Document, Document.id == PassageVector.document_id)
        .outerjoin(Source, Source.id == Document.source_id)
        .where(PassageVector.model_key == model_key)
    )
    if language:
        query = query.where(PassageVector.language == language)
    if since is not None:
        query = query.where(seen >= since)
    if until is not None:
        query = query.where(seen < until)
    if source:
        query = query.where((Source.key == source) | (Source.name == source) | (Document.outlet == source))
    return list(session.scalars(query.order_by(PassageVector.id)))


@dataclass(frozen=True)
class ArchivedDocument:
    """A matched document with its archived passages under one model revision (for backfill)."""

    id: int
    language: str | None
    text: str
    rows: list[tuple[int, int, bool, bytes]]  # (start, end, whole, vector), sentences in text order


def stale_documents(
    session: Session, model_key: str, changed_at: datetime, after_id: int = 0, batch: int = 200
) -> list[ArchivedDocument]:
    """Up to ``batch`` documents (id > ``after_id``, id order) archived under ``model_key`` whose
    match stage ran before ``changed_at`` (the claims changed since they were scored)."""
    ids = list(
        session.scalars(
            select(Document.id)
            .where(
                Document.id > after_id,
                Document.match_status.in_(("matched", "no_match")),
                Document.matched_at < changed_at,
                Document.id.in_(
                    select(PassageVector.document_id).where(PassageVector.model_key == model_key)
                ),
            )
            .order_by(Document.id)
            .limit(batch)
        )
    )
    if not ids:
        return []
    texts = {
        int(i): (lang, text or "")
        for i, lang, text in session.execute(
            select(Document.id, Document.language, Document.text).where(Document.id.in_(ids))
        )
    }
    rows: dict[int, list[tuple[int, int, bool, bytes]]] = {i: [] for i in ids}
    for document_id, start, end, whole, blob in session.execute(
        select(
            PassageVector.document_id,
            PassageVector.passage_start,
            PassageVector.passage_end,
            PassageVector.whole,
            PassageVector.vector,
        )
        .where(PassageVector.document_id.in_(ids), PassageVector.model_key == model_key)
        .order_by(PassageVector.document_id, PassageVector.id)
    ):
        rows[int(document_id)].append((int(start), int(end), bool(whole), bytes(blob)))
    return [ArchivedDocument(i, texts[i][0], texts[i][1], rows[i]) for i in ids]


def count_stale_documents(session: Session, changed_at: datetime) -> int:
    query = select(func.count()).where(
        Document.match_status.in_(("matched", "no_match")), Document.matched_at < changed_at
    )
    return int(session.scalar(query) or 0)


def unarchived_stale(session: Session, model_keys: Sequence[str], changed_at: datetime) -> int:
    """Documents scored before ``changed_at`` that have no archived passages under any of
    ``model_keys`` (matched before the archive, or by another model revision): backfill cannot
    score them; `match --rematch` can."""
    archived = select(PassageVector.document_id).where(PassageVector.model_key.in_(list(model_keys)))
    query = select(func.count()).where(
        Document.match_status.in_(("matched", "no_match")),
        Document.matched_at < changed_at,
        Document.id.not_in(archived),
    )
    return int(session.scalar(query) or 0)


def claims_changed_at(session: Session, claim_ids: Sequence[int] | None = None) -> datetime | None:
    """When the claims (all, including deactivated ones, or ``claim_ids``) last changed."""
    query = select(func.max(Claim.updated_at))
    if claim_ids is not None:
        query = query.where(Claim.id.in_(list(claim_ids)))
    return session.scalar(query)


def changed_claims(session: Session, changed_at: datetime, claim_ids: set[int] | None = None) -> int:
    """Claims (active or deactivated) changed since the earliest scoring of a document scored before
    ``changed_at``: what made those documents stale."""
    earliest = session.scalar(
        select(func.min(Document.matched_at)).where(
            Document.match_status.in_(("matched", "no_match")), Document.matched_at < changed_at
        )
    )
    if earliest is None:
        return 0
    query = select(func.count()).where(Claim.updated_at > earliest)
    if claim_ids is not None:
        query = query.where(Claim.id.in_(sorted(claim_ids)))
    return int(session.scalar(query) or 0)


def passage_ids(session: Session, spans: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int, int], int]:
    """Archive row ids of (document id, start, end) spans."""
    found: dict[tuple[int, int, int], int] = {}
    for document_id, start, end in spans:
        ident = session.scalar(
            select(PassageVector.id)
            .where(
                PassageVector.document_id == document_id,
                PassageVector.passage_start == start,
                PassageVector.passage_end == end,
            )
            .limit(1)
        )
        if ident is not None:
            found[(document_id, start, end)] = int(ident)
    return found
