"""Crawl source lists: the shipped curated list, or a researcher's own YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipelines.urls import canonicalize_url

DEFAULT_SOURCES_FILE = Path(__file__).resolve().parents[1] / "data" / "sources.yaml"
SOURCE_KINDS = frozenset({"feed", "sitemap", "gdelt"})


class SourcesFileError(ValueError):
    """A sources file cannot be used."""


def load_sources(path: Path | None = None) -> list[dict[str, Any]]:
    """Read and validate a sources YAML file: a top-level ``sources:`` list of mappings with
    ``key``, ``name``, ``kind`` (feed, sitemap or gdelt), ``url`` (the GDELT query for gdelt),
    and optional ``language``, ``country``, ``perspective``, ``enabled``."""
    path = path or DEFAULT_SOURCES_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourcesFileError(f"{path}: {exc}") from None
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SourcesFileError(f"{path}: expected a top-level `sources:` list")
    seen: set[str] = set()
    sources = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: source #{number}"
        if not isinstance(entry, dict):
            raise SourcesFileError(f"{where}: expected a mapping")
        missing = [k for k in ("key", "kind", "url") if not entry.get(k)]
        if missing:
            raise SourcesFileError(f"{where}: missing {', '.join(missing)}")
        if entry["kind"] not in SOURCE_KINDS:
            raise SourcesFileError(f"{where}: kind must be one of {', '.join(sorted(SOURCE_KINDS))}")
        if entry["kind"] != "gdelt" and canonicalize_url(str(entry["url"])) is None:
            raise SourcesFileError(f"{where}: url {entry['url']!r} is not an http(s) URL")
        if entry["key"] in seen:
            raise SourcesFileError(f"{where}: duplicate key {entry['key']!r}")
        seen.add(entry["key"])
        sources.append({"name": entry["key"], "enabled": True, **entry})
    return sources
