"""The claims table: texts cut at word boundaries with an ellipsis, fitted to the console's width."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from crawler.cli.render import print_table, shorten

TEXT = "Baku says two businessmen of Azerbaijani origin were detained in Yekaterinburg without charge."


@pytest.mark.parametrize("width", [12, 30, 47, 60, 80])
def test_shorten_cuts_at_a_word_boundary(width: int) -> None:
    short = shorten(TEXT, width)
    assert len(short) <= width and short.endswith("…")
    kept = short[:-1]
    assert TEXT.startswith(kept) and TEXT[len(kept)] in " ,."  # the next character ends a word


def test_shorten_keeps_short_texts_and_cuts_inside_one_long_word() -> None:
    assert shorten("  two   words ", 20) == "two words"
    assert shorten("Supercalifragilistic", 8) == "Superca…"


@pytest.mark.parametrize("width", [80, 120, 200])
def test_table_fits_the_console(width: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    rows = [("seed-01", "3", TEXT), ("seed-02", "0", "Short claim.")]
    print_table(console, "Claims", ("claim", "docs", "text"), rows, fit="text")
    lines = out.getvalue().splitlines()
    assert all(len(line) <= width for line in lines)
    body = [line for line in lines if "seed-01" in line]
    assert len(body) == 1  # one line per claim, no wrapping
    shown = body[0].split("│")[3].strip()
    if width >= 120:
        assert shown == TEXT
    else:
        assert shown.endswith("…") and TEXT.startswith(shown[:-1]) and TEXT[len(shown) - 1] in " ,."


def test_a_narrow_console_drops_the_free_text_and_keeps_the_claim_keys_whole() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    columns = ("claim", "matches", "docs", "sources", "languages", "first seen", "last seen", "text")
    rows = [("seed-01", "3", "3", "3", "en,ru", "2026-11-30", "2026-12-02", TEXT)]
    print_table(console, "Claims", columns, rows, fit="text")
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    body = next(line for line in lines if "seed-01" in line)
    assert "2026-12-02" in body and "en,ru" in body and TEXT[:10] not in body
