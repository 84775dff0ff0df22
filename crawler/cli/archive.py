"""CLI commands of the passage archive: `index rebuild`, `search`, `discover`, `claims promote`.

``register(app)`` is called by crawler/cli/app.py; ``match --backfill`` lives with ``match``
(crawler/cli/core.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from typing import Annotated, Any

import typer

from crawler.cli.context import clean_errors, fail, state

index_app = typer.Typer(help="The vector index of the passage archive.", no_args_is_help=True)


def archive_errors() -> AbstractContextManager[None]:
    """Clean lines for the archive's errors (missing index, unknown model revision, empty archive)."""
    from crawler.services.backfill import BackfillError
    from db.archive import ArchiveError
    from pipelines.vector_index import IndexMissingError

    return clean_errors(ArchiveError, IndexMissingError, BackfillError)


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


@contextmanager
def progress_bar(label: str) -> Iterator[Any]:
    """A rich progress bar on stderr (hidden when stderr is not a terminal); yields the callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


def rebuild(
    model: Annotated[
        list[str] | None,
        typer.Option("--model-key", help="Only this model revision (name@revision); repeatable."),
    ] = None,
) -> None:
    """Rebuild the vector index of each archived model revision from the database."""
    from crawler.services.app import open_sessions
    from crawler.services.archive import rebuild_index

    settings = state.settings()
    with archive_errors():
        sessions = open_sessions(settings)
        with progress_bar("indexing") as progress:
            reports = rebuild_index(settings, sessions, model, progress)
    for report in reports:
        typer.echo(
            f"{report.model_key}: {report.vectors} passages indexed in {report.seconds:.1f}s → {report.path}"
        )


def search(
    text: Annotated[str, typer.Argument(help="What to look for (any language the archive's models cover).")],
    language: Annotated[
        str | None,
        typer.Option("--language", help="Only passages of documents in this language (ISO 639-1)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only documents seen on or after this day (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only documents seen before this day (YYYY-MM-DD).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Only documents of this source (key or name) or outlet.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Number of passages to show.", min=1, max=1000)] = 10,
    fmt: Annotated[
        str, typer.Option("--format", help="table or jsonl (one JSON object per hit).", case_sensitive=False)
    ] = "table",
) -> None:
    """The archived passages nearest in meaning to TEXT, best first (cross-lingual)."""
    from crawler.services.app import open_sessions
    from crawler.services.search import Filters, search_archive

    if fmt.lower() not in ("table", "jsonl"):
        raise fail(f"unknown format {fmt!r}: table or jsonl", 2)
    filters = Filters(language, _when(since, "--since"), _when(until, "--until"), source)
    settings = state.settings()
    with archive_errors():
        hits = search_archive(settings, open_sessions(settings), text, filters, limit)
    if fmt.lower() == "jsonl":
        for hit in hits:
            typer.echo(json.dumps(hit.as_json(), ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"nearest to: {text[:80]}")
    for column in ("score", "passage", "date", "lang", "outlet", "document"):
        table.add_column(column, overflow="fold" if column == "passage" else "ellipsis")
    for hit in hits:
        table.add_row(
            f"{hit.score:.3f}",
            hit.passage[:300],
            hit.date or "-",
            hit.language or "-",
            hit.outlet or "-",
            f"{hit.document_id} {hit.url}",
        )
    Console(width=160).print(table)
    if not hits:
        typer.echo("no passages match the filters", err=True)


def register(app: typer.Typer) -> None:
    """Add `index`, `search`, `discover` and `claims promote` to the ``claimwatch`` app."""
    index_app.command("rebuild")(rebuild)
    app.add_typer(index_app, name="index")
    app.command()(search)
