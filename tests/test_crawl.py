"""Spiders end to end, in the real crawl subprocess, against servers on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import select

from crawler.config import load_settings
from crawler.services.crawling import run_crawl
from db.models import CrawlRun, Source
from db.session import make_engine, make_sessionmaker
from tests.helpers import add_sources, documents, on_topic_page
from tests.servers import LocalServer, Reply


def rss(items: list[tuple[str, str, datetime]]) -> bytes:
    entries = "".join(
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for title, link, published in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Test</title>'
        f"<link>http://example.com/</link><description>t</description>{entries}</channel></rss>"
    ).encode()


def real_pages(shared: Path, count: int) -> list[tuple[str, bytes]]:
    folder = shared / "corpora" / "real-news-pages"
    rows = [line.split("\t") for line in (folder / "manifest.tsv").read_text().splitlines()[1:]]
    english = [r[0] for r in rows if r[1] == "en"][:count]
    return [(name, (folder / "html" / name).read_bytes()) for name in english]


@pytest.fixture
def crawl_settings(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        load_settings(environ={}),
        database_url=database_url,
        allow_loopback=True,
        download_delay=0.0,
        autothrottle=False,
        gdelt_delay=0.0,
        crawl_dir=str(tmp_path / "crawls"),
        log_level="INFO",
    )


@pytest.mark.slow
def test_feed_crawl_stores_articles_failures_and_is_incremental(crawl_settings, shared_dir: Path) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    pages = real_pages(shared_dir, 3)
    with LocalServer() as server:
        base = server.base_url
        etag = '"feed-v1"'

        def feed(handler) -> Reply:  # type: ignore[no-untyped-def]
            if handler.headers.get("If-None-Match") == etag:
                return Reply(304, b"", {"ETag": etag})
            items = [(name, f"{base}/real/{name}", now - timedelta(hours=2)) for name, _ in pages]
            items += [
                (
                    "On topic",
                    f"{base}/news/baku-moscow?utm_source=rss&utm_medium=feed",
                    now - timedelta(hours=1),
                ),
                ("Gone", f"{base}/news/gone", now),
                ("Report", f"{base}/files/report.pdf", now),
                ("Script", "javascript:alert(1)", now),
                ("Busy", f"{base}/news/busy", now),
                ("Old", f"{base}/news/old", now - timedelta(days=30)),
            ]
            return Reply(200, rss(items), {"Content-Type": "application/rss+xml", "ETag": etag})

        server.routes.update(
            {
                "/robots.txt": Reply(
                    200, b"User-agent: *\nDisallow: /private/\n", {"Content-Type": "text/plain"}
                ),
                "/rss.xml": feed,
                "/news/baku-moscow": Reply(200, on_topic_page()),
                "/news/old": Reply(200, on_topic_page(1)),
                "/files/report.pdf": Reply(
                    200, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", {"Content-Type": "application/pdf"}
                ),
                "/news/busy": Reply(503, b"try later", {"Content-Type": "text/plain", "Retry-After": "1"}),
            }
        )
        for name, body in pages:
            server.routes[f"/real/{name}"] = Reply(200, body)
        add_sources(
            crawl_settings.database_url,
            [
                {
                    "key": "test-feed",
                    "name": "Test feed",
                    "kind": "feed",
                    "url": f"{base}/rss.xml",
                    "language": "en",
                }
            ],
        )
        sessions = make_sessionmaker(make_engine(crawl_settings.database_url))

        first = run_crawl(crawl_settings, sessions, spiders=("feeds",))
        assert first.ok, (first.error, first.log_file and first.log_file.read_text()[-3000:])
        docs = documents(crawl_settings.database_url)

        on_topic = docs[f"{base}/news/baku-moscow"]  # stored under its canonical URL: no utm_* parameters
        assert on_topic.status == "ok" and on_topic.match_status == "pending"
        assert on_topic.title == "Baku and Moscow trade sharp words"
        assert on_topic.language == "en"
        assert "Yekaterinburg" in on_topic.text and "Test Gazette" not in on_topic.text
        for name, _ in pages:  # real pages that never mention Azerbaijan: extracted, stored, not queued
            doc = docs[f"{base}/real/{name}"]
            assert doc.status == "irrelevant" and doc.text and doc.reason.startswith("names")
        assert docs[f"{base}/news/gone"].status == "failed" and docs[f"{base}/news/gone"].reason == "http 404"
        assert not docs[f"{base}/news/gone"].retryable
        assert docs[f"{base}/news/busy"].retryable and docs[f"{base}/news/busy"].reason == "http 503"
        assert "pdf" in docs[f"{base}/files/report.pdf"].reason.lower()
        assert f"{base}/news/old" not in docs  # older than the since-window
        assert not any(url.startswith("javascript") for url in docs)
        assert first.counters["documents_relevant"] == 1
        agent = server.request_headers["/rss.xml"][0]["User-Agent"]
        assert agent.startswith("claimwatch/")

        second = run_crawl(crawl_settings, sessions, spiders=("feeds",))
        assert second.ok
        assert server.request_headers["/rss.xml"][-1].get("If-None-Match") == etag
        assert server.hits["/news/baku-moscow"] == 1  # never refetched
        assert all(server.hits[f"/real/{name}"] == 1 for name, _ in pages)
        assert len(documents(crawl_settings.database_url)) == len(docs)
        with sessions() as session:
            source = session.scalar(select(Source).where(Source.key == "test-feed"))
            assert source.etag == etag and source.last_status.startswith("304")
            runs = list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))
            assert [r.status for r in runs] == ["succeeded", "succeeded"]
            assert runs[1].since >= runs[0].started_at - timedelta(hours=1, seconds=1)


@pytest.mark.slow
def test_news_sitemap_and_robots(crawl_settings) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    with LocalServer() as server:
        base = server.base_url

        def url_entry(path: str, when: datetime) -> str:
            return (
                f"<url><loc>{base}{path}</loc><news:news><news:publication><news:name>T</news:name>"
                f"<news:language>en</news:language></news:publication>"
                f"<news:publication_date>{when.isoformat()}</news:publication_date>"
                f"<news:title>Title {path}</news:title></news:news></url>"
            )

        sitemap = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
            + url_entry("/a/new-1", now - timedelta(hours=3))
            + url_entry("/a/new-2", now - timedelta(hours=5))
            + url_entry("/a/old", now - timedelta(days=20))
            + url_entry("/private/secret", now)
            + "</urlset>"
        ).encode()
        index = (
            '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{base}/news-sitemap.xml</loc></sitemap>"
            f"<sitemap><loc>{base}/sitemap-index.xml</loc></sitemap></sitemapindex>"  # points to itself
        ).encode()
        xml = {"Content-Type": "application/xml"}
        server.routes.update(
            {
                "/robots.txt": Reply(
                    200, b"User-agent: *\nDisallow: /private/\n", {"Content-Type": "text/plain"}
                ),
                "/sitemap-index.xml": Reply(200, index, xml),
                "/news-sitemap.xml": Reply(200, sitemap, xml),
                "/a/new-1": Reply(200, on_topic_page(1)),
                "/a/new-2": Reply(200, on_topic_page(2)),
                "/a/old": Reply(200, on_topic_page(3)),
                "/private/secret": Reply(200, on_topic_page(4)),
            }
        )
        add_sources(
            crawl_settings.database_url,
            [{"key": "test-sitemap", "name": "T", "kind": "sitemap", "url": f"{base}/sitemap-index.xml"}],
        )
        sessions = make_sessionmaker(make_engine(crawl_settings.database_url))
        result = run_crawl(crawl_settings, sessions, spiders=("sitemaps",))
        assert result.ok, result.error
        docs = documents(crawl_settings.database_url)
        assert set(docs) == {f"{base}/a/new-1", f"{base}/a/new-2"}
        assert "/private/secret" not in server.hits  # robots.txt obeyed
        assert "/a/old" not in server.hits  # before the since-window
        # the two pages differ in one sentence only: the second is linked as a near-duplicate
        assert sorted(d.match_status for d in docs.values()) == ["duplicate", "pending"]


@pytest.mark.slow
def test_gdelt_discovery(crawl_settings) -> None:  # type: ignore[no-untyped-def]
    with LocalServer() as server:
        base = server.base_url
        seen = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        payload = {
            "articles": [
                {
                    "url": f"{base}/g/1?utm_campaign=x",
                    "title": "One",
                    "seendate": seen,
                    "language": "English",
                    "domain": "127.0.0.1",
                    "sourcecountry": "United States",
                },
                {"url": f"{base}/g/2", "title": "Two", "seendate": seen, "language": "Russian"},
                {"url": "ftp://example.com/file", "title": "ftp", "seendate": seen},
            ]
        }
        server.routes.update(
            {
                "/robots.txt": Reply(200, b"", {"Content-Type": "text/plain"}),
                "/api/v2/doc/doc": Reply(
                    200, json.dumps(payload).encode(), {"Content-Type": "application/json"}
                ),
                "/g/1": Reply(200, on_topic_page(1)),
                "/g/2": Reply(200, "<html><body><p>Короткая заметка.</p></body></html>".encode()),
            }
        )
        settings = dataclasses.replace(crawl_settings, gdelt_api_url=f"{base}/api/v2/doc/doc")
        add_sources(
            settings.database_url,
            [
                {
                    "key": "gdelt-test",
                    "name": "G",
                    "kind": "gdelt",
                    "url": "(Azerbaijan OR Baku) (Russia OR Kremlin)",
                }
            ],
        )
        sessions = make_sessionmaker(make_engine(settings.database_url))
        result = run_crawl(settings, sessions, spiders=("gdelt",))
        assert result.ok, result.error
        (api_path,) = [p for p in server.hits if p.startswith("/api/")]
        query = parse_qs(urlsplit(api_path).query)
        assert query["mode"] == ["artlist"] and query["format"] == ["json"]
        assert query["query"] == ["(Azerbaijan OR Baku) (Russia OR Kremlin)"]
        assert "startdatetime" in query
        docs = documents(settings.database_url)
        assert docs[f"{base}/g/1"].status == "ok"
        assert docs[f"{base}/g/1"].discovered_via == "gdelt"
        assert docs[f"{base}/g/2"].status in {"failed", "irrelevant"}
