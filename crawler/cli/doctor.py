"""``claimwatch doctor``: check the setup (and with --sources, probe every enabled source)."""

from __future__ import annotations

from typing import Annotated

import typer

from crawler.cli.context import clean_errors, state

STYLES = {
    "ok": "green",
    "warn": "yellow",
    "fail": "bold red",
    "skip": "dim",
    "moved": "yellow",
    "stale": "yellow",
    "empty": "yellow",
    "not-a-feed": "red",
    "blocked-by-robots": "red",
    "error": "red",
}


def doctor(
    sources: Annotated[
        bool,
        typer.Option(
            "--sources",
            help="Also probe every enabled source once (robots.txt honoured, one conditional GET each) "
            "and store the verdicts (shown by `sources list` and the source_health view).",
        ),
    ] = False,
    fix_moved: Annotated[
        bool,
        typer.Option(
            "--fix-moved",
            help="With --sources: point sources that redirect permanently at their new address "
            "(update your sources file too, or `sources load` puts the old one back).",
        ),
    ] = False,
    models: Annotated[
        bool,
        typer.Option(
            "--models/--no-models", help="Load and try the main and multilingual models (about 10 s)."
        ),
    ] = True,
) -> None:
    """Check the setup: database, models, SMTP, Redis, disk space; with --sources, the sources too.

    Prints a verdict (ok, warn, fail, skip) and a fix per line; exits with status 1 when an essential
    check fails (database, main model, a configured SMTP or Redis server, disk space, or no usable
    source at all)."""
    from rich.console import Console
    from rich.table import Table

    from crawler.services.doctor import run_doctor

    settings = state.settings()
    with clean_errors():
        report = run_doctor(
            settings,
            sources=sources or fix_moved,
            fix_moved=fix_moved,
            models=models,
            note=lambda message: typer.echo(message, err=True),
        )
    console = Console()
    table = Table(title="claimwatch doctor", show_lines=False)
    table.add_column("check", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("found", ratio=3)
    table.add_column("fix", ratio=2)
    for check in report.checks:
        style = STYLES.get(check.status, "")
        table.add_row(check.name, f"[{style}]{check.status}[/]", check.detail, check.fix or "-")
    console.print(table)
    if report.probes:
        probes = Table(title="sources", show_lines=False)
        for column in ("source", "kind", "verdict", "HTTP", "items", "7 days", "newest"):
            probes.add_column(column, no_wrap=column in {"source", "verdict"})
        probes.add_column("found · fix", ratio=1)
        for probe in report.probes:
            contents = probe.contents
            parsed = contents is not None and contents.parsed_as is not None
            newest = contents.newest if contents is not None else None
            found = probe.verdict.detail
            if probe.verdict.fix:
                found += f" · {probe.verdict.fix}"
            if probe.updated:
                found += f" · address updated to {probe.moved_to}"
            style = STYLES.get(probe.verdict.status, "")
            probes.add_row(
                probe.key,
                probe.kind,
                f"[{style}]{probe.verdict.status}[/]",
                str(probe.http_status or "-"),
                str(contents.items) if parsed and contents is not None else "-",
                str(contents.recent) if parsed and contents is not None else "-",
                f"{newest:%Y-%m-%d}" if newest else "-",
                found,
            )
        console.print(probes)
    if not report.ok:
        failed = [c.name for c in report.checks if c.status == "fail" and c.essential]
        typer.secho(f"doctor: essential checks failed: {', '.join(failed)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to the ``claimwatch`` app."""
    app.command()(doctor)
