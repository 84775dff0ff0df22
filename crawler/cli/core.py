"""Core commands: init, claims, sources, crawl, match, run, status, settings, and demo (all of them on
the offline demo site).

Heavy libraries (Scrapy, sentence-transformers) load lazily, inside the services the commands call.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from crawler.cli.context import clean_errors, fail, state
from crawler.cli.render import ConsoleObserver, print_summary, print_table
from crawler.config import Settings
from crawler.services.app import (
    do_crawl,
    do_crawl_and_match,
    do_match,
    initialise,
    load_claims_into,
    open_sessions,
)

logger = logging.getLogger(__name__)

claims_app = typer.Typer(help="List and load claim sets.", no_args_is_help=True)
sources_app = typer.Typer(
    help="List and load crawl sources (feeds, news sitemaps, GDELT queries).", no_args_is_help=True
)


# --- init, claims, sources -----------------------------------------------------------------------


def init(
    claims: Annotated[
        Path | None, typer.Option("--claims", help="Claims file to load (default: the shipped seed claims).")
    ] = None,
) -> None:
    """Create or migrate the database (alembic upgrade head) and load the default claims and sources."""
    settings = state.settings()
    with clean_errors():
        initialise(settings, claims)
    from crawler.config import redact_url

    typer.echo(f"database ready: {redact_url(settings.database_url)}")


@claims_app.command("list")
def claims_list(
    claim_set: Annotated[str | None, typer.Option("--set", help="Only this claim set.")] = None,
) -> None:
    """List the active claims: set, key, paragraph, text and, for fact-checkers' claims, the verdict,
    claimant and review address (a table on a terminal, tab-separated lines otherwise)."""
    from db.queries import active_claims

    with clean_errors():
        sessions = open_sessions(state.settings())
        with sessions() as session:
            rows = active_claims(session, claim_set)
    if sys.stdout.isatty():  # a table fitted to the terminal; piped: every field whole, tab-separated
        from rich.console import Console

        cells = [
            (
                row.claim_set,
                row.key,
                f"¶{row.paragraph}" if row.paragraph is not None else "",
                row.verdict or "",
                row.claimant or "",
                row.text,
            )
            for row in rows
        ]
        columns = ("set", "claim", "¶", "verdict", "claimant", "text")
        print_table(Console(), f"{len(rows)} claims", columns, cells, fit="text")
        return
    for row in rows:
        paragraph = f"¶{row.paragraph}" if row.paragraph is not None else ""
        review = "\t".join(value or "-" for value in (row.verdict, row.claimant, row.review_url))
        typer.echo(f"{row.claim_set}\t{row.key}\t{paragraph}\t{row.text}\t{review}")
    typer.echo(f"{len(rows)} claims", err=True)


@claims_app.command("load")
def claims_load(
    path: Annotated[
        Path,
        typer.Argument(
            help="Claims file: YAML with a `claims:` list, JSONL, or fact-checkers' schema.org ClaimReview "
            "(JSON, JSON-LD @graph, an HTML page's ld+json, or a Fact Check Tools claims:search response)."
        ),
    ],
    claim_set: Annotated[
        str | None, typer.Option("--set", help="Claim set name (default: the file's claim_set or its name).")
    ] = None,
) -> None:
    """Load (or update) a claim set from a file. Claims missing from the file are deactivated.

    ClaimReview files: each review becomes a claim with a stable id from the review's address
    (cr-...), its verdict, claimant, reviewer, date and language kept with it; the set is named
    after the file unless --set is given."""
    from db.session import session_scope

    with clean_errors():
        sessions = open_sessions(state.settings())
        with session_scope(sessions) as session:
            name, result = load_claims_into(session, path, claim_set)
    typer.echo(
        f"claim set {name}: {result.added} added, {result.updated} updated, {result.unchanged} unchanged"
    )


@claims_app.command("validate")
def claims_validate(path: Annotated[Path, typer.Argument(help="Claims file to check.")]) -> None:
    """Check a claims file without touching the database."""
    from pipelines.claimreview import load_claim_file

    with clean_errors():
        claims = load_claim_file(path)
    typer.echo(
        f"{path}: {len(claims)} claims, ids {claims[0].id} … {claims[-1].id}" if claims else f"{path}: empty"
    )


@sources_app.command("list")
def sources_list(
    all_sources: Annotated[bool, typer.Option("--all", help="Include disabled sources.")] = False,
) -> None:
    """List crawl sources: key, kind, language, country, perspective, last fetch status, the latest
    `claimwatch doctor --sources` verdict, address."""
    from db.queries import list_sources
    from db.source_checks import source_checks

    with clean_errors():
        sessions = open_sessions(state.settings())
        with sessions() as session:
            rows = list_sources(session, enabled_only=not all_sources)
            checks = source_checks(session)
    for s in rows:
        check = checks.get(s.id)
        checked = f"doctor: {check.status} {check.checked_at:%Y-%m-%d}" if check else "doctor: not run"
        if check is not None and check.moved_to and check.moved_to != s.url:
            checked += f" (moved to {check.moved_to})"
        typer.echo(
            "\t".join(
                [
                    s.key,
                    s.kind,
                    s.language or "-",
                    s.country or "-",
                    s.perspective or "-",
                    s.last_status or "never fetched",
                    checked,
                    s.url,
                ]
            )
        )
    typer.echo(f"{len(rows)} sources", err=True)


@sources_app.command("load")
def sources_load(
    path: Annotated[
        Path | None, typer.Argument(help="Sources YAML (default: the shipped curated list).")
    ] = None,
) -> None:
    """Insert or update sources from a YAML file (crawl state of known sources is kept)."""
    from crawler.services.sources import load_sources
    from db.queries import upsert_sources
    from db.session import session_scope

    with clean_errors():
        sources = load_sources(path)
        sessions = open_sessions(state.settings())
        with session_scope(sessions) as session:
            count = upsert_sources(session, sources)
    typer.echo(f"{count} sources loaded")


# --- crawl, match, run ---------------------------------------------------------------------------

SpiderOption = Annotated[
    list[str] | None,
    typer.Option("--spider", help="Spider to run: feeds, sitemaps or gdelt (repeatable; default: all)."),
]


SharedRunOption = Annotated[
    str | None,
    typer.Option(
        "--shared-run",
        help="With CLAIMWATCH_REDIS_URL: the shared crawl run (Redis keys) to join; every crawl process "
        "given the same KEY shares one request queue and seen-request filter (default: setting "
        "shared_run, else today's UTC date).",
    ),
]


def with_shared_run(settings: Settings, shared_run: str | None) -> Settings:
    if shared_run is None:
        return settings
    if not settings.redis_url:
        raise fail("--shared-run needs a Redis server: set CLAIMWATCH_REDIS_URL", 2)
    return dataclasses.replace(settings, shared_run=shared_run)


def crawl(spider: SpiderOption = None, shared_run: SharedRunOption = None) -> None:
    """Crawl the configured sources for new articles (in a subprocess) and store them.

    With CLAIMWATCH_REDIS_URL set, several crawl processes (on any machines) share the run: they do
    not take the exclusive run lock, and each page is fetched by one of them.
    """
    from crawler.services.locks import run_lock

    settings = with_shared_run(state.settings(), shared_run)
    with clean_errors():
        if settings.redis_url:
            result = do_crawl(settings, spider, member=True, observer=ConsoleObserver())
        else:
            with run_lock(settings, "crawl"):
                result = do_crawl(settings, spider, observer=ConsoleObserver())
    if not result.ok:
        raise typer.Exit(1)


def match(
    limit: Annotated[int | None, typer.Option("--limit", help="Match at most this many documents.")] = None,
    rematch: Annotated[
        bool,
        typer.Option("--rematch", help="Queue already matched documents again first (new model/claims)."),
    ] = False,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker",
            help="Run as one of several match workers (any machines, one database): claim pending "
            "documents batch by batch (PostgreSQL: FOR UPDATE SKIP LOCKED) and keep polling for new "
            "ones; does not take the run lock.",
        ),
    ] = False,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            "--idle-exit",
            help="With --worker: exit once no document has been pending for this many seconds "
            "(default: keep polling until SIGTERM/Ctrl-C).",
            min=0,
        ),
    ] = None,
    poll: Annotated[
        float,
        typer.Option("--poll", help="With --worker: seconds between looks at an empty queue.", min=0.05),
    ] = 2.0,
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill",
            help="Score the passage archive against claims new or changed since documents were scored "
            "(after `claims load`), without encoding any document; equals a --rematch.",
        ),
    ] = False,
    claim_set: Annotated[
        str | None, typer.Option("--claim-set", help="With --backfill: only this claim set's claims.")
    ] = None,
    claim: Annotated[
        list[str] | None,
        typer.Option("--claim", help="With --backfill: only this claim (its key); repeatable."),
    ] = None,
) -> None:
    """Match the passages of stored, not yet matched documents against the active claims."""
    from crawler.scheduling import stop_signals
    from crawler.services.locks import run_lock

    settings = state.settings()
    if (idle_exit is not None or poll != 2.0) and not worker:
        raise fail("--idle-exit and --poll need --worker", 2)
    if worker and rematch:
        raise fail("--rematch cannot be combined with --worker (run `claimwatch match --rematch` once)", 2)
    if (claim_set or claim) and not backfill:
        raise fail("--claim-set and --claim need --backfill", 2)
    if backfill:
        if worker or rematch or limit is not None:
            raise fail("--backfill cannot be combined with --worker, --rematch or --limit", 2)
        return match_backfill(settings, claim_set, claim or [])
    with clean_errors():
        if worker:
            import threading

            stop = threading.Event()
            with stop_signals(stop.set):
                result = do_match(
                    settings,
                    limit,
                    idle_exit=idle_exit,
                    poll=poll,
                    stop=stop,
                    worker=True,
                    observer=ConsoleObserver(),
                )
        else:
            with run_lock(settings, "match"):
                if rematch:
                    from db.queries import requeue_documents
                    from db.session import session_scope

                    with session_scope(open_sessions(settings)) as session:
                        typer.echo(f"{requeue_documents(session)} documents queued again", err=True)
                result = do_match(settings, limit, observer=ConsoleObserver())
    if not (result.ok or (worker and result.status == "interrupted")):
        raise typer.Exit(1)


def match_backfill(settings: Settings, claim_set: str | None, claims: list[str]) -> None:
    """`match --backfill` (crawler/services/backfill.py): prints what it did."""
    from crawler.cli.render import match_progress
    from crawler.services.backfill import BackfillError, run_backfill
    from crawler.services.locks import run_lock
    from db.archive import ArchiveError

    with clean_errors(BackfillError, ArchiveError), run_lock(settings, "match"), match_progress() as progress:
        outcome = run_backfill(
            settings, open_sessions(settings), claim_set=claim_set, claim_keys=claims, progress=progress
        )
    counters = outcome.result.counters
    typer.echo(
        f"backfill: {outcome.claims} new/changed claims, {outcome.documents} archived documents scored "
        f"without encoding, {counters.get('matches_stored', 0)} matches added in "
        f"{outcome.result.seconds:.1f}s (run {outcome.result.run_id})"
    )
    if outcome.unarchived:
        typer.echo(
            f"{outcome.unarchived} documents scored before the change have no archived passages: "
            "`claimwatch match --rematch` scores them",
            err=True,
        )
    if not outcome.result.ok:
        raise typer.Exit(1)


def run(spider: SpiderOption = None, shared_run: SharedRunOption = None) -> None:
    """Crawl and match at once: the crawl subprocess stores documents while this process matches them,
    then the rest is matched. The daily job's core, under the run lock (`claimwatch schedule --once`
    also sends alerts)."""
    from crawler.services.locks import run_lock

    settings = with_shared_run(state.settings(), shared_run)
    with clean_errors(), run_lock(settings, "run"):
        crawled, matched = do_crawl_and_match(settings, spider, observer=ConsoleObserver())
        print_summary(settings)
    if not (crawled.ok and matched.ok):
        raise typer.Exit(1)


def status() -> None:
    """Show the database's contents and the latest runs."""
    from crawler.scheduling import schedule_status_lines
    from db.queries import recent_runs, table_counts

    settings = state.settings()
    with clean_errors():
        sessions = open_sessions(settings)
        with sessions() as session:
            counts = table_counts(session)
            runs = recent_runs(session)
        schedule_lines = schedule_status_lines(settings)
    for name, value in counts.items():
        typer.echo(f"{name}: {value}")
    for r in runs:
        took = f"{(r.finished_at - r.started_at).total_seconds():.1f}s" if r.finished_at else "-"
        typer.echo(
            f"run {r.id} {r.kind} {r.status} started {r.started_at:%Y-%m-%d %H:%M:%S} took {took}"
            + (f" error: {r.error}" if r.error else "")
        )
    for line in schedule_lines:
        typer.echo(line)


def show_settings(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the settings reference instead.")
    ] = False,
) -> None:
    """Print the effective settings (passwords hidden) as JSON."""
    if markdown:
        from crawler.config import settings_markdown

        typer.echo(settings_markdown())
        return
    typer.echo(json.dumps(state.settings().redacted(), indent=2, default=str))


# --- demo ----------------------------------------------------------------------------------------

DEMO_DATABASE_URL = "sqlite:///claimwatch-demo.db"


def demo(
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Port of the demo site on 127.0.0.1 (default: 8765, or a free port when 8765 is taken; "
            "0: any free port).",
            min=0,
            max=65535,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help=f"Database for the demo (default: {DEMO_DATABASE_URL}, kept apart "
            "from your research database).",
        ),
    ] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Only serve the demo site until Ctrl-C.")] = False,
) -> None:
    """Serve an offline demo news site on 127.0.0.1, crawl, extract, match and store it, print a summary."""
    from crawler.demo.runner import demo_settings, run_demo, serve_demo

    if serve:
        with clean_errors():
            serve_demo(
                port,
                on_ready=announce_site,
                note=lambda message: typer.echo(message, err=True),
            )
        return
    settings = state.settings()
    url = database_url or state.database_url or DEMO_DATABASE_URL
    with clean_errors():
        outcome = run_demo(settings, url, port, observer=ConsoleObserver())
        print_summary(demo_settings(settings, url))
    crawled, matched = outcome.crawled, outcome.matched
    documents = crawled.counters["documents_stored"]
    passages = matched.counters["passages_encoded"]
    typer.echo(
        f"demo finished in {outcome.seconds:.1f}s: crawl {documents / max(crawled.seconds, 1e-9):.1f} "
        f"documents/s, match {passages / max(matched.seconds, 1e-9):.0f} passages/s",
        err=True,
    )
    if not outcome.ok:
        raise typer.Exit(1)


def announce_site(url: str) -> None:
    typer.echo(f"serving the demo site at {url}/ — Ctrl-C to stop", err=True)


def register(app: typer.Typer) -> None:
    """Add the core commands and the claims and sources groups to the ``claimwatch`` app."""
    app.command()(init)
    app.add_typer(claims_app, name="claims")
    app.add_typer(sources_app, name="sources")
    app.command()(crawl)
    app.command()(match)
    app.command()(run)
    app.command()(status)
    app.command("settings")(show_settings)
    app.command()(demo)
