"""Guards for XML bodies fetched from the open web, applied before any parser sees them."""

from __future__ import annotations

import re

# An internal DTD subset may declare entities that expand exponentially ("billion laughs"). feedparser
# only strips declarations at the start of a line, expat expands up to its amplification limit
# (megabytes, seconds of CPU in the reactor thread), and how lxml recovers differs between libxml2
# versions: feeds and sitemaps have no use for them.
_DTD_SUBSET_START = re.compile(rb"<!DOCTYPE[^\[>]{0,1000}\[")
_DTD_SUBSET_END = re.compile(rb"\]\s*>")
_PROLOG_BYTES = 4096


def without_internal_dtd(body: bytes) -> tuple[bytes, bool]:
    """The document without an internal DTD subset (looked for in the prolog), and whether it had one."""
    start = _DTD_SUBSET_START.search(body, 0, _PROLOG_BYTES)
    end = _DTD_SUBSET_END.search(body, start.end()) if start else None
    if start is None or end is None:
        return body, False
    return body[: start.start()] + body[end.end() :], True


def declares_entities(body: bytes) -> bool:
    """Whether the prolog opens an internal DTD subset that declares entities."""
    start = _DTD_SUBSET_START.search(body, 0, _PROLOG_BYTES)
    return start is not None and b"<!ENTITY" in body[start.end() : start.end() + 1_000_000]
