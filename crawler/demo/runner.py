"""``claimwatch demo``: the whole chain on an offline news site served on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.config import Settings, redact_url
from crawler.services.app import (
    LogObserver,
    StageObserver,
    UsageError,
    do_crawl_and_match,
    initialise,
    open_sessions,
)
from crawler.services.crawling import StageResult

if TYPE_CHECKING:
    from crawler.demo.site import DemoSite

logger = logging.getLogger(__name__)


def demo_settings(settings: Settings, database_url: str) -> Settings:
    """The user's settings, pointed at the demo database and allowed to crawl loopback quickly."""
    return dataclasses.replace(
        settings,
        database_url=database_url,
        allow_loopback=True,
        download_delay=0.0,
        autothrottle=False,
        concurrent_per_domain=8,
        gdelt_enabled=False,
        sources_file="",
    )


@dataclass(frozen=True)
class DemoOutcome:
    crawled: StageResult
    matched: StageResult
    seconds: float

    @property
    def ok(self) -> bool:
        return self.crawled.ok and self.matched.ok


DEFAULT_DEMO_PORT = 8765


def port_holder(port: int) -> str | None:
    """The program listening on TCP ``port`` (``pid 123: python3 -m http.server 8765``), when the
    system says (Linux /proc, own processes); None when it cannot be told."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return f"pid {proc.name}: {command.strip()[:200]}"
        except OSError:
            continue
    return None


def port_in_use_message(port: int) -> str:
    holder = port_holder(port)
    who = f" by {holder}" if holder else " by another program"
    return (
        f"port {port} on 127.0.0.1 is already in use{who}: stop it, or choose another port with "
        "--port N (--port 0 picks any free port)"
    )


def start_demo_site(port: int | None, note: Callable[[str], None]) -> DemoSite:
    """The started demo site on ``port``; ``port=None``: the default port, or any free one (and a
    note saying so) when the default is taken. An explicit port that is taken is a UsageError
    naming what holds it."""
    from crawler.demo.site import DemoSite

    wanted = DEFAULT_DEMO_PORT if port is None else port
    site = DemoSite(port=wanted)
    try:
        site.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        if port is not None:
            raise UsageError(port_in_use_message(port)) from None
        holder = port_holder(wanted)
        site = DemoSite(port=0)
        site.start()
        chosen = site.base_url.rsplit(":", 1)[1]
        note(
            f"port {wanted} is taken{f' (by {holder})' if holder else ''}: serving the demo site on "
            f"port {chosen} instead (choose one with --port)"
        )
    return site


def run_demo(
    settings: Settings, database_url: str, port: int | None, observer: StageObserver | None = None
) -> DemoOutcome:
    """Serve the demo site, crawl it with the real spiders, match and store. ``port=None``: the
    default port, or a free one when it is taken."""
    from crawler.services.locks import run_lock
    from db.queries import upsert_sources
    from db.session import session_scope

    observer = observer or LogObserver()
    settings = demo_settings(settings, database_url)
    observer.note(f"demo database: {redact_url(database_url)}")
    initialise(settings, load_default_sources=False)
    started = time.monotonic()
    with run_lock(settings, "demo"), start_demo_site(port, observer.note) as site:
        observer.note(f"demo site: {site.base_url}/ ({len(site.articles())} articles)")
        with session_scope(open_sessions(settings)) as session:
            upsert_sources(session, site.sources())
        crawled, matched = do_crawl_and_match(settings, ["feeds", "sitemaps"], observer=observer)
    return DemoOutcome(crawled, matched, time.monotonic() - started)


def serve_demo(
    port: int | None,
    on_ready: Callable[[str], None] = lambda _url: None,
    note: Callable[[str], None] = lambda _message: None,
) -> None:
    """Serve the demo site until Ctrl-C; ``on_ready`` gets its base URL (``port`` as in run_demo)."""
    with start_demo_site(port, note) as site:
        on_ready(site.base_url)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
