"""`claimwatch doctor`: the setup checks and the source probes against a loopback world of good, moved,
stale, empty, non-feed, robots-blocked and failing sources (tests/servers.py), the SMTP check against
aiosmtpd on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from crawler.cli.app import app
from crawler.config import Settings, settings_environment
from crawler.services.doctor import check_database, check_disk, check_redis, check_smtp, run_doctor
from db.models import Source, SourceCheck
from db.queries import upsert_sources
from db.session import session_scope
from pipelines.sourcecheck import Contents, classify, moved_to, read_body
from tests.servers import LocalServer, Reply

NOW = datetime.now(UTC).replace(microsecond=0)
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
XML = {"Content-Type": "application/xml"}


def rss(*ages_days: float) -> bytes:
    items = "".join(
        f"<item><title>Story {n}</title><link>https://example.org/{n}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(days=age))}</pubDate></item>"
        for n, age in enumerate(ages_days)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://example.org/</link>'
        f"<description>d</description>{items}</channel></rss>"
    ).encode()


def atom_updated_only(*ages_days: float) -> bytes:
    entries = "".join(
        f"<entry><title>E{n}</title><id>urn:e{n}</id><link href='https://example.org/e{n}'/>"
        f"<updated>{(NOW - timedelta(days=age)).isoformat()}</updated></entry>"
        for n, age in enumerate(ages_days)
    )
    return (
        f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>'
        f"<updated>{NOW.isoformat()}</updated>{entries}</feed>"
    ).encode()


def news_sitemap(*ages_days: float) -> bytes:
    urls = "".join(
        f"<url><loc>https://example.org/s{n}</loc><news:news><news:publication><news:name>X</news:name>"
        f"<news:language>en</news:language></news:publication><news:publication_date>"
        f"{(NOW - timedelta(days=age)).isoformat()}</news:publication_date><news:title>S{n}</news:title>"
        f"</news:news></url>"
        for n, age in enumerate(ages_days)
    )
    return (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>'
    ).encode()


def gdelt(*ages_days: float) -> bytes:
    articles = [
        {
            "url": f"https://example.org/g{n}",
            "title": f"G{n}",
            "seendate": f"{NOW - timedelta(days=a):%Y%m%dT%H%M%SZ}",
        }
        for n, a in enumerate(ages_days)
    ]
    return json.dumps({"articles": articles}).encode()


def redirect(status: int, location: str) -> Reply:
    return Reply(status, b"", {"Location": location, "Content-Type": "text/plain"})


ETAG = '"v1"'


def conditional(handler: BaseHTTPRequestHandler) -> Reply:
    if handler.headers.get("If-None-Match") == ETAG:
        return Reply(304, b"", {"ETag": ETAG})
    return Reply(200, rss(1), {**RSS, "ETag": ETAG})


# key -> (kind, path, expected verdict)
WORLD: dict[str, tuple[str, str, str]] = {
    "good": ("feed", "/good.xml", "ok"),
    "atom-updated": ("feed", "/atom.xml", "ok"),
    "temporary": ("feed", "/temporary.xml", "ok"),
    "unchanged": ("feed", "/conditional.xml", "ok"),
    "sitemap": ("sitemap", "/news-sitemap.xml", "ok"),
    "moved": ("feed", "/old-feed.xml", "moved"),
    "stale": ("feed", "/stale.xml", "stale"),
    "empty": ("feed", "/empty.xml", "empty"),
    "homepage": ("feed", "/home", "not-a-feed"),
    "robots": ("feed", "/private/feed.xml", "blocked-by-robots"),
    "failing": ("feed", "/broken.xml", "error"),
    "gone": ("sitemap", "/gone.xml", "error"),
    "gdelt": ("gdelt", "(Azerbaijan OR Baku) Russia", "ok"),
}


@pytest.fixture
def world() -> Iterator[LocalServer]:
    with LocalServer() as server:
        server.routes.update(
            {
                "/robots.txt": Reply(
                    200, b"User-agent: *\nDisallow: /private/\n", {"Content-Type": "text/plain"}
                ),
                "/good.xml": Reply(200, rss(0.5, 2, 10), RSS),
                "/atom.xml": Reply(200, atom_updated_only(1, 3), {"Content-Type": "application/atom+xml"}),
                "/temporary.xml": redirect(302, "/good.xml"),
                "/conditional.xml": conditional,
                "/news-sitemap.xml": Reply(200, news_sitemap(0.2, 1), XML),
                "/old-feed.xml": redirect(301, "/new-feed.xml"),
                "/new-feed.xml": Reply(200, rss(1, 2), RSS),
                "/stale.xml": Reply(200, rss(400, 500), RSS),
                "/empty.xml": Reply(200, rss(), RSS),
                "/home": Reply(200, b"<html><body><h1>Welcome</h1></body></html>"),
                "/private/feed.xml": Reply(200, rss(1), RSS),
                "/broken.xml": Reply(500, b"oops", {"Content-Type": "text/plain"}),
                "/gdelt": Reply(200, gdelt(0.1, 0.5, 3), {"Content-Type": "application/json"}),
            }
        )
        yield server


def world_settings(database_url: str, server: LocalServer, tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "allow_loopback": True,
        "download_delay": 0.0,
        "gdelt_delay": 0.0,
        "download_timeout": 5,
        "gdelt_api_url": server.base_url + "/gdelt",
        "cache_dir": str(tmp_path / "cache"),
        "crawl_dir": str(tmp_path / "crawls"),
        "doctor_min_free_mb": 1,
        "user_agent": "claimwatch-test/1.0 (+mailto:test@example.org)",
    }
    return Settings(**{**values, **extra})


def load_world(sessions: Any, server: LocalServer) -> None:
    sources = [
        {"key": key, "kind": kind, "url": path if kind == "gdelt" else server.base_url + path}
        for key, (kind, path, _) in WORLD.items()
    ]
    with session_scope(sessions) as session:
        upsert_sources(session, sources)
        session.execute(
            Source.__table__.update().where(Source.key == "unchanged").values(etag=ETAG)  # type: ignore[attr-defined]
        )


def test_every_classification_against_a_loopback_world(
    database_url: str, sessions: Any, world: LocalServer, tmp_path: Path
) -> None:
    load_world(sessions, world)
    settings = world_settings(database_url, world, tmp_path)
    report = run_doctor(settings, sources=True, models=False)
    verdicts = {p.key: p.verdict.status for p in report.probes}
    assert verdicts == {key: expected for key, (_, _, expected) in WORLD.items()}
    probes = {p.key: p for p in report.probes}
    assert probes["moved"].moved_to == world.base_url + "/new-feed.xml"
    assert probes["temporary"].moved_to is None  # a 302 is no move
    good = probes["good"].contents
    assert good is not None and (good.parsed_as, good.items, good.recent) == ("rss20", 3, 2)
    assert probes["sitemap"].contents is not None and probes["sitemap"].contents.parsed_as == "urlset"
    assert probes["gdelt"].contents is not None and probes["gdelt"].contents.items == 3
    assert probes["failing"].http_status == 500 and probes["gone"].http_status == 404
    assert probes["unchanged"].http_status == 304
    # politeness: robots.txt read once, the robots-blocked address never fetched, one GET per source,
    # the configured User-Agent and the stored validator sent
    assert world.hits["/robots.txt"] == 1
    assert "/private/feed.xml" not in world.hits
    assert world.hits["/good.xml"] == 2  # the source itself, and the temporary redirect's target
    assert all(world.hits[path] == 1 for path in ("/stale.xml", "/empty.xml", "/home", "/old-feed.xml"))
    assert world.request_headers["/conditional.xml"][0]["If-None-Match"] == ETAG
    assert {h["User-Agent"] for hs in world.request_headers.values() for h in hs} == {settings.user_agent}
    # stored per source, shown in source_health
    with sessions() as session:
        stored = {c.source_id: c for c in session.scalars(select(SourceCheck))}
        keys = {s.id: s.key for s in session.scalars(select(Source))}
        assert {keys[i]: c.status for i, c in stored.items()} == verdicts
        health = dict(session.execute(text("SELECT source_key, check_status FROM source_health")).all())
        assert health == verdicts
    # some sources are broken: the summary warns, the exit status stays 0 (sources are not all gone)
    summary = next(c for c in report.checks if c.name == "sources")
    assert summary.status == "warn" and "13 probed" in summary.detail
    assert report.ok


def test_fix_moved_updates_the_address_and_cli_shows_it(
    database_url: str, sessions: Any, world: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_world(sessions, world)
    settings = world_settings(database_url, world, tmp_path)
    for name, value in settings_environment(settings).items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    result = runner.invoke(app, ["doctor", "--sources", "--fix-moved", "--no-models"])
    assert result.exit_code == 0, result.output
    assert "moved" in result.output and "blocked-by-robots" in result.output
    with sessions() as session:
        moved = session.scalars(select(Source).where(Source.key == "moved")).one()
        assert moved.url == world.base_url + "/new-feed.xml"
    listed = runner.invoke(app, ["sources", "list"])
    line = next(x for x in listed.output.splitlines() if x.startswith("stale\t"))
    assert "doctor: stale" in line
    again = run_doctor(settings, sources=True, models=False)
    assert {p.key: p.verdict.status for p in again.probes}["moved"] == "ok"


def test_exit_status_when_essential_checks_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'never-initialised.db'}")
    monkeypatch.setenv("CLAIMWATCH_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["doctor", "--no-models"])
    assert result.exit_code == 1
    assert "claimwatch init" in result.output and "essential checks failed: database" in result.output


def test_no_usable_source_is_essential(database_url: str, sessions: Any, tmp_path: Path) -> None:
    with LocalServer() as server:
        server.routes["/down.xml"] = Reply(503, b"", {"Content-Type": "text/plain"})
        with session_scope(sessions) as session:
            upsert_sources(session, [{"key": "down", "kind": "feed", "url": server.base_url + "/down.xml"}])
        report = run_doctor(world_settings(database_url, server, tmp_path), sources=True, models=False)
    summary = next(c for c in report.checks if c.name == "sources")
    assert summary.status == "fail" and summary.essential and not report.ok


def test_database_check_reports_schema_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    from db.migrate import upgrade_database

    upgrade_database(url, "0005")
    check = check_database(Settings(database_url=url))
    assert check.status == "fail" and "0005" in check.detail and check.fix.startswith("run `claimwatch init`")
    upgrade_database(url)
    assert check_database(Settings(database_url=url)).status == "ok"


def test_disk_check_fails_below_the_minimum(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", cache_dir=str(tmp_path / "c"))
    assert all(c.status == "ok" for c in check_disk(dataclasses.replace(settings, doctor_min_free_mb=1)))
    huge = check_disk(dataclasses.replace(settings, doctor_min_free_mb=10**12))
    assert {c.name for c in huge} == {"disk: database", "disk: cache", "disk: crawl state"}
    assert all(c.status == "fail" and c.essential for c in huge)


def test_redis_check_skips_when_unconfigured_and_fails_when_unreachable() -> None:
    assert check_redis(Settings()).status == "skip"
    down = check_redis(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert down.status == "fail" and down.essential


# --- SMTP -----------------------------------------------------------------------------------------


class AuthSmtp:
    """aiosmtpd on 127.0.0.1 that wants a login (plain text allowed: loopback test only)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.received: list[bytes] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
                sink.received.append(envelope.content)
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
            ok = auth_data.login == b"alice" and auth_data.password == b"s3cret"
            return AuthResult(success=ok, handled=False)

        class LoopbackController(Controller):
            def _trigger_server(self) -> None:
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        self.controller = LoopbackController(
            Handler(), hostname="127.0.0.1", port=0, authenticator=authenticator, auth_require_tls=False
        )

    def __enter__(self) -> AuthSmtp:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def test_smtp_check_greets_and_logs_in_without_sending() -> None:
    assert check_smtp(Settings()).status == "skip"
    with AuthSmtp() as server:
        base = Settings(smtp_host="127.0.0.1", smtp_port=server.controller.port, smtp_security="none")
        good = check_smtp(dataclasses.replace(base, smtp_user="alice", smtp_password="s3cret"))
        assert good.status == "ok" and "EHLO, login" in good.detail
        bad = check_smtp(dataclasses.replace(base, smtp_user="alice", smtp_password="wrong"))
        assert bad.status == "fail" and bad.essential and "refused the login of alice" in bad.detail
        assert server.received == []
    refused = check_smtp(dataclasses.replace(base, smtp_port=1))
    assert refused.status == "fail" and "cannot use the SMTP server" in refused.detail


def test_smtp_check_starttls_offered_or_not(smtp_sink: Any) -> None:
    settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp_sink.port, smtp_security="starttls")
    check = check_smtp(settings)  # the plain sink offers no STARTTLS: a configuration error to report
    assert check.status == "fail" and "STARTTLS" in check.detail.upper()


# --- the pure half --------------------------------------------------------------------------------


def test_moved_to_needs_a_permanent_first_hop() -> None:
    assert moved_to("http://a/x", [(301, "http://a/y"), (302, "http://a/z")]) == "http://a/y"
    assert moved_to("http://a/x", [(308, "http://a/y"), (301, "http://a/w")]) == "http://a/w"
    assert moved_to("http://a/x", [(302, "http://a/y")]) is None
    assert moved_to("http://a/x", []) is None


def test_read_body_kinds_and_bad_bodies() -> None:
    now = NOW
    assert read_body("feed", b"{}", "http://a/f", now).parsed_as is None
    assert read_body("sitemap", b"<html><body/></html>", "http://a/s.xml", now).reason == (
        "XML but not a sitemap (<html>)"
    )
    assert read_body("sitemap", b"not xml", "http://a/s.xml", now).parsed_as is None
    robots = read_body("sitemap", b"Sitemap: /news.xml\nSitemap: /more.xml\n", "http://a/robots.txt", now)
    assert (robots.parsed_as, robots.items) == ("robots.txt", 2)
    assert read_body("gdelt", b"Please limit requests", "http://g/api", now).parsed_as is None
    index = (
        b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>http://a/1.xml</loc>'
        + f"<lastmod>{NOW.isoformat()}</lastmod></sitemap></sitemapindex>".encode()
    )
    parsed = read_body("sitemap", index, "http://a/index.xml", now)
    assert (parsed.parsed_as, parsed.items, parsed.recent) == ("sitemapindex", 1, 1)


def test_classify_order() -> None:
    fresh = Contents("rss20", items=2, newest=NOW, recent=2)
    assert classify(contents=fresh, status=200, now=NOW, stale_days=30).status == "ok"
    assert classify(contents=fresh, status=200, new_url="http://n", now=NOW, stale_days=30).status == "moved"
    undated = Contents("rss20", items=2, newest=None, recent=0)
    assert "no dates" in classify(contents=undated, status=200, now=NOW, stale_days=30).detail
    assert classify(contents=None, status=None, error="timed out", now=NOW, stale_days=30).status == "error"


def test_feed_entry_time_does_not_trigger_feedparsers_deprecated_fallback() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        contents = read_body("feed", rss(1, 2), "http://a/f", NOW)
    assert contents.newest is not None and contents.recent == 2
