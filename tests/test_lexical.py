"""BM25 over claims (pipelines/lexical.py), checked by hand; hybrid scoring (pipelines/match.py)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from pipelines import match as match_module
from pipelines.claims import Claim
from pipelines.lexical import LexicalIndex, tokenize
from pipelines.match import (
    ClaimIndex,
    Fusion,
    claim_context,
    default_fusion,
    default_threshold,
    match_passages,
    passage_key,
    unique_passages,
)
from pipelines.segment import Passage


def test_tokenize_latin_and_cyrillic() -> None:
    assert tokenize("The Kremlin's sway over Azerbaijan is GONE, 2025!") == [
        "kremlin",
        "sway",
        "over",
        "azerbaijan",
        "gone",
        "2025",
    ]
    # Cyrillic words are tokens too; ё is folded to е; stop words and one-letter tokens are dropped
    assert tokenize("Россия и Азербайджан: её ошибка, а не их.") == ["россия", "азербайджан", "ошибка"]


def test_bm25_matches_hand_computed_scores() -> None:
    index = LexicalIndex.build(["cat sat mat", "dog sat", "cat cat dog"], k1=1.2, b=0.75)
    # N = 3, lengths 3, 2, 3 (average 8/3); df: cat 2, sat 2, mat 1, dog 2
    idf2 = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    idf1 = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))

    def term(idf: float, tf: int, length: int) -> float:
        return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / (8 / 3)))

    scores = index.scores(index.query_matrix(["cat", "the mat and the dog", "cat cat", "zebra"]))
    expected = [
        [term(idf2, 1, 3), 0.0, term(idf2, 2, 3)],
        [term(idf1, 1, 3), term(idf2, 1, 2), term(idf2, 1, 3)],
        [term(idf2, 1, 3), 0.0, term(idf2, 2, 3)],  # a repeated query term counts once
        [0.0, 0.0, 0.0],  # unknown terms score nothing
    ]
    assert scores == pytest.approx(np.array(expected))
    assert index.self_scores == pytest.approx(
        [2 * term(idf2, 1, 3) + term(idf1, 1, 3), 2 * term(idf2, 1, 2), term(idf2, 2, 3) + term(idf2, 1, 3)]
    )
    # coverage: 1 when a text holds every term of the claim, a fraction otherwise
    coverage = index.coverage(index.query_matrix(["a cat sat on the mat", "dog"]))
    assert coverage[0, 0] == pytest.approx(1.0)
    assert coverage[1, 1] == pytest.approx(0.5) and coverage[1, 0] == 0.0
    # each query's best claim: the row maxima, 0 for a query sharing no term
    queries = index.query_matrix(["cat", "the mat and the dog", "cat cat", "zebra"])
    assert index.best_scores(queries) == pytest.approx(np.array(expected).max(axis=1))
    assert index.best_scores(queries).tolist() == [index.best_score(queries[row]) for row in range(4)]
    # a slice of claims scores as the same columns of the whole
    assert index.scores(index.query_matrix(["dog"]), slice(1, 3)) == pytest.approx(
        index.scores(index.query_matrix(["dog"]))[:, 1:3]
    )


def test_empty_inputs() -> None:
    index = LexicalIndex.build(["cat", "the a"])  # the second claim has no terms
    assert index.coverage(index.query_matrix(["cat", ""])).tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert index.scores(index.query_matrix([])).shape == (0, 2)
    assert len(LexicalIndex.build([])) == 0
    assert LexicalIndex.build([]).best_scores(LexicalIndex.build([]).query_matrix(["cat"])).tolist() == [0.0]


def test_fifteen_thousand_claims_score_fast() -> None:
    rng = np.random.default_rng(3)
    words = np.array([f"w{n}" for n in range(20_000)])
    claims = [" ".join(rng.choice(words, 15)) for _ in range(15_000)]
    texts = [" ".join(rng.choice(words, 40)) for _ in range(200)]
    started = time.perf_counter()
    index = LexicalIndex.build(claims)
    scores = index.coverage(index.query_matrix(texts))
    assert scores.shape == (200, 15_000) and scores.min() >= 0 and scores.max() <= 1 + 1e-9
    assert time.perf_counter() - started < 20  # about 1 s alone; the machine is shared


# --- hybrid scoring (pipelines/match.py) ---------------------------------------------------------


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_fusion_lifts_the_claim_the_passage_restates() -> None:
    claims = [
        Claim("ferry", "The ferry to Aktau was cancelled because of the storm."),
        Claim("tomatoes", "Moscow banned imports of Azerbaijani tomatoes.", extra={"title": "Tomato ban"}),
    ]
    vectors = np.vstack([unit(1, 0, 0), unit(0, 1, 0)])
    texts = [f"{c.text} {claim_context(c)}" for c in claims]
    # the embedding puts the passage nearer the wrong claim (cosine 0.6 vs 0.5)
    passage = Passage("Storm: the Aktau ferry is cancelled.", 0, 36)
    passage_vector = np.array([[0.5, 0.6, np.sqrt(1 - 0.61)]], dtype=np.float32)
    plain = ClaimIndex(claims, vectors, "k")
    [best] = match_passages(passage_vector, [passage], plain, threshold=-1, top_k=1)
    assert best.claim_id == "tomatoes" and best.components == {"cosine": 0.6, "score": 0.6}
    hybrid = ClaimIndex(claims, vectors, "k", Fusion(lexical=1.0), None, LexicalIndex.build(texts))
    found = match_passages(passage_vector, [passage], hybrid, threshold=-1, top_k=2)
    assert [m.claim_id for m in found] == ["ferry", "tomatoes"]
    ferry = found[0].components
    assert ferry["lexical"] == 1.0 and found[1].components["lexical"] == 0.0  # relative to the best
    assert found[0].score == pytest.approx((ferry["cosine"] + ferry["lexical"]) / 2, abs=1e-6)
    # the threshold applies to the fused score
    assert match_passages(passage_vector, [passage], hybrid, threshold=found[0].score + 1e-4, top_k=2) == []


def test_fusion_weights_and_claim_context() -> None:
    cosine, context, lexical = np.array([0.8]), np.array([0.2]), np.array([0.5])
    assert Fusion().combine(cosine, context, lexical) is cosine  # plain cosine: unchanged scale
    assert Fusion(0.5, 1.5).combine(cosine, context, lexical) == pytest.approx([(0.8 + 0.1 + 0.75) / 3])
    assert Fusion(lexical=1.0, cosine=0.0).combine(cosine, None, lexical) == pytest.approx([0.5])
    assert Fusion(context=1.0).combine(cosine, None, None) == pytest.approx([0.8])  # no context: cosine
    claim = Claim("c", "text", extra={"title": " A  title ", "keywords": ["gas", "Caspian"], "other": 1})
    assert claim_context(claim) == "A title gas Caspian"
    assert claim_context(Claim("d", "text")) == ""


def test_near_identical_passages_are_scored_once() -> None:
    text = "Baku protested. The talks stalled! baku   protested"
    passages = [Passage("Baku protested.", 0, 15), Passage("The talks stalled!", 16, 34)]
    passages.append(Passage("baku   protested", 35, 51))
    passages.append(Passage(text[0:34], 0, 34))  # a window
    vectors = np.eye(4, dtype=np.float32)
    kept, rows = unique_passages(passages, vectors, None, None)
    assert [p.start for p in kept] == [0, 16, 0] and rows.tolist() == vectors[[0, 1, 3]].tolist()
    # the whole text replaces the window equal to it, with its own (encoded) vector
    whole, whole_vector = Passage(text[0:34], 0, 34), unit(1, 1, 1, 1)
    kept, rows = unique_passages(passages, vectors, whole, whole_vector)
    assert kept[-1] is whole and len(kept) == 3 and rows[-1] == pytest.approx(whole_vector)
    assert passage_key(" It's — DONE. ") == passage_key("it's done") == "it s done"


def test_thresholds_per_language(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {"m": {"threshold": 0.8, "language_thresholds": {"ru": 0.7}}, "plain": {"threshold": 0.5}}
    monkeypatch.setattr(match_module, "load_thresholds", lambda: table)
    assert default_threshold("m") == default_threshold("m", "en") == 0.8
    assert default_threshold("m", "ru") == default_threshold("m", "RU") == 0.7
    assert default_threshold("plain", "ru") == 0.5
    assert default_threshold("unknown", "ru") == match_module.FALLBACK_THRESHOLD


def test_shipped_fusion_and_thresholds_agree() -> None:
    """Every model with fitted fusion weights was calibrated with those weights."""
    thresholds = match_module.load_thresholds()
    for model, entry in match_module.load_fusions().items():
        fusion = default_fusion(model)
        assert not fusion.is_cosine and fusion.context >= 0 and fusion.lexical >= 0
        assert entry["fitted_on"] and all("test" not in name.split()[-1] for name in entry["fitted_on"])
        assert thresholds[model]["fusion"] == fusion.as_dict()
    assert default_fusion("some/other-model") == Fusion()


def test_stemmed_bm25_meets_inflected_forms() -> None:
    """With a language, claim and passage tokens are stemmed: inflections of one word meet."""
    claims = ["Россия давит на азербайджанскую диаспору", "Турция призывает тюркские государства"]
    index = LexicalIndex.build(claims, language="ru")
    queries = index.query_matrix(["Давление на азербайджанских диаспор России"])
    scores = index.scores(queries)[0]
    assert scores[0] > 0 and scores[1] == 0
    plain = LexicalIndex.build(claims)
    assert plain.scores(plain.query_matrix(["азербайджанских диаспор"]))[0][0] == 0  # no stem, no hit
    assert tokenize("Rusya'nın baskısı", "tr")[0] == "rusya"
    assert tokenize("Ադրբեջանի", "hy") == [tokenize("Ադրբեջանը", "hy")[0]]
    # languages Snowball lacks: the first letters
    assert tokenize("азербайджанської", "uk") == tokenize("азербайджанська", "uk")
    assert tokenize("აზერბაიჯანის", "ka") == tokenize("აზერბაიჯანს", "ka")
    assert tokenize("Deliberately", None) == ["deliberately"]
