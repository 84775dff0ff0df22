"""Research views on SQLite and PostgreSQL: definitions, counts (syndicated copies once), schema docs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, inspect, text

from db.migrate import alembic_config
from db.models import Base
from db.research import ViewQuery, view_rows
from db.session import make_engine
from db.views import VIEWS, get_view, view_names
from tests.helpers import (
    assert_aggregates_equal_rebuild,
    assert_views_equal_direct,
)

SCHEMA_DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def rows(data, name: str, **filters) -> list[dict]:  # type: ignore[no-untyped-def]
    with data.sessions() as session:
        return view_rows(session, ViewQuery(get_view(name), **filters))


def by_claim(items: list[dict], key: str) -> list[dict]:
    return [r for r in items if r["claim_key"] == key]


def test_views_exist_with_their_declared_columns(research_data) -> None:  # type: ignore[no-untyped-def]
    engine = research_data.sessions.kw["bind"]
    assert set(view_names()) <= set(inspect(engine).get_view_names())
    with engine.connect() as connection:
        for view in VIEWS:
            columns = tuple(connection.execute(text(f"SELECT * FROM {view.name} WHERE 1 = 0")).keys())
            assert columns == view.column_names, view.name


def test_claim_daily_counts_each_original_once(research_data) -> None:  # type: ignore[no-untyped-def]
    today = research_data.today
    daily = by_claim(rows(research_data, "claim_daily"), "seed-01")
    assert [(r["day"], r["documents"], r["matches"]) for r in daily] == [
        (today - timedelta(days=2), 1, 1),
        (today, 2, 3),  # tass (2 passages) + apa; the copy's stray match is not counted
    ]
    latest = daily[-1]
    assert (latest["sources"], latest["outlets"], latest["languages"]) == (2, 2, 1)
    assert latest["month"] == f"{today:%Y-%m}" and latest["best_score"] == pytest.approx(0.91)
    assert [r["day"] for r in rows(research_data, "claim_daily", since=today)] == [today, today]


def test_claim_weekly_groups_by_iso_week(research_data) -> None:  # type: ignore[no-untyped-def]
    weekly = rows(research_data, "claim_weekly")
    for r in weekly:
        assert r["week_start"].weekday() == 0  # Monday
    seed01 = by_claim(weekly, "seed-01")
    assert sum(r["documents"] for r in seed01) == 3
    assert {r["claim_key"] for r in weekly} == {"seed-01", "seed-02", "seed-03"}


def test_claim_sources_per_source(research_data) -> None:  # type: ignore[no-untyped-def]
    sources = {r["source_key"]: r for r in by_claim(rows(research_data, "claim_sources"), "seed-01")}
    assert set(sources) == {"tass-en", "apa-en", "bbc-ru"}  # not the copy's outlet
    assert (sources["tass-en"]["documents"], sources["tass-en"]["matches"]) == (1, 2)
    assert (sources["bbc-ru"]["country"], sources["bbc-ru"]["perspective"]) == ("GB", "western")
    assert sources["bbc-ru"]["first_seen"] < sources["tass-en"]["first_seen"]


def test_claim_lifecycle_first_last_dormant(research_data) -> None:  # type: ignore[no-untyped-def]
    life = {r["claim_key"]: r for r in rows(research_data, "claim_lifecycle")}
    assert set(life) == {"seed-01", "seed-02", "seed-03", "seed-04"}
    one = life["seed-01"]
    assert (one["documents"], one["matches"], one["outlets"], one["languages"], one["active_days"]) == (
        3,
        4,
        3,
        2,
        2,
    )
    assert (one["span_days"], one["dormant_days"]) == (2, 0)
    assert life["seed-03"]["dormant_days"] == 60 and life["seed-03"]["span_days"] == 0
    never = life["seed-04"]
    assert never["documents"] == 0 and never["first_seen"] is None and never["dormant_days"] is None
    assert never["active"] is True


def test_match_details_is_flat_and_skips_copies(research_data) -> None:  # type: ignore[no-untyped-def]
    details = rows(research_data, "match_details", claim="seed-01")
    assert len(details) == 4
    assert "copy.example" not in {r["outlet"] for r in details}
    best = max(details, key=lambda r: r["score"])
    assert best["url"] == "https://tass.example/news/1" and best["country"] == "RU"
    assert best["seen_day"] == research_data.today and best["language"] == "en"
    assert best["title"] == "Article 1 from tass.example" and best["source_key"] == "tass-en"


def test_source_health(research_data) -> None:  # type: ignore[no-untyped-def]
    health = {r["source_key"]: r for r in rows(research_data, "source_health")}
    tass, apa, bbc, gdelt = health["tass-en"], health["apa-en"], health["bbc-ru"], health["gdelt-tr"]
    assert (tass["fetched"], tass["extracted"], tass["relevant"], tass["failures"]) == (3, 2, 2, 1)
    assert (tass["matched"], tass["matches"], tass["failure_reasons"]) == (2, 4, "http 404: 1")
    assert (apa["fetched"], apa["duplicates"], apa["matches"]) == (2, 1, 1)  # the copy's match: no
    assert (bbc["extracted"], bbc["relevant"], bbc["failures_retryable"]) == (2, 1, 1)
    assert gdelt["matched"] == 1 and gdelt["enabled"] is True and gdelt["failure_reasons"] is None


def test_downgrade_drops_views_and_upgrade_restores_them(database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "0002")
    engine = make_engine(database_url)
    assert not set(view_names()) & set(inspect(engine).get_view_names())
    command.upgrade(config, "head")
    assert set(view_names()) <= set(inspect(make_engine(database_url)).get_view_names())
    engine.dispose()


def test_comments_are_stored_where_supported(research_data) -> None:  # type: ignore[no-untyped-def]
    if research_data.backend != "postgresql":
        pytest.skip("SQLite stores no comments (docs/schema.md has them)")
    inspector = inspect(research_data.sessions.kw["bind"])
    for table in ("sources", "documents", "claims", "matches"):
        model = Base.metadata.tables[table]
        assert inspector.get_table_comment(table)["text"] == model.comment
        stored = {c["name"]: c.get("comment") for c in inspector.get_columns(table)}
        assert stored == {c.name: c.comment for c in model.columns}
    assert inspector.get_table_comment("claim_daily")["text"] == get_view("claim_daily").description


# --- docs/schema.md ------------------------------------------------------------------------------


def documented_schema(path: Path = SCHEMA_DOC) -> dict[str, set[str]]:
    """{table or view: its documented columns}: `### `name`` headings, then `| `column` | ...` rows."""
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^###\s+`?(\w+)`?", line)
        if heading:
            current = sections.setdefault(heading.group(1), set())
            continue
        row = re.match(r"^\|\s*`(\w+)`\s*\|", line)
        if row and current is not None:
            current.add(row.group(1))
    return sections


def test_schema_doc_describes_every_table_column_and_view(database_url: str) -> None:
    engine = make_engine(database_url)
    inspector = inspect(engine)
    live = {name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()}
    live |= {name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_view_names()}
    engine.dispose()
    documented = documented_schema()
    missing = [f"{name} (whole table or view)" for name in sorted(live) if name not in documented]
    missing += [
        f"{name}.{column}"
        for name in sorted(live)
        if name in documented
        for column in sorted(live[name] - documented[name])
    ]
    assert not missing, (
        "docs/schema.md does not describe: " + ", ".join(missing) + ". Add a `### `table`` section "
        "and/or `| `column` | type | meaning |` rows."
    )
    stale = [f"{n}.{c}" for n, cols in documented.items() if n in live for c in sorted(cols - live[n])]
    assert not stale, "docs/schema.md describes columns that do not exist: " + ", ".join(stale)


# --- aggregate tables (db/aggregates.py) equal the direct definitions ------------------------------


def test_aggregate_views_equal_direct_sql_through_every_kind_of_change(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    import random

    from sqlalchemy import delete, select, update

    from db.models import Claim, Document, Match, Source
    from db.queries import requeue_documents, set_match_status
    from db.session import session_scope
    from tests.helpers import fill_random_research_data

    engine = sessions.kw["bind"]
    rng = random.Random(7)
    ids = fill_random_research_data(sessions, seed=1)
    assert_views_equal_direct(engine)
    assert_aggregates_equal_rebuild(engine)
    docs, claims = ids["documents"], ids["claims"]

    def step(change) -> None:  # type: ignore[no-untyped-def]
        with session_scope(sessions) as session:
            change(session)
        assert_views_equal_direct(engine)

    # matches deleted, rescored (best score down and up), moved to another claim
    step(lambda s: s.execute(delete(Match).where(Match.id.in_(rng.sample(ids["matches"], 40)))))
    remaining = lambda s: list(s.scalars(select(Match.id).order_by(Match.id)))  # noqa: E731
    step(lambda s: s.execute(update(Match).where(Match.id.in_(remaining(s)[::5])).values(score=0.01)))
    step(lambda s: s.execute(update(Match).where(Match.id.in_(remaining(s)[1::7])).values(score=0.999)))
    moved = {"claim_id": claims[-1], "passage_start": -1}
    step(lambda s: s.execute(update(Match).where(Match.id == remaining(s)[4]).values(**moved)))
    # documents linked as copies afterwards, unlinked, re-dated, moved between outlets/languages/sources
    step(
        lambda s: s.execute(
            update(Document).where(Document.id.in_(docs[:10])).values(duplicate_of_id=docs[-1])
        )
    )
    step(
        lambda s: s.execute(update(Document).where(Document.id.in_(docs[5:10])).values(duplicate_of_id=None))
    )
    step(lambda s: s.execute(update(Document).where(Document.id.in_(docs[20:30])).values(published_at=None)))
    step(lambda s: s.execute(
        update(Document).where(Document.id.in_(docs[30:40])).values(fetched_at=datetime(2026, 5, 1, 23, 59))
    ))  # fmt: skip
    step(lambda s: s.execute(update(Document).where(Document.id.in_(docs[40:50])).values(outlet="z.example")))
    step(lambda s: s.execute(update(Document).where(Document.id.in_(docs[50:55])).values(language=None)))
    step(lambda s: s.execute(update(Document).where(Document.id.in_(docs[55:60])).values(source_id=None)))
    # match-stage writes that must change nothing: statuses, requeueing
    step(lambda s: set_match_status(s, docs[60:70], "matched", "m"))
    step(lambda s: requeue_documents(s))
    # deletes: an original with copies (the copies become originals), a source, a claim
    step(lambda s: s.execute(delete(Document).where(Document.id == docs[-1])))
    step(lambda s: s.execute(delete(Source).where(Source.id == ids["sources"][0])))
    step(lambda s: s.execute(delete(Claim).where(Claim.id == claims[1])))
    step(lambda s: s.execute(update(Claim).where(Claim.id == claims[2]).values(active=False, key="renamed")))
    # more matches on top, some on documents that had none
    ids2 = fill_random_research_data(sessions, seed=2, documents=40)
    assert_views_equal_direct(engine)
    assert_aggregates_equal_rebuild(engine)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Match)) > len(ids2["matches"])


def test_migration_backfills_the_aggregates(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import fill_random_research_data

    config = alembic_config(database_url)
    command.downgrade(config, "0004")  # views computed from matches, no aggregate tables
    fill_random_research_data(sessions, seed=3)
    command.upgrade(config, "head")
    engine = make_engine(database_url)
    assert_views_equal_direct(engine)
    assert_aggregates_equal_rebuild(engine)
    engine.dispose()


def test_concurrent_match_writers_keep_aggregates_exact(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    """Writers in parallel transactions adding matches to the same claims and days (PostgreSQL:
    READ COMMITTED; the advisory lock makes each recomputation see the others' committed rows)."""
    import threading

    from sqlalchemy import insert, select

    from db.models import Claim, Document
    from db.queries import store_matches
    from db.session import session_scope

    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time")
    with session_scope(sessions) as session:
        session.execute(insert(Claim), [{"claim_set": "s", "key": f"k{i}", "text": "t", "text_hash": "h"}
                                        for i in range(2)])  # fmt: skip
        day = datetime(2026, 4, 1, 10, 0)
        session.execute(insert(Document), [{"url": f"https://x.example/{i}", "status": "ok",
                                            "published_at": day, "outlet": f"o{i % 5}", "language": "en"}
                                           for i in range(80)])  # fmt: skip
        claims = list(session.scalars(select(Claim.id)))
        docs = list(session.scalars(select(Document.id)))
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer(part: int) -> None:
        try:
            barrier.wait()
            for document_id in docs[part::4]:
                with session_scope(sessions) as session:
                    store_matches(session, [
                        {"document_id": document_id, "claim_id": claim_id, "passage": "p", "passage_start": 0,
                         "passage_end": 9, "score": 0.5 + document_id / 1000, "threshold": 0.5, "model": "m",
                         "model_revision": "r"} for claim_id in claims
                    ])  # fmt: skip
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(part,)) for part in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    engine = sessions.kw["bind"]
    with engine.connect() as connection:
        documents = connection.execute(text("SELECT documents FROM claim_daily")).scalars().all()
    assert documents == [80, 80]
    assert_views_equal_direct(engine)
    assert_aggregates_equal_rebuild(engine)
