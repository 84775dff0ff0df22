"""Data access for reviews and stance: verdicts on matches, the review queue, reviewed examples and
per-claim thresholds. Functions take a session; callers own the transaction.

A verdict is a ``match_reviews`` row (history kept); triggers (db/aggregates.py) copy the latest one
of a match to ``matches.verdict`` and keep the research aggregates exact. A *predicted* stance lives
only in ``matches.predicted_stance`` and is never written as a review.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.models import VERDICTS, Claim, ClaimThreshold, Document, Match, MatchReview
from db.queries import _chunks
from db.timeutil import utcnow
from pipelines.stance import predict_stance

logger = logging.getLogger(__name__)

CONTEXT_CHARS = 240  # characters of the document shown on each side of the passage


class ReviewError(ValueError):
    """A verdict claimwatch cannot store (unknown match or verdict, bad import file)."""


@dataclass(frozen=True)
class ReviewInput:
    match_id: int
    verdict: str
    note: str | None = None


@dataclass(frozen=True)
class QueueItem:
    """One match to review, with what a reviewer needs to judge it."""

    match_id: int
    claim_id: int
    claim_set: str
    claim_key: str
    claim_text: str
    passage: str
    score: float
    threshold: float
    predicted_stance: str | None
    stance_confidence: float | None
    verdict: str | None
    note: str | None
    title: str | None
    url: str
    outlet: str | None
    language: str | None
    seen_at: datetime
    before: str  # document text just before the passage
    after: str  # and just after it

    @property
    def margin(self) -> float:
        """Distance of the score from the threshold: small = uncertain, reviewed first."""
        return abs(self.score - self.threshold)


def check_verdict(verdict: str) -> str:
    value = verdict.strip().lower()
    if value not in VERDICTS:
        raise ReviewError(f"unknown verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
    return value


def add_reviews(session: Session, reviews: Sequence[ReviewInput], reviewer: str, via: str) -> list[int]:
    """Store verdicts (validated by the caller); returns the new review ids in order."""
    if not reviews:
        return []
    now = utcnow()
    ids = []
    for review in reviews:
        row = MatchReview(
            match_id=review.match_id,
            verdict=check_verdict(review.verdict),
            reviewer=reviewer,
            reviewed_at=now,
            note=review.note or None,
            via=via,
        )
        session.add(row)
        session.flush()  # the trigger copies it to matches.verdict now, in order
        ids.append(row.id)
    return ids


def set_verdict(
    session: Session, match_id: int, verdict: str, reviewer: str, note: str | None = None, via: str = "set"
) -> int:
    """Review one match; raises ReviewError for an unknown match or verdict. Returns the review id."""
    value = check_verdict(verdict)
    if session.get(Match, match_id) is None:
        raise ReviewError(f"no match with id {match_id}")
    return add_reviews(session, [ReviewInput(match_id, value, note)], reviewer, via)[0]


def undo_review(session: Session, review_id: int) -> None:
    """Remove one review (the terminal session's undo); the match falls back to its previous verdict."""
    session.execute(delete(MatchReview).where(MatchReview.id == review_id))


def existing_match_ids(session: Session, ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(sorted(set(ids))):
        found.update(session.scalars(select(Match.id).where(Match.id.in_(list(chunk)))))
    return found


def review_history(session: Session, match_id: int) -> list[MatchReview]:
    query = select(MatchReview).where(MatchReview.match_id == match_id)
    return list(session.scalars(query.order_by(MatchReview.reviewed_at, MatchReview.id)))


# --- the queue -----------------------------------------------------------------------------------


def review_queue(
    session: Session,
    claim: str | None = None,
    language: str | None = None,
    since: datetime | None = None,
    limit: int | None = 200,
    include_reviewed: bool = False,
    claim_set: str | None = None,
) -> list[QueueItem]:
    """Matches of original documents to review: not reviewed yet (unless ``include_reviewed``),
    scores nearest their threshold first, then the newest documents. ``claim`` is a claim key."""
    seen = func.coalesce(Document.published_at, Document.fetched_at)
    margin = func.abs(Match.score - Match.threshold)
    query = (
        select(Match, Claim, Document.title, Document.url, Document.outlet, Document.language, seen)
        .join(Claim, Claim.id == Match.claim_id)
        .join(Document, Document.id == Match.document_id)
        .where(Document.duplicate_of_id.is_(None))
    )
    if not include_reviewed:
        query = query.where(Match.verdict.is_(None))
    if claim:
        query = query.where(Claim.key == claim)
    if claim_set:
        query = query.where(Claim.claim_set == claim_set)
    if language:
        query = query.where(Document.language == language)
    if since is not None:
        query = query.where(seen >= since)
    query = query.order_by(margin, seen.desc(), Match.id.desc())
    if limit:
        query = query.limit(limit)
    rows = session.execute(query).all()
    texts = _document_context(session, [m.document_id for m, *_ in rows])
    notes = _latest_notes(session, [m.review_id for m, *_ in rows if m.review_id])
    items = []
    for match, claim_row, title, url, outlet, lang, seen_at in rows:
        text = texts.get(match.document_id) or ""
        before = text[max(0, match.passage_start - CONTEXT_CHARS) : match.passage_start]
        after = text[match.passage_end : match.passage_end + CONTEXT_CHARS]
        items.append(
            QueueItem(
                match_id=match.id,
                claim_id=claim_row.id,
                claim_set=claim_row.claim_set,
                claim_key=claim_row.key,
                claim_text=claim_row.text,
                passage=match.passage,
                score=match.score,
                threshold=match.threshold,
                predicted_stance=match.predicted_stance,
                stance_confidence=match.stance_confidence,
                verdict=match.verdict,
                note=notes.get(match.review_id) if match.review_id else None,
                title=title,
                url=url,
                outlet=outlet,
                language=lang,
                seen_at=seen_at,
                before=before,
                after=after,
            )
        )
    return items


def _document_context(session: Session, ids: Sequence[int]) -> dict[int, str | None]:
    texts: dict[int, str | None] = {}
    for chunk in _chunks(sorted(set(ids))):
        texts.update(
            session.execute(select(Document.id, Document.text).where(Document.id.in_(list(chunk)))).all()
        )
    return texts


def _latest_notes(session: Session, review_ids: Sequence[int]) -> dict[int, str | None]:
    notes: dict[int, str | None] = {}
    for chunk in _chunks(sorted(set(review_ids))):
        rows = session.execute(
            select(MatchReview.id, MatchReview.note).where(MatchReview.id.in_(list(chunk)))
        )
        notes.update(rows.all())
    return notes


# --- what the reviews teach the matcher ----------------------------------------------------------


@dataclass(frozen=True)
class ReviewedMatch:
    match_id: int
    claim_id: int
    score: float
    threshold: float
    verdict: str
    passage: str
    reviewed_at: datetime

    @property
    def correct(self) -> bool:
        """About the claim (restates, rebuts or reports), as opposed to wrong."""
        return self.verdict != "wrong"


def reviewed_matches(session: Session, claim_ids: Sequence[int] | None = None) -> list[ReviewedMatch]:
    """Every match with a (latest) verdict, oldest review first."""
    query = (
        select(
            Match.id,
            Match.claim_id,
            Match.score,
            Match.threshold,
            Match.verdict,
            Match.passage,
            MatchReview.reviewed_at,
        )
        .join(MatchReview, MatchReview.id == Match.review_id)
        .where(Match.verdict.is_not(None))
    )
    if claim_ids is not None:
        query = query.where(Match.claim_id.in_(list(claim_ids)))
    rows = session.execute(query.order_by(MatchReview.reviewed_at, Match.id)).all()
    return [
        ReviewedMatch(match_id, claim_id, score, threshold, verdict or "", passage, reviewed_at)
        for match_id, claim_id, score, threshold, verdict, passage, reviewed_at in rows
    ]


@dataclass(frozen=True)
class ReviewedExamples:
    """A claim's reviewed passages: examples (about the claim, by stance) and counter-examples (wrong)."""

    restates: tuple[str, ...] = ()
    rebuts: tuple[str, ...] = ()
    reports: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()

    @property
    def examples(self) -> tuple[str, ...]:
        """Passages about the claim, whatever their stance (what the matcher should find)."""
        return self.restates + self.rebuts + self.reports


def reviewed_examples(
    session: Session, claim_ids: Sequence[int] | None = None
) -> dict[int, ReviewedExamples]:
    """Per claim id: its reviewed passages as examples and counter-examples for the matcher (distinct
    passages, oldest review first)."""
    grouped: dict[int, dict[str, list[str]]] = {}
    for item in reviewed_matches(session, claim_ids):
        bucket = grouped.setdefault(item.claim_id, {v: [] for v in VERDICTS})[item.verdict]
        if item.passage not in bucket:
            bucket.append(item.passage)
    return {
        claim_id: ReviewedExamples(
            tuple(b["restates"]), tuple(b["rebuts"]), tuple(b["reports"]), tuple(b["wrong"])
        )
        for claim_id, b in grouped.items()
    }


def store_claim_thresholds(session: Session, fits: dict[int, tuple[float, int, float | None]]) -> None:
    """Replace the per-claim thresholds: {claim id: (threshold, reviews, precision)}."""
    session.execute(delete(ClaimThreshold))
    now = utcnow()
    for claim_id, (threshold, reviews, precision) in sorted(fits.items()):
        session.add(
            ClaimThreshold(
                claim_id=claim_id, threshold=threshold, reviews=reviews, precision=precision, fitted_at=now
            )
        )
    session.flush()


def claim_thresholds(session: Session) -> dict[int, float]:
    """{claim id: the threshold fitted on its reviews} (claims without one use the model's)."""
    return dict(session.execute(select(ClaimThreshold.claim_id, ClaimThreshold.threshold)).all())


# --- the match stage ------------------------------------------------------------------------------


def review_match_rows(
    session: Session, rows: Sequence[dict[str, Any]], statuses: dict[int, tuple[str, str]] | None = None
) -> tuple[list[dict[str, Any]], dict[int, tuple[str, str]]]:
    """Prepare the match stage's rows for storing: drop the rows below their claim's review-fitted
    threshold (``calibrate --from-reviews``), and add each remaining row's predicted stance and
    confidence (pipelines/stance.py). A document left without rows becomes ``no_match`` in
    ``statuses`` ({document id: (match_status, model)})."""
    statuses = dict(statuses or {})
    if not rows:
        return [], statuses
    fitted = claim_thresholds(session)
    kept = [r for r in rows if r["score"] >= fitted.get(r["claim_id"], float("-inf"))]
    if len(kept) < len(rows):
        logger.info("%d matches below their claim's reviewed threshold not stored", len(rows) - len(kept))
        with_rows = {r["document_id"] for r in kept}
        for ident, (status, model) in list(statuses.items()):
            if status == "matched" and ident not in with_rows:
                statuses[ident] = ("no_match", model)
    claims = dict(
        session.execute(select(Claim.id, Claim.text).where(Claim.id.in_({r["claim_id"] for r in kept}))).all()
    )
    languages: dict[int, str | None] = {}
    for chunk in _chunks(sorted({r["document_id"] for r in kept})):
        languages.update(
            session.execute(select(Document.id, Document.language).where(Document.id.in_(list(chunk)))).all()
        )
    out = []
    for row in kept:
        stance = predict_stance(
            row["passage"],
            claims.get(row["claim_id"], ""),
            languages.get(row["document_id"]),
            row["score"],
            row["threshold"],
        )
        out.append({**row, "predicted_stance": stance.stance, "stance_confidence": stance.confidence})
    return out, statuses
