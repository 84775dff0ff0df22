"""Review and stance services: the terminal review session's state, the spreadsheet round trip,
single verdicts, the per-claim review statistics and ``calibrate --from-reviews``. Typed results, no
printing (crawler/cli/review.py shows them)."""

from __future__ import annotations

import csv
import getpass
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings
from db.models import VERDICTS
from db.reviews import (
    QueueItem,
    ReviewError,
    ReviewInput,
    add_reviews,
    existing_match_ids,
    review_queue,
    reviewed_matches,
    set_verdict,
    store_claim_thresholds,
    undo_review,
)
from db.session import session_scope
from pipelines.review_calibration import (
    ClaimFit,
    HeldOut,
    Reviewed,
    fit_thresholds,
    held_out_evaluation,
)

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "xlsx")
EXPORT_COLUMNS = (
    "match_id",
    "claim_set",
    "claim_key",
    "claim_text",
    "passage",
    "context",
    "title",
    "url",
    "outlet",
    "language",
    "seen_at",
    "score",
    "threshold",
    "predicted_stance",
    "stance_confidence",
    "verdict",
    "note",
)
IMPORT_COLUMNS = ("match_id", "verdict", "note")


class ReviewImportError(ReviewError):
    """A review file with bad rows; nothing of it was stored."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:20]) + (f"; … {len(problems) - 20} more" if len(problems) > 20 else "")
        super().__init__(f"{path}: nothing imported, {len(problems)} bad row(s): {shown}")


def default_reviewer(settings: Settings) -> str:
    if settings.reviewer:
        return settings.reviewer
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers)
        return os.environ.get("USER") or "reviewer"


# --- the terminal session --------------------------------------------------------------------------


@dataclass
class Decision:
    item: QueueItem
    verdict: str
    review_id: int


@dataclass
class ReviewRun:
    """The state of one terminal review session: a queue, a position and the verdicts given (for undo).
    Each verdict is committed at once: quitting keeps what was reviewed."""

    sessions: sessionmaker[Session]
    reviewer: str
    queue: list[QueueItem]
    position: int = 0
    decisions: list[Decision] = field(default_factory=list)
    skipped: int = 0

    @property
    def current(self) -> QueueItem | None:
        return self.queue[self.position] if self.position < len(self.queue) else None

    @property
    def reviewed(self) -> int:
        return len(self.decisions)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for decision in self.decisions:
            out[decision.verdict] += 1
        return out

    def give(self, verdict: str, note: str | None = None) -> Decision:
        item = self.current
        if item is None:
            raise ReviewError("the queue is done")
        with session_scope(self.sessions) as session:
            review_id = set_verdict(session, item.match_id, verdict, self.reviewer, note, via="terminal")
        decision = Decision(item, verdict, review_id)
        self.decisions.append(decision)
        self.position += 1
        return decision

    def skip(self) -> None:
        if self.current is not None:
            self.position += 1
            self.skipped += 1

    def undo(self) -> Decision | None:
        """Take back the last verdict (its review row is deleted) and show that match again."""
        if not self.decisions:
            return None
        decision = self.decisions.pop()
        with session_scope(self.sessions) as session:
            undo_review(session, decision.review_id)
        self.position = self.queue.index(decision.item)
        return decision


def start_review(
    sessions: sessionmaker[Session],
    reviewer: str,
    claim: str | None = None,
    language: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
    include_reviewed: bool = False,
) -> ReviewRun:
    with sessions() as session:
        queue = review_queue(session, claim, language, since, limit, include_reviewed)
    return ReviewRun(sessions, reviewer, queue)


# --- spreadsheet round trip ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    fmt: str


def _export_row(item: QueueItem) -> dict[str, Any]:
    return {
        "match_id": item.match_id,
        "claim_set": item.claim_set,
        "claim_key": item.claim_key,
        "claim_text": item.claim_text,
        "passage": item.passage,
        "context": f"{item.before}[[{item.passage}]]{item.after}",
        "title": item.title or "",
        "url": item.url,
        "outlet": item.outlet or "",
        "language": item.language or "",
        "seen_at": item.seen_at.isoformat(sep=" ", timespec="seconds") if item.seen_at else "",
        "score": round(item.score, 4),
        "threshold": round(item.threshold, 4),
        "predicted_stance": item.predicted_stance or "",
        "stance_confidence": "" if item.stance_confidence is None else round(item.stance_confidence, 3),
        "verdict": item.verdict or "",
        "note": item.note or "",
    }


def export_queue(
    sessions: sessionmaker[Session],
    path: Path,
    fmt: str,
    claim: str | None = None,
    language: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    include_reviewed: bool = False,
) -> ExportResult:
    """Write the review queue (most uncertain first) with an empty verdict column (or, with
    ``include_reviewed``, every match with its latest verdict) to a CSV or XLSX file."""
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise ReviewError(f"unknown format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    with sessions() as session:
        items = review_queue(session, claim, language, since, limit, include_reviewed)
    rows = [_export_row(item) for item in items]
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with path.open("w", encoding="utf-8", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = "review"
        sheet.append(list(EXPORT_COLUMNS))
        for row in rows:
            sheet.append([row[c] for c in EXPORT_COLUMNS])
        sheet.freeze_panes = "A2"
        book.save(path)
    return ExportResult(path, len(rows), fmt)


def read_review_file(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(spreadsheet row number, {column: text}) of a CSV or XLSX review file; row 1 is the header."""
    if not path.is_file():
        raise ReviewError(f"{path}: no such file")
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # not a workbook
            raise ReviewError(f"{path}: not a readable .xlsx file ({exc})") from None
        lines = [
            ["" if v is None else str(v) for v in row] for row in book.active.iter_rows(values_only=True)
        ]
        book.close()
    else:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            lines = list(csv.reader(stream))
    if not lines:
        raise ReviewError(f"{path}: empty file")
    header = [h.strip().lower() for h in lines[0]]
    missing = [c for c in ("match_id", "verdict") if c not in header]
    if missing:
        raise ReviewError(f"{path}: no {', '.join(missing)} column in the header row")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in line):
            continue
        rows.append((number, {h: (line[i] if i < len(line) else "") for i, h in enumerate(header)}))
    return rows


def _match_id(value: str) -> int | None:
    text = value.strip()
    if text.endswith(".0"):  # a spreadsheet's number
        text = text[:-2]
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class ImportResult:
    path: Path
    rows: int
    stored: int
    not_reviewed: int
    counts: dict[str, int]


def import_reviews(sessions: sessionmaker[Session], path: Path, reviewer: str) -> ImportResult:
    """Store the verdicts of a review file: every row is checked first (unknown match ids, unknown
    verdicts, a match twice); one bad row and nothing is stored. An empty verdict means not reviewed."""
    rows = read_review_file(path)
    problems: list[str] = []
    parsed: list[tuple[int, int, str, str]] = []
    seen: dict[int, int] = {}
    for number, row in rows:
        raw_id, raw_verdict = row.get("match_id", ""), row.get("verdict", "")
        match_id = _match_id(raw_id)
        if match_id is None:
            problems.append(f"row {number}: match_id {raw_id!r} is not a match id")
            continue
        if match_id in seen:
            problems.append(f"row {number}: match {match_id} again (first in row {seen[match_id]})")
            continue
        seen[match_id] = number
        verdict = raw_verdict.strip().lower()
        if verdict and verdict not in VERDICTS:
            problems.append(
                f"row {number}: unknown verdict {raw_verdict.strip()!r} "
                f"(use {', '.join(VERDICTS)} or leave it empty)"
            )
            continue
        parsed.append((number, match_id, verdict, row.get("note", "").strip()))
    with session_scope(sessions) as session:
        known = existing_match_ids(session, [m for _, m, _, _ in parsed])
        problems += [f"row {n}: no match with id {m}" for n, m, _, _ in parsed if m not in known]
        if problems:
            raise ReviewImportError(path, sorted(problems, key=lambda p: int(p.split()[1].rstrip(":"))))
        reviews = [ReviewInput(m, v, note or None) for _, m, v, note in parsed if v]
        add_reviews(session, reviews, reviewer, via="import")
    counts = dict.fromkeys(VERDICTS, 0)
    for review in reviews:
        counts[review.verdict] += 1
    return ImportResult(path, len(rows), len(reviews), len(parsed) - len(reviews), counts)


def set_review(
    sessions: sessionmaker[Session], match_id: int, verdict: str, reviewer: str, note: str | None = None
) -> int:
    with session_scope(sessions) as session:
        return set_verdict(session, match_id, verdict, reviewer, note, via="set")


# --- statistics and calibration --------------------------------------------------------------------


def review_stats(sessions: sessionmaker[Session], claim: str | None = None) -> list[dict[str, Any]]:
    """Rows of the claim_review_stats view (claims with matches), most matches first."""
    from db.research import ViewQuery, view_rows
    from db.views import get_view

    with sessions() as session:
        rows = view_rows(session, ViewQuery(get_view("claim_review_stats"), claim=claim))
    return sorted((r for r in rows if r["matches"]), key=lambda r: (-r["matches"], r["claim_key"]))


@dataclass(frozen=True)
class ReviewCalibration:
    reviews: int
    min_reviews: int
    fits: dict[int, ClaimFit]  # fitted on every review (what --write stores)
    held_out_fits: dict[int, ClaimFit]  # fitted without the held-out third
    held_out: HeldOut
    claim_keys: dict[int, str]
    written: bool


def calibrate_from_reviews(
    sessions: sessionmaker[Session], min_reviews: int, write: bool = False
) -> ReviewCalibration:
    """Per-claim thresholds from the verdicts: measured on a held-out third of the reviews, then fitted
    on all of them; ``write`` stores them in claim_thresholds (the match stage applies them)."""
    from sqlalchemy import select

    from db.models import Claim

    with sessions() as session:
        reviewed = [Reviewed(r.match_id, r.claim_id, r.score, r.correct) for r in reviewed_matches(session)]
        keys = dict(session.execute(select(Claim.id, Claim.key)).all())
    if not reviewed:
        raise ReviewError("no reviewed matches yet: review some first (claimwatch review)")
    held_out_fits, held_out = held_out_evaluation(reviewed, min_reviews)
    fits = fit_thresholds(reviewed, min_reviews)
    if write:
        with session_scope(sessions) as session:
            store_claim_thresholds(
                session,
                {
                    f.claim_id: (f.threshold, f.reviews, f.precision)
                    for f in fits.values()
                    if f.threshold is not None
                },
            )
    return ReviewCalibration(len(reviewed), min_reviews, fits, held_out_fits, held_out, keys, write)
