"""Data access for the run lock (``run_locks``): the exclusive daily-run lock and the registrations
of shared-work members. Callers own the transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from db.models import RunLock
from db.queries import _insert
from db.session import affected_rows
from db.timeutil import utcnow

logger = logging.getLogger(__name__)


def current_lock(session: Session, name: str) -> RunLock | None:
    return session.scalar(
        select(RunLock).where(RunLock.name == name).execution_options(populate_existing=True)
    )


def acquire_lock(
    session: Session,
    name: str,
    *,
    holder: str,
    purpose: str,
    pid: int,
    host: str,
    ttl: timedelta,
    holder_is_dead: Callable[[RunLock], bool],
    now: datetime | None = None,
) -> bool:
    """Take the lock when it is free, expired, or held by a dead process (compare-and-swap on holder)."""
    now = now or utcnow()
    values = {
        "holder": holder,
        "purpose": purpose,
        "pid": pid,
        "host": host,
        "acquired_at": now,
        "heartbeat_at": now,
        "expires_at": now + ttl,
    }
    inserted = session.execute(
        _insert(session, RunLock)
        .values(name=name, **values)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(RunLock.name)
    ).first()
    if inserted is not None:
        return True
    row = current_lock(session, name)
    if row is None:
        return False
    if row.holder != holder and row.expires_at > now and not holder_is_dead(row):
        return False
    taken = session.execute(
        update(RunLock)
        .where(RunLock.name == name, RunLock.holder == row.holder)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(taken) == 1 and row.holder != holder:
        logger.warning(
            "took over lock %s from %s (pid %d on %s, expires %s)",
            name,
            row.purpose,
            row.pid,
            row.host,
            row.expires_at,
        )
    return affected_rows(taken) == 1


def renew_lock(session: Session, name: str, holder: str, ttl: timedelta) -> bool:
    now = utcnow()
    result = session.execute(
        update(RunLock)
        .where(RunLock.name == name, RunLock.holder == holder)
        .values(heartbeat_at=now, expires_at=now + ttl)
    )
    return affected_rows(result) == 1


def release_lock(session: Session, name: str, holder: str) -> bool:
    result = session.execute(delete(RunLock).where(RunLock.name == name, RunLock.holder == holder))
    return affected_rows(result) == 1


def locks_named_like(session: Session, prefix: str) -> list[RunLock]:
    """Every lock row whose name starts with ``prefix`` (the member registrations)."""
    return list(session.scalars(select(RunLock).where(RunLock.name.startswith(prefix))))


def delete_locks(session: Session, names: list[str]) -> None:
    session.execute(delete(RunLock).where(RunLock.name.in_(names)))
