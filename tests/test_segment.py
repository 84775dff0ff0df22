from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.segment import segment_text, split_sentences


def texts_of(text: str) -> list[str]:
    return [p.text for p in split_sentences(text)]


def test_sentences_and_abbreviations() -> None:
    text = (
        "Mr. Aliyev met Dr. Smith in Baku on Monday. The talks, said S. Kiriyenko's office, went well! "
        "Was it a real breakthrough for both sides? Analysts doubt it…\n"
        "A new paragraph starts here without a full stop"
    )
    assert texts_of(text) == [
        "Mr. Aliyev met Dr. Smith in Baku on Monday.",
        "The talks, said S. Kiriyenko's office, went well!",
        "Was it a real breakthrough for both sides? Analysts doubt it…",
        "A new paragraph starts here without a full stop",
    ]


def test_russian_and_quotes() -> None:
    text = "«Москва не готова признать новые реалии», — сказал эксперт. В т.е. случае Баку ответит. Да."
    assert texts_of(text) == [
        "«Москва не готова признать новые реалии», — сказал эксперт.",
        "В т.е. случае Баку ответит. Да.",
    ]


def test_long_sentences_are_cut_and_windows_added() -> None:
    long = "word, " * 300 + "end."
    pieces = split_sentences(long, max_chars=200)
    assert len(pieces) > 1 and all(len(p.text) <= 200 for p in pieces)
    text = (
        "First sentence is long enough here. Second sentence is long enough too. "
        "Third one is long as well, ok."
    )
    passages = segment_text(text, window=2)
    assert [p.text for p in passages][3:] == [
        "First sentence is long enough here. Second sentence is long enough too.",
        "Second sentence is long enough too. Third one is long as well, ok.",
    ]


def test_empty_and_whitespace() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\t \n") == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?…\n«»\"'MЖ1é-,;")), max_size=800), st.integers(1, 3))
def test_offsets_always_point_into_the_text(text: str, window: int) -> None:
    passages = segment_text(text, window=window, max_chars=120)
    sentences = split_sentences(text, max_chars=120)
    for passage in passages:
        assert text[passage.start : passage.end] == passage.text
        assert passage.text.strip() == passage.text and passage.text
    for sentence in sentences:
        assert len(sentence.text) <= 120
    # sentences are in order and do not overlap
    assert all(a.end <= b.start for a, b in zip(sentences, sentences[1:], strict=False))
