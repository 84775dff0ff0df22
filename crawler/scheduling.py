"""Daily scheduled runs: the daily job (crawl → match → alerts) under the run lock
(crawler/services/locks.py), and the scheduler.

The scheduler is an APScheduler 3 BlockingScheduler whose job store is a table (``apscheduler_jobs``,
created by APScheduler) in the project database: a run missed while the scheduler was down starts
when it comes back, within the misfire grace time, coalesced into one. APScheduler does not
coordinate processes, so every run also takes the database-backed run lock (``run_locks``): two
schedulers, or a manual ``claimwatch run`` during a scheduled one, never run at the same time.

The stored job has no arguments (``crawler.scheduling:scheduled_job``): settings, and so the SMTP
password, are never pickled into the database; the job runs with the scheduler process's settings.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Column, Float, MetaData, Table, Unicode, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import ConfigError, Settings
from crawler.services.app import StageObserver
from crawler.services.crawling import open_database
from crawler.services.locks import (
    LOCK_NAME,
    LockHeld,
    RunLockHandle,
    describe_lock,
    holder_is_dead,
    live_members,
)
from db.alerts import delivery_counts, list_subscriptions, recent_daily_runs
from db.locks import current_lock
from db.queries import RUN_COUNTERS, finish_run, start_run
from db.session import make_engine, session_scope
from db.timeutil import utcnow
from pipelines.status import RunStatus

logger = logging.getLogger(__name__)

JOB_ID = "claimwatch-daily"
JOB_FUNC = "crawler.scheduling:scheduled_job"
JOBS_TABLE = "apscheduler_jobs"


# --- the daily job -------------------------------------------------------------------------------


@dataclass
class StepOutcome:
    ok: bool
    counters: dict[str, int] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


Step = Callable[[Settings, int], StepOutcome]


def stage_outcome(result: Any) -> StepOutcome:
    """A crawl or match StageResult as a step outcome."""
    return StepOutcome(
        ok=result.ok,
        counters=dict(result.counters),
        detail={"run_id": result.run_id, "status": result.status, "seconds": round(result.seconds, 1)},
        error=result.error,
    )


def crawl_match_step(settings: Settings, run_id: int, observer: StageObserver | None = None) -> StepOutcome:
    """Crawl and, overlapping it, match (crawler.services.app.do_crawl_and_match)."""
    from crawler.services.app import do_crawl_and_match

    crawled, matched = do_crawl_and_match(settings, None, observer=observer)
    crawl, match = stage_outcome(crawled), stage_outcome(matched)
    counters = dict(crawl.counters)
    for key, value in match.counters.items():
        counters[key] = counters.get(key, 0) + value
    errors = [f"{name}: {o.error}" for name, o in (("crawl", crawl), ("match", match)) if o.error]
    return StepOutcome(
        ok=crawl.ok and match.ok,
        counters=counters,
        detail={"crawl": crawl.detail, "match": match.detail},
        error="; ".join(errors) or None,
    )


def alerts_step(settings: Settings, run_id: int) -> StepOutcome:
    from crawler.services.alerting import run_alerts

    sessions = open_database(settings)
    try:
        result = run_alerts(settings, sessions, run_id=run_id)
    finally:
        sessions.kw["bind"].dispose()
    logger.info("%s", result.describe())
    return StepOutcome(ok=result.ok, detail=result.summary(), error=result.error)


DEFAULT_STEPS: tuple[tuple[str, Step], ...] = (
    ("crawl+match", crawl_match_step),
    ("alerts", alerts_step),
)


def daily_steps(observer: StageObserver | None = None) -> tuple[tuple[str, Step], ...]:
    """The daily job's steps, the crawl and match stages reporting to ``observer`` (the CLI's
    prints them; by default they are logged)."""
    return (
        ("crawl+match", functools.partial(crawl_match_step, observer=observer)),
        ("alerts", alerts_step),
    )


@dataclass
class RunOutcome:
    run_id: int
    status: str
    seconds: float
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.SUCCEEDED

    def describe(self) -> str:
        done = ", ".join(f"{name} {'ok' if s.get('ok') else 'failed'}" for name, s in self.steps.items())
        line = f"daily run {self.run_id} {self.status} in {self.seconds:.1f}s" + (f": {done}" if done else "")
        return line + (f"; {self.error}" if self.error else "")


def run_daily_job(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    steps: Sequence[tuple[str, Step]] = DEFAULT_STEPS,
    stop: threading.Event | None = None,
    purpose: str = "schedule",
) -> RunOutcome:
    """One daily run under the run lock, recorded in ``crawl_runs`` (kind 'run'); steps never overlap."""
    stop = stop or threading.Event()
    started = time.monotonic()
    with session_scope(sessions) as session:
        run_id = start_run(session, "run", pid=os.getpid()).id
    lock = RunLockHandle(sessions, settings.lock_ttl, purpose, own_run_id=run_id)
    try:
        lock.acquire()
    except LockHeld as exc:
        with session_scope(sessions) as session:
            finish_run(session, run_id, "skipped", error=str(exc))
        logger.warning("daily run %d skipped: %s", run_id, exc)
        return RunOutcome(run_id, "skipped", time.monotonic() - started, error=str(exc))
    details: dict[str, dict[str, Any]] = {}
    counters: dict[str, int] = {}
    errors: list[str] = []
    status: str = RunStatus.SUCCEEDED
    try:
        for name, step in steps:
            if stop.is_set() or lock.lost.is_set():
                status = RunStatus.INTERRUPTED
                errors.append("stopped before " + name + (" (run lock lost)" if lock.lost.is_set() else ""))
                break
            logger.info("daily run %d: %s", run_id, name)
            step_started = time.monotonic()
            try:
                outcome = step(settings, run_id)
            except Exception as exc:
                logger.exception("daily run %d: step %s failed", run_id, name)
                outcome = StepOutcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:1000])
            details[name] = {
                "ok": outcome.ok,
                "seconds": round(time.monotonic() - step_started, 1),
                **outcome.detail,
                **({"error": outcome.error} if outcome.error else {}),
            }
            for key, value in outcome.counters.items():
                if key in RUN_COUNTERS:
                    counters[key] = counters.get(key, 0) + value
            if not outcome.ok:
                status = RunStatus.FAILED
                errors.append(f"{name}: {outcome.error or 'failed'}")
    except BaseException:
        status = RunStatus.INTERRUPTED
        errors.append("interrupted")
        raise
    finally:
        lock.release()
        with session_scope(sessions) as session:
            finish_run(
                session,
                run_id,
                status,
                error="; ".join(errors)[:2000] or None,
                stats={"steps": details},
                counters=counters,
            )
    outcome_all = RunOutcome(run_id, status, time.monotonic() - started, details, "; ".join(errors) or None)
    logger.info("%s", outcome_all.describe())
    return outcome_all


# --- the scheduler -------------------------------------------------------------------------------


def schedule_zone(settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.schedule_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"setting schedule_timezone: unknown time zone {settings.schedule_timezone!r}"
        ) from None


def cron_trigger(settings: Settings) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(settings.schedule_cron, timezone=schedule_zone(settings))
    except ValueError as exc:
        raise ConfigError(f"setting schedule_cron {settings.schedule_cron!r}: {exc}") from None


def check_schedule_settings(settings: Settings) -> None:
    cron_trigger(settings)
    if settings.schedule_misfire_grace < 1:
        raise ConfigError("setting schedule_misfire_grace must be at least 1 second")
    if settings.lock_ttl < 3:
        raise ConfigError("setting lock_ttl must be at least 3 seconds")


def build_scheduler(settings: Settings) -> BlockingScheduler:
    store = SQLAlchemyJobStore(engine=make_engine(settings.database_url), tablename=JOBS_TABLE)
    return BlockingScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(2)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.schedule_misfire_grace,
        },
        timezone=schedule_zone(settings),
    )


_active: ScheduleRunner | None = None


def scheduled_job() -> None:
    """The function the job store refers to; runs the daily job of this process's scheduler."""
    runner = _active
    if runner is None:
        logger.error("scheduled job fired but no scheduler is active in this process")
        return
    runner.run_job()


class ScheduleRunner:
    """`claimwatch schedule`: runs the daily job at the configured times until stopped."""

    def __init__(
        self,
        settings: Settings,
        *,
        steps: Sequence[tuple[str, Step]] = DEFAULT_STEPS,
        trigger: BaseTrigger | None = None,
        sessions: sessionmaker[Session] | None = None,
    ) -> None:
        check_schedule_settings(settings)
        self.settings = settings
        self.sessions = sessions or open_database(settings)
        self.steps = steps
        self.trigger = trigger or cron_trigger(settings)
        self.scheduler = build_scheduler(settings)
        self.stopping = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self.outcomes: list[RunOutcome] = []

    def run_job(self) -> None:
        if self.stopping.is_set():
            return
        self.idle.clear()
        try:
            self.outcomes.append(
                run_daily_job(self.settings, self.sessions, steps=self.steps, stop=self.stopping)
            )
        finally:
            self.idle.set()

    def _ensure_job(self, _event: SchedulerEvent) -> None:
        """Keep a stored job with the same trigger (its missed run still fires); else (re)place it."""
        try:
            job = self.scheduler.get_job(JOB_ID)
        except Exception as exc:  # an unreadable stored job (other APScheduler version): replace it
            logger.warning("stored job %s unreadable (%s); replacing it", JOB_ID, exc)
            job = None
        if job is None or job.func_ref != JOB_FUNC or repr(job.trigger) != repr(self.trigger):
            job = self.scheduler.add_job(
                JOB_FUNC, trigger=self.trigger, id=JOB_ID, name="claimwatch daily run", replace_existing=True
            )
        logger.info("scheduler running; next daily run %s", job.next_run_time or "as soon as possible")
        if self.stopping.is_set():  # a signal arrived while the scheduler was starting
            self.stop()

    def serve(self) -> None:
        """Block, running the job on schedule, until stop() (or SIGTERM/SIGINT) and the current step ends."""
        global _active
        if _active is not None:
            raise RuntimeError("a scheduler is already running in this process")
        _active = self
        self.scheduler.add_listener(self._ensure_job, EVENT_SCHEDULER_STARTED)
        try:
            with stop_signals(self.stop):
                self.scheduler.start()
                self.idle.wait()
        finally:
            _active = None
            self.scheduler.remove_listener(self._ensure_job)

    def stop(self) -> None:
        """Stop after the current step; safe from signal handlers and other threads."""
        self.stopping.set()
        threading.Thread(target=self._shutdown, name="scheduler-shutdown", daemon=True).start()

    def _shutdown(self) -> None:
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)


@contextlib.contextmanager
def stop_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM/SIGINT call ``stop`` (finish the current step); a second signal ends the process at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        if received:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        received.append(signum)
        logger.warning(
            "%s: stopping after the current step (send it again to stop at once)", signal.Signals(signum).name
        )
        stop()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_once(settings: Settings, steps: Sequence[tuple[str, Step]] = DEFAULT_STEPS) -> RunOutcome:
    """`claimwatch schedule --once`: the daily job now, in the foreground, under the run lock."""
    check_schedule_settings(settings)
    sessions = open_database(settings)
    stop = threading.Event()
    with stop_signals(stop.set):
        return run_daily_job(settings, sessions, steps=steps, stop=stop, purpose="schedule --once")


# --- status --------------------------------------------------------------------------------------


def stored_next_run(sessions: sessionmaker[Session]) -> datetime | None:
    """The next run time in the job store (UTC), or None when no scheduler ever stored the job."""
    with sessions() as session:
        bind = session.get_bind()
        if not inspect(bind).has_table(JOBS_TABLE):
            return None
        jobs = Table(
            JOBS_TABLE,
            MetaData(),
            Column("id", Unicode(191), primary_key=True),
            Column("next_run_time", Float(25)),
        )
        value = session.scalar(select(jobs.c.next_run_time).where(jobs.c.id == JOB_ID))
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def schedule_status_lines(settings: Settings) -> list[str]:
    """Lines for `claimwatch status`: next run, lock holder, last daily runs, deliveries, recipients."""
    sessions = open_database(settings)
    lines: list[str] = []
    where = f"schedule: `{settings.schedule_cron}` ({settings.schedule_timezone})"
    stored = stored_next_run(sessions)
    if stored is not None:
        zone = schedule_zone(settings)
        lines.append(f"{where}; next run {stored.astimezone(zone):%Y-%m-%d %H:%M %Z} (job store)")
    else:
        try:
            planned = cron_trigger(settings).get_next_fire_time(None, datetime.now(UTC))
            lines.append(f"{where}; scheduler never started; would run {planned:%Y-%m-%d %H:%M %Z}")
        except ConfigError as exc:
            lines.append(f"{where}; invalid: {exc}")
    with sessions() as session:
        row = current_lock(session, LOCK_NAME)
        runs = recent_daily_runs(session)
        deliveries = delivery_counts(session)
        subscriptions = list_subscriptions(session)
    members = live_members(sessions)
    if members:
        lines.append(
            f"shared workers: {len(members)} alive ("
            + ", ".join(f"{m.purpose} pid {m.pid} on {m.host}" for m in members)
            + ")"
        )
    if row is None:
        lines.append("run lock: free")
    else:
        stale = holder_is_dead(row) or row.expires_at <= utcnow()
        lines.append(
            f"run lock: held by {describe_lock(row)}"
            + (" — holder gone, the next run takes it over" if stale else "")
        )
    for r in runs:
        took = f"{(r.finished_at - r.started_at).total_seconds():.1f}s" if r.finished_at else "-"
        lines.append(
            f"daily run {r.id} {r.status} started {r.started_at:%Y-%m-%d %H:%M:%S} took {took}"
            + (f" error: {r.error}" if r.error else "")
        )
    if not runs:
        lines.append("daily runs: none yet")
    shown = ", ".join(f"{n} {status}" for status, n in sorted(deliveries.items())) or "none"
    lines.append(f"alert e-mails: {shown}")
    defaults = [a for a in settings.alert_to.split(",") if a.strip()]
    lines.append(
        f"alert recipients: {len(subscriptions)} subscription(s), {len(defaults)} from CLAIMWATCH_ALERT_TO"
    )
    return lines
