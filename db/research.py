"""Research access to the database: view exports, the research questions of docs/queries.md, the
data of the HTML report, Datasette metadata and the read-only researcher role (PostgreSQL).

Every value goes in as a bound parameter; only names checked against db/views.py (view and column
names) or quoted by the dialect (role, database and schema names in GRANT statements) are written
into SQL text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Date, bindparam, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from db.views import RESEARCH_TABLES, VIEWS, View, get_view

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUERIES_FILE = PROJECT_ROOT / "docs" / "queries.md"
ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Natural order of each view's rows in exports.
VIEW_ORDER: dict[str, tuple[str, ...]] = {
    "claim_daily": ("claim_set", "claim_key", "day"),
    "claim_weekly": ("claim_set", "claim_key", "week_start"),
    "claim_sources": ("claim_set", "claim_key", "source_key"),
    "claim_lifecycle": ("claim_set", "claim_key"),
    "match_details": ("match_id",),
    "source_health": ("source_key",),
}


class ResearchError(ValueError):
    """A research request claimwatch cannot fulfil (unknown view, unsupported filter, backend)."""


# --- typed rows ----------------------------------------------------------------------------------


def normalise(kind: str, value: Any) -> Any:
    """One view value as the same Python type on SQLite and PostgreSQL."""
    if value is None:
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    if kind == "date":
        if isinstance(value, datetime):
            return value.date()
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    if kind == "datetime":
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if isinstance(value, Decimal):
        return float(value)
    return value


@dataclass(frozen=True)
class ViewQuery:
    view: View
    since: date | None = None
    claim: str | None = None
    claim_set: str | None = None

    def statement(self) -> Any:
        view = self.view
        conditions: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            if view.since_column is None:
                raise ResearchError(f"view {view.name} has no date column: --since does not apply")
            conditions.append(f"{view.since_column} >= :since")
            params.append(bindparam("since", self.since, type_=Date()))
        for value, column in ((self.claim, "claim_key"), (self.claim_set, "claim_set")):
            if value is None:
                continue
            if not view.has_claim:
                raise ResearchError(f"view {view.name} is not per claim: --claim/--claim-set do not apply")
            conditions.append(f"{column} = :{column}")
            params.append(bindparam(column, value))
        sql = f"SELECT {', '.join(view.column_names)} FROM {view.name}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY " + ", ".join(VIEW_ORDER.get(view.name, view.column_names[:1]))
        return text(sql).bindparams(*params)


def resolve_view(name: str) -> View:
    try:
        return get_view(name)
    except KeyError:
        names = ", ".join(v.name for v in VIEWS)
        raise ResearchError(f"unknown view {name!r}; the views are {names}") from None


def iter_view_rows(session: Session, query: ViewQuery, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
    """The view's rows, typed alike on both backends, streamed in batches."""
    kinds = [c.kind for c in query.view.columns]
    result = session.execute(query.statement(), execution_options={"yield_per": batch})
    for row in result:
        yield tuple(normalise(kind, value) for kind, value in zip(kinds, row, strict=True))


def view_rows(session: Session, query: ViewQuery) -> list[dict[str, Any]]:
    names = query.view.column_names
    return [dict(zip(names, row, strict=True)) for row in iter_view_rows(session, query)]


# --- research questions (docs/queries.md) --------------------------------------------------------


@dataclass(frozen=True)
class ResearchQuestion:
    number: int
    title: str
    name: str
    sql: str
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)  # name -> default value


_HEADING = re.compile(r"^## (\d+)\. (.+?)\s*$")
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$")
_PARAM = re.compile(r'^--\s*param\s+(\w+)\s*=\s*"([^"]*)"')


def load_research_questions(path: Path = QUERIES_FILE) -> list[ResearchQuestion]:
    """The numbered questions of docs/queries.md: `## N. Title`, prose, one ```sql block each.

    Inside the block, `-- name: snake_case` names the query (Datasette's canned query) and
    `-- param NAME = "default": meaning` declares a `:NAME` parameter and its default.
    """
    questions: list[ResearchQuestion] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        heading = _HEADING.match(lines[index])
        index += 1
        if not heading:
            continue
        prose: list[str] = []
        while index < len(lines) and lines[index].strip() != "```sql":
            if _HEADING.match(lines[index]):
                raise ResearchError(f"{path}: question {heading.group(1)} has no ```sql block")
            prose.append(lines[index])
            index += 1
        index += 1
        block: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            block.append(lines[index])
            index += 1
        index += 1
        name = next((m.group(1) for m in map(_NAME.match, block) if m), None)
        if name is None:
            raise ResearchError(f"{path}: question {heading.group(1)} has no `-- name:` line")
        params = {m.group(1): m.group(2) for m in map(_PARAM.match, block) if m}
        questions.append(
            ResearchQuestion(
                number=int(heading.group(1)),
                title=heading.group(2),
                name=name,
                sql="\n".join(block).strip(),
                description=" ".join(p.strip() for p in prose if p.strip()),
                params=params,
            )
        )
    return questions


def run_research_question(
    session: Session, question: ResearchQuestion, params: Mapping[str, str] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one question with its default parameters (overridden by ``params``)."""
    values = {**question.params, **(params or {})}
    result = session.execute(text(question.sql), values)
    return list(result.keys()), [tuple(row) for row in result]


# --- report data ---------------------------------------------------------------------------------


def latest_seen_day(session: Session) -> date | None:
    value = session.execute(text("SELECT MAX(last_seen) FROM claim_lifecycle")).scalar()
    return normalise("date", value)


def top_outlets(session: Session, since: date, limit: int = 20) -> list[dict[str, Any]]:
    statement = text(
        "SELECT outlet, COUNT(DISTINCT document_id) AS documents, COUNT(DISTINCT claim_id) AS claims, "
        "COUNT(*) AS matches, MIN(seen_at) AS first_seen, MAX(seen_at) AS last_seen "
        "FROM match_details WHERE seen_day >= :since "
        "GROUP BY outlet ORDER BY documents DESC, claims DESC, outlet LIMIT :limit"
    ).bindparams(bindparam("since", since, type_=Date()), bindparam("limit", limit))
    kinds = ("text", "int", "int", "int", "datetime", "datetime")
    return [
        {key: normalise(kind, row[key]) for key, kind in zip(row.keys(), kinds, strict=True)}
        for row in session.execute(statement).mappings()
    ]


def latest_matches(session: Session, since: date, limit: int = 50) -> list[dict[str, Any]]:
    """The most recently seen matches (those reviewed wrong left out), with stance and verdict."""
    columns = (
        "claim_key", "claim_text", "score", "passage", "title", "url", "outlet", "language", "seen_at",
        "predicted_stance", "verdict",
    )  # fmt: skip
    statement = text(
        f"SELECT {', '.join(columns)} FROM match_details WHERE seen_day >= :since "
        "AND COALESCE(verdict, '') <> 'wrong' "
        "ORDER BY seen_at DESC, score DESC LIMIT :limit"
    ).bindparams(bindparam("since", since, type_=Date()), bindparam("limit", limit))
    view = get_view("match_details")
    kinds = {c.name: c.kind for c in view.columns}
    return [
        {key: normalise(kinds[key], row[key]) for key in columns}
        for row in session.execute(statement).mappings()
    ]


# --- Datasette -----------------------------------------------------------------------------------


def datasette_metadata(database_name: str, path: Path = QUERIES_FILE) -> dict[str, Any]:
    """Datasette metadata: the views described, the research questions as canned queries."""
    queries = {
        q.name: {"sql": q.sql, "title": f"{q.number}. {q.title}", "description": q.description}
        for q in load_research_questions(path)
    }
    tables = {
        view.name: {
            "description": view.description,
            "columns": {c.name: c.description for c in view.columns},
        }
        for view in VIEWS
    }
    return {
        "title": "claimwatch",
        "description": "Claims of a seed commentary and where they recur. Start with the views; "
        "docs/schema.md describes every table and column.",
        "databases": {database_name: {"tables": tables, "queries": queries}},
    }


# --- read-only researcher role (PostgreSQL) ------------------------------------------------------


def grant_readonly(connection: Connection, role: str, login: bool = False) -> list[str]:
    """Create (if needed) a role that can read the research tables and views, nothing else.

    Returns the statements executed. Alert e-mails, subscriptions and locks are not granted. The
    role's transactions are read-only by default too. Run it again after a migration adds views.
    """
    if connection.dialect.name != "postgresql":
        raise ResearchError(
            "read-only roles need PostgreSQL; on SQLite open the file read-only instead "
            "(`claimwatch browse`, or sqlite3 'file:claimwatch.db?mode=ro')"
        )
    if not ROLE_NAME.match(role):
        raise ResearchError(f"role name {role!r}: use letters, digits and _ (at most 63, not a digit first)")
    quote = connection.dialect.identifier_preparer.quote
    database, schema = connection.execute(text("SELECT current_database(), current_schema()")).one()
    existing = set(inspect(connection).get_table_names()) | set(inspect(connection).get_view_names())
    objects = [name for name in (*RESEARCH_TABLES, *(v.name for v in VIEWS)) if name in existing]
    exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}).scalar()
    statements: list[str] = []
    if not exists:
        statements.append(f"CREATE ROLE {quote(role)} {'LOGIN' if login else 'NOLOGIN'}")
    elif login:
        statements.append(f"ALTER ROLE {quote(role)} LOGIN")
    statements += [
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {quote(role)}",
        f"GRANT USAGE ON SCHEMA {quote(schema)} TO {quote(role)}",
        f"GRANT SELECT ON {', '.join(quote(name) for name in objects)} TO {quote(role)}",
        f"ALTER ROLE {quote(role)} IN DATABASE {quote(database)} SET default_transaction_read_only = on",
    ]
    for statement in statements:
        connection.execute(text(statement))
    return statements
