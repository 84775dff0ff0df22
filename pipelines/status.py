"""The status values stored in the database, in one place (StrEnum: each member is its string)."""

from __future__ import annotations

from enum import StrEnum


class DocumentStatus(StrEnum):
    """documents.status: what the fetch of a page gave."""

    OK = "ok"  # a relevant article
    IRRELEVANT = "irrelevant"
    FAILED = "failed"


class MatchStatus(StrEnum):
    """documents.match_status: where a document is in the match stage."""

    SKIPPED = "skipped"  # nothing to match (failed or irrelevant page)
    PENDING = "pending"
    MATCHED = "matched"
    NO_MATCH = "no_match"
    NOT_SCORED = "not_scored"  # no passage could be scored (e.g. no text left after segmentation)
    DUPLICATE = "duplicate"


class RunStatus(StrEnum):
    """crawl_runs.status."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class DeliveryStatus(StrEnum):
    """deliveries.status: pending → sending → sent, or failed / unconfirmed."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
