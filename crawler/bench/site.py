"""The benchmark's news site: real pages of the shared corpora behind a news sitemap on 127.0.0.1.

``python -m crawler.bench.site --pages N`` serves, in its own process (so that serving pages costs
the measured processes no CPU time and no memory), N article pages listed in a news sitemap index,
and prints one JSON line with its base URL and the corpus composition. Pages are, in order:

* the real pages of ``../shared/corpora`` — article-extraction-benchmark (181 saved article pages),
  real-news-pages (100 multilingual news pages) and russian-news-samples (64 texts, rendered into a
  plain article page), taken round-robin across the corpora so that a small N is a mix;
* beyond that, *variants*: a real page whose ``<p>`` paragraphs are replaced by a seeded shuffle of
  its own paragraphs interleaved with those of another page of the same corpus. The page keeps its
  real boilerplate (so extraction costs what it costs on real pages) but its text is new, so neither
  the content hash nor the SimHash near-duplicate check drops it.

Variants are built when requested, so 10,000 pages need no more memory than the corpora.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import io
import json
import logging
import random
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from crawler.demo.site import QuietServer

logger = logging.getLogger(__name__)

AEB = "article-extraction-benchmark"
RNP = "real-news-pages"
RUS = "russian-news-samples"
CORPORA = (AEB, RNP, RUS)
SITEMAP_ENTRIES = 500
# Listed publication dates are spread over this window before the start (inside the first-run window).
DATE_SPREAD = timedelta(days=5)
PARAGRAPH = re.compile(r"(<p\b[^>]*>)(.*?)(</p>)", re.IGNORECASE | re.DOTALL)
META_CHARSET = re.compile(r"<meta[^>]+(charset\s*=|http-equiv\s*=\s*[\"']?content-type)[^>]*>", re.IGNORECASE)
MIN_VARIANT_PARAGRAPHS = 3


@dataclass(frozen=True)
class BasePage:
    """One real page: ``text`` is the decoded HTML, ``body`` the bytes as served (originals keep their
    own encoding)."""

    corpus: str
    name: str
    language: str
    title: str
    body: bytes
    text: str

    def paragraphs(self) -> list[str]:
        return [m.group(2) for m in PARAGRAPH.finditer(self.text) if m.group(2).strip()]


def read_extraction_benchmark(root: Path) -> list[BasePage]:
    pages = []
    for path in sorted((root / "html").glob("*.html.gz")):
        body = gzip.decompress(path.read_bytes())
        text = body.decode("utf-8", errors="replace")
        pages.append(BasePage(AEB, path.name.split(".")[0][:16], "", "", body, text))
    return pages


def read_real_news(root: Path) -> list[BasePage]:
    from pipelines.extract import decode_html

    languages = {}
    manifest = root / "manifest.tsv"
    if manifest.exists():
        for row in csv.DictReader(io.StringIO(manifest.read_text(encoding="utf-8")), delimiter="\t"):
            languages[row["file"]] = row["lang"].strip("*")
    pages = []
    for path in sorted((root / "html").glob("*.html")):
        body = path.read_bytes()
        text = decode_html(body) or body.decode("utf-8", errors="replace")
        pages.append(BasePage(RNP, path.stem, languages.get(path.name, ""), "", body, text))
    return pages


def russian_paragraphs(text: str) -> list[str]:
    # The ODS dumps lost their line breaks to a literal "n"; a "n" between a sentence end and a capital
    # is one.
    parts = re.split(r"(?<=[.!?»\"])n(?=[«\"A-ZА-ЯЁ])|\n+", text)
    return [p.strip() for p in parts if p.strip()]


def render_text_page(title: str, outlet: str, paragraphs: list[str], language: str) -> str:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="{language}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta property="og:site_name" content="{html.escape(outlet)}"></head>
<body><header><nav><a href="/">Главная</a> <a href="/news/">Новости</a> <a href="/about/">О нас</a>
</nav></header>
<main><article><h1>{html.escape(title)}</h1>
{body}
</article></main>
<footer><p>© {html.escape(outlet)}. Все права защищены.</p></footer></body></html>
"""


def read_russian_samples(root: Path) -> list[BasePage]:
    csv.field_size_limit(1 << 27)
    pages = []
    files = sorted((root / "ods").glob("*.csv.gz")) + sorted(root.glob("*.csv.gz"))
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle)):
                outlet = path.name.split(".")[0].split("-")[0]
                title = (row.get("title") or "").strip() or f"{outlet} {number}"
                text = render_text_page(title, outlet, russian_paragraphs(row.get("text") or ""), "ru")
                name = f"{outlet}-{number}"
                pages.append(BasePage(RUS, name, "ru", title, text.encode("utf-8"), text))
    return pages


READERS = {AEB: read_extraction_benchmark, RNP: read_real_news, RUS: read_russian_samples}


def read_corpora(root: Path) -> dict[str, list[BasePage]]:
    """The pages of each corpus found under ``root`` (a missing corpus is simply absent)."""
    found = {}
    for name in CORPORA:
        directory = root / name
        if directory.is_dir():
            pages = READERS[name](directory)
            if pages:
                found[name] = pages
    return found


def interleave(corpora: dict[str, list[BasePage]]) -> list[BasePage]:
    """Round-robin across the corpora: the first N pages are a mix of all of them."""
    order: list[BasePage] = []
    lists = [list(pages) for pages in corpora.values()]
    for index in range(max((len(p) for p in lists), default=0)):
        order.extend(pages[index] for pages in lists if index < len(pages))
    return order


def make_variant(page: BasePage, donor: BasePage, seed: int) -> bytes:
    """``page`` with its paragraphs replaced by a seeded mix of its own and ``donor``'s."""
    rng = random.Random(seed)
    own, other = page.paragraphs(), donor.paragraphs()
    rng.shuffle(own)
    rng.shuffle(other)
    mixed = [p for pair in zip(own, other, strict=False) for p in pair] + own[len(other) :]
    supply: Iterator[str] = iter(mixed)
    text = PARAGRAPH.sub(lambda m: m.group(1) + next(supply, "") + m.group(3), page.text)
    return META_CHARSET.sub('<meta charset="utf-8">', text, count=1).encode("utf-8", errors="replace")


@dataclass(frozen=True)
class Listed:
    path: str
    language: str
    published: datetime
    base: int
    variant: int


class BenchSite:
    """The corpus pages (and their variants) listed in news sitemaps; ``pages`` is their number."""

    def __init__(self, corpora: dict[str, list[BasePage]], pages: int | None, now: datetime) -> None:
        self.bases = interleave(corpora)
        self.composition = {name: len(p) for name, p in corpora.items()}
        total = len(self.bases) if pages is None else pages
        self.variable = [i for i, p in enumerate(self.bases) if len(p.paragraphs()) >= MIN_VARIANT_PARAGRAPHS]
        if total > len(self.bases) and not self.variable:
            raise ValueError("no corpus page has enough paragraphs to build variants from")
        spread = DATE_SPREAD / max(total, 1)
        self.listed = [self._listing(n, now - spread * n) for n in range(total)]
        self.by_path = {entry.path: entry for entry in self.listed}
        self.base_url = ""
        self.article_requests = 0
        self._lock = threading.Lock()

    def _listing(self, number: int, published: datetime) -> Listed:
        if number < len(self.bases):
            base, variant = number, 0
        else:
            extra = number - len(self.bases)
            base = self.variable[extra % len(self.variable)]
            variant = 1 + extra // len(self.variable)
        page = self.bases[base]
        path = f"/{page.corpus}/{page.name}" + (f"-v{variant}" if variant else "") + ".html"
        return Listed(path, page.language, published, base, variant)

    def counts(self) -> dict[str, Any]:
        real: dict[str, int] = {}
        variants: dict[str, int] = {}
        for entry in self.listed:
            target = variants if entry.variant else real
            corpus = self.bases[entry.base].corpus
            target[corpus] = target.get(corpus, 0) + 1
        return {"available": self.composition, "served_real": real, "served_variants": variants}

    def donor_of(self, base: int, variant: int) -> BasePage:
        page = self.bases[base]
        same = [i for i in self.variable if i != base and self.bases[i].corpus == page.corpus]
        pool = same or [i for i in self.variable if i != base] or [base]
        return self.bases[pool[(base * 31 + variant * 7) % len(pool)]]

    def body_of(self, path: str) -> tuple[bytes, str] | None:
        entry = self.by_path.get(path)
        if entry is None:
            return None
        page = self.bases[entry.base]
        if not entry.variant:
            return page.body, "text/html"
        donor = self.donor_of(entry.base, entry.variant)
        return make_variant(page, donor, entry.base * 100_003 + entry.variant), "text/html; charset=utf-8"

    def sitemap_paths(self) -> list[str]:
        return [f"/sitemaps/news-{n}.xml" for n in range(0, len(self.listed), SITEMAP_ENTRIES)]

    def sitemap_index(self) -> str:
        newest = self.listed[0].published if self.listed else datetime.now(UTC)
        entries = "".join(
            f"<sitemap><loc>{self.base_url}{path}</loc><lastmod>{newest.isoformat(timespec='seconds')}"
            "</lastmod></sitemap>\n"
            for path in self.sitemap_paths()
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{entries}</sitemapindex>\n'
        )

    def news_sitemap(self, start: int) -> str:
        urls = "".join(
            f"<url><loc>{escape(self.base_url + e.path)}</loc><news:news><news:publication>"
            f"<news:name>bench</news:name><news:language>{e.language or 'en'}</news:language>"
            f"</news:publication><news:publication_date>{e.published.isoformat(timespec='seconds')}"
            "</news:publication_date></news:news></url>\n"
            for e in self.listed[start : start + SITEMAP_ENTRIES]
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
            f' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">\n{urls}</urlset>\n'
        )

    def respond(self, path: str) -> tuple[int, bytes, str]:
        if path == "/_bench/hits":
            return 200, json.dumps({"article_requests": self.article_requests}).encode(), "application/json"
        if path == "/sitemap-index.xml":
            return 200, self.sitemap_index().encode(), "application/xml"
        if path.startswith("/sitemaps/news-") and path.endswith(".xml"):
            start = path.removeprefix("/sitemaps/news-").removesuffix(".xml")
            if start.isdigit() and int(start) < len(self.listed):
                return 200, self.news_sitemap(int(start)).encode(), "application/xml"
        found = self.body_of(path)
        if found is None:
            return 404, b"not found", "text/plain"
        with self._lock:
            self.article_requests += 1
        return 200, found[0], found[1]


def make_handler(site: BenchSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            status, body, content_type = site.respond(urlsplit(self.path).path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug(format, *args)

    return Handler


def serve(site: BenchSite, port: int) -> QuietServer:
    server = QuietServer(("127.0.0.1", port), make_handler(site))
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", type=Path, required=True, help="The shared corpora directory.")
    parser.add_argument("--pages", type=int, default=None, help="Pages to serve (default: every real page).")
    parser.add_argument("--port", type=int, default=0, help="Port on 127.0.0.1 (0: a free one).")
    parser.add_argument("--demo", action="store_true", help="Also serve the demo site (own port).")
    args = parser.parse_args(argv)
    corpora = read_corpora(args.corpora) if args.corpora.is_dir() else {}
    site = BenchSite(corpora, args.pages, datetime.now(UTC))
    server = serve(site, args.port)
    ready: dict[str, Any] = {"base_url": site.base_url, "pages": len(site.listed), "corpus": site.counts()}
    demo = None
    if args.demo:
        from crawler.demo.site import DemoSite

        demo = DemoSite(port=0)
        demo.start()
        ready["demo"] = {
            "base_url": demo.base_url,
            "articles": len(demo.articles()),
            "sources": demo.sources(),
        }
    print(json.dumps(ready, default=str), flush=True)
    # Serve until the parent closes our stdin (or ends us).
    sys.stdin.read()
    server.shutdown()
    if demo is not None:
        demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
