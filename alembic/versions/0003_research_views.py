"""research views, table and column comments, indexes for the views

Creates the researcher views of db/views.py (claim_daily, claim_weekly, claim_sources,
claim_lifecycle, match_details, source_health) on SQLite and PostgreSQL, stores table and column
comments on PostgreSQL (SQLite has no comments; docs/schema.md describes both), and adds the
indexes the views need at a million matches.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 20:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from db.views import VIEWS_0005 as VIEWS  # as this migration created them
from db.views import create_view_sql, drop_view_sql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (table comment, {column: column comment}); the same text as the comment= of db/models.py.
COMMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "sources": (
        "Where claimwatch discovers articles: RSS/Atom feeds, news sitemaps, GDELT queries.",
        {
            "id": "Surrogate key.",
            "key": "Stable unique key of the source (from the sources file).",
            "name": "Human-readable name of the outlet or query.",
            "kind": "feed, sitemap or gdelt.",
            "url": "Address of the feed, sitemap or GDELT query.",
            "language": "Declared main language (ISO 639-1).",
            "country": "Country of the outlet (ISO 3166-1 alpha-2).",
            "perspective": "Perspective tag: russian, azerbaijani, armenian, georgian, ukrainian, "
            "turkish, regional, western or discovery.",
            "enabled": "Whether crawls fetch this source.",
            "etag": "ETag of the last successful fetch (conditional GET).",
            "last_modified": "Last-Modified of the last successful fetch (conditional GET).",
            "last_fetched_at": "Last fetch attempt (naive UTC).",
            "last_status": "Outcome of the last fetch (HTTP status or error).",
            "last_success_at": "Last successful fetch (naive UTC).",
            "created_at": "When the source was added (naive UTC).",
        },
    ),
    "crawl_runs": (
        "One execution of a stage (crawl, match, run, demo) with its outcome and counters.",
        {
            "id": "Surrogate key.",
            "kind": "Stage: crawl, match, run or demo.",
            "status": "running, succeeded, failed or interrupted.",
            "started_at": "Start (naive UTC).",
            "finished_at": "End (naive UTC); empty while running.",
            "since": "Crawl window start: only articles published after it were fetched.",
            "pages_fetched": "Pages downloaded.",
            "documents_stored": "Documents stored (new rows or retried failures).",
            "documents_relevant": "Stored documents about Russia-Azerbaijan relations.",
            "duplicates": "Stored documents that copy an earlier one.",
            "failures": "Pages that could not be fetched or extracted.",
            "documents_matched": "Documents scored by the match stage.",
            "passages_encoded": "Passages embedded by the match stage.",
            "matches_stored": "New matches stored.",
            "stats": "Scrapy statistics and other details (JSON).",
            "error": "Error that ended the run, if any.",
            "pid": "Process id of the run.",
        },
    ),
    "documents": (
        "A fetched page: extracted article, irrelevant page, or failure with its reason.",
        {
            "id": "Surrogate key.",
            "url": "Canonical URL (tracking parameters and fragment stripped); unique.",
            "final_url": "URL after redirects.",
            "source_id": "Source that found the page.",
            "crawl_run_id": "Crawl run that stored the page.",
            "discovered_via": "How the link was found: feed, sitemap or gdelt.",
            "fetched_at": "Fetch time (naive UTC).",
            "http_status": "HTTP status of the response.",
            "content_type": "Content-Type of the response.",
            "status": "ok (relevant), irrelevant or failed.",
            "reason": "Why the page is irrelevant or failed.",
            "retryable": "Failure is transient (5xx, timeout) and is fetched again, at most three times.",
            "fetch_attempts": "Fetches of this URL so far.",
            "title": "Article title.",
            "author": "Article author(s).",
            "published_at": "Publication time (naive UTC) when known.",
            "sitename": "Site name from the page metadata.",
            "outlet": "Outlet: host name of the final URL.",
            "language": "Detected language (ISO 639-1).",
            "description": "Article description or lead.",
            "text": "Extracted article text.",
            "text_chars": "Length of text in characters.",
            "relevance_terms": "Russia and Azerbaijan terms found in the text.",
            "content_hash": "SHA-256 of the normalised text (exact duplicates).",
            "simhash": "64-bit SimHash of the text, signed (near duplicates).",
            "simhash_band0": "SimHash bits 0-15 (indexed near-duplicate lookup).",
            "simhash_band1": "SimHash bits 16-31.",
            "simhash_band2": "SimHash bits 32-47.",
            "simhash_band3": "SimHash bits 48-63.",
            "duplicate_of_id": "Original this page copies (syndicated copy); empty for originals.",
            "duplicate_kind": "exact or near.",
            "match_status": "skipped, pending, matched, no_match, not_scored or duplicate.",
            "matched_at": "When the match stage scored the document (naive UTC).",
            "match_model": "Model that scored the document.",
        },
    ),
    "claims": (
        "One assertion of a claim set (the seed article's claims, or a researcher's own).",
        {
            "id": "Surrogate key.",
            "claim_set": "Name of the claim set.",
            "key": "Stable key of the claim within its set (e.g. seed-04).",
            "text": "The claim in our own words.",
            "paragraph": "Paragraph of the seed article the claim comes from.",
            "extra": "Further fields from the claims file (JSON).",
            "text_hash": "Hash of text (embedding cache key).",
            "active": "Whether the claim is in the current claims file; inactive claims keep their matches.",
            "created_at": "When the claim was added (naive UTC).",
            "updated_at": "Last change (naive UTC).",
        },
    ),
    "embeddings": (
        "Cached embedding of one text under one model revision.",
        {
            "id": "Surrogate key.",
            "model_key": "Model name@revision.",
            "text_hash": "Hash of the embedded text.",
            "dim": "Vector dimension.",
            "vector": "float32 vector, little-endian bytes.",
            "created_at": "When it was computed (naive UTC).",
        },
    ),
    "matches": (
        "A passage of a document that matches a claim at or above the threshold.",
        {
            "id": "Surrogate key.",
            "document_id": "Matched document (always an original).",
            "claim_id": "Matched claim.",
            "passage": "The matching passage (a sentence or a 2-sentence window).",
            "passage_start": "Character offset of the passage in documents.text.",
            "passage_end": "Character offset just after the passage.",
            "score": "Cosine similarity of passage and claim embeddings.",
            "threshold": "Threshold in force when the match was stored.",
            "model": "Embedding model.",
            "model_revision": "Revision of the embedding model.",
            "crawl_run_id": "Match run that stored the match.",
            "created_at": "When the match was stored (naive UTC).",
        },
    ),
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    create_indexes()
    if dialect == "postgresql":
        for table, (table_comment, columns) in COMMENTS.items():
            op.create_table_comment(table, table_comment)
            for column, comment in columns.items():
                op.alter_column(table, column, comment=comment)
    for view in VIEWS:
        op.execute(create_view_sql(view, dialect, direct=True))
        if dialect == "postgresql":
            op.execute(f"COMMENT ON VIEW {view.name} IS '{_quote(view.description)}'")
            for column in view.columns:
                op.execute(f"COMMENT ON COLUMN {view.name}.{column.name} IS '{_quote(column.description)}'")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for view in reversed(VIEWS):
        op.execute(drop_view_sql(view))
    if dialect == "postgresql":
        for table, (table_comment, columns) in COMMENTS.items():
            for column, comment in columns.items():
                op.alter_column(table, column, comment=None, existing_comment=comment)
            op.drop_table_comment(table, existing_comment=table_comment)
    drop_indexes()


# The views' indexes (db.models declares them too); DOCUMENTS_INDEX of db/views.py is the first one.
INDEXES: dict[str, tuple[str, list[str]]] = {
    "ix_documents_research": (
        "documents",
        ["id", "duplicate_of_id", "published_at", "fetched_at", "source_id", "outlet", "language"],
    ),
    "ix_documents_source_health": (
        "documents",
        ["source_id", "status", "match_status", "duplicate_of_id", "retryable", "fetched_at"],
    ),
    "ix_matches_claim_document_score": ("matches", ["claim_id", "document_id", "score"]),
}


def create_indexes() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns, unique=False)


def drop_indexes() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)


def _quote(text: str) -> str:
    """A constant of this file as the body of an SQL string literal (DDL takes no bound parameters)."""
    return text.replace("'", "''")
