"""Shared fixtures: databases on SQLite and on the real PostgreSQL server at 127.0.0.1:5432."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db.migrate import upgrade_database
from db.session import make_engine, make_sessionmaker
from tests.helpers import (
    SHARED,
    ResearchData,
    SmtpSink,
    create_postgres_database,
    drop_postgres_database,
    fill_research_data,
    require_postgres,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'claimwatch.db'}"
        upgrade_database(url)
        yield url
        return
    require_postgres()
    url = create_postgres_database()
    try:
        upgrade_database(url)
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def sessions(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present")
    return SHARED


# --- alerts and scheduling (issue #3) ------------------------------------------------------------


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    try:
        yield server
    finally:
        server.stop()


# --- research views, exports, report, browse (issue #4) -----------------------------------------


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def research_data(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ResearchData]:
    """One database per backend and test module, filled by ``fill_research_data``; read it only."""
    from db.timeutil import utcnow

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('research') / 'claimwatch.db'}"
    else:
        require_postgres()
        url = create_postgres_database()
    engine = make_engine(url)
    try:
        upgrade_database(url)
        sessions = make_sessionmaker(engine)
        now = utcnow()
        claim_ids, source_ids = fill_research_data(sessions, now)
        yield ResearchData(request.param, url, sessions, now.date(), claim_ids, source_ids)
    finally:
        engine.dispose()
        if request.param == "postgresql":
            drop_postgres_database(url)


@pytest.fixture(scope="session")
def encoder() -> Any:
    """The bundled all-MiniLM-L6-v2 model, loaded once per test session."""
    from pipelines.embed import load_encoder

    return load_encoder()
