"""Validate the labels of the real-commentary dev/test set (crawler/data/labelled/real_commentary.jsonl).

    .venv/bin/python scripts/check_real_commentary.py [LABELS] [--claims FILE] [--texts FILE ...]

The labels file holds no third-party text: one JSON object per passage with
``id`` (first 12 hex digits of the SHA-1 of the passage text, UTF-8), ``url``, ``outlet``,
``language``, ``claim_id``, ``target_claim``, ``kind``, ``split`` and ``query`` (the search that found
the page). It checks

* the schema of every line and that ``id`` is unique;
* that ``claim_id`` and ``target_claim`` are ids of the claims file (default: the seed claims);
* that the kind and the claim fields agree: ``restates`` and ``attributes`` are positives
  (``claim_id`` = ``target_claim``, a claim); ``partial`` and ``contradicts`` have no ``claim_id``
  but name the claim they fall short of in ``target_claim``; ``topic-only`` has no ``claim_id`` (its
  ``target_claim`` is the nearest claim, or null); ``off-topic`` has no ``claim_id``;
* the split rule: ``test`` if int(sha1(url).hexdigest(), 16) % 100 >= 65 else ``dev`` — so a page
  never spans both splits;
* with ``--texts`` (the local, uncommitted text files ``real_dev.jsonl``/``real_test.jsonl``, lines
  ``{"passage", "url", "claim_id", "kind", ...}``): that every labelled id has a text whose hash is
  that id, from the same url, with the same kind and claim_id.

It prints counts per language x kind x split and exits 1 if anything is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlparse

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LABELS = REPO_ROOT / "crawler" / "data" / "labelled" / "real_commentary.jsonl"
DEFAULT_CLAIMS = REPO_ROOT / "crawler" / "data" / "seed_claims.yaml"

KINDS = ("restates", "attributes", "partial", "contradicts", "topic-only", "off-topic")
POSITIVE_KINDS = ("restates", "attributes")
FIELDS = ("id", "url", "outlet", "language", "claim_id", "target_claim", "kind", "split", "query")
TEST_CUT = 65


def passage_id(text: str) -> str:
    """The id of a passage: the first 12 hex digits of the SHA-1 of its UTF-8 text."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def split_for(url: str) -> str:
    """The split of a page: test for the top 35 of 100 SHA-1 buckets of its url, dev otherwise."""
    return "test" if int(hashlib.sha1(url.encode("utf-8")).hexdigest(), 16) % 100 >= TEST_CUT else "dev"


def outlet_for(url: str) -> str:
    """The outlet of a url: its host, lower-case, without a leading ``www.``."""
    host = urlparse(url).netloc.lower()
    return host[4:] if host.startswith("www.") else host


def load_claim_ids(path: Path) -> set[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {str(claim["id"]) for claim in data["claims"]}


def read_jsonl(path: Path) -> list[tuple[int, object]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                rows.append((number, error))
    return rows


def check_row(row: object, claim_ids: set[str]) -> list[str]:
    """The problems of one label record (empty if it is valid)."""
    if not isinstance(row, dict):
        return ["not a JSON object"]
    problems = []
    missing = [field for field in FIELDS if field not in row]
    if missing:
        return [f"missing field(s) {', '.join(missing)}"]
    extra = sorted(set(row) - set(FIELDS))
    if extra:
        problems.append(f"unknown field(s) {', '.join(extra)}")
    if not isinstance(row["id"], str) or not re.fullmatch(r"[0-9a-f]{12}", row["id"]):
        problems.append("id must be 12 lower-case hex digits")
    url = row["url"]
    if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        return [*problems, "url must be an http(s) address"]
    if row["outlet"] != outlet_for(url):
        problems.append(f"outlet {row['outlet']!r} is not the url's host {outlet_for(url)!r}")
    if not isinstance(row["language"], str) or not re.fullmatch(r"[a-z]{2}", row["language"]):
        problems.append("language must be an ISO 639-1 code")
    kind = row["kind"]
    if kind not in KINDS:
        return [*problems, f"kind {kind!r} is not one of {', '.join(KINDS)}"]
    for field in ("claim_id", "target_claim"):
        value = row[field]
        if value is not None and value not in claim_ids:
            problems.append(f"{field} {value!r} is not a claim id of the claims file")
    claim, target = row["claim_id"], row["target_claim"]
    if kind in POSITIVE_KINDS:
        if claim is None or target != claim:
            problems.append(f"{kind} needs claim_id = target_claim = the claim")
    elif claim is not None:
        problems.append(f"{kind} must have claim_id null (the claim goes in target_claim)")
    elif kind in ("partial", "contradicts") and target is None:
        problems.append(f"{kind} needs target_claim (the claim it falls short of)")
    elif kind == "off-topic" and target is not None:
        problems.append("off-topic must have target_claim null")
    if row["split"] not in ("dev", "test"):
        problems.append("split must be dev or test")
    elif row["split"] != split_for(url):
        problems.append(f"split {row['split']} breaks the rule (the url's split is {split_for(url)})")
    if not isinstance(row["query"], str) or not row["query"].strip():
        problems.append("query must be the search that found the page")
    return problems


def check_labels(rows: Iterable[tuple[int, object]], claim_ids: set[str]) -> list[str]:
    """Problems of a whole labels file, as ``line N: problem`` strings."""
    problems, seen = [], {}
    for number, row in rows:
        if isinstance(row, Exception):
            problems.append(f"line {number}: not JSON ({row})")
            continue
        problems.extend(f"line {number}: {problem}" for problem in check_row(row, claim_ids))
        if isinstance(row, dict) and isinstance(row.get("id"), str):
            if row["id"] in seen:
                problems.append(f"line {number}: id {row['id']} repeats line {seen[row['id']]}")
            seen.setdefault(row["id"], number)
    return problems


def check_texts(labels: Sequence[dict], texts: Sequence[dict]) -> list[str]:
    """Problems between labels and local text records: each label needs the text it hashes."""
    by_id = {}
    for text in texts:
        passage = text.get("passage", text.get("text"))
        if isinstance(passage, str):
            by_id[passage_id(passage)] = text
    problems = []
    for label in labels:
        text = by_id.get(label["id"])
        if text is None:
            problems.append(f"{label['id']}: no local text hashes to this id ({label['url']})")
            continue
        for field in ("url", "kind", "claim_id"):
            if field in text and text[field] != label[field]:
                problems.append(
                    f"{label['id']}: {field} {text[field]!r} in the text file, {label[field]!r} here"
                )
    return problems


def count_table(labels: Sequence[dict]) -> str:
    """Counts per language x kind x split, then totals: passages, pages, positives."""
    cells = Counter((row["language"], row["kind"], row["split"]) for row in labels)
    languages = sorted({row["language"] for row in labels})
    lines = [f"{'language':8} {'kind':12} {'dev':>5} {'test':>5}"]
    for language in languages:
        for kind in KINDS:
            dev, test = cells[(language, kind, "dev")], cells[(language, kind, "test")]
            if dev or test:
                lines.append(f"{language:8} {kind:12} {dev:5d} {test:5d}")
    for split in ("dev", "test"):
        rows = [row for row in labels if row["split"] == split]
        positives = sum(row["kind"] in POSITIVE_KINDS for row in rows)
        pages = len({row["url"] for row in rows})
        lines.append(f"{split}: {len(rows)} passages from {pages} pages, {positives} positives")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels", nargs="?", type=Path, default=DEFAULT_LABELS, help="the labels file")
    parser.add_argument("--claims", type=Path, default=DEFAULT_CLAIMS, help="claims file (ids)")
    parser.add_argument(
        "--texts", type=Path, nargs="+", default=[], help="local text files to check the ids against"
    )
    args = parser.parse_args(argv)
    rows = read_jsonl(args.labels)
    problems = check_labels(rows, load_claim_ids(args.claims))
    labels = [row for _, row in rows if isinstance(row, dict) and all(field in row for field in FIELDS)]
    if args.texts:
        texts = [row for path in args.texts for _, row in read_jsonl(path) if isinstance(row, dict)]
        problems.extend(check_texts(labels, texts))
    if labels:
        print(count_table(labels))
    for problem in problems:
        print(f"ERROR {problem}", file=sys.stderr)
    print(f"{len(labels)} labels, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
