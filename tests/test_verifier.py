"""The verifier (pipelines/verifier.py): its model, its cue words, and the shipped artefact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.verifier import (
    FEATURES,
    VERIFIER_FILE,
    Verifier,
    cue_count,
    fit_logistic,
    load_verifier,
    weights_version,
)

REPO = Path(__file__).resolve().parents[1]


def test_logistic_regression_is_deterministic_and_separates() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] > 0.2).astype(int)
    first = fit_logistic(x, y)
    again = fit_logistic(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    w, b, mean, scale = first
    probabilities = 1 / (1 + np.exp(-(((x - mean) / scale) @ w + b)))
    assert ((probabilities > 0.5) == (y == 1)).mean() > 0.9
    assert w[0] > 0 > w[1] and abs(w[2]) < abs(w[0]) / 3
    assert weights_version(w, b, mean, scale) == weights_version(*again)
    assert weights_version(w, b, mean, scale) != weights_version(w * 2, b, mean, scale)


def test_round_trip_and_thresholds(tmp_path: Path) -> None:
    count = len(FEATURES)
    verifier = Verifier(
        np.arange(count) / 10, 0.3, np.zeros(count), np.ones(count), 0.55, {"ru": 0.6}, version="v"
    )
    again = Verifier.from_dict(json.loads(json.dumps(verifier.as_dict())))
    assert again.threshold_for("RU") == 0.6 and again.threshold_for("en") == again.threshold_for(None) == 0.55
    rows = np.ones((2, count))
    assert np.allclose(again.probabilities(rows), verifier.probabilities(rows))
    stale = dict(verifier.as_dict(), features=["cosine"])
    with pytest.raises(ValueError):
        Verifier.from_dict(stale)
    broken = tmp_path / "verifier.json"
    broken.write_text("{", encoding="utf-8")
    assert load_verifier(broken) is None and load_verifier(tmp_path / "missing.json") is None


@pytest.mark.parametrize(
    ("table", "language", "text", "found"),
    [
        ("negation", "en", "Moscow did not apologise", True),
        ("negation", "ru", "Москва не извинилась", True),
        ("negation", "tr", "Moskova özür dilemedi değil", True),
        ("negation", "ru", "Москва извинилась", False),
        ("attribution", "en", "The ministry characterized the incident as deliberate", True),
        ("attribution", "ru", "По мнению экспертов, рейд был намеренным", True),
        ("attribution", "uk", "На думку експертів, рейд був навмисним", True),
        ("attribution", "az", "Nazirlik bildirib ki, reyd qəsdən olub", True),
        ("attribution", "en", "The raid was deliberate", False),
        ("hedge", "en", "The raid may have been deliberate", True),
    ],
)
def test_cue_words(table: str, language: str, text: str, found: bool) -> None:
    assert (cue_count(table, language, text) > 0) is found


def test_the_shipped_verifier_is_consistent() -> None:
    """Verify the committed artefact: its version is the hash of its weights, its features are this
    code's, its thresholds are probabilities, and it was never trained on a test split. (Retraining
    it needs the models and the real dev set: tests/test_matcher.py::test_verifier_retrains.)"""
    data = json.loads(VERIFIER_FILE.read_text(encoding="utf-8"))
    verifier = load_verifier()
    assert verifier is not None and tuple(data["features"]) == FEATURES
    assert verifier.version == weights_version(verifier.weights, verifier.bias, verifier.mean, verifier.scale)
    assert 0 < verifier.threshold < 1 and all(0 < t < 1 for t in verifier.language_thresholds.values())
    assert all("test" not in name for name, _ in verifier.trained_on["files"])
    assert VERIFIER_FILE.stat().st_size < 25_000_000


@pytest.mark.slow
def test_the_shipped_verifier_retrains_to_the_same_weights() -> None:
    """Retrain on the files it was trained on, when all are at hand with the same contents (the real
    commentary dev set is not in the repository: set CLAIMWATCH_REAL_DEV to its path); else skip."""
    import os

    from crawler.config import load_settings
    from crawler.services.verification import file_digest, fit_verifier
    from pipelines.claims import default_claims_path, load_claims

    verifier = load_verifier()
    assert verifier is not None
    labelled = REPO / "crawler" / "data" / "labelled"
    files = verifier.trained_on["files"]
    real = Path(os.environ.get("CLAIMWATCH_REAL_DEV") or "/nonexistent")
    paths = [labelled / name if (labelled / name).is_file() else real for name, _ in files]
    if not all(p.is_file() and file_digest(p) == digest for p, (_, digest) in zip(paths, files, strict=True)):
        pytest.skip("not every training file is at hand with the contents the verifier was trained on")
    fit = fit_verifier(load_settings(environ={}), load_claims(default_claims_path()), paths)
    # encoders are not bit-exact across batch compositions: weights agree to float noise (the CLI, with
    # the embedding cache, reproduces the version exactly)
    assert np.allclose(fit.verifier.weights, verifier.weights, atol=1e-4)
    assert fit.verifier.bias == pytest.approx(verifier.bias, abs=1e-4)
    assert fit.verifier.threshold == verifier.threshold
    assert fit.verifier.language_thresholds == verifier.language_thresholds
