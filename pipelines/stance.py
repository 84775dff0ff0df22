"""Automatic stance of a matched passage toward its claim: ``restates``, ``rebuts`` or ``reports``.

A cue-word method in the languages claimwatch crawls (en, ru, uk, az, tr, hy, ka), with the match
score as a further signal; no model, no network. A prediction is only ever stored as
``matches.predicted_stance`` — a researcher's verdict (``match_reviews``) is the reviewed stance.

* **rebuts** — the passage *denies* the claim: denial cues ("denied", "опроверг", "təkzib edib",
  "yalanladı", "fake", "baseless", …), or a negation the claim itself does not contain ("did not",
  "не", "değil", "deyil", "არ", "չի", …: the passage negates what the claim asserts);
* **reports** — the passage *attributes* the claim to someone without endorsing it: attribution
  cues ("said", "claimed", "according to", "заявил", "по словам", "якобы", "bildirib", "iddia etti",
  "göre", "განაცხადა", "հայտարարել", …);
* **restates** — otherwise: the passage asserts what the claim says.

Denial beats attribution ("the ministry denied that ..." rebuts), attribution beats a bare negation
("X said Russia did not ..." reports); a strong match score (well above the threshold) with only a
weak negation cue stays ``restates``. The confidence reflects how many cues agree and, for
``restates``, how far the score is above the threshold. The cue lists and the weights were tuned on
``crawler/data/labelled/stance_dev.jsonl`` only; ``stance_test.jsonl`` is the held-out report
(``claimwatch eval stance``; docs/review.md has the numbers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

STANCES = ("restates", "rebuts", "reports")
LANGUAGES = ("en", "ru", "uk", "az", "tr", "hy", "ka")

# Cues are lower-case prefixes matched at a word start (\b...); multi-word cues match as phrases.
DENIAL: dict[str, tuple[str, ...]] = {
    "en": ("denied", "denies", "deny", "denying", "rejected", "rejects", "refuted", "refutes", "dismissed",
           "dismisses", "debunk", "false", "fake", "baseless", "unfounded", "groundless", "no evidence",
           "disinformation", "misinformation", "untrue", "not true", "myth", "nonsense", "fabricat",
           "contrary to", "there is no", "there was no"),
    "ru": ("опроверг", "опровер", "отверг", "отрица", "фейк", "ложн", "ложь", "дезинформац", "неправд",
           "безосновательн", "беспочвенн", "не соответству", "вымысел", "выдумк", "миф", "нет никаких",
           "не было никак", "не имеет ничего общего"),
    "uk": ("спростува", "спросту", "заперечи", "заперечу", "відкину", "відкида", "фейк", "неправд",
           "брехн", "дезінформац", "безпідставн", "не відповіда", "вигадк", "міф", "немає жодних",
           "не має нічого спільного"),
    "az": ("təkzib", "rədd ed", "inkar", "yalan", "saxta", "dezinformasiya", "əsassız", "uydurma",
           "həqiqətə uyğun deyil", "heç bir əsas", "mif"),
    "tr": ("yalanla", "reddett", "reddetti", "reddediyor", "inkar", "yalan", "sahte", "asılsız",
           "dezenformasyon", "gerçeği yansıtmıyor", "gerçek dışı", "hiçbir dayanağı", "uydurma", "efsane"),
    "hy": ("հերքել", "հերքեց", "հերքում", "մերժել", "մերժեց", "կեղծ", "սուտ", "ապատեղեկատվ", "անհիմն"),
    "ka": ("უარყო", "უარყოფს", "უარყოფა", "ცრუ", "ტყუილ", "ყალბ", "დეზინფორმაცი", "უსაფუძვლო"),
}  # fmt: skip

NEGATION: dict[str, tuple[str, ...]] = {
    "en": ("not", "no", "never", "nothing", "neither", "nor", "didn't", "doesn't", "isn't", "wasn't",
           "aren't", "weren't", "won't", "cannot", "can't", "hardly"),
    "ru": ("не", "нет", "никогда", "ничего", "ни", "вовсе не"),
    "uk": ("не", "ні", "немає", "ніколи", "нічого"),
    "az": ("deyil", "deyildi", "deyildir", "yox", "yoxdur", "heç vaxt", "heç bir", "nə"),
    "tr": ("değil", "yok", "hiçbir", "asla", "hiç"),
    "hy": ("ոչ", "չի", "չէ", "չեն", "չէր", "չեր", "երբեք", "չկա"),
    "ka": ("არ", "ვერ", "არა", "არასდროს", "არაფერი", "არც"),
}  # fmt: skip

# Turkish and Azerbaijani negate verbs with a suffix (-ma/-me + tense): yapmadı, etmədi, olmayıb.
NEGATION_SUFFIX: dict[str, str] = {
    "tr": r"\w{2,}(?:madı|medi|madi|mıyor|miyor|muyor|müyor|mamış|memiş|mayacak|meyecek|maz|mez)\w*",
    "az": r"\w{2,}(?:madı|mədi|mayıb|məyib|mamış|məmiş|mır|mir|mayacaq|məyəcək|maz|məz)\w*",
}

ATTRIBUTION: dict[str, tuple[str, ...]] = {
    "en": ("said", "says", "claimed", "claims", "claiming", "alleged", "allegedly", "according to",
           "reportedly", "told", "stated", "asserted", "asserts", "argued", "argues", "accused", "accuses",
           "insisted", "insists", "suggested", "wrote", "announced", "maintained", "quoted",
           "in the words of", "in an interview"),
    "ru": ("заявил", "заявля", "сообщил", "сообща", "по словам", "по данным", "по мнению", "утвержда",
           "якобы", "считает", "считают", "обвинил", "обвиня", "отметил", "подчеркнул", "написал", "пишет",
           "пишут", "как сообщ", "по информации", "полагает"),
    "uk": ("заявив", "заявил", "заявля", "повідомив", "повідомил", "повідомля", "за словами", "за даними",
           "на думку", "стверджу", "нібито", "вважає", "вважають", "звинуватив", "звинувачу", "зазначив",
           "наголосив", "написав", "пише", "пишуть"),
    "az": ("bildirib", "bildirdi", "deyib", "dedi", "açıqlayıb", "açıqladı", "iddia", "məlumatına görə",
           "sözlərinə görə", "fikrincə", "qeyd edib", "qeyd etdi", "bəyan edib", "bəyan etdi", "yazıb",
           "ittiham", "vurğulayıb", "hesab edir", "guya"),
    "tr": ("dedi", "açıkladı", "iddia", "göre", "belirtti", "ifade etti", "söyledi", "öne sürdü",
           "suçladı", "vurguladı", "savundu", "yazdı", "kaydetti", "güya", "açıklamasında"),
    "hy": ("հայտարարել", "հայտարարեց", "ասել", "ասաց", "նշել", "նշեց", "ըստ", "պնդում", "պնդել",
           "մեղադրել", "գրել"),
    "ka": ("განაცხადა", "თქვა", "აცხადებს", "მიხედვით", "თქმით", "ამტკიცებს", "აღნიშნა", "დაადანაშაულა",
           "წერს", "თითქოს"),
}  # fmt: skip

# Negative verbs of a claim (English): a passage restating it often carries an explicit negation.
CLAIM_NEGATIVE = ("refuse", "fail", "unable", "without", "lost", "lose", "instead", "stop", "lack")
_CLAIM_NEGATIVE = re.compile(r"(?<!\w)(?:" + "|".join(CLAIM_NEGATIVE) + ")", re.IGNORECASE)

# A negated verb in a claim ("will not break apart"), unlike a contrast ("deliberate, not an accident").
_VERBAL_NEGATION = re.compile(
    r"(?<!\w)(?:will|would|did|does|do|is|are|was|were|can|could|should|has|have)\s+not(?!\w)|n't(?!\w)|cannot",
    re.IGNORECASE,
)

# Weights and thresholds (tuned on the dev passages; see the module docstring)
DENIAL_WEIGHT = 2.0
NEGATION_WEIGHT = 1.0
ATTRIBUTION_WEIGHT = 1.0
STRONG_MARGIN = 0.15  # a score this far above the threshold outweighs one bare negation cue


@dataclass(frozen=True)
class StancePrediction:
    stance: str
    confidence: float
    cues: tuple[str, ...] = field(default=())


def _compile(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({re.escape(w) for w in words}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")", re.IGNORECASE)


def _whole(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({re.escape(w) for w in words}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


_DENIAL = {lang: _compile(words) for lang, words in DENIAL.items()}
_ATTRIBUTION = {lang: _compile(words) for lang, words in ATTRIBUTION.items()}
_NEGATION = {lang: _whole(words) for lang, words in NEGATION.items()}
_SUFFIX = {
    lang: re.compile(r"(?<!\w)" + pattern + r"(?!\w)", re.IGNORECASE)
    for lang, pattern in NEGATION_SUFFIX.items()
}


def _languages(language: str | None) -> Sequence[str]:
    """The cue languages to use: the document's, plus English (quotes and names cross languages)."""
    lang = (language or "en").split("-")[0].lower()
    if lang in DENIAL:
        return (lang,) if lang == "en" else (lang, "en")
    return LANGUAGES  # unknown: every list


def _found(patterns: dict[str, re.Pattern[str]], text: str, languages: Sequence[str]) -> list[str]:
    return [
        m.group(0).lower() for lang in languages if lang in patterns for m in patterns[lang].finditer(text)
    ]


def cues(text: str, language: str | None) -> dict[str, list[str]]:
    """The denial, negation and attribution cues found in ``text``."""
    languages = _languages(language)
    negations = _found(_NEGATION, text, languages) + _found(_SUFFIX, text, languages)
    return {
        "denial": _found(_DENIAL, text, languages),
        "negation": negations,
        "attribution": _found(_ATTRIBUTION, text, languages),
    }


def predict_stance(
    passage: str,
    claim: str,
    language: str | None = None,
    score: float | None = None,
    threshold: float | None = None,
) -> StancePrediction:
    """The stance of ``passage`` toward ``claim`` with a confidence in (0, 1)."""
    found = cues(passage, language)
    claim_cues = cues(claim, "en")  # claims are written in English
    explicit = len(claim_cues["negation"])
    verbal = bool(_VERBAL_NEGATION.search(claim))
    implicit = len(_CLAIM_NEGATIVE.findall(claim))
    denial = max(0, len(found["denial"]) - len(claim_cues["denial"]))
    # a negation counts when the passage has more of them than the claim has negations and negative
    # verbs ("refuses", "failure": a translation often says "does not accept", "could not win")
    negation = max(0, len(found["negation"]) - explicit - implicit)
    if verbal and not found["negation"] and not denial:
        negation = 1  # the claim says "will not", the passage drops the negation: it says the opposite
    attribution = len(found["attribution"])
    margin = (score - threshold) if score is not None and threshold is not None else 0.0
    rebut = DENIAL_WEIGHT * denial + NEGATION_WEIGHT * min(negation, 2)
    if rebut >= 1 and negation and not denial and margin >= STRONG_MARGIN:
        rebut = 0.0  # a near-verbatim match with one stray "not" still restates
    report = ATTRIBUTION_WEIGHT * attribution
    cue_list = tuple(found["denial"] + found["negation"] + found["attribution"])
    if rebut >= DENIAL_WEIGHT or (rebut >= NEGATION_WEIGHT and report == 0):
        confidence = min(0.95, 0.55 + 0.15 * rebut)
        return StancePrediction("rebuts", round(confidence, 3), cue_list)
    if report > 0:
        confidence = min(0.9, 0.5 + 0.15 * report - (0.1 if rebut else 0.0))
        return StancePrediction("reports", round(confidence, 3), cue_list)
    confidence = 0.6 + max(0.0, min(0.3, margin * 2))
    return StancePrediction("restates", round(confidence, 3), cue_list)


# --- evaluation on labelled passages ------------------------------------------------------------


@dataclass(frozen=True)
class StanceExample:
    passage: str
    claim: str
    language: str
    stance: str
    score: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class StanceReport:
    examples: int
    accuracy: float
    per_class: dict[str, dict[str, float]]  # stance -> precision, recall, f1, support
    per_language: dict[str, dict[str, float]]  # language -> accuracy, n
    confusion: dict[str, dict[str, int]]  # gold -> predicted -> n


def load_stance_examples(path: Path | str) -> list[StanceExample]:
    """JSONL of {"passage", "claim", "language", "stance", "score"?, "threshold"?}."""
    items = []
    with Path(path).open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if record["stance"] not in STANCES:
                raise ValueError(f"{path}:{number}: unknown stance {record['stance']!r}")
            items.append(
                StanceExample(
                    record["passage"],
                    record["claim"],
                    record.get("language", "en"),
                    record["stance"],
                    record.get("score"),
                    record.get("threshold"),
                )
            )
    return items


def evaluate_stance(examples: Sequence[StanceExample]) -> StanceReport:
    confusion = {gold: dict.fromkeys(STANCES, 0) for gold in STANCES}
    by_language: dict[str, list[int]] = {}
    for example in examples:
        predicted = predict_stance(
            example.passage, example.claim, example.language, example.score, example.threshold
        ).stance
        confusion[example.stance][predicted] += 1
        hits = by_language.setdefault(example.language, [0, 0])
        hits[0] += predicted == example.stance
        hits[1] += 1
    per_class = {}
    for stance in STANCES:
        tp = confusion[stance][stance]
        predicted_n = sum(confusion[g][stance] for g in STANCES)
        support = sum(confusion[stance].values())
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[stance] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    correct = sum(confusion[s][s] for s in STANCES)
    return StanceReport(
        examples=len(examples),
        accuracy=correct / len(examples) if examples else 0.0,
        per_class=per_class,
        per_language={lang: {"accuracy": hit / n, "n": n} for lang, (hit, n) in sorted(by_language.items())},
        confusion=confusion,
    )
