"""CLI commands for reviewing matches: ``review`` (the terminal session), ``review export``,
``review import``, ``review set`` and ``review stats``.

``register(app)`` is called by crawler/cli/app.py; the shared CLI state comes from crawler/cli/context.py.
"""

from __future__ import annotations

import logging
import textwrap
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crawler.cli.context import clean_errors, fail, state

if TYPE_CHECKING:
    from crawler.services.review import ReviewRun
    from db.reviews import QueueItem

logger = logging.getLogger(__name__)

review_app = typer.Typer(
    help="Review matches: confirm, correct and label them (restates, rebuts, reports, wrong). Without a "
    "subcommand: an interactive terminal session (docs/review.md).",
    invoke_without_command=True,
)

KEYS = {"r": "restates", "b": "rebuts", "p": "reports", "w": "wrong"}
HELP_LINE = "[r]estates  re[b]uts  re[p]orts  [w]rong   [s]kip  [u]ndo  [n]ote  [q]uit"

ClaimOption = Annotated[str | None, typer.Option("--claim", help="Only this claim (its key, e.g. seed-04).")]
LanguageOption = Annotated[
    str | None, typer.Option("--language", help="Only documents in this language (ISO 639-1, e.g. ru).")
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since", help="Only documents seen (published, else fetched) on or after this date (YYYY-MM-DD)."
    ),
]
ReviewerOption = Annotated[
    str | None,
    typer.Option(
        "--reviewer", help="Name recorded with the verdicts (default: setting reviewer, else login)."
    ),
]


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--since") from None


def _sessions():  # type: ignore[no-untyped-def]
    from crawler.services.app import open_sessions

    return open_sessions(state.settings())


def _reviewer(name: str | None) -> str:
    from crawler.services.review import default_reviewer

    return name or default_reviewer(state.settings())


def review_errors():  # type: ignore[no-untyped-def]
    from crawler.services.review import ReviewError

    return clean_errors(ReviewError)


# --- the terminal session --------------------------------------------------------------------------


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(" ".join(text.split()), width=100, initial_indent=indent, subsequent_indent=indent)


def show_item(run: ReviewRun, item: QueueItem) -> None:
    number = run.position + 1
    typer.echo("")
    typer.echo(typer.style(f"── match {item.match_id}  ({number}/{len(run.queue)}) " + "─" * 40, bold=True))
    typer.echo(
        f"claim {item.claim_set}/{item.claim_key}: "
        + typer.style(" ".join(item.claim_text.split()), bold=True)
    )
    seen = f"{item.seen_at:%Y-%m-%d}" if item.seen_at else "?"
    typer.echo(
        f"{item.title or '(no title)'} — {item.outlet or '?'}, {seen}, language {item.language or '?'}"
    )
    typer.echo(f"  {item.url}")
    stance = (
        f"predicted stance: {item.predicted_stance} ({item.stance_confidence:.2f}, not reviewed)"
        if item.predicted_stance and item.stance_confidence is not None
        else "predicted stance: none"
    )
    earlier = f"   earlier verdict: {item.verdict}" if item.verdict else ""
    typer.echo(f"score {item.score:.3f} (threshold {item.threshold:.3f})   {stance}{earlier}")
    before = " ".join(item.before.split())
    after = " ".join(item.after.split())
    highlighted = typer.style(">>" + " ".join(item.passage.split()) + "<<", fg=typer.colors.YELLOW, bold=True)
    body = textwrap.fill(f"…{before} \x00 {after}…", width=100, initial_indent="  ", subsequent_indent="  ")
    typer.echo(body.replace("\x00", highlighted))
    typer.echo(typer.style(HELP_LINE, dim=True))


def _key() -> str:
    import click

    try:
        return click.getchar().lower()
    except (KeyboardInterrupt, EOFError):
        return "q"


def run_session(run: ReviewRun) -> None:
    note: str | None = None
    while (item := run.current) is not None:
        show_item(run, item)
        while True:
            key = _key()
            if key in KEYS:
                decision = run.give(KEYS[key], note)
                typer.echo(f"→ {decision.verdict}" + (f" (note: {note})" if note else ""))
                note = None
                break
            if key == "s":
                run.skip()
                typer.echo("→ skipped")
                break
            if key == "u":
                undone = run.undo()
                typer.echo(
                    f"→ undid {undone.verdict} on match {undone.item.match_id}"
                    if undone
                    else "→ nothing to undo"
                )
                break
            if key == "n":
                note = typer.prompt("note", default="", show_default=False).strip() or None
                typer.echo("now the verdict: " + HELP_LINE)
                continue
            if key == "q":
                _summary(run, quit_early=True)
                return
            typer.echo(HELP_LINE)
    _summary(run, quit_early=False)


def _summary(run: ReviewRun, quit_early: bool) -> None:
    counts = ", ".join(f"{v} {n}" for v, n in run.counts().items() if n) or "none"
    left = len(run.queue) - run.position
    typer.echo("")
    typer.echo(
        f"{'stopped' if quit_early else 'queue done'}: {run.reviewed} reviewed ({counts}), "
        f"{run.skipped} skipped"
        + (f", {left} left in this queue" if quit_early and left else "")
        + "; every verdict is saved."
    )


@review_app.callback()
def review(
    ctx: typer.Context,
    claim: ClaimOption = None,
    language: LanguageOption = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Matches in the queue at most.")] = 200,
    again: Annotated[
        bool, typer.Option("--again", help="Also matches already reviewed (re-review; history is kept).")
    ] = False,
    reviewer: ReviewerOption = None,
) -> None:
    """Review matches in the terminal, one keystroke per verdict: most uncertain first (scores nearest
    the threshold), then newest. r restates, b rebuts, p reports, w wrong; s skip, u undo, n note, q quit."""
    if ctx.invoked_subcommand is not None:
        return
    since_time = _since(since)
    with review_errors():
        from crawler.services.review import start_review

        run = start_review(_sessions(), _reviewer(reviewer), claim, language, since_time, limit, again)
        if not run.queue:
            typer.echo(
                "nothing to review" + (" with these filters" if claim or language or since else "") + "."
            )
            return
        typer.echo(f"{len(run.queue)} matches to review, most uncertain first. {HELP_LINE}")
        run_session(run)


# --- spreadsheet round trip and scripts --------------------------------------------------------------


@review_app.command("export")
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (replaced if it exists).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or xlsx.", case_sensitive=False)] = "csv",
    claim: ClaimOption = None,
    language: LanguageOption = None,
    since: SinceOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Rows at most (default: all).")] = None,
    all_matches: Annotated[
        bool, typer.Option("--all", help="Every match with its latest verdict, not only unreviewed ones.")
    ] = False,
) -> None:
    """Write the review queue to a spreadsheet with an empty verdict column (fill it with restates,
    rebuts, reports or wrong; then `claimwatch review import FILE`)."""
    since_time = _since(since)
    with review_errors():
        from crawler.services.review import export_queue

        result = export_queue(_sessions(), output, fmt, claim, language, since_time, limit, all_matches)
    typer.echo(f"{result.rows} matches written to {result.path} ({result.fmt})")


@review_app.command("import")
def import_file(
    path: Annotated[
        Path, typer.Argument(help="A review file (.csv or .xlsx) with match_id, verdict, note columns.")
    ],
    reviewer: ReviewerOption = None,
) -> None:
    """Store the verdicts of a review file. Every row is checked first (unknown match ids, unknown
    verdicts, a match twice): one bad row and nothing is imported. An empty verdict means not reviewed."""
    with review_errors():
        from crawler.services.review import import_reviews

        result = import_reviews(_sessions(), path, _reviewer(reviewer))
    counts = ", ".join(f"{v} {n}" for v, n in result.counts.items() if n) or "none"
    typer.echo(f"{result.stored} verdicts imported ({counts}); {result.not_reviewed} rows without a verdict")


@review_app.command("set")
def set_command(
    match_id: Annotated[int, typer.Argument(help="matches.id (match_details.match_id).")],
    verdict: Annotated[str, typer.Argument(help="restates, rebuts, reports or wrong.")],
    note: Annotated[str | None, typer.Option("--note", help="A note stored with the verdict.")] = None,
    reviewer: ReviewerOption = None,
) -> None:
    """Review one match (for scripts)."""
    with review_errors():
        from crawler.services.review import set_review

        review_id = set_review(_sessions(), match_id, verdict, _reviewer(reviewer), note)
    typer.echo(f"match {match_id}: {verdict.strip().lower()} (review {review_id})")


@review_app.command("stats")
def stats(claim: ClaimOption = None) -> None:
    """Reviewed precision and verdict counts per claim (the claim_review_stats view)."""
    with review_errors():
        from crawler.services.review import review_stats

        rows = review_stats(_sessions(), claim)
    if not rows:
        raise fail("no matches yet", 1)
    typer.echo(
        f"{'claim':<14} {'matches':>7} {'reviewed':>8} {'precision':>9} {'restates':>8} {'rebuts':>6} "
        f"{'reports':>7} {'wrong':>5}"
    )
    for r in rows:
        precision = "—" if r["precision"] is None else f"{r['precision']:.2f}"
        typer.echo(
            f"{r['claim_key']:<14} {r['matches']:>7} {r['reviewed']:>8} {precision:>9} {r['restates']:>8} "
            f"{r['rebuts']:>6} {r['reports']:>7} {r['wrong']:>5}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
