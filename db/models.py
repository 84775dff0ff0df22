"""SQLAlchemy 2 typed models of claimwatch's database.

All timestamps are naive UTC (portable between SQLite and PostgreSQL). ``docs/schema.md`` describes
every table; ``alembic/versions`` holds the migrations that create them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.timeutil import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dict[str, Any]: JSON,
        datetime: DateTime(),
        str: Text,
    }


class Source(Base):
    """A place claimwatch discovers articles: an RSS/Atom feed, a news sitemap, or GDELT."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    url: Mapped[str]
    language: Mapped[str | None] = mapped_column(String(12))
    country: Mapped[str | None] = mapped_column(String(8))
    perspective: Mapped[str | None] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    last_fetched_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(200))
    last_success_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrawlRun(Base):
    """One execution of a stage (crawl, match, run, demo) with its outcome and counters."""

    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    since: Mapped[datetime | None]
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0)
    documents_stored: Mapped[int] = mapped_column(Integer, default=0)
    documents_relevant: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    documents_matched: Mapped[int] = mapped_column(Integer, default=0)
    passages_encoded: Mapped[int] = mapped_column(Integer, default=0)
    matches_stored: Mapped[int] = mapped_column(Integer, default=0)
    stats: Mapped[dict[str, Any] | None]
    error: Mapped[str | None]
    pid: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_crawl_runs_kind_status_started", "kind", "status", "started_at"),)


class Document(Base):
    """A fetched page: an extracted article, an irrelevant page, or a failure with its reason."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(unique=True)
    final_url: Mapped[str | None]
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"), index=True)
    crawl_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="SET NULL"), index=True
    )
    discovered_via: Mapped[str | None] = mapped_column(String(20))
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    http_status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str | None]
    retryable: Mapped[bool] = mapped_column(Boolean, default=False)
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str | None]
    author: Mapped[str | None]
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    sitename: Mapped[str | None]
    outlet: Mapped[str | None] = mapped_column(String(255), index=True)
    language: Mapped[str | None] = mapped_column(String(12), index=True)
    description: Mapped[str | None]
    text: Mapped[str | None]
    text_chars: Mapped[int | None] = mapped_column(Integer)
    relevance_terms: Mapped[str | None]
    content_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    simhash: Mapped[int | None] = mapped_column(BigInteger)
    simhash_band0: Mapped[int | None] = mapped_column(Integer, index=True)
    simhash_band1: Mapped[int | None] = mapped_column(Integer, index=True)
    simhash_band2: Mapped[int | None] = mapped_column(Integer, index=True)
    simhash_band3: Mapped[int | None] = mapped_column(Integer, index=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), index=True
    )
    duplicate_kind: Mapped[str | None] = mapped_column(String(10))
    match_status: Mapped[str] = mapped_column(String(20), default="skipped", index=True)
    matched_at: Mapped[datetime | None]
    match_model: Mapped[str | None] = mapped_column(String(300))

    source: Mapped[Source | None] = relationship()
    duplicate_of: Mapped[Document | None] = relationship(remote_side=[id])


class Claim(Base):
    """One assertion of a claim set (the seed article's claims, or a researcher's own)."""

    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_set: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(120))
    text: Mapped[str]
    paragraph: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[dict[str, Any] | None]
    text_hash: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("claim_set", "key"),)


class Embedding(Base):
    """Cached embedding of one text under one model revision (claims are embedded once)."""

    __tablename__ = "embeddings"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_key: Mapped[str] = mapped_column(String(400))
    text_hash: Mapped[str] = mapped_column(String(64))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("model_key", "text_hash"),)


class Match(Base):
    """A passage of a document that matches a claim at or above the threshold."""

    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    passage: Mapped[str]
    passage_start: Mapped[int] = mapped_column(Integer)
    passage_end: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(300))
    model_revision: Mapped[str] = mapped_column(String(200))
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    document: Mapped[Document] = relationship()
    claim: Mapped[Claim] = relationship()

    __table_args__ = (UniqueConstraint("document_id", "claim_id", "passage_start", "passage_end", "model"),)


class Alert(Base):
    """One alert stage's result: the claims that recurred in a run (their matches are alert_items)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id", ondelete="SET NULL"))
    claims: Mapped[int] = mapped_column(Integer, default=0)
    documents: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any] | None]


class AlertItem(Base):
    """A match covered by an alert; its document (the original of a syndicated copy) is no longer new."""

    __tablename__ = "alert_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), unique=True)

    __table_args__ = (Index("ix_alert_items_claim_document", "claim_id", "document_id"),)


class Delivery(Base):
    """One digest e-mail of an alert to one recipient: pending → sending → sent (or failed/unconfirmed)."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    subject: Mapped[str]
    message: Mapped[str]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("alert_id", "recipient"),)


class Subscription(Base):
    """A recipient of alerts for one claim set, one claim, or everything ('' means any)."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    claim_set: Mapped[str] = mapped_column(String(120), default="")
    claim_key: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("email", "claim_set", "claim_key"),)


class RunLock(Base):
    """A named lock held by one process (heartbeat renews ``expires_at``); see crawler/scheduling.py."""

    __tablename__ = "run_locks"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(40))
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
