"""Application services shared by the CLI, the demo and the scheduler: init, stages, summary."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import typer

from crawler.config import Settings

logger = logging.getLogger(__name__)


class UsageError(ValueError):
    """The user asked for something that does not exist (an unknown spider, ...)."""


def open_sessions(settings: Settings):  # type: ignore[no-untyped-def]
    from crawler.runner import open_database

    return open_database(settings)


def initialise(
    settings: Settings, claims_file: Path | None = None, load_default_sources: bool = True
) -> None:
    """Migrate the database to the latest schema and load the claims and sources if none are loaded."""
    from crawler.sources import load_sources
    from db.migrate import upgrade_database
    from db.queries import claim_sets, list_sources, upsert_sources
    from db.session import check_connection, make_engine, make_sessionmaker, session_scope

    engine = make_engine(settings.database_url)
    check_connection(engine)
    upgrade_database(settings.database_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as session:
        if not claim_sets(session) or claims_file is not None:
            load_claims_into(session, claims_file or configured_claims_file(settings))
        if load_default_sources and not list_sources(session, enabled_only=False):
            path = Path(settings.sources_file) if settings.sources_file else None
            upsert_sources(session, load_sources(path))
    engine.dispose()


def configured_claims_file(settings: Settings) -> Path:
    from pipelines.claims import default_claims_path

    return Path(settings.claims_file) if settings.claims_file else default_claims_path()


def load_claims_into(session: Any, path: Path, claim_set: str | None = None) -> tuple[str, Any]:
    from db.queries import sync_claims
    from pipelines.claims import load_claims
    from pipelines.embed import text_hash

    claims = load_claims(path)
    name = claim_set or (claims[0].claim_set if claims else path.stem)
    result = sync_claims(session, name, claims, text_hash)
    return name, result


def echo_stage(result: Any) -> None:
    counters = result.counters
    if result.kind == "crawl":
        line = (
            f"crawl run {result.run_id} {result.status} in {result.seconds:.1f}s: "
            f"{counters['pages_fetched']} pages fetched, {counters['documents_stored']} stored "
            f"({counters['documents_relevant']} relevant, {counters['duplicates']} duplicates, "
            f"{counters['failures']} failures)"
        )
    else:
        rate = counters["passages_encoded"] / result.seconds if result.seconds else 0.0
        line = (
            f"match run {result.run_id} {result.status} in {result.seconds:.1f}s: "
            f"{counters['documents_matched']} documents, {counters['passages_encoded']} passages "
            f"({rate:.0f}/s), {counters['matches_stored']} matches"
        )
    typer.echo(line, err=True)
    if result.error:
        typer.secho(f"  {result.error}", fg=typer.colors.YELLOW, err=True)


def chosen_spiders(settings: Settings, spiders: list[str] | None) -> tuple[str, ...]:
    from crawler.runner import DEFAULT_SPIDERS

    chosen = tuple(spiders) if spiders else DEFAULT_SPIDERS
    if not spiders and not settings.gdelt_enabled:
        chosen = tuple(s for s in chosen if s != "gdelt")
    unknown = set(chosen) - set(DEFAULT_SPIDERS)
    if unknown:
        raise UsageError(f"unknown spider(s): {', '.join(sorted(unknown))}")
    return chosen


def do_crawl(settings: Settings, spiders: list[str] | None, member: bool = False) -> Any:
    """Crawl; ``member``: register as one of several processes of a shared run (no run lock held)."""
    from crawler.runner import start_crawl

    chosen = chosen_spiders(settings, spiders)
    sessions = open_sessions(settings)
    crawl = start_crawl(settings, sessions, spiders=chosen)
    if member:
        from crawler.scheduling import member_lock

        with member_lock(sessions, settings, "shared crawl", crawl.run_id):
            result = crawl.finish()
    else:
        result = crawl.finish()
    echo_stage(result)
    return result


@contextmanager
def match_progress() -> Iterator[Callable[[int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("matching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("match", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


def do_match(
    settings: Settings,
    limit: int | None = None,
    *,
    idle_exit: float | None = 0.0,
    poll: float = 1.0,
    stop: threading.Event | None = None,
    worker: bool = False,
) -> Any:
    """Match pending documents. The defaults end when none is pending; a worker (``idle_exit`` None
    or positive) keeps polling for documents that other processes store, registered as a member
    (``crawler.scheduling.member_lock``) rather than under the run lock."""
    from crawler.matching import run_match

    sessions = open_sessions(settings)
    run_id: int | None = None
    membership: Any = nullcontext()
    encoder = None
    if worker:
        import os

        from crawler.scheduling import member_lock
        from db.queries import start_run
        from db.session import session_scope

        with session_scope(sessions) as session:
            run_id = start_run(session, "match", pid=os.getpid()).id
        membership = member_lock(sessions, settings, "match --worker", run_id)
        typer.echo(f"match worker (run {run_id}): loading model {settings.model} …", err=True)
    else:
        encoder = encoder_if_pending(settings, sessions)
    bar = nullcontext(None) if worker else match_progress()  # a worker's queue has no known end
    with membership, bar as progress:
        result = run_match(
            settings,
            sessions,
            encoder=encoder,
            progress=progress,
            limit=limit,
            idle_exit=idle_exit,
            poll=poll,
            stop=stop,
            run_id=run_id,
        )
    echo_stage(result)
    return result


def pending_count(sessions: Any) -> int:
    from db.queries import count_pending_documents

    with sessions() as session:
        return count_pending_documents(session)


def encoder_if_pending(settings: Settings, sessions: Any, note: str = "") -> Any:
    """The configured encoder when some document is pending; None otherwise: the model (seconds to
    load, ~100 MB) is not loaded for nothing (run_match loads it itself if documents come later)."""
    if not pending_count(sessions):
        return None
    from crawler.matching import load_configured_encoder

    typer.echo(f"loading model {settings.model}{note} …", err=True)
    return load_configured_encoder(settings)


def do_crawl_and_match(settings: Settings, spiders: list[str] | None, poll: float = 0.5) -> tuple[Any, Any]:
    """Crawl in the subprocess and, meanwhile, match the documents it stores in this process; when the
    crawl ends, match what is left. Returns the crawl's and the match's results."""
    from crawler.matching import run_match
    from crawler.runner import start_crawl

    chosen = chosen_spiders(settings, spiders)
    sessions = open_sessions(settings)
    crawl = start_crawl(settings, sessions, spiders=chosen)
    try:
        # the model is loaded once there is something to match: a recrawl that finds nothing new
        # never loads it
        while crawl.running() and not pending_count(sessions):
            time.sleep(poll)
        encoder = encoder_if_pending(settings, sessions, " while crawling")
        with match_progress() as progress:
            matched = run_match(
                settings, sessions, encoder=encoder, progress=progress, producing=crawl.running, poll=poll
            )
    except BaseException:
        crawled = crawl.finish()  # the crawl goes on storing; the next run matches what it stored
        echo_stage(crawled)
        raise
    crawled = crawl.finish()
    echo_stage(crawled)
    echo_stage(matched)
    return crawled, matched


def print_summary(settings: Settings, claim_set: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from db.queries import claim_summaries, table_counts

    sessions = open_sessions(settings)
    with sessions() as session:
        rows = claim_summaries(session, claim_set)
        counts = table_counts(session)
    table = Table(title="Claims", show_lines=False)
    for column in ("claim", "matches", "docs", "sources", "languages", "first seen", "last seen", "text"):
        table.add_column(column, overflow="fold" if column == "text" else "ellipsis")
    for row in rows:
        table.add_row(
            row.key,
            str(row.matches),
            str(row.documents),
            str(row.sources),
            row.languages or "-",
            f"{row.first_seen:%Y-%m-%d}" if row.first_seen else "-",
            f"{row.last_seen:%Y-%m-%d}" if row.last_seen else "-",
            row.text[:90],
        )
    console = Console(width=160)
    console.print(table)
    ms = {k.rsplit(".", 1)[1]: v for k, v in counts.items() if k.startswith("documents.match_status.")}
    console.print(
        f"documents: {counts['documents']} ({counts.get('documents.ok', 0)} relevant, "
        f"{counts.get('documents.irrelevant', 0)} irrelevant, {counts.get('documents.failed', 0)} failed; "
        f"{ms.get('duplicate', 0)} syndicated copies, {ms.get('not_scored', 0)} not scored by this model, "
        f"{ms.get('pending', 0)} pending) · matches: {counts['matches']} · claims: {counts['claims']}"
    )
