"""Data access for alerts, deliveries, subscriptions and the run lock. Callers own the transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from db.models import Alert, AlertItem, Claim, CrawlRun, Delivery, Document, Match, Subscription
from db.queries import _insert
from db.session import affected_rows
from db.timeutil import utcnow
from pipelines.alerts import ClaimAlert, ClaimRef, MatchedPassage, SubscriptionRef
from pipelines.status import DeliveryStatus

logger = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS = 20
DELIVERY_STATUSES = tuple(DeliveryStatus)


# --- claims and matches --------------------------------------------------------------------------


def claim_refs(session: Session) -> list[ClaimRef]:
    rows = session.scalars(select(Claim).where(Claim.active.is_(True)).order_by(Claim.claim_set, Claim.key))
    return [
        ClaimRef(c.id, c.claim_set, c.key, c.text, c.verdict, c.claimant, c.review_url, c.reviewer)
        for c in rows
    ]


def claim_exists(session: Session, claim_set: str, claim_key: str) -> bool:
    query = select(func.count()).select_from(Claim)
    if claim_set:
        query = query.where(Claim.claim_set == claim_set)
    if claim_key:
        query = query.where(Claim.key == claim_key)
    return bool(session.scalar(query))


def alerting(rebuttals: bool = True) -> ColumnElement[bool]:
    """Matches that may alert: never those reviewed wrong; rebuttals (reviewed, else predicted) only
    with ``rebuttals`` (setting alert_rebuttals)."""
    condition = func.coalesce(Match.verdict, "") != "wrong"
    if not rebuttals:
        condition = and_(condition, func.coalesce(Match.verdict, Match.predicted_stance, "") != "rebuts")
    return condition


def new_matches(session: Session, claim_ids: Sequence[int], rebuttals: bool = True) -> list[MatchedPassage]:
    """Matches whose story (the original of a syndicated copy) no earlier alert of the claim covered;
    matches reviewed wrong never (and rebuttals only with ``rebuttals``)."""
    if not claim_ids:
        return []
    original = aliased(Document)
    story_id = func.coalesce(Document.duplicate_of_id, Document.id)
    covered = exists().where(AlertItem.claim_id == Match.claim_id, AlertItem.document_id == story_id)
    rows = session.execute(
        select(
            Match.id,
            Match.claim_id,
            story_id,
            original.title,
            func.coalesce(original.outlet, original.sitename),
            original.url,
            original.language,
            func.coalesce(original.published_at, original.fetched_at),
            Match.passage,
            Match.score,
            func.coalesce(Match.verdict, Match.predicted_stance),
            Match.verdict.is_not(None),
        )
        .select_from(Match)
        .join(Document, Document.id == Match.document_id)
        .join(original, original.id == story_id)
        .where(Match.claim_id.in_(list(claim_ids)), ~covered, alerting(rebuttals))
        .order_by(Match.id)
    )
    return [MatchedPassage(*tuple(row)) for row in rows]  # the last column is `reviewed`


def match_history(
    session: Session, claim_ids: Sequence[int], since: datetime, rebuttals: bool = True
) -> dict[int, list[tuple[int, datetime]]]:
    """Per claim: (story id, seen at) of every match seen since ``since`` (for trends and spikes)."""
    history: dict[int, list[tuple[int, datetime]]] = {}
    if not claim_ids:
        return history
    original = aliased(Document)
    story_id = func.coalesce(Document.duplicate_of_id, Document.id)
    seen_at = func.coalesce(original.published_at, original.fetched_at)
    rows = session.execute(
        select(Match.claim_id, story_id, seen_at)
        .select_from(Match)
        .join(Document, Document.id == Match.document_id)
        .join(original, original.id == story_id)
        .where(Match.claim_id.in_(list(claim_ids)), seen_at >= since, alerting(rebuttals))
    )
    for claim_id, story, when in rows:
        history.setdefault(claim_id, []).append((story, when))
    return history


# --- alerts and deliveries -----------------------------------------------------------------------


def record_alert(session: Session, alerts: Sequence[ClaimAlert], crawl_run_id: int | None) -> Alert:
    """The alert row and its items (every new match it covers); flushed so it has an id."""
    row = Alert(
        crawl_run_id=crawl_run_id,
        claims=len(alerts),
        documents=sum(a.new_documents for a in alerts),
        summary={
            "claims": [
                {
                    "claim_id": a.claim.id,
                    "key": a.claim.key,
                    "claim_set": a.claim.claim_set,
                    "reasons": list(a.reasons),
                    "new_documents": a.new_documents,
                    "new_sources": a.new_sources,
                    "today": a.trend.today,
                    "baseline_mean": round(a.trend.baseline_mean, 3),
                }
                for a in alerts
            ]
        },
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    items = [
        {"alert_id": row.id, "claim_id": p.claim_id, "document_id": p.story_id, "match_id": p.match_id}
        for a in alerts
        for p in a.covered
    ]
    if items:
        statement = _insert(session, AlertItem).on_conflict_do_nothing(index_elements=["match_id"])
        session.execute(statement, items)
    return row


def add_delivery(
    session: Session, alert_id: int, recipient: str, message_id: str, subject: str, message: str
) -> None:
    statement = _insert(session, Delivery).values(
        alert_id=alert_id,
        recipient=recipient,
        status=DeliveryStatus.PENDING,
        message_id=message_id,
        subject=subject,
        message=message,
        attempts=0,
        created_at=utcnow(),
    )
    session.execute(statement.on_conflict_do_nothing(index_elements=["alert_id", "recipient"]))


def deliveries_to_send(session: Session) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery).where(Delivery.status == DeliveryStatus.PENDING).order_by(Delivery.id)
        )
    )


def claim_delivery(session: Session, delivery_id: int) -> bool:
    """pending → sending (the point after which a crash means "possibly sent"); False if not pending."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1, last_attempt_at=utcnow())
    )
    return affected_rows(result) == 1


def finish_delivery(session: Session, delivery_id: int, status: str, error: str | None = None) -> None:
    values: dict[str, object] = {"status": status, "error": error[:2000] if error else None}
    if status == DeliveryStatus.SENT:
        values["sent_at"] = utcnow()
    session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))
    if status == DeliveryStatus.PENDING:
        _give_up_exhausted(session, [delivery_id], error or "retry")


def note_delivery_failure(session: Session, delivery_ids: Sequence[int], error: str) -> None:
    """Connection-level failure before any message was handed over: stays pending, counts an attempt."""
    if not delivery_ids:
        return
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(delivery_ids)), Delivery.status == DeliveryStatus.PENDING)
        .values(attempts=Delivery.attempts + 1, last_attempt_at=utcnow(), error=error[:2000])
    )
    _give_up_exhausted(session, delivery_ids, error)


def _give_up_exhausted(session: Session, delivery_ids: Sequence[int], error: str) -> None:
    session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(list(delivery_ids)),
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.attempts >= MAX_DELIVERY_ATTEMPTS,
        )
        .values(
            status=DeliveryStatus.FAILED,
            error=f"gave up after {MAX_DELIVERY_ATTEMPTS} attempts: {error}"[:2000],
        )
    )


def reconcile_sending(session: Session) -> int:
    """Deliveries a dead process left in 'sending' become 'unconfirmed' (possibly sent: never resent)."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.SENDING)
        .values(
            status=DeliveryStatus.UNCONFIRMED,
            error="the sending process stopped during the SMTP transaction; possibly delivered, not resent",
        )
    )
    return affected_rows(result)


def delivery_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    return {status: n for status, n in rows}


# --- subscriptions -------------------------------------------------------------------------------


def add_subscription(session: Session, email: str, claim_set: str = "", claim_key: str = "") -> bool:
    statement = _insert(session, Subscription).values(
        email=email, claim_set=claim_set, claim_key=claim_key, created_at=utcnow()
    )
    result = session.execute(
        statement.on_conflict_do_nothing(index_elements=["email", "claim_set", "claim_key"]).returning(
            Subscription.id
        )
    )
    return result.first() is not None


def remove_subscriptions(
    session: Session, email: str, claim_set: str | None = None, claim_key: str | None = None
) -> int:
    """Remove the matching subscriptions of ``email`` (all of them when no scope is given)."""
    statement = delete(Subscription).where(Subscription.email == email)
    if claim_set is not None:
        statement = statement.where(Subscription.claim_set == claim_set)
    if claim_key is not None:
        statement = statement.where(Subscription.claim_key == claim_key)
    return affected_rows(session.execute(statement))


def list_subscriptions(session: Session) -> list[SubscriptionRef]:
    rows = session.scalars(select(Subscription).order_by(Subscription.email, Subscription.id))
    return [SubscriptionRef(s.email, s.claim_set, s.claim_key) for s in rows]


# --- scheduled runs ----------------------------------------------------------------------------


def recent_daily_runs(session: Session, limit: int = 5) -> list[CrawlRun]:
    """The latest daily-job runs (kind 'run': `claimwatch schedule`)."""
    query = select(CrawlRun).where(CrawlRun.kind == "run").order_by(CrawlRun.id.desc()).limit(limit)
    return list(session.scalars(query))
