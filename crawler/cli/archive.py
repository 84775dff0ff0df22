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
from pathlib import Path
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


def discover(
    since: Annotated[
        str | None, typer.Option("--since", help="Only documents seen on or after this day.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Only documents seen before this day.")] = None,
    min_documents: Annotated[
        int, typer.Option("--min-documents", help="Documents a candidate must span (copies once).", min=2)
    ] = 2,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the candidates as JSON lines to this file.")
    ] = None,
) -> None:
    """Cluster archived passages that match no active claim into candidate claims, fastest-growing first."""
    from crawler.services.app import open_sessions
    from crawler.services.discovery import discover as run_discovery

    settings = state.settings()
    with archive_errors(), progress_bar("clustering") as progress:
        candidates = run_discovery(
            settings,
            open_sessions(settings),
            _when(since, "--since"),
            _when(until, "--until"),
            min_documents,
            progress=progress,
        )
    if output is not None:
        with archive_errors(), output.open("w", encoding="utf-8") as handle:
            for candidate in candidates:
                handle.write(json.dumps(candidate.as_json(), ensure_ascii=False) + "\n")
        typer.echo(f"{len(candidates)} candidates written to {output}", err=True)
        return
    for candidate in candidates:
        typer.echo(
            f"{candidate.id}  {candidate.documents} documents, {len(candidate.sources)} sources, "
            f"{','.join(candidate.languages)}, {candidate.first_seen}..{candidate.last_seen}, "
            f"growth {candidate.growth}: {candidate.label}"
        )
        for representative in candidate.representatives:
            typer.echo(f"    [{representative['document_id']}] {representative['passage'][:150]}")
    if not candidates:
        typer.echo("no candidate claims: every recurring passage matches a claim", err=True)


def promote(
    cluster_id: Annotated[str, typer.Argument(help="Candidate id from `claimwatch discover`.")],
    key: Annotated[str, typer.Option("--id", help="Key of the new claim.")],
    text: Annotated[
        str | None, typer.Option("--text", help="The claim in your words (default: its central passage).")
    ] = None,
    claim_set: Annotated[str, typer.Option("--claim-set", help="Claim set of the new claim.")] = "discovered",
    since: Annotated[str | None, typer.Option("--since", help="The window `discover` used.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="The window `discover` used.")] = None,
    min_documents: Annotated[int, typer.Option("--min-documents", help="As given to `discover`.", min=2)] = 2,
    backfill: Annotated[
        bool, typer.Option("--backfill/--no-backfill", help="Give the claim its history at once (backfill).")
    ] = True,
) -> None:
    """Turn a discovered candidate into an active claim, then backfill its matches from the archive."""
    from crawler.services.app import open_sessions
    from crawler.services.backfill import run_backfill
    from crawler.services.discovery import DiscoveryError, find_candidate
    from crawler.services.discovery import discover as run_discovery
    from crawler.services.discovery import promote as add_claim
    from db.session import session_scope

    settings = state.settings()
    with archive_errors(), clean_errors(DiscoveryError):
        sessions = open_sessions(settings)
        candidates = run_discovery(
            settings, sessions, _when(since, "--since"), _when(until, "--until"), min_documents
        )
        candidate = find_candidate(candidates, cluster_id)
        with session_scope(sessions) as session:
            add_claim(session, candidate, key, text, claim_set)
        typer.echo(f"claim {claim_set}/{key} added from {cluster_id} ({candidate.documents} documents)")
        if backfill:
            with progress_bar("backfill") as progress:
                outcome = run_backfill(
                    settings, sessions, claim_set=claim_set, claim_keys=[key], progress=progress
                )
            typer.echo(
                f"backfill: {outcome.documents} archived documents scored, "
                f"{outcome.result.counters.get('matches_stored', 0)} matches of {key} stored"
            )


def register(app: typer.Typer) -> None:
    """Add `index`, `search`, `discover` and `claims promote` to the ``claimwatch`` app."""
    index_app.command("rebuild")(rebuild)
    app.add_typer(index_app, name="index")
    app.command()(search)
    app.command()(discover)
    claims = next(group for group in app.registered_groups if group.name == "claims")
    claims.typer_instance.command("promote")(promote)
