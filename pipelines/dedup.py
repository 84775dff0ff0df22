"""Exact and near-duplicate detection for syndicated copies.

Exact copies share a content hash of the normalised text. Near-duplicates (a reprint with another
headline, a credit line, a trimmed paragraph) are found with a 64-bit SimHash over word 3-shingles:
two texts are near-duplicates when their fingerprints differ in at most ``NEAR_DUPLICATE_BITS`` bits.
The fingerprint is split into four 16-bit bands; by the pigeonhole principle two fingerprints within
3 bits share at least one band exactly, so the database finds candidates with indexed equality.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

NEAR_DUPLICATE_BITS = 3
_WORD = re.compile(r"\w+", re.UNICODE)
_MASK64 = (1 << 64) - 1


def normalise_text(text: str) -> str:
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).lower()))


def content_hash(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def simhash(text: str, shingle: int = 3) -> int:
    """64-bit SimHash of the text's word shingles, as an unsigned integer."""
    words = normalise_text(text).split()
    if not words:
        return 0
    grams = [" ".join(words[i : i + shingle]) for i in range(max(1, len(words) - shingle + 1))]
    weights = [0] * 64
    for gram in grams:
        value = int.from_bytes(hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest(), "big")
        for bit in range(64):
            weights[bit] += 1 if value >> bit & 1 else -1
    fingerprint = 0
    for bit, weight in enumerate(weights):
        if weight > 0:
            fingerprint |= 1 << bit
    return fingerprint


def to_signed64(value: int) -> int:
    """Store an unsigned 64-bit fingerprint in a signed BIGINT column."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed64(value: int) -> int:
    return value & _MASK64


def simhash_bands(fingerprint: int) -> tuple[int, int, int, int]:
    fingerprint &= _MASK64
    return tuple((fingerprint >> (16 * i)) & 0xFFFF for i in range(4))  # type: ignore[return-value]


def hamming_distance(a: int, b: int) -> int:
    return ((a ^ b) & _MASK64).bit_count()


def is_near_duplicate(a: int, b: int, max_bits: int = NEAR_DUPLICATE_BITS) -> bool:
    return hamming_distance(a, b) <= max_bits
