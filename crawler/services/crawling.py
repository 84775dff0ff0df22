"""Running stages from the application: the crawl subprocess, bookkeeping of crawl runs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings, settings_environment
from db.migrate import ensure_schema_current
from db.models import CrawlRun
from db.queries import RUN_COUNTERS, finish_run, last_successful_crawl_start, start_run
from db.session import check_connection, make_engine, make_sessionmaker, session_scope
from db.timeutil import utcnow
from pipelines.status import RunStatus

logger = logging.getLogger(__name__)

SINCE_OVERLAP = timedelta(hours=1)
DEFAULT_SPIDERS = ("feeds", "sitemaps", "gdelt")


@dataclass
class StageResult:
    run_id: int
    kind: str
    status: str
    seconds: float
    counters: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    stats: dict[str, Any] | None = None
    log_file: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.SUCCEEDED


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Sessions for the configured database; raises when it is unreachable or not initialised."""
    engine = make_engine(settings.database_url)
    check_connection(engine)
    ensure_schema_current(engine, settings.database_url)
    return make_sessionmaker(engine)


def crawl_since(session: Session, settings: Settings) -> datetime:
    """Only articles newer than the last successful crawl (first run: the last ``since_days``)."""
    last = last_successful_crawl_start(session)
    if last is None:
        return utcnow() - timedelta(days=settings.since_days)
    return last - SINCE_OVERLAP


def result_of(session: Session, run_id: int, seconds: float, log_file: Path | None = None) -> StageResult:
    run = session.get(CrawlRun, run_id, populate_existing=True)
    assert run is not None
    return StageResult(
        run_id=run.id,
        kind=run.kind,
        status=run.status,
        seconds=seconds,
        counters={name: getattr(run, name) for name in RUN_COUNTERS},
        error=run.error,
        stats=run.stats,
        log_file=log_file,
    )


class CrawlHandle:
    """A crawl subprocess started by ``start_crawl``: ``running()`` while it works, ``finish()`` waits
    for it and returns the run's result."""

    def __init__(
        self, sessions: sessionmaker[Session], run_id: int, process: subprocess.Popen[bytes], log_file: Path
    ) -> None:
        self.sessions = sessions
        self.run_id = run_id
        self.process = process
        self.log_file = log_file
        self.started = time.monotonic()
        self.seconds: float | None = None

    def running(self) -> bool:
        if self.process.poll() is None:
            return True
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started
        return False

    def finish(self) -> StageResult:
        try:
            returncode = self.process.wait()
        except KeyboardInterrupt:  # the child got the SIGINT too; let it record what it can
            self.process.wait()
            returncode = -2
        seconds = self.seconds if self.seconds is not None else time.monotonic() - self.started
        with session_scope(self.sessions) as session:
            run = session.get(CrawlRun, self.run_id, populate_existing=True)
            if run is not None and run.status == RunStatus.RUNNING:
                # The child died before it could record anything (killed, crashed, interrupted).
                status = RunStatus.INTERRUPTED if returncode == -2 else RunStatus.FAILED
                finish_run(
                    session,
                    self.run_id,
                    status,
                    error=f"crawl process exited with code {returncode}; see {self.log_file}",
                )
        with self.sessions() as session:
            return result_of(session, self.run_id, seconds, self.log_file)


def start_crawl(
    settings: Settings,
    sessions: sessionmaker[Session],
    spiders: tuple[str, ...] = DEFAULT_SPIDERS,
    env: dict[str, str] | None = None,
    since: datetime | None = None,
) -> CrawlHandle:
    """Start a crawl in a fresh subprocess; its crawl_runs row records the outcome. With ``redis_url``
    set the process joins the shared run (crawler.shared_crawl), whose first process fixes the
    since-window for all."""
    with session_scope(sessions) as session:
        since = since or crawl_since(session, settings)
    if settings.redis_url:
        from crawler.shared_crawl import shared_since

        since = shared_since(settings, since)
    with session_scope(sessions) as session:
        run_id = start_run(session, "crawl", since=since).id
    crawl_dir = Path(settings.crawl_dir)
    crawl_dir.mkdir(parents=True, exist_ok=True)
    log_file = crawl_dir / f"run-{run_id}.log"
    command = [
        sys.executable,
        "-m",
        "crawler.crawl_process",
        "--run-id",
        str(run_id),
        "--spiders",
        ",".join(spiders),
        "--since",
        since.isoformat(),
        "--log-file",
        str(log_file),
    ]
    logger.info("crawl run %d: spiders %s, articles since %s UTC", run_id, ",".join(spiders), since)
    process = subprocess.Popen(command, env={**os.environ, **settings_environment(settings), **(env or {})})
    return CrawlHandle(sessions, run_id, process, log_file)


def run_crawl(
    settings: Settings,
    sessions: sessionmaker[Session],
    spiders: tuple[str, ...] = DEFAULT_SPIDERS,
    env: dict[str, str] | None = None,
    since: datetime | None = None,
) -> StageResult:
    """Crawl in a fresh subprocess and wait for it; the run row records the outcome."""
    return start_crawl(settings, sessions, spiders, env, since).finish()
