"""Helpers the test modules share: running the CLI as a subprocess, crawl fixtures' pages and
sources, and the small alert data set (no test module imports another)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Settings, load_settings
from db.models import Document
from db.queries import active_claims, store_documents, store_matches, sync_claims, upsert_sources
from db.session import make_engine, make_sessionmaker, session_scope
from db.timeutil import utcnow
from db.views import VIEWS

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


POSTGRES_ADMIN_URL = os.environ.get(
    "CLAIMWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def loopback_crawl_env(url: str, **extra: str) -> dict[str, str]:
    """Environment for a claimwatch subprocess crawling a test site on 127.0.0.1 quickly (what
    crawler.demo.runner.demo_settings does for the demo): loopback allowed, no delays, no GDELT."""
    return {
        "CLAIMWATCH_DATABASE_URL": url,
        "CLAIMWATCH_ALLOW_LOOPBACK": "true",
        "CLAIMWATCH_DOWNLOAD_DELAY": "0",
        "CLAIMWATCH_AUTOTHROTTLE": "false",
        "CLAIMWATCH_CONCURRENT_PER_DOMAIN": "8",
        "CLAIMWATCH_GDELT_ENABLED": "false",
        **extra,
    }


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3):
            return True
    except Exception:
        return False


def require_service(available: bool, what: str) -> None:
    """Skip the test when a service it needs is not reachable; in CI (CI set), fail instead."""
    if not available:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is required in CI")
        pytest.skip(f"{what} is not reachable")


def require_postgres() -> None:
    require_service(postgres_available(), "PostgreSQL at 127.0.0.1:5432")


def _admin_execute(statement: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(statement)


def create_postgres_database() -> str:
    name = f"claimwatch_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 collecting (envelope sender, recipients, raw message) tuples."""

    def __init__(self, port: int = 0) -> None:
        from aiosmtpd.controller import Controller

        sink = self
        self.messages: list[tuple[str, list[str], bytes]] = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
                sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
                return "250 Message accepted for delivery"

        class LoopbackController(Controller):
            def _trigger_server(self) -> None:
                # Port 0: learn the port the OS picked before aiosmtpd connects to it.
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        self.controller = LoopbackController(Handler(), hostname="127.0.0.1", port=port)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class ResearchData:
    """A small migrated database with known contents (see ``fill_research_data``)."""

    backend: str
    url: str
    sessions: Any
    today: date
    claim_ids: dict[str, int]
    source_ids: dict[str, int]


_VOCABULARY = (
    "baku moscow kremlin pipeline transit caspian corridor sanctions airline crash envoy summit gas oil "
    "tariff border treaty diaspora media arrest court minister visit protest trade quota railway port "
    "tanker drone missile ceasefire karabakh yerevan tbilisi ankara brussels loan bank grain wheat "
    "freight customs visa labour migrant election parliament decree embassy"
)


def _research_text(seed: int) -> str:
    import random

    words = _VOCABULARY.split()
    rng = random.Random(seed)
    return " ".join(rng.choice(words) for _ in range(120))


def fill_research_data(sessions: Any, now: datetime) -> tuple[dict[str, int], dict[str, int]]:
    """Sources, claims, documents and matches with known view results (all dates relative to now).

    seed-01: today in tass (2 passages) and apa, 2 days ago in bbc (Russian); a syndicated copy of
    the tass article carries a stray match that must never count. seed-02: today in tass, 10 days
    ago via GDELT (Turkish). seed-03: only 60 days ago (dormant). seed-04: never matched.
    """
    from db.queries import set_match_status, store_documents, store_matches, sync_claims, upsert_sources
    from db.session import session_scope
    from pipelines.dedup import content_hash, simhash

    today = now.date()
    start_of_today = datetime.combine(today, time(0, 0, 1))
    sources = [
        {"key": "tass-en", "name": "TASS", "kind": "feed", "url": "https://tass.example/rss",
         "language": "en", "country": "RU", "perspective": "russian"},
        {"key": "apa-en", "name": "APA", "kind": "feed", "url": "https://apa.example/rss", "language": "en",
         "country": "AZ", "perspective": "azerbaijani"},
        {"key": "bbc-ru", "name": "BBC Russian", "kind": "sitemap", "url": "https://bbc.example/sitemap.xml",
         "language": "ru", "country": "GB", "perspective": "western"},
        {"key": "gdelt-tr", "name": "GDELT tr", "kind": "gdelt", "url": "Baku sourcelang:turkish",
         "language": "tr", "country": "intl", "perspective": "discovery"},
    ]  # fmt: skip

    @dataclass
    class Stub:
        id: str
        text: str
        paragraph: int | None = None
        extra: dict[str, Any] | None = None

    claims = [
        Stub(f"seed-0{i}", f"Claim {i}: Baku and Moscow disagree about item {i}.", i) for i in range(1, 5)
    ]
    with session_scope(sessions) as session:
        upsert_sources(session, sources)
        sync_claims(session, "seed", claims, lambda text: content_hash(text))
    with sessions() as session:
        from db.queries import active_claims, source_ids_by_key

        claim_ids = {c.key: c.id for c in active_claims(session)}
        source_ids = source_ids_by_key(session)

    def doc(
        n: int, source: str, outlet: str, language: str, published: datetime | None, **extra: Any
    ) -> dict:
        text = extra.pop("text", _research_text(n))
        return {
            "url": f"https://{outlet}/news/{n}",
            "source_id": source_ids[source],
            "status": "ok",
            "title": f"Article {n} from {outlet}",
            "text": text,
            "content_hash": content_hash(text),
            "simhash": simhash(text),
            "published_at": published,
            "fetched_at": (published or now) + timedelta(minutes=5),
            "outlet": outlet,
            "language": language,
            "match_status": "pending",
            **extra,
        }

    records = [
        doc(1, "tass-en", "tass.example", "en", start_of_today),
        doc(2, "apa-en", "apa.example", "en", start_of_today + timedelta(minutes=1)),
        doc(3, "bbc-ru", "bbc.example", "ru", start_of_today - timedelta(days=2)),
        doc(4, "gdelt-tr", "trend.example", "tr", start_of_today - timedelta(days=10)),
        doc(5, "tass-en", "tass.example", "en", start_of_today - timedelta(days=60)),
        doc(6, "apa-en", "copy.example", "en", start_of_today, text=_research_text(1)),  # copy of 1
        {**doc(7, "bbc-ru", "bbc.example", "ru", start_of_today), "status": "irrelevant",
         "reason": "names Russia but not Azerbaijan", "match_status": "skipped"},
        {"url": "https://tass.example/news/gone", "source_id": source_ids["tass-en"], "status": "failed",
         "reason": "http 404", "retryable": False, "outlet": "tass.example", "match_status": "skipped"},
        {"url": "https://bbc.example/news/busy", "source_id": source_ids["bbc-ru"], "status": "failed",
         "reason": "http 503", "retryable": True, "outlet": "bbc.example", "match_status": "skipped"},
    ]  # fmt: skip
    with session_scope(sessions) as session:
        counts = store_documents(session, records)
    assert counts.duplicates == 1, "the copy of article 1 must be linked to it"
    from sqlalchemy import select

    from db.models import Document

    with sessions() as session:
        ids = {url: i for url, i in session.execute(select(Document.url, Document.id))}

    def match(n: int, outlet: str, claim: str, start: int, score: float) -> dict[str, Any]:
        return {
            "document_id": ids[f"https://{outlet}/news/{n}"],
            "claim_id": claim_ids[claim],
            "passage": f"Passage {start} of article {n} about {claim}.",
            "passage_start": start,
            "passage_end": start + 40,
            "score": score,
            "threshold": 0.55,
            "model": "test-model",
            "model_revision": "r1",
        }

    with session_scope(sessions) as session:
        store_matches(
            session,
            [
                match(1, "tass.example", "seed-01", 0, 0.91),
                match(1, "tass.example", "seed-01", 50, 0.72),
                match(1, "tass.example", "seed-02", 100, 0.66),
                match(2, "apa.example", "seed-01", 0, 0.81),
                match(3, "bbc.example", "seed-01", 0, 0.77),
                match(4, "trend.example", "seed-02", 0, 0.61),
                match(5, "tass.example", "seed-03", 0, 0.88),
                match(6, "copy.example", "seed-01", 0, 0.99),  # stray match on a syndicated copy
            ],
        )
        matched = [ids[f"https://{o}/news/{n}"] for n, o in ((1, "tass.example"), (2, "apa.example"),
                   (3, "bbc.example"), (4, "trend.example"), (5, "tass.example"))]  # fmt: skip
        set_match_status(session, matched, "matched", "test-model", when=now)
    return claim_ids, source_ids


def fill_random_research_data(sessions: Any, seed: int, documents: int = 120) -> dict[str, list[int]]:
    """Random sources, claims, documents (copies, no source, no outlet/language/publication date
    included) and matches (several passages per document, some on copies) over a few weeks, so the
    aggregate groups of the research views collide. Matches go in through db.queries.store_matches.
    Returns the ids: {"sources", "claims", "documents", "matches"}."""
    import random

    from sqlalchemy import insert, select

    from db.models import Claim, Document, Match, Source
    from db.queries import store_matches
    from db.session import session_scope

    rng = random.Random(seed)
    base = datetime(2026, 3, 2, 12, 0)
    with session_scope(sessions) as session:
        session.execute(
            insert(Source),
            [{"key": f"rnd-{seed}-{i}", "name": f"Source {i}", "kind": "feed", "url": f"https://s{i}.example/rss",
              "country": rng.choice(["RU", "AZ", None])} for i in range(5)],
        )  # fmt: skip
        session.execute(
            insert(Claim),
            [{"claim_set": f"rnd-{seed}", "key": f"c{i}", "text": f"Claim {i}", "text_hash": f"h{seed}-{i}",
              "active": True} for i in range(6)],
        )  # fmt: skip
        source_ids = list(session.scalars(select(Source.id).where(Source.key.like(f"rnd-{seed}-%"))))
        claim_ids = list(session.scalars(select(Claim.id).where(Claim.claim_set == f"rnd-{seed}")))
        rows = []
        for n in range(documents):
            fetched = base + timedelta(days=rng.randrange(40), minutes=rng.randrange(1440))
            rows.append(
                {"url": f"https://rnd{seed}.example/{n}", "status": "ok", "match_status": "matched",
                 "source_id": rng.choice([*source_ids, None]), "fetched_at": fetched,
                 "published_at": None if rng.random() < 0.2 else fetched - timedelta(hours=rng.randrange(48)),
                 "outlet": rng.choice(["a.example", "b.example", "c.example", "d.example", None]),
                 "language": rng.choice(["en", "ru", "az", None])}
            )  # fmt: skip
        session.execute(insert(Document), rows)
        document_ids = list(
            session.scalars(select(Document.id).where(Document.url.like(f"https://rnd{seed}.example/%")))
        )
        for copy in rng.sample(document_ids, len(document_ids) // 6):
            original = rng.choice(document_ids)
            if original != copy:
                session.execute(
                    Document.__table__.update()
                    .where(Document.id == copy, Document.id.not_in(select(Document.duplicate_of_id).where(
                        Document.duplicate_of_id.is_not(None))))
                    .values(duplicate_of_id=original, duplicate_kind="near", match_status="duplicate")
                )  # fmt: skip
        matches = []
        for document_id in document_ids:
            for claim_id in rng.sample(claim_ids, rng.randint(0, 3)):
                for p in range(rng.randint(1, 3)):
                    matches.append(
                        {"document_id": document_id, "claim_id": claim_id, "passage": f"p{p}",
                         "passage_start": p * 100 + rng.randrange(50), "passage_end": p * 100 + 90,
                         "score": round(rng.uniform(0.5, 0.99), 4), "threshold": 0.5, "model": "m",
                         "model_revision": "r"}
                    )  # fmt: skip
        rng.shuffle(matches)
        for start in range(0, len(matches), 37):
            store_matches(session, matches[start : start + 37])
        match_ids = list(session.scalars(select(Match.id).where(Match.document_id.in_(document_ids))))
    return {"sources": source_ids, "claims": claim_ids, "documents": document_ids, "matches": match_ids}


def assert_views_equal_direct(engine) -> None:  # type: ignore[no-untyped-def]
    """Every view (over the aggregates) returns exactly the rows of its direct SQL (from matches)."""
    dialect = engine.dialect.name
    columns = {view.name: ", ".join(view.column_names) for view in VIEWS}
    with engine.connect() as connection:
        for view in VIEWS:
            got = connection.execute(text(f"SELECT {columns[view.name]} FROM {view.name}")).all()
            expected = connection.execute(
                text(f"SELECT {columns[view.name]} FROM ({view.sql(dialect, direct=True)}) direct_rows")
            ).all()
            assert _typed(view, got) == _typed(view, expected), view.name


def assert_aggregates_equal_rebuild(engine) -> None:  # type: ignore[no-untyped-def]
    """What the triggers maintained row by row equals a recomputation from scratch."""
    from db.aggregates import create_triggers, drop_triggers, rebuild_aggregates

    with engine.connect() as connection:
        maintained = aggregate_snapshot(connection)
    with engine.begin() as connection:
        drop_triggers(connection)
        rebuild_aggregates(connection)
        rebuilt = aggregate_snapshot(connection)
        create_triggers(connection)
    assert maintained == rebuilt
    assert maintained["claim_documents"], "the random data must produce aggregates"


def _typed(view, raw_rows) -> list[tuple]:  # type: ignore[no-untyped-def]
    from db.research import normalise

    out = []
    for row in raw_rows:
        values = []
        for column, value in zip(view.columns, row, strict=True):
            value = normalise(column.kind, value)
            values.append(round(value, 9) if isinstance(value, float) else value)
        out.append(tuple(values))
    return sorted(out, key=repr)


def aggregate_snapshot(connection) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def]
    from db.aggregates import AGGREGATE_TABLES

    return {
        table: sorted(map(tuple, connection.execute(text(f"SELECT * FROM {table}")).all()), key=repr)
        for table in AGGREGATE_TABLES
    }
