"""Application services shared by the CLI, the demo and the scheduler: init, the crawl and match
stages, the claim summary. No printing: stage results go to a ``StageObserver`` (the CLI's prints
them; the default logs them)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from crawler.config import Settings

if TYPE_CHECKING:  # the CLI imports this module: SQLAlchemy and the db layer load when a stage runs
    from sqlalchemy.orm import Session, sessionmaker

    from crawler.services.crawling import StageResult
    from db.queries import ClaimSummary

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class StageObserver(Protocol):
    """What the stages tell their caller: a finished stage, a note (loading the model, …) and a
    progress callback for matching (``None``: no progress shown)."""

    def stage_finished(self, result: StageResult) -> None: ...

    def note(self, message: str) -> None: ...

    def match_progress(self) -> AbstractContextManager[Progress | None]: ...


class LogObserver:
    """The default observer: stage lines and notes go to the log, no progress bar."""

    def stage_finished(self, result: StageResult) -> None:
        logger.info("%s", describe_stage(result))
        if result.error:
            logger.warning("  %s", result.error)

    def note(self, message: str) -> None:
        logger.info("%s", message)

    def match_progress(self) -> AbstractContextManager[Progress | None]:
        return nullcontext(None)


def describe_stage(result: StageResult) -> str:
    """One line for a finished crawl or match stage."""
    counters = result.counters
    if result.kind == "crawl":
        return (
            f"crawl run {result.run_id} {result.status} in {result.seconds:.1f}s: "
            f"{counters['pages_fetched']} pages fetched, {counters['documents_stored']} stored "
            f"({counters['documents_relevant']} relevant, {counters['duplicates']} duplicates, "
            f"{counters['failures']} failures)"
        )
    rate = counters["passages_encoded"] / result.seconds if result.seconds else 0.0
    return (
        f"match run {result.run_id} {result.status} in {result.seconds:.1f}s: "
        f"{counters['documents_matched']} documents, {counters['passages_encoded']} passages "
        f"({rate:.0f}/s), {counters['matches_stored']} matches"
    )


class UsageError(ValueError):
    """The user asked for something that does not exist (an unknown spider, ...)."""


def open_sessions(settings: Settings) -> sessionmaker[Session]:
    from crawler.services.crawling import open_database

    return open_database(settings)


def initialise(
    settings: Settings, claims_file: Path | None = None, load_default_sources: bool = True
) -> None:
    """Migrate the database to the latest schema and load the claims and sources if none are loaded."""
    from crawler.services.sources import load_sources
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
    from pipelines.claimreview import load_claim_file
    from pipelines.encoding import text_hash

    claims = load_claim_file(path)
    name = claim_set or (claims[0].claim_set if claims else path.stem)
    result = sync_claims(session, name, claims, text_hash)
    return name, result


def chosen_spiders(settings: Settings, spiders: list[str] | None) -> tuple[str, ...]:
    from crawler.services.crawling import DEFAULT_SPIDERS

    chosen = tuple(spiders) if spiders else DEFAULT_SPIDERS
    if not spiders and not settings.gdelt_enabled:
        chosen = tuple(s for s in chosen if s != "gdelt")
    unknown = set(chosen) - set(DEFAULT_SPIDERS)
    if unknown:
        raise UsageError(f"unknown spider(s): {', '.join(sorted(unknown))}")
    return chosen


def do_crawl(
    settings: Settings,
    spiders: list[str] | None,
    member: bool = False,
    observer: StageObserver | None = None,
) -> StageResult:
    """Crawl; ``member``: register as one of several processes of a shared run (no run lock held)."""
    from crawler.services.crawling import start_crawl

    chosen = chosen_spiders(settings, spiders)
    sessions = open_sessions(settings)
    crawl = start_crawl(settings, sessions, spiders=chosen)
    if member:
        from crawler.services.locks import member_lock

        with member_lock(sessions, settings, "shared crawl", crawl.run_id):
            result = crawl.finish()
    else:
        result = crawl.finish()
    (observer or LogObserver()).stage_finished(result)
    return result


def do_match(
    settings: Settings,
    limit: int | None = None,
    *,
    idle_exit: float | None = 0.0,
    poll: float = 1.0,
    stop: threading.Event | None = None,
    worker: bool = False,
    observer: StageObserver | None = None,
) -> StageResult:
    """Match pending documents. The defaults end when none is pending; a worker (``idle_exit`` None
    or positive) keeps polling for documents that other processes store, registered as a member
    (``crawler.services.locks.member_lock``) rather than under the run lock."""
    from crawler.services.matching import run_match

    observer = observer or LogObserver()
    sessions = open_sessions(settings)
    run_id: int | None = None
    membership: Any = nullcontext()
    encoder = None
    if worker:
        import os

        from crawler.services.locks import member_lock
        from db.queries import start_run
        from db.session import session_scope

        with session_scope(sessions) as session:
            run_id = start_run(session, "match", pid=os.getpid()).id
        membership = member_lock(sessions, settings, "match --worker", run_id)
        observer.note(f"match worker (run {run_id}): loading model {settings.model} …")
    else:
        encoder = encoder_if_pending(settings, sessions, observer)
    # a worker's queue has no known end: no progress bar
    bar: AbstractContextManager[Progress | None] = nullcontext(None) if worker else observer.match_progress()
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
    observer.stage_finished(result)
    return result


def pending_count(sessions: sessionmaker[Session]) -> int:
    from db.queries import count_pending_documents

    with sessions() as session:
        return count_pending_documents(session)


def encoder_if_pending(
    settings: Settings, sessions: sessionmaker[Session], observer: StageObserver, note: str = ""
) -> Any:
    """The configured encoder when some document is pending; None otherwise: the model (seconds to
    load, ~100 MB) is not loaded for nothing (run_match loads it itself if documents come later)."""
    if not pending_count(sessions):
        return None
    from crawler.services.matching import load_configured_encoder

    observer.note(f"loading model {settings.model}{note} …")
    return load_configured_encoder(settings)


def do_crawl_and_match(
    settings: Settings,
    spiders: list[str] | None,
    poll: float = 0.5,
    observer: StageObserver | None = None,
) -> tuple[StageResult, StageResult]:
    """Crawl in the subprocess and, meanwhile, match the documents it stores in this process; when the
    crawl ends, match what is left. Returns the crawl's and the match's results."""
    from crawler.services.crawling import start_crawl
    from crawler.services.matching import run_match

    observer = observer or LogObserver()
    chosen = chosen_spiders(settings, spiders)
    sessions = open_sessions(settings)
    crawl = start_crawl(settings, sessions, spiders=chosen)
    try:
        # the model is loaded once there is something to match: a recrawl that finds nothing new
        # never loads it
        while crawl.running() and not pending_count(sessions):
            time.sleep(poll)
        encoder = encoder_if_pending(settings, sessions, observer, " while crawling")
        with observer.match_progress() as progress:
            matched = run_match(
                settings, sessions, encoder=encoder, progress=progress, producing=crawl.running, poll=poll
            )
    except BaseException:
        crawled = crawl.finish()  # the crawl goes on storing; the next run matches what it stored
        observer.stage_finished(crawled)
        raise
    crawled = crawl.finish()
    observer.stage_finished(crawled)
    observer.stage_finished(matched)
    return crawled, matched


@dataclass(frozen=True)
class Summary:
    """The per-claim table and the table counts that ``claimwatch run`` and the demo end with."""

    claims: list[ClaimSummary]
    counts: dict[str, int]


def claim_summary(settings: Settings, claim_set: str | None = None) -> Summary:
    """What ``claimwatch run`` and the demo show at the end."""
    from db.queries import claim_summaries, table_counts

    sessions = open_sessions(settings)
    with sessions() as session:
        return Summary(claims=list(claim_summaries(session, claim_set)), counts=table_counts(session))
