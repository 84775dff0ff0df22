"""CLI command ``bench``: the pipeline's throughput against the encoder alone (crawler/bench/benchmark.py).

``register(app)`` is called by crawler/cli/app.py; the shared CLI state comes from crawler/cli/context.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from crawler.bench.benchmark import SMALL_PAGES
from crawler.cli.context import clean_errors, fail, state

logger = logging.getLogger(__name__)


def bench(
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the results as JSON to this file.")
    ] = None,
    pages: Annotated[
        int | None,
        typer.Option(
            "--pages",
            min=0,
            help="Corpus pages to serve (beyond the real ones: synthesised variants). Default: every real "
            "page of the corpora.",
        ),
    ] = None,
    small: Annotated[
        bool,
        typer.Option(
            "--small",
            help=f"CI size: {SMALL_PAGES} corpus pages (as --pages {SMALL_PAGES}) plus the demo site.",
        ),
    ] = False,
    corpora: Annotated[
        Path | None,
        typer.Option("--corpora", help="The shared corpora directory (default: the corpora_dir setting)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="An empty database to benchmark (e.g. PostgreSQL); default: a temporary SQLite file.",
        ),
    ] = None,
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Also crawl the demo site.")] = True,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the results table (Markdown) to this file.")
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="How crawl and match run: `sequential` (crawl, then match), `overlapped` (match while "
            "crawling, when this version can) or `auto` (what `claimwatch run` does).",
        ),
    ] = "auto",
    relevance_filter: Annotated[
        bool,
        typer.Option(
            "--relevance-filter/--no-relevance-filter",
            help="Keep the relevance filter on: only pages about Russia and Azerbaijan (the demo's) reach "
            "the encoder, the corpus pages are crawled, extracted and stored only. For memory and crawl "
            "measurements at sizes the encoder could not get through in reasonable time.",
        ),
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            help="cProfile the first crawl + match run (this process; the crawl subprocess shows as waiting) "
            "into this .prof file.",
        ),
    ] = None,
) -> None:
    """Benchmark crawl → extract → match → store on pages served on 127.0.0.1: raw encode vs. pipeline
    throughput, recrawl cost, peak RSS."""
    from crawler.bench.benchmark import (
        BenchError,
        BenchOptions,
        results_markdown,
        run_bench,
    )

    if small and pages is not None:
        raise fail("give either --small or --pages", 2)
    if mode not in {"auto", "sequential", "overlapped"}:
        raise fail("--mode must be auto, sequential or overlapped", 2)
    settings = state.settings()
    options = BenchOptions(
        corpora=corpora or Path(settings.corpora_dir),
        pages=SMALL_PAGES if small else pages,
        database_url=database_url,
        demo=demo,
        profile=profile,
        mode=mode,
        relevance_filter=relevance_filter,
    )
    with clean_errors(BenchError):
        results = run_bench(settings, options, echo=lambda line: typer.echo(line, err=True))
    text = json.dumps(results, indent=2, ensure_ascii=False)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"results written to {output}", err=True)
    table = results_markdown(results)
    if markdown is not None:
        markdown.write_text(table, encoding="utf-8")
    typer.echo(table)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
