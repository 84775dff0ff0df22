"""Loaders of the CLEF CheckThat! 2A benchmark (English): tweets, verified claims ("vclaims"), qrels.

The data stay where they are (default ``<repo>/../shared/corpora/checkthat-2a``, see its README):

* 2021 (``ct2021-en/``): train/dev/test queries in one file each; one qrels file for all splits,
  split by the queries' ids; 13,825 vclaims in one TSV with a title column.
* 2022 (``ct2022-en/``): train and dev share one queries file (split by their qrels), dev-test
  (= 2021 test) and test have their own; 14,231 vclaims as JSON files inside ``vclaims_json.zip``,
  read in place. Test and dev-test reuse the same tweet ids for different tweets, so queries and
  qrels are only ever loaded for one split at a time (``load_all_queries`` keys by (split, id)).

Every file is read with ``csv.reader`` (tab-delimited): some fields use CSV quoting.
"""

from __future__ import annotations

import csv
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.claims import Claim, ClaimsFileError, first_duplicate_id

logger = logging.getLogger(__name__)

EDITIONS = ("2021", "2022")
SPLITS: dict[str, tuple[str, ...]] = {
    "2021": ("train", "dev", "test"),
    "2022": ("train", "dev", "dev-test", "test"),
}
HEADER_IDS = frozenset({"tweet_id", "iclaim_id", "vclaim_id"})

# 2021: queries per split; qrels of all splits in one file.
QUERIES_2021 = {
    "train": "ct2021-en/EN_train_queries.tsv",
    "dev": "ct2021-en/EN_dev_queries.tsv",
    "test": "ct2021-en/EN_test_queries.tsv",
}
QRELS_2021 = "ct2021-en/EN-all_QRELs.txt"
VCLAIMS_2021 = "ct2021-en/CT2021-Task2A-EN-Verified_Claims.txt"
# 2022: (queries file, qrels file) per split; train and dev share a queries file.
FILES_2022 = {
    "train": (
        "ct2022-en/CT2022-Task2A-EN-Train-Dev_Queries.tsv",
        "ct2022-en/CT2022-Task2A-EN-Train_QRELs.tsv",
    ),
    "dev": ("ct2022-en/CT2022-Task2A-EN-Train-Dev_Queries.tsv", "ct2022-en/CT2022-Task2A-EN-Dev_QRELs.tsv"),
    "dev-test": (
        "ct2022-en/CT2022-Task2A-EN-Dev-Test_Queries.tsv",
        "ct2022-en/CT2022-Task2A-EN-Dev-Test_QRELs.tsv",
    ),
    "test": (
        "ct2022-en/test/CT2022-Task2A-EN-Test_Queries.tsv",
        "ct2022-en/test/CT2022-Task2A-EN-Test_Qrels_gold.tsv",
    ),
}
VCLAIMS_2022 = "ct2022-en/vclaims_json.zip"


class CheckThatDataError(ClaimsFileError):
    """The CheckThat! data are missing or not as expected; the message names the file."""


@dataclass(frozen=True)
class CheckThatSplit:
    edition: str
    split: str
    queries: list[tuple[str, str]]
    qrels: dict[str, set[str]]
    vclaims: list[Claim]


def check_edition_split(edition: str | int, split: str | None = None) -> str:
    name = str(edition)
    if name not in SPLITS:
        raise CheckThatDataError(f"unknown CheckThat! edition {name!r} (expected {' or '.join(EDITIONS)})")
    if split is not None and split not in SPLITS[name]:
        raise CheckThatDataError(
            f"edition {name} has no split {split!r} (expected one of: {', '.join(SPLITS[name])})"
        )
    return name


def data_file(data_dir: Path | str, relative: str) -> Path:
    root = Path(data_dir)
    if not root.is_dir():
        raise CheckThatDataError(
            f"{root}: no such directory (the CheckThat! 2A data: see --data and the corpora_dir setting)"
        )
    path = root / relative
    if not path.is_file():
        raise CheckThatDataError(f"{path}: no such file (is {root} the checkthat-2a directory?)")
    return path


def read_rows(path: Path, width: int) -> list[list[str]]:
    """Tab-separated rows of at least ``width`` fields (CSV quoting honoured), header skipped."""
    try:
        with path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.reader(stream, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CheckThatDataError(f"{path}: cannot read: {exc}") from None
    if rows and rows[0] and rows[0][0].strip() in HEADER_IDS:
        rows = rows[1:]
    rows = [row for row in rows if any(field.strip() for field in row)]
    for number, row in enumerate(rows, 1):
        if len(row) < width:
            raise CheckThatDataError(f"{path}: row {number} has {len(row)} fields, expected {width}")
    return rows


def read_queries(path: Path) -> list[tuple[str, str]]:
    return [(row[0].strip(), " ".join(row[1].split())) for row in read_rows(path, 2)]


def read_qrels(path: Path) -> dict[str, set[str]]:
    """``{query id: {relevant vclaim ids}}`` of a TREC qrels file (lines ``query 0 vclaim relevance``)."""
    qrels: dict[str, set[str]] = {}
    for row in read_rows(path, 4):
        try:
            relevant = int(row[3]) > 0
        except ValueError:
            raise CheckThatDataError(f"{path}: relevance {row[3]!r} is not an integer") from None
        if relevant:
            qrels.setdefault(row[0].strip(), set()).add(row[2].strip())
    return qrels


def load_queries(edition: str | int, split: str, data_dir: Path | str) -> list[tuple[str, str]]:
    """``(query id, tweet text)`` of one split, in file order."""
    edition = check_edition_split(edition, split)
    if edition == "2021":
        return read_queries(data_file(data_dir, QUERIES_2021[split]))
    queries_file, qrels_file = FILES_2022[split]
    queries = read_queries(data_file(data_dir, queries_file))
    if split in ("train", "dev"):  # one queries file for both: the split's qrels say which are its own
        wanted = read_qrels(data_file(data_dir, qrels_file))
        queries = [(ident, text) for ident, text in queries if ident in wanted]
    return queries


def load_qrels(edition: str | int, split: str, data_dir: Path | str) -> dict[str, set[str]]:
    """``{query id: {relevant vclaim ids}}`` of one split."""
    edition = check_edition_split(edition, split)
    if edition == "2022":
        return read_qrels(data_file(data_dir, FILES_2022[split][1]))
    ids = {ident for ident, _ in load_queries(edition, split, data_dir)}
    return {
        query: relevant
        for query, relevant in read_qrels(data_file(data_dir, QRELS_2021)).items()
        if query in ids
    }


def load_all_queries(edition: str | int, data_dir: Path | str) -> dict[tuple[str, str], str]:
    """Tweets of every split of an edition keyed by (split, query id): ids repeat across 2022 splits."""
    edition = check_edition_split(edition)
    return {
        (split, ident): text
        for split in SPLITS[edition]
        for ident, text in load_queries(edition, split, data_dir)
    }


def make_claim(edition: str, ident: str, text: str, title: str, where: str, subtitle: str = "") -> Claim:
    ident, text = ident.strip(), " ".join(text.split())
    if not ident or not text:
        raise CheckThatDataError(f"{where}: vclaim without id or text")
    extra = {"title": " ".join(title.split())}
    if subtitle.strip():
        extra["subtitle"] = " ".join(subtitle.split())
    return Claim(ident, text, claim_set=f"checkthat-{edition}", extra=extra)


def read_vclaims_tsv(path: Path, edition: str) -> list[Claim]:
    return [
        make_claim(edition, row[0], row[1], row[2] if len(row) > 2 else "", f"{path}: {row[0]}")
        for row in read_rows(path, 2)
    ]


def read_vclaims_zip(path: Path, edition: str) -> list[Claim]:
    claims = []
    try:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if not name.endswith(".json"):
                    continue
                where = f"{path}: {name}"
                try:
                    record = json.loads(archive.read(name).decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    raise CheckThatDataError(f"{where}: not JSON: {exc}") from None
                if not isinstance(record, dict):
                    raise CheckThatDataError(f"{where}: expected a JSON object")
                claims.append(
                    make_claim(
                        edition,
                        str(record.get("vclaim_id") or ""),
                        str(record.get("vclaim") or ""),
                        str(record.get("title") or ""),
                        where,
                        str(record.get("subtitle") or ""),
                    )
                )
    except (OSError, zipfile.BadZipFile) as exc:
        raise CheckThatDataError(f"{path}: cannot read: {exc}") from None
    return claims


def load_vclaims(edition: str | int, data_dir: Path | str) -> list[Claim]:
    """The edition's verified claims: id = vclaim id, text = vclaim, ``extra["title"]`` = its title
    (and, 2022, ``extra["subtitle"]`` its subtitle, when it has one)."""
    edition = check_edition_split(edition)
    if edition == "2021":
        claims = read_vclaims_tsv(data_file(data_dir, VCLAIMS_2021), edition)
    else:
        claims = read_vclaims_zip(data_file(data_dir, VCLAIMS_2022), edition)
    duplicate = first_duplicate_id(claims)
    if duplicate is not None:
        raise CheckThatDataError(f"duplicate vclaim id {duplicate!r} in the {edition} vclaims")
    logger.debug("loaded %d CheckThat! %s vclaims", len(claims), edition)
    return claims


def load_split(edition: str | int, split: str, data_dir: Path | str) -> CheckThatSplit:
    """Queries, qrels and vclaims of one split; checks that every qrels id is a query and a vclaim."""
    edition = check_edition_split(edition, split)
    queries = load_queries(edition, split, data_dir)
    qrels = load_qrels(edition, split, data_dir)
    vclaims = load_vclaims(edition, data_dir)
    query_ids = {ident for ident, _ in queries}
    vclaim_ids = {claim.id for claim in vclaims}
    unknown_queries = sorted(set(qrels) - query_ids)
    unknown_claims = sorted({v for relevant in qrels.values() for v in relevant} - vclaim_ids)
    if unknown_queries or unknown_claims:
        raise CheckThatDataError(
            f"CheckThat! {edition} {split}: qrels name {len(unknown_queries)} unknown queries "
            f"and {len(unknown_claims)} unknown vclaims (e.g. {(unknown_queries + unknown_claims)[0]})"
        )
    unjudged = query_ids - set(qrels)
    if unjudged:
        logger.warning("CheckThat! %s %s: %d queries without qrels", edition, split, len(unjudged))
    return CheckThatSplit(edition, split, queries, qrels, vclaims)
