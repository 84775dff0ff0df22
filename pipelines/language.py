"""Language of a text as an ISO 639-1 code, from py3langid and the page's declared language."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

MIN_LETTERS = 20
# Above this many letters a confident detector beats the page's declared language: CMS templates
# often keep lang="en" on pages written in another language.
LONG_TEXT_LETTERS = 200
CONFIDENT_PROBABILITY = 0.95
# The detector's cost grows with the text; the first few thousand characters are plenty.
MAX_DETECT_CHARS = 10_000

_ISO_639_1_CODES = """
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da
de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz
ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln
lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi
pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti
tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
"""
ISO_639_1 = frozenset(_ISO_639_1_CODES.split())
# Withdrawn codes that old pages still declare.
_RENAMED = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}
_CODE_PREFIX = re.compile(r"[a-z]{2,3}")


def normalise_language(code: str | None) -> str | None:
    """'ru-RU', 'en_US', 'PT' -> 'ru', 'en', 'pt'; None when it is not a plausible ISO 639-1 code."""
    if not code:
        return None
    match = _CODE_PREFIX.match(code.strip().lower())
    if match is None or len(match.group()) != 2:
        return None
    if code.strip()[2:3] not in ("", "-", "_"):
        return None
    primary = _RENAMED.get(match.group(), match.group())
    return primary if primary in ISO_639_1 else None


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    logger.debug("loading the py3langid model")
    # py3langid 0.4 renamed the loader (the model file format changed with it).
    load = getattr(LanguageIdentifier, "from_model_file", None) or LanguageIdentifier.from_pickled_model
    return load(MODEL_FILE, norm_probs=True)


def _classify(text: str) -> tuple[str | None, float]:
    try:
        code, probability = _identifier().classify(text[:MAX_DETECT_CHARS])
    except Exception as exc:  # the detector must never break extraction
        logger.warning("language detection failed: %s", exc)
        return None, 0.0
    return normalise_language(str(code)), float(probability)


def detect_language(text: str, hint: str | None = None) -> str | None:
    """The text's language as a 2-letter code; ``hint`` is the page's declared language, if any."""
    declared = normalise_language(hint)
    letters = sum(1 for char in text[:MAX_DETECT_CHARS] if char.isalpha())
    if letters < MIN_LETTERS:
        return declared
    detected, probability = _classify(text)
    if detected is None or detected == declared:
        return declared or detected
    if declared is None:
        return detected
    if letters >= LONG_TEXT_LETTERS and probability >= CONFIDENT_PROBABILITY:
        logger.debug("page declares %s but its text reads as %s (p=%.3f)", declared, detected, probability)
        return detected
    return declared
