"""Helpers the test modules share: running the CLI as a subprocess, crawl fixtures' pages and
sources, and the small alert data set (no test module imports another)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings, load_settings
from db.models import Document
from db.queries import active_claims, store_documents, store_matches, sync_claims, upsert_sources
from db.session import make_engine, make_sessionmaker, session_scope
from db.timeutil import utcnow

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
CLI = (sys.executable, "-m", "crawler.cli")


def cli_environment(env: dict[str, str] | None) -> dict[str, str]:
    """This process's environment without its CLAIMWATCH_ settings, plus ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMWATCH_")}
    environment.update(env or {})
    return environment


def start_claimwatch(args: list[str], cwd: Path, env: dict[str, str], **popen: Any) -> subprocess.Popen[str]:
    """``claimwatch ARGS`` in the background (``popen``: stdout, stderr, start_new_session, ...)."""
    return subprocess.Popen([*CLI, *args], cwd=cwd, env=cli_environment(env), text=True, **popen)


def claimwatch(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=cli_environment(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ON_TOPIC_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Baku and Moscow trade sharp words</title><meta name="author" content="Jane Roe">
<meta property="article:published_time" content="{date}"></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>Baku and Moscow trade sharp words</h1>
{paragraphs}
</article><footer>© Test Gazette</footer></body></html>"""


PARAGRAPH = (
    "<p>Azerbaijan's foreign ministry summoned the Russian envoy on Monday after the police operation in "
    "Yekaterinburg, saying the Kremlin had failed to explain the deaths of two men of Azerbaijani origin. "
    "Officials in Baku said relations with Moscow had reached their lowest point in years. {n}</p>"
)


def on_topic_page(n: int = 0) -> bytes:
    # pages differ in their last sentence only (near-duplicates of each other)
    paragraphs = "\n".join(PARAGRAPH.format(n=f"Detail {n}." if i == 5 else "") for i in range(6))
    return ON_TOPIC_HTML.format(date=datetime.now(UTC).date().isoformat(), paragraphs=paragraphs).encode()


def add_sources(database_url: str, sources: list[dict]) -> None:
    engine = make_engine(database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        upsert_sources(session, sources)
    engine.dispose()


def documents(database_url: str) -> dict[str, Document]:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        rows = {d.url: d for d in session.scalars(select(Document))}
    engine.dispose()
    return rows


NOW = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)


@dataclass
class ClaimStub:
    id: str
    text: str
    paragraph: int | None = None
    extra: dict = field(default_factory=dict)


CLAIMS = [
    ClaimStub("seed-01", "Azerbaijan is steadily reducing its dependence on Russian transit routes."),
    ClaimStub("seed-02", "Moscow uses migrant labour policy as leverage over Baku."),
]


def alert_settings(database_url: str, port: int = 1, **overrides: Any) -> Settings:
    base = load_settings(environ={})
    values: dict[str, Any] = {
        "database_url": database_url,
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "alert_from": "claimwatch <alerts@claimwatch.example>",
        "alert_to": "alice@example.org",
    }
    return dataclasses.replace(base, **{**values, **overrides})


def document(
    url: str, outlet: str, title: str, days_ago: int = 0, language: str = "en", **extra: Any
) -> dict:
    return {
        "url": url,
        "status": "ok",
        "title": title,
        "outlet": outlet,
        "language": language,
        "text": f"{title}. Body of {url}.",
        "published_at": NOW - timedelta(days=days_ago, hours=1),
        "match_status": "matched",
        **extra,
    }


def load_claims(sessions: sessionmaker[Session]) -> dict[str, int]:
    with session_scope(sessions) as session:
        sync_claims(session, "seed", CLAIMS, lambda text: str(len(text)))
    with sessions() as session:
        return {c.key: c.id for c in active_claims(session)}


def add_documents(sessions: sessionmaker[Session], records: list[dict]) -> dict[str, int]:
    with session_scope(sessions) as session:
        store_documents(session, records)
    with sessions() as session:
        return {d.url: d.id for d in session.scalars(select(Document))}


def add_matches(sessions: sessionmaker[Session], pairs: list[tuple[int, int, str, float]]) -> None:
    rows = [
        {
            "document_id": doc_id,
            "claim_id": claim_id,
            "passage": passage,
            "passage_start": 0,
            "passage_end": len(passage),
            "score": score,
            "threshold": 0.5,
            "model": "test-model",
            "model_revision": "r1",
        }
        for doc_id, claim_id, passage, score in pairs
    ]
    with session_scope(sessions) as session:
        store_matches(session, rows)


def demo_data(sessions: sessionmaker[Session]) -> tuple[dict[str, int], dict[str, int]]:
    """Two claims: seed-01 in two English outlets, seed-02 in one Russian outlet."""
    claims = load_claims(sessions)
    docs = add_documents(
        sessions,
        [
            document("https://a.example/1", "Caspian Ledger", "Baku looks west for transit"),
            document("https://b.example/2", "Kavkaz Daily", "New corridor bypasses Russia", days_ago=1),
            document("https://c.example/3", "Moskva Vestnik", "Мигранты и Баку", language="ru"),
        ],
    )
    add_matches(
        sessions,
        [
            (docs["https://a.example/1"], claims["seed-01"], "Baku cuts reliance on Russian routes.", 0.81),
            (docs["https://b.example/2"], claims["seed-01"], "The corridor avoids Russian territory.", 0.66),
            (docs["https://c.example/3"], claims["seed-02"], "Labour quotas as a lever on Baku.", 0.7),
        ],
    )
    return claims, docs
