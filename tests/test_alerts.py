"""Alerts on SQLite and PostgreSQL with a real SMTP server (aiosmtpd) on 127.0.0.1.

Test data is built with db.queries (sources, documents, claims, matches); no model is loaded.
"""

from __future__ import annotations

import email
import logging
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import crawler.services.alerting as alerting
from crawler.services.alerting import compute_digests, run_alerts
from db.alerts import add_subscription
from db.models import AlertItem, Delivery, Document
from db.session import session_scope
from pipelines.alerts import (
    AddressError,
    ClaimRef,
    MatchedPassage,
    RecurrenceRules,
    daily_trend,
    evaluate_claim,
    header_safe,
    is_spike,
    parse_address,
)
from pipelines.dedup import content_hash, simhash
from tests.helpers import (
    NOW,
    SmtpSink,
    add_documents,
    add_matches,
    alert_settings,
    demo_data,
    document,
    free_port,
    load_claims,
)


def received(sink: SmtpSink) -> list[EmailMessage]:
    return [email.message_from_bytes(raw, policy=default_policy) for _, _, raw in sink.messages]  # type: ignore[misc]


def deliveries(sessions: sessionmaker[Session]) -> list[Delivery]:
    with sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


# --- end to end with a real SMTP server ----------------------------------------------------------


def test_digest_received_parsed_and_not_sent_twice(database_url: str, sessions, smtp_sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    demo_data(sessions)
    settings = alert_settings(database_url, smtp_sink.port)

    first = run_alerts(settings, sessions, now=NOW)
    assert (first.claims, first.digests, first.sent, first.pending, first.error) == (2, 1, 1, 0, None)
    ((mail_from, rcpts, _),) = smtp_sink.messages
    assert mail_from == "alerts@claimwatch.example" and rcpts == ["alice@example.org"]
    (message,) = received(smtp_sink)
    assert message["To"] == "alice@example.org"
    assert message["Subject"] == "[claimwatch] 2 claims recur in 3 new documents: seed-01, seed-02"
    assert message["Auto-Submitted"] == "auto-generated"
    (row,) = deliveries(sessions)
    assert row.status == "sent" and row.attempts == 1 and message["Message-ID"] == row.message_id
    assert row.message_id.startswith(f"<claimwatch.alert-{first.alert_id}.")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "== seed-01 (seed) [recurrence]" in text
    assert "New: 2 documents from 2 sources; languages: en" in text
    assert "Baku cuts reliance on Russian routes." in text and "https://a.example/1" in text
    assert text.index("Baku cuts reliance") < text.index("The corridor avoids")  # best score first
    assert "Baku looks west for transit | Caspian Ledger |" in text
    assert "languages: ru" in text and "Мигранты и Баку" in text
    assert "Trend: " in text and "2 documents in the last 30 days" in text
    assert '<a href="https://a.example/1">Baku looks west for transit</a>' in html

    second = run_alerts(settings, sessions, now=NOW)
    assert (second.alert_id, second.sent, second.pending) == (None, 0, 0)
    assert len(smtp_sink.messages) == 1


def test_new_matches_after_an_alert_make_a_new_digest(
    database_url: str, sessions, smtp_sink: SmtpSink
) -> None:  # type: ignore[no-untyped-def]
    claims, _ = demo_data(sessions)
    settings = alert_settings(database_url, smtp_sink.port)
    run_alerts(settings, sessions, now=NOW)
    docs = add_documents(sessions, [document("https://d.example/4", "Baku Post", "Rail deal signed")])
    add_matches(sessions, [(docs["https://d.example/4"], claims["seed-01"], "A new rail deal.", 0.7)])
    result = run_alerts(settings, sessions, now=NOW)
    assert (result.claims, result.sent) == (1, 1)
    latest = received(smtp_sink)[-1]
    assert latest["Subject"] == "[claimwatch] seed-01 recurs in 1 new document from 1 source"
    assert "A new rail deal." in latest.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_smtp_down_then_up_delivers_exactly_once(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    demo_data(sessions)
    port = free_port()
    settings = alert_settings(database_url, port)

    down = run_alerts(settings, sessions, now=NOW)
    assert down.digests == 1 and down.sent == 0 and down.pending == 1
    assert down.error and "cannot use the SMTP server 127.0.0.1" in down.error
    (row,) = deliveries(sessions)
    assert row.status == "pending" and row.attempts == 1 and "cannot use the SMTP server" in (row.error or "")

    sink = SmtpSink(port).start()
    try:
        up = run_alerts(settings, sessions, now=NOW)
        again = run_alerts(settings, sessions, now=NOW)
    finally:
        sink.stop()
    assert (up.alert_id, up.sent, up.error) == (None, 1, None)
    assert (again.sent, again.pending) == (0, 0)
    assert len(sink.messages) == 1
    (row,) = deliveries(sessions)
    assert row.status == "sent" and row.attempts == 2 and row.sent_at is not None


class Crash(BaseException):
    """Stands in for the process dying (kill -9, power loss) right after the SMTP server accepted."""


def test_crash_between_send_and_commit_does_not_send_twice(
    database_url: str, sessions, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    demo_data(sessions)
    settings = alert_settings(database_url, smtp_sink.port)
    real_finish = alerting.finish_delivery

    def crash_after_send(session: Session, delivery_id: int, status: str, error: str | None = None) -> None:
        if status == "sent":
            raise Crash
        real_finish(session, delivery_id, status, error)

    monkeypatch.setattr(alerting, "finish_delivery", crash_after_send)
    with pytest.raises(Crash):
        run_alerts(settings, sessions, now=NOW)
    assert len(smtp_sink.messages) == 1
    assert [d.status for d in deliveries(sessions)] == ["sending"]

    monkeypatch.setattr(alerting, "finish_delivery", real_finish)
    after = run_alerts(settings, sessions, now=NOW)
    assert (after.reconciled, after.sent, after.alert_id) == (1, 0, None)
    assert len(smtp_sink.messages) == 1
    (row,) = deliveries(sessions)
    assert row.status == "unconfirmed" and "possibly delivered" in (row.error or "")


def test_header_injection_from_page_title_is_neutralised(
    database_url: str, sessions, smtp_sink: SmtpSink
) -> None:  # type: ignore[no-untyped-def]
    claims = load_claims(sessions)
    evil = "Breaking\r\nBcc: victim@evil.example\r\nSubject: pwned\x07\u2028X-Injected: 1"
    docs = add_documents(
        sessions,
        [document("javascript:alert(1)//x", "Evil\r\nCc: a@evil.example", evil)],
    )
    add_matches(sessions, [(docs["javascript:alert(1)//x"], claims["seed-01"], "passage\r\n.\r\nQUIT", 0.9)])
    run_alerts(alert_settings(database_url, smtp_sink.port), sessions, now=NOW)

    ((_, rcpts, _),) = smtp_sink.messages
    assert rcpts == ["alice@example.org"]
    message = received(smtp_sink)[0]
    assert message["Bcc"] is None and message["Cc"] is None and message["X-Injected"] is None
    assert message.get_all("Subject") == ["[claimwatch] seed-01 recurs in 1 new document from 1 source"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Breaking Bcc: victim@evil.example Subject: pwned X-Injected: 1 | Evil Cc: a@evil.example" in text
    assert "passage . QUIT" in text and "(no link)" in text
    assert "javascript:" not in html.split("<ol>")[1].split("</ol>")[0].replace("javascript:alert", "")
    assert 'href="javascript' not in html


def test_addresses_and_headers_are_validated() -> None:
    with pytest.raises(AddressError):
        parse_address("alice@example.org\r\nBcc: victim@evil.example")
    with pytest.raises(AddressError):
        parse_address("not an address")
    assert parse_address("Alice <Alice@Example.ORG>").addr_spec == "Alice@Example.ORG"
    assert header_safe("a\r\nb\tc\x1b[31m" + "x" * 300).startswith("a b c[31m")
    assert len(header_safe("x" * 300)) == 180


# --- recurrence rules ----------------------------------------------------------------------------


def passage(match_id: int, story: int, outlet: str, days_ago: int = 0, score: float = 0.7) -> MatchedPassage:
    return MatchedPassage(
        match_id, 1, story, f"t{story}", outlet, f"https://{outlet}.example/{story}", "en",
        NOW - timedelta(days=days_ago), "p", score,
    )  # fmt: skip


CLAIM = ClaimRef(1, "seed", "seed-01", "claim")


def test_recurrence_needs_n_documents_from_m_sources() -> None:
    rules = RecurrenceRules(min_documents=2, min_sources=2, spike_min_documents=99)
    one_outlet = [passage(1, 10, "a"), passage(2, 11, "a")]
    assert evaluate_claim(CLAIM, one_outlet, [], NOW.date(), rules) is None
    same_story = [passage(1, 10, "a"), passage(2, 10, "b")]  # a syndicated copy resolves to its story
    assert evaluate_claim(CLAIM, same_story, [], NOW.date(), rules) is None
    two = [passage(1, 10, "a"), passage(2, 11, "b", score=0.9)]
    alert = evaluate_claim(CLAIM, two, [], NOW.date(), rules)
    assert alert is not None and alert.reasons == ("recurrence",)
    assert (alert.new_documents, alert.new_sources) == (2, 2) and alert.top[0].story_id == 11
    assert evaluate_claim(CLAIM, [], [], NOW.date(), RecurrenceRules()) is None


def test_spike_against_trailing_mean() -> None:
    rules = RecurrenceRules(min_documents=10, spike_factor=3.0, spike_min_documents=3, spike_days=28)
    baseline = [(100 + day, NOW - timedelta(days=day)) for day in range(1, 29)]  # 1 per day
    today = [(200 + i, NOW) for i in range(3)]
    trend = daily_trend(baseline + today, NOW.date(), rules)
    assert (trend.today, trend.baseline_mean, len(trend.counts)) == (3, 1.0, 30)
    assert is_spike(trend, rules)
    assert not is_spike(daily_trend(baseline + today[:2], NOW.date(), rules), rules)
    alert = evaluate_claim(CLAIM, [passage(1, 200, "a")], baseline + today, NOW.date(), rules)
    assert alert is not None and alert.reasons == ("spike",)


def test_syndicated_copy_counts_once_in_the_database(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    claims = load_claims(sessions)
    body = " ".join(f"Sentence {i} about Baku, Moscow and the transit corridor fees." for i in range(40))
    reprint = "First published by the Caspian Ledger. " + body
    docs = add_documents(
        sessions,
        [
            document("https://a.example/orig", "Caspian Ledger", "Original", text=body,
                     content_hash=content_hash(body), simhash=simhash(body)),
            document("https://z.example/copy", "Reprint Wire", "Copy", text=reprint,
                     content_hash=content_hash(reprint), simhash=simhash(reprint)),
        ],
    )  # fmt: skip
    with sessions() as session:
        copy = session.get(Document, docs["https://z.example/copy"])
        assert copy is not None and copy.duplicate_of_id == docs["https://a.example/orig"]
    # The foundation never matches copies; match one anyway to prove it would still count once.
    add_matches(
        sessions,
        [
            (docs["https://a.example/orig"], claims["seed-01"], "p1", 0.8),
            (docs["https://z.example/copy"], claims["seed-01"], "p1", 0.8),
        ],
    )
    settings = alert_settings(database_url, alert_min_sources=2)
    with sessions() as session:
        assert compute_digests(session, settings, NOW) == ([], [])
    with sessions() as session:
        alerts, _ = compute_digests(session, alert_settings(database_url), NOW)
    assert [(a.new_documents, a.new_sources) for a in alerts] == [(1, 1)]
    assert alerts[0].top[0].title == "Original"


def test_subscriptions_scope_digests(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    demo_data(sessions)
    with session_scope(sessions) as session:
        add_subscription(session, "bob@example.org", "seed", "seed-02")
        add_subscription(session, "carol@example.org", "other-set", "")
    with sessions() as session:
        alerts, digests = compute_digests(session, alert_settings(database_url, alert_to=""), NOW)
    assert [(d.recipient, [a.claim.key for a in d.alerts]) for d in digests] == [
        ("bob@example.org", ["seed-02"])
    ]
    assert [a.claim.key for a in alerts] == ["seed-02"]  # nobody follows seed-01: it stays new


# --- the CLI -------------------------------------------------------------------------------------


def invoke(database_url: str, port: int, *args: str) -> Any:
    from crawler.cli.app import app

    env = {
        "CLAIMWATCH_SMTP_HOST": "127.0.0.1",
        "CLAIMWATCH_SMTP_PORT": str(port),
        "CLAIMWATCH_SMTP_SECURITY": "none",
        "CLAIMWATCH_ALERT_TO": "",
    }
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(app, ["--database-url", database_url, *args], env=env)
    finally:
        # The CLI points logging at CliRunner's stderr, which is closed after the call.
        root.handlers[:], root.level = handlers, level


def test_cli_subscribe_dry_run_and_status(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    demo_data(sessions)
    port = free_port()
    ok = invoke(database_url, port, "subscribe", "Bob@Example.ORG", "--claim-set", "seed")
    assert ok.exit_code == 0 and "bob@example.org: subscribed to claim set seed" in ok.output
    listed = invoke(database_url, port, "subscriptions")
    assert "bob@example.org\tclaim set seed" in listed.output

    preview = invoke(database_url, port, "alerts", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "To: bob@example.org" in preview.output
    assert "Subject: [claimwatch] 2 claims recur" in preview.output
    with sessions() as session:
        assert session.scalars(select(AlertItem)).first() is None  # a dry run records nothing

    status = invoke(database_url, port, "status")
    assert status.exit_code == 0, status.output
    assert "run lock: free" in status.output and "daily runs: none yet" in status.output
    assert "scheduler never started" in status.output

    gone = invoke(database_url, port, "unsubscribe", "bob@EXAMPLE.org")
    assert gone.exit_code == 0 and "1 subscription(s) removed" in gone.output


def test_cli_errors_are_clean(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    # crawler.cli.context's error mapping imports pipelines.claims (the claims loader of the foundation).
    pytest.importorskip("pipelines.claims")
    demo_data(sessions)
    port = free_port()
    bad = invoke(database_url, port, "subscribe", "alice@example.org\r\nBcc: x@evil.example")
    assert bad.exit_code == 1 and "Error: not a usable e-mail address" in bad.output
    missing = invoke(database_url, port, "subscribe", "bob@example.org", "--claim", "seed-99")
    assert missing.exit_code == 1 and "no claim seed-99" in missing.output
    invoke(database_url, port, "subscribe", "bob@example.org")

    down = invoke(database_url, port, "alerts")
    assert down.exit_code == 1 and "Error: cannot use the SMTP server 127.0.0.1" in down.output
    assert "Traceback" not in down.output and isinstance(down.exception, SystemExit)
    status = invoke(database_url, port, "status")
    assert "alert e-mails: 1 pending" in status.output
