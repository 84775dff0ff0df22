"""Rendering service results on the console: stage lines, the matching progress bar, the claim table."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import typer

from crawler.config import Settings
from crawler.services.app import Progress, claim_summary, describe_stage

if TYPE_CHECKING:
    from crawler.services.crawling import StageResult


class ConsoleObserver:
    """The stage observer of the command line: stage lines and notes on stderr, a progress bar while
    matching when stderr is a terminal."""

    def stage_finished(self, result: StageResult) -> None:
        typer.echo(describe_stage(result), err=True)
        if result.error:
            typer.secho(f"  {result.error}", fg=typer.colors.YELLOW, err=True)

    def note(self, message: str) -> None:
        typer.echo(message, err=True)

    def match_progress(self) -> AbstractContextManager[Progress | None]:
        return match_progress()


@contextmanager
def match_progress() -> Iterator[Progress]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("matching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("match", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


def shorten(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` characters, cut at a word boundary with an ellipsis
    (a single word longer than the line is cut inside it)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    cut = text[: width - 1]
    if text[width - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


MIN_FIT_WIDTH = 20  # narrower than this, a table leaves its free-text column out


def print_table(
    console: Any, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], fit: str
) -> None:
    """A table whose ``fit`` column (free text) takes the width the other columns leave on the
    console, its texts shortened at word boundaries; the other columns keep their whole values (on a
    console too narrow for the free text, it is left out)."""
    from rich.table import Table

    index = list(columns).index(fit)
    others = [
        max([len(column), *(len(row[i]) for row in rows)]) for i, column in enumerate(columns) if i != index
    ]
    # rich draws a border and one space of padding either side of every cell
    room = console.width - sum(others) - 3 * len(columns) - 1
    if room < MIN_FIT_WIDTH:  # too narrow for the free text: the other columns keep their values whole
        columns = [c for i, c in enumerate(columns) if i != index]
        rows = [[cell for i, cell in enumerate(row) if i != index] for row in rows]
        index = -1
    table = Table(title=title, show_lines=False)
    for i, column in enumerate(columns):
        table.add_column(column, no_wrap=True, overflow="ellipsis" if i == index else "fold")
    for row in rows:
        table.add_row(*(shorten(cell, room) if i == index else cell for i, cell in enumerate(row)))
    console.print(table)


def print_summary(settings: Settings, claim_set: str | None = None) -> None:
    """The per-claim table and the document counts that ``run`` and ``demo`` end with."""
    from rich.console import Console

    summary = claim_summary(settings, claim_set)
    rows, counts = summary.claims, summary.counts
    console = Console()
    columns = ("claim", "matches", "docs", "sources", "languages", "first seen", "last seen", "text")
    cells = [
        (
            row.key,
            str(row.matches),
            str(row.documents),
            str(row.sources),
            row.languages or "-",
            f"{row.first_seen:%Y-%m-%d}" if row.first_seen else "-",
            f"{row.last_seen:%Y-%m-%d}" if row.last_seen else "-",
            row.text,
        )
        for row in rows
    ]
    print_table(console, "Claims", columns, cells, fit="text")
    ms = {k.rsplit(".", 1)[1]: v for k, v in counts.items() if k.startswith("documents.match_status.")}
    console.print(
        f"documents: {counts['documents']} ({counts.get('documents.ok', 0)} relevant, "
        f"{counts.get('documents.irrelevant', 0)} irrelevant, {counts.get('documents.failed', 0)} failed; "
        f"{ms.get('duplicate', 0)} syndicated copies, {ms.get('not_scored', 0)} not scored by this model, "
        f"{ms.get('pending', 0)} pending) · matches: {counts['matches']} · claims: {counts['claims']}"
    )
