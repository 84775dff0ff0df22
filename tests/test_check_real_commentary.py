"""The validator of the real-commentary labels (scripts/check_real_commentary.py), on passages written
for these tests (no third-party text), and on the shipped labels file."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location(
    "check_real_commentary", REPO_ROOT / "scripts" / "check_real_commentary.py"
)
checker = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(checker)

CLAIMS = REPO_ROOT / "crawler" / "data" / "seed_claims.yaml"

# Written for these tests; the urls are made up.
OWN_PASSAGES = [
    (
        "https://example.org/a/1",
        "The Urals raid was planned in advance, a Baku columnist insists: nobody dies by accident there.",
        "restates",
        "seed-01",
        "en",
    ),
    (
        "https://example.org/a/1",
        "Moscow says both men had heart trouble and that nobody meant them any harm.",
        "contradicts",
        "seed-01",
        "en",
    ),
    (
        "https://example.net/b/7",
        "Бакинский МИД назвал гибель двух братьев преднамеренным убийством на этнической почве.",
        "attributes",
        "seed-01",
        "ru",
    ),
    (
        "https://example.net/b/8",
        "Rusiya ilə Azərbaycan arasında münasibətlər son aylarda xeyli gərginləşib.",
        "topic-only",
        None,
        "az",
    ),
    ("https://example.com/c", "The recipe needs two eggs and a cup of flour.", "off-topic", None, "en"),
]


def label_for(url: str, text: str, kind: str, target: str | None, language: str) -> dict:
    positive = kind in checker.POSITIVE_KINDS
    return {
        "id": checker.passage_id(text),
        "url": url,
        "outlet": checker.outlet_for(url),
        "language": language,
        "claim_id": target if positive else None,
        "target_claim": target,
        "kind": kind,
        "split": checker.split_for(url),
        "query": "made-up query",
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    labels = [label_for(*passage) for passage in OWN_PASSAGES]
    texts = [
        {"passage": text, "url": url, "kind": kind, "claim_id": label["claim_id"], "language": language}
        for (url, text, kind, _, language), label in zip(OWN_PASSAGES, labels, strict=True)
    ]
    return (
        write_jsonl(tmp_path / "labels.jsonl", labels),
        write_jsonl(tmp_path / "texts.jsonl", texts),
        labels,
    )


def test_valid_labels_and_texts_pass(files, capsys) -> None:
    labels_path, texts_path, _ = files
    assert checker.main([str(labels_path), "--claims", str(CLAIMS), "--texts", str(texts_path)]) == 0
    out = capsys.readouterr().out
    assert "5 labels, 0 problem(s)" in out
    assert "ru       attributes" in out


def test_split_rule_is_by_url_and_stable() -> None:
    # every passage of a page gets the page's split; the cut is at 65 of 100 buckets
    splits = [checker.split_for(f"https://example.org/page/{n}") for n in range(400)]
    assert set(splits) == {"dev", "test"}
    assert 0.25 < splits.count("test") / len(splits) < 0.45
    assert checker.split_for("https://example.org/page/3") == checker.split_for("https://example.org/page/3")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"split": "other"}, "split must be dev or test"),
        ({"claim_id": "seed-99", "target_claim": "seed-99"}, "is not a claim id"),
        ({"kind": "paraphrase"}, "is not one of"),
        ({"claim_id": None}, "restates needs claim_id"),
        ({"outlet": "elsewhere.org"}, "is not the url's host"),
        ({"id": "XYZ"}, "12 lower-case hex"),
        ({"language": "english"}, "ISO 639-1"),
    ],
)
def test_broken_label_is_reported(files, change, message) -> None:
    _, _, labels = files
    broken = {**labels[0], **change}
    assert any(message in problem for problem in checker.check_row(broken, checker.load_claim_ids(CLAIMS)))


def test_wrong_split_and_positive_claim_on_negative(files) -> None:
    _, _, labels = files
    claim_ids = checker.load_claim_ids(CLAIMS)
    flipped = {**labels[0], "split": "test" if labels[0]["split"] == "dev" else "dev"}
    assert any("breaks the rule" in problem for problem in checker.check_row(flipped, claim_ids))
    negative = {**labels[1], "claim_id": "seed-01"}
    assert any("claim_id null" in problem for problem in checker.check_row(negative, claim_ids))
    partial = {**labels[3], "kind": "partial", "target_claim": None}
    assert any("needs target_claim" in problem for problem in checker.check_row(partial, claim_ids))


def test_duplicate_ids_and_missing_texts(files, tmp_path, capsys) -> None:
    labels_path, _, labels = files
    claim_ids = checker.load_claim_ids(CLAIMS)
    problems = checker.check_labels(list(enumerate([labels[0], labels[0]], 1)), claim_ids)
    assert problems == [f"line 2: id {labels[0]['id']} repeats line 1"]
    # a text edited after labelling no longer hashes to its id
    edited = [{"passage": OWN_PASSAGES[0][1] + " (edited)", "url": OWN_PASSAGES[0][0]}]
    texts_path = write_jsonl(tmp_path / "edited.jsonl", edited)
    assert checker.main([str(labels_path), "--claims", str(CLAIMS), "--texts", str(texts_path)]) == 1
    assert "no local text hashes to this id" in capsys.readouterr().err


def test_text_disagreeing_with_label_is_reported(files) -> None:
    _, _, labels = files
    texts = [
        {"passage": OWN_PASSAGES[2][1], "url": OWN_PASSAGES[2][0], "kind": "restates", "claim_id": "seed-01"}
    ]
    problems = checker.check_texts([labels[2]], texts)
    assert problems == [f"{labels[2]['id']}: kind 'restates' in the text file, 'attributes' here"]


def test_shipped_labels_file_is_valid(capsys) -> None:
    assert checker.main([str(checker.DEFAULT_LABELS)]) == 0
    assert "0 problem(s)" in capsys.readouterr().out


WRITTEN = {
    split: REPO_ROOT / "crawler" / "data" / "labelled" / f"written_{split}.jsonl" for split in ("dev", "test")
}


def test_written_sets_are_valid_and_disjoint() -> None:
    claim_ids = checker.load_claim_ids(CLAIMS)
    texts = {}
    for split, path in WRITTEN.items():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for row in rows:
            assert row["kind"] in ("restates", "hard-negative", "on-topic", "off-topic"), row
            assert (row["claim_id"] is not None) == (row["kind"] == "restates"), row
            assert row["claim_id"] is None or row["claim_id"] in claim_ids, row
            assert row.get("near") is None or row["near"] in claim_ids, row
        texts[split] = {row["passage"] for row in rows}
        assert len(texts[split]) == len(rows), f"{path.name} repeats a passage"
        restates = Counter(row["language"] for row in rows if row["kind"] == "restates")
        # the language groups: Russian+Ukrainian and Azerbaijani+Turkish
        assert restates["ru"] + restates["uk"] >= 40 and restates["az"] + restates["tr"] >= 40, restates
    assert not texts["dev"] & texts["test"], "dev and test share a sentence"
