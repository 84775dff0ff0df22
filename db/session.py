"""Engines and sessions. Functions elsewhere take a Session; their callers own the transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or used."""


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _enable_sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, connect_args=_connect_args(url))
    return engine


def _connect_args(url: str) -> dict[str, object]:
    if url.startswith("postgresql"):
        return {"connect_timeout": 10}
    return {}


def check_connection(engine: Engine) -> None:
    """Raise DatabaseUnavailable with a readable message when the database cannot be reached."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot connect to the database {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from exc


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def affected_rows(result: Result[Any]) -> int:
    """Rows changed by an UPDATE or DELETE (``execute`` is typed to return a plain Result)."""
    return cast(CursorResult[Any], result).rowcount or 0
