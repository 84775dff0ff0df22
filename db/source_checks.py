"""The doctor's probes of the sources (``source_checks``: the latest one per source)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from db.models import Source, SourceCheck

CHECK_FIELDS = (
    "checked_at",
    "status",
    "http_status",
    "url",
    "final_url",
    "moved_to",
    "content_type",
    "parsed_as",
    "items",
    "newest_item_at",
    "items_recent",
    "detail",
    "fix",
)


def record_source_check(session: Session, source_id: int, values: dict[str, Any]) -> None:
    """Store the probe of a source, replacing its previous one."""
    unknown = set(values) - set(CHECK_FIELDS)
    if unknown:
        raise ValueError(f"unknown source check fields: {', '.join(sorted(unknown))}")
    session.execute(delete(SourceCheck).where(SourceCheck.source_id == source_id))
    session.add(SourceCheck(source_id=source_id, **values))
    session.flush()


def source_checks(session: Session) -> dict[int, SourceCheck]:
    """The latest probe of every probed source, by sources.id."""
    return {check.source_id: check for check in session.scalars(select(SourceCheck))}


def move_source(session: Session, source_id: int, new_url: str, when: datetime) -> None:
    """Point a source at its new address; its conditional-GET validators belonged to the old one."""
    session.execute(
        update(Source).where(Source.id == source_id).values(url=new_url, etag=None, last_modified=None)
    )
    session.execute(
        update(SourceCheck)
        .where(SourceCheck.source_id == source_id)
        .values(
            detail=func.coalesce(SourceCheck.detail, "") + f"; address updated {when:%Y-%m-%d %H:%M} UTC",
            fix="",
        )
    )
