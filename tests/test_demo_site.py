"""The offline demo news site: content, routes, feeds, sitemaps, conditional GET, encodings, dates."""

from __future__ import annotations

import gzip
import html
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from urllib.parse import urlsplit, urlunsplit

import feedparser
import pytest
from scrapy.utils.sitemap import Sitemap

from crawler.demo.site import DemoArticle, DemoSite, load_articles, reference_date
from pipelines.sourcecheck import feed_entry_time

NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@dataclass
class Fetched:
    status: int
    headers: Message
    body: bytes


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Fetched:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Fetched(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Fetched(error.code, error.headers, error.read())


def without_query(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query=""))


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(port=0) as running:
        yield running


@pytest.fixture(scope="module")
def articles(site: DemoSite) -> list[DemoArticle]:
    return site.articles()


def by_outlet(articles: list[DemoArticle], outlet: str) -> set[str]:
    return {a.url for a in articles if a.outlet == outlet}


def outlet_of(source: dict[str, str]) -> str:
    return source["key"].removeprefix("demo-").rsplit("-", 1)[0]


# --- content -------------------------------------------------------------------------------------


def test_article_counts(articles: list[DemoArticle]) -> None:
    kinds = Counter(a.kind for a in articles)
    languages = Counter(a.language for a in articles)
    assert len(articles) >= 34
    assert languages["ru"] >= 4
    assert languages["az"] >= 1
    assert kinds["off-topic"] >= 6
    assert kinds["on-topic"] >= 8
    assert kinds["restates-claims"] >= 12
    assert len({a.outlet for a in articles}) == 3
    russian_kinds = Counter(a.kind for a in articles if a.language == "ru")
    assert russian_kinds["restates-claims"] >= 2 and russian_kinds["on-topic"] >= 1


def test_articles_are_well_formed(articles: list[DemoArticle]) -> None:
    assert len({a.slug for a in articles}) == len(articles)
    assert len({a.url for a in articles}) == len(articles)
    for a in articles:
        assert 250 <= len(a.body.split()) <= 700, a.slug
        assert len(a.paragraphs) >= 4, a.slug
        assert a.published.tzinfo is not None
        assert a.url.endswith(f"/{a.outlet}/news/{a.slug}.html")
        assert bool(a.claims) == (a.kind == "restates-claims"), a.slug


def test_three_syndicated_copies_of_one_original(articles: list[DemoArticle]) -> None:
    copies = [a for a in articles if a.syndicated_from]
    assert len(copies) == 3
    originals = {a.slug: a for a in articles}
    assert len({c.syndicated_from for c in copies}) == 1
    original = originals[copies[0].syndicated_from]
    assert original.language == "en" and original.kind == "restates-claims"
    for copy in copies:
        assert copy.body == original.body
        assert copy.outlet != original.outlet
        assert copy.credit
    # One reprint keeps the headline (an exact copy once extracted), the others retitle it (near-duplicates).
    assert sum(copy.title == original.title for copy in copies) == 1


def test_off_topic_articles_name_neither_country(articles: list[DemoArticle]) -> None:
    from pipelines.relevance import assess_relevance

    for a in articles:
        relevance = assess_relevance(a.body, a.title)
        assert relevance.relevant == (a.kind != "off-topic"), (a.slug, relevance.reason)


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 20, 0, 0, 1, tzinfo=UTC),
        datetime(2027, 3, 1, 23, 59, 59, tzinfo=UTC),
        datetime(2031, 7, 15, 12, 0, tzinfo=UTC),
    ],
)
def test_date_shifting(now: datetime) -> None:
    shifted = load_articles(now)
    assert all(a.published <= now for a in shifted)
    newest = max(a.published for a in shifted)
    assert newest.astimezone(UTC).date() == (now - timedelta(days=1)).date()
    recent = [a for a in shifted if a.published >= now - timedelta(days=7)]
    assert len(recent) >= 25
    assert len(shifted) - len(recent) >= 4, "some older articles must fall outside the first-run window"
    originals = load_articles(reference_date())
    spacing = {a.slug: a.published - newest for a in shifted}
    original_newest = max(a.published for a in originals)
    assert spacing == {a.slug: a.published - original_newest for a in originals}


def test_site_dates_follow_now() -> None:
    now = datetime(2027, 1, 10, 8, 0, tzinfo=UTC)
    with DemoSite(now=now) as site:
        newest = site.articles()[0]
        assert newest.published.astimezone(UTC).date() == datetime(2027, 1, 9).date()
        # URLs never depend on the day the site is served: reruns must find the same pages
        assert newest.url.endswith(f"/{newest.outlet}/news/{newest.slug}.html")


# --- routes --------------------------------------------------------------------------------------


def test_every_article_page_serves_its_body(site: DemoSite, articles: list[DemoArticle]) -> None:
    for a in articles:
        page = fetch(a.url)
        assert page.status == 200, a.url
        content_type = page.headers["Content-Type"]
        assert content_type == f"text/html; charset={a.encoding}"
        text = page.body.decode(a.encoding)
        assert f'<html lang="{a.language}"' in text
        assert f'<meta charset="{a.encoding}">' in text
        for paragraph in a.paragraphs:
            assert f"<p>{html.escape(paragraph)}</p>" in text, (a.slug, paragraph[:60])
        assert f'<link rel="canonical" href="{a.url}">' in text
        assert f'<meta property="article:published_time" content="{a.published.isoformat()}">' in text
        assert "<article" in text and "og:title" in text and 'name="author"' in text


def test_article_page_boilerplate(site: DemoSite, articles: list[DemoArticle]) -> None:
    markers = {
        "caspian-ledger": ('class="story-body"', 'class="comment"', "cookie-banner", "breaking-ticker"),
        "steppe-sea-review": (
            'itemprop="articleBody"',
            'class="c-discussion__item"',
            "c-consent",
            "c-live-strip",
        ),
        "vestnik-kaspiya": ('class="news-text"', 'class="comment"', "cookie-warning", "running-line"),
    }
    for a in articles:
        text = fetch(a.url).body.decode(a.encoding)
        for marker in markers[a.outlet]:
            assert marker in text, (a.slug, marker)
        comment_marker = markers[a.outlet][1]
        assert 3 <= text.count(comment_marker) <= 5, a.slug
        structured = re.search(r'<script type="application/ld\+json">(.*?)</script>', text, re.S)
        assert structured is not None
        data = json.loads(structured.group(1))
        assert data["@type"] == "NewsArticle" and data["headline"] == a.title
        assert data["author"]["name"] == a.author


def test_windows_1251_page(site: DemoSite, articles: list[DemoArticle]) -> None:
    legacy = [a for a in articles if a.encoding != "utf-8"]
    assert [a.encoding for a in legacy] == ["windows-1251"]
    page = fetch(legacy[0].url)
    assert page.headers["Content-Type"] == "text/html; charset=windows-1251"
    with pytest.raises(UnicodeDecodeError):
        page.body.decode("utf-8")
    text = page.body.decode("windows-1251")
    assert 'content="text/html; charset=windows-1251"' in text
    assert legacy[0].paragraphs[0] in text


def test_unknown_paths_are_404(site: DemoSite) -> None:
    for path in ("/nope", "/caspian-ledger/2026/01/missing.html", "/steppe-sea-review/rss.xml", "/feed"):
        page = fetch(site.base_url + path)
        assert page.status == 404, path
        assert page.headers["Content-Type"].startswith("text/html")


def test_robots_txt_and_private_area(site: DemoSite) -> None:
    robots = fetch(site.base_url + "/robots.txt")
    assert robots.status == 200
    assert robots.headers["Content-Type"].startswith("text/plain")
    text = robots.body.decode()
    assert "User-agent: *" in text
    assert "Disallow: /private/" in text
    assert re.findall(r"^Disallow:.*$", text, re.M) == ["Disallow: /private/"]
    assert f"Sitemap: {site.base_url}/sitemap-index.xml" in text
    assert fetch(site.base_url + "/private/").status == 200


def test_home_and_section_pages(site: DemoSite, articles: list[DemoArticle]) -> None:
    home = fetch(site.base_url + "/").body.decode()
    for outlet in {a.outlet for a in articles}:
        assert f'href="/{outlet}/"' in home
        section = fetch(f"{site.base_url}/{outlet}/").body.decode()
        for a in articles:
            if a.outlet == outlet:
                assert urlsplit(a.url).path in section
        redirect = fetch(f"{site.base_url}/{outlet}")
        assert redirect.status == 200 and redirect.body.decode() == section  # urllib follows the 301


# --- feeds and sitemaps --------------------------------------------------------------------------


def test_sources(site: DemoSite) -> None:
    sources = site.sources()
    assert {s["kind"] for s in sources} == {"feed", "sitemap"}
    assert len({s["key"] for s in sources}) == len(sources)
    for source in sources:
        assert source["key"].startswith("demo-")
        assert source["url"].startswith(site.base_url + "/")
        assert source["perspective"] == "demo"
        assert {"name", "language", "country"} <= source.keys()
    urls = {s["url"].removeprefix(site.base_url) for s in sources}
    assert {"/caspian-ledger/rss.xml", "/steppe-sea-review/atom.xml", "/sitemap-index.xml"} <= urls


def test_feeds_list_their_outlets_articles(site: DemoSite, articles: list[DemoArticle]) -> None:
    versions = set()
    tracked = 0
    for source in (s for s in site.sources() if s["kind"] == "feed"):
        page = fetch(source["url"])
        assert page.status == 200
        parsed = feedparser.parse(page.body)
        assert not parsed.bozo, parsed.get("bozo_exception")
        versions.add(parsed.version)
        links = [entry.link for entry in parsed.entries]
        tracked += sum("utm_source=" in link for link in links)
        assert {without_query(link) for link in links} == by_outlet(articles, outlet_of(source))
        for entry in parsed.entries:
            assert feed_entry_time(entry) is not None
            assert entry.title
    assert {"rss20", "atom10"} <= versions
    assert tracked >= 2


def test_feed_escapes_markup(site: DemoSite, articles: list[DemoArticle]) -> None:
    atom = next(s for s in site.sources() if s["url"].endswith("atom.xml"))
    parsed = feedparser.parse(fetch(atom["url"]).body)
    assert parsed.feed.title == "Steppe & Sea Review"
    titles = {a.title for a in articles if a.outlet == outlet_of(atom)}
    assert {entry.title for entry in parsed.entries} == titles


def test_news_sitemap_via_index(site: DemoSite, articles: list[DemoArticle]) -> None:
    source = next(s for s in site.sources() if s["kind"] == "sitemap")
    index = Sitemap(fetch(source["url"]).body)
    assert index.type == "sitemapindex"
    children = list(index)
    assert children and all(child.get("lastmod") for child in children)
    for child in children:
        page = fetch(child["loc"])
        assert page.status == 200
        root = ET.fromstring(page.body)
        assert root.tag == f"{SITEMAP}urlset"
        urls = root.findall(f"{SITEMAP}url")
        locs = {without_query(u.findtext(f"{SITEMAP}loc")) for u in urls}
        outlet = urlsplit(child["loc"]).path.split("/")[1]
        assert locs == by_outlet(articles, outlet)
        for url in urls:
            assert datetime.fromisoformat(url.findtext(f"{SITEMAP}lastmod")).tzinfo is not None
            published = url.findtext(f"{NEWS}news/{NEWS}publication_date")
            assert datetime.fromisoformat(published).tzinfo is not None
            assert url.findtext(f"{NEWS}news/{NEWS}publication/{NEWS}language") in {"en", "ru", "az"}
        assert Sitemap(page.body).type == "urlset"


def test_conditional_get(site: DemoSite) -> None:
    for source in site.sources():
        first = fetch(source["url"])
        etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert etag and last_modified
        assert fetch(source["url"], {"If-None-Match": etag}).status == 304
        assert fetch(source["url"], {"If-Modified-Since": last_modified}).status == 304
        assert fetch(source["url"], {"If-None-Match": '"stale"'}).status == 200
        stale = "Mon, 01 Jan 2001 00:00:00 GMT"
        assert fetch(source["url"], {"If-Modified-Since": stale}).status == 200
        not_modified = fetch(source["url"], {"If-None-Match": etag})
        assert not_modified.body == b"" and not_modified.headers["ETag"] == etag


def test_gzip_when_accepted(site: DemoSite, articles: list[DemoArticle]) -> None:
    url = articles[0].url
    plain = fetch(url)
    compressed = fetch(url, {"Accept-Encoding": "gzip"})
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(compressed.body) == plain.body
    assert fetch(url, {"Accept-Encoding": "gzip", "If-None-Match": compressed.headers["ETag"]}).status == 304


def test_head_request(site: DemoSite) -> None:
    page = fetch(site.base_url + "/robots.txt", method="HEAD")
    assert page.status == 200 and page.body == b""
    assert int(page.headers["Content-Length"]) > 0


def test_not_started_site_refuses_listing() -> None:
    with pytest.raises(RuntimeError):
        DemoSite().sources()


def test_module_serves_in_foreground() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "crawler.demo.site", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert fetch(base_url + "/robots.txt").status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
