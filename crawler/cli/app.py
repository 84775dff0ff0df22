"""The ``claimwatch`` command line: the Typer app, its global options, and the command modules it
collects. Each command module (a leaf) has a ``register(app)``; none imports this module."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from crawler.cli import archive, bench, core, doctor, evaluation, offline, research, review, schedule
from crawler.cli.context import fail, state
from crawler.config import ConfigError

logger = logging.getLogger(__name__)

app = typer.Typer(
    help="claimwatch: crawl commentary on Russia–Azerbaijan relations and follow how the claims of a "
    "seed article travel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main_options(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML config file (default: ./claimwatch.toml if present)."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Database URL; overrides CLAIMWATCH_DATABASE_URL.")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = None,
) -> None:
    state.config_file, state.database_url, state.log_level = config, database_url, log_level
    state._settings = None
    from crawler.logs import configure_logging

    try:
        settings = state.settings()
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    configure_logging(settings.log_level, settings.log_format)


core.register(app)  # init, claims, sources, crawl, match, run, status, settings, demo
offline.register(app)  # score, extract
schedule.register(app)  # schedule, alerts, subscribe, unsubscribe, subscriptions
research.register(app)  # export, report, browse, db
evaluation.register(app)  # eval checkthat, eval labels, calibrate
review.register(app)  # review (terminal session), review export/import/set/stats
bench.register(app)  # bench
doctor.register(app)  # doctor
archive.register(app)  # index rebuild, search, discover, claims promote


def main(argv: list[str] | None = None) -> None:
    command: Callable[..., Any] = typer.main.get_command(app)
    command(args=argv, prog_name="claimwatch")
