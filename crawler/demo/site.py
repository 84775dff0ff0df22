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
    return f"""<meta charset="{ctx.charset}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(a.title)} {title_separator} {esc(outlet.name)}</title>
<meta name="description" content="{esc(a.lead)}">
<meta name="author" content="{esc(a.author)}">
<meta name="robots" content="index, follow, max-image-preview:large">
<link rel="canonical" href="{esc(url)}">
<meta property="og:type" content="article">
<meta property="og:site_name" content="{esc(outlet.name)}">
<meta property="og:title" content="{esc(a.title)}">
<meta property="og:description" content="{esc(a.lead)}">
<meta property="og:url" content="{esc(url)}">
<meta property="og:locale" content="{a.language}">
<meta property="article:published_time" content="{iso(a.published)}">
<meta property="article:modified_time" content="{iso(a.published + timedelta(minutes=12))}">
<meta property="article:section" content="{esc(a.section)}">
<meta property="article:author" content="{esc(a.author)}">
{feed_links}
<script type="application/ld+json">
{json_ld(structured)}
</script>"""


def body_paragraphs(article: DemoArticle, indent: str = "") -> str:
    return "\n".join(f"{indent}<p>{esc(p)}</p>" for p in article.paragraphs)


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
    return f"""<!DOCTYPE html>
<html lang="{a.language}">
<head>
{head_meta(ctx, "|")}
<style>body{{font-family:Georgia,serif;margin:0}} .cookie-banner{{position:fixed;bottom:0}}</style>
<script>window.dataLayer = window.dataLayer || []; dataLayer.push({{"section": "{esc(a.section)}"}});</script>
</head>
<body class="ledger article-page">
<div id="cookie-consent" class="cookie-banner" role="dialog" aria-label="Cookie consent">
  <p>We use cookies and similar technologies to measure traffic, remember your preferences and show
  relevant advertising. By clicking "Accept all" you agree to the storage of cookies on your device.</p>
  <button type="button" class="accept">Accept all</button> <button type="button">Manage preferences</button>
</div>
<header class="site-header">
  <div class="masthead"><a class="logo" href="{ctx.home}">{esc(outlet.name)}</a>
    <span class="tagline">{esc(outlet.tagline)}</span>
    <span class="today">{ctx.now:%A, %d %B %Y}</span>
    <a class="login" href="{ctx.home}?page=login">Sign in</a>
    <a class="subscribe" href="{ctx.home}?page=subscribe">Subscribe</a>
  </div>
  <nav class="main-nav" aria-label="Sections">
    <ul>
{nav}
    </ul>
  </nav>
  <nav class="network-nav" aria-label="Network">Our network: {network}</nav>
</header>
<div class="breaking-ticker" aria-live="polite"><strong>Breaking</strong>
  <ul>
{ticker}
  </ul>
</div>
<main id="content">
  <div class="container">
    <nav class="breadcrumbs"><a href="{ctx.home}">Home</a> › {_section_link(ctx, a.section)}</nav>
    <article class="story">
      <header class="story-header">
        <span class="kicker">{esc(a.section)}</span>
        <h1 class="headline">{esc(a.title)}</h1>
        <p class="byline">By
        <a rel="author" href="{ctx.home}?author={_stable_number(a.author)}">{esc(a.author)}</a>
        · <time class="published" datetime="{iso(a.published)}">{a.published:%d %B %Y, %H:%M}</time></p>
      </header>
      <div class="share-tools"><a href="#">Share on X</a> <a href="#">Facebook</a>
        <a href="#">Telegram</a> <a href="#">Email</a></div>
      <div class="story-body">
{body_paragraphs(a, "      ")}{credit}
      </div>
      <div class="tags">Topics: {_section_link(ctx, a.section)} {_section_link(ctx, "Region")}</div>
    </article>
    <aside class="related-stories">
      <h2>Related stories</h2>
      <ul>
{related}
      </ul>
    </aside>
    <div class="newsletter-signup">
      <h3>The Ledger Briefing</h3>
      <p>The day's essential stories from Baku and the region, in your inbox every morning at seven.</p>
      <form action="{ctx.home}newsletter" method="post">
        <input type="email" name="email" placeholder="Your email address">
        <button type="submit">Sign up</button>
      </form>
    </div>
    <section class="comments" id="comments">
      <h2>Comments ({len(ctx.comments)})</h2>
{comments}
      <p class="comment-policy">Comments are moderated. Please keep the discussion civil.</p>
    </section>
  </div>
</main>
<footer class="site-footer">
  <div class="footer-links"><a href="{ctx.home}?page=about">About us</a>
  <a href="{ctx.home}?page=contact">Contact</a>
  <a href="{ctx.home}?page=advertise">Advertise</a> <a href="{ctx.home}?page=privacy">Privacy policy</a>
  <a href="{ctx.home}?page=imprint">Imprint</a> <a href="/{outlet.slug}/rss.xml">RSS</a></div>
  <p class="imprint">{esc(outlet.name)} LLC · 14 Neftchilar Avenue, Baku · Editor-in-chief: Farida Aghayeva ·
  Registered media outlet No. 0417 (demo)</p>
  <p>© {ctx.now:%Y} {esc(outlet.name)}.
  A fictional outlet of the claimwatch demo; all articles are invented.</p>
</footer>
</body>
</html>
"""


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
    return f"""<!doctype html>
<html lang="{a.language}" class="no-js">
<head>
{head_meta(ctx, "—")}
<link rel="preconnect" href="https://fonts.example.invalid">
</head>
<body>
<div id="app" data-page-type="article">
  <div class="c-consent" data-consent="pending">
    <div class="c-consent__text">Steppe &amp; Sea Review and our partners use cookies to improve your
    experience and to analyse how our site is used. You can change your choice at any time.</div>
    <div class="c-consent__buttons"><button data-choice="all">I agree</button>
      <button data-choice="none">Reject non-essential</button></div>
  </div>
  <div class="c-topbar">
    <div class="c-topbar__brand"><a href="{ctx.home}">{esc(outlet.name)}</a></div>
    <ul class="c-topbar__menu">
{menu}
    </ul>
    <a class="c-topbar__subscribe" href="{ctx.home}?page=subscribe">Subscribe from $1</a>
  </div>
  <div class="c-live-strip"><span class="c-live-strip__label">Latest</span> {live}</div>
  <div class="l-grid">
    <div class="l-main">
      <article class="c-article" itemscope itemtype="https://schema.org/NewsArticle">
        <div class="c-article__header">
          <a class="c-article__section" href="{ctx.home}?section={esc(a.section.lower())}">
            {esc(a.section)}</a>
          <h1 class="c-article__title" itemprop="headline">{esc(a.title)}</h1>
          <div class="c-article__meta">
          <span class="c-article__author" itemprop="author">{esc(a.author)}</span>
          <time itemprop="datePublished" datetime="{iso(a.published)}">{a.published:%b %d, %Y}</time>
          <span class="c-article__readtime">{minutes} min read</span></div>
        </div>
        <div class="c-article__content" itemprop="articleBody">
{body_paragraphs(a, "          ")}
        </div>
        <div class="c-article__footer">{credit}
          <p class="c-article__tags">Filed under {esc(a.section)}</p>
        </div>
      </article>
      <div class="c-newsletter">
        <h3 class="c-newsletter__title">The Caspian Brief</h3>
        <p>One email every Friday: the week's essential analysis on Central Asia, the Caucasus and the
        Caspian.</p>
        <form class="c-newsletter__form"><input type="email" placeholder="name@example.com">
          <button>Subscribe</button></form>
      </div>
      <section class="c-discussion" id="discussion">
        <h2 class="c-discussion__title">Join the discussion ({len(ctx.comments)})</h2>
        <ol class="c-discussion__list">
{discussion}
        </ol>
      </section>
    </div>
    <aside class="l-sidebar">
      <div class="c-more">
        <h2 class="c-more__heading">More from the Review</h2>
{more}
      </div>
      <div class="c-ad" aria-hidden="true">Advertisement</div>
    </aside>
  </div>
  <footer class="c-footer">
    <ul class="c-footer__links">
      <li><a href="{ctx.home}?page=about">About</a></li>
      <li><a href="{ctx.home}?page=team">Our team</a></li>
      <li><a href="{ctx.home}?page=ethics">Editorial standards</a></li>
      <li><a href="{ctx.home}?page=terms">Terms</a></li>
      <li><a href="{ctx.home}?page=privacy">Privacy</a></li>
      <li><a href="/{outlet.slug}/atom.xml">Atom feed</a></li>
    </ul>
    <p class="c-footer__legal">Steppe &amp; Sea Review is published by Steppe &amp; Sea Media Ltd, Almaty.
    © {ctx.now:%Y}. A fictional outlet of the claimwatch demo; all articles are invented.</p>
  </footer>
</div>
<script src="/{outlet.slug}/app.js" defer></script>
</body>
</html>
"""


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
    return f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html lang="{a.language}">
<head>
<meta http-equiv="Content-Type" content="text/html; charset={ctx.charset}">
{head_meta(ctx, "—")}
<meta name="keywords" content="Каспий, Астрахань, новости, {esc(a.section)}">
</head>
<body>
<div id="cookie-warning" class="cookie-warning">Мы используем файлы cookie. Продолжая пользоваться сайтом, вы
соглашаетесь с <a href="{ctx.home}?page=privacy">политикой конфиденциальности</a>.
<span class="close">Согласен</span></div>
<table class="layout" width="100%" cellpadding="0" cellspacing="0">
  <tr><td colspan="2" class="top">
    <div class="logo"><a href="{ctx.home}">{esc(outlet.name)}</a>
      <div class="slogan">{esc(outlet.tagline)}</div></div>
    <div class="topmenu">{top}</div>
    <div class="running-line"><b>Срочно:</b> {running}</div>
  </td></tr>
  <tr>
    <td class="leftcol" valign="top" width="200">
      <div class="rubrics"><h4>Рубрики</h4>
      <ul>
{rubrics}
      </ul></div>
      <div class="informer">Погода в Астрахани: +7 °C, ветер северо-западный<br>Курсы ЦБ: USD, EUR, AZN</div>
    </td>
    <td class="maincol" valign="top">
      <div class="path"><a href="{ctx.home}">Главная</a> / {_section_link(ctx, a.section)}</div>
      <article class="news-full">
        <h1 class="news-title">{esc(a.title)}</h1>
        <div class="news-info"><span class="news-date">{a.published:%d.%m.%Y %H:%M}</span>
        <span class="news-author">Автор: {esc(a.author)}</span>
        <span class="views">Просмотров: {views}</span></div>
        <div class="news-text">
{body_paragraphs(a, "        ")}
        </div>{credit}
      </article>
      <div class="share">Поделиться: <a href="#">ВКонтакте</a> · <a href="#">Одноклассники</a> ·
        <a href="#">Telegram</a></div>
      <div class="other-news"><h3>Читайте также</h3>
      <ul>
{other}
      </ul></div>
      <div class="subscribe-box"><b>Подпишитесь на рассылку «Вестника»</b> — главные новости
      Нижней Волги и Каспия каждое утро.
      <form action="{ctx.home}subscribe" method="post"><input type="text" name="email">
        <input type="submit" value="Подписаться"></form></div>
      <div class="comments-block"><h3>Комментарии ({len(ctx.comments)})</h3>
{comments}
      <p class="rules">Редакция не несёт ответственности за содержание комментариев читателей.</p></div>
    </td>
  </tr>
  <tr><td colspan="2" class="bottom"><div class="footer">
    <a href="{ctx.home}?page=about">О газете</a> | <a href="{ctx.home}?page=ads">Реклама</a> |
    <a href="{ctx.home}?page=contacts">Контакты</a> |
    <a href="/{outlet.slug}/news-sitemap.xml">Карта сайта</a><br>
    © 2003–{ctx.now:%Y} «{esc(outlet.name)}». Сетевое издание (демонстрационное).
    Главный редактор: В. Н. Осипов.
    Все материалы вымышлены и созданы для демонстрации claimwatch. 16+
  </div></td></tr>
</table>
</body>
</html>
"""


TEMPLATES: dict[str, Callable[[PageContext], str]] = {
    "ledger": render_ledger,
    "review": render_review,
    "vestnik": render_vestnik,
}


# --- listings, feeds and sitemaps ----------------------------------------------------------------


def simple_page(title: str, language: str, content: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="{language}">
<head><meta charset="utf-8"><title>{esc(title)}</title></head>
<body>
<header><h1>{esc(title)}</h1></header>
<main>
{content}
</main>
<footer><p>claimwatch demo network — fictional outlets, invented articles.</p></footer>
</body>
</html>
"""


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
        items.append(f"""    <item>
      <title>{xml_escape(a.title)}</title>
      <link>{xml_escape(feed_link(a, index, FEED_TRACKING))}</link>
      <guid isPermaLink="true">{xml_escape(a.url)}</guid>
      <pubDate>{format_datetime(a.published)}</pubDate>
      <dc:creator>{xml_escape(a.author)}</dc:creator>
      <category>{xml_escape(a.section)}</category>
      <description>{xml_escape(a.lead)}</description>
    </item>""")
    newest = articles[0].published if articles else now
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>{xml_escape(outlet.name)}</title>
    <link>{base_url}/{outlet.slug}/</link>
    <description>{xml_escape(outlet.tagline)}</description>
    <language>{outlet.language}</language>
    <lastBuildDate>{format_datetime(newest)}</lastBuildDate>
    <ttl>30</ttl>
    <atom:link href="{base_url}/{outlet.slug}/rss.xml" rel="self" type="application/rss+xml"/>
{chr(10).join(items)}
  </channel>
</rss>
"""


def render_atom(outlet: Outlet, articles: list[DemoArticle], base_url: str, now: datetime) -> str:
    host = urlsplit(base_url).hostname
    entries = []
    for index, a in enumerate(articles):
        entries.append(f"""  <entry>
    <id>tag:{host},{a.published:%Y-%m-%d}:{outlet.slug}/{a.slug}</id>
    <title type="text">{xml_escape(a.title)}</title>
    <link rel="alternate" type="text/html" href="{xml_escape(feed_link(a, index, FEED_TRACKING))}"/>
    <published>{iso(a.published)}</published>
    <updated>{iso(a.published + timedelta(minutes=12))}</updated>
    <author><name>{xml_escape(a.author)}</name></author>
    <category term="{xml_escape(a.section)}"/>
    <summary type="text">{xml_escape(a.lead)}</summary>
  </entry>""")
    newest = articles[0].published + timedelta(minutes=12) if articles else now
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{outlet.language}">
  <id>tag:{host},2026:{outlet.slug}</id>
  <title>{xml_escape(outlet.name)}</title>
  <subtitle>{xml_escape(outlet.tagline)}</subtitle>
  <updated>{iso(newest)}</updated>
  <link rel="self" type="application/atom+xml" href="{base_url}/{outlet.slug}/atom.xml"/>
  <link rel="alternate" type="text/html" href="{base_url}/{outlet.slug}/"/>
{chr(10).join(entries)}
</feed>
"""


def render_news_sitemap(outlet: Outlet, articles: list[DemoArticle]) -> str:
    urls = []
    for index, a in enumerate(articles):
        loc = with_query(a.url, SITEMAP_TRACKING) if index == 4 else a.url
        urls.append(f"""  <url>
    <loc>{xml_escape(loc)}</loc>
    <lastmod>{iso(a.published + timedelta(minutes=12))}</lastmod>
    <news:news>
      <news:publication>
        <news:name>{xml_escape(outlet.name)}</news:name>
        <news:language>{a.language}</news:language>
      </news:publication>
      <news:publication_date>{iso(a.published)}</news:publication_date>
      <news:title>{xml_escape(a.title)}</news:title>
    </news:news>
  </url>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
{chr(10).join(urls)}
</urlset>
"""


def render_sitemap_index(sitemaps: list[tuple[str, datetime]]) -> str:
    entries = "\n".join(
        f"  <sitemap>\n    <loc>{xml_escape(loc)}</loc>\n    <lastmod>{iso(lastmod)}</lastmod>\n  </sitemap>"
        for loc, lastmod in sitemaps
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{entries}
</sitemapindex>
"""


def render_robots(base_url: str) -> str:
    return f"""# claimwatch demo network
User-agent: *
Disallow: /private/

Sitemap: {base_url}/sitemap-index.xml
"""


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
