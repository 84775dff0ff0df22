"""The second stage of matching: does a passage *assert* a claim, or only share its topic?

The first stage (pipelines/matcher.py) proposes a few candidate claims per text, recall first. For
each candidate the verifier gets a feature vector (``FEATURES``) of its best passage — the cosine of
the passage with the claim (cross-lingual and in the passage's own language when the claim has a
translation), how far that stands out from the passage's cosines with the other claims, the nearest
of the claim's example restatements against the nearest of its counter-examples, stemmed BM25 in the
passage's language, the candidate's rank and margin, negation and attribution cue words — and a
logistic regression turns it into a probability that the passage restates the claim. That
probability is the match score; a match is kept at or above the language's verifier threshold.

The weights live in pipelines/verifier.json, trained by ``claimwatch eval fit-verifier --write``
(crawler/services/verification.py) with a fixed seed; ``VERIFIER_VERSION`` is stored with every
match made with them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

VERIFIER_FILE = Path(__file__).with_name("verifier.json")

FEATURES = (
    "cosine",  # passage vs the claim's own text (cross-lingual for a non-English passage)
    "same_language",  # passage vs the claim in the passage's language (= cosine without one)
    "has_translation",  # 1 when the claim has a text in the passage's language
    "best",  # max of the two
    "centred",  # best minus the mean over all claims, in standard deviations of the passage
    "margin",  # best minus the best other claim's score for this text (negative below the top)
    "rank",  # 0 for the text's top candidate, 1, 2, ...
    "example",  # nearest example restatement of the claim (0 without examples)
    "counter",  # nearest counter-example (0 without)
    "example_margin",  # example - counter
    "lexical",  # stemmed BM25 in the passage's language, / the text's best
    "lexical_coverage",  # stemmed BM25 / the claim's self score
    "negation_mismatch",  # the passage negates and the claim does not, or the other way round
    "attribution",  # reported speech: "said", "according to", "по мнению" ...
    "hedge",  # "if", "may", "perhaps" ... in the passage and not in the claim
    "question",  # the passage asks rather than asserts
    "claim_z",  # best in standard deviations of the claim's scores against other claims' texts/examples
    "multilingual_route",  # the passage went to the multilingual encoder
    "log_length",  # log of the passage's characters
)

# Cue words per language (lower case; prefixes where inflection matters).
NEGATION = {
    "en": r"\b(?:not|no|never|nothing|none|nobody|neither|nor|deny|denies|denied|rejects?|refuted?|false|"
    r"isn't|wasn't|aren't|weren't|don't|doesn't|didn't|won't|cannot|can't|hardly)\b",
    "ru": r"(?<!\w)(?:не|нет|ни|никогда|ничего|никто|отрица\w*|опроверг\w*|ложн\w*|отверг\w*)(?!\w)",
    "uk": r"(?<!\w)(?:не|ні|немає|нема|ніколи|нічого|ніхто|заперечу\w*|спростов\w*|неправд\w*)(?!\w)",
    "az": r"(?<!\w)(?:deyil|yox|heç|xeyr|inkar\w*|təkzib\w*)(?!\w)|\w+(?:ma|mə)(?:dı|di|du|dü|yıb|yib|z)\b",
    "tr": r"(?<!\w)(?:değil|yok|hiç|hayır|asla|inkar\w*|yalanla\w*|reddet\w*)(?!\w)",
    "hy": r"(?<!\w)(?:ոչ|չի|չէ|չեն|չէր|չեր|երբեք|ժխտ\w*|հերք\w*)(?!\w)|(?<!\w)չ\w+",
    "ka": r"(?<!\w)(?:არ|ვერ|არა|არც|არასდროს|არაფერი|უარყო\w*)(?!\w)",
}
ATTRIBUTION = {
    "en": r"\b(?:said|says|say|according to|claims?|claimed|argues?|argued|believes?|believed|"
    r"insists?|insisted|stated?|maintains?|characteri[sz]ed|described|told|in (?:his|her|their) view|"
    r"thinks?|suggests?|alleged(?:ly)?|reportedly|accused)\b",
    "ru": r"(?<!\w)(?:по мнению|по словам|по данным|заяви\w*|счита\w*|утвержда\w*|полага\w*|"
    r"сообщи\w*|назва\w*|охарактеризова\w*|уверен\w*|говори\w*|подчеркну\w*|обвини\w*)",
    "uk": r"(?<!\w)(?:на думку|за словами|за даними|заяви\w*|вважа\w*|стверджу\w*|повідоми\w*|"
    r"назва\w*|переконан\w*|наголоси\w*|звинувати\w*)",
    "az": r"(?<!\w)(?:bildir\w*|deyib|dedi|hesab ed\w*|iddia\w*|fikrincə|sözlərinə görə|qeyd ed\w*|"
    r"açıqla\w*|vurğula\w*)",
    "tr": r"(?<!\w)(?:dedi|söyle\w*|açıkla\w*|iddia\w*|göre|belirt\w*|vurgula\w*|savun\w*|düşünü\w*)",
    "hy": r"(?<!\w)(?:ասել\w*|հայտար\w*|կարծ\w*|պնդ\w*|նշել\w*|համաձայն|ըստ)",
    "ka": r"(?<!\w)(?:განაცხად\w*|თქვა|მიაჩნი\w*|ამტკიცებ\w*|აღნიშნ\w*|მიხედვით|თქმით)",
}
HEDGE = {
    "en": r"\b(?:if|may|might|could|perhaps|possibly|unclear|whether|partly|partially|some say)\b",
    "ru": r"(?<!\w)(?:если|может|возможно|вероятно|отчасти|частично|неясно|ли)(?!\w)",
    "uk": r"(?<!\w)(?:якщо|може|можливо|ймовірно|почасти|частково|неясно|чи)(?!\w)",
    "az": r"(?<!\w)(?:əgər|bəlkə|ehtimal|qismən|ola bilər)(?!\w)",
    "tr": r"(?<!\w)(?:eğer|belki|muhtemelen|kısmen|olabilir)(?!\w)",
    "hy": r"(?<!\w)(?:եթե|գուցե|հնարավոր\w*|մասամբ)(?!\w)",
    "ka": r"(?<!\w)(?:თუ|შესაძლოა|ალბათ|ნაწილობრივ)(?!\w)",
}


@cache
def _pattern(table: str, language: str) -> re.Pattern[str] | None:
    source = {"negation": NEGATION, "attribution": ATTRIBUTION, "hedge": HEDGE}[table]
    expression = source.get(language)
    return re.compile(expression, re.IGNORECASE) if expression else None


def cue_count(table: str, language: str | None, text: str) -> int:
    """Occurrences of a cue table's words in ``text`` (English cues count in every language: quotes
    and names are often English)."""
    total = 0
    for code in dict.fromkeys([language or "en", "en"]):
        pattern = _pattern(table, code)
        if pattern is not None:
            total += len(pattern.findall(text))
    return total


@dataclass(frozen=True)
class Verifier:
    """Logistic regression over standardised ``FEATURES``; thresholds on its probability."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    threshold: float
    language_thresholds: dict[str, float] = field(default_factory=dict)
    features: tuple[str, ...] = FEATURES
    version: str = "untrained"
    trained_on: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        if rows.size == 0:
            return np.zeros(0)
        z = ((rows - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def threshold_for(self, language: str | None) -> float:
        return float(self.language_thresholds.get((language or "").lower(), self.threshold))

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "features": list(self.features),
            "weights": [round(float(w), 6) for w in self.weights],
            "bias": round(float(self.bias), 6),
            "mean": [round(float(m), 6) for m in self.mean],
            "scale": [round(float(s), 6) for s in self.scale],
            "threshold": self.threshold,
            "language_thresholds": self.language_thresholds,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verifier:
        features = tuple(data["features"])
        if features != FEATURES:
            raise ValueError("the verifier's features differ from this version's: retrain it")
        return cls(
            weights=np.asarray(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            threshold=float(data["threshold"]),
            language_thresholds={k: float(v) for k, v in (data.get("language_thresholds") or {}).items()},
            features=features,
            version=str(data.get("version") or "unknown"),
            trained_on=dict(data.get("trained_on") or {}),
        )


def weights_version(weights: np.ndarray, bias: float, mean: np.ndarray, scale: np.ndarray) -> str:
    """A short content hash of a trained model: stored with each match it scored."""
    digest = hashlib.sha256()
    for array in (weights, np.array([bias]), mean, scale):
        digest.update(np.round(np.asarray(array, dtype=np.float64), 6).tobytes())
    return "lr-" + digest.hexdigest()[:10]


@cache
def load_verifier(path: Path = VERIFIER_FILE) -> Verifier | None:
    """The shipped verifier, or None (with a warning) when its file is missing or stale: matching then
    uses the first stage's score and thresholds alone."""
    try:
        return Verifier.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("cannot read the verifier %s (%s): matching without it", path, exc)
        return None


def fit_logistic(
    rows: np.ndarray,
    labels: np.ndarray,
    l2: float = 1.0,
    iterations: int = 3000,
    learning_rate: float = 0.5,
    positive_weight: float | None = None,
    row_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Weights, bias, mean and scale of an L2-regularised logistic regression (full-batch gradient
    descent from zero: deterministic). ``positive_weight``: the weight of a positive row (default:
    negatives / positives, so both classes count alike); ``row_weight``: a further weight per row."""
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x = (rows - mean) / scale
    y = labels.astype(np.float64)
    positives = max(1.0, float(y.sum()))
    weight_pos = positive_weight if positive_weight is not None else (len(y) - positives) / positives
    sample = np.where(y > 0, weight_pos, 1.0)
    if row_weight is not None:
        sample = sample * row_weight
    sample = sample / sample.sum()
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w + b, -50, 50)))
        error = (p - y) * sample
        w -= learning_rate * (x.T @ error + l2 * w / len(y))
        b -= learning_rate * float(error.sum())
    return w, b, mean, scale


def log_length(text: str) -> float:
    return math.log(1 + len(text))
