"""Fact-checkers' claims: schema.org ClaimReview as claimwatch claims.

Fact-checkers publish each review as ClaimReview JSON-LD in the review page, and Google's Fact Check
Tools API (``claims:search``) returns the reviews it has indexed. ``claimwatch claims load`` reads
these shapes (detected by content, whatever the file name):

* one ClaimReview object, or a JSON list of them (JSONL: one per line);
* a JSON-LD document whose ``@graph`` holds ClaimReview nodes (a page's structured data), or an HTML
  page with such ``<script type="application/ld+json">`` blocks;
* a ``claims:search`` response: ``{"claims": [{"text", "claimant", "claimDate",
  "claimReview": [{"publisher", "url", "title", "reviewDate", "textualRating", "languageCode"}]}]}``.

Each review becomes one claim: ``claimReviewed`` (or the API's ``text``) is its text, and its id is
derived from the review's address, so loading the same reviews again updates them instead of adding
copies. The review's verdict (``reviewRating.alternateName`` / ``textualRating``), claimant
(``itemReviewed.author.name`` / ``claimant``), address, publisher, date (``datePublished`` /
``reviewDate``) and language (``inLanguage`` / ``languageCode``) go into the claim's ``extra``; the
database keeps them in columns of their own (db/queries.py ``REVIEW_FIELDS``).

Any other file is read by pipelines/claims.py (YAML or JSONL claims).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.claims import MAX_CLAIM_CHARS, Claim, ClaimsFileError, load_claims, read_text
from pipelines.urls import canonicalize_url

logger = logging.getLogger(__name__)

_LD_JSON_SCRIPT = re.compile(
    r"<script[^>]*type\s*=\s*[\"']application/ld\+json[\"'][^>]*>(.*?)</script>", re.IGNORECASE | re.DOTALL
)


@dataclass
class ClaimReviewFile:
    """The claims read from a ClaimReview file and the reviews left out (with why)."""

    claims: list[Claim]
    skipped: list[str] = field(default_factory=list)


def review_id(url: str) -> str:
    """The stable claim id of a review: ``cr-`` and 16 hex digits of the SHA-256 of its canonical
    address (the same review under a tracking parameter or another fragment keeps its id)."""
    canonical = canonicalize_url(url) or url.strip()
    return "cr-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# --- detection -----------------------------------------------------------------------------------


def _types(node: dict[str, Any]) -> set[str]:
    kinds = node.get("@type")
    values = kinds if isinstance(kinds, list) else [kinds]
    return {str(v).rsplit("/", 1)[-1].rsplit(":", 1)[-1] for v in values if v}


def _is_api_response(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("claims"), list)
        and any(isinstance(c, dict) and "claimReview" in c for c in data["claims"])
    )


def _review_nodes(data: Any) -> Iterator[dict[str, Any]]:
    """Every ClaimReview node in a JSON-LD value (objects, lists, ``@graph``s), in document order."""
    if isinstance(data, list):
        for item in data:
            yield from _review_nodes(item)
    elif isinstance(data, dict):
        if "ClaimReview" in _types(data):
            yield data
        elif "@graph" in data:
            yield from _review_nodes(data["@graph"])


def _json_values(content: str) -> list[Any] | None:
    """The JSON value(s) of ``content``: one document, JSONL lines, or the ld+json blocks of an HTML
    page; None when it is none of these."""
    stripped = content.lstrip()
    if stripped.startswith("<"):
        values = []
        for block in _LD_JSON_SCRIPT.findall(content):
            try:
                values.append(json.loads(block))
            except json.JSONDecodeError:
                continue
        return values
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return [json.loads(content)]
    except json.JSONDecodeError:
        pass
    values = []
    for line in content.splitlines():
        if line.strip():
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError:
                return None
    return values


def looks_like_claimreview(content: str) -> bool:
    """Whether ``content`` holds ClaimReview JSON(-LD) or a Fact Check Tools response."""
    values = _json_values(content)
    if not values:
        return False
    return any(_is_api_response(v) or next(_review_nodes(v), None) is not None for v in values)


# --- reading -------------------------------------------------------------------------------------


def _name(value: Any) -> str | None:
    """The name of a schema.org Person/Organization (or a list of them, or a plain string)."""
    if isinstance(value, list):
        names = [n for n in (_name(v) for v in value) if n]
        return ", ".join(names) or None
    if isinstance(value, dict):
        value = value.get("name") or value.get("alternateName") or value.get("site")
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def _language(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("alternateName") or value.get("name")
    if isinstance(value, str) and value.strip():
        return value.strip()[:35]
    return None


def _iso_date(value: Any) -> str | None:
    """A schema.org Date/DateTime as an ISO UTC datetime string; None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat()


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def _make_claim(
    text: str | None, url: str | None, metadata: dict[str, Any], claim_set: str, where: str
) -> Claim | str:
    """The claim of one review, or why it was left out."""
    if not url:
        return f"{where}: review has no url"
    if not text:
        return f"{where}: review {url} has no claim text (claimReviewed)"
    if len(text) > MAX_CLAIM_CHARS:
        return f"{where}: claim of {url} is longer than {MAX_CLAIM_CHARS} characters"
    extra = {key: value for key, value in {"review_url": url, **metadata}.items() if value is not None}
    return Claim(review_id(url), text, None, claim_set, extra)


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _from_schema(node: dict[str, Any], claim_set: str, where: str) -> Claim | str:
    item = _object(node.get("itemReviewed"))
    rating = _object(node.get("reviewRating"))
    url = node.get("url") or (node.get("@id") if str(node.get("@id", "")).startswith("http") else None)
    metadata = {
        "verdict": _text(rating.get("alternateName")) or _text(rating.get("name")),
        "claimant": _name(item.get("author")),
        "reviewer": _name(node.get("author")) or _name(node.get("publisher")),
        "reviewed_at": _iso_date(node.get("datePublished")),
        "language": _language(node.get("inLanguage")) or _language(item.get("inLanguage")),
        "claim_date": _iso_date(item.get("datePublished")),
        "review_title": _text(node.get("headline")) or _text(node.get("name")),
        "source_format": "schema.org ClaimReview",
    }
    text = _text(node.get("claimReviewed")) or _text(item.get("name"))
    return _make_claim(text, _text(url), metadata, claim_set, where)


def _from_api(claim: dict[str, Any], review: dict[str, Any], claim_set: str, where: str) -> Claim | str:
    metadata = {
        "verdict": _text(review.get("textualRating")),
        "claimant": _text(claim.get("claimant")),
        "reviewer": _name(review.get("publisher")),
        "reviewed_at": _iso_date(review.get("reviewDate")),
        "language": _language(review.get("languageCode")),
        "claim_date": _iso_date(claim.get("claimDate")),
        "review_title": _text(review.get("title")),
        "source_format": "Fact Check Tools claims:search",
    }
    return _make_claim(_text(claim.get("text")), _text(review.get("url")), metadata, claim_set, where)


def parse_claimreview(content: str, path: Path | str, claim_set: str | None = None) -> ClaimReviewFile:
    """The claims of a ClaimReview file (see the module docstring); a review seen twice (same id)
    counts once, the first time. ClaimsFileError when the file holds no usable review."""
    path = Path(path)
    name = claim_set or path.stem
    values = _json_values(content)
    if not values:
        raise ClaimsFileError(f"{path}: no ClaimReview JSON or JSON-LD found")
    out = ClaimReviewFile(claims=[])
    seen: set[str] = set()
    for number, value in enumerate(values):
        if _is_api_response(value):
            for c, claim in enumerate(value["claims"]):
                if not isinstance(claim, dict):
                    out.skipped.append(f"{path}: claims[{c}] is not an object")
                    continue
                found = claim.get("claimReview")
                reviews: list[Any] = found if isinstance(found, list) else []
                for r, review in enumerate(reviews):
                    where = f"{path}: claims[{c}].claimReview[{r}]"
                    made = (
                        _from_api(claim, review, name, where)
                        if isinstance(review, dict)
                        else f"{where}: not an object"
                    )
                    _keep(out, made, seen)
        else:
            for r, node in enumerate(_review_nodes(value)):
                _keep(out, _from_schema(node, name, f"{path}: value {number + 1}, review {r + 1}"), seen)
    if not out.claims:
        detail = f" ({out.skipped[0]})" if out.skipped else ""
        raise ClaimsFileError(f"{path}: no usable ClaimReview in the file{detail}")
    for reason in out.skipped:
        logger.warning("left out: %s", reason)
    return out


def _keep(out: ClaimReviewFile, made: Claim | str, seen: set[str]) -> None:
    if isinstance(made, str):
        out.skipped.append(made)
    elif made.id not in seen:
        seen.add(made.id)
        out.claims.append(made)


def load_claim_file(path: Path | str) -> list[Claim]:
    """The claims of any file ``claimwatch claims load`` accepts: ClaimReview JSON(-LD) or a Fact
    Check Tools response (this module), else YAML or JSONL claims (pipelines/claims.py)."""
    path = Path(path)
    content = read_text(path)
    if looks_like_claimreview(content):
        return parse_claimreview(content, path).claims
    return load_claims(path)
