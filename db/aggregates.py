"""Aggregate tables behind the research views, kept exact by database triggers.

``claim_documents`` holds one row per claim and *original* document that has matches (passages
counted, best score, and the document's seen time, day, week, source, outlet and language); the
rollups are computed from it: ``claim_day_stats`` (claim × day), ``claim_week_stats`` (claim × ISO
week), ``claim_source_stats`` (claim × source) and ``claim_facets`` (documents per claim and outlet /
language, for the distinct counts of ``claim_lifecycle``). Triggers on ``matches``, ``documents`` and
``claim_documents`` keep them equal to what the views computed directly from ``matches`` (the
``direct`` SQL of db/views.py, which the tests compare against) on every write, whichever process
makes it:

- a new match adds to its (claim, document) row; a deleted or changed match recomputes that row from
  the remaining matches (deletes cascading from documents and claims included);
- a document whose seen time, source, outlet, language or duplicate link changes recomputes its rows
  (a document linked as a copy loses them; a copy whose original is deleted becomes an original);
- a changed ``claim_documents`` row recomputes the day, week and source groups it belongs to (a few
  hundred rows at most, read from a covering index) and moves its outlet/language facet counts.

Since migration 0007 (``reviews=True``, the default) matches reviewed ``wrong`` (``matches.verdict``)
count nowhere, and each (claim, document) row counts its passages per stance (``restates``,
``rebuts``, ``reports``: the reviewed verdict, else the predicted stance); the rollups count the
documents with at least one passage of each stance (``restating``, ``rebutting``, ``reporting``).
Triggers on ``match_reviews`` copy a match's latest verdict to ``matches.verdict`` /
``matches.review_id``; that update recomputes the match's (claim, document) row like any other.
Migration 0005 builds the earlier form (``reviews=False``).

Claims' and sources' names, texts and ``active`` flags are joined at query time, so they need no
upkeep. On PostgreSQL the trigger functions first take a transaction-level advisory lock: concurrent
writers maintain the aggregates one after the other, and each recomputation, a statement of its own
under READ COMMITTED, sees the rows of writers that committed before it. A missing source is stored
as ``source_id`` 0 so that every group key is NOT NULL.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.views import SEEN, dialect_sql

AGGREGATE_TABLES = (
    "claim_documents",
    "claim_day_stats",
    "claim_week_stats",
    "claim_source_stats",
    "claim_facets",
)
# pg_advisory_xact_lock key serialising aggregate upkeep between concurrent writers (PostgreSQL).
ADVISORY_LOCK_KEY = 72_651_125

STANCES = ("restates", "rebuts", "reports")
# a match counts unless reviewed wrong; its stance is the reviewed verdict, else the predicted one
COUNTED = "COALESCE(m.verdict, '') <> 'wrong'"
STANCE = "COALESCE(m.verdict, m.predicted_stance)"
_BASE_PAIR_COLUMNS = (
    "claim_id, document_id, matches, best_score, seen_at, day, week_start, source_id, outlet, language"
)
_BASE_PAIR_UPDATED = (
    "matches",
    "best_score",
    "seen_at",
    "day",
    "week_start",
    "source_id",
    "outlet",
    "language",
)


def _pair_columns(reviews: bool) -> str:
    return _BASE_PAIR_COLUMNS + (", restates, rebuts, reports" if reviews else "")


def _pair_update(reviews: bool) -> str:
    return ", ".join(f"{c} = excluded.{c}" for c in _BASE_PAIR_UPDATED + (STANCES if reviews else ()))


def stance_count(stance: str, row: str = "m") -> str:
    """1 when match ``row`` (m, NEW) has ``stance`` (verdict, else predicted), else 0."""
    return f"CASE WHEN COALESCE({row}.verdict, {row}.predicted_stance) = '{stance}' THEN 1 ELSE 0 END"


@dataclass(frozen=True)
class Rollup:
    table: str
    key: tuple[str, ...]  # group columns of claim_documents (and of the rollup table)
    columns: str  # the rollup's value columns
    select: str  # their aggregates over claim_documents


_DAY_VALUES = (
    "COUNT(*), SUM(matches), COUNT(DISTINCT NULLIF(source_id, 0)), COUNT(DISTINCT outlet), "
    "COUNT(DISTINCT language), MAX(best_score)"
)
# documents with at least one passage of each stance
STANCE_DOCUMENTS = ("restating", "rebutting", "reporting")
_STANCE_VALUES = ", ".join(f"SUM(CASE WHEN {s} > 0 THEN 1 ELSE 0 END)" for s in STANCES)
ROLLUPS_0005 = (
    Rollup(
        "claim_day_stats",
        ("claim_id", "day"),
        "documents, matches, sources, outlets, languages, best_score, first_seen, last_seen",
        _DAY_VALUES + ", MIN(seen_at), MAX(seen_at)",
    ),
    Rollup(
        "claim_week_stats",
        ("claim_id", "week_start"),
        "documents, matches, sources, outlets, languages, best_score",
        _DAY_VALUES,
    ),
    Rollup(
        "claim_source_stats",
        ("claim_id", "source_id"),
        "documents, matches, outlets, best_score, first_seen, last_seen",
        "COUNT(*), SUM(matches), COUNT(DISTINCT outlet), MAX(best_score), MIN(seen_at), MAX(seen_at)",
    ),
)
ROLLUPS = tuple(
    Rollup(r.table, r.key, f"{r.columns}, {', '.join(STANCE_DOCUMENTS)}", f"{r.select}, {_STANCE_VALUES}")
    for r in ROLLUPS_0005
)
FACETS = ("outlet", "language")


def _rollups(reviews: bool) -> tuple[Rollup, ...]:
    return ROLLUPS if reviews else ROLLUPS_0005


def _fragments(dialect: str) -> dict[str, str]:
    sql = dialect_sql(dialect)
    return {
        "day": sql["day"].format(x=SEEN),
        "week": sql["week"].format(x=SEEN),
        "greatest": "MAX" if dialect == "sqlite" else "GREATEST",
        "differs": "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM",
    }


def pair_select(dialect: str, where: str, reviews: bool = True) -> str:
    """(claim, original document) rows of claim_documents computed from matches, filtered by ``where``
    (``reviews``: matches reviewed wrong left out, passages counted per stance)."""
    f = _fragments(dialect)
    stances = "".join(f", SUM({stance_count(s)})" for s in STANCES) if reviews else ""
    counted = f" AND {COUNTED}" if reviews else ""
    return (
        f"SELECT m.claim_id, m.document_id, COUNT(*), MAX(m.score), {SEEN}, {f['day']}, {f['week']}, "
        f"COALESCE(d.source_id, 0), d.outlet, d.language{stances} "
        "FROM matches m JOIN documents d ON d.id = m.document_id "
        f"WHERE d.duplicate_of_id IS NULL{counted} AND {where} GROUP BY m.claim_id, m.document_id, d.id"
    )


def _refresh_pairs(dialect: str, where: str, reviews: bool) -> list[str]:
    """Recompute the claim_documents rows selected by ``where`` (over m.* and d.*) from matches."""
    return [
        f"INSERT INTO claim_documents ({_pair_columns(reviews)}) {pair_select(dialect, where, reviews)} "
        f"ON CONFLICT (claim_id, document_id) DO UPDATE SET {_pair_update(reviews)}"
    ]


def _refresh_pair(dialect: str, row: str, reviews: bool) -> list[str]:
    """Recompute the (claim, document) row of match ``row`` (OLD or NEW); drop it when no (counted)
    match is left."""
    match = f"m.claim_id = {row}.claim_id AND m.document_id = {row}.document_id"
    counted = f" AND {COUNTED}" if reviews else ""
    return [
        *_refresh_pairs(dialect, match, reviews),
        f"DELETE FROM claim_documents WHERE claim_id = {row}.claim_id AND document_id = {row}.document_id "
        "AND NOT EXISTS (SELECT 1 FROM matches m JOIN documents d ON d.id = m.document_id "
        f"WHERE d.duplicate_of_id IS NULL{counted} AND {match})",
    ]


def rollup_insert(rollup: Rollup, where: str) -> str:
    """Insert the rollup rows of the claim_documents groups selected by ``where``."""
    key = ", ".join(rollup.key)
    return (
        f"INSERT INTO {rollup.table} ({key}, {rollup.columns}) SELECT {key}, {rollup.select} "
        f"FROM claim_documents WHERE {where} GROUP BY {key}"
    )


def _refresh_group(rollup: Rollup, row: str, guard: str = "") -> list[str]:
    """Recompute the rollup row of claim_documents row ``row`` (OLD or NEW) from claim_documents."""
    where = " AND ".join(f"{c} = {row}.{c}" for c in rollup.key) + (f" AND ({guard})" if guard else "")
    return [f"DELETE FROM {rollup.table} WHERE {where}", rollup_insert(rollup, where)]


def _facet_add(row: str, facet: str, guard: str = "") -> str:
    condition = f"{row}.{facet} IS NOT NULL" + (f" AND ({guard})" if guard else "")
    return (
        f"INSERT INTO claim_facets (claim_id, facet, value, documents) "
        f"SELECT {row}.claim_id, '{facet}', {row}.{facet}, 1 WHERE {condition} "
        "ON CONFLICT (claim_id, facet, value) DO UPDATE SET documents = claim_facets.documents + 1"
    )


def _facet_remove(row: str, facet: str, guard: str = "") -> list[str]:
    where = f"claim_id = {row}.claim_id AND facet = '{facet}' AND value = {row}.{facet}" + (
        f" AND ({guard})" if guard else ""
    )
    return [
        f"UPDATE claim_facets SET documents = documents - 1 WHERE {where}",
        f"DELETE FROM claim_facets WHERE {where} AND documents <= 0",
    ]


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    event: str  # INSERT, UPDATE or DELETE
    columns: tuple[str, ...]  # UPDATE OF these columns (empty: any)
    when: str | None
    statements: tuple[str, ...]


_DOCUMENT_COLUMNS = ("published_at", "fetched_at", "source_id", "outlet", "language", "duplicate_of_id")


# the latest review of a match (by time, then id) and what the review triggers copy to matches
_LATEST_REVIEW = (
    "SELECT r.{column} FROM match_reviews r WHERE r.match_id = {row}.match_id "
    "ORDER BY r.reviewed_at DESC, r.id DESC LIMIT 1"
)


def _copy_latest_review(row: str) -> str:
    latest = {c: _LATEST_REVIEW.format(column=c, row=row) for c in ("id", "verdict")}
    return (
        f"UPDATE matches SET review_id = ({latest['id']}), verdict = ({latest['verdict']}) "
        f"WHERE id = {row}.match_id"
    )


def triggers(dialect: str, reviews: bool = True) -> list[Trigger]:
    """The triggers keeping the aggregates exact (``reviews``: the form of migration 0007)."""
    f = _fragments(dialect)
    differs = f["differs"]
    rollups = _rollups(reviews)
    doc_changed = " OR ".join(f"OLD.{c} {differs} NEW.{c}" for c in _DOCUMENT_COLUMNS)
    if reviews:
        new_stances = "".join(f", {stance_count(s, 'NEW')}" for s in STANCES)
        add_stances = "".join(f", {s} = claim_documents.{s} + excluded.{s}" for s in STANCES)
        new_counted = " AND COALESCE(NEW.verdict, '') <> 'wrong'"
    else:
        new_stances = add_stances = new_counted = ""
    added_pair = (
        f"INSERT INTO claim_documents ({_pair_columns(reviews)}) "
        f"SELECT NEW.claim_id, NEW.document_id, 1, NEW.score, {SEEN}, {f['day']}, {f['week']}, "
        f"COALESCE(d.source_id, 0), d.outlet, d.language{new_stances} "
        f"FROM documents d WHERE d.id = NEW.document_id AND d.duplicate_of_id IS NULL{new_counted} "
        "ON CONFLICT (claim_id, document_id) DO UPDATE SET matches = claim_documents.matches + 1, "
        f"best_score = {f['greatest']}(claim_documents.best_score, excluded.best_score){add_stances}"
    )
    moved = {
        r.table: " OR ".join(f"OLD.{c} {differs} NEW.{c}" for c in r.key) for r in rollups
    }  # the row left the group OLD belonged to
    facet_moved = {
        facet: f"OLD.claim_id {differs} NEW.claim_id OR OLD.{facet} {differs} NEW.{facet}" for facet in FACETS
    }
    match_columns = ("claim_id", "document_id", "score") + (
        ("verdict", "predicted_stance") if reviews else ()
    )
    review_triggers = (
        [
            Trigger(
                "cw_match_reviews_insert", "match_reviews", "INSERT", (), None, (_copy_latest_review("NEW"),)
            ),
            Trigger(
                "cw_match_reviews_delete", "match_reviews", "DELETE", (), None, (_copy_latest_review("OLD"),)
            ),
        ]
        if reviews
        else []
    )
    return [
        Trigger("cw_matches_insert", "matches", "INSERT", (), None, (added_pair,)),
        Trigger(
            "cw_matches_delete", "matches", "DELETE", (), None, tuple(_refresh_pair(dialect, "OLD", reviews))
        ),
        Trigger(
            "cw_matches_update",
            "matches",
            "UPDATE",
            match_columns,
            None,
            (*_refresh_pair(dialect, "OLD", reviews), *_refresh_pair(dialect, "NEW", reviews)),
        ),
        Trigger(
            "cw_documents_update",
            "documents",
            "UPDATE",
            _DOCUMENT_COLUMNS,
            doc_changed,
            (
                "DELETE FROM claim_documents WHERE document_id = NEW.id AND NEW.duplicate_of_id IS NOT NULL",
                *_refresh_pairs(dialect, "m.document_id = NEW.id", reviews),
            ),
        ),
        Trigger(
            "cw_claim_documents_insert",
            "claim_documents",
            "INSERT",
            (),
            None,
            (
                *(s for r in rollups for s in _refresh_group(r, "NEW")),
                *(_facet_add("NEW", facet) for facet in FACETS),
            ),
        ),
        Trigger(
            "cw_claim_documents_delete",
            "claim_documents",
            "DELETE",
            (),
            None,
            (
                *(s for r in rollups for s in _refresh_group(r, "OLD")),
                *(s for facet in FACETS for s in _facet_remove("OLD", facet)),
            ),
        ),
        Trigger(
            "cw_claim_documents_update",
            "claim_documents",
            "UPDATE",
            (),
            None,
            (
                *(s for r in rollups for s in _refresh_group(r, "OLD", moved[r.table])),
                *(s for r in rollups for s in _refresh_group(r, "NEW")),
                *(s for facet in FACETS for s in _facet_remove("OLD", facet, facet_moved[facet])),
                *(_facet_add("NEW", facet, facet_moved[facet]) for facet in FACETS),
            ),
        ),
        *review_triggers,
    ]


def create_trigger_sql(trigger: Trigger, dialect: str) -> list[str]:
    event = trigger.event + (f" OF {', '.join(trigger.columns)}" if trigger.columns else "")
    body = ";\n    ".join(trigger.statements)
    if dialect == "sqlite":
        when = f" WHEN {trigger.when}" if trigger.when else ""
        return [
            f"CREATE TRIGGER {trigger.name} AFTER {event} ON {trigger.table} FOR EACH ROW{when}\n"
            f"BEGIN\n    {body};\nEND"
        ]
    when = f" WHEN ({trigger.when})" if trigger.when else ""
    return [
        f"CREATE FUNCTION {trigger.name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
        f"    PERFORM pg_advisory_xact_lock({ADVISORY_LOCK_KEY});\n    {body};\n    RETURN NULL;\nEND\n$$",
        f"CREATE TRIGGER {trigger.name} AFTER {event} ON {trigger.table} FOR EACH ROW{when} "
        f"EXECUTE FUNCTION {trigger.name}()",
    ]


def drop_trigger_sql(trigger: Trigger, dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {trigger.name}"]
    return [
        f"DROP TRIGGER IF EXISTS {trigger.name} ON {trigger.table}",
        f"DROP FUNCTION IF EXISTS {trigger.name}()",
    ]


# PostgreSQL: a statement writing matches takes the lock before its first row, so a writer never
# holds a row another writer waits for while it waits for the lock itself (no lock-order deadlock).
LOCK_FUNCTION = "cw_aggregates_lock"
_LOCK_SQL = (
    f"CREATE FUNCTION {LOCK_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
    f"    PERFORM pg_advisory_xact_lock({ADVISORY_LOCK_KEY});\n    RETURN NULL;\nEND\n$$",
    f"CREATE TRIGGER cw_matches_lock BEFORE INSERT OR UPDATE OR DELETE ON matches FOR EACH STATEMENT "
    f"EXECUTE FUNCTION {LOCK_FUNCTION}()",
)


def create_triggers(connection: Connection, reviews: bool = True) -> None:
    dialect = connection.dialect.name
    statements = [s for trigger in triggers(dialect, reviews) for s in create_trigger_sql(trigger, dialect)]
    if dialect == "postgresql":
        statements += _LOCK_SQL
    for statement in statements:
        connection.execute(text(statement))


def drop_triggers(connection: Connection, reviews: bool = True) -> None:
    dialect = connection.dialect.name
    statements = [
        s for trigger in reversed(triggers(dialect, reviews)) for s in drop_trigger_sql(trigger, dialect)
    ]
    if dialect == "postgresql":
        statements += [
            "DROP TRIGGER IF EXISTS cw_matches_lock ON matches",
            f"DROP FUNCTION IF EXISTS {LOCK_FUNCTION}()",
        ]
    for statement in statements:
        connection.execute(text(statement))


def rebuild_aggregates(connection: Connection, reviews: bool = True) -> None:
    """Recompute every aggregate table from matches and documents (the migration's backfill, and
    after a bulk load made with the triggers dropped). Run it with the triggers dropped: they would
    redo the work row by row."""
    dialect = connection.dialect.name
    for table in AGGREGATE_TABLES:
        connection.execute(text(f"DELETE FROM {table}"))
    connection.execute(
        text(
            f"INSERT INTO claim_documents ({_pair_columns(reviews)}) {pair_select(dialect, '1 = 1', reviews)}"
        )
    )
    for rollup in _rollups(reviews):
        connection.execute(text(rollup_insert(rollup, "1 = 1")))
    for facet in FACETS:
        connection.execute(
            text(
                "INSERT INTO claim_facets (claim_id, facet, value, documents) "
                f"SELECT claim_id, '{facet}', {facet}, COUNT(*) FROM claim_documents "
                f"WHERE {facet} IS NOT NULL GROUP BY claim_id, {facet}"
            )
        )
