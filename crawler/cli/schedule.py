"""CLI commands for scheduled runs and alerts: schedule, alerts, subscribe, unsubscribe, subscriptions.

``register(app)`` is called by crawler/cli/app.py; the shared CLI state comes from crawler/cli/context.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

import typer

from crawler.cli.context import clean_errors, fail, state

logger = logging.getLogger(__name__)


def schedule(
    once: Annotated[
        bool,
        typer.Option("--once", help="Run the daily job (crawl → match → alerts) once now, then exit."),
    ] = False,
) -> None:
    """Run the daily job on schedule in the foreground (CLAIMWATCH_SCHEDULE_CRON) until SIGTERM/Ctrl-C."""
    from crawler.cli.render import ConsoleObserver
    from crawler.config import redact_url
    from crawler.scheduling import ScheduleRunner, daily_steps, run_once
    from crawler.services.alerting import check_alert_settings

    settings = state.settings()
    with clean_errors():
        check_alert_settings(settings)
        if once:
            outcome = run_once(settings, daily_steps(ConsoleObserver()))
        else:
            runner = ScheduleRunner(settings, steps=daily_steps(ConsoleObserver()))
            typer.echo(
                f"claimwatch schedule: daily job at `{settings.schedule_cron}` "
                f"({settings.schedule_timezone}), job store in {redact_url(settings.database_url)}; "
                "SIGTERM or Ctrl-C stops after the current step",
                err=True,
            )
            runner.serve()
            typer.echo("scheduler stopped", err=True)
            return
    if outcome.status == "skipped":
        raise fail(outcome.error or "another run holds the run lock")
    typer.echo(outcome.describe(), err=True)
    if not outcome.ok:
        raise typer.Exit(1)


def alerts(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the digests that would be sent; record and send nothing.")
    ] = False,
) -> None:
    """Send alert digests for claims that recur in new documents, and retry pending e-mails."""
    from crawler.services.alerting import preview_digests, run_alerts
    from crawler.services.app import open_sessions
    from crawler.services.locks import run_lock

    settings = state.settings()
    with clean_errors():
        sessions = open_sessions(settings)
        if dry_run:
            previews = preview_digests(settings, sessions)
            for text in previews:
                typer.echo(text)
            typer.echo(f"{len(previews)} e-mail(s) would be sent (dry run: nothing recorded)", err=True)
            return
        with run_lock(settings, "alerts", sessions):
            result = run_alerts(settings, sessions)
    typer.echo(result.describe(), err=True)
    if result.error:
        raise fail(result.error)


def subscribe(
    email: Annotated[str, typer.Argument(help="Recipient e-mail address.")],
    claim_set: Annotated[
        str | None, typer.Option("--claim-set", help="Only alerts of this claim set (default: all).")
    ] = None,
    claim: Annotated[
        str | None, typer.Option("--claim", help="Only alerts of this claim id, e.g. seed-04 (default: all).")
    ] = None,
) -> None:
    """Subscribe a recipient to alert digests (all claims, one claim set, or one claim)."""
    from crawler.services.app import UsageError, open_sessions
    from db.alerts import add_subscription, claim_exists
    from db.session import session_scope
    from pipelines.alerts import normalise_address

    with clean_errors():
        address = _address(email, normalise_address)
        sessions = open_sessions(state.settings())
        with session_scope(sessions) as session:
            if (claim_set or claim) and not claim_exists(session, claim_set or "", claim or ""):
                scope = " ".join(filter(None, [f"set {claim_set}" if claim_set else "", claim or ""]))
                raise UsageError(f"no claim {scope} in the database (`claimwatch claims list`)")
            added = add_subscription(session, address, claim_set or "", claim or "")
    scope = _scope(claim_set, claim)
    typer.echo(f"{address}: {'subscribed to' if added else 'already subscribed to'} {scope}")


def unsubscribe(
    email: Annotated[str, typer.Argument(help="Recipient e-mail address.")],
    claim_set: Annotated[
        str | None, typer.Option("--claim-set", help="Only the subscription to this claim set.")
    ] = None,
    claim: Annotated[
        str | None, typer.Option("--claim", help="Only the subscription to this claim id.")
    ] = None,
) -> None:
    """Remove a recipient's subscriptions (all of them unless --claim-set/--claim narrow it)."""
    from crawler.services.app import open_sessions
    from db.alerts import remove_subscriptions
    from db.session import session_scope
    from pipelines.alerts import normalise_address, parse_recipients

    settings = state.settings()
    with clean_errors():
        address = _address(email, normalise_address)
        with session_scope(open_sessions(settings)) as session:
            removed = remove_subscriptions(session, address, claim_set, claim)
        defaults = parse_recipients(settings.alert_to)
    typer.echo(f"{address}: {removed} subscription(s) removed")
    if address in defaults:
        typer.secho(
            f"{address} is also in CLAIMWATCH_ALERT_TO and keeps receiving every digest until removed there",
            fg=typer.colors.YELLOW,
            err=True,
        )


def subscriptions() -> None:
    """List alert recipients: subscriptions and CLAIMWATCH_ALERT_TO."""
    from crawler.services.app import open_sessions
    from db.alerts import list_subscriptions
    from pipelines.alerts import parse_recipients

    settings = state.settings()
    with clean_errors():
        with open_sessions(settings)() as session:
            rows = list_subscriptions(session)
        defaults = parse_recipients(settings.alert_to)
    for row in rows:
        typer.echo(f"{row.email}\t{_scope(row.claim_set or None, row.claim_key or None)}")
    for address in defaults:
        typer.echo(f"{address}\tall claims (CLAIMWATCH_ALERT_TO)")
    typer.echo(f"{len(rows) + len(defaults)} recipient entries", err=True)


def _scope(claim_set: str | None, claim: str | None) -> str:
    if claim:
        return f"claim {claim}" + (f" of set {claim_set}" if claim_set else "")
    return f"claim set {claim_set}" if claim_set else "all claims"


def _address(value: str, normalise: Callable[[str], str]) -> str:
    from crawler.services.app import UsageError
    from pipelines.alerts import AddressError

    try:
        return normalise(value)
    except AddressError as exc:
        raise UsageError(str(exc)) from None


def register(app: typer.Typer) -> None:
    """Add the scheduling and alert commands to the ``claimwatch`` app."""
    app.command()(schedule)
    app.command()(alerts)
    app.command()(subscribe)
    app.command()(unsubscribe)
    app.command()(subscriptions)
