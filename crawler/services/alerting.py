"""The alerts stage: compute recurring claims → record digests as pending → send by SMTP → mark sent.

Exactly once (docs/alerts.md): the alert, the matches it covers and one delivery row per recipient
(with a deterministic Message-ID) are committed before anything is sent. Each delivery is marked
``sending`` and committed just before its SMTP DATA command and ``sent`` right after the server
accepts it. A run that finds a ``sending`` row left by a dead process marks it ``unconfirmed``
(possibly delivered) and never sends it again. Connection failures leave deliveries ``pending``
with the error; the next run retries them.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address

from sqlalchemy.orm import Session, sessionmaker

from crawler.config import ConfigError, Settings
from db.alerts import (
    add_delivery,
    claim_delivery,
    claim_refs,
    deliveries_to_send,
    finish_delivery,
    list_subscriptions,
    match_history,
    new_matches,
    note_delivery_failure,
    reconcile_sending,
    record_alert,
)
from db.session import session_scope
from db.timeutil import utcnow
from pipelines.alerts import (
    AddressError,
    ClaimAlert,
    MatchedPassage,
    RecurrenceRules,
    SubscriptionRef,
    alerts_for,
    compose_digest,
    evaluate_claim,
    message_id_for,
    parse_address,
    parse_recipients,
)
from pipelines.status import DeliveryStatus

logger = logging.getLogger(__name__)

SECURITY_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
SMTP_TIMEOUT = 30.0


class AlertError(RuntimeError):
    """Alerts cannot be delivered (the SMTP server is unreachable or refuses the login)."""


@dataclass
class AlertsResult:
    alert_id: int | None = None
    claims: int = 0
    digests: int = 0
    sent: int = 0
    pending: int = 0
    failed: int = 0
    unconfirmed: int = 0
    reconciled: int = 0
    recipients: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> dict[str, int | str | None]:
        return {
            "alert_id": self.alert_id,
            "claims": self.claims,
            "digests": self.digests,
            "sent": self.sent,
            "pending": self.pending,
            "failed": self.failed,
            "unconfirmed": self.unconfirmed,
            "reconciled": self.reconciled,
        }

    def describe(self) -> str:
        if not self.recipients:
            return "alerts: no recipients (set CLAIMWATCH_ALERT_TO or run `claimwatch subscribe EMAIL`)"
        recorded = (
            f"{self.claims} recurring claim(s), {self.digests} digest(s) recorded as alert {self.alert_id}"
            if self.alert_id is not None
            else "no claim recurs in new documents"
        )
        line = f"alerts: {recorded}; {self.sent} sent, {self.pending} pending, {self.failed} failed"
        if self.unconfirmed or self.reconciled:
            line += f", {self.unconfirmed + self.reconciled} unconfirmed (not resent)"
        return line


@dataclass
class Digest:
    recipient: str
    alerts: list[ClaimAlert] = field(default_factory=list)


# --- settings ------------------------------------------------------------------------------------


def recurrence_rules(settings: Settings) -> RecurrenceRules:
    return RecurrenceRules(
        min_documents=settings.alert_min_documents,
        min_sources=settings.alert_min_sources,
        spike_factor=settings.alert_spike_factor,
        spike_min_documents=settings.alert_spike_min_documents,
        spike_days=settings.alert_spike_days,
        top_passages=settings.alert_top_passages,
    )


def sender_address(settings: Settings) -> Address:
    try:
        return parse_address(settings.alert_from)
    except AddressError as exc:
        raise ConfigError(f"setting alert_from: {exc}") from None


def default_recipients(settings: Settings) -> list[str]:
    try:
        return parse_recipients(settings.alert_to)
    except AddressError as exc:
        raise ConfigError(f"setting alert_to: {exc}") from None


def check_alert_settings(settings: Settings) -> None:
    """Raise ConfigError for alert and SMTP settings that cannot work."""
    if settings.smtp_security not in SECURITY_PORTS:
        raise ConfigError("setting smtp_security must be `none`, `starttls` or `ssl`")
    if not 0 <= settings.smtp_port <= 65535:
        raise ConfigError("setting smtp_port must be between 0 and 65535")
    for name in ("alert_min_documents", "alert_min_sources", "alert_top_passages", "alert_spike_days"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"setting {name} must be at least 1")
    if settings.alert_spike_factor <= 0:
        raise ConfigError("setting alert_spike_factor must be positive")
    sender_address(settings)
    default_recipients(settings)


def smtp_endpoint(settings: Settings) -> tuple[str, int]:
    return settings.smtp_host, settings.smtp_port or SECURITY_PORTS[settings.smtp_security]


# --- compute and record --------------------------------------------------------------------------


def recipient_subscriptions(session: Session, settings: Settings) -> dict[str, list[SubscriptionRef]]:
    """Recipient → what they subscribed to; ``alert_to`` recipients get every claim set."""
    by_recipient: dict[str, list[SubscriptionRef]] = {}
    for address in default_recipients(settings):
        by_recipient.setdefault(address, []).append(SubscriptionRef(address))
    for subscription in list_subscriptions(session):
        by_recipient.setdefault(subscription.email, []).append(subscription)
    return by_recipient


def compute_digests(
    session: Session, settings: Settings, now: datetime
) -> tuple[list[ClaimAlert], list[Digest]]:
    """The recurring claims (only those someone subscribed to) and one digest per recipient."""
    subscriptions = recipient_subscriptions(session, settings)
    wanted = [
        c for c in claim_refs(session) if any(s.covers(c) for subs in subscriptions.values() for s in subs)
    ]
    if not wanted:
        return [], []
    rules = recurrence_rules(settings)
    ids = [c.id for c in wanted]
    new = new_matches(session, ids, rebuttals=settings.alert_rebuttals)
    since = datetime.combine(now.date() - timedelta(days=rules.history_days - 1), datetime.min.time())
    history = match_history(session, ids, since, rebuttals=settings.alert_rebuttals)
    new_by_claim: dict[int, list[MatchedPassage]] = {}
    for match in new:
        new_by_claim.setdefault(match.claim_id, []).append(match)
    alerts = []
    for claim in wanted:
        claim_new = new_by_claim.get(claim.id, [])
        alert = evaluate_claim(claim, claim_new, history.get(claim.id, []), now.date(), rules)
        if alert is not None:
            alerts.append(alert)
    digests = [
        Digest(recipient, chosen)
        for recipient, subs in sorted(subscriptions.items())
        if (chosen := alerts_for(subs, alerts))
    ]
    return alerts, digests


def record_digests(
    session: Session, settings: Settings, now: datetime, run_id: int | None
) -> tuple[int | None, int, int]:
    """Record the alert, its items and a pending delivery per recipient. (alert id, claims, digests)."""
    alerts, digests = compute_digests(session, settings, now)
    if not digests:
        return None, 0, 0
    sender = sender_address(settings)
    alert = record_alert(session, alerts, run_id)
    for digest in digests:
        message_id = message_id_for(alert.id, digest.recipient, sender.domain)
        message = compose_digest(
            digest.alerts,
            sender=sender,
            recipient=digest.recipient,
            message_id=message_id,
            when=now,
            alert_id=alert.id,
            spike_days=settings.alert_spike_days,
        )
        add_delivery(
            session, alert.id, digest.recipient, message_id, str(message["Subject"]), message.as_string()
        )
    logger.info("alert %d: %d recurring claims, %d digests", alert.id, len(alerts), len(digests))
    return alert.id, len(alerts), len(digests)


def preview_digests(
    settings: Settings, sessions: sessionmaker[Session], now: datetime | None = None
) -> list[str]:
    """What a run would send now, as printable messages (nothing is recorded or sent)."""
    check_alert_settings(settings)
    now = now or utcnow()
    sender = sender_address(settings)
    out = []
    with sessions() as session:
        _, digests = compute_digests(session, settings, now)
        for digest in digests:
            message = compose_digest(
                digest.alerts,
                sender=sender,
                recipient=digest.recipient,
                message_id=f"<dry-run@{sender.domain}>",
                when=now,
                alert_id=None,
                spike_days=settings.alert_spike_days,
            )
            text = message.get_body(("plain",))
            body = text.get_content() if text is not None else ""
            out.append(f"To: {message['To']}\nSubject: {message['Subject']}\n\n{body}")
        for delivery in deliveries_to_send(session):
            out.append(f"(pending retry) To: {delivery.recipient}\nSubject: {delivery.subject}\n")
    return out


# --- SMTP ----------------------------------------------------------------------------------------


def open_smtp(settings: Settings) -> smtplib.SMTP:
    """A connected, greeted (and logged-in) SMTP client; AlertError when that fails."""
    host, port = smtp_endpoint(settings)
    where = f"{host}:{port} ({settings.smtp_security})"
    context = ssl.create_default_context()
    local = socket.gethostname()
    try:
        if settings.smtp_security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, local_hostname=local, timeout=SMTP_TIMEOUT, context=context
            )
        else:
            client = smtplib.SMTP(host, port, local_hostname=local, timeout=SMTP_TIMEOUT)
        client.ehlo()
        if settings.smtp_security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if settings.smtp_user:
            client.login(settings.smtp_user, settings.smtp_password)
    except smtplib.SMTPAuthenticationError as exc:
        raise AlertError(
            f"SMTP server {where} refused the login of {settings.smtp_user}: {exc.smtp_code}"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise AlertError(f"cannot use the SMTP server {where}: {exc or type(exc).__name__}") from None
    return client


def _refused(client: smtplib.SMTP, code: int, reply: bytes, what: str) -> tuple[DeliveryStatus, str, bool]:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        client.rset()
    status = DeliveryStatus.FAILED if code >= 500 else DeliveryStatus.PENDING
    return status, f"SMTP server refused the {what}: {code} {reply.decode(errors='replace')}", True


def transmit(
    client: smtplib.SMTP, sender: str, recipient: str, message: str
) -> tuple[DeliveryStatus, str | None, bool]:
    """Send one message: (new status, error, connection still usable).

    Failures before DATA, and a server reply refusing the data, mean it was not accepted (retry, or
    failed on a 5xx). A connection lost during DATA leaves the outcome unknown: 'unconfirmed'.
    """
    try:
        code, reply = client.mail(sender)
        if code != 250:
            return _refused(client, code, reply, f"sender {sender}")
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            return _refused(client, code, reply, f"recipient {recipient}")
    except (smtplib.SMTPException, OSError) as exc:
        return (
            DeliveryStatus.PENDING,
            f"SMTP error before the message was sent: {exc or type(exc).__name__}",
            False,
        )
    try:
        client.data(message)
    except smtplib.SMTPResponseException as exc:
        status = DeliveryStatus.FAILED if exc.smtp_code >= 500 else DeliveryStatus.PENDING
        return status, f"SMTP server refused the message: {exc.smtp_code} {exc.smtp_error!r}", True
    except (smtplib.SMTPException, OSError) as exc:
        return (
            DeliveryStatus.UNCONFIRMED,
            f"connection lost during the SMTP transaction: {exc or type(exc).__name__}",
            False,
        )
    return DeliveryStatus.SENT, None, True


def send_pending(settings: Settings, sessions: sessionmaker[Session], result: AlertsResult) -> None:
    """Send every pending delivery, each committed as 'sending' before and 'sent' after."""
    with sessions() as session:
        queue = [(d.id, d.recipient, d.message) for d in deliveries_to_send(session)]
    if not queue:
        return
    if not settings.smtp_host:
        raise ConfigError(
            f"{len(queue)} alert e-mail(s) to send but no SMTP server: set CLAIMWATCH_SMTP_HOST "
            "(see docs/alerts.md)"
        )
    sender = sender_address(settings).addr_spec
    try:
        client = open_smtp(settings)
    except AlertError as exc:
        with session_scope(sessions) as session:
            note_delivery_failure(session, [item[0] for item in queue], str(exc))
        result.pending += len(queue)
        result.error = f"{exc}; {len(queue)} e-mail(s) stay pending and are retried by the next run"
        return
    try:
        for position, (delivery_id, recipient, message) in enumerate(queue):
            with session_scope(sessions) as session:
                if not claim_delivery(session, delivery_id):
                    continue
            status, error, usable = transmit(client, sender, recipient, message)
            with session_scope(sessions) as session:
                finish_delivery(session, delivery_id, status, error)
            setattr(result, status, getattr(result, status) + 1)
            if error:
                logger.warning("delivery %d to %s: %s", delivery_id, recipient, error)
                result.error = error
            if not usable:
                result.pending += len(queue) - position - 1
                break
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


# --- the stage -----------------------------------------------------------------------------------


def run_alerts(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    now: datetime | None = None,
    run_id: int | None = None,
) -> AlertsResult:
    """Reconcile, compute and record new digests, then send everything pending. Caller holds the run lock."""
    check_alert_settings(settings)
    now = now or utcnow()
    result = AlertsResult()
    with session_scope(sessions) as session:
        result.reconciled = reconcile_sending(session)
    if result.reconciled:
        logger.warning(
            "alerts: %d delivery(ies) were interrupted mid-send by a stopped process; marked unconfirmed, "
            "not resent",
            result.reconciled,
        )
    with session_scope(sessions) as session:
        result.recipients = len(recipient_subscriptions(session, settings))
        if result.recipients and not settings.smtp_host:
            raise ConfigError("alert recipients are configured but no SMTP server: set CLAIMWATCH_SMTP_HOST")
        result.alert_id, result.claims, result.digests = record_digests(session, settings, now, run_id)
    send_pending(settings, sessions, result)
    return result
