"""The run lock: one daily run (or manual run) at a time, and the registrations of processes that
share a run's work (``match --worker``, crawls joining a shared Redis run).

A ``run_locks`` row with a heartbeat: the holder renews it from a thread; a lock whose holder died on
this host, or whose heartbeat expired, is taken over. Queries: db/locks.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings
from crawler.services.crawling import open_database
from db.locks import acquire_lock, current_lock, delete_locks, locks_named_like, release_lock, renew_lock
from db.models import RunLock
from db.queries import close_abandoned_runs
from db.session import session_scope
from db.timeutil import utcnow

logger = logging.getLogger(__name__)

LOCK_NAME = "daily-run"


class LockHeld(RuntimeError):
    """Another claimwatch process is running the daily job (or a manual run)."""


# --- the run lock --------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def holder_is_dead(row: RunLock) -> bool:
    return row.host == socket.gethostname() and not pid_alive(row.pid)


def describe_lock(row: RunLock) -> str:
    return (
        f"{row.purpose} (pid {row.pid} on {row.host}) since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"last heartbeat {row.heartbeat_at:%H:%M:%S}, expires {row.expires_at:%H:%M:%S}"
    )


class RunLockHandle:
    """The database-backed run lock of this process, renewed by a heartbeat thread while held."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ttl_seconds: int,
        purpose: str,
        name: str = LOCK_NAME,
        own_run_id: int | None = None,
        closes_abandoned: bool = True,
    ) -> None:
        self.sessions = sessions
        self.own_run_id = own_run_id
        self.closes_abandoned = closes_abandoned
        self.ttl = timedelta(seconds=max(3, ttl_seconds))
        self.purpose = purpose
        self.name = name
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.holder = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:12]}"
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming its holder."""
        for _ in range(3):
            try:
                with session_scope(self.sessions) as session:
                    taken = acquire_lock(
                        session,
                        self.name,
                        holder=self.holder,
                        purpose=self.purpose,
                        pid=self.pid,
                        host=self.host,
                        ttl=self.ttl,
                        holder_is_dead=holder_is_dead,
                    )
            except OperationalError as exc:  # SQLite: a concurrent taker won the write; look again
                logger.debug("lock %s: retrying after %s", self.name, exc)
                continue
            if taken:
                if self.closes_abandoned:
                    self.close_abandoned_runs()
                break
            with self.sessions() as session:
                row = current_lock(session, self.name)
            if row is not None:
                raise LockHeld(f"another claimwatch run holds the run lock: {describe_lock(row)}")
        else:
            raise LockHeld(f"could not take the run lock {self.name} (database busy)")
        self._thread = threading.Thread(target=self._beat, name=f"lock-heartbeat-{self.name}", daemon=True)
        self._thread.start()
        logger.debug("run lock %s taken by %s (%s)", self.name, self.purpose, self.holder)

    def close_abandoned_runs(self) -> None:
        keep = [self.own_run_id] if self.own_run_id is not None else []
        keep += live_member_run_ids(self.sessions)
        with session_scope(self.sessions) as session:
            closed = close_abandoned_runs(session, keep)
        if closed:
            logger.warning("marked %d run(s) left 'running' by a dead process as interrupted", closed)

    def _beat(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                with session_scope(self.sessions) as session:
                    held = renew_lock(session, self.name, self.holder, self.ttl)
            except Exception as exc:  # a database hiccup: keep trying until the lock expires
                logger.warning("run lock heartbeat failed: %s", exc)
                continue
            if not held:
                logger.error("run lock %s was taken over by another process", self.name)
                self.lost.set()
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            with session_scope(self.sessions) as session:
                release_lock(session, self.name, self.holder)
        except Exception as exc:  # it expires on its own
            logger.warning("could not release run lock %s: %s", self.name, exc)

    def __enter__(self) -> RunLockHandle:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def run_lock(
    settings: Settings, purpose: str, sessions: sessionmaker[Session] | None = None
) -> Iterator[RunLockHandle]:
    """Hold the run lock for the duration of the block; LockHeld when another run has it."""
    with RunLockHandle(sessions or open_database(settings), settings.lock_ttl, purpose) as handle:
        yield handle


MEMBER_PREFIX = "member:"


def member_lock(
    sessions: sessionmaker[Session], settings: Settings, purpose: str, run_id: int
) -> RunLockHandle:
    """The registration of a process that shares work with others (a ``match --worker``, a crawl
    joining a shared Redis run) instead of taking the exclusive run lock: a ``run_locks`` row of its
    own, named after its crawl_runs row and kept alive by the heartbeat, so that the holder of the
    run lock does not take that row for one left behind by a dead process."""
    return RunLockHandle(
        sessions,
        settings.lock_ttl,
        purpose,
        name=f"{MEMBER_PREFIX}{run_id}",
        own_run_id=run_id,
        closes_abandoned=False,
    )


def live_members(sessions: sessionmaker[Session], forget_dead: bool = False) -> list[RunLock]:
    """Member registrations whose process is alive (heartbeat not expired, not dead on this host);
    ``forget_dead`` deletes the others' rows."""
    now = utcnow()
    with session_scope(sessions) as session:
        rows = locks_named_like(session, MEMBER_PREFIX)
        alive = [r for r in rows if r.expires_at > now and not holder_is_dead(r)]
        dead = [r.name for r in rows if r not in alive]
        if forget_dead and dead:
            delete_locks(session, dead)
    return alive


def live_member_run_ids(sessions: sessionmaker[Session]) -> list[int]:
    return [int(r.name[len(MEMBER_PREFIX) :]) for r in live_members(sessions, forget_dead=True)]
