"""The ``claimwatch`` command line. Heavy libraries (Scrapy, sentence-transformers) load lazily."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from crawler import cli_bench, cli_eval, cli_research, cli_schedule
from crawler.app import (
    UsageError,
    do_crawl,
    do_crawl_and_match,
    do_match,
    initialise,
    load_claims_into,
    open_sessions,
    print_summary,
)
from crawler.config import ConfigError, Settings, load_settings

logger = logging.getLogger(__name__)

app = typer.Typer(
    help="claimwatch: crawl commentary on Russia–Azerbaijan relations and follow how the claims of a "
    "seed article travel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
claims_app = typer.Typer(help="List and load claim sets.", no_args_is_help=True)
sources_app = typer.Typer(
    help="List and load crawl sources (feeds, news sitemaps, GDELT queries).", no_args_is_help=True
)
app.add_typer(claims_app, name="claims")
app.add_typer(sources_app, name="sources")


@dataclasses.dataclass
class State:
    config_file: Path | None = None
    database_url: str | None = None
    log_level: str | None = None
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(config_file=self.config_file)
            overrides: dict[str, Any] = {}
            if self.database_url:
                overrides["database_url"] = self.database_url
            if self.log_level:
                overrides["log_level"] = self.log_level.upper()
            self._settings = dataclasses.replace(settings, **overrides)
        return self._settings


state = State()


def error_line(exc: BaseException) -> str:
    """The message of ``exc``; for a database error, the first line of the driver's."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    return str(exc)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def domain_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input or environment: shown as one clean line, not a traceback."""
    from crawler.alerting import AlertError
    from crawler.scheduling import LockHeld
    from crawler.sources import SourcesFileError
    from db.migrate import SchemaOutOfDate
    from db.session import DatabaseUnavailable
    from pipelines.claims import ClaimsFileError
    from pipelines.embed import ModelLoadError

    return (
        ConfigError,
        UsageError,
        DatabaseUnavailable,
        SchemaOutOfDate,
        ClaimsFileError,
        ModelLoadError,
        SourcesFileError,
        AlertError,
        LockHeld,
        OSError,
    )


@contextmanager
def clean_errors(*extra: type[BaseException]) -> Iterator[None]:
    """Domain errors, and ``extra`` ones, end the command with one clean line; a connection lost
    mid-run says that committed work is kept. The research commands pass SQLAlchemyError in
    ``extra``: there a refused query (an OperationalError on SQLite too) is the user's input."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except typer.Exit:
        raise
    except (*domain_errors(), *extra) as exc:
        raise fail(error_line(exc)) from None
    except OperationalError as exc:  # the database went away mid-run: what is committed stays
        detail = error_line(exc)[:300]
        raise fail(
            f"lost the database connection: {detail}; committed work is kept and the next run "
            "continues where this one stopped"
        ) from None


@app.callback()
def main_options(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML config file (default: ./claimwatch.toml if present)."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Database URL; overrides CLAIMWATCH_DATABASE_URL.")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = None,
) -> None:
    state.config_file, state.database_url, state.log_level = config, database_url, log_level
    state._settings = None
    from crawler.logs import configure_logging

    try:
        settings = state.settings()
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    configure_logging(settings.log_level, settings.log_format)


# --- init, claims, sources -----------------------------------------------------------------------


@app.command()
def init(
    claims: Annotated[
        Path | None, typer.Option("--claims", help="Claims file to load (default: the shipped seed claims).")
    ] = None,
) -> None:
    """Create or migrate the database (alembic upgrade head) and load the default claims and sources."""
    settings = state.settings()
    with clean_errors():
        initialise(settings, claims)
    from crawler.config import redact_url

    typer.echo(f"database ready: {redact_url(settings.database_url)}")


@claims_app.command("list")
def claims_list(
    claim_set: Annotated[str | None, typer.Option("--set", help="Only this claim set.")] = None,
) -> None:
    """List the active claims in the database."""
    from db.queries import active_claims

    with clean_errors():
        sessions = open_sessions(state.settings())
        with sessions() as session:
            rows = active_claims(session, claim_set)
    for row in rows:
        paragraph = f"¶{row.paragraph}" if row.paragraph is not None else ""
        typer.echo(f"{row.claim_set}\t{row.key}\t{paragraph}\t{row.text}")
    typer.echo(f"{len(rows)} claims", err=True)


@claims_app.command("load")
def claims_load(
    path: Annotated[Path, typer.Argument(help="Claims file: YAML with a `claims:` list, or JSONL.")],
    claim_set: Annotated[
        str | None, typer.Option("--set", help="Claim set name (default: the file's claim_set or its name).")
    ] = None,
) -> None:
    """Load (or update) a claim set from a file. Claims missing from the file are deactivated."""
    from db.session import session_scope

    with clean_errors():
        sessions = open_sessions(state.settings())
        with session_scope(sessions) as session:
            name, result = load_claims_into(session, path, claim_set)
    typer.echo(
        f"claim set {name}: {result.added} added, {result.updated} updated, {result.unchanged} unchanged"
    )


@claims_app.command("validate")
def claims_validate(path: Annotated[Path, typer.Argument(help="Claims file to check.")]) -> None:
    """Check a claims file without touching the database."""
    from pipelines.claims import load_claims

    with clean_errors():
        claims = load_claims(path)
    typer.echo(
        f"{path}: {len(claims)} claims, ids {claims[0].id} … {claims[-1].id}" if claims else f"{path}: empty"
    )


@sources_app.command("list")
def sources_list(
    all_sources: Annotated[bool, typer.Option("--all", help="Include disabled sources.")] = False,
) -> None:
    """List crawl sources with their last fetch status."""
    from db.queries import list_sources

    with clean_errors():
        sessions = open_sessions(state.settings())
        with sessions() as session:
            rows = list_sources(session, enabled_only=not all_sources)
    for s in rows:
        typer.echo(
            "\t".join(
                [
                    s.key,
                    s.kind,
                    s.language or "-",
                    s.country or "-",
                    s.perspective or "-",
                    s.last_status or "never fetched",
                    s.url,
                ]
            )
        )
    typer.echo(f"{len(rows)} sources", err=True)


@sources_app.command("load")
def sources_load(
    path: Annotated[
        Path | None, typer.Argument(help="Sources YAML (default: the shipped curated list).")
    ] = None,
) -> None:
    """Insert or update sources from a YAML file (crawl state of known sources is kept)."""
    from crawler.sources import load_sources
    from db.queries import upsert_sources
    from db.session import session_scope

    with clean_errors():
        sources = load_sources(path)
        sessions = open_sessions(state.settings())
        with session_scope(sessions) as session:
            count = upsert_sources(session, sources)
    typer.echo(f"{count} sources loaded")


# --- crawl, match, run ---------------------------------------------------------------------------

SpiderOption = Annotated[
    list[str] | None,
    typer.Option("--spider", help="Spider to run: feeds, sitemaps or gdelt (repeatable; default: all)."),
]


SharedRunOption = Annotated[
    str | None,
    typer.Option(
        "--shared-run",
        help="With CLAIMWATCH_REDIS_URL: the shared crawl run (Redis keys) to join; every crawl process "
        "given the same KEY shares one request queue and seen-request filter (default: setting "
        "shared_run, else today's UTC date).",
    ),
]


def with_shared_run(settings: Settings, shared_run: str | None) -> Settings:
    if shared_run is None:
        return settings
    if not settings.redis_url:
        raise fail("--shared-run needs a Redis server: set CLAIMWATCH_REDIS_URL", 2)
    return dataclasses.replace(settings, shared_run=shared_run)


@app.command()
def crawl(spider: SpiderOption = None, shared_run: SharedRunOption = None) -> None:
    """Crawl the configured sources for new articles (in a subprocess) and store them.

    With CLAIMWATCH_REDIS_URL set, several crawl processes (on any machines) share the run: they do
    not take the exclusive run lock, and each page is fetched by one of them.
    """
    from crawler.scheduling import run_lock

    settings = with_shared_run(state.settings(), shared_run)
    with clean_errors():
        if settings.redis_url:
            result = do_crawl(settings, spider, member=True)
        else:
            with run_lock(settings, "crawl"):
                result = do_crawl(settings, spider)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def match(
    limit: Annotated[int | None, typer.Option("--limit", help="Match at most this many documents.")] = None,
    rematch: Annotated[
        bool,
        typer.Option("--rematch", help="Queue already matched documents again first (new model/claims)."),
    ] = False,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker",
            help="Run as one of several match workers (any machines, one database): claim pending "
            "documents batch by batch (PostgreSQL: FOR UPDATE SKIP LOCKED) and keep polling for new "
            "ones; does not take the run lock.",
        ),
    ] = False,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            "--idle-exit",
            help="With --worker: exit once no document has been pending for this many seconds "
            "(default: keep polling until SIGTERM/Ctrl-C).",
            min=0,
        ),
    ] = None,
    poll: Annotated[
        float,
        typer.Option("--poll", help="With --worker: seconds between looks at an empty queue.", min=0.05),
    ] = 2.0,
) -> None:
    """Match the passages of stored, not yet matched documents against the active claims."""
    from crawler.scheduling import run_lock, stop_signals

    settings = state.settings()
    if (idle_exit is not None or poll != 2.0) and not worker:
        raise fail("--idle-exit and --poll need --worker", 2)
    if worker and rematch:
        raise fail("--rematch cannot be combined with --worker (run `claimwatch match --rematch` once)", 2)
    with clean_errors():
        if worker:
            import threading

            stop = threading.Event()
            with stop_signals(stop.set):
                result = do_match(settings, limit, idle_exit=idle_exit, poll=poll, stop=stop, worker=True)
        else:
            with run_lock(settings, "match"):
                if rematch:
                    from db.queries import requeue_documents
                    from db.session import session_scope

                    with session_scope(open_sessions(settings)) as session:
                        typer.echo(f"{requeue_documents(session)} documents queued again", err=True)
                result = do_match(settings, limit)
    if not (result.ok or (worker and result.status == "interrupted")):
        raise typer.Exit(1)


@app.command()
def run(spider: SpiderOption = None, shared_run: SharedRunOption = None) -> None:
    """Crawl and match at once: the crawl subprocess stores documents while this process matches them,
    then the rest is matched. The daily job's core, under the run lock (`claimwatch schedule --once`
    also sends alerts)."""
    from crawler.scheduling import run_lock

    settings = with_shared_run(state.settings(), shared_run)
    with clean_errors(), run_lock(settings, "run"):
        crawled, matched = do_crawl_and_match(settings, spider)
        print_summary(settings)
    if not (crawled.ok and matched.ok):
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Show the database's contents and the latest runs."""
    from crawler.scheduling import schedule_status_lines
    from db.queries import recent_runs, table_counts

    settings = state.settings()
    with clean_errors():
        sessions = open_sessions(settings)
        with sessions() as session:
            counts = table_counts(session)
            runs = recent_runs(session)
        schedule_lines = schedule_status_lines(settings)
    for name, value in counts.items():
        typer.echo(f"{name}: {value}")
    for r in runs:
        took = f"{(r.finished_at - r.started_at).total_seconds():.1f}s" if r.finished_at else "-"
        typer.echo(
            f"run {r.id} {r.kind} {r.status} started {r.started_at:%Y-%m-%d %H:%M:%S} took {took}"
            + (f" error: {r.error}" if r.error else "")
        )
    for line in schedule_lines:
        typer.echo(line)


@app.command("settings")
def show_settings(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the settings reference instead.")
    ] = False,
) -> None:
    """Print the effective settings (passwords hidden) as JSON."""
    if markdown:
        from crawler.config import settings_markdown

        typer.echo(settings_markdown())
        return
    typer.echo(json.dumps(state.settings().redacted(), indent=2, default=str))


# --- offline tools: score, extract ---------------------------------------------------------------


def read_jsonl_inputs(path: Path) -> list[tuple[Any, str]]:
    from pipelines.claims import ClaimsFileError, iter_jsonl

    inputs = []
    stream = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
    with stream:
        for number, record in iter_jsonl(stream, path):
            if not isinstance(record, dict) or "id" not in record or not isinstance(record.get("text"), str):
                raise ClaimsFileError(f'{path}:{number}: expected {{"id": ..., "text": "..."}}')
            inputs.append((record["id"], record["text"]))
    return inputs


@app.command()
def score(
    claims: Annotated[Path, typer.Option("--claims", help="Claims file (YAML `claims:` list or JSONL).")],
    input: Annotated[Path, typer.Option("--input", help='JSONL of {"id", "text"} (- for stdin).')],
    top_k: Annotated[int, typer.Option("--top-k", help="At most K matches per input.", min=1)] = 10,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Minimum cosine score (default: the model's calibrated threshold; -1 returns all).",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="sentence-transformers model (default: settings).")
    ] = None,
    batch_inputs: Annotated[
        int, typer.Option("--batch-inputs", help="Inputs matched per batch.", min=1)
    ] = 256,
) -> None:
    """Match arbitrary texts against a claims file offline; JSONL results on stdout, in input order."""
    from crawler.matching import load_configured_encoder
    from pipelines.claims import load_claims
    from pipelines.embed import FileEmbeddingCache
    from pipelines.match import ClaimIndex, default_threshold, match_texts

    settings = state.settings()
    with clean_errors():
        claim_list = load_claims(claims)
        inputs = read_jsonl_inputs(input)
        model_name = model or settings.model
        # embedding thousands of new claims takes minutes: show progress
        encoder = load_configured_encoder(settings, model_name, show_progress=sys.stderr.isatty())
        cache = FileEmbeddingCache(Path(settings.cache_dir)) if settings.cache_dir else FileEmbeddingCache()
        index = ClaimIndex.build(encoder, claim_list, cache=cache)
        cutoff = default_threshold(model_name) if threshold is None else threshold
        for start in range(0, len(inputs), batch_inputs):
            chunk = inputs[start : start + batch_inputs]
            results = match_texts(encoder, index, [text for _, text in chunk], threshold=cutoff, top_k=top_k)
            for (ident, _), matches in zip(chunk, results, strict=True):
                payload = {"id": ident, "matches": [dataclasses.asdict(m) for m in matches]}
                sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
            sys.stdout.flush()


def extract_file(path: Path) -> dict[str, Any]:
    import gzip

    from pipelines.extract import decode_html, extract_article, sniff_non_html

    record: dict[str, Any] = {
        "path": str(path),
        "url": None,
        "title": None,
        "author": None,
        "date": None,
        "language": None,
        "text": None,
    }
    try:
        body = path.read_bytes()
        if path.suffix == ".gz":
            body = gzip.decompress(body)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        record["error"] = f"cannot read file: {exc}"
        return record
    reason = sniff_non_html(body, None)
    html = decode_html(body) if reason is None else None
    if reason is None and html is None:
        reason = "undecodable body"
    article = extract_article(html) if html is not None else None
    if article is None:
        record["error"] = reason or "no article text extracted"
        return record
    record.update(
        url=article.url,
        title=article.title,
        author=article.author,
        date=article.date,
        language=article.language,
        text=article.text,
    )
    return record


@app.command()
def extract(
    paths: Annotated[list[Path], typer.Argument(help="Saved HTML files (.html or .html.gz).")],
) -> None:
    """Extract article text and metadata from saved HTML files; JSONL on stdout, one line per file."""
    for path in paths:
        sys.stdout.write(json.dumps(extract_file(path), ensure_ascii=False) + "\n")
    sys.stdout.flush()


# --- demo ----------------------------------------------------------------------------------------

DEMO_DATABASE_URL = "sqlite:///claimwatch-demo.db"


@app.command()
def demo(
    port: Annotated[int, typer.Option("--port", help="Port of the demo site on 127.0.0.1.")] = 8765,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help=f"Database for the demo (default: {DEMO_DATABASE_URL}, kept apart "
            "from your research database).",
        ),
    ] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Only serve the demo site until Ctrl-C.")] = False,
) -> None:
    """Serve an offline demo news site on 127.0.0.1, crawl, extract, match and store it, print a summary."""
    from crawler.demo_run import run_demo, serve_demo

    if serve:
        serve_demo(port)
        return
    settings = state.settings()
    url = database_url or state.database_url or DEMO_DATABASE_URL
    with clean_errors():
        ok = run_demo(settings, url, port)
    if not ok:
        raise typer.Exit(1)


cli_schedule.register(app)  # schedule, alerts, subscribe, unsubscribe, subscriptions
cli_research.register(app)  # export, report, browse, db
cli_eval.register(app)  # eval checkthat, eval labels, calibrate
cli_bench.register(app)  # bench


def main(argv: list[str] | None = None) -> None:
    command: Callable[..., Any] = typer.main.get_command(app)
    command(args=argv, prog_name="claimwatch")


if __name__ == "__main__":
    # `python -m crawler.cli`: the commands in other modules import crawler.cli for its `state`
    sys.modules.setdefault("crawler.cli", sys.modules[__name__])
    main()
