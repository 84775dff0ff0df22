"""SQLAlchemy 2 typed models of claimwatch's database.

All timestamps are naive UTC (portable between SQLite and PostgreSQL). ``docs/schema.md`` describes
every table; ``alembic/versions`` holds the migrations that create them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
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
from pipelines.status import RunStatus

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

    id: Mapped[int] = mapped_column(primary_key=True, comment="Surrogate key.")
    key: Mapped[str] = mapped_column(
        String(120), unique=True, comment="Stable unique key of the source (from the sources file)."
    )
    name: Mapped[str] = mapped_column(String(200), comment="Human-readable name of the outlet or query.")
    kind: Mapped[str] = mapped_column(String(20), comment="feed, sitemap or gdelt.")
    url: Mapped[str] = mapped_column(comment="Address of the feed, sitemap or GDELT query.")
    language: Mapped[str | None] = mapped_column(String(12), comment="Declared main language (ISO 639-1).")
    country: Mapped[str | None] = mapped_column(
        String(8), comment="Country of the outlet (ISO 3166-1 alpha-2)."
    )
    perspective: Mapped[str | None] = mapped_column(
        String(40),
        comment="Perspective tag: russian, azerbaijani, armenian, georgian, ukrainian, turkish, regional, "
        "western or discovery.",
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, comment="Whether crawls fetch this source.")
    etag: Mapped[str | None] = mapped_column(comment="ETag of the last successful fetch (conditional GET).")
    last_modified: Mapped[str | None] = mapped_column(
        comment="Last-Modified of the last successful fetch (conditional GET)."
    )
    last_fetched_at: Mapped[datetime | None] = mapped_column(comment="Last fetch attempt (naive UTC).")
    last_status: Mapped[str | None] = mapped_column(
        String(200), comment="Outcome of the last fetch (HTTP status or error)."
    )
    last_success_at: Mapped[datetime | None] = mapped_column(comment="Last successful fetch (naive UTC).")
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, comment="When the source was added (naive UTC)."
    )

    __table_args__ = {
        "comment": "Where claimwatch discovers articles: RSS/Atom feeds, news sitemaps, GDELT queries."
    }


class SourceCheck(Base):
    """The latest probe of a source by ``claimwatch doctor --sources`` (one row per source)."""

    __tablename__ = "source_checks"

    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
        comment="sources.id of the probed source.",
    )
    checked_at: Mapped[datetime] = mapped_column(default=utcnow, comment="When it was probed (naive UTC).")
    status: Mapped[str] = mapped_column(
        String(20),
        comment="Verdict: ok, moved, stale, empty, not-a-feed, blocked-by-robots or error.",
    )
    http_status: Mapped[int | None] = mapped_column(Integer, comment="HTTP status of the final response.")
    url: Mapped[str] = mapped_column(comment="Address probed (the source's address at the time).")
    final_url: Mapped[str | None] = mapped_column(comment="Address after redirects.")
    moved_to: Mapped[str | None] = mapped_column(
        comment="New address offered when the source redirects permanently."
    )
    content_type: Mapped[str | None] = mapped_column(String(200), comment="Content-Type of the response.")
    parsed_as: Mapped[str | None] = mapped_column(
        String(40), comment="What the body parsed as: rss20, atom10, urlset, sitemapindex, robots.txt, gdelt."
    )
    items: Mapped[int | None] = mapped_column(Integer, comment="Items (entries, URLs, articles) listed.")
    newest_item_at: Mapped[datetime | None] = mapped_column(comment="Date of the newest item (naive UTC).")
    items_recent: Mapped[int | None] = mapped_column(Integer, comment="Items dated in the last 7 days.")
    detail: Mapped[str | None] = mapped_column(comment="What the verdict rests on, in words.")
    fix: Mapped[str | None] = mapped_column(comment="What to do about it (empty when nothing).")

    __table_args__ = {"comment": "The latest probe of each source by `claimwatch doctor --sources`."}


class CrawlRun(Base):
    """One execution of a stage (crawl, match, run, demo) with its outcome and counters."""

    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True, comment="Surrogate key.")
    kind: Mapped[str] = mapped_column(String(20), comment="Stage: crawl, match, run or demo.")
    status: Mapped[str] = mapped_column(
        String(20), default=RunStatus.RUNNING, comment="running, succeeded, failed or interrupted."
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow, comment="Start (naive UTC).")
    finished_at: Mapped[datetime | None] = mapped_column(comment="End (naive UTC); empty while running.")
    since: Mapped[datetime | None] = mapped_column(
        comment="Crawl window start: only articles published after it were fetched."
    )
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0, comment="Pages downloaded.")
    documents_stored: Mapped[int] = mapped_column(
        Integer, default=0, comment="Documents stored (new rows or retried failures)."
    )
    documents_relevant: Mapped[int] = mapped_column(
        Integer, default=0, comment="Stored documents about Russia-Azerbaijan relations."
    )
    duplicates: Mapped[int] = mapped_column(
        Integer, default=0, comment="Stored documents that copy an earlier one."
    )
    failures: Mapped[int] = mapped_column(
        Integer, default=0, comment="Pages that could not be fetched or extracted."
    )
    documents_matched: Mapped[int] = mapped_column(
        Integer, default=0, comment="Documents scored by the match stage."
    )
    passages_encoded: Mapped[int] = mapped_column(
        Integer, default=0, comment="Passages embedded by the match stage."
    )
    matches_stored: Mapped[int] = mapped_column(Integer, default=0, comment="New matches stored.")
    stats: Mapped[dict[str, Any] | None] = mapped_column(
        comment="Scrapy statistics and other details (JSON)."
    )
    error: Mapped[str | None] = mapped_column(comment="Error that ended the run, if any.")
    pid: Mapped[int | None] = mapped_column(Integer, comment="Process id of the run.")

    __table_args__ = (
        Index("ix_crawl_runs_kind_status_started", "kind", "status", "started_at"),
        {"comment": "One execution of a stage (crawl, match, run, demo) with its outcome and counters."},
    )


class Document(Base):
    """A fetched page: an extracted article, an irrelevant page, or a failure with its reason."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True, comment="Surrogate key.")
    url: Mapped[str] = mapped_column(
        unique=True, comment="Canonical URL (tracking parameters and fragment stripped); unique."
    )
    final_url: Mapped[str | None] = mapped_column(comment="URL after redirects.")
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), index=True, comment="Source that found the page."
    )
    crawl_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="SET NULL"),
        index=True,
        comment="Crawl run that stored the page.",
    )
    discovered_via: Mapped[str | None] = mapped_column(
        String(20), comment="How the link was found: feed, sitemap or gdelt."
    )
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow, comment="Fetch time (naive UTC).")
    http_status: Mapped[int | None] = mapped_column(Integer, comment="HTTP status of the response.")
    content_type: Mapped[str | None] = mapped_column(String(200), comment="Content-Type of the response.")
    status: Mapped[str] = mapped_column(
        String(20), index=True, comment="ok (relevant), irrelevant or failed."
    )
    reason: Mapped[str | None] = mapped_column(comment="Why the page is irrelevant or failed.")
    retryable: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        comment="Failure is transient (5xx, timeout) and is fetched again, at most three times.",
    )
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=1, comment="Fetches of this URL so far.")
    title: Mapped[str | None] = mapped_column(comment="Article title.")
    author: Mapped[str | None] = mapped_column(comment="Article author(s).")
    published_at: Mapped[datetime | None] = mapped_column(
        index=True, comment="Publication time (naive UTC) when known."
    )
    sitename: Mapped[str | None] = mapped_column(comment="Site name from the page metadata.")
    outlet: Mapped[str | None] = mapped_column(
        String(255),
        index=True,
        comment="Outlet: the publication's name from the page metadata, else the host of the final URL.",
    )
    language: Mapped[str | None] = mapped_column(
        String(12), index=True, comment="Detected language (ISO 639-1)."
    )
    description: Mapped[str | None] = mapped_column(comment="Article description or lead.")
    text: Mapped[str | None] = mapped_column(comment="Extracted article text.")
    text_chars: Mapped[int | None] = mapped_column(Integer, comment="Length of text in characters.")
    relevance_terms: Mapped[str | None] = mapped_column(
        comment="Russia and Azerbaijan terms found in the text."
    )
    content_hash: Mapped[str | None] = mapped_column(
        String(64), index=True, comment="SHA-256 of the normalised text (exact duplicates)."
    )
    simhash: Mapped[int | None] = mapped_column(
        BigInteger, comment="64-bit SimHash of the text, signed (near duplicates)."
    )
    simhash_band0: Mapped[int | None] = mapped_column(
        Integer, index=True, comment="SimHash bits 0-15 (indexed near-duplicate lookup)."
    )
    simhash_band1: Mapped[int | None] = mapped_column(Integer, index=True, comment="SimHash bits 16-31.")
    simhash_band2: Mapped[int | None] = mapped_column(Integer, index=True, comment="SimHash bits 32-47.")
    simhash_band3: Mapped[int | None] = mapped_column(Integer, index=True, comment="SimHash bits 48-63.")
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"),
        index=True,
        comment="Original this page copies (syndicated copy); empty for originals.",
    )
    duplicate_kind: Mapped[str | None] = mapped_column(String(10), comment="exact or near.")
    match_status: Mapped[str] = mapped_column(
        String(20),
        default="skipped",
        index=True,
        comment="skipped, pending, matched, no_match, not_scored or duplicate.",
    )
    matched_at: Mapped[datetime | None] = mapped_column(
        comment="When the match stage scored the document (naive UTC)."
    )
    match_model: Mapped[str | None] = mapped_column(String(300), comment="Model that scored the document.")

    __table_args__ = (
        # Research views (db/views.py): every documents column they read, so SQLite never reads the
        # (overflowing) text of a row, and source_health's per-source counts.
        Index(
            "ix_documents_research",
            "id",
            "duplicate_of_id",
            "published_at",
            "fetched_at",
            "source_id",
            "outlet",
            "language",
        ),
        # source_health's failure reasons from the index alone (migration 0005; reasons are cut to
        # 500 characters, well within a btree entry)
        Index("ix_documents_failures", "status", "source_id", "reason"),
        Index(
            "ix_documents_source_health",
            "source_id",
            "status",
            "match_status",
            "duplicate_of_id",
            "retryable",
            "fetched_at",
        ),
        {"comment": "A fetched page: extracted article, irrelevant page, or failure with its reason."},
    )

    source: Mapped[Source | None] = relationship()
    duplicate_of: Mapped[Document | None] = relationship(remote_side=[id])


class Claim(Base):
    """One assertion of a claim set (the seed article's claims, or a researcher's own)."""

    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(primary_key=True, comment="Surrogate key.")
    claim_set: Mapped[str] = mapped_column(String(120), comment="Name of the claim set.")
    key: Mapped[str] = mapped_column(
        String(120), comment="Stable key of the claim within its set (e.g. seed-04)."
    )
    text: Mapped[str] = mapped_column(comment="The claim in our own words.")
    paragraph: Mapped[int | None] = mapped_column(
        Integer, comment="Paragraph of the seed article the claim comes from."
    )
    extra: Mapped[dict[str, Any] | None] = mapped_column(
        comment="Further fields from the claims file (JSON)."
    )
    text_hash: Mapped[str] = mapped_column(String(64), comment="Hash of text (embedding cache key).")
    active: Mapped[bool] = mapped_column(
        Boolean,
        default=True,
        comment="Whether the claim is in the current claims file; inactive claims keep their matches.",
    )
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, comment="When the claim was added (naive UTC)."
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, comment="Last change (naive UTC).")
    # a fact-checker's review of the claim (schema.org ClaimReview; pipelines/claimreview.py)
    verdict: Mapped[str | None] = mapped_column(
        String(200), comment="Fact-checker's rating (ClaimReview reviewRating.alternateName)."
    )
    claimant: Mapped[str | None] = mapped_column(
        String(300), comment="Who made the claim (ClaimReview itemReviewed.author.name)."
    )
    review_url: Mapped[str | None] = mapped_column(comment="Address of the fact-checker's review.")
    reviewer: Mapped[str | None] = mapped_column(
        String(300), comment="Publisher of the review (ClaimReview author or publisher name)."
    )
    reviewed_at: Mapped[datetime | None] = mapped_column(
        comment="When the review was published (ClaimReview datePublished; naive UTC)."
    )
    language: Mapped[str | None] = mapped_column(
        String(35), comment="Language of the claim text (ClaimReview inLanguage)."
    )

    __table_args__ = (
        UniqueConstraint("claim_set", "key"),
        {"comment": "One assertion of a claim set (the seed article's claims, or a researcher's own)."},
    )


class Embedding(Base):
    """Cached embedding of one text under one model revision (claims are embedded once)."""

    __tablename__ = "embeddings"

    id: Mapped[int] = mapped_column(primary_key=True, comment="Surrogate key.")
    model_key: Mapped[str] = mapped_column(String(400), comment="Model name@revision.")
    text_hash: Mapped[str] = mapped_column(String(64), comment="Hash of the embedded text.")
    dim: Mapped[int] = mapped_column(Integer, comment="Vector dimension.")
    vector: Mapped[bytes] = mapped_column(LargeBinary, comment="float32 vector, little-endian bytes.")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="When it was computed (naive UTC).")

    __table_args__ = (
        UniqueConstraint("model_key", "text_hash"),
        {"comment": "Cached embedding of one text under one model revision."},
    )


class Match(Base):
    """A passage of a document that matches a claim at or above the threshold."""

    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(primary_key=True, comment="Surrogate key.")
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), comment="Matched document (always an original)."
    )
    claim_id: Mapped[int] = mapped_column(
        ForeignKey("claims.id", ondelete="CASCADE"), index=True, comment="Matched claim."
    )
    passage: Mapped[str] = mapped_column(comment="The matching passage (a sentence or a 2-sentence window).")
    passage_start: Mapped[int] = mapped_column(
        Integer, comment="Character offset of the passage in documents.text."
    )
    passage_end: Mapped[int] = mapped_column(Integer, comment="Character offset just after the passage.")
    score: Mapped[float] = mapped_column(
        Float,
        comment="Match score: the cosine of passage and claim embeddings, fused with the other parts of "
        "score_components when the matcher combines several.",
    )
    threshold: Mapped[float] = mapped_column(Float, comment="Threshold in force when the match was stored.")
    model: Mapped[str] = mapped_column(String(300), comment="Embedding model.")
    model_revision: Mapped[str] = mapped_column(String(200), comment="Revision of the embedding model.")
    crawl_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="SET NULL"), comment="Match run that stored the match."
    )
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, index=True, comment="When the match was stored (naive UTC)."
    )
    score_components: Mapped[dict[str, Any] | None] = mapped_column(
        comment="Named parts of the score (JSON object of floats, e.g. cosine and lexical) when the "
        "matcher combines several; empty for plain cosine matches."
    )
    predicted_stance: Mapped[str | None] = mapped_column(
        String(10),
        comment="Automatic stance of the passage toward the claim (pipelines/stance.py): restates, rebuts "
        "or reports. A prediction, never a review.",
    )
    stance_confidence: Mapped[float | None] = mapped_column(
        Float, comment="Confidence of predicted_stance (0-1)."
    )
    verdict: Mapped[str | None] = mapped_column(
        String(10),
        comment="Latest reviewed verdict (restates, rebuts, reports or wrong); empty: not reviewed. Kept "
        "equal to the latest match_reviews row by triggers.",
    )
    review_id: Mapped[int | None] = mapped_column(
        Integer, comment="match_reviews.id of that latest review (kept by triggers)."
    )

    document: Mapped[Document] = relationship()
    claim: Mapped[Claim] = relationship()

    __table_args__ = (
        UniqueConstraint("document_id", "claim_id", "passage_start", "passage_end", "model"),
        # Research views: (claim, document) pairs with their best score from the index alone.
        Index("ix_matches_claim_document_score", "claim_id", "document_id", "score"),
        # match_details of one claim, best first (migration 0005)
        Index("ix_matches_claim_score", "claim_id", "score"),
        # claim_review_stats: reviewed matches per claim and document from the index alone (migration 0007)
        Index("ix_matches_verdict_claim", "verdict", "claim_id", "document_id"),
        {"comment": "A passage of a document that matches a claim at or above the threshold."},
    )


VERDICTS = ("restates", "rebuts", "reports", "wrong")


class MatchReview(Base):
    """A researcher's verdict on a match; every review is kept, the latest one counts."""

    __tablename__ = "match_reviews"

    id: Mapped[int] = mapped_column(primary_key=True, comment="Surrogate key.")
    match_id: Mapped[int] = mapped_column(
        ForeignKey("matches.id", ondelete="CASCADE"), comment="The reviewed match."
    )
    verdict: Mapped[str] = mapped_column(
        String(10),
        comment="restates (asserts the claim), rebuts (denies or argues against it), reports (attributes "
        "it without endorsing it) or wrong (not about this claim).",
    )
    reviewer: Mapped[str] = mapped_column(String(120), comment="Who reviewed (login name or --reviewer).")
    reviewed_at: Mapped[datetime] = mapped_column(default=utcnow, comment="When (naive UTC).")
    note: Mapped[str | None] = mapped_column(comment="Optional note of the reviewer.")
    via: Mapped[str] = mapped_column(
        String(20), default="set", comment="How the verdict came in: terminal, import or set."
    )

    __table_args__ = (
        Index("ix_match_reviews_match_latest", "match_id", "reviewed_at", "id"),
        {"comment": "Reviewed verdicts on matches, with reviewer, time and note; history kept, the latest "
         "counts (copied to matches.verdict by triggers)."},
    )  # fmt: skip


class ClaimThreshold(Base):
    """A claim's own match threshold, fitted on its reviewed matches (`calibrate --from-reviews`)."""

    __tablename__ = "claim_thresholds"

    claim_id: Mapped[int] = mapped_column(
        ForeignKey("claims.id", ondelete="CASCADE"), primary_key=True, comment="claims.id"
    )
    threshold: Mapped[float] = mapped_column(Float, comment="Score at or above which a match is kept.")
    reviews: Mapped[int] = mapped_column(Integer, comment="Reviewed matches it was fitted on.")
    precision: Mapped[float | None] = mapped_column(
        Float, comment="Precision among those reviews at the threshold."
    )
    fitted_at: Mapped[datetime] = mapped_column(default=utcnow, comment="When it was fitted (naive UTC).")

    __table_args__ = {"comment": "Per-claim match thresholds fitted on reviewed verdicts."}


# --- aggregates behind the research views (db/aggregates.py keeps them exact with triggers) ---------

_SEEN_DAY = "Day the document was seen (published, else fetched; UTC)."


class ClaimDocument(Base):
    """One claim and one original document with matches: the base of the research view rollups."""

    __tablename__ = "claim_documents"

    claim_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, comment="claims.id")
    document_id: Mapped[int] = mapped_column(
        primary_key=True, autoincrement=False, index=True, comment="documents.id (an original)."
    )
    matches: Mapped[int] = mapped_column(Integer, comment="Matching passages of the claim in the document.")
    best_score: Mapped[float] = mapped_column(Float, comment="Highest score of those passages.")
    seen_at: Mapped[datetime] = mapped_column(comment="Publication time, else fetch time (naive UTC).")
    day: Mapped[date] = mapped_column(Date, comment=_SEEN_DAY)
    week_start: Mapped[date] = mapped_column(Date, comment="Monday of the ISO week of day.")
    source_id: Mapped[int] = mapped_column(Integer, comment="sources.id of the document; 0: no source.")
    outlet: Mapped[str | None] = mapped_column(String(255), comment="Outlet of the document.")
    language: Mapped[str | None] = mapped_column(String(12), comment="Language of the document.")
    restates: Mapped[int] = mapped_column(
        Integer,
        server_default="0",
        comment="Of those passages: restating the claim (verdict, else predicted).",
    )
    rebuts: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those passages: rebutting it (verdict, else predicted)."
    )
    reports: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those passages: reporting it (verdict, else predicted)."
    )

    __table_args__ = (
        # covering indexes: each rollup group is recomputed from the index alone
        Index(
            "ix_claim_documents_day",
            "claim_id", "day", "source_id", "outlet", "language", "matches", "best_score", "seen_at",
            "restates", "rebuts", "reports",
        ),
        Index(
            "ix_claim_documents_week",
            "claim_id", "week_start", "source_id", "outlet", "language", "matches", "best_score",
            "restates", "rebuts", "reports",
        ),
        Index(
            "ix_claim_documents_source",
            "claim_id", "source_id", "outlet", "matches", "best_score", "seen_at",
            "restates", "rebuts", "reports",
        ),
        {"comment": "Per claim and original document with matches: passages, best score, seen day, "
         "source, outlet, language; matches reviewed wrong excluded (maintained by triggers)."},
    )  # fmt: skip


class ClaimDayStats(Base):
    """Per claim per day: the rollup behind claim_daily."""

    __tablename__ = "claim_day_stats"

    claim_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, comment="claims.id")
    day: Mapped[date] = mapped_column(Date, primary_key=True, comment=_SEEN_DAY)
    documents: Mapped[int] = mapped_column(Integer, comment="Original documents that matched the claim.")
    matches: Mapped[int] = mapped_column(Integer, comment="Matching passages in those documents.")
    sources: Mapped[int] = mapped_column(Integer, comment="Distinct sources of those documents.")
    outlets: Mapped[int] = mapped_column(Integer, comment="Distinct outlets of those documents.")
    languages: Mapped[int] = mapped_column(Integer, comment="Distinct languages of those documents.")
    best_score: Mapped[float] = mapped_column(Float, comment="Highest score.")
    first_seen: Mapped[datetime] = mapped_column(comment="Earliest seen time (naive UTC).")
    last_seen: Mapped[datetime] = mapped_column(comment="Latest seen time (naive UTC).")
    restating: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those documents: with a passage restating the claim."
    )
    rebutting: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those documents: with a passage rebutting it."
    )
    reporting: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those documents: with a passage reporting it."
    )

    __table_args__ = {"comment": "Per claim per day: the rollup behind claim_daily (maintained by triggers)."}


class ClaimWeekStats(Base):
    """Per claim per ISO week: the rollup behind claim_weekly."""

    __tablename__ = "claim_week_stats"

    claim_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, comment="claims.id")
    week_start: Mapped[date] = mapped_column(Date, primary_key=True, comment="Monday of the ISO week.")
    documents: Mapped[int] = mapped_column(Integer, comment="Original documents that matched the claim.")
    matches: Mapped[int] = mapped_column(Integer, comment="Matching passages in those documents.")
    sources: Mapped[int] = mapped_column(Integer, comment="Distinct sources of those documents.")
    outlets: Mapped[int] = mapped_column(Integer, comment="Distinct outlets of those documents.")
    languages: Mapped[int] = mapped_column(Integer, comment="Distinct languages of those documents.")
    best_score: Mapped[float] = mapped_column(Float, comment="Highest score.")
    restating: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those documents: with a passage restating the claim."
    )
    rebutting: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those documents: with a passage rebutting it."
    )
    reporting: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those documents: with a passage reporting it."
    )

    __table_args__ = {
        "comment": "Per claim per ISO week: the rollup behind claim_weekly (maintained by triggers)."
    }


class ClaimSourceStats(Base):
    """Per claim per source: the rollup behind claim_sources and source_health's match counts."""

    __tablename__ = "claim_source_stats"

    claim_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, comment="claims.id")
    source_id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=False, comment="sources.id; 0: documents without a source."
    )
    documents: Mapped[int] = mapped_column(Integer, comment="Original documents that matched the claim.")
    matches: Mapped[int] = mapped_column(Integer, comment="Matching passages in those documents.")
    outlets: Mapped[int] = mapped_column(Integer, comment="Distinct outlets of those documents.")
    best_score: Mapped[float] = mapped_column(Float, comment="Highest score.")
    first_seen: Mapped[datetime] = mapped_column(comment="Earliest seen time (naive UTC).")
    last_seen: Mapped[datetime] = mapped_column(comment="Latest seen time (naive UTC).")
    restating: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those documents: with a passage restating the claim."
    )
    rebutting: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those documents: with a passage rebutting it."
    )
    reporting: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Of those documents: with a passage reporting it."
    )

    __table_args__ = {
        "comment": "Per claim per source: the rollup behind claim_sources (maintained by triggers)."
    }


class ClaimFacet(Base):
    """Documents per claim and outlet or language: claim_lifecycle's distinct counts."""

    __tablename__ = "claim_facets"

    claim_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False, comment="claims.id")
    facet: Mapped[str] = mapped_column(String(20), primary_key=True, comment="outlet or language.")
    value: Mapped[str] = mapped_column(String(255), primary_key=True, comment="The outlet or language.")
    documents: Mapped[int] = mapped_column(Integer, comment="Original documents of the claim with it.")

    __table_args__ = {
        "comment": "Documents per claim and outlet or language, for claim_lifecycle (maintained by triggers)."
    }


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


# --- the passage archive (issue 13: db/archive.py, crawler/services/archive.py) -----------------


class PassageVector(Base):
    """One encoded text of a matched document (a sentence, or a short document as a whole) with its
    vector under one model revision: the archive that backfill, semantic search and discovery read."""

    __tablename__ = "passage_vectors"

    id: Mapped[int] = mapped_column(primary_key=True, comment="Surrogate key (also the vector index key).")
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), comment="Document the passage is part of."
    )
    model_key: Mapped[str] = mapped_column(String(400), comment="Model name@revision that encoded it.")
    passage_start: Mapped[int] = mapped_column(Integer, comment="Character offset in documents.text.")
    passage_end: Mapped[int] = mapped_column(Integer, comment="Character offset just after the passage.")
    whole: Mapped[bool] = mapped_column(
        Boolean, default=False, comment="The whole (short) text encoded as one passage, not a sentence."
    )
    language: Mapped[str | None] = mapped_column(String(12), comment="Language of the document.")
    vector: Mapped[bytes] = mapped_column(
        LargeBinary, comment="float16 vector (L2-normalised), little-endian bytes."
    )

    __table_args__ = (
        Index("ix_passage_vectors_document_model", "document_id", "model_key"),
        Index("ix_passage_vectors_model_id", "model_key", "id"),
        {"comment": "Encoded passages of matched documents per model revision (the passage archive)."},
    )
