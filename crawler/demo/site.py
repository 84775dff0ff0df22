"""The offline demo news site: three fictional outlets with an RSS feed, an Atom feed, a Google News
sitemap and realistic article pages, served on 127.0.0.1 for ``claimwatch demo`` and the tests.

The content lives in ``articles.yaml``. Its dates are shifted by whole days so that the newest article
is always dated yesterday, which keeps the crawler's "last 7 days" window meaningful on any day.
Every page is rendered once when the site starts; requests only look up, compress and send them.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import html
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as _xml_escape

import jinja2
import yaml

logger = logging.getLogger(__name__)

ARTICLES_FILE = Path(__file__).with_name("articles.yaml")
FEED_TRACKING = "utm_source=rss&utm_medium=feed"
SITEMAP_TRACKING = "utm_source=sitemap&utm_medium=referral"
GZIP_MIN_BYTES = 1024
HTML_TYPE = "text/html; charset={charset}"
XML_TYPE = "application/xml; charset=utf-8"
FEED_TYPES = {"rss": "application/rss+xml; charset=utf-8", "atom": "application/atom+xml; charset=utf-8"}
FEED_FILES = {"rss": "rss.xml", "atom": "atom.xml", "news-sitemap": "news-sitemap.xml"}


# --- content -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    author: str
    text: str


@dataclass(frozen=True)
class Outlet:
    slug: str
    name: str
    tagline: str
    language: str
    country: str
    template: str
    feeds: tuple[str, ...]


@dataclass(frozen=True)
class DemoArticle:
    """One article of the demo site; ``published`` is already shifted, ``url`` is absolute once the
    site is started (before that it equals ``path``)."""

    slug: str
    outlet: str
    title: str
    author: str
    published: datetime
    language: str
    kind: str
    body: str
    syndicated_from: str | None
    section: str = ""
    claims: tuple[str, ...] = ()
    credit: str | None = None
    encoding: str = "utf-8"
    extra_comments: tuple[Comment, ...] = ()
    path: str = ""
    url: str = ""

    @property
    def paragraphs(self) -> list[str]:
        return [" ".join(p.split()) for p in self.body.split("\n\n") if p.strip()]

    @property
    def lead(self) -> str:
        """The first sentence, for teasers and descriptions."""
        first = self.paragraphs[0]
        end = first.find(". ")
        return first if end < 0 else first[: end + 1]


@functools.cache
def _content() -> dict[str, Any]:
    return yaml.safe_load(ARTICLES_FILE.read_text(encoding="utf-8"))


def reference_date() -> datetime:
    return datetime.fromisoformat(_content()["reference_date"])


def load_outlets() -> list[Outlet]:
    return [
        Outlet(
            slug=o["slug"],
            name=o["name"],
            tagline=o["tagline"],
            language=o["language"],
            country=o["country"],
            template=o["template"],
            feeds=tuple(o["feeds"]),
        )
        for o in _content()["outlets"]
    ]


def comment_pools() -> dict[str, list[Comment]]:
    return {name: [Comment(**c) for c in pool] for name, pool in _content()["comments"].items()}


def date_shift(now: datetime | None = None) -> timedelta:
    """Whole days from the content's reference date to today (UTC); the newest article is dated the
    day before the reference date, so it lands on yesterday."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return timedelta(days=(now.date() - reference_date().astimezone(UTC).date()).days)


def article_path(outlet: str, slug: str) -> str:
    # No date in the path: dates shift with the current day, and a URL must not (reruns stay idempotent).
    return f"/{outlet}/news/{slug}.html"


def _article(entry: dict[str, Any], shift: timedelta) -> DemoArticle:
    published = datetime.fromisoformat(entry["published"]) + shift
    return DemoArticle(
        slug=entry["slug"],
        outlet=entry["outlet"],
        title=entry["title"],
        author=entry["author"],
        published=published,
        language=entry["language"],
        kind=entry["kind"],
        body=entry["body"].strip(),
        syndicated_from=entry.get("syndicated_from"),
        section=entry.get("section", ""),
        claims=tuple(entry.get("claims") or ()),
        credit=entry.get("credit"),
        encoding=entry.get("encoding", "utf-8"),
        extra_comments=tuple(Comment(**c) for c in entry.get("extra_comments") or ()),
        path=article_path(entry["outlet"], entry["slug"]),
        url=article_path(entry["outlet"], entry["slug"]),
    )


def load_articles(now: datetime | None = None) -> list[DemoArticle]:
    """All demo articles, dates shifted relative to ``now`` (default: the current time), newest first."""
    shift = date_shift(now)
    articles = [_article(entry, shift) for entry in _content()["articles"]]
    return sorted(articles, key=lambda a: a.published, reverse=True)


# --- small helpers -------------------------------------------------------------------------------


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def xml_escape(text: str) -> str:
    return _xml_escape(text, {'"': "&quot;"})


def _stable_number(text: str) -> int:
    """A number derived from text that, unlike hash(), is the same in every process."""
    return zlib.crc32(text.encode("utf-8"))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def json_ld(data: dict[str, Any]) -> str:
    # "</" inside a script element would end it early.
    return json.dumps(data, ensure_ascii=False, indent=1).replace("</", "<\\/")


# --- page context --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageContext:
    """Everything an article template needs besides the article itself."""

    article: DemoArticle
    outlet: Outlet
    outlets: list[Outlet]
    related: list[DemoArticle]
    ticker: list[DemoArticle]
    comments: list[Comment]
    base_url: str
    now: datetime

    @property
    def charset(self) -> str:
        return self.article.encoding

    @property
    def home(self) -> str:
        return f"/{self.outlet.slug}/"


def pick_comments(article: DemoArticle, pools: dict[str, list[Comment]]) -> list[Comment]:
    """3–5 comments: the article's own first, then a stable, per-article selection from a pool."""
    if article.language in ("ru", "az"):
        pool = pools[article.language]
    else:
        pool = pools["en-general" if article.kind == "off-topic" else "en-topical"]
    seed = _stable_number(article.slug)
    wanted = 3 + seed % 3
    count = min(len(pool), max(2, wanted - len(article.extra_comments)))
    pooled = [pool[(seed + i) % len(pool)] for i in range(count)]
    return [*article.extra_comments, *pooled][:5]


def related_articles(article: DemoArticle, siblings: list[DemoArticle], count: int = 3) -> list[DemoArticle]:
    """The outlet's articles closest in time, as a newsroom CMS would suggest them."""
    others = [a for a in siblings if a.slug != article.slug]
    others.sort(key=lambda a: abs((a.published - article.published).total_seconds()))
    return others[:count]


def comment_time(article: DemoArticle, index: int) -> datetime:
    return article.published + timedelta(minutes=41 * (index + 1) + _stable_number(article.slug) % 30)


def head_meta(ctx: PageContext, title_separator: str) -> str:
    """The <head> tags every outlet emits: charset, title, description, OpenGraph, canonical, JSON-LD."""
    a, outlet = ctx.article, ctx.outlet
    url = ctx.base_url + a.path
    structured = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": a.title,
        "datePublished": iso(a.published),
        "dateModified": iso(a.published + timedelta(minutes=12)),
        "inLanguage": a.language,
        "author": {"@type": "Person", "name": a.author},
        "publisher": {"@type": "Organization", "name": outlet.name, "url": ctx.base_url + ctx.home},
        "mainEntityOfPage": {"@type": "WebPage", "@id": url},
        "articleSection": a.section,
        "description": a.lead,
    }
    feed_links = "\n".join(
        f'<link rel="alternate" type="{FEED_TYPES[kind].split(";")[0]}" title="{esc(outlet.name)}" '
        f'href="/{outlet.slug}/{FEED_FILES[kind]}">'
        for kind in outlet.feeds
        if kind in FEED_TYPES
    )
    return render_template(
        "head_meta.html",
        ctx=ctx,
        a=a,
        outlet=outlet,
        url=url,
        structured=structured,
        feed_links=feed_links,
        title_separator=title_separator,
    )


def body_paragraphs(article: DemoArticle, indent: str = "") -> str:
    return "\n".join(f"{indent}<p>{esc(p)}</p>" for p in article.paragraphs)


# --- templates -----------------------------------------------------------------------------------

TEMPLATES_DIR = Path(__file__).with_name("templates")


@functools.cache
def _environment() -> jinja2.Environment:
    # No autoescaping: the templates escape each value for its context themselves (esc for HTML text
    # and attributes, xml_escape for feeds), and pass pre-rendered fragments through unchanged.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.globals.update(
        body_paragraphs=body_paragraphs,
        chr=chr,
        esc=esc,
        FEED_TRACKING=FEED_TRACKING,
        feed_link=feed_link,
        format=format,
        format_datetime=format_datetime,
        head_meta=head_meta,
        iso=iso,
        json_ld=json_ld,
        len=len,
        section_link=_section_link,
        stable_number=_stable_number,
        timedelta=timedelta,
        xml_escape=xml_escape,
    )
    return environment


def render_template(name: str, **values: Any) -> str:
    """The template ``templates/NAME`` rendered with ``values``."""
    return _environment().get_template(name).render(**values)


# --- outlet templates ----------------------------------------------------------------------------

LEDGER_SECTIONS = (
    "Politics", "Business", "Energy", "Society", "Analysis", "Opinion", "World",
    "Culture", "Travel", "Sport", "Azərbaycanca", "Video", "Podcasts", "Weather",
)  # fmt: skip
REVIEW_SECTIONS = ("Caucasus", "Central Asia", "Caspian", "Economy", "Energy", "Essays", "Profiles", "Life")
VESTNIK_RUBRICS = (
    "Политика", "Экономика", "Общество", "Происшествия", "Спорт", "Природа",
    "Культура", "English edition", "Фото", "Архив",
)  # fmt: skip


def _section_link(ctx: PageContext, name: str) -> str:
    slug = "-".join(name.lower().split())
    return f'<a href="{ctx.home}?section={esc(slug)}">{esc(name)}</a>'


def render_ledger(ctx: PageContext) -> str:
    a, outlet = ctx.article, ctx.outlet
    nav = "\n".join(f"      <li>{_section_link(ctx, s)}</li>" for s in LEDGER_SECTIONS)
    network = " ".join(f'<a href="/{o.slug}/">{esc(o.name)}</a>' for o in ctx.outlets)
    ticker = "\n".join(f'    <li><a href="{t.path}">{esc(t.title)}</a></li>' for t in ctx.ticker)
    related = "\n".join(
        f'      <li><a href="{r.path}"><h3>{esc(r.title)}</h3></a><p class="teaser">{esc(r.lead)}</p></li>'
        for r in ctx.related
    )
    comments = "\n".join(
        f'    <div class="comment" id="c{i + 1}"><p class="comment-meta"><span class="comment-author">'
        f"{esc(c.author)}</span> <time>{comment_time(a, i):%d %b %Y, %H:%M}</time></p>"
        f'<p class="comment-text">{esc(c.text)}</p><a class="reply" href="#comments">Reply</a></div>'
        for i, c in enumerate(ctx.comments)
    )
    credit = f'\n      <p class="credit"><em>{esc(a.credit)}</em></p>' if a.credit else ""
    return render_template(
        "ledger.html",
        ctx=ctx,
        a=a,
        outlet=outlet,
        nav=nav,
        network=network,
        ticker=ticker,
        related=related,
        comments=comments,
        credit=credit,
    )


def render_review(ctx: PageContext) -> str:
    a, outlet = ctx.article, ctx.outlet
    menu = "\n".join(
        f'      <li class="c-topbar__item">{_section_link(ctx, s)}</li>' for s in REVIEW_SECTIONS
    )
    live = " ".join(f'<a class="c-live-strip__item" href="{t.path}">{esc(t.title)}</a>' for t in ctx.ticker)
    more = "\n".join(
        f'        <div class="c-more__item"><a class="c-more__link" href="{r.path}">'
        f'<span class="c-more__title">{esc(r.title)}</span></a>'
        f'<p class="c-more__teaser">{esc(r.lead)}</p></div>'
        for r in ctx.related
    )
    discussion = "\n".join(
        f'        <li class="c-discussion__item"><div class="c-discussion__author">{esc(c.author)} · '
        f'<span class="c-discussion__time">{comment_time(a, i):%b %d, %H:%M}</span></div>'
        f'<div class="c-discussion__body"><p>{esc(c.text)}</p></div><div class="c-discussion__actions">'
        f"<button>Reply</button> <button>Like ({_stable_number(c.text) % 40})</button></div></li>"
        for i, c in enumerate(ctx.comments)
    )
    credit = f'\n        <p class="c-article__credit">{esc(a.credit)}</p>' if a.credit else ""
    minutes = max(2, len(a.body.split()) // 220)
    return render_template(
        "review.html",
        ctx=ctx,
        a=a,
        outlet=outlet,
        menu=menu,
        live=live,
        more=more,
        discussion=discussion,
        credit=credit,
        minutes=minutes,
    )


def render_vestnik(ctx: PageContext) -> str:
    a, outlet = ctx.article, ctx.outlet
    top = " | ".join(_section_link(ctx, s) for s in ("Главная", *VESTNIK_RUBRICS[:6]))
    rubrics = "\n".join(f"        <li>{_section_link(ctx, s)}</li>" for s in VESTNIK_RUBRICS)
    running = " &nbsp;•&nbsp; ".join(f'<a href="{t.path}">{esc(t.title)}</a>' for t in ctx.ticker)
    other = "\n".join(
        f'        <li><a href="{r.path}">{esc(r.title)}</a><br><small>{esc(r.lead)}</small></li>'
        for r in ctx.related
    )
    comments = "\n".join(
        f'      <table class="comment"><tr><td class="c-author"><b>{esc(c.author)}</b><br>'
        f"<small>{comment_time(a, i):%d.%m.%Y %H:%M}</small></td>"
        f'<td class="c-text">{esc(c.text)}</td></tr></table>'
        for i, c in enumerate(ctx.comments)
    )
    credit = f'\n        <div class="news-source"><i>{esc(a.credit)}</i></div>' if a.credit else ""
    views = 300 + _stable_number(a.slug) % 4000
    return render_template(
        "vestnik.html",
        ctx=ctx,
        a=a,
        outlet=outlet,
        top=top,
        rubrics=rubrics,
        running=running,
        other=other,
        comments=comments,
        credit=credit,
        views=views,
    )


TEMPLATES: dict[str, Callable[[PageContext], str]] = {
    "ledger": render_ledger,
    "review": render_review,
    "vestnik": render_vestnik,
}


# --- listings, feeds and sitemaps ----------------------------------------------------------------


def simple_page(title: str, language: str, content: str) -> str:
    return render_template("simple_page.html", title=title, language=language, content=content)


def _listing(articles: Iterable[DemoArticle]) -> str:
    items = "\n".join(
        f'  <li><a href="{a.path}">{esc(a.title)}</a> <time datetime="{iso(a.published)}">'
        f"{a.published:%Y-%m-%d %H:%M}</time><p>{esc(a.lead)}</p></li>"
        for a in articles
    )
    return f"<ul>\n{items}\n</ul>"


def render_home(outlets: list[Outlet], articles: list[DemoArticle]) -> str:
    blocks = []
    for outlet in outlets:
        latest = [a for a in articles if a.outlet == outlet.slug][:5]
        blocks.append(
            f'<section><h2><a href="/{outlet.slug}/">{esc(outlet.name)}</a></h2>'
            f"<p>{esc(outlet.tagline)}</p>\n{_listing(latest)}</section>"
        )
    return simple_page("claimwatch demo news network", "en", "\n".join(blocks))


def render_section(outlet: Outlet, articles: list[DemoArticle]) -> str:
    feeds = " ".join(f'<a href="/{outlet.slug}/{FEED_FILES[kind]}">{kind}</a>' for kind in outlet.feeds)
    content = f"<p>{esc(outlet.tagline)}</p>\n<p>Feeds: {feeds}</p>\n{_listing(articles)}"
    return simple_page(outlet.name, outlet.language, content)


def feed_link(article: DemoArticle, index: int, query: str) -> str:
    """Every third listed link carries tracking parameters, as many publishers' feeds do."""
    return with_query(article.url, query) if index % 3 == 1 else article.url


def render_rss(outlet: Outlet, articles: list[DemoArticle], base_url: str, now: datetime) -> str:
    items = []
    for index, a in enumerate(articles):
        items.append(render_template("rss_item.xml", a=a, index=index))
    newest = articles[0].published if articles else now
    return render_template("rss.xml", outlet=outlet, base_url=base_url, newest=newest, items=items)


def render_atom(outlet: Outlet, articles: list[DemoArticle], base_url: str, now: datetime) -> str:
    host = urlsplit(base_url).hostname
    entries = []
    for index, a in enumerate(articles):
        entries.append(render_template("atom_entry.xml", a=a, index=index, outlet=outlet, host=host))
    newest = articles[0].published + timedelta(minutes=12) if articles else now
    return render_template(
        "atom.xml", outlet=outlet, base_url=base_url, host=host, newest=newest, entries=entries
    )


def render_news_sitemap(outlet: Outlet, articles: list[DemoArticle]) -> str:
    urls = []
    for index, a in enumerate(articles):
        loc = with_query(a.url, SITEMAP_TRACKING) if index == 4 else a.url
        urls.append(render_template("news_sitemap_url.xml", a=a, loc=loc, outlet=outlet))
    return render_template("news_sitemap.xml", urls=urls)


def render_sitemap_index(sitemaps: list[tuple[str, datetime]]) -> str:
    entries = "\n".join(
        f"  <sitemap>\n    <loc>{xml_escape(loc)}</loc>\n    <lastmod>{iso(lastmod)}</lastmod>\n  </sitemap>"
        for loc, lastmod in sitemaps
    )
    return render_template("sitemap_index.xml", entries=entries)


def render_robots(base_url: str) -> str:
    return render_template("robots.txt", base_url=base_url)


PRIVATE_PAGE = simple_page(
    "Staff area",
    "en",
    "<p>Editorial planning for the demo network. This area is closed to crawlers by robots.txt.</p>",
)
NOT_FOUND_PAGE = simple_page("Page not found", "en", "<p>The page you were looking for does not exist.</p>")


# --- responses -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A fully rendered response body with its validators."""

    body: bytes
    content_type: str
    last_modified: datetime | None = None
    status: int = 200
    etag: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "etag", '"' + hashlib.sha1(self.body).hexdigest()[:20] + '"')


def html_page(text: str, last_modified: datetime | None = None, charset: str = "utf-8") -> Page:
    body = text.encode(charset, errors="xmlcharrefreplace")
    return Page(body, HTML_TYPE.format(charset=charset), last_modified)


def xml_page(text: str, content_type: str, last_modified: datetime) -> Page:
    return Page(text.encode("utf-8"), content_type, last_modified)


def _etag_matches(header: str, etag: str) -> bool:
    wanted = {tag.strip().removeprefix("W/").replace("-gzip", "") for tag in header.split(",")}
    return "*" in wanted or etag in wanted


def is_not_modified(headers: Any, page: Page) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since when both are sent."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, page.etag)
    if_modified_since = headers.get("If-Modified-Since")
    if not if_modified_since or page.last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return page.last_modified.replace(microsecond=0) <= since


NOT_FOUND = Page(NOT_FOUND_PAGE.encode(), HTML_TYPE.format(charset="utf-8"), status=404)
PRIVATE = html_page(PRIVATE_PAGE)


class SiteBuilder:
    """Renders every route of the site for one base URL and one article set."""

    def __init__(self, base_url: str, now: datetime, articles: list[DemoArticle]) -> None:
        self.base_url = base_url
        self.now = now
        self.articles = articles
        self.outlets = load_outlets()
        self.pools = comment_pools()

    def by_outlet(self, outlet: Outlet) -> list[DemoArticle]:
        return [a for a in self.articles if a.outlet == outlet.slug]

    def build(self) -> dict[str, Page]:
        newest = self.articles[0].published
        routes = {
            "/": html_page(render_home(self.outlets, self.articles), newest),
            "/robots.txt": Page(render_robots(self.base_url).encode(), "text/plain; charset=utf-8", newest),
        }
        sitemaps: list[tuple[str, datetime]] = []
        for outlet in self.outlets:
            routes.update(self.outlet_routes(outlet))
            mine = self.by_outlet(outlet)
            if "news-sitemap" in outlet.feeds and mine:
                sitemaps.append((f"{self.base_url}/{outlet.slug}/news-sitemap.xml", mine[0].published))
        routes["/sitemap-index.xml"] = xml_page(render_sitemap_index(sitemaps), XML_TYPE, newest)
        return routes

    def outlet_routes(self, outlet: Outlet) -> dict[str, Page]:
        mine = self.by_outlet(outlet)
        newest = mine[0].published if mine else self.now
        routes = {f"/{outlet.slug}/": html_page(render_section(outlet, mine), newest)}
        for a in mine:
            routes[a.path] = self.article_page(a, outlet, mine)
        if "rss" in outlet.feeds:
            text = render_rss(outlet, mine, self.base_url, self.now)
            routes[f"/{outlet.slug}/rss.xml"] = xml_page(text, FEED_TYPES["rss"], newest)
        if "atom" in outlet.feeds:
            text = render_atom(outlet, mine, self.base_url, self.now)
            routes[f"/{outlet.slug}/atom.xml"] = xml_page(text, FEED_TYPES["atom"], newest)
        if "news-sitemap" in outlet.feeds:
            routes[f"/{outlet.slug}/news-sitemap.xml"] = xml_page(
                render_news_sitemap(outlet, mine), XML_TYPE, newest
            )
        return routes

    def article_page(self, article: DemoArticle, outlet: Outlet, siblings: list[DemoArticle]) -> Page:
        ctx = PageContext(
            article=article,
            outlet=outlet,
            outlets=self.outlets,
            related=related_articles(article, siblings),
            ticker=siblings[:4],
            comments=pick_comments(article, self.pools),
            base_url=self.base_url,
            now=self.now,
        )
        text = TEMPLATES[outlet.template](ctx)
        return html_page(text, article.published + timedelta(minutes=12), article.encoding)


# --- the server ----------------------------------------------------------------------------------


def make_handler(site: DemoSite) -> type[BaseHTTPRequestHandler]:
    class DemoHandler(BaseHTTPRequestHandler):
        server_version = "DemoNews/1.0"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.respond(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self.respond(send_body=False)

        def respond(self, send_body: bool) -> None:
            path = urlsplit(self.path).path
            redirect = site.redirect_for(path)
            if redirect is not None:
                self.send_response(301)
                self.send_header("Location", redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            page = site.page_for(path)
            if page.status == 200 and is_not_modified(self.headers, page):
                self.send_response(304)
                self.send_validators(page, compressed=False)
                self.end_headers()
                return
            body, compressed = self.encode_body(page)
            self.send_response(page.status)
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Vary", "Accept-Encoding")
            if compressed:
                self.send_header("Content-Encoding", "gzip")
            if page.status == 200:
                self.send_validators(page, compressed)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def encode_body(self, page: Page) -> tuple[bytes, bool]:
            accepts = self.headers.get("Accept-Encoding", "")
            if "gzip" in accepts and len(page.body) >= GZIP_MIN_BYTES:
                return gzip.compress(page.body, compresslevel=5, mtime=0), True
            return page.body, False

        def send_validators(self, page: Page, compressed: bool) -> None:
            # A compressed representation needs its own strong validator (as Apache does it).
            self.send_header("ETag", page.etag[:-1] + '-gzip"' if compressed else page.etag)
            if page.last_modified is not None:
                self.send_header("Last-Modified", http_date(page.last_modified))
            self.send_header("Cache-Control", "public, max-age=300")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (overrides the stdlib name)
            logger.debug("%s %s", self.address_string(), format % args)

    return DemoHandler


class QuietServer(ThreadingHTTPServer):
    """socketserver prints a traceback to stderr when a client hangs up early; log it instead."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("request from %s failed", client_address, exc_info=True)


class DemoSite:
    """The demo news site on a ThreadingHTTPServer in a daemon thread.

    ``port=0`` picks a free port; ``now`` fixes the moment the dates are shifted against.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, now: datetime | None = None) -> None:
        self.host = host
        self.port = port
        self.now = (now or datetime.now(UTC)).astimezone(UTC)
        self.base_url = ""
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: dict[str, Page] = {}
        self._articles: list[DemoArticle] = []

    def start(self) -> str:
        if self._server is not None:
            return self.base_url
        server = QuietServer((self.host, self.port), make_handler(self))
        self.base_url = f"http://{self.host}:{server.server_address[1]}"
        self._articles = [replace(a, url=self.base_url + a.path) for a in load_articles(self.now)]
        self._routes = SiteBuilder(self.base_url, self.now, self._articles).build()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        logger.info("demo site serving %d articles at %s", len(self._articles), self.base_url)
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
        logger.info("demo site at %s stopped", self.base_url)

    def __enter__(self) -> DemoSite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _require_started(self) -> None:
        if not self.base_url:
            raise RuntimeError("the demo site is not started; call start() first")

    def articles(self) -> list[DemoArticle]:
        """The served articles, newest first, with shifted dates and absolute URLs."""
        self._require_started()
        return list(self._articles)

    def sources(self) -> list[dict[str, Any]]:
        """The crawl sources of the demo, in the shape of the sources YAML file."""
        self._require_started()
        sources = []
        for outlet in load_outlets():
            for kind in outlet.feeds:
                url = f"{self.base_url}/sitemap-index.xml" if kind == "news-sitemap" else ""
                url = url or f"{self.base_url}/{outlet.slug}/{FEED_FILES[kind]}"
                label = {"rss": "RSS", "atom": "Atom", "news-sitemap": "news sitemap"}[kind]
                sources.append(
                    {
                        "key": f"demo-{outlet.slug}-{'sitemap' if kind == 'news-sitemap' else kind}",
                        "name": f"{outlet.name} (demo, {label})",
                        "kind": "sitemap" if kind == "news-sitemap" else "feed",
                        "url": url,
                        "language": outlet.language,
                        "country": outlet.country,
                        "perspective": "demo",
                    }
                )
        return sources

    def page_for(self, path: str) -> Page:
        if path == "/private" or path.startswith("/private/"):
            return PRIVATE
        page = self._routes.get(path)
        return page if page is not None else NOT_FOUND

    def redirect_for(self, path: str) -> str | None:
        """``/outlet`` → ``/outlet/``, as most web servers do for directories."""
        if not path.endswith("/") and path + "/" in self._routes:
            return path + "/"
        return None


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve claimwatch's offline demo news site in the foreground."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (default: 8765)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    with DemoSite(host=args.host, port=args.port) as site:
        print(site.base_url, flush=True)
        for source in site.sources():
            logger.info("source %-32s %s", source["key"], source["url"])
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            logger.info("stopping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
