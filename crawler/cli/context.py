"""What every command shares: the global options (``State``) and the mapping of domain errors to one
clean error line. Command modules import this module, never the app that collects them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from crawler.config import ConfigError, Settings, load_settings


@dataclasses.dataclass
class State:
    config_file: Path | None = None
    database_url: str | None = None
    log_level: str | None = None
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(config_file=self.config_file)
            overrides: dict[str, Any] = {}
            if self.database_url:
                overrides["database_url"] = self.database_url
            if self.log_level:
                overrides["log_level"] = self.log_level.upper()
            self._settings = dataclasses.replace(settings, **overrides)
        return self._settings


state = State()


def error_line(exc: BaseException) -> str:
    """The message of ``exc``; for a database error, the first line of the driver's."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    return str(exc)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def domain_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input or environment: shown as one clean line, not a traceback."""
    from crawler.services.alerting import AlertError
    from crawler.services.app import UsageError
    from crawler.services.locks import LockHeld
    from crawler.services.sources import SourcesFileError
    from db.migrate import SchemaOutOfDate
    from db.reviews import ReviewError
    from db.session import DatabaseUnavailable
    from pipelines.claims import ClaimsFileError
    from pipelines.encoding import ModelLoadError

    return (
        ConfigError,
        UsageError,
        DatabaseUnavailable,
        SchemaOutOfDate,
        ClaimsFileError,
        ModelLoadError,
        SourcesFileError,
        AlertError,
        ReviewError,
        LockHeld,
        OSError,
    )


@contextmanager
def clean_errors(*extra: type[BaseException]) -> Iterator[None]:
    """Domain errors, and ``extra`` ones, end the command with one clean line; a connection lost
    mid-run says that committed work is kept. The research commands pass SQLAlchemyError in
    ``extra``: there a refused query (an OperationalError on SQLite too) is the user's input."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except typer.Exit:
        raise
    except (*domain_errors(), *extra) as exc:
        raise fail(error_line(exc)) from None
    except OperationalError as exc:  # the database went away mid-run: what is committed stays
        detail = error_line(exc)[:300]
        raise fail(
            f"lost the database connection: {detail}; committed work is kept and the next run "
            "continues where this one stopped"
        ) from None
