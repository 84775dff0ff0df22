"""Property tests (hypothesis): feed and sitemap parsing, URL canonicalisation, segmentation and
matching never crash on garbage and keep their invariants; page content shaped as SQL is stored
verbatim. URL idempotence on arbitrary text and segmentation offsets are also in test_urls.py /
test_segment.py; here they run on URL- and article-shaped input. The explicit examples marked
"crashed" are what fuzzing found before crawler/spiders/sitemaps.py checked child sitemap URLs."""

from __future__ import annotations

import gzip
import hashlib
import itertools
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scrapy import Request
from scrapy.http import Response, TextResponse, XmlResponse
from scrapy.utils.test import get_crawler

from crawler.items import SourceStateItem
from crawler.spiders.feeds import FeedSpider
from crawler.spiders.sitemaps import MAX_SITEMAP_DEPTH, NewsSitemapSpider
from pipelines.claims import Claim
from pipelines.match import ClaimIndex, match_texts
from pipelines.segment import segment_text, split_sentences
from pipelines.urls import canonicalize_url

CAP = 5  # CLAIMWATCH_MAX_SOURCE_ENTRIES in these tests: generated documents often exceed it
SINCE = datetime(2024, 1, 1, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- building blocks -----------------------------------------------------------------------------

hosts = st.sampled_from(["example.com", "WWW.Example.org", "xn--80ak6aa92e.com", "пример.рф", "127.0.0.1",
                         "[::1]", "a.b.c.az", "localhost"])  # fmt: skip
paths = st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=8), max_size=4).map("/".join)
queries = st.lists(
    st.tuples(
        st.sampled_from(["id", "utm_source", "fbclid", "a", "B", "gclid", "page"]), st.text(max_size=6)
    ),
    max_size=4,
).map(lambda items: "&".join(f"{k}={v}" for k, v in items))
http_urls = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}/{path}"
        + (f"?{query}" if query else "")
        + (f"#{fragment}" if fragment else "")
    ),
    st.sampled_from(["http", "https", "HTTP", "hTtPs"]),
    hosts,
    st.sampled_from(["", ":80", ":443", ":8080", ":0", ":99999", ":x"]),
    paths,
    queries,
    st.text(max_size=5),
)
garbage_links = st.one_of(
    st.sampled_from(["", " ", "javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi", "ftp://a/b",
                     "/relative/path", "//example.com/p", "http://", "http://[::1:bad", "mailto:a@b.az",
                     "http://exa mple.com/", "https://example.com:-1/", "http://%zz/"]),
    st.text(max_size=40),
)  # fmt: skip
links = st.one_of(http_urls, garbage_links)
dates = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)).map(
        lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0000")
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(datetime.isoformat),
    st.sampled_from(["", "yesterday", "2024-13-45T99:99:99Z", "Mon, 32 Foo 2024", "0000-00-00", "-1",
                     "9999-12-31T23:59:59+14:00", "2025-02-29", "1e308", "2024-06-01T12:00:00+25:00"]),
    st.text(max_size=30),
)  # fmt: skip
titles = st.one_of(st.text(max_size=60), st.text(min_size=2000, max_size=6000), st.just("a" * 200_000))


PROLOGS = [
    '<?xml version="1.0" encoding="utf-8"?>',
    "",
    '<?xml version="1.0" encoding="windows-1251"?>',
    '<!DOCTYPE rss [<!ENTITY a "b">]>',
]


def xml_text(value: str, raw: bool) -> str:
    """Escaped text, or (raw) the value as is: unescaped '<' and '&' make the document malformed."""
    return value if raw else escape(value)


@st.composite
def junk_elements(draw: st.DrawFn) -> str:
    """Unknown, nested, namespaced or unclosed elements between the real ones."""
    return "".join(
        draw(
            st.lists(
            st.sampled_from([
                "<junk><deeper><deepest>x</deepest></deeper></junk>", "<foo:bar xmlns:foo='urn:x'/>",
                "<![CDATA[<item><link>http://cdata.example/</link></item>]]>", "<!-- <item> -->",
                "<unclosed>", "</stray>", "&bogus;", "&#0;", "\x00", "<?pi target?>",
                "<item><link>http://nested.example/inner</link></item>", "<link>http://x.example/</link>",
            ]),
            max_size=3,
            )
        )
    )  # fmt: skip


@st.composite
def feed_entries(draw: st.DrawFn, atom: bool) -> str:
    raw = draw(st.booleans())
    parts = []
    if draw(st.booleans()):
        parts.append(f"<title>{xml_text(draw(titles), raw)}</title>")
    if draw(st.integers(0, 5)):  # most entries have a link
        link = xml_text(draw(links), raw)
        parts.append(f'<link href="{link}"/>' if atom and draw(st.booleans()) else f"<link>{link}</link>")
    if draw(st.booleans()):
        tag = draw(st.sampled_from(["updated", "published"] if atom else ["pubDate", "dc:date"]))
        parts.append(f"<{tag}>{xml_text(draw(dates), raw)}</{tag}>")
    parts.append(draw(junk_elements()))
    draw(st.randoms()).shuffle(parts)
    tag = "entry" if atom else "item"
    return f"<{tag}>{''.join(parts)}</{tag}>"


@st.composite
def feed_bodies(draw: st.DrawFn) -> bytes:
    atom = draw(st.booleans())
    entries = "".join(draw(st.lists(feed_entries(atom), max_size=12)))
    if atom:
        text = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'
    else:
        text = (
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>'
            f"{entries}</channel></rss>"
        )
    prolog = draw(st.sampled_from(PROLOGS))
    body = (prolog + text).encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):  # truncated mid-transfer
        body = body[: draw(st.integers(0, len(body)))]
    return body


@st.composite
def sitemap_bodies(draw: st.DrawFn) -> bytes:
    index = draw(st.booleans())
    raw = draw(st.booleans())
    items = []
    for _ in range(draw(st.integers(0, 12))):
        parts = []
        if draw(st.integers(0, 5)):
            parts.append(f"<loc>{xml_text(draw(links), raw)}</loc>")
        if draw(st.booleans()):
            parts.append(f"<lastmod>{xml_text(draw(dates), raw)}</lastmod>")
        if not index and draw(st.booleans()):
            news = [f"<news:publication_date>{xml_text(draw(dates), raw)}</news:publication_date>"]
            if draw(st.booleans()):
                news.append(f"<news:title>{xml_text(draw(titles), raw)}</news:title>")
            if draw(st.booleans()):
                news.append(f"<news:language>{xml_text(draw(st.text(max_size=5)), raw)}</news:language>")
            parts.append(f"<news:news>{''.join(news)}</news:news>")
        parts.append(draw(junk_elements()))
        tag = "sitemap" if index else "url"
        items.append(f"<{tag}>{''.join(parts)}</{tag}>")
    root = "sitemapindex" if index else "urlset"
    text = (
        f'<{root} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{"".join(items)}</{root}>'
    )
    body = ('<?xml version="1.0" encoding="UTF-8"?>' + text).encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    if draw(st.integers(0, 5)) == 0:
        body = gzip.compress(body)
    return body


# --- the spiders, without a crawl -----------------------------------------------------------------


def make_spider(cls: type[Any], kind: str) -> tuple[Any, dict[str, Any]]:
    source = {"key": "fuzz", "kind": kind, "url": "http://example.com/source.xml", "language": "en"}
    crawler = get_crawler(cls, {"CLAIMWATCH_MAX_SOURCE_ENTRIES": CAP})
    return cls.from_crawler(crawler, since=SINCE.isoformat(), sources=[source]), source


def check_article_request(request: Request) -> None:
    assert request.url.startswith(("http://", "https://"))
    assert canonicalize_url(request.url) == request.url  # canonical: stored and deduplicated as listed
    assert request.meta["canonical_url"] == request.url
    published = request.meta["listed_published"]
    if published is not None:
        moment = datetime.fromisoformat(published)
        assert moment.tzinfo is not None and moment.utcoffset() is not None
        assert moment >= SINCE  # older entries are dropped
    title = request.meta["listed_title"]
    assert title is None or isinstance(title, str)


@FUZZ
@given(feed_bodies())
@example(b"<rss><channel><item><link>http://a.example/x?utm_source=1#f</link></item></channel></rss>")
@example(
    b"<rss><channel>"
    + b"".join(b"<item><link>http://a.example/%d</link></item>" % n for n in range(20))
    + b"</channel></rss>"
)
@example(b"")
@example(b"\xff\xfe<rss")
def test_feed_parsing_never_raises_and_yields_only_canonical_http_requests(body: bytes) -> None:
    spider, source = make_spider(FeedSpider, "feed")
    request = Request(source["url"], meta={"source": source})
    response = XmlResponse(source["url"], body=body, request=request)
    out = list(spider.parse_feed(response))
    requests = [item for item in out if isinstance(item, Request)]
    states = [item for item in out if isinstance(item, SourceStateItem)]
    assert len(requests) + len(states) == len(out)
    assert len(states) == 1 and out[-1] is states[0]  # the source's state is always recorded, last
    assert len(requests) <= CAP
    assert len({r.url for r in requests}) == len(requests)
    for item in requests:
        check_article_request(item)
        assert item.meta["article"] is True


@FUZZ
@given(sitemap_bodies(), st.integers(0, MAX_SITEMAP_DEPTH), st.booleans())
@example(
    b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>foo</loc></sitemap>'
    b"<sitemap><loc>file:///etc/passwd</loc></sitemap></sitemapindex>",
    0,
    True,
)  # crashed (ValueError: Missing scheme) and requested file: before child sitemap URLs were checked
@example(b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://a.example/', 0, True)
def test_sitemap_parsing_never_raises_and_yields_only_http_requests(
    body: bytes, depth: int, xml_type: bool
) -> None:
    spider, source = make_spider(NewsSitemapSpider, "sitemap")
    source["url"] = "http://example.com/news-sitemap.xml"
    request = Request(source["url"], meta={"source": source, "depth_in_index": depth})
    response_class = XmlResponse if xml_type else Response
    response = response_class(source["url"], body=body, request=request)
    out = list(spider.parse_sitemap(response))
    requests = [item for item in out if isinstance(item, Request)]
    states = [item for item in out if isinstance(item, SourceStateItem)]
    assert len(requests) + len(states) == len(out)
    assert len(states) <= 1 and (depth > 0 or len(states) == 1)  # the top level always records a state
    assert len(requests) <= CAP
    for item in requests:
        assert item.url.startswith(("http://", "https://"))
        if item.meta.get("article"):
            check_article_request(item)
        else:  # a child sitemap of an index: never deeper than the cap
            assert item.meta["depth_in_index"] == depth + 1 <= MAX_SITEMAP_DEPTH


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300))
@example(
    "javascript:alert(1)\nfile:///etc/passwd\nfoo\n/relative.xml\nhttp://[::1:bad/\n"
)  # crashed: ValueError from urljoin; yielded None
def test_robots_txt_sitemap_lines_yield_only_http_requests(text: str) -> None:
    spider, source = make_spider(NewsSitemapSpider, "sitemap")
    source["url"] = "http://example.com/robots.txt"
    request = Request(source["url"], meta={"source": source, "depth_in_index": 0})
    body = ("User-agent: *\n" + "".join(f"Sitemap: {line}\n" for line in text.splitlines())).encode()
    response = TextResponse(source["url"], body=body, request=request, encoding="utf-8")
    for item in spider.parse_sitemap(response):
        assert isinstance(item, Request) and item.url.startswith(("http://", "https://"))


# --- URLs -----------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(links)
def test_canonical_urls_are_idempotent_http_and_free_of_tracking(url: str) -> None:
    canonical = canonicalize_url(url)
    if canonical is None:
        return
    assert canonical.startswith(("http://", "https://")) and "#" not in canonical
    assert canonicalize_url(canonical) == canonical
    query = canonical.split("?", 1)[1] if "?" in canonical else ""
    assert not any(p.lower().startswith(("utm_", "fbclid=", "gclid=")) for p in query.split("&"))


# --- segmentation ---------------------------------------------------------------------------------

article_text = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
        st.sampled_from(["Mr. Aliyev met Dr. Putin.", "«Баку», — сказал он.", "Bakı və Moskva!", "…",
                         "\n\n", "U.S. officials said so. ", "3.5 bn", "e.g.", "  ", "?!", '"Quote."',
                         "\u200b", "\r\n"]),
    ),
    max_size=40,
).map("".join)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(article_text, st.integers(1, 3), st.integers(20, 600))
def test_passages_are_exact_slices_of_the_text(text: str, window: int, max_chars: int) -> None:
    sentences = split_sentences(text, max_chars=max_chars)
    for sentence in sentences:
        assert text[sentence.start : sentence.end] == sentence.text and sentence.text.strip()
        assert len(sentence.text) <= max_chars
    assert all(a.end <= b.start for a, b in zip(sentences, sentences[1:], strict=False))
    for passage in segment_text(text, window=window, max_chars=max_chars):
        assert text[passage.start : passage.end] == passage.text


# --- matching -------------------------------------------------------------------------------------


class HashEncoder:
    """A deterministic stand-in for the model: a unit vector per text, from its hash."""

    model_name, revision, languages = "hash", "1", None

    def encode(self, texts: Any, kind: str = "passage") -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(
                hashlib.sha256(f"{kind}:{text}".encode("utf-8", "surrogatepass")).digest()[:8]
            )
            rows.append(np.random.default_rng(seed).standard_normal(16))
        out = np.array(rows, dtype=np.float32).reshape(len(rows), 16)
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(article_text, min_size=1, max_size=4),
    st.integers(1, 30),
    st.integers(1, 8),
    st.floats(-1.0, 1.0),
    st.integers(1, 3),
)
def test_matches_are_bounded_sorted_and_point_into_their_text(
    texts: list[str], claims: int, top_k: int, threshold: float, per_claim: int
) -> None:
    encoder = HashEncoder()
    index = ClaimIndex.build(encoder, [Claim(f"c{n}", f"claim {n}") for n in range(claims)])
    results = match_texts(encoder, index, texts, threshold=threshold, top_k=top_k, per_claim=per_claim)
    assert len(results) == len(texts)
    for text, found in zip(texts, results, strict=True):
        assert len(found) <= top_k
        scores = [m.score for m in found]
        assert scores == sorted(scores, reverse=True)
        for match in found:
            assert -1.0 <= match.score <= 1.0 and match.score >= round(threshold, 6) - 1e-6
            assert text[match.start : match.end] == match.passage
        if per_claim == 1:
            assert len({m.claim_id for m in found}) == len(found)  # the best passage per claim only


# --- storing: page content reaches SQL only as bound parameters -----------------------------------

SQL_PAYLOADS = [
    "'); DROP TABLE documents; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM claims WHERE ('1'='1",
    "%s %(x)s :name ? $1 {0}",
    "\\'; SELECT pg_sleep(10); --",
    "ʼ′＇",
]
PAGE_NUMBERS = itertools.count()
page_strings = st.one_of(st.sampled_from(SQL_PAYLOADS), st.text(max_size=200)).map(
    lambda s: s.replace("\x00", "")
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(title=page_strings, author=page_strings, outlet=page_strings, text=page_strings)
def test_page_content_is_stored_verbatim_and_never_runs_as_sql(
    sessions: Any, title: str, author: str, outlet: str, text: str
) -> None:
    from sqlalchemy import func, select

    from db.models import Claim, Document
    from db.queries import store_documents
    from db.session import session_scope
    from pipelines.dedup import content_hash, simhash

    url = f"https://hostile.example/{next(PAGE_NUMBERS)}"
    record = {"url": url, "status": "ok", "title": title, "author": author, "outlet": outlet, "text": text}
    record |= {"content_hash": content_hash(text), "simhash": simhash(text), "match_status": "skipped"}
    with session_scope(sessions) as session:
        store_documents(session, [record])
    with sessions() as session:
        stored = session.scalar(select(Document).where(Document.url == url))
        assert stored is not None
        assert (stored.title, stored.author, stored.outlet, stored.text) == (title, author, outlet, text)
        session.scalar(select(func.count()).select_from(Claim))  # the tables are all still there
