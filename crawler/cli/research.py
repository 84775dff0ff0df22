"""CLI commands for researchers: export, report, browse, and `db grant-readonly`.

``register(app)`` is called by crawler/cli/app.py; the shared CLI state comes from crawler/cli/context.py.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from crawler.cli.context import clean_errors, fail, state

logger = logging.getLogger(__name__)

db_app = typer.Typer(help="Database administration for researchers (PostgreSQL roles).", no_args_is_help=True)


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


def research_errors() -> AbstractContextManager[None]:
    """One clean line for the domain errors, bad research input and SQL the database refused."""
    from sqlalchemy.exc import SQLAlchemyError

    from db.research import ResearchError

    return clean_errors(ResearchError, SQLAlchemyError)


def _sessions():  # type: ignore[no-untyped-def]
    """Sessions on the configured database; raises when it is unreachable or not migrated."""
    from crawler.services.app import open_sessions

    return open_sessions(state.settings())


def export(
    view: Annotated[
        str,
        typer.Argument(
            help="View to export: claim_daily, claim_weekly, claim_sources, claim_lifecycle, "
            "match_details or source_health."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (replaced if it exists).")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="csv, parquet or jsonl.", case_sensitive=False)
    ] = "csv",
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only rows on or after this date (YYYY-MM-DD) in the view's date column."
        ),
    ] = None,
    claim: Annotated[
        str | None, typer.Option("--claim", help="Only this claim (its key, e.g. seed-04).")
    ] = None,
    claim_set: Annotated[str | None, typer.Option("--claim-set", help="Only this claim set.")] = None,
) -> None:
    """Export a research view to CSV, Parquet or JSON Lines (docs/schema.md describes the columns)."""
    from crawler.services.exporting import FORMATS, export_view
    from db.research import ViewQuery, resolve_view

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    since_date = _date(since, "--since")
    with research_errors():
        query = ViewQuery(resolve_view(view), since=since_date, claim=claim, claim_set=claim_set)
        query.statement()  # reject filters the view does not have before touching the database
        count = export_view(_sessions(), query, fmt, output)
    typer.echo(f"{count} rows of {view} written to {output}", err=True)


def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path("report.html"),
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="First day shown (YYYY-MM-DD; default: 90 days before the latest match)."
        ),
    ] = None,
    max_claims: Annotated[
        int,
        typer.Option(
            "--max-claims", help="Trend plots for at most this many claims (most documents first).", min=1
        ),
    ] = 30,
    latest: Annotated[int, typer.Option("--latest", help="Latest matches listed.", min=1)] = 50,
    emerging: Annotated[
        bool,
        typer.Option(
            "--emerging/--no-emerging",
            help="Include the 'emerging, unlisted claims' section (runs discovery over the passage archive; "
            "loads the models).",
        ),
    ] = True,
) -> None:
    """Write a self-contained HTML report: heat map, trend per claim, emerging claims, top outlets, latest
    matches."""
    from crawler.services.exporting import atomic_path
    from crawler.services.reporting import ReportOptions, build_report

    options = ReportOptions(since=_date(since, "--since"), max_claims=max_claims, latest=latest)
    with research_errors():
        sessions = _sessions()
        if emerging:
            options = with_emerging(options, sessions)
        with sessions() as session:
            page = build_report(session, options)
        with atomic_path(output) as temporary:
            temporary.write_text(page, encoding="utf-8")
    typer.echo(f"report written to {output} ({len(page) // 1024} KiB)", err=True)


def with_emerging(options: Any, sessions: Any) -> Any:
    """The report options with discovery's candidates (none when the archive is empty)."""
    import dataclasses
    from datetime import datetime

    from crawler.services.discovery import discover
    from db.archive import ArchiveError

    since = datetime.combine(options.since, datetime.min.time()) if options.since else None
    try:
        candidates = discover(state.settings(), sessions, since=since)
    except ArchiveError as exc:
        logger.info("no emerging-claims section: %s", exc)
        return options
    return dataclasses.replace(options, emerging=tuple(candidates))


def browse(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port).", min=0, max=65535)] = 8001,
    time_limit_ms: Annotated[
        int,
        typer.Option("--time-limit-ms", help="Longest a query may run in Datasette (milliseconds).", min=100),
    ] = 5000,
) -> None:
    """Serve the (SQLite) database read-only in Datasette with the views and research questions."""
    settings = state.settings()
    with research_errors():
        _sessions()
        path = _sqlite_path(settings.database_url)
        try:
            serve_datasette(path, host, port, time_limit_ms)
        except ImportError:
            raise fail('Datasette is not installed: pip install -e ".[browse]"') from None


def _sqlite_path(url: str) -> Path:
    from sqlalchemy.engine import make_url

    from db.research import ResearchError

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        raise ResearchError(
            "claimwatch browse serves SQLite files; on PostgreSQL connect a SQL client with a "
            "read-only role (`claimwatch db grant-readonly ROLE`)"
        )
    return Path(parsed.database).resolve()


def serve_datasette(path: Path, host: str, port: int, time_limit_ms: int) -> None:
    """Run Datasette on ``path`` until interrupted. Datasette reads SQLite files with mode=ro."""
    import socket

    import uvicorn
    from datasette.app import Datasette

    from db.research import datasette_metadata

    name = path.stem
    metadata = datasette_metadata(name)
    add_semantic_search(metadata, name)
    datasette = Datasette(
        [str(path)],
        metadata=metadata,
        settings={"sql_time_limit_ms": time_limit_ms, "facet_time_limit_ms": min(time_limit_ms, 1000)},
    )
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"serving {path} read-only at http://{shown}:{bound}/{name} (Ctrl-C stops)", err=True)
    server = uvicorn.Server(uvicorn.Config(datasette.app(), lifespan="on", log_level="warning"))
    server.run(sockets=[listener])


def add_semantic_search(metadata: dict, name: str) -> None:  # type: ignore[type-arg]
    """The passage archive's semantic search in Datasette: the plugin's SQL function
    claimwatch_nearest and the canned query semantic_search (crawler/services/search.py)."""
    from datasette.plugins import pm

    from crawler.services.app import open_sessions
    from crawler.services.search import SEMANTIC_SEARCH_SQL, DatasetteSearch

    settings = state.settings()
    plugin = DatasetteSearch(settings, open_sessions(settings)).plugin()
    if not pm.is_registered(plugin):
        pm.register(plugin, name="claimwatch_search")
    metadata["databases"][name]["queries"]["semantic_search"] = {
        "sql": SEMANTIC_SEARCH_SQL,
        "title": "Semantic search: passages nearest in meaning to a text (any language)",
        "description": "The archived passages nearest to :text, best first (`claimwatch search`); "
        ":limit hits (default 20). The first search loads the models (seconds).",
        "params": ["text", "limit"],
    }


@db_app.command("grant-readonly")
def grant_readonly(
    role: Annotated[str, typer.Argument(help="Role to create or extend (PostgreSQL identifier).")],
    login: Annotated[
        bool,
        typer.Option(
            "--login", help="Let the role log in (set its password with psql's \\password ROLE afterwards)."
        ),
    ] = False,
) -> None:
    """Create a read-only researcher role on PostgreSQL: SELECT on the research tables and views only."""
    from db.research import grant_readonly as grant
    from db.session import session_scope

    with research_errors():
        sessions = _sessions()
        with session_scope(sessions) as session:
            statements = grant(session.connection(), role, login=login)
    for statement in statements:
        typer.echo(statement)
    typer.echo(f"role {role} can read the research tables and views", err=True)


def register(app: typer.Typer) -> None:
    app.command()(export)
    app.command()(report)
    app.command()(browse)
    app.add_typer(db_app, name="db")
