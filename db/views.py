"""The research views: names, columns, and their SQL on SQLite and PostgreSQL.

Migration ``alembic/versions/0003_research_views.py`` created the views computing everything from
``matches`` (``View.direct``, kept for that migration and as the reference the tests compare
against); migration 0005 re-creates them over the aggregate tables of ``db/aggregates.py``
(``View.template``), which triggers keep exact. A view that changes needs a new migration that
drops and re-creates it; keep the old SQL reachable for the old migration.

Common rules of every view:

- a document's *seen* time is ``published_at``, else ``fetched_at`` (naive UTC), its *day* that
  time's date and its *week* the Monday starting that ISO week;
- only originals count: documents with ``duplicate_of_id IS NULL`` (a syndicated copy is linked to
  its original and never counted again);
- *outlet* is the document's host (``documents.outlet``), *source* the ``sources`` row (feed,
  sitemap or GDELT query) that found it, with its country and perspective.

Since migration 0007 (reviews and stance, ``VIEWS``; migrations 0003 and 0005 create ``VIEWS_0005``):

- the trend views (``claim_daily``, ``claim_weekly``, ``claim_sources``, ``claim_lifecycle``) and
  ``source_health``'s match counts leave out matches reviewed ``wrong``, and count the documents per
  stance (``restating``, ``rebutting``, ``reporting``: documents with at least one passage of that
  stance — the reviewed verdict, else the predicted stance; a document can count in several);
- ``match_details`` shows every match with its predicted stance and its latest verdict and reviewer;
- ``claim_review_stats`` gives per claim the reviewed precision and the count of each verdict.

Dates (``day``, ``week_start``) are ``DATE`` on PostgreSQL and ``'YYYY-MM-DD'`` text on SQLite;
both compare correctly with a ``'YYYY-MM-DD'`` literal or parameter.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

SUPPORTED_DIALECTS = ("sqlite", "postgresql")

# Tables a read-only researcher may read (together with the views). Alert e-mails, subscriptions
# (addresses) and locks are left out on purpose.
RESEARCH_TABLES = (
    "sources",
    "crawl_runs",
    "documents",
    "claims",
    "matches",
    "match_reviews",
    "claim_thresholds",
    "embeddings",
    "passage_vectors",  # the passage archive (issue 13)
    # the aggregates behind the views (db/aggregates.py)
    "claim_documents",
    "claim_day_stats",
    "claim_week_stats",
    "claim_source_stats",
    "claim_facets",
)


@dataclass(frozen=True)
class ViewColumn:
    name: str
    kind: str  # int, float, text, bool, date, datetime
    description: str


@dataclass(frozen=True)
class View:
    name: str
    description: str
    columns: tuple[ViewColumn, ...]
    since_column: str | None  # the date column `--since` filters on
    has_claim: bool  # has claim_set / claim_key columns (`--claim` filters on claim_key)
    template: str  # over the aggregate tables (migration 0005)
    direct: str  # the same rows computed from matches and documents (migration 0003)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def sql(self, dialect: str, direct: bool = False) -> str:
        """The SELECT behind the view on ``dialect`` (``direct``: computed from matches)."""
        return (self.direct if direct else self.template).format(**_fragments(dialect)).strip()


def _c(name: str, kind: str, description: str) -> ViewColumn:
    return ViewColumn(name, kind, description)


# --- dialect fragments ---------------------------------------------------------------------------

SEEN = "COALESCE(d.published_at, d.fetched_at)"
# Created by migration 0003 (and declared on db.models.Document): every documents column the views read.
DOCUMENTS_INDEX = "ix_documents_research"


# Per dialect: day and ISO-week (Monday) of a timestamp, whole days from {a} to {b}, `YYYY-MM` of the
# aggregated day, the `reason: n` list of source_health, and how the views read documents.
_DIALECT_SQL: dict[str, dict[str, str]] = {
    "sqlite": {
        "day": "date({x})",
        "week": "date({x}, 'weekday 0', '-6 days')",
        "days_between": "CAST(julianday(date({b})) - julianday(date({a})) AS INTEGER)",
        "month": "substr(a.day, 1, 7)",
        "reasons": "group_concat(COALESCE(r.reason, 'unknown') || ': ' || CAST(r.n AS TEXT), '; ')",
        # SQLite looks documents up by rowid and reads whole rows (the text overflows the page); the
        # covering index holds every documents column the views read and is about twice as fast.
        "documents": "documents d INDEXED BY " + DOCUMENTS_INDEX,
        "doc_title": "(SELECT dt.title FROM documents dt WHERE dt.id = m.document_id)",
        "doc_url": "(SELECT dt.url FROM documents dt WHERE dt.id = m.document_id)",
        "original": "+d.duplicate_of_id IS NULL",
        "join_claims": "LEFT JOIN claims c",
        "join_documents": "JOIN documents d INDEXED BY " + DOCUMENTS_INDEX,
        # since migration 0007: ANALYZE counts the NULL verdicts of unreviewed matches as one value
        # and SQLite would rather scan every match; the reviewed ones are a small part
        "reviewed_matches": "matches m INDEXED BY ix_matches_verdict_claim",
        # and a join to documents builds a Bloom filter over all of them: a lookup per reviewed match
        "reviewed_documents": "",
        "reviewed_original": "(SELECT d.duplicate_of_id FROM documents d INDEXED BY "
        + DOCUMENTS_INDEX
        + " WHERE d.id = m.document_id) IS NULL",
    },
    "postgresql": {
        "day": "CAST({x} AS DATE)",
        "week": "CAST(date_trunc('week', {x}) AS DATE)",
        "days_between": "(CAST({b} AS DATE) - CAST({a} AS DATE))",
        "month": "to_char(a.day, 'YYYY-MM')",
        "reasons": "string_agg(COALESCE(r.reason, 'unknown') || ': ' || CAST(r.n AS TEXT), '; ' "
        "ORDER BY r.n DESC, r.reason)",
        "documents": "documents d",
        "doc_title": "d.title",
        "doc_url": "d.url",
        "original": "d.duplicate_of_id IS NULL",
        "join_claims": "JOIN claims c",
        "join_documents": "JOIN documents d",
        "reviewed_matches": "matches m",
        "reviewed_documents": " JOIN documents d ON d.id = m.document_id",
        "reviewed_original": "d.duplicate_of_id IS NULL",
    },
}


def dialect_sql(dialect: str) -> dict[str, str]:
    if dialect not in _DIALECT_SQL:
        raise NotImplementedError(f"claimwatch supports SQLite and PostgreSQL, not {dialect}")
    return _DIALECT_SQL[dialect]


def _fragments(dialect: str) -> dict[str, str]:
    sql = dialect_sql(dialect)
    return {
        "seen": SEEN,
        "documents": sql["documents"],
        "day": sql["day"].format(x=SEEN),
        "week": sql["week"].format(x=SEEN),
        "month": sql["month"],
        "span_days": sql["days_between"].format(a="a.first_seen", b="a.last_seen"),
        "dormant_days": sql["days_between"].format(a="a.last_seen", b="CURRENT_DATE"),
        "reasons": sql["reasons"],
        "doc_title": sql["doc_title"],
        "doc_url": sql["doc_url"],
        "original": sql["original"],
        "join_claims": sql["join_claims"],
        "join_documents": sql["join_documents"],
        "reviewed_matches": sql["reviewed_matches"],
        "reviewed_documents": sql["reviewed_documents"],
        "reviewed_original": sql["reviewed_original"],
        # (claim, document) pairs: several passages of one document count as one document
        "pairs": (
            "SELECT claim_id, document_id, COUNT(*) AS matches, MAX(score) AS best_score "
            "FROM matches GROUP BY claim_id, document_id"
        ),
        # since migration 0007: matches reviewed wrong left out, passages counted per stance
        "reviewed_pairs": (
            "SELECT claim_id, document_id, COUNT(*) AS matches, MAX(score) AS best_score, "
            + ", ".join(
                f"SUM(CASE WHEN COALESCE(verdict, predicted_stance) = '{stance}' THEN 1 ELSE 0 END) "
                f"AS {stance}"
                for stance in _STANCES
            )
            + " FROM matches WHERE COALESCE(verdict, '') <> 'wrong' GROUP BY claim_id, document_id"
        ),
        "stance_documents": ", ".join(
            f"SUM(CASE WHEN {stance} > 0 THEN 1 ELSE 0 END) AS {documents}"
            for stance, documents in zip(_STANCES, _STANCE_DOCUMENTS, strict=True)
        ),
        "stance_a": ", ".join(f"a.{documents}" for documents in _STANCE_DOCUMENTS),
        "stance_p": ", ".join(f"p.{stance}" for stance in _STANCES),
    }


_STANCES = ("restates", "rebuts", "reports")
_STANCE_DOCUMENTS = ("restating", "rebutting", "reporting")


# --- the views -----------------------------------------------------------------------------------

_COUNTS = (
    _c("documents", "int", "Original documents that matched the claim (syndicated copies counted once)."),
    _c("matches", "int", "Matching passages in those documents."),
    _c("sources", "int", "Distinct sources (feeds, sitemaps, GDELT queries) that found those documents."),
    _c("outlets", "int", "Distinct outlets that published those documents."),
    _c("languages", "int", "Distinct document languages."),
    _c("best_score", "float", "Highest similarity score of a matching passage."),
)

CLAIM_DAILY = View(
    name="claim_daily",
    description="Per claim per day: documents, matches, sources, outlets and languages. Days without "
    "documents have no row.",
    columns=(
        _c("claim_id", "int", "claims.id"),
        _c("claim_set", "text", "Claim set of the claim."),
        _c("claim_key", "text", "Stable key of the claim within its set (e.g. `seed-04`)."),
        _c("day", "date", "Day the documents were seen (published, else fetched; UTC)."),
        _c("month", "text", "`YYYY-MM` of the day."),
        *_COUNTS,
    ),
    since_column="day",
    has_claim=True,
    template="""
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.day, {month} AS month, a.documents, a.matches,
       a.sources, a.outlets, a.languages, a.best_score
FROM claim_day_stats a JOIN claims c ON c.id = a.claim_id
""",
    direct="""
WITH pairs AS ({pairs}),
seen AS (
    SELECT p.claim_id, p.matches, p.best_score, d.source_id, d.outlet, d.language, {day} AS day
    FROM pairs p JOIN {documents} ON d.id = p.document_id
    WHERE d.duplicate_of_id IS NULL
),
a AS (
    SELECT claim_id, day, COUNT(*) AS documents, SUM(matches) AS matches,
           COUNT(DISTINCT source_id) AS sources, COUNT(DISTINCT outlet) AS outlets,
           COUNT(DISTINCT language) AS languages, MAX(best_score) AS best_score
    FROM seen GROUP BY claim_id, day
)
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.day, {month} AS month, a.documents, a.matches,
       a.sources, a.outlets, a.languages, a.best_score
FROM a JOIN claims c ON c.id = a.claim_id
""",
)

CLAIM_WEEKLY = View(
    name="claim_weekly",
    description="Per claim per ISO week (Monday to Sunday): documents, matches, sources, outlets and "
    "languages. Weeks without documents have no row.",
    columns=(
        _c("claim_id", "int", "claims.id"),
        _c("claim_set", "text", "Claim set of the claim."),
        _c("claim_key", "text", "Stable key of the claim within its set."),
        _c("week_start", "date", "Monday of the ISO week the documents were seen (UTC)."),
        *_COUNTS,
    ),
    since_column="week_start",
    has_claim=True,
    template="""
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.week_start, a.documents, a.matches, a.sources,
       a.outlets, a.languages, a.best_score
FROM claim_week_stats a JOIN claims c ON c.id = a.claim_id
""",
    direct="""
WITH pairs AS ({pairs}),
seen AS (
    SELECT p.claim_id, p.matches, p.best_score, d.source_id, d.outlet, d.language, {week} AS week_start
    FROM pairs p JOIN {documents} ON d.id = p.document_id
    WHERE d.duplicate_of_id IS NULL
),
a AS (
    SELECT claim_id, week_start, COUNT(*) AS documents, SUM(matches) AS matches,
           COUNT(DISTINCT source_id) AS sources, COUNT(DISTINCT outlet) AS outlets,
           COUNT(DISTINCT language) AS languages, MAX(best_score) AS best_score
    FROM seen GROUP BY claim_id, week_start
)
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.week_start, a.documents, a.matches, a.sources,
       a.outlets, a.languages, a.best_score
FROM a JOIN claims c ON c.id = a.claim_id
""",
)

CLAIM_SOURCES = View(
    name="claim_sources",
    description="Per claim per source: documents, matches, outlets, first and last seen. Documents "
    "without a source (found outside the source list) have a row with an empty source.",
    columns=(
        _c("claim_id", "int", "claims.id"),
        _c("claim_set", "text", "Claim set of the claim."),
        _c("claim_key", "text", "Stable key of the claim within its set."),
        _c("source_id", "int", "sources.id (empty: documents without a source)."),
        _c("source_key", "text", "Key of the source."),
        _c("source_name", "text", "Name of the source."),
        _c("source_kind", "text", "`feed`, `sitemap` or `gdelt`."),
        _c("country", "text", "Country of the source (ISO 3166 code)."),
        _c("perspective", "text", "Editorial perspective tag of the source."),
        _c("source_language", "text", "Declared language of the source."),
        _c("documents", "int", "Original documents of this source that matched the claim."),
        _c("matches", "int", "Matching passages in those documents."),
        _c("outlets", "int", "Distinct outlets among those documents."),
        _c("first_seen", "datetime", "Earliest seen time of those documents (UTC)."),
        _c("last_seen", "datetime", "Latest seen time of those documents (UTC)."),
        _c("best_score", "float", "Highest similarity score."),
    ),
    since_column="last_seen",
    has_claim=True,
    template="""
SELECT a.claim_id, c.claim_set, c.key AS claim_key, NULLIF(a.source_id, 0) AS source_id,
       src.key AS source_key, src.name AS source_name, src.kind AS source_kind, src.country,
       src.perspective, src.language AS source_language, a.documents, a.matches, a.outlets, a.first_seen,
       a.last_seen, a.best_score
FROM claim_source_stats a
JOIN claims c ON c.id = a.claim_id
LEFT JOIN sources src ON src.id = a.source_id
""",
    direct="""
WITH pairs AS ({pairs}),
a AS (
    SELECT p.claim_id, d.source_id, COUNT(*) AS documents, SUM(p.matches) AS matches,
           COUNT(DISTINCT d.outlet) AS outlets, MIN({seen}) AS first_seen, MAX({seen}) AS last_seen,
           MAX(p.best_score) AS best_score
    FROM pairs p JOIN {documents} ON d.id = p.document_id
    WHERE d.duplicate_of_id IS NULL
    GROUP BY p.claim_id, d.source_id
)
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.source_id, src.key AS source_key,
       src.name AS source_name, src.kind AS source_kind, src.country, src.perspective,
       src.language AS source_language, a.documents, a.matches, a.outlets, a.first_seen, a.last_seen,
       a.best_score
FROM a
JOIN claims c ON c.id = a.claim_id
LEFT JOIN sources src ON src.id = a.source_id
""",
)

CLAIM_LIFECYCLE = View(
    name="claim_lifecycle",
    description="Per claim (every claim, matched or not): first seen, last seen, days active, span and "
    "dormant days (days since it was last seen, as of today UTC).",
    columns=(
        _c("claim_id", "int", "claims.id"),
        _c("claim_set", "text", "Claim set of the claim."),
        _c("claim_key", "text", "Stable key of the claim within its set."),
        _c("claim_text", "text", "The claim's wording."),
        _c("active", "bool", "Whether the claim is in the current claim file."),
        _c("documents", "int", "Original documents that matched the claim."),
        _c("matches", "int", "Matching passages in those documents."),
        _c("outlets", "int", "Distinct outlets."),
        _c("languages", "int", "Distinct document languages."),
        _c("active_days", "int", "Distinct days with at least one document."),
        _c("first_seen", "datetime", "Earliest seen time (UTC); empty when never matched."),
        _c("last_seen", "datetime", "Latest seen time (UTC); empty when never matched."),
        _c("span_days", "int", "Days from the first to the last seen day."),
        _c("dormant_days", "int", "Days from the last seen day to today (UTC); empty when never matched."),
    ),
    since_column="last_seen",
    has_claim=True,
    template="""
WITH a AS (
    SELECT claim_id, SUM(documents) AS documents, SUM(matches) AS matches, COUNT(*) AS active_days,
           MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
    FROM claim_day_stats GROUP BY claim_id
),
f AS (
    SELECT claim_id, SUM(CASE WHEN facet = 'outlet' THEN 1 ELSE 0 END) AS outlets,
           SUM(CASE WHEN facet = 'language' THEN 1 ELSE 0 END) AS languages
    FROM claim_facets GROUP BY claim_id
)
SELECT c.id AS claim_id, c.claim_set, c.key AS claim_key, c.text AS claim_text, c.active,
       COALESCE(a.documents, 0) AS documents, COALESCE(a.matches, 0) AS matches,
       COALESCE(f.outlets, 0) AS outlets, COALESCE(f.languages, 0) AS languages,
       COALESCE(a.active_days, 0) AS active_days, a.first_seen, a.last_seen,
       {span_days} AS span_days, {dormant_days} AS dormant_days
FROM claims c LEFT JOIN a ON a.claim_id = c.id LEFT JOIN f ON f.claim_id = c.id
""",
    direct="""
WITH pairs AS ({pairs}),
seen AS (
    SELECT p.claim_id, p.matches, d.outlet, d.language, {seen} AS seen_at, {day} AS day
    FROM pairs p JOIN {documents} ON d.id = p.document_id
    WHERE d.duplicate_of_id IS NULL
),
a AS (
    SELECT claim_id, COUNT(*) AS documents, SUM(matches) AS matches, COUNT(DISTINCT outlet) AS outlets,
           COUNT(DISTINCT language) AS languages, COUNT(DISTINCT day) AS active_days,
           MIN(seen_at) AS first_seen, MAX(seen_at) AS last_seen
    FROM seen GROUP BY claim_id
)
SELECT c.id AS claim_id, c.claim_set, c.key AS claim_key, c.text AS claim_text, c.active,
       COALESCE(a.documents, 0) AS documents, COALESCE(a.matches, 0) AS matches,
       COALESCE(a.outlets, 0) AS outlets, COALESCE(a.languages, 0) AS languages,
       COALESCE(a.active_days, 0) AS active_days, a.first_seen, a.last_seen,
       {span_days} AS span_days, {dormant_days} AS dormant_days
FROM claims c LEFT JOIN a ON a.claim_id = c.id
""",
)

_MATCH_DETAILS = """
SELECT m.id AS match_id, m.claim_id, c.claim_set, c.key AS claim_key, c.text AS claim_text,
       m.document_id, m.passage, m.passage_start, m.passage_end, m.score, m.threshold, m.model,
       m.model_revision, m.created_at AS matched_at, d.title, d.url, d.outlet, d.source_id,
       src.key AS source_key, src.name AS source_name, src.country, src.perspective, d.language,
       d.published_at, {seen} AS seen_at, {day} AS seen_day
FROM matches m
JOIN claims c ON c.id = m.claim_id
JOIN documents d ON d.id = m.document_id
LEFT JOIN sources src ON src.id = d.source_id
WHERE d.duplicate_of_id IS NULL
"""

# Since migration 0005: on SQLite the documents join reads the narrow research index and the two
# columns it lacks (title, url) come from scalar subqueries, evaluated only for rows actually
# returned: a count never reads the (overflowing) article rows of a million matches. Every match has
# its claim (NOT NULL foreign key, ON DELETE CASCADE), so LEFT JOIN claims returns the inner join's
# rows; it and the unary + keep SQLite from starting at claims and building a Bloom filter over all
# documents before the first row (1.1 s for a page of 100; measured with scripts/bench_views.py).
_MATCH_DETAILS_INDEXED = """
SELECT m.id AS match_id, m.claim_id, c.claim_set, c.key AS claim_key, c.text AS claim_text,
       m.document_id, m.passage, m.passage_start, m.passage_end, m.score, m.threshold, m.model,
       m.model_revision, m.created_at AS matched_at, {doc_title} AS title, {doc_url} AS url, d.outlet,
       d.source_id, src.key AS source_key, src.name AS source_name, src.country, src.perspective,
       d.language, d.published_at, {seen} AS seen_at, {day} AS seen_day
FROM matches m
{join_claims} ON c.id = m.claim_id
{join_documents} ON d.id = m.document_id
LEFT JOIN sources src ON src.id = d.source_id
WHERE {original}
"""

MATCH_DETAILS = View(
    name="match_details",
    description="One row per match: the claim, the passage and its score, and the document's title, "
    "URL, outlet, source, country, language and dates. Only original documents.",
    columns=(
        _c("match_id", "int", "matches.id"),
        _c("claim_id", "int", "claims.id"),
        _c("claim_set", "text", "Claim set of the claim."),
        _c("claim_key", "text", "Stable key of the claim within its set."),
        _c("claim_text", "text", "The claim's wording."),
        _c("document_id", "int", "documents.id"),
        _c("passage", "text", "The matching passage (one sentence or two)."),
        _c("passage_start", "int", "Character offset of the passage in the document text."),
        _c("passage_end", "int", "Character offset just after the passage."),
        _c("score", "float", "Cosine similarity of passage and claim."),
        _c("threshold", "float", "Threshold in force when the match was stored."),
        _c("model", "text", "Embedding model."),
        _c("model_revision", "text", "Revision of the embedding model."),
        _c("matched_at", "datetime", "When the match was stored (UTC)."),
        _c("title", "text", "Document title."),
        _c("url", "text", "Canonical document URL."),
        _c("outlet", "text", "Outlet (host) of the document."),
        _c("source_id", "int", "sources.id of the source that found the document."),
        _c("source_key", "text", "Key of that source."),
        _c("source_name", "text", "Name of that source."),
        _c("country", "text", "Country of that source."),
        _c("perspective", "text", "Perspective tag of that source."),
        _c("language", "text", "Detected language of the document."),
        _c("published_at", "datetime", "Publication time (UTC) when known."),
        _c("seen_at", "datetime", "Publication time, else fetch time (UTC)."),
        _c("seen_day", "date", "Day of seen_at."),
    ),
    since_column="seen_day",
    has_claim=True,
    template=_MATCH_DETAILS_INDEXED,
    direct=_MATCH_DETAILS,
)

# source_health: the per-source document counts and failure reasons (shared by both definitions)
_SOURCE_HEALTH_HEAD = """
WITH docs AS (
    SELECT source_id, COUNT(*) AS fetched,
           SUM(CASE WHEN status <> 'failed' THEN 1 ELSE 0 END) AS extracted,
           SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS relevant,
           SUM(CASE WHEN duplicate_of_id IS NOT NULL THEN 1 ELSE 0 END) AS duplicates,
           SUM(CASE WHEN match_status = 'matched' THEN 1 ELSE 0 END) AS matched,
           SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failures,
           SUM(CASE WHEN status = 'failed' AND retryable THEN 1 ELSE 0 END) AS failures_retryable,
           MAX(fetched_at) AS last_document_at
    FROM documents WHERE source_id IS NOT NULL GROUP BY source_id
),
r AS (
    SELECT source_id, reason, COUNT(*) AS n
    FROM documents WHERE status = 'failed' AND source_id IS NOT NULL GROUP BY source_id, reason
),
reasons AS (SELECT r.source_id, {reasons} AS failure_reasons FROM r GROUP BY r.source_id),
"""
_SOURCE_HEALTH_SELECT = """\
SELECT s.id AS source_id, s.key AS source_key, s.name, s.kind, s.url, s.language, s.country,
       s.perspective, s.enabled,
       COALESCE(docs.fetched, 0) AS fetched, COALESCE(docs.extracted, 0) AS extracted,
       COALESCE(docs.relevant, 0) AS relevant, COALESCE(docs.duplicates, 0) AS duplicates,
       COALESCE(docs.matched, 0) AS matched, COALESCE(mc.matches, 0) AS matches,
       COALESCE(docs.failures, 0) AS failures, COALESCE(docs.failures_retryable, 0) AS failures_retryable,
       reasons.failure_reasons, docs.last_document_at, s.last_fetched_at, s.last_status, s.last_success_at
FROM sources s
LEFT JOIN docs ON docs.source_id = s.id
LEFT JOIN reasons ON reasons.source_id = s.id
LEFT JOIN match_counts mc ON mc.source_id = s.id
"""

SOURCE_HEALTH = View(
    name="source_health",
    description="Per source: pages fetched, extracted, relevant, duplicates, matched, failures (with "
    "their reasons) and the last fetch and success.",
    columns=(
        _c("source_id", "int", "sources.id"),
        _c("source_key", "text", "Key of the source."),
        _c("name", "text", "Name of the source."),
        _c("kind", "text", "`feed`, `sitemap` or `gdelt`."),
        _c("url", "text", "Address of the feed, sitemap or query."),
        _c("language", "text", "Declared language."),
        _c("country", "text", "Country (ISO 3166 code)."),
        _c("perspective", "text", "Perspective tag."),
        _c("enabled", "bool", "Whether the source is crawled."),
        _c("fetched", "int", "Pages stored from this source (documents rows, failures included)."),
        _c("extracted", "int", "Pages with article text extracted (relevant or not)."),
        _c("relevant", "int", "Pages about Russia–Azerbaijan relations (status `ok`)."),
        _c("duplicates", "int", "Syndicated copies of earlier documents."),
        _c("matched", "int", "Documents with at least one match."),
        _c("matches", "int", "Matching passages in this source's original documents."),
        _c("failures", "int", "Pages that could not be fetched or extracted."),
        _c("failures_retryable", "int", "Failures that later runs retry (5xx, timeouts)."),
        _c("failure_reasons", "text", "`reason: count` of the failures, `; `-separated."),
        _c("last_document_at", "datetime", "When the latest page of this source was stored (UTC)."),
        _c("last_fetched_at", "datetime", "Last fetch of the feed/sitemap/query (UTC)."),
        _c("last_status", "text", "Outcome of that fetch."),
        _c("last_success_at", "datetime", "Last successful fetch (UTC)."),
    ),
    since_column="last_fetched_at",
    has_claim=False,
    template=_SOURCE_HEALTH_HEAD
    + """match_counts AS (
    SELECT source_id, SUM(matches) AS matches FROM claim_source_stats WHERE source_id <> 0 GROUP BY source_id
)
"""
    + _SOURCE_HEALTH_SELECT,
    direct=_SOURCE_HEALTH_HEAD
    + """\
per_document AS (SELECT document_id, COUNT(*) AS n FROM matches GROUP BY document_id),
match_counts AS (
    SELECT d.source_id, SUM(pd.n) AS matches
    FROM per_document pd JOIN {documents} ON d.id = pd.document_id
    WHERE d.source_id IS NOT NULL AND d.duplicate_of_id IS NULL
    GROUP BY d.source_id
)
"""
    + _SOURCE_HEALTH_SELECT,
)

# --- migration 0006: the fact-checker's review in claim_lifecycle, the doctor's probe in source_health --

_REVIEW_COLUMNS = (
    ", c.verdict, c.claimant, c.review_url, c.reviewer, c.reviewed_at, c.language AS claim_language\n"
)


def _with_fact_check(sql: str) -> str:
    anchor = "{dormant_days} AS dormant_days\n"
    assert anchor in sql
    return sql.replace(anchor, anchor.rstrip("\n") + _REVIEW_COLUMNS)


def _with_probe(sql: str) -> str:
    select_end = "s.last_status, s.last_success_at\n"
    assert select_end in sql
    sql = sql.replace(
        select_end,
        "s.last_status, s.last_success_at,\n"
        "       sc.status AS check_status, sc.checked_at, sc.http_status AS check_http_status,\n"
        "       sc.moved_to AS check_moved_to, sc.parsed_as AS check_parsed_as, sc.items AS check_items,\n"
        "       sc.newest_item_at AS check_newest_item_at, sc.items_recent AS check_items_recent,\n"
        "       sc.detail AS check_detail\n",
    )
    return sql.rstrip("\n") + "\nLEFT JOIN source_checks sc ON sc.source_id = s.id\n"


CLAIM_LIFECYCLE_0005 = CLAIM_LIFECYCLE
SOURCE_HEALTH_0005 = SOURCE_HEALTH

CLAIM_LIFECYCLE = dataclasses.replace(
    CLAIM_LIFECYCLE_0005,
    description=CLAIM_LIFECYCLE_0005.description
    + " With the fact-checker's review when the claim came from one (ClaimReview).",
    columns=CLAIM_LIFECYCLE_0005.columns
    + (
        _c("verdict", "text", "Fact-checker's rating of the claim (ClaimReview); empty for own claims."),
        _c("claimant", "text", "Who made the claim, per the fact-checker."),
        _c("review_url", "text", "Address of the fact-checker's review."),
        _c("reviewer", "text", "Publisher of the review."),
        _c("reviewed_at", "datetime", "When the review was published (UTC)."),
        _c("claim_language", "text", "Language of the claim text, when known."),
    ),
    template=_with_fact_check(CLAIM_LIFECYCLE_0005.template),
    direct=_with_fact_check(CLAIM_LIFECYCLE_0005.direct),
)

SOURCE_HEALTH = dataclasses.replace(
    SOURCE_HEALTH_0005,
    description=SOURCE_HEALTH_0005.description + " With the latest `claimwatch doctor --sources` probe.",
    columns=SOURCE_HEALTH_0005.columns
    + (
        _c(
            "check_status",
            "text",
            "Verdict of the latest doctor probe: ok, moved, stale, empty, not-a-feed, blocked-by-robots "
            "or error; empty when never probed.",
        ),
        _c("checked_at", "datetime", "When the doctor probed the source (UTC)."),
        _c("check_http_status", "int", "HTTP status of the probe."),
        _c("check_moved_to", "text", "New address when the source redirects permanently."),
        _c("check_parsed_as", "text", "What the body parsed as (rss20, atom10, urlset, gdelt, ...)."),
        _c("check_items", "int", "Items the source listed."),
        _c("check_newest_item_at", "datetime", "Date of its newest item (UTC)."),
        _c("check_items_recent", "int", "Items dated in the 7 days before the probe."),
        _c("check_detail", "text", "What the verdict rests on."),
    ),
    template=_with_probe(SOURCE_HEALTH_0005.template),
    direct=_with_probe(SOURCE_HEALTH_0005.direct),
)

# the views as migration 0006 left them
VIEWS_0006: tuple[View, ...] = (
    CLAIM_DAILY,
    CLAIM_WEEKLY,
    CLAIM_SOURCES,
    CLAIM_LIFECYCLE,
    MATCH_DETAILS,
    SOURCE_HEALTH,
)
# the views as migrations 0003 and 0005 created them (0006 re-creates the two that changed)
VIEWS_0005: tuple[View, ...] = (
    CLAIM_DAILY,
    CLAIM_WEEKLY,
    CLAIM_SOURCES,
    CLAIM_LIFECYCLE_0005,
    MATCH_DETAILS,
    SOURCE_HEALTH_0005,
)
VIEWS_CHANGED_0006 = (CLAIM_LIFECYCLE, SOURCE_HEALTH)

# --- since migration 0007: reviews and stance ------------------------------------------------------

_STANCE_COLUMNS = (
    _c("restating", "int", "Of those documents: with a passage restating the claim (reviewed verdict, else "
       "predicted stance)."),
    _c("rebutting", "int", "Of those documents: with a passage rebutting the claim (denying or arguing "
       "against it)."),
    _c("reporting", "int", "Of those documents: with a passage reporting the claim (attributing it without "
       "endorsing it)."),
)  # fmt: skip
_NOT_WRONG = " Matches reviewed `wrong` are left out."

REVIEWED_CLAIM_DAILY = View(
    name="claim_daily",
    description=CLAIM_DAILY.description + _NOT_WRONG,
    columns=(*CLAIM_DAILY.columns, *_STANCE_COLUMNS),
    since_column="day",
    has_claim=True,
    template="""
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.day, {month} AS month, a.documents, a.matches,
       a.sources, a.outlets, a.languages, a.best_score, {stance_a}
FROM claim_day_stats a JOIN claims c ON c.id = a.claim_id
""",
    direct="""
WITH pairs AS ({reviewed_pairs}),
seen AS (
    SELECT p.claim_id, p.matches, p.best_score, {stance_p}, d.source_id, d.outlet, d.language, {day} AS day
    FROM pairs p JOIN {documents} ON d.id = p.document_id
    WHERE d.duplicate_of_id IS NULL
),
a AS (
    SELECT claim_id, day, COUNT(*) AS documents, SUM(matches) AS matches,
           COUNT(DISTINCT source_id) AS sources, COUNT(DISTINCT outlet) AS outlets,
           COUNT(DISTINCT language) AS languages, MAX(best_score) AS best_score, {stance_documents}
    FROM seen GROUP BY claim_id, day
)
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.day, {month} AS month, a.documents, a.matches,
       a.sources, a.outlets, a.languages, a.best_score, {stance_a}
FROM a JOIN claims c ON c.id = a.claim_id
""",
)

REVIEWED_CLAIM_WEEKLY = View(
    name="claim_weekly",
    description=CLAIM_WEEKLY.description + _NOT_WRONG,
    columns=(*CLAIM_WEEKLY.columns, *_STANCE_COLUMNS),
    since_column="week_start",
    has_claim=True,
    template="""
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.week_start, a.documents, a.matches, a.sources,
       a.outlets, a.languages, a.best_score, {stance_a}
FROM claim_week_stats a JOIN claims c ON c.id = a.claim_id
""",
    direct="""
WITH pairs AS ({reviewed_pairs}),
seen AS (
    SELECT p.claim_id, p.matches, p.best_score, {stance_p}, d.source_id, d.outlet, d.language,
           {week} AS week_start
    FROM pairs p JOIN {documents} ON d.id = p.document_id
    WHERE d.duplicate_of_id IS NULL
),
a AS (
    SELECT claim_id, week_start, COUNT(*) AS documents, SUM(matches) AS matches,
           COUNT(DISTINCT source_id) AS sources, COUNT(DISTINCT outlet) AS outlets,
           COUNT(DISTINCT language) AS languages, MAX(best_score) AS best_score, {stance_documents}
    FROM seen GROUP BY claim_id, week_start
)
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.week_start, a.documents, a.matches, a.sources,
       a.outlets, a.languages, a.best_score, {stance_a}
FROM a JOIN claims c ON c.id = a.claim_id
""",
)

REVIEWED_CLAIM_SOURCES = View(
    name="claim_sources",
    description=CLAIM_SOURCES.description + _NOT_WRONG,
    columns=(*CLAIM_SOURCES.columns, *_STANCE_COLUMNS),
    since_column="last_seen",
    has_claim=True,
    template="""
SELECT a.claim_id, c.claim_set, c.key AS claim_key, NULLIF(a.source_id, 0) AS source_id,
       src.key AS source_key, src.name AS source_name, src.kind AS source_kind, src.country,
       src.perspective, src.language AS source_language, a.documents, a.matches, a.outlets, a.first_seen,
       a.last_seen, a.best_score, {stance_a}
FROM claim_source_stats a
JOIN claims c ON c.id = a.claim_id
LEFT JOIN sources src ON src.id = a.source_id
""",
    direct="""
WITH pairs AS ({reviewed_pairs}),
a AS (
    SELECT p.claim_id, d.source_id, COUNT(*) AS documents, SUM(p.matches) AS matches,
           COUNT(DISTINCT d.outlet) AS outlets, MIN({seen}) AS first_seen, MAX({seen}) AS last_seen,
           MAX(p.best_score) AS best_score, {stance_documents}
    FROM pairs p JOIN {documents} ON d.id = p.document_id
    WHERE d.duplicate_of_id IS NULL
    GROUP BY p.claim_id, d.source_id
)
SELECT a.claim_id, c.claim_set, c.key AS claim_key, a.source_id, src.key AS source_key,
       src.name AS source_name, src.kind AS source_kind, src.country, src.perspective,
       src.language AS source_language, a.documents, a.matches, a.outlets, a.first_seen, a.last_seen,
       a.best_score, {stance_a}
FROM a
JOIN claims c ON c.id = a.claim_id
LEFT JOIN sources src ON src.id = a.source_id
""",
)

REVIEWED_CLAIM_LIFECYCLE = View(
    name="claim_lifecycle",
    description=CLAIM_LIFECYCLE.description + _NOT_WRONG,
    columns=(*CLAIM_LIFECYCLE.columns, *_STANCE_COLUMNS),
    since_column="last_seen",
    has_claim=True,
    template="""
WITH a AS (
    SELECT claim_id, SUM(documents) AS documents, SUM(matches) AS matches, COUNT(*) AS active_days,
           MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
    FROM claim_day_stats GROUP BY claim_id
),
s AS (
    SELECT claim_id, SUM(restating) AS restating, SUM(rebutting) AS rebutting, SUM(reporting) AS reporting
    FROM claim_source_stats GROUP BY claim_id
),
f AS (
    SELECT claim_id, SUM(CASE WHEN facet = 'outlet' THEN 1 ELSE 0 END) AS outlets,
           SUM(CASE WHEN facet = 'language' THEN 1 ELSE 0 END) AS languages
    FROM claim_facets GROUP BY claim_id
)
SELECT c.id AS claim_id, c.claim_set, c.key AS claim_key, c.text AS claim_text, c.active,
       COALESCE(a.documents, 0) AS documents, COALESCE(a.matches, 0) AS matches,
       COALESCE(f.outlets, 0) AS outlets, COALESCE(f.languages, 0) AS languages,
       COALESCE(a.active_days, 0) AS active_days, a.first_seen, a.last_seen,
       {span_days} AS span_days, {dormant_days} AS dormant_days,
       c.verdict, c.claimant, c.review_url, c.reviewer, c.reviewed_at, c.language AS claim_language,
       COALESCE(s.restating, 0) AS restating, COALESCE(s.rebutting, 0) AS rebutting,
       COALESCE(s.reporting, 0) AS reporting
FROM claims c LEFT JOIN a ON a.claim_id = c.id LEFT JOIN f ON f.claim_id = c.id
LEFT JOIN s ON s.claim_id = c.id
""",
    direct="""
WITH pairs AS ({reviewed_pairs}),
seen AS (
    SELECT p.claim_id, p.matches, {stance_p}, d.outlet, d.language, {seen} AS seen_at, {day} AS day
    FROM pairs p JOIN {documents} ON d.id = p.document_id
    WHERE d.duplicate_of_id IS NULL
),
a AS (
    SELECT claim_id, COUNT(*) AS documents, SUM(matches) AS matches, COUNT(DISTINCT outlet) AS outlets,
           COUNT(DISTINCT language) AS languages, COUNT(DISTINCT day) AS active_days,
           MIN(seen_at) AS first_seen, MAX(seen_at) AS last_seen, {stance_documents}
    FROM seen GROUP BY claim_id
)
SELECT c.id AS claim_id, c.claim_set, c.key AS claim_key, c.text AS claim_text, c.active,
       COALESCE(a.documents, 0) AS documents, COALESCE(a.matches, 0) AS matches,
       COALESCE(a.outlets, 0) AS outlets, COALESCE(a.languages, 0) AS languages,
       COALESCE(a.active_days, 0) AS active_days, a.first_seen, a.last_seen,
       {span_days} AS span_days, {dormant_days} AS dormant_days,
       c.verdict, c.claimant, c.review_url, c.reviewer, c.reviewed_at, c.language AS claim_language,
       COALESCE(a.restating, 0) AS restating, COALESCE(a.rebutting, 0) AS rebutting,
       COALESCE(a.reporting, 0) AS reporting
FROM claims c LEFT JOIN a ON a.claim_id = c.id
""",
)

_REVIEW_SELECT = """,
       m.predicted_stance, m.stance_confidence, m.verdict, r.reviewer, r.reviewed_at, r.note AS review_note
"""
_REVIEW_JOIN = "LEFT JOIN match_reviews r ON r.id = m.review_id\n"
# Over the aggregates (migration 0007): the latest review's columns as scalar subqueries, evaluated
# only for the rows returned (a COUNT(*) of a million matches never looks at reviews).
_REVIEW_SUBQUERIES = """,
       m.predicted_stance, m.stance_confidence, m.verdict,
       (SELECT r.reviewer FROM match_reviews r WHERE r.id = m.review_id) AS reviewer,
       (SELECT r.reviewed_at FROM match_reviews r WHERE r.id = m.review_id) AS reviewed_at,
       (SELECT r.note FROM match_reviews r WHERE r.id = m.review_id) AS review_note
"""


def _with_review(sql: str, joined: bool = True) -> str:
    """match_details' SQL with the stance and latest-review columns (the review joined by id, or read
    by scalar subqueries)."""
    head, tail = sql.split("\nFROM matches m\n", 1)
    body, where = tail.rsplit("WHERE ", 1)
    columns = (_REVIEW_SELECT if joined else _REVIEW_SUBQUERIES).rstrip("\n")
    join = _REVIEW_JOIN if joined else ""
    return head + columns + "\nFROM matches m\n" + body + join + "WHERE " + where


REVIEWED_MATCH_DETAILS = View(
    name="match_details",
    description=MATCH_DETAILS.description + " Every match, with its predicted stance and its latest "
    "reviewed verdict (a prediction is never a review).",
    columns=(
        *MATCH_DETAILS.columns,
        _c("predicted_stance", "text",
           "Automatic stance (restates, rebuts, reports): a prediction, not a review."),
        _c("stance_confidence", "float", "Confidence of the predicted stance (0-1)."),
        _c("verdict", "text",
           "Latest reviewed verdict (restates, rebuts, reports, wrong); empty: not reviewed."),
        _c("reviewer", "text", "Who gave that verdict."),
        _c("reviewed_at", "datetime", "When (UTC)."),
        _c("review_note", "text", "The reviewer's note."),
    ),
    since_column="seen_day",
    has_claim=True,
    template=_with_review(_MATCH_DETAILS_INDEXED, joined=False),
    direct=_with_review(_MATCH_DETAILS),
)  # fmt: skip

REVIEWED_SOURCE_HEALTH = View(
    name="source_health",
    description=SOURCE_HEALTH.description + " Match counts leave out matches reviewed `wrong`.",
    columns=SOURCE_HEALTH.columns,
    since_column="last_fetched_at",
    has_claim=False,
    template=SOURCE_HEALTH.template,
    direct=SOURCE_HEALTH.direct.replace(
        "per_document AS (SELECT document_id, COUNT(*) AS n FROM matches GROUP BY document_id)",
        "per_document AS (SELECT document_id, COUNT(*) AS n FROM matches "
        "WHERE COALESCE(verdict, '') <> 'wrong' GROUP BY document_id)",
    ),
)

_VERDICT_COUNTS = ", ".join(
    f"SUM(CASE WHEN m.verdict = '{v}' THEN 1 ELSE 0 END) AS {v}"
    for v in ("restates", "rebuts", "reports", "wrong")
)
_REVIEW_STATS_SELECT = """
SELECT c.id AS claim_id, c.claim_set, c.key AS claim_key,
       COALESCE(k.matches, 0) + COALESCE(r.wrong, 0) AS matches, COALESCE(r.reviewed, 0) AS reviewed,
       CASE WHEN r.reviewed > 0 THEN CAST(r.reviewed - r.wrong AS FLOAT) / r.reviewed END AS precision,
       COALESCE(r.restates, 0) AS restates, COALESCE(r.rebuts, 0) AS rebuts,
       COALESCE(r.reports, 0) AS reports, COALESCE(r.wrong, 0) AS wrong,
       COALESCE(k.restating, 0) AS restating, COALESCE(k.rebutting, 0) AS rebutting,
       COALESCE(k.reporting, 0) AS reporting
FROM claims c LEFT JOIN k ON k.claim_id = c.id LEFT JOIN r ON r.claim_id = c.id
"""
# reviewed matches of originals, from ix_matches_verdict_claim (SQLite: documents from their narrow index)
_REVIEWED = (
    "r AS (\n    SELECT m.claim_id, COUNT(*) AS reviewed, "
    + _VERDICT_COUNTS
    + "\n    FROM {reviewed_matches}{reviewed_documents}\n"
    "    WHERE m.verdict IN ('restates', 'rebuts', 'reports', 'wrong') AND {reviewed_original}\n"
    "    GROUP BY m.claim_id\n)"
)

CLAIM_REVIEW_STATS = View(
    name="claim_review_stats",
    description="Per claim (every claim): matches, how many were reviewed, the precision among the "
    "reviewed ones (restates + rebuts + reports against wrong), one count per verdict, and the documents "
    "per stance. Only original documents.",
    columns=(
        _c("claim_id", "int", "claims.id"),
        _c("claim_set", "text", "Claim set of the claim."),
        _c("claim_key", "text", "Stable key of the claim within its set."),
        _c("matches", "int", "Matches of the claim in original documents (those reviewed wrong included)."),
        _c("reviewed", "int", "Of those: reviewed (latest verdict counts)."),
        _c("precision", "float", "(restates + rebuts + reports) / reviewed; empty when none is reviewed."),
        _c("restates", "int", "Reviewed restates: the passage asserts the claim."),
        _c("rebuts", "int", "Reviewed rebuts: the passage denies or argues against it."),
        _c("reports", "int", "Reviewed reports: the passage attributes it without endorsing it."),
        _c("wrong", "int", "Reviewed wrong: not about this claim."),
        _c("restating", "int", "Documents with a restating passage (verdict, else predicted)."),
        _c("rebutting", "int", "Documents with a rebutting passage (verdict, else predicted)."),
        _c("reporting", "int", "Documents with a reporting passage (verdict, else predicted)."),
    ),
    since_column=None,
    has_claim=True,
    template="WITH k AS (\n    SELECT claim_id, SUM(matches) AS matches, SUM(restating) AS restating, "
    "SUM(rebutting) AS rebutting, SUM(reporting) AS reporting\n"
    "    FROM claim_source_stats GROUP BY claim_id\n),\n"
    + _REVIEWED
    + _REVIEW_STATS_SELECT,
    direct="WITH pairs AS ({reviewed_pairs}),\nk AS (\n    SELECT p.claim_id, SUM(p.matches) AS matches, "
    + ", ".join(
        f"SUM(CASE WHEN p.{s} > 0 THEN 1 ELSE 0 END) AS {d}"
        for s, d in zip(_STANCES, _STANCE_DOCUMENTS, strict=True)
    )
    + "\n    FROM pairs p JOIN {documents} ON d.id = p.document_id WHERE d.duplicate_of_id IS NULL\n"
    "    GROUP BY p.claim_id\n),\n"
    + _REVIEWED
    + _REVIEW_STATS_SELECT,
)  # fmt: skip

VIEWS: tuple[View, ...] = (
    REVIEWED_CLAIM_DAILY,
    REVIEWED_CLAIM_WEEKLY,
    REVIEWED_CLAIM_SOURCES,
    REVIEWED_CLAIM_LIFECYCLE,
    REVIEWED_MATCH_DETAILS,
    REVIEWED_SOURCE_HEALTH,
    CLAIM_REVIEW_STATS,
)


def view_names() -> list[str]:
    """The names of the research views, in documentation order."""
    return [v.name for v in VIEWS]


def get_view(name: str) -> View:
    for view in VIEWS:
        if view.name == name:
            return view
    raise KeyError(name)


def create_view_sql(view: View, dialect: str, direct: bool = False) -> str:
    return f"CREATE VIEW {view.name} AS\n{view.sql(dialect, direct)}"


def drop_view_sql(view: View) -> str:
    return f"DROP VIEW IF EXISTS {view.name}"
