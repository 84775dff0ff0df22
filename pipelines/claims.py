"""Claims files: the assertions claimwatch tracks.

Two formats, chosen by content rather than file name:

* YAML: a mapping with a ``claims:`` list of ``{id, text, ...}`` and an optional top-level
  ``claim_set:`` name (default: the file's stem);
* JSONL: one ``{"id": ..., "text": ..., ...}`` object per line.

Besides ``id`` and ``text``, a claim may carry ``paragraph`` (where it comes from in its source) and
``claim_set``; every other field is kept in ``extra``. Ids are strings (numbers are converted) and must
be unique within a file.

Fields the matcher reads (pipelines/matcher.py), all optional:

* ``language``: the language of ``text`` (ISO 639-1; default ``en``);
* ``translations``: ``{language: text}``, the claim in other languages (e.g. ``ru``, ``uk``, ``az``,
  ``tr``, ``hy``, ``ka``): a passage is compared with the claim in its own language first;
* ``examples`` / ``counter_examples``: lists of passages (any language) that restate the claim, and
  that share its topic without asserting it (partial, contradicting, topic only): the verifier
  compares a passage with both.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RESERVED_FIELDS = {"id", "text", "paragraph", "claim_set"}
MAX_CLAIM_CHARS = 2000


class ClaimsFileError(ValueError):
    """A claims (or input) file that cannot be read; the message names the file and the place."""


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    paragraph: int | None = None
    claim_set: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)


def default_claims_path() -> Path:
    """The shipped claims of the seed article."""
    return Path(__file__).resolve().parent.parent / "crawler" / "data" / "seed_claims.yaml"


def parse_claim(record: Any, where: str, default_set: str) -> Claim:
    if not isinstance(record, dict):
        raise ClaimsFileError(f"{where}: a claim must be a mapping with `id` and `text`")
    ident = record.get("id")
    if isinstance(ident, bool) or not isinstance(ident, str | int) or str(ident).strip() == "":
        raise ClaimsFileError(f"{where}: missing or invalid `id`")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ClaimsFileError(f"{where}: claim {ident!r} has no `text`")
    text = " ".join(text.split())
    if len(text) > MAX_CLAIM_CHARS:
        raise ClaimsFileError(f"{where}: claim {ident!r} is longer than {MAX_CLAIM_CHARS} characters")
    paragraph = record.get("paragraph")
    if paragraph is not None and (isinstance(paragraph, bool) or not isinstance(paragraph, int)):
        raise ClaimsFileError(f"{where}: claim {ident!r}: `paragraph` must be an integer")
    claim_set = record.get("claim_set", default_set)
    if not isinstance(claim_set, str) or not claim_set.strip():
        raise ClaimsFileError(f"{where}: claim {ident!r}: `claim_set` must be a non-empty string")
    extra = {key: value for key, value in record.items() if key not in RESERVED_FIELDS}
    check_matcher_fields(extra, f"{where}: claim {ident!r}")
    return Claim(str(ident).strip(), text, paragraph, claim_set.strip(), extra)


def check_matcher_fields(extra: dict[str, Any], where: str) -> None:
    """``translations`` must map language codes to texts; ``examples`` / ``counter_examples`` must be
    lists of texts."""
    translations = extra.get("translations")
    valid = isinstance(translations, dict) and all(
        isinstance(code, str) and isinstance(value, str) and value.strip()
        for code, value in translations.items()
    )
    if translations is not None and not valid:
        raise ClaimsFileError(f"{where}: `translations` must map language codes to texts")
    for name in ("examples", "counter_examples"):
        value = extra.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value)
        ):
            raise ClaimsFileError(f"{where}: `{name}` must be a list of texts")


def claim_language(claim: Claim) -> str:
    """The language of a claim's ``text`` (default English)."""
    value = claim.extra.get("language")
    return value.strip().lower() if isinstance(value, str) and value.strip() else "en"


def claim_translations(claim: Claim) -> dict[str, str]:
    """The claim's texts by language: its translations and its own text."""
    found = {
        str(code).strip().lower(): " ".join(str(value).split())
        for code, value in (claim.extra.get("translations") or {}).items()
        if isinstance(value, str) and value.strip()
    }
    found[claim_language(claim)] = claim.text
    return found


def claim_examples(claim: Claim, name: str = "examples") -> list[str]:
    """The claim's ``examples`` (or ``counter_examples``), whitespace-normalised."""
    value = claim.extra.get(name) or []
    return [" ".join(item.split()) for item in value if isinstance(item, str) and item.strip()]


def with_examples(claim: Claim, examples: Sequence[str], counter_examples: Sequence[str]) -> Claim:
    """The claim with more ``examples`` and ``counter_examples`` (e.g. a researcher's reviewed
    passages) after its own, each passage once."""
    extra = dict(claim.extra)
    for name, more in (("examples", examples), ("counter_examples", counter_examples)):
        merged = claim_examples(claim, name)
        for text in (" ".join(t.split()) for t in more):
            if text and text not in merged:
                merged.append(text)
        if merged:
            extra[name] = merged
    return dataclasses.replace(claim, extra=extra)


def read_text(path: Path) -> str:
    """A UTF-8 file's text; ClaimsFileError naming the file when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClaimsFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClaimsFileError(f"{path}: cannot read: {exc}") from None


def iter_jsonl(lines: Iterable[str], path: Path | str) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) of each non-blank JSONL line; ClaimsFileError at the first line
    that is not JSON."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ClaimsFileError(f"{path}:{number}: not JSON: {exc.msg}") from None


def first_duplicate_id(claims: Iterable[Claim]) -> str | None:
    seen: set[str] = set()
    for claim in claims:
        if claim.id in seen:
            return claim.id
        seen.add(claim.id)
    return None


def parse_jsonl(content: str, path: Path) -> list[Claim]:
    return [
        parse_claim(record, f"{path}:{number}", path.stem)
        for number, record in iter_jsonl(content.splitlines(), path)
    ]


def parse_yaml(content: str, path: Path) -> list[Claim]:
    import yaml

    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise ClaimsFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("claims"), list):
        raise ClaimsFileError(f"{path}: expected a top-level `claims:` list (or JSONL lines)")
    claim_set = document.get("claim_set", path.stem)
    if not isinstance(claim_set, str) or not claim_set.strip():
        raise ClaimsFileError(f"{path}: `claim_set` must be a non-empty string")
    return [
        parse_claim(record, f"{path}: claims[{number}]", claim_set)
        for number, record in enumerate(document["claims"])
    ]


def looks_like_jsonl(content: str) -> bool:
    first = next((line for line in content.splitlines() if line.strip()), "")
    return first.lstrip().startswith("{")


def load_claims(path: Path | str) -> list[Claim]:
    """Read a claims file; raises ClaimsFileError with the file and line on any problem."""
    path = Path(path)
    content = read_text(path)
    claims = parse_jsonl(content, path) if looks_like_jsonl(content) else parse_yaml(content, path)
    duplicate = first_duplicate_id(claims)
    if duplicate is not None:
        raise ClaimsFileError(f"{path}: duplicate claim id {duplicate!r}")
    logger.debug("loaded %d claims from %s", len(claims), path)
    return claims
