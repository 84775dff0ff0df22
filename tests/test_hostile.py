"""Hostile input: one crawl of feeds, sitemaps and the GDELT API full of bad pages must finish, store the
good pages and record every bad one with a clear reason (documents.reason or the source's last_status).
The crawl runs once per module; each test checks one kind of hostility."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import socket
import struct
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any
from xml.sax.saxutils import escape

import pytest
from scrapy import Request
from sqlalchemy import select

from crawler.config import load_settings
from crawler.middlewares import AddressPolicyMiddleware, PolicyRefusal
from crawler.services.crawling import run_crawl
from crawler.spiders.sitemaps import MAX_SITEMAP_DEPTH
from db.migrate import upgrade_database
from db.models import Document, Source
from db.session import make_engine, make_sessionmaker
from tests.helpers import add_sources, documents, on_topic_page
from tests.servers import LocalServer, Reply

pytestmark = pytest.mark.slow

MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_TIMEOUT = 6
ENTRY_CAP = 1000  # crawler.settings.CLAIMWATCH_MAX_SOURCE_ENTRIES
PRIVATE_LINKS = (
    "http://10.0.0.1/news/a",
    "http://169.254.169.254/latest/meta-data/",
    "http://192.168.1.1/admin",
    "http://[fd00::1]/news",
    "http://100.64.0.1/cgnat",  # shared address space: not "private" to ipaddress, not global either
    "http://2852039166/latest/meta-data/",  # 169.254.169.254 as resolvers read a bare number
    "http://0xa9fea9fe/latest/meta-data/",  # ... and in hex
    "http://10.1/short-form",  # 10.0.0.1
    "http://[::ffff:169.254.169.254]/mapped",
)
NON_HTTP_LINKS = ("file:///etc/passwd", "javascript:alert(document.cookie)", "data:text/html,<h1>hi</h1>")
RUSSIAN = (
    "<p>Министерство иностранных дел Азербайджана в понедельник вызвало российского посла после "
    "полицейской операции в Екатеринбурге. В Баку заявили, что Кремль так и не объяснил гибель двух "
    "выходцев из Азербайджана, а отношения с Москвой опустились до самой низкой точки за годы. {n}</p>"
)
HTML = {"Content-Type": "text/html; charset=utf-8"}
XML = {"Content-Type": "application/xml"}


def billion_laughs(root: str, inner: str) -> bytes:
    """An entity-expansion bomb on one line (feedparser only strips declarations at line starts)."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">' for i in range(1, 10)
    )
    return f'<?xml version="1.0"?><!DOCTYPE {root} [{entities}]>{inner}'.encode()


def rss_items(items: list[tuple[str, str, datetime]]) -> str:
    return "".join(
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for title, link, published in items
    )


def rss_feed(items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>http://example.com/</link><description>d</description>{items}</channel></rss>"
    ).encode()


def urlset(entries: list[tuple[str, datetime]]) -> bytes:
    urls = "".join(
        f"<url><loc>{escape(loc)}</loc><lastmod>{when.isoformat()}</lastmod></url>" for loc, when in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    ).encode()


def sitemap_index(locs: list[str]) -> bytes:
    maps = "".join(f"<sitemap><loc>{escape(loc)}</loc></sitemap>" for loc in locs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>'
    ).encode()


def russian_page() -> bytes:
    paragraphs = "".join(RUSSIAN.format(n=f"Подробность {i}.") for i in range(6))
    html = (
        '<!doctype html><html lang="ru"><head><meta charset="utf-8">'
        "<title>Баку и Москва обменялись резкими заявлениями</title></head><body><article>"
        f"<h1>Баку и Москва обменялись резкими заявлениями</h1>{paragraphs}</article></body></html>"
    )
    return html.encode("cp1251")  # but labelled utf-8 in the header and the meta tag


# --- raw handlers: they write (or withhold) the response themselves ---------------------------------


def stream_body(handler: Any, total: int, content_length: int | None = None) -> None:
    """``total`` bytes of HTML, declaring ``content_length`` (None: no Content-Length, until the close)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    if content_length is not None:
        handler.send_header("Content-Length", str(content_length))
    handler.end_headers()
    chunk = b"<p>" + b"x" * 65_530 + b"</p>"
    sent = 0
    try:
        while sent < total:
            handler.wfile.write(chunk)
            sent += len(chunk)
    except OSError:  # the crawler hangs up once DOWNLOAD_MAXSIZE is passed
        pass


def stall(server: LocalServer) -> Any:
    def handler(h: Any) -> None:
        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", "text/html; charset=utf-8")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        h.wfile.write(b"<html><body><article><p>The first bytes arrive, the rest never does.")
        h.wfile.flush()
        server.closing.wait(60)

    return handler


def reset(h: Any) -> None:
    """Half a response, then a TCP reset (SO_LINGER 0)."""
    h.close_connection = True
    h.wfile.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 50000\r\n\r\n<html><body><p>"
    )
    h.wfile.flush()
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()


@dataclasses.dataclass
class HostileCrawl:
    """What one crawl of the hostile world left behind."""

    base: str
    closed: str
    docs: dict[str, Document]
    status: dict[str, str | None]
    listed_by: dict[str, str | None]
    hits: dict[str, int]
    forbidden_hits: dict[str, int]
    stats: dict[str, Any]
    log: str

    def failed(self, path: str) -> tuple[str | None, bool]:
        doc = self.docs[f"{self.base}{path}"]
        assert doc.status == "failed", (path, doc.status, doc.reason)
        return doc.reason, doc.retryable


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> HostileCrawl:
    """One crawl (SQLite) of feeds, sitemaps and the GDELT API full of bad pages, for the tests below."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    database_url = f"sqlite:///{tmp_path / 'claimwatch.db'}"
    upgrade_database(database_url)
    hostile_settings = dataclasses.replace(
        load_settings(environ={}),
        database_url=database_url,
        allow_loopback=True,  # the servers are on 127.0.0.1; private ranges must stay blocked
        download_delay=0.0,
        autothrottle=False,
        gdelt_delay=0.0,
        # short, for the stalled body; not shorter: the crawl process blocks its reactor for a second or
        # two when it loads the language model, and the big downloads must still finish in time
        download_timeout=DOWNLOAD_TIMEOUT,
        concurrent_per_domain=8,
        crawl_dir=str(tmp_path / "crawls"),
        log_level="INFO",
    )
    now = datetime.now(UTC)
    recent, old = now - timedelta(hours=1), now - timedelta(days=30)
    with LocalServer() as server, LocalServer() as forbidden:
        base = server.base_url
        # the robots.txt of this host disallows everything; named "localhost" so the name is resolved
        # (and checked) by the address policy
        closed = forbidden.base_url.replace("127.0.0.1", "localhost")
        forbidden.routes.update(
            {
                "/robots.txt": Reply(200, b"User-agent: *\nDisallow: /\n", {"Content-Type": "text/plain"}),
                "/feed.xml": Reply(200, rss_feed(rss_items([("x", f"{closed}/news/x", recent)])), XML),
                "/news/1": Reply(200, on_topic_page(90)),
            }
        )
        bad_pages: dict[str, Reply | Any] = {
            "/bad/image": Reply(200, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, HTML),
            "/bad/binary": Reply(200, b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)) * 40, HTML),
            "/bad/report.pdf": Reply(
                200, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", {"Content-Type": "application/pdf"}
            ),
            "/bad/huge": lambda h: stream_body(h, 50 * 1024 * 1024),  # 50 MB, no Content-Length
            "/bad/huge-declared": lambda h: stream_body(h, 1024 * 1024, content_length=50 * 1024 * 1024),
            "/bad/gzip-bomb": Reply(
                200,
                gzip.compress(b"<p>lol</p>" * (2 * MAXSIZE // 10), compresslevel=9),
                {**HTML, "Content-Encoding": "gzip"},
            ),
            "/bad/invalid-bytes": Reply(
                200,
                on_topic_page(11).replace(b"Officials in Baku", b"Officials \xff\xfe\xc3\x28\x80 in Baku"),
            ),
            "/bad/mislabelled": Reply(200, russian_page()),
            "/bad/empty": Reply(200, b""),
            "/bad/no-article": Reply(
                200,
                b"<!doctype html><html><head><title>Sections</title></head><body><nav><a href='/'>Home</a> "
                b"<a href='/ru'>Russia</a> <a href='/az'>Azerbaijan</a></nav></body></html>",
            ),
            "/bad/loop-a": Reply(302, b"", {"Location": "/bad/loop-b"}),
            "/bad/loop-b": Reply(302, b"", {"Location": "/bad/loop-a"}),
            "/bad/loop-self": Reply(301, b"", {"Location": "/bad/loop-self"}),
            "/bad/to-metadata": Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}),
            "/bad/gone": Reply(410, b"gone", {"Content-Type": "text/plain"}),
            "/bad/too-many": Reply(429, b"slow down", {"Content-Type": "text/plain", "Retry-After": "3600"}),
            "/bad/error": Reply(500, b"oops", {"Content-Type": "text/plain"}),
            "/bad/busy": Reply(503, b"busy", {"Content-Type": "text/plain", "Retry-After": "120"}),
            "/bad/stall": stall(server),
            "/bad/reset": reset,
        }
        server.routes.update(bad_pages)
        links = [("good", f"{base}/good/1", recent), ("good", f"{base}/good/2", recent)]
        links += [(path, f"{base}{path}", recent) for path in bad_pages if path != "/bad/loop-b"]
        links += [("missing", f"{base}/bad/missing", recent), ("old", f"{base}/old/1", old)]
        links += [("forbidden", f"{closed}/news/1", recent)]
        links += [("private", url, recent) for url in PRIVATE_LINKS]
        links += [("non-http", url, recent) for url in NON_HTTP_LINKS]

        # 100,000 items: the first in the window, the next ones old, two more in the window beyond the cap
        huge_items = [rss_items([("huge first", "/good/huge", recent)])]
        old_date = format_datetime(old)
        huge_items += [
            f"<item><link>/old/h{i}</link><pubDate>{old_date}</pubDate></item>" for i in range(99_997)
        ]
        huge_items += [rss_items([("beyond", "/beyond/1", recent), ("beyond", "/beyond/2", recent)])]
        # a news sitemap with the in-window entries beyond the cap
        big_sitemap = [(f"{base}/old/s{i}", old) for i in range(ENTRY_CAP)] + [(f"{base}/beyond/s", recent)]

        bomb_item = "<item><title>bomb &lol9;</title><link>/bad/bomb-target</link></item>"
        server.routes.update(
            {
                "/robots.txt": Reply(
                    200, b"User-agent: *\nDisallow: /private/\n", {"Content-Type": "text/plain"}
                ),
                "/good/1": Reply(200, on_topic_page(1)),
                "/good/2": Reply(200, on_topic_page(2)),
                "/good/huge": Reply(200, on_topic_page(3)),
                "/good/sitemap": Reply(200, on_topic_page(4)),
                "/bad/bomb-target": Reply(200, b""),
                "/feed.xml": Reply(200, rss_feed(rss_items(links)), XML),
                "/huge-feed.xml": Reply(200, rss_feed("".join(huge_items)), XML),
                "/garbage-feed.xml": Reply(200, b"\x00\x01\x02 this is not XML {{{ <<<", XML),
                "/bomb-feed.xml": Reply(
                    200,
                    billion_laughs(
                        "rss", f'<rss version="2.0"><channel><title>&lol9;</title>{bomb_item}</channel></rss>'
                    ),
                    XML,
                ),
                "/gzip-bomb-feed.xml": Reply(
                    200,
                    gzip.compress(b" " * (2 * MAXSIZE), compresslevel=9),
                    {**XML, "Content-Encoding": "gzip"},
                ),
                "/stalled-feed.xml": stall(server),
                "/sitemap-index.xml": Reply(
                    200, sitemap_index([f"{base}/sitemap-index.xml", f"{base}/news.xml"]), XML
                ),
                "/news.xml": Reply(
                    200,
                    urlset(
                        [(f"{base}/good/sitemap", recent), (f"{base}/old/n", old)]
                        + [(u, recent) for u in NON_HTTP_LINKS]
                    ),
                    XML,
                ),
                "/big-sitemap.xml": Reply(200, urlset(big_sitemap), XML),
                "/bomb-sitemap.xml": Reply(
                    200,
                    billion_laughs(
                        "urlset",
                        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                        f"<url><loc>{base}/bomb/&lol9;</loc></url><url><loc>{base}/bad/bomb-sm</loc></url></urlset>",
                    ),
                    XML,
                ),
                "/sitemap.xml.gz": Reply(
                    200,
                    gzip.compress(b" " * (2 * MAXSIZE), compresslevel=9),
                    {"Content-Type": "application/x-gzip"},
                ),
                "/api/v2/doc/doc": Reply(200, b"<html>Query too short</html>", {"Content-Type": "text/html"}),
            }
        )
        # an endless chain of sitemap indexes, each pointing to the next
        for i in range(20):
            server.routes[f"/chain-{i}.xml"] = Reply(200, sitemap_index([f"{base}/chain-{i + 1}.xml"]), XML)

        def source(key: str, kind: str, url: str) -> dict[str, str]:
            return {"key": key, "name": key, "kind": kind, "url": url, "language": "en"}

        add_sources(
            hostile_settings.database_url,
            [
                source("hostile-feed", "feed", f"{base}/feed.xml"),
                source("huge-feed", "feed", f"{base}/huge-feed.xml"),
                source("garbage-feed", "feed", f"{base}/garbage-feed.xml"),
                source("bomb-feed", "feed", f"{base}/bomb-feed.xml"),
                source("gzip-bomb-feed", "feed", f"{base}/gzip-bomb-feed.xml"),
                source("stalled-feed", "feed", f"{base}/stalled-feed.xml"),
                source("missing-feed", "feed", f"{base}/missing-feed.xml"),
                source("forbidden-feed", "feed", f"{closed}/feed.xml"),
                source("metadata-feed", "feed", "http://169.254.169.254/feed.xml"),
                source("self-index", "sitemap", f"{base}/sitemap-index.xml"),
                source("chain-index", "sitemap", f"{base}/chain-0.xml"),
                source("big-sitemap", "sitemap", f"{base}/big-sitemap.xml"),
                source("bomb-sitemap", "sitemap", f"{base}/bomb-sitemap.xml"),
                source("gzip-bomb-sitemap", "sitemap", f"{base}/sitemap.xml.gz"),
                source("gdelt-garbage", "gdelt", "Baku Moscow"),
            ],
        )
        settings = dataclasses.replace(hostile_settings, gdelt_api_url=f"{base}/api/v2/doc/doc")
        sessions = make_sessionmaker(make_engine(settings.database_url))
        result = run_crawl(settings, sessions, spiders=("feeds", "sitemaps", "gdelt"))
        log = result.log_file.read_text() if result.log_file else ""
        assert result.ok, (result.error, log[-3000:])
        docs = documents(settings.database_url)
        with sessions() as session:
            sources = list(session.scalars(select(Source)))
        source_of = {s.id: s.key for s in sources}
        return HostileCrawl(
            base=base,
            closed=closed,
            docs=docs,
            status={s.key: s.last_status for s in sources},
            listed_by={url.removeprefix(base): source_of.get(d.source_id) for url, d in docs.items()},
            hits=dict(server.hits),
            forbidden_hits=dict(forbidden.hits),
            stats=result.stats or {},
            log=log,
        )


def test_good_pages_are_stored_under_the_source_that_listed_them(crawl: HostileCrawl) -> None:
    # good pages from every kind of source are stored
    for path in ("/good/1", "/good/2", "/good/huge", "/good/sitemap"):
        assert crawl.docs[f"{crawl.base}{path}"].status == "ok", (
            path,
            crawl.docs[f"{crawl.base}{path}"].reason,
        )
        assert "Yekaterinburg" in crawl.docs[f"{crawl.base}{path}"].text

    # every document is recorded under the source that listed it
    listed_by = dict(crawl.listed_by)
    assert listed_by.pop("/good/huge") == "huge-feed" and listed_by.pop("/good/sitemap") == "self-index"
    assert listed_by.pop("/bad/bomb-target") == "bomb-feed"
    assert set(listed_by.values()) == {"hostile-feed"}, listed_by


def test_pages_that_are_not_html_articles_fail_for_good(crawl: HostileCrawl) -> None:
    # pages that are not HTML articles
    assert crawl.failed("/bad/image") == ("image (image/png)", False)
    assert crawl.failed("/bad/binary") == ("binary content", False)
    assert crawl.failed("/bad/report.pdf") == ("PDF document", False)
    assert crawl.failed("/bad/empty") == ("empty body", False)
    assert crawl.failed("/bad/no-article") == (
        "no article text extracted",
        False,
    )  # a nav bar naming both countries


def test_oversized_bodies_stop_at_the_download_limit(crawl: HostileCrawl) -> None:
    # sizes: the download handler and the decompression stop at DOWNLOAD_MAXSIZE, not retried later
    for path in ("/bad/huge", "/bad/huge-declared", "/bad/gzip-bomb"):
        reason, retryable = crawl.failed(path)
        assert reason.startswith("too large:") and not retryable, (path, reason)
    assert "decompress" in crawl.failed("/bad/gzip-bomb")[0]
    assert str(MAXSIZE) in crawl.failed("/bad/huge")[0]


def test_bad_and_mislabelled_encodings_lose_nothing(crawl: HostileCrawl) -> None:
    # encodings: invalid bytes do not lose the page; windows-1251 labelled utf-8 reads as Cyrillic
    assert "Yekaterinburg" in crawl.docs[f"{crawl.base}/bad/invalid-bytes"].text
    mislabelled = crawl.docs[f"{crawl.base}/bad/mislabelled"]
    assert "Министерство иностранных дел Азербайджана" in mislabelled.text, mislabelled.text[:200]
    assert mislabelled.language == "ru"


def test_redirect_loops_end_and_redirects_to_metadata_are_refused(crawl: HostileCrawl) -> None:
    # redirects: loops end after REDIRECT_MAX_TIMES; a redirect to the metadata address is refused
    for path in ("/bad/loop-a", "/bad/loop-self"):
        assert crawl.failed(path) == ("too many redirects (redirect loop?)", False)
    assert crawl.hits["/bad/loop-a"] + crawl.hits["/bad/loop-b"] == 6 and crawl.hits["/bad/loop-self"] == 6
    reason, _ = crawl.failed("/bad/to-metadata")
    assert reason.startswith("redirect to http://169.254.169.254/") and "link-local" in reason, reason


def test_http_errors_are_final_or_retryable(crawl: HostileCrawl) -> None:
    # HTTP errors: 4xx final, 5xx/429 retryable; Retry-After means no immediate retry in this crawl
    assert crawl.failed("/bad/missing") == ("http 404", False)
    assert crawl.failed("/bad/gone") == ("http 410", False)
    assert crawl.failed("/bad/too-many") == ("http 429", True) and crawl.hits["/bad/too-many"] == 1
    assert crawl.failed("/bad/busy") == ("http 503", True) and crawl.hits["/bad/busy"] == 1
    assert (
        crawl.failed("/bad/error") == ("http 500", True) and crawl.hits["/bad/error"] == 3
    )  # RETRY_TIMES = 2


def test_stalls_and_resets_are_retried_then_recorded(crawl: HostileCrawl) -> None:
    # a body that stalls and a connection reset: retried, then recorded as retryable
    reason, retryable = crawl.failed("/bad/stall")
    assert (
        reason.startswith("DownloadTimeoutError")
        and f"longer than {DOWNLOAD_TIMEOUT}" in reason
        and retryable
    )
    reason, retryable = crawl.failed("/bad/reset")
    assert reason.startswith(("DownloadFailedError", "ResponseDataLossError")) and retryable, reason
    assert crawl.hits["/bad/stall"] == 3 and crawl.hits["/bad/reset"] == 3


def test_forbidden_private_non_http_and_old_links_are_never_fetched(crawl: HostileCrawl) -> None:
    # never fetched, never stored: before the since-window, robots.txt, non-http(s), private addresses
    assert "/old/1" not in crawl.hits
    assert crawl.forbidden_hits == {"/robots.txt": 1}
    assert not any(url.startswith(crawl.closed) for url in crawl.docs)
    assert crawl.status["forbidden-feed"] == "error: Forbidden by robots.txt"
    assert not any(url.startswith(("file:", "javascript:", "data:")) for url in crawl.docs)
    assert crawl.stats["feeds"]["claimwatch/links_rejected"] == len(NON_HTTP_LINKS)
    assert crawl.stats["sitemaps"]["claimwatch/links_rejected"] == len(NON_HTTP_LINKS)
    assert not any(
        url.startswith(("http://10.", "http://169.", "http://192.", "http://[", "http://2852"))
        for url in crawl.docs
    )
    assert not [url for url in crawl.docs if not url.startswith((crawl.base, crawl.closed))], sorted(
        crawl.docs
    )
    # every private link, the metadata feed and the redirect to the metadata address
    assert crawl.stats["feeds"]["claimwatch/blocked_address"] == len(PRIVATE_LINKS) + 2
    assert crawl.status["metadata-feed"] == "error: blocked: link-local address"
    for url in PRIVATE_LINKS:
        assert f"refusing {url}" in crawl.log or f"refusing {url.lower()}" in crawl.log, url


def test_feed_level_faults_are_recorded_on_the_source(crawl: HostileCrawl) -> None:
    # feed-level faults are on the source
    assert crawl.status["hostile-feed"] == "200 ok"
    assert crawl.status["garbage-feed"].startswith("malformed feed:")
    assert crawl.status["missing-feed"] == "error: http 404"
    assert (
        crawl.status["gzip-bomb-feed"].startswith("error: too large:")
        and "decompress" in crawl.status["gzip-bomb-feed"]
    )
    assert crawl.status["stalled-feed"].startswith("error: DownloadTimeoutError")
    assert crawl.status["gdelt-garbage"].startswith("error: not JSON")


def test_huge_feeds_are_read_up_to_the_entry_cap(crawl: HostileCrawl) -> None:
    # 100,000 items: parsed up to the cap, only in-window entries fetched, nothing beyond the cap
    assert crawl.status["huge-feed"] == f"200 ok (first {ENTRY_CAP} of 100000 entries)"
    assert not any(path.startswith(("/old/", "/beyond/")) for path in crawl.hits), sorted(crawl.hits)[:20]


def test_entity_expansion_bombs_expand_nothing(crawl: HostileCrawl) -> None:
    # entity-expansion bombs: nothing expanded
    assert crawl.status["bomb-feed"] == "200 ok (DTD entity declarations ignored)"
    bomb_target = crawl.docs[f"{crawl.base}/bad/bomb-target"]
    assert bomb_target.title is not None and "lollol" not in bomb_target.title and len(bomb_target.title) < 50
    assert (
        crawl.status["bomb-sitemap"].startswith("error: malformed sitemap")
        and "amplification" in crawl.status["bomb-sitemap"]
    )
    assert not any(path.startswith(("/bomb/", "/bad/bomb-sm")) for path in crawl.hits)
    assert crawl.status["gzip-bomb-sitemap"].startswith("error: too large:")


def test_sitemap_indexes_are_bounded_by_depth(crawl: HostileCrawl) -> None:
    # sitemap indexes: pointing to themselves or chained without end, bounded by the index depth
    assert crawl.status["self-index"].startswith("200 ok") and crawl.hits["/sitemap-index.xml"] <= 2
    assert sum(crawl.hits.get(f"/chain-{i}.xml", 0) for i in range(20)) == MAX_SITEMAP_DEPTH + 1
    assert crawl.status["big-sitemap"] == f"200 ok (first {ENTRY_CAP} entries)"


def test_address_policy_checks_resolved_names() -> None:
    """A host name resolving to a private address is refused like the literal address."""

    async def resolve(host: str) -> str:
        return {"intranet.example": "10.1.2.3", "metadata.example": "169.254.169.254"}.get(
            host, "93.184.216.34"
        )

    crawler = SimpleNamespace(stats=SimpleNamespace(inc_value=lambda *a, **k: None))
    policy = AddressPolicyMiddleware(crawler, allow_loopback=True, resolve=resolve)  # type: ignore[arg-type]
    for host, reason in (("intranet.example", "private or reserved"), ("metadata.example", "link-local")):
        with pytest.raises(PolicyRefusal, match=f"{host} resolves to .*: {reason}"):
            asyncio.run(policy.process_request(Request(f"http://{host}/feed.xml")))
    assert asyncio.run(policy.process_request(Request("http://news.example/feed.xml"))) is None
