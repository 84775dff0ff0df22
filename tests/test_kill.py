"""Kill anywhere: a demo run SIGKILLed mid-crawl or mid-match, or losing its database mid-crawl, then
rerun, ends exactly where an uninterrupted run ends (same documents and matches; nothing twice,
nothing lost)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.test_cli import claimwatch, free_port

pytestmark = pytest.mark.slow


def site_path(url: str | None) -> str | None:
    """A demo URL without its (per-test) port: http://127.0.0.1:PORT/a/b → /a/b."""
    return None if url is None else "/" + url.split("/", 3)[3]


def snapshot(url: str) -> dict[str, Any]:
    """What a researcher sees, keyed by stable values (not ids). Which syndicated copy is stored as
    the original depends on the order pages arrive, so copies are compared as stories: the set of
    their URLs, and the claims matched in the story."""
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
        found = [
            (sorted(stories[story_of[document]]), claim)
            for document, claim in connection.execute(
                text("SELECT m.document_id, c.key FROM matches m JOIN claims c ON c.id = m.claim_id")
            )
        ]
        # A syndicated story is matched through whichever copy arrived first, and copies differ in
        # their credit lines, so claims near the threshold may differ: for those, whether the story
        # matched is compared; for single articles, every matched claim.
        matches = sorted((story, claim) for story, claim in found if len(story) == 1)
        syndicated_matched = {tuple(story) for story, _ in found if len(story) > 1}
        running = connection.execute(
            text("SELECT count(*) FROM crawl_runs WHERE status = 'running'")
        ).scalar()
    engine.dispose()
    return {
        "documents": documents,
        "stories": set(stories.values()),
        "matches": matches,
        "syndicated_matched": syndicated_matched,
        "running": running,
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


def demo_args(url: str, port: int) -> list[str]:
    return ["--database-url", url, "demo", "--port", str(port)]


ENVIRONMENT = {"CLAIMWATCH_MATCH_BATCH_DOCUMENTS": "2", "CLAIMWATCH_STORE_BATCH_SIZE": "3"}


def start_demo(url: str, port: int, cwd: Path, stderr: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """The demo in the background, in its own process group (CLI and crawl subprocess)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMWATCH_")}
    environment.update(ENVIRONMENT)
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", *demo_args(url, port)],
        cwd=cwd,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )


def wait_until(process: subprocess.Popen[str], ready: Callable[[], bool], deadline: float = 240) -> None:
    started = time.monotonic()
    while not ready():
        assert process.poll() is None, "the run finished before the point was reached"
        assert time.monotonic() - started < deadline, "the point was never reached"
        time.sleep(0.05)


def kill_when(url: str, port: int, cwd: Path, ready: Callable[[], bool]) -> None:
    """Start the demo and SIGKILL its whole process group once ``ready``."""
    process = start_demo(url, port, cwd)
    try:
        wait_until(process, ready)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("reference")
    url = f"sqlite:///{folder / 'reference.db'}"
    result = claimwatch(*demo_args(url, free_port()), cwd=folder, env=ENVIRONMENT)
    assert result.returncode == 0, result.stderr[-3000:]
    state = snapshot(url)
    assert len(state["documents"]) >= 20 and len(state["matches"]) >= 5
    return state


@pytest.mark.parametrize(
    ("point", "ready"),
    [
        ("mid-crawl", lambda url: count(url, "documents") >= 4),
        ("mid-match", lambda url: count(url, "matches") >= 1),
    ],
)
def test_killed_run_then_rerun_equals_an_uninterrupted_run(
    reference: dict[str, Any], tmp_path: Path, point: str, ready: Callable[[str], bool]
) -> None:
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    port = free_port()  # the rerun serves the site at the same address, as a real site stays put
    kill_when(url, port, tmp_path, lambda: ready(url))
    interrupted = snapshot(url)
    assert interrupted["running"] >= 1  # the killed run left its row behind
    assert len(interrupted["matches"]) < len(reference["matches"])

    rerun = claimwatch(*demo_args(url, port), cwd=tmp_path, env=ENVIRONMENT)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    final = snapshot(url)
    assert final["documents"] == reference["documents"], point
    assert final["stories"] == reference["stories"], point
    assert final["matches"] == reference["matches"], point
    assert final["syndicated_matched"] == reference["syndicated_matched"], point
    assert len({(tuple(s), c) for s, c in final["matches"]}) == len(final["matches"])  # one per claim
    assert final["running"] == 0  # the abandoned run is closed as interrupted by the next run


@pytest.mark.postgres
def test_database_lost_mid_crawl_fails_cleanly_and_the_next_run_completes(
    reference: dict[str, Any], tmp_path: Path
) -> None:
    from tests.conftest import (
        _admin_execute,
        create_postgres_database,
        drop_postgres_database,
        postgres_available,
    )

    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    url = create_postgres_database()
    name = url.rsplit("/", 1)[1]
    port = free_port()
    try:
        process = start_demo(url, port, tmp_path, stderr=subprocess.PIPE)
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
