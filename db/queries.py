"""Data access for claimwatch. Every function takes a Session; the caller owns the transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import Claim, CrawlRun, Document, Embedding, Match, Source
from db.session import affected_rows
from db.timeutil import utcnow
from pipelines.dedup import from_signed64, is_near_duplicate, simhash_bands, to_signed64
from pipelines.records import DocumentRecord
from pipelines.status import DocumentStatus, MatchStatus, RunStatus

logger = logging.getLogger(__name__)

MAX_FETCH_ATTEMPTS = 3
_IN_CHUNK = 500


def _insert(session: Session, model: Any) -> Any:
    """A dialect-specific INSERT supporting ON CONFLICT (SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"claimwatch supports SQLite and PostgreSQL, not {dialect}")


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- sources -------------------------------------------------------------------------------------

SOURCE_FIELDS = ("name", "kind", "url", "language", "country", "perspective", "enabled")


def upsert_sources(session: Session, sources: Iterable[dict[str, Any]]) -> int:
    """Insert new sources and update the descriptive fields of known ones (crawl state is kept)."""
    count = 0
    for source in sources:
        values = {"key": source["key"], **{k: source.get(k) for k in SOURCE_FIELDS if k in source}}
        values.setdefault("name", source["key"])
        values.setdefault("enabled", True)
        statement = _insert(session, Source).values(**values)
        updates = {k: statement.excluded[k] for k in SOURCE_FIELDS if k in values}
        session.execute(statement.on_conflict_do_update(index_elements=["key"], set_=updates))
        count += 1
    return count


def list_sources(
    session: Session, kinds: Iterable[str] | None = None, enabled_only: bool = True
) -> list[Source]:
    query = select(Source).order_by(Source.key)
    if kinds is not None:
        query = query.where(Source.kind.in_(list(kinds)))
    if enabled_only:
        query = query.where(Source.enabled.is_(True))
    return list(session.scalars(query))


def update_source_state(
    session: Session,
    key: str,
    *,
    status: str,
    ok: bool,
    etag: str | None = None,
    last_modified: str | None = None,
    when: datetime | None = None,
) -> None:
    when = when or utcnow()
    values: dict[str, Any] = {"last_status": status[:200], "last_fetched_at": when}
    if ok:
        values["last_success_at"] = when
        # Only a successful fetch may move the validators, or a failure would erase them.
        values["etag"] = etag
        values["last_modified"] = last_modified
    session.execute(update(Source).where(Source.key == key).values(**values))


def source_ids_by_key(session: Session) -> dict[str, int]:
    return {key: source_id for key, source_id in session.execute(select(Source.key, Source.id))}


# --- crawl runs ----------------------------------------------------------------------------------


def start_run(session: Session, kind: str, since: datetime | None = None, pid: int | None = None) -> CrawlRun:
    run = CrawlRun(kind=kind, status=RunStatus.RUNNING, since=since, pid=pid, started_at=utcnow())
    session.add(run)
    session.flush()
    return run


RUN_COUNTERS = (
    "pages_fetched",
    "documents_stored",
    "documents_relevant",
    "duplicates",
    "failures",
    "documents_matched",
    "passages_encoded",
    "matches_stored",
)


def finish_run(
    session: Session,
    run_id: int,
    status: str,
    *,
    error: str | None = None,
    stats: dict[str, Any] | None = None,
    counters: dict[str, int] | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
    if stats is not None:
        values["stats"] = stats
    for name, value in (counters or {}).items():
        if name in RUN_COUNTERS:
            values[name] = value
    session.execute(update(CrawlRun).where(CrawlRun.id == run_id).values(**values))


def close_abandoned_runs(session: Session, keep: Sequence[int] = ()) -> int:
    """Mark runs still 'running' as interrupted: called by the holder of the run lock, so no other
    run can be alive (a killed or crashed process leaves its row 'running')."""
    query = update(CrawlRun).where(CrawlRun.status == RunStatus.RUNNING)
    if keep:
        query = query.where(CrawlRun.id.not_in(list(keep)))
    result = session.execute(
        query.values(
            status=RunStatus.INTERRUPTED,
            finished_at=utcnow(),
            error="abandoned: the process ended without finishing this run (found by the next run)",
        )
    )
    return affected_rows(result)


def add_run_counters(session: Session, run_id: int, counters: dict[str, int]) -> None:
    """Add to a run's counters atomically (several batches report into one run)."""
    values = {
        name: getattr(CrawlRun, name) + value for name, value in counters.items() if name in RUN_COUNTERS
    }
    if values:
        session.execute(update(CrawlRun).where(CrawlRun.id == run_id).values(**values))


def last_successful_crawl_start(session: Session) -> datetime | None:
    """Start time of the last crawl that finished successfully: the next crawl's since-window."""
    return session.scalar(
        select(func.max(CrawlRun.started_at)).where(
            CrawlRun.kind == "crawl", CrawlRun.status == RunStatus.SUCCEEDED
        )
    )


def recent_runs(session: Session, limit: int = 10) -> list[CrawlRun]:
    return list(session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc()).limit(limit)))


# --- documents -----------------------------------------------------------------------------------


def known_urls(session: Session, urls: Sequence[str]) -> set[str]:
    """The URLs among ``urls`` that need no fetch: stored, or failed for good (or too often)."""
    known: set[str] = set()
    for chunk in _chunks(list(dict.fromkeys(urls))):
        rows = session.execute(
            select(Document.url).where(
                Document.url.in_(chunk),
                or_(
                    Document.status != DocumentStatus.FAILED,
                    Document.retryable.is_(False),
                    Document.fetch_attempts >= MAX_FETCH_ATTEMPTS,
                ),
            )
        )
        known.update(rows.scalars())
    return known


@dataclass
class StoreCounts:
    stored: int = 0
    relevant: int = 0
    duplicates: int = 0
    failures: int = 0
    retried: int = 0
    skipped_known: int = 0
    duplicate_urls: list[str] = field(default_factory=list)

    def as_run_counters(self) -> dict[str, int]:
        return {
            "documents_stored": self.stored,
            "documents_relevant": self.relevant,
            "duplicates": self.duplicates,
            "failures": self.failures,
        }


def _find_original(
    session: Session, record: dict[str, Any], batch: list[dict[str, Any]]
) -> tuple[int | str, str] | None:
    """The document this record copies (exact hash, else SimHash within NEAR_DUPLICATE_BITS).

    Returns (document id, kind), or (url, kind) when the original is earlier in the same batch.
    """
    digest = record.get("content_hash")
    fingerprint = record.get("simhash")
    if digest is None or fingerprint is None:
        return None
    for earlier in batch:
        if earlier.get("duplicate_of_id") is None and earlier.get("_original_url") is None:
            if earlier.get("content_hash") == digest:
                return earlier["url"], "exact"
            if earlier.get("simhash") is not None and is_near_duplicate(
                from_signed64(earlier["simhash"]), from_signed64(fingerprint)
            ):
                return earlier["url"], "near"
    exact = session.scalar(
        select(Document.id)
        .where(Document.content_hash == digest, Document.duplicate_of_id.is_(None))
        .order_by(Document.id)
        .limit(1)
    )
    if exact is not None:
        return exact, "exact"
    bands = simhash_bands(fingerprint)
    candidates = session.execute(
        select(Document.id, Document.simhash)
        .where(
            Document.duplicate_of_id.is_(None),
            Document.simhash.is_not(None),
            or_(
                Document.simhash_band0 == bands[0],
                Document.simhash_band1 == bands[1],
                Document.simhash_band2 == bands[2],
                Document.simhash_band3 == bands[3],
            ),
        )
        .order_by(Document.id)
    )
    for doc_id, other in candidates:
        if other is not None and is_near_duplicate(from_signed64(other), from_signed64(fingerprint)):
            return doc_id, "near"
    return None


def store_documents(session: Session, batch: Sequence[DocumentRecord | Mapping[str, Any]]) -> StoreCounts:
    """Store a batch of fetched pages in one transaction step (the caller commits).

    Each record is a DocumentRecord, or a dict of its fields (an unknown key raises ValueError);
    ``simhash`` is the unsigned fingerprint. Pages that
    copy an earlier document are linked to it (``duplicate_of_id``) and not queued for matching.
    A URL already stored is left alone, except a retryable failure, which a new fetch replaces.
    """
    counts = StoreCounts()
    if not batch:
        return counts
    records = [r if isinstance(r, DocumentRecord) else DocumentRecord.from_mapping(r) for r in batch]
    urls = [r.url for r in records]
    existing = {
        row.url: row
        for chunk in _chunks(urls)
        for row in session.execute(
            select(
                Document.url, Document.id, Document.status, Document.retryable, Document.fetch_attempts
            ).where(Document.url.in_(chunk))
        )
    }
    accepted: list[dict[str, Any]] = []
    seen: set[str] = set()
    for raw in records:
        # PostgreSQL text cannot hold NUL characters; pages occasionally contain them.
        record: dict[str, Any] = {
            k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in raw.columns().items()
        }
        url = record["url"]
        if url in seen:
            continue
        seen.add(url)
        prior = existing.get(url)
        if prior is not None and not (prior.status == DocumentStatus.FAILED and prior.retryable):
            counts.skipped_known += 1
            continue
        if record.get("simhash") is not None:
            record["simhash"] = to_signed64(record["simhash"])
            for i, band in enumerate(simhash_bands(record["simhash"])):
                record[f"simhash_band{i}"] = band
        if record["status"] != DocumentStatus.FAILED:
            original = _find_original(session, record, accepted)
            if original is not None:
                target, kind = original
                record["duplicate_kind"] = kind
                record["match_status"] = MatchStatus.DUPLICATE
                if isinstance(target, str):
                    record["_original_url"] = target
                else:
                    record["duplicate_of_id"] = target
                counts.duplicates += 1
                counts.duplicate_urls.append(url)
        if prior is not None:
            record["fetch_attempts"] = prior.fetch_attempts + 1
            session.execute(
                update(Document)
                .where(Document.id == prior.id)
                .values(**{k: v for k, v in record.items() if not k.startswith("_")})
            )
            counts.retried += 1
        else:
            accepted.append(record)
        counts.stored += 1
        counts.relevant += record["status"] == DocumentStatus.OK
        counts.failures += record["status"] == DocumentStatus.FAILED
    inserts = [{k: v for k, v in r.items() if not k.startswith("_")} for r in accepted]
    if inserts:
        statement = _insert(session, Document).on_conflict_do_nothing(index_elements=["url"])
        session.execute(statement, inserts)
    batch_links = [(r["url"], r["_original_url"]) for r in accepted if r.get("_original_url")]
    if batch_links:
        linked = [u for pair in batch_links for u in pair]
        ids = {
            url: doc_id
            for url, doc_id in session.execute(
                select(Document.url, Document.id).where(Document.url.in_(linked))
            )
        }
        for url, original_url in batch_links:
            session.execute(
                update(Document).where(Document.url == url).values(duplicate_of_id=ids[original_url])
            )
    return counts


def set_match_status(
    session: Session, ids: Sequence[int], status: str, model: str | None, when: datetime | None = None
) -> None:
    if ids:
        session.execute(
            update(Document)
            .where(Document.id.in_(list(ids)))
            .values(match_status=status, match_model=model, matched_at=when or utcnow())
        )


def requeue_documents(
    session: Session,
    statuses: Iterable[str] = (MatchStatus.MATCHED, MatchStatus.NO_MATCH, MatchStatus.NOT_SCORED),
) -> int:
    """Queue matched documents again (after a model or claims change)."""
    result = session.execute(
        update(Document)
        .where(Document.match_status.in_(list(statuses)))
        .values(match_status=MatchStatus.PENDING)
    )
    return affected_rows(result)


# --- claims and embeddings -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimSync:
    added: int
    updated: int
    unchanged: int


# fields of a claim's ``extra`` kept in their own columns: a fact-checker's review (ClaimReview)
REVIEW_FIELDS = ("verdict", "claimant", "review_url", "reviewer", "reviewed_at", "language")


def review_columns(extra: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the review columns, the rest of ``extra``) of a claim; ``reviewed_at`` may be an ISO string."""
    extra = dict(extra or {})
    columns: dict[str, Any] = {}
    for name in REVIEW_FIELDS:
        value = extra.pop(name, None)
        if name == "reviewed_at" and isinstance(value, str):
            try:
                value = naive_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
            except ValueError:
                value = None
        elif value is not None and not isinstance(value, datetime):
            value = str(value)
        columns[name] = value
    return columns, extra or None


def naive_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def sync_claims(session: Session, claim_set: str, claims: Sequence[Any], text_hash: Any) -> ClaimSync:
    """Make the stored claim set equal to ``claims`` (objects with id, text, paragraph, extra).

    Claims missing from the file are deactivated, never deleted, so their matches stay intact.
    """
    stored = {c.key: c for c in session.scalars(select(Claim).where(Claim.claim_set == claim_set))}
    added = updated = unchanged = 0
    now = utcnow()
    for claim in claims:
        digest = text_hash(claim.text)
        row = stored.pop(claim.id, None)
        review, extra = review_columns(claim.extra)
        if row is None:
            session.add(
                Claim(
                    claim_set=claim_set,
                    key=claim.id,
                    text=claim.text,
                    paragraph=claim.paragraph,
                    extra=extra,
                    text_hash=digest,
                    active=True,
                    created_at=now,
                    updated_at=now,
                    **review,
                )
            )
            added += 1
        elif (
            row.text_hash != digest
            or not row.active
            or row.paragraph != claim.paragraph
            or row.extra != extra
            or any(getattr(row, name) != value for name, value in review.items())
        ):
            row.text, row.text_hash, row.paragraph = claim.text, digest, claim.paragraph
            row.extra, row.active, row.updated_at = extra, True, now
            for name, value in review.items():
                setattr(row, name, value)
            updated += 1
        else:
            unchanged += 1
    for row in stored.values():
        if row.active:
            row.active = False
            row.updated_at = now
            updated += 1
    session.flush()
    return ClaimSync(added, updated, unchanged)


def active_claims(session: Session, claim_set: str | None = None) -> list[Claim]:
    query = select(Claim).where(Claim.active.is_(True)).order_by(Claim.claim_set, Claim.key)
    if claim_set is not None:
        query = query.where(Claim.claim_set == claim_set)
    return list(session.scalars(query))


def claim_sets(session: Session) -> list[tuple[str, int]]:
    query = (
        select(Claim.claim_set, func.count())
        .where(Claim.active.is_(True))
        .group_by(Claim.claim_set)
        .order_by(Claim.claim_set)
    )
    return [(name, count) for name, count in session.execute(query)]


class DatabaseEmbeddingCache:
    """The EmbeddingCache protocol of pipelines.embed, stored in the ``embeddings`` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, model_key: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for chunk in _chunks(list(hashes)):
            rows = self.session.execute(
                select(Embedding.text_hash, Embedding.vector).where(
                    Embedding.model_key == model_key, Embedding.text_hash.in_(chunk)
                )
            )
            for digest, blob in rows:
                found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, model_key: str, items: dict[str, np.ndarray]) -> None:
        rows = [
            {
                "model_key": model_key,
                "text_hash": digest,
                "dim": int(vector.shape[-1]),
                "vector": np.asarray(vector, dtype=np.float32).tobytes(),
                "created_at": utcnow(),
            }
            for digest, vector in items.items()
        ]
        if rows:
            statement = _insert(self.session, Embedding).on_conflict_do_nothing(
                index_elements=["model_key", "text_hash"]
            )
            self.session.execute(statement, rows)


# --- matches -------------------------------------------------------------------------------------


def store_matches(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert matches and return how many were new; a match already stored (same document, claim,
    passage, model) is kept as is."""
    if not rows:
        return 0
    statement = _insert(session, Match).on_conflict_do_nothing(
        index_elements=["document_id", "claim_id", "passage_start", "passage_end", "model"]
    )
    return len(session.execute(statement.returning(Match.id), list(rows)).all())


@dataclass(frozen=True)
class ClaimSummary:
    claim_set: str
    key: str
    text: str
    matches: int
    documents: int
    sources: int
    languages: str
    first_seen: datetime | None
    last_seen: datetime | None


def claim_summaries(session: Session, claim_set: str | None = None) -> list[ClaimSummary]:
    """Per active claim: matches, distinct documents and outlets, first and last seen.

    Syndicated copies are never matched (they point to their original), so each story counts once.
    ``first_seen``/``last_seen`` use the publication date, or the fetch time when it is unknown.
    """
    seen_at = func.coalesce(Document.published_at, Document.fetched_at)
    query = (
        select(
            Claim.claim_set,
            Claim.key,
            Claim.text,
            func.count(Match.id),
            func.count(func.distinct(Match.document_id)),
            func.count(func.distinct(Document.outlet)),
            func.min(seen_at),
            func.max(seen_at),
        )
        .select_from(Claim)
        .outerjoin(Match, Match.claim_id == Claim.id)
        .outerjoin(Document, Document.id == Match.document_id)
        .where(Claim.active.is_(True))
        .group_by(Claim.id, Claim.claim_set, Claim.key, Claim.text)
        .order_by(Claim.claim_set, Claim.key)
    )
    if claim_set is not None:
        query = query.where(Claim.claim_set == claim_set)
    languages = _claim_languages(session)
    return [
        ClaimSummary(cs, key, text, m, d, s, ",".join(languages.get((cs, key), [])), first, last)
        for cs, key, text, m, d, s, first, last in session.execute(query)
    ]


def _claim_languages(session: Session) -> dict[tuple[str, str], list[str]]:
    rows = session.execute(
        select(Claim.claim_set, Claim.key, Document.language)
        .join(Match, Match.claim_id == Claim.id)
        .join(Document, Document.id == Match.document_id)
        .distinct()
        .order_by(Document.language)
    )
    out: dict[tuple[str, str], list[str]] = {}
    for claim_set, key, language in rows:
        out.setdefault((claim_set, key), []).append(language or "?")
    return out


def table_counts(session: Session) -> dict[str, int]:
    counts = {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Source, CrawlRun, Document, Claim, Match, Embedding)
    }
    for status, n in session.execute(select(Document.status, func.count()).group_by(Document.status)):
        counts[f"documents.{status}"] = n
    for status, n in session.execute(
        select(Document.match_status, func.count()).group_by(Document.match_status)
    ):
        counts[f"documents.match_status.{status}"] = n
    return counts


# --- match workers (appended: issue #6) ----------------------------------------------------------


def claim_pending_documents(session: Session, limit: int) -> list[Document]:
    """Up to ``limit`` pending documents, oldest first, claimed for this transaction.

    PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` — rows another open transaction claimed are
    skipped, so concurrent workers never get the same document; the claim ends with the transaction
    (commit, rollback, or a dropped connection when a worker is killed: the rows are pending again).
    SQLite has no row locks and serialises its writers: the rows are read plainly and the caller
    re-checks them with ``still_pending_ids`` inside its write transaction (BEGIN IMMEDIATE).
    """
    query = (
        select(Document)
        .where(Document.match_status == MatchStatus.PENDING)
        .order_by(Document.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Document)
    return list(session.scalars(query))


def still_pending_ids(session: Session, ids: Sequence[int]) -> set[int]:
    """The ids among ``ids`` whose match_status is still 'pending'."""
    found: set[int] = set()
    for chunk in _chunks(list(ids)):
        found.update(
            session.scalars(
                select(Document.id).where(
                    Document.id.in_(chunk), Document.match_status == MatchStatus.PENDING
                )
            )
        )
    return found


def count_pending_documents(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(Document.match_status == MatchStatus.PENDING)) or 0)
