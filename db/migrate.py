"""Running Alembic migrations from the application (``claimwatch init``)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class SchemaOutOfDate(RuntimeError):
    """The database schema is not at the latest migration."""


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    # Escape '%' so ConfigParser interpolation leaves URL-encoded passwords alone.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ensure_schema_current(engine: Engine, database_url: str) -> None:
    """Raise SchemaOutOfDate when the database was not initialised or needs migrating."""
    current = current_revision(engine)
    head = head_revision(database_url)
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'} but claimwatch needs {head}: run `claimwatch init`"
        )
