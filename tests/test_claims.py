import json
from pathlib import Path

import pytest

from pipelines.claims import Claim, ClaimsFileError, default_claims_path, load_claims

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "article.txt"


def test_shipped_seed_claims_cover_the_article() -> None:
    claims = load_claims(default_claims_path())
    assert 15 <= len(claims) <= 25
    assert [c.id for c in claims] == [f"seed-{n:02d}" for n in range(1, len(claims) + 1)]
    assert {c.claim_set for c in claims} == {"seed"}
    assert all(c.paragraph is not None and 1 <= c.paragraph <= 16 for c in claims)
    assert len({c.extra["label"] for c in claims}) == len(claims)
    # every numbered section of the seed (reasons 1–7) has at least one claim
    assert {5, 10, 11, 13, 14, 15, 16} <= {c.paragraph for c in claims}


@pytest.mark.skipif(not SEED.exists(), reason="../shared/seed is not beside the checkout")
def test_seed_claims_are_written_in_own_words() -> None:
    seed = " ".join(SEED.read_text(encoding="utf-8").split()).lower()
    for claim in load_claims(default_claims_path()):
        words = claim.text.lower().split()
        # no run of 8 consecutive words copied from the seed
        for start in range(len(words) - 7):
            assert " ".join(words[start : start + 8]) not in seed, claim.id


def test_yaml_and_jsonl_formats(tmp_path: Path) -> None:
    yaml_file = tmp_path / "mine.yaml"
    yaml_file.write_text(
        "claims:\n  - {id: a, text: '  Baku  and Moscow\n    quarrel ', source: blog}\n"
        "  - {id: 7, text: Two}\n"
    )
    claims = load_claims(yaml_file)
    assert claims == [
        Claim("a", "Baku and Moscow quarrel", None, "mine", {"source": "blog"}),
        Claim("7", "Two", None, "mine", {}),
    ]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(
        json.dumps({"id": "x", "text": "One", "paragraph": 3, "claim_set": "s"})
        + "\n\n"
        + json.dumps({"id": 2, "text": "Two"})
        + "\n"
    )
    assert load_claims(jsonl) == [Claim("x", "One", 3, "s", {}), Claim("2", "Two", None, "c", {})]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("claims: [{id: a}]", "has no `text`"),
        ("claims: [{text: hello}]", "missing or invalid `id`"),
        ("claims: [{id: a, text: x}, {id: a, text: y}]", "duplicate claim id 'a'"),
        ("something: else", "top-level `claims:`"),
        ("claims: [{id: a, text: [", "not valid YAML"),
        ('{"id": 1, "text": "ok"}\n{"id": 2, "text": ', ":2: not JSON"),
        ("claims: [{id: a, text: x, paragraph: two}]", "`paragraph` must be an integer"),
    ],
)
def test_bad_claims_files_give_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ClaimsFileError, match=message.replace("[", r"\[")) as error:
        load_claims(path)
    assert str(path) in str(error.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ClaimsFileError, match="no such file"):
        load_claims(tmp_path / "absent.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ClaimsFileError, match="cannot read"):
        load_claims(binary)


def test_with_examples_appends_each_passage_once() -> None:
    from pipelines.claims import Claim, claim_examples, with_examples

    claim = Claim(
        "c1", "Moscow lost its leverage over Baku.", extra={"examples": ["Russia has no hold on Baku."]}
    )
    more = with_examples(
        claim, ["Russia has no  hold on Baku.", "Baku ignores Moscow now."], ["Baku, Moscow"] * 2
    )
    assert claim_examples(more) == ["Russia has no hold on Baku.", "Baku ignores Moscow now."]
    assert claim_examples(more, "counter_examples") == ["Baku, Moscow"]
    assert claim_examples(claim) == ["Russia has no hold on Baku."]  # the original is unchanged
