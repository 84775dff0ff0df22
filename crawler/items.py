"""Items the spiders yield: fetched pages (or their failures) and feed/sitemap fetch states."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PageItem:
    """A fetched article page, or a failed attempt to fetch one (``error`` set, ``body`` None)."""

    url: str
    source_key: str | None
    discovered_via: str
    final_url: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    body: bytes | None = None
    encoding: str | None = None
    error: str | None = None
    retryable: bool = False
    listed_title: str | None = None
    listed_published: str | None = None
    listed_language: str | None = None


@dataclass
class SourceStateItem:
    """The outcome of fetching a feed or sitemap: its HTTP validators for the next conditional GET."""

    source_key: str
    status: str
    ok: bool
    etag: str | None = None
    last_modified: str | None = None
    entries: int = 0
    new_entries: int = 0
