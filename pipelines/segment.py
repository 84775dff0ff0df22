"""Cutting article text into passages to embed: sentences and windows of consecutive sentences.

Offsets always refer to the original text: ``text[p.start:p.end] == p.text`` for every passage, so
researchers can find a matched passage in the stored document.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Sentence-final punctuation (Latin, Cyrillic, CJK, Arabic), optional closing quotes or brackets,
# then whitespace.
BOUNDARY = re.compile(r"[.!?…。！？؟]+[\"'»”’)\]]*\s+")
# What may start the next sentence: an upper-case letter, a digit, an opening quote or bracket, a dash.
SENTENCE_START = re.compile(r"[\"'«“‘(\[\-–—]?\s*[^\W_a-zа-яё]", re.UNICODE)
ABBREVIATIONS_TEXT = """
    mr mrs ms dr prof st jr sr gen col lt sgt rep sen gov pres vs etc inc ltd co corp no nos vol fig
    jan feb mar apr jun jul aug sep sept oct nov dec approx dept est u.s u.k e.g i.e a.m p.m
    г гг им ул т.е т.к др пр см стр тыс млн млрд руб
"""
ABBREVIATIONS = frozenset(ABBREVIATIONS_TEXT.split())
MIN_SENTENCE_CHARS = 25


@dataclass(frozen=True)
class Passage:
    text: str
    start: int
    end: int


def is_abbreviation(text: str, end: int) -> bool:
    """Does the word ending at ``end`` (just before a period) look like an abbreviation?"""
    start = end
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    word = text[start:end].lower().strip(".")
    if not word:
        return False
    if len(word) == 1 and word.isalpha():  # an initial: "S. Kiriyenko"
        return True
    return word in ABBREVIATIONS


def sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each sentence, whitespace trimmed; line breaks always end a sentence."""
    for line in re.finditer(r"[^\n]+", text):
        line_start = line.start()
        segment_start = line_start
        for boundary in BOUNDARY.finditer(line.group()):
            end = line_start + boundary.end()
            punctuation_at = line_start + boundary.start()
            following = text[end : end + 3]
            if not following or not SENTENCE_START.match(following):
                continue
            if text[punctuation_at] == "." and is_abbreviation(text, punctuation_at):
                continue
            yield from trimmed(text, segment_start, end)
            segment_start = end
        yield from trimmed(text, segment_start, line.end())


def trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


def split_long(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Cut an over-long span at clause punctuation or spaces so that no piece exceeds max_chars."""
    while end - start > max_chars:
        window = text[start : start + max_chars]
        cut = max(window.rfind(mark) for mark in (";", ":", ",", " — ", " – "))
        if cut < max_chars // 3:
            cut = window.rfind(" ")
        if cut < max_chars // 3:
            cut = max_chars - 1
        yield from trimmed(text, start, start + cut + 1)
        start += cut + 1
    yield from trimmed(text, start, end)


def split_sentences(text: str, max_chars: int = 600) -> list[Passage]:
    """Sentences of ``text``; very short fragments are joined to their neighbour within a line."""
    spans: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        for piece in split_long(text, start, end, max_chars):
            previous = spans[-1] if spans else None
            same_line = previous is not None and "\n" not in text[previous[1] : piece[0]]
            # a fragment ("Why?", "Да.") joins its predecessor; a leading one joins its successor
            short = piece[1] - piece[0] < MIN_SENTENCE_CHARS or (
                len(spans) == 1 and previous is not None and previous[1] - previous[0] < MIN_SENTENCE_CHARS
            )
            if previous is not None and same_line and short and piece[1] - previous[0] <= max_chars:
                spans[-1] = (previous[0], piece[1])
            else:
                spans.append(piece)
    return [Passage(text[start:end], start, end) for start, end in spans]


def windows_of(text: str, sentences: Sequence[Passage], window: int = 2) -> list[Passage]:
    """The sentences, then every run of 2 … ``window`` consecutive sentences, in that order (run by
    run length, then by position; windows are not filtered, so their order is predictable)."""
    passages = list(sentences)
    for size in range(2, window + 1):
        for index in range(len(sentences) - size + 1):
            first, last = sentences[index], sentences[index + size - 1]
            passages.append(Passage(text[first.start : last.end], first.start, last.end))
    return passages


def segment_text(text: str, window: int = 2, max_chars: int = 600) -> list[Passage]:
    """Every sentence, plus every run of up to ``window`` consecutive sentences (claims are often
    spread over two sentences)."""
    return windows_of(text, split_sentences(text, max_chars), window)
