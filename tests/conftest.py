"""Shared fixtures: databases on SQLite and on the real PostgreSQL server at 127.0.0.1:5432."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.migrate import upgrade_database
from db.session import make_engine, make_sessionmaker

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
POSTGRES_ADMIN_URL = os.environ.get(
    "CLAIMWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3):
            return True
    except Exception:
        return False


def _admin_execute(statement: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(statement)


def create_postgres_database() -> str:
    name = f"claimwatch_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'claimwatch.db'}"
        upgrade_database(url)
        yield url
        return
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
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


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 collecting (envelope sender, recipients, raw message) tuples."""

    def __init__(self, port: int = 0) -> None:
        from aiosmtpd.controller import Controller

        sink = self
        self.messages: list[tuple[str, list[str], bytes]] = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
                sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
                return "250 Message accepted for delivery"

        class LoopbackController(Controller):
            def _trigger_server(self) -> None:
                # Port 0: learn the port the OS picked before aiosmtpd connects to it.
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        self.controller = LoopbackController(Handler(), hostname="127.0.0.1", port=port)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    try:
        yield server
    finally:
        server.stop()
