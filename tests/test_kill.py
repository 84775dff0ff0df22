"""Kill anywhere: the daily job (`claimwatch schedule --once`: crawl → match → alerts) SIGKILLed while a
feed is in flight, while an article body arrives, while documents are extracted and stored, while
matching, and while alert e-mails are handed to the SMTP server, then rerun, ends where an
uninterrupted run ends: the same documents, matches and alerts, nothing twice, no e-mail twice. A demo
run losing its database mid-crawl fails cleanly and the next run completes; a database unreachable at
start is one clean error line and nothing written.

The points are reached deterministically: the test serves the demo site and an SMTP server itself and
stalls one response (or one SMTP reply) for good, or polls the database; the tests state what must
hold afterwards, not the order in which the job's stages run (matching may overlap the crawl)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

from crawler.demo.site import DemoSite
from tests.helpers import claimwatch, free_port, loopback_crawl_env, start_claimwatch
from tests.servers import StallingSmtpSink


def site_path(url: str | None) -> str | None:
    """A demo URL without its (per-test) port: http://127.0.0.1:PORT/a/b → /a/b."""
    return None if url is None else "/" + url.split("/", 3)[3]


def snapshot(url: str) -> dict[str, Any]:
    """What a researcher sees, keyed by stable values (not ids). Which syndicated copy is stored as
    the original depends on the order pages arrive, so copies are compared as stories: the set of
    their URLs, and the claims matched (and alerted) in the story."""
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT d.id, d.url, d.status, coalesce(d.duplicate_of_id, d.id) FROM documents d")
        ).all()
        story_of = {ident: story for ident, _, _, story in rows}
        members: dict[int, set[str]] = {}
        for _, page, _, story in rows:
            members.setdefault(story, set()).add(site_path(page) or "")
        stories = {story: frozenset(urls) for story, urls in members.items()}
        documents = {(site_path(page), status) for _, page, status, _ in rows}

        def by_story(query: str) -> tuple[list[tuple[list[str], str]], set[tuple[str, ...]]]:
            # A syndicated story is matched through whichever copy arrived first, and copies differ in
            # their credit lines, so claims near the threshold may differ: for those, whether the story
            # matched is compared; for single articles, every matched claim.
            found = [
                (sorted(stories[story_of[document]]), claim)
                for document, claim in connection.execute(text(query))
            ]
            singles = sorted((story, claim) for story, claim in found if len(story) == 1)
            return singles, {tuple(story) for story, _ in found if len(story) > 1}

        matches, syndicated_matched = by_story(
            "SELECT m.document_id, c.key FROM matches m JOIN claims c ON c.id = m.claim_id"
        )
        alert_items, syndicated_alerted = by_story(
            "SELECT i.document_id, c.key FROM alert_items i JOIN claims c ON c.id = i.claim_id"
        )
        running = connection.execute(
            text("SELECT count(*) FROM crawl_runs WHERE status = 'running'")
        ).scalar()
        alerts = connection.execute(text("SELECT count(*) FROM alerts")).scalar()
        deliveries = sorted(
            tuple(row)
            for row in connection.execute(text("SELECT recipient, status, message_id FROM deliveries"))
        )
    engine.dispose()
    return {
        "documents": documents,
        "stories": set(stories.values()),
        "matches": matches,
        "syndicated_matched": syndicated_matched,
        "running": running,
        "alerts": alerts,
        "alert_items": alert_items,
        "syndicated_alerted": syndicated_alerted,
        "deliveries": deliveries,
    }


def count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)
    except Exception:  # not created yet
        return 0
    finally:
        engine.dispose()


ENVIRONMENT = {"CLAIMWATCH_MATCH_BATCH_DOCUMENTS": "2", "CLAIMWATCH_STORE_BATCH_SIZE": "3"}


def start_cli(args: list[str], cwd: Path, env: dict[str, str], stderr: Any = subprocess.DEVNULL):  # type: ignore[no-untyped-def]
    """A claimwatch command in the background, in its own process group (CLI and crawl subprocess)."""
    return start_claimwatch(args, cwd, env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)


def wait_until(process: subprocess.Popen[str], ready: Callable[[], bool], deadline: float = 240) -> None:
    started = time.monotonic()
    while not ready():
        assert process.poll() is None, "the run finished before the point was reached"
        assert time.monotonic() - started < deadline, "the point was never reached"
        time.sleep(0.05)


def kill_when(process: subprocess.Popen[str], ready: Callable[[], bool]) -> None:
    """SIGKILL the process group of ``process`` once ``ready``."""
    try:
        wait_until(process, ready)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


# --- the daily job against a site and an SMTP server the test controls ---------------------------


class StallingSite(DemoSite):
    """The demo site, which can stall one path once, for good: ``before`` sends nothing (the request
    stays in flight), ``mid-body`` sends the headers and half the body."""

    def __init__(self) -> None:
        super().__init__()
        self.stall_path: str | None = None
        self.mode = "before"
        self.stalled = threading.Event()
        self._releases: list[threading.Event] = []

    def stall(self, path: str | None, mode: str = "before") -> None:
        """Stall the next request of ``path`` (None: stall nothing)."""
        self.stall_path, self.mode, self.stalled = path, mode, threading.Event()

    def start(self) -> str:
        base_url = super().start()
        assert self._server is not None
        self._server.RequestHandlerClass = self._stalling(self._server.RequestHandlerClass)
        return base_url

    def _stalling(self, handler: Any) -> Any:
        site = self

        class Stalling(handler):  # type: ignore[misc, valid-type]
            def respond(self, send_body: bool) -> None:
                path = urlsplit(self.path).path
                stalled = site.stalled
                if path != site.stall_path or stalled.is_set():
                    super().respond(send_body)
                    return
                if site.mode == "mid-body":
                    page = site.page_for(path)
                    self.send_response(200)
                    self.send_header("Content-Type", page.content_type)
                    self.send_header("Content-Length", str(len(page.body)))
                    self.end_headers()
                    self.wfile.write(page.body[: len(page.body) // 2])
                    self.wfile.flush()
                release = threading.Event()
                site._releases.append(release)
                stalled.set()
                release.wait()

        return Stalling

    def stop(self) -> None:
        for release in self._releases:
            release.set()
        super().stop()


RECIPIENTS = ("alice@example.org", "bob@example.org")
SECRET = "smtp-s3cret-never-stored"


def prepare(url: str, site: StallingSite) -> None:
    """A migrated database with the seed claims and the site's sources (as `claimwatch init` +
    `claimwatch sources load` would leave it)."""
    from crawler.config import load_settings
    from crawler.services.app import initialise, open_sessions
    from db.queries import upsert_sources
    from db.session import session_scope

    settings = dataclasses.replace(load_settings(config_file=None), database_url=url, sources_file="")
    initialise(settings, load_default_sources=False)
    sessions = open_sessions(settings)
    with session_scope(sessions) as session:
        upsert_sources(session, site.sources())
    sessions.kw["bind"].dispose()


def copy_sqlite(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)


def daily_env(url: str, sink: StallingSmtpSink) -> dict[str, str]:
    return {
        **ENVIRONMENT,
        **loopback_crawl_env(url),
        "CLAIMWATCH_SMTP_HOST": "127.0.0.1",
        "CLAIMWATCH_SMTP_PORT": str(sink.port),
        "CLAIMWATCH_SMTP_SECURITY": "none",
        "CLAIMWATCH_SMTP_PASSWORD": SECRET,  # no SMTP user: never used, and never to be written anywhere
        "CLAIMWATCH_ALERT_FROM": "claimwatch <claimwatch@example.org>",
        "CLAIMWATCH_ALERT_TO": ",".join(RECIPIENTS),
    }


DAILY = ["schedule", "--once"]


def run_cli(args: list[str], url: str, sink: StallingSmtpSink, cwd: Path) -> str:
    result = claimwatch(*args, cwd=cwd, env=daily_env(url, sink))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def site() -> Iterator[StallingSite]:
    """One site for the module: every database holds the same URLs, and a rerun finds the site where
    the killed run left it, as a real site stays put."""
    with StallingSite() as served:
        yield served


@pytest.fixture(scope="module")
def reference(site: StallingSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted run (`claimwatch run`, then `claimwatch alerts`): what every killed-and-rerun
    database must end up as. ``matched`` is a copy taken before the alerts."""
    folder = tmp_path_factory.mktemp("reference")
    database = folder / "reference.db"
    url = f"sqlite:///{database}"
    site.stall(None)
    with StallingSmtpSink() as sink:
        prepare(url, site)
        output = run_cli(["run"], url, sink, folder)
        copy_sqlite(database, folder / "matched.db")
        output += run_cli(["alerts"], url, sink, folder)
        received = sorted(sink.message_ids())
    state = snapshot(url)
    assert len(state["documents"]) >= 20 and len(state["matches"]) >= 5
    assert state["alerts"] == 1 and len(state["alert_items"]) >= 5
    assert [(r, s) for r, s, _ in state["deliveries"]] == [(r, "sent") for r in RECIPIENTS]
    assert received == sorted(m for _, _, m in state["deliveries"])
    # the SMTP password is in the environment of every process, and nowhere else
    written = [path for path in folder.rglob("*") if path.is_file()]
    assert any(path.suffix == ".log" for path in written)  # the crawl logs are among them
    assert SECRET not in output
    assert not [path for path in written if SECRET.encode() in path.read_bytes()]
    return {**state, "matched": folder / "matched.db"}


def first_feed_path(site: StallingSite) -> str:
    return urlsplit(next(s["url"] for s in site.sources() if s["kind"] == "feed")).path


@dataclasses.dataclass
class Point:
    """Where a run is killed: what to stall (site path or SMTP reply) and when the point is reached."""

    site_stall: Callable[[StallingSite], str] | None = None
    site_mode: str = "before"
    smtp_stall: str | None = None
    ready: Callable[[str, StallingSite, StallingSmtpSink], bool] = lambda url, site, sink: (
        site.stalled.is_set()
    )
    # alert points start from the crawled and matched database of the reference (saves a crawl)
    from_matched: bool = False


POINTS = {
    # a feed request in flight: the server has the request and answers nothing
    "feed-fetch": Point(site_stall=first_feed_path),
    # an article body half transferred
    "article-download": Point(site_stall=lambda site: site.articles()[0].path, site_mode="mid-body"),
    # documents extracted and stored in batches of 3 while one article hangs (the crawl cannot end)
    "extract-store": Point(
        site_stall=lambda site: site.articles()[0].path,
        ready=lambda url, site, sink: site.stalled.is_set() and count(url, "documents") >= 6,
    ),
    # matches committed in batches of 2 documents; more pending
    "match": Point(ready=lambda url, site, sink: count(url, "matches") >= 1),
    # alert and pending deliveries committed; the SMTP server never answers EHLO (nothing handed over)
    "alert-connect": Point(
        smtp_stall="ehlo", ready=lambda url, site, sink: sink.stalled.is_set(), from_matched=True
    ),
    # the first digest handed over in DATA, the server's reply withheld (delivered, not confirmed)
    "alert-data": Point(
        smtp_stall="data", ready=lambda url, site, sink: sink.stalled.is_set(), from_matched=True
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(POINTS))
def test_killed_daily_run_then_rerun_equals_an_uninterrupted_run(
    site: StallingSite, reference: dict[str, Any], tmp_path: Path, name: str
) -> None:
    database = tmp_path / "killed.db"
    if POINTS[name].from_matched:
        copy_sqlite(reference["matched"], database)
    kill_and_rerun(site, reference, tmp_path, f"sqlite:///{database}", name)


@pytest.mark.slow
@pytest.mark.postgres
def test_killed_daily_run_on_postgresql(
    site: StallingSite, reference: dict[str, Any], tmp_path: Path
) -> None:
    from tests.helpers import create_postgres_database, drop_postgres_database, require_postgres

    require_postgres()
    url = create_postgres_database()
    try:
        kill_and_rerun(site, reference, tmp_path, url, "extract-store")
    finally:
        drop_postgres_database(url)


def kill_and_rerun(site: StallingSite, reference: dict[str, Any], folder: Path, url: str, name: str) -> None:
    point = POINTS[name]
    site.stall(point.site_stall(site) if point.site_stall else None, point.site_mode)
    with StallingSmtpSink(stall=point.smtp_stall) as sink:
        if not point.from_matched:
            prepare(url, site)
        with (folder / "killed-run.log").open("w") as log:
            process = start_cli(DAILY, folder, daily_env(url, sink), stderr=log.fileno())
            try:
                kill_when(process, lambda: point.ready(url, site, sink))
            except AssertionError:
                raise AssertionError((folder / "killed-run.log").read_text()[-3000:]) from None
        interrupted = snapshot(url)
        assert interrupted["running"] >= 1, name  # the killed run left its row(s) behind
        if name == "extract-store":
            assert len(interrupted["documents"]) < len(reference["documents"])
        if name == "match":
            assert len(interrupted["matches"]) < len(reference["matches"])
        if name.startswith("alert"):
            # killed while sending: the alert and its deliveries were committed before any e-mail went out
            assert interrupted["alert_items"] == reference["alert_items"]
            statuses = [status for _, status, _ in interrupted["deliveries"]]
            assert statuses == (["pending", "pending"] if name == "alert-connect" else ["sending", "pending"])

        run_cli(DAILY, url, sink, folder)
        final = snapshot(url)
        received = Counter(sink.message_ids())

    for key in ("documents", "stories", "matches", "syndicated_matched", "alerts", "alert_items"):
        assert final[key] == reference[key], (name, key)
    assert final["syndicated_alerted"] == reference["syndicated_alerted"], name
    assert len({(tuple(s), c) for s, c in final["matches"]}) == len(final["matches"])  # one per claim
    assert final["running"] == 0, name  # the abandoned runs are closed as interrupted by the next run
    # every digest reached the SMTP server exactly once across both runs, under its fixed Message-ID
    assert received == Counter(m for _, _, m in reference["deliveries"]), name
    assert [m for _, _, m in final["deliveries"]] == [m for _, _, m in reference["deliveries"]]
    # a digest whose DATA reply never came may have been delivered: kept 'unconfirmed', never resent
    expected = [
        (r, "unconfirmed" if name == "alert-data" and r == RECIPIENTS[0] else "sent") for r in RECIPIENTS
    ]
    assert [(r, s) for r, s, _ in final["deliveries"]] == expected, name


# --- outages --------------------------------------------------------------------------------------


def demo_args(url: str, port: int) -> list[str]:
    return ["--database-url", url, "demo", "--port", str(port)]


@pytest.mark.slow
@pytest.mark.postgres
def test_database_lost_mid_crawl_fails_cleanly_and_the_next_run_completes(
    reference: dict[str, Any], tmp_path: Path
) -> None:
    from tests.helpers import (
        _admin_execute,
        create_postgres_database,
        drop_postgres_database,
        require_postgres,
    )

    require_postgres()
    url = create_postgres_database()
    name = url.rsplit("/", 1)[1]
    port = free_port()
    try:
        process = start_cli(demo_args(url, port), tmp_path, ENVIRONMENT, stderr=subprocess.PIPE)
        wait_until(process, lambda: count(url, "documents") >= 4)
        # the database goes away: no new connections, every open one cut
        _admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        _admin_execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 1
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("Error: ") and "database" in last and "Traceback" not in last, stderr[-2000:]

        _admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        rerun = claimwatch(*demo_args(url, port), cwd=tmp_path, env=ENVIRONMENT)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        final = snapshot(url)
        assert final["documents"] == reference["documents"]
        assert final["stories"] == reference["stories"]
        assert final["matches"] == reference["matches"]
        assert final["running"] == 0
    finally:
        _admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        drop_postgres_database(url)


@pytest.mark.parametrize("command", [["run"], ["schedule", "--once"], ["alerts"]])
@pytest.mark.parametrize("where", ["postgresql-closed-port", "sqlite-missing-directory"])
def test_database_unreachable_at_start_is_one_clean_error_and_nothing_written(
    tmp_path: Path, command: list[str], where: str
) -> None:
    secret = "s3cret-pw"
    url = {
        "postgresql-closed-port": f"postgresql+psycopg://claimwatch:{secret}@127.0.0.1:{free_port()}/claimwatch",
        "sqlite-missing-directory": f"sqlite:///{tmp_path / 'missing' / 'claimwatch.db'}",
    }[where]
    environment = {
        "CLAIMWATCH_DATABASE_URL": url,
        "CLAIMWATCH_SMTP_HOST": "127.0.0.1",
        "CLAIMWATCH_SMTP_PASSWORD": secret,
        "CLAIMWATCH_ALERT_TO": "alice@example.org",
        "CLAIMWATCH_ALERT_FROM": "claimwatch@example.org",
    }
    work = tmp_path / "work"
    work.mkdir()
    result = claimwatch(*command, cwd=work, env=environment, timeout=120)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot connect to the database"), result.stderr
    assert secret not in result.stderr + result.stdout  # the URL is shown with its password hidden
    # no crawl started (no crawl log), no database file or directory created
    assert list(work.iterdir()) == [] and not (tmp_path / "missing").exists()
