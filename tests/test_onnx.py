"""The optional ONNX Runtime encoder backends (pipelines/onnx_backend.py): export, cache, agreement."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crawler.config import ConfigError, load_settings
from pipelines.embed import ModelLoadError, load_encoder, model_key
from pipelines.segment import split_sentences

SEED_DEV = Path(__file__).resolve().parent.parent / "crawler" / "data" / "labelled" / "seed_dev.jsonl"


def seed_sentences(limit: int | None = None) -> list[str]:
    """The distinct sentences of the labelled seed passages, as the matcher segments them."""
    sentences: list[str] = []
    for line in SEED_DEV.read_text(encoding="utf-8").splitlines():
        if line.strip():
            sentences += [passage.text for passage in split_sentences(json.loads(line)["passage"])]
    return list(dict.fromkeys(sentences))[:limit]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding the bundled model's export, made once per session (~5-50 s)."""
    pytest.importorskip("onnxruntime")
    cache = tmp_path_factory.mktemp("onnx-cache")
    started = time.perf_counter()
    load_encoder(backend="onnx-int8", cache_dir=cache)
    print(f"ONNX export + int8 quantisation: {time.perf_counter() - started:.1f} s")
    return cache


@pytest.fixture(scope="session")
def int8_encoder(onnx_cache: Path) -> Any:
    return load_encoder(backend="onnx-int8", cache_dir=onnx_cache)


@pytest.fixture(scope="session")
def onnx_fp32_encoder(onnx_cache: Path) -> Any:
    return load_encoder(backend="onnx", cache_dir=onnx_cache)


@pytest.mark.slow
def test_int8_agrees_with_torch_fp32(encoder: Any, int8_encoder: Any, onnx_fp32_encoder: Any) -> None:
    texts = seed_sentences(limit=100)
    assert len(texts) == 100
    expected = encoder.encode(texts)
    int8 = np.sum(expected * int8_encoder.encode(texts), axis=1)
    assert int8.mean() >= 0.99
    assert int8.min() >= 0.95
    assert np.sum(expected * onnx_fp32_encoder.encode(texts), axis=1).min() >= 0.9999


@pytest.mark.slow
def test_measure_agreement(encoder: Any, int8_encoder: Any) -> None:
    from pipelines.onnx_backend import measure_agreement

    texts = seed_sentences(limit=8)
    agreement = measure_agreement(encoder, int8_encoder, [*texts, texts[0]], rounds=1)
    assert agreement.sentences == 8
    assert 0.99 <= agreement.mean_cosine <= 1.0001 and agreement.min_cosine <= agreement.mean_cosine
    assert agreement.reference_rate > 0 and agreement.candidate_rate > 0
    assert agreement.speedup == pytest.approx(agreement.candidate_rate / agreement.reference_rate)
    same = measure_agreement(encoder, encoder, texts, rounds=1)
    assert same.mean_cosine == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_int8_keeps_the_labelled_f1(encoder: Any, int8_encoder: Any) -> None:
    """`claimwatch eval labels` on the seed dev set at the calibrated threshold: F1 no lower than
    torch's minus 0.01, and at most 5 % of the predictions change (one changes F1 by ~0.015)."""
    from crawler.services.evaluation import best_claims_of, evaluate_labels, read_labels
    from pipelines.claims import default_claims_path, load_claims
    from pipelines.matcher import ClaimMatcher

    claims = load_claims(default_claims_path())
    items = read_labels(SEED_DEV, {claim.id for claim in claims})
    texts = [item.text for item in items]
    languages = [item.language for item in items]
    f1: dict[str, dict[str, float]] = {}
    predicted: dict[str, list[str]] = {}
    for name, backend in (("torch", encoder), ("int8", int8_encoder)):
        matcher = ClaimMatcher(claims, threshold=-1.0)  # as `eval labels`: every candidate kept
        matcher.add_route(backend)
        report = evaluate_labels(matcher, items, None)  # each text's calibrated threshold
        f1[name] = {language: score.f1 for language, score in report.languages.items()}
        best, scores, cutoffs, _ = best_claims_of(matcher, texts, languages)
        predicted[name] = [
            claim if score >= cutoff else ""
            for claim, score, cutoff in zip(best, scores, cutoffs, strict=True)
        ]
    changed = sum(a != b for a, b in zip(predicted["torch"], predicted["int8"], strict=True))
    print(f"F1 torch {f1['torch']}, int8 {f1['int8']}; {changed} of {len(items)} predictions changed")
    assert f1["torch"]["en"] > 0.5
    for language in ("all", "en"):
        assert f1["int8"][language] >= f1["torch"][language] - 0.01
        assert f1["int8"][language] == pytest.approx(f1["torch"][language], abs=0.03)
    assert changed <= len(items) // 20


@pytest.mark.slow
def test_length_batching_keeps_input_order(onnx_fp32_encoder: Any, int8_encoder: Any) -> None:
    texts = seed_sentences(limit=12)
    texts = [texts[0] + " " + texts[1], "Baku.", *texts[2:], texts[3]]  # long, short, repeated
    for backend in (onnx_fp32_encoder, int8_encoder):
        backend.batch_size = 3
        batched = backend.encode(texts)
        assert batched.shape == (len(texts), 384) and batched.dtype == np.float32
        assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
        alone = np.vstack([backend.encode([text]) for text in texts])
        cosines = np.sum(batched * alone, axis=1)
        # int8 activations are scaled per batch (padding included): a vector depends on its batch-mates
        assert cosines.min() >= (0.99999 if backend is onnx_fp32_encoder else 0.95)
        # each row is its own text's vector, not a neighbour's
        assert list((batched @ alone.T).argmax(axis=1)[:-1]) == list(range(len(texts) - 1))
        assert np.array_equal(batched[-1], batched[3])
        backend.batch_size = 64


@pytest.mark.slow
def test_backends_record_distinct_revisions(encoder: Any, int8_encoder: Any, onnx_fp32_encoder: Any) -> None:
    assert int8_encoder.model_name == onnx_fp32_encoder.model_name == encoder.model_name
    assert int8_encoder.revision == encoder.revision + "+onnx-int8"
    assert onnx_fp32_encoder.revision == encoder.revision + "+onnx"
    assert len({model_key(encoder), model_key(int8_encoder), model_key(onnx_fp32_encoder)}) == 3


@pytest.mark.slow
def test_second_load_reuses_the_export(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import onnx_backend

    def no_export(*args: Any) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_backend, "export_model", no_export)
    exports = [path for path in (onnx_cache / "onnx").iterdir() if path.is_dir()]
    assert len(exports) == 1 and not exports[0].name.startswith(".")
    loaded = load_encoder(backend="onnx-int8", cache_dir=onnx_cache)
    assert loaded.encode(["Moscow and Baku"]).shape == (1, 384)
    assert [path for path in (onnx_cache / "onnx").iterdir() if path.is_dir()] == exports


def test_concurrent_exports_build_once(tmp_path: Path) -> None:
    from pipelines.onnx_backend import META_FILE, cached_export

    builds: list[Path] = []

    def slow_build(directory: Path) -> None:
        builds.append(directory)
        time.sleep(0.3)
        (directory / META_FILE).write_text("{}", encoding="utf-8")

    found: list[Path] = []
    threads = [
        threading.Thread(target=lambda: found.append(cached_export(tmp_path, "model-x", slow_build)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert found == [tmp_path / "model-x"] * 3
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model-x", "model-x.lock"]


def test_failed_export_leaves_no_directory(tmp_path: Path) -> None:
    from pipelines.onnx_backend import cached_export

    def broken_build(directory: Path) -> None:
        (directory / "model.onnx").write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cached_export(tmp_path, "model-y", broken_build)
    assert [path.name for path in tmp_path.iterdir()] == ["model-y.lock"]


def test_missing_onnxruntime_is_a_model_load_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ModelLoadError, match=r"onnxruntime.*claimwatch\[onnx\]"):
        load_encoder(backend="onnx-int8", cache_dir=tmp_path)
    assert not (tmp_path / "onnx").exists()


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="backend"):
        load_encoder(backend="tensorrt", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="encoder_backend"):
        load_settings({"CLAIMWATCH_ENCODER_BACKEND": "tensorrt"}, config_file=None)
    assert load_settings({"CLAIMWATCH_ENCODER_BACKEND": "onnx-int8"}).encoder_backend == "onnx-int8"
