"""The crawl's document record: what one fetched page contributes to the ``documents`` table."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipelines.status import MatchStatus

# filled in by the crawl, not stored as a column (the store resolves it to source_id)
_NOT_COLUMNS = frozenset({"source_key"})


@dataclass(kw_only=True, slots=True)
class DocumentRecord:
    """One fetched page: an article, an irrelevant page or a failure. Columns the store derives
    (SimHash bands, duplicate links, fetch attempts) are not part of it."""

    url: str
    status: str
    match_status: str = MatchStatus.SKIPPED
    final_url: str | None = None
    source_key: str | None = None
    source_id: int | None = None
    crawl_run_id: int | None = None
    discovered_via: str | None = None
    fetched_at: datetime | None = None
    http_status: int | None = None
    content_type: str | None = None
    reason: str | None = None
    retryable: bool = False
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    sitename: str | None = None
    outlet: str | None = None
    language: str | None = None
    description: str | None = None
    text: str | None = None
    text_chars: int | None = None
    relevance_terms: str | None = None
    content_hash: str | None = None
    simhash: int | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DocumentRecord:
        """A record from a dict of its fields; unknown keys are an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown document record field(s): {', '.join(unknown)}")
        return cls(**values)

    def columns(self) -> dict[str, Any]:
        """The ``documents`` columns this record sets (unset ones keep their database defaults)."""
        return {
            f.name: value
            for f in dataclasses.fields(self)
            if f.name not in _NOT_COLUMNS and (value := getattr(self, f.name)) is not None
        }
