from pipelines.dedup import (
    content_hash,
    from_signed64,
    hamming_distance,
    is_near_duplicate,
    simhash,
    simhash_bands,
    to_signed64,
)

ARTICLE = " ".join(
    f"Sentence {i} explains how the talks between Baku and Moscow went on day {i} of the visit."
    for i in range(40)
)


def test_exact_hash_ignores_case_and_spacing() -> None:
    assert content_hash("Hello,   World!") == content_hash("hello world")
    assert content_hash("hello world") != content_hash("hello there world")


def test_syndicated_copy_is_near_duplicate() -> None:
    reprint = (
        "This article first appeared in the Caspian Ledger. " + ARTICLE + " Republished with permission."
    )
    assert is_near_duplicate(simhash(ARTICLE), simhash(reprint))


def test_different_article_is_not_near_duplicate() -> None:
    other = " ".join(f"Paragraph {i}: a tram strike in Lisbon stopped line {i} for hours." for i in range(40))
    assert hamming_distance(simhash(ARTICLE), simhash(other)) > 10


def test_signed_storage_roundtrip_and_bands() -> None:
    for value in (0, 1, (1 << 63) + 5, (1 << 64) - 1):
        assert from_signed64(to_signed64(value)) == value
        assert -(1 << 63) <= to_signed64(value) < (1 << 63)
    value = 0x1234_5678_9ABC_DEF0
    assert simhash_bands(value) == (0xDEF0, 0x9ABC, 0x5678, 0x1234)
    assert simhash_bands(to_signed64(value)) == simhash_bands(value)
