"""docs/queries.md on both backends, exports, the read-only role, concurrent writers (PostgreSQL)."""

from __future__ import annotations

import csv
import json
import threading
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from crawler.cli.app import app
from crawler.services.exporting import export_view
from db.models import Document, Match
from db.queries import store_documents, store_matches, sync_claims
from db.research import (
    ResearchError,
    ViewQuery,
    grant_readonly,
    load_research_questions,
    run_research_question,
    view_rows,
)
from db.session import make_engine, session_scope
from db.views import get_view
from pipelines.dedup import content_hash, simhash

QUESTIONS = load_research_questions()


def run(data, name: str, **params: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    question = next(q for q in QUESTIONS if q.name == name)
    with data.sessions() as session:
        columns, rows = run_research_question(session, question, params)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_queries_md_holds_ten_named_questions() -> None:
    assert [q.number for q in QUESTIONS] == list(range(1, 11))
    assert len({q.name for q in QUESTIONS}) == 10
    assert all(q.sql.upper().lstrip().startswith(("SELECT", "WITH", "--")) for q in QUESTIONS)
    assert next(q for q in QUESTIONS if q.name == "dormant_claims").params == {"days": "30"}


def _same_month(today: date, days_ago: int) -> int:
    return int((today - timedelta(days=days_ago)).strftime("%Y-%m") == today.strftime("%Y-%m"))


def check_recurring(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    documents = {r["claim_key"]: int(r["documents"]) for r in rows}
    assert rows[0]["claim_key"] == "seed-01"
    assert documents["seed-01"] == 2 + _same_month(data.today, 2)
    assert documents["seed-02"] == 1 + _same_month(data.today, 10)
    assert "seed-03" not in documents


def check_first_outlets(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    seed01 = [(r["place"], r["outlet"]) for r in rows if r["claim_key"] == "seed-01"]
    assert seed01 == [(1, "bbc.example"), (2, "tass.example"), (3, "apa.example")]


def check_languages(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    assert [r["language"] for r in rows if r["claim_key"] == "seed-01"] == ["ru", "en"]
    assert [r["language"] for r in rows if r["claim_key"] == "seed-02"] == ["tr", "en"]


def check_dormant(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    assert [(r["claim_key"], r["dormant_days"]) for r in rows] == [("seed-03", 60)]


def check_growing(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    latest = {r["claim_key"]: int(r["latest_week"]) for r in rows}
    assert latest["seed-01"] >= 2 and rows[0]["claim_key"] == "seed-01"


def check_countries(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    seed01 = {
        (r["country"], r["perspective"]): int(r["documents"]) for r in rows if r["claim_key"] == "seed-01"
    }
    assert seed01 == {("RU", "russian"): 1, ("AZ", "azerbaijani"): 1, ("GB", "western"): 1}


def check_outlets(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    assert (rows[0]["outlet"], rows[0]["claims"], rows[0]["documents"]) == ("tass.example", 3, 2)
    assert "copy.example" not in {r["outlet"] for r in rows}


def check_together(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    assert [(r["claim"], r["with_claim"], r["documents"]) for r in rows] == [("seed-01", "seed-02", 1)]


def check_failing(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    failing = {r["source_key"]: r for r in rows}
    assert {"tass-en", "bbc-ru"} <= set(failing)
    assert float(failing["tass-en"]["failure_percent"]) == pytest.approx(33.3)
    assert failing["bbc-ru"]["failure_reasons"] == "http 503: 1"


def check_evidence(rows: list[dict], data) -> None:  # type: ignore[no-untyped-def]
    best = rows[0]
    assert (best["claim_key"], best["place"], best["url"]) == ("seed-01", 1, "https://tass.example/news/1")
    assert best["score"] == pytest.approx(0.91)  # the copy's 0.99 does not count
    assert max(r["place"] for r in rows) == 3


EXPECTED: dict[str, Callable[..., None]] = {
    "recurring_this_month": check_recurring,
    "first_outlets": check_first_outlets,
    "language_spread": check_languages,
    "dormant_claims": check_dormant,
    "growing_claims": check_growing,
    "countries_and_perspectives": check_countries,
    "outlets_by_claims": check_outlets,
    "claims_together": check_together,
    "failing_sources": check_failing,
    "strongest_evidence": check_evidence,
}


@pytest.mark.parametrize("name", [q.name for q in QUESTIONS])
def test_research_question_answers(research_data, name: str) -> None:  # type: ignore[no-untyped-def]
    rows = run(research_data, name)
    assert rows, f"{name} returned nothing"
    EXPECTED[name](rows, research_data)


def test_research_question_parameters(research_data) -> None:  # type: ignore[no-untyped-def]
    assert {r["claim_key"] for r in run(research_data, "first_outlets", claim="seed-02")} == {"seed-02"}
    assert run(research_data, "dormant_claims", days="90") == []


# --- exports -------------------------------------------------------------------------------------


def read_back(fmt: str, path: Path) -> list[dict[str, Any]]:
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as stream:
            return list(csv.DictReader(stream))
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_formats_round_trip(research_data, fmt: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    query = ViewQuery(get_view("claim_daily"), claim="seed-01")
    output = tmp_path / f"daily.{fmt}"
    assert export_view(research_data.sessions, query, fmt, output) == 2
    with research_data.sessions() as session:
        expected = view_rows(session, query)
    got = read_back(fmt, output)
    assert len(got) == 2 and list(got[0]) == list(get_view("claim_daily").column_names)
    if fmt == "parquet":
        assert got == expected  # typed: dates, ints, floats
    else:
        assert [r["day"] for r in got] == [r["day"].isoformat() for r in expected]
        assert [int(r["documents"]) for r in got] == [r["documents"] for r in expected]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_export_command(research_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    output = tmp_path / "matches.jsonl"
    since = (research_data.today - timedelta(days=3)).isoformat()
    args = ["--database-url", research_data.url, "export", "match_details", "--format", "jsonl"]
    result = runner.invoke(app, [*args, "--claim", "seed-01", "--since", since, "--output", str(output)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 4 and {r["claim_key"] for r in records} == {"seed-01"}
    assert records[0]["seen_day"] >= since
    bad = runner.invoke(app, ["--database-url", research_data.url, "export", "source_health", "--claim", "x",
                              "--output", str(tmp_path / "x.csv")])  # fmt: skip
    assert bad.exit_code == 1 and "is not per claim" in bad.output and "Traceback" not in bad.output
    unknown = runner.invoke(app, ["--database-url", research_data.url, "export", "nope", "-o", str(output)])
    assert unknown.exit_code == 1 and "unknown view 'nope'" in unknown.output
    wrong = runner.invoke(app, [*args, "--format", "xlsx", "-o", str(output)])
    assert wrong.exit_code == 2 and "--format" in wrong.output


# --- PostgreSQL: read-only role, concurrent writers ----------------------------------------------


def test_grant_readonly_role(research_data) -> None:  # type: ignore[no-untyped-def]
    engine = research_data.sessions.kw["bind"]
    if research_data.backend != "postgresql":
        with engine.connect() as connection, pytest.raises(ResearchError, match="need PostgreSQL"):
            grant_readonly(connection, "researcher")
        return
    role = f"cw_reader_{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(
        app, ["--database-url", research_data.url, "db", "grant-readonly", role, "--login"]
    )
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(app, ["--database-url", research_data.url, "db", "grant-readonly", role])
    assert again.exit_code == 0, again.output  # idempotent
    reader = make_engine(research_data.url.replace("://postgres@", f"://{role}@"))
    try:
        with reader.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM claim_lifecycle")).scalar() == 4
            assert connection.execute(text("SELECT COUNT(*) FROM documents")).scalar() == 9
        for forbidden in (
            "SELECT COUNT(*) FROM subscriptions",
            "DELETE FROM claims",
            "CREATE TABLE x (i int)",
        ):
            with (
                reader.connect() as connection,
                pytest.raises(Exception, match="permission denied|read-only"),
            ):
                connection.execute(text(forbidden))
    finally:
        reader.dispose()
        with engine.begin() as connection:
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))
    bad = CliRunner().invoke(app, ["--database-url", research_data.url, "db", "grant-readonly", "bad;name"])
    assert bad.exit_code == 1 and "role name" in bad.output


def test_concurrent_writers_store_each_row_once(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    """Several crawls storing the same pages and matches at once: unique keys + ON CONFLICT."""
    texts = [f"Baku and Moscow article {i}: " + " ".join(f"w{i}x{j}" for j in range(80)) for i in range(20)]
    records = [
        {"url": f"https://race.example/{i}", "status": "ok", "text": t, "content_hash": content_hash(t),
         "simhash": simhash(t), "match_status": "pending", "outlet": "race.example"}
        for i, t in enumerate(texts)
    ]  # fmt: skip

    class Stub:
        id, text, paragraph, extra = "c1", "claim", None, None

    with session_scope(sessions) as session:
        sync_claims(session, "seed", [Stub()], str)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer() -> None:
        try:
            barrier.wait()
            with session_scope(sessions) as session:
                store_documents(session, records)
            with session_scope(sessions) as session:
                ids = list(session.scalars(select(Document.id)))
                claim = session.execute(text("SELECT id FROM claims")).scalar()
                match = {"claim_id": claim, "passage": "p", "passage_start": 0, "passage_end": 1,
                         "score": 0.9, "threshold": 0.5, "model": "m", "model_revision": "r"}  # fmt: skip
                store_matches(session, [{**match, "document_id": i} for i in ids])
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 20
        assert session.scalar(select(func.count()).select_from(Match)) == 20
