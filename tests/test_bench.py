"""``claimwatch bench``: the small benchmark end to end on 127.0.0.1, its corpus site, and the
relevance_filter setting it relies on."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from crawler.config import Settings, load_settings
from crawler.crawl_process import build_scrapy_settings
from crawler.item_pipelines import ExtractPipeline, page_to_record
from crawler.items import PageItem
from tests.helpers import SHARED

CORPORA = SHARED / "corpora"
AEB = CORPORA / "article-extraction-benchmark"
needs_corpora = pytest.mark.skipif(not AEB.is_dir(), reason="../shared/corpora is not present")

REQUIRED = (
    "encode_raw_sentences_per_s",
    "pipeline_sentences_per_s",
    "pipeline_to_raw_ratio",
    "recrawl_to_first_crawl_cost_ratio",
    "documents",
    "peak_rss_mb",
    "model",
    "model_revision",
    "backend",
    "versions",
    "cpu_count",
    "date",
    "corpus",
    "stages",
)

OFF_TOPIC = """<html lang="en"><head><title>Allotment prize marrows</title></head><body><article>
<h1>Allotment prize marrows</h1>
<p>The village show crowned a marrow of record weight on Saturday, grown on the allotments behind the
old railway station by a retired postman who has entered every year since the show began.</p>
<p>Judges praised its even colour and firm skin, and the runner-up promised a stronger entry next
summer after a wet spring held back most of the vegetables in the county.</p>
</article></body></html>"""


def english_pages(count: int) -> list[str]:
    """Ids of short English article pages of the extraction benchmark (quick to encode)."""
    truth = json.loads((AEB / "ground-truth.json").read_text(encoding="utf-8"))
    chosen = [
        item
        for item, entry in sorted(truth.items(), key=lambda kv: len(kv[1]["articleBody"]))
        if 1500 <= len(entry["articleBody"]) <= 4000 and ".com/" in entry["url"]
    ]
    return chosen[:count]


def subset_corpora(tmp_path: Path, ids: list[str]) -> Path:
    """A corpora directory holding links to a few shared pages (nothing is copied)."""
    html = tmp_path / "corpora" / "article-extraction-benchmark" / "html"
    html.mkdir(parents=True)
    for item in ids:
        (html / f"{item}.html.gz").symlink_to(AEB / "html" / f"{item}.html.gz")
    return tmp_path / "corpora"


def run_bench(tmp_path: Path, *args: str) -> dict:
    output = tmp_path / "results.json"
    env = {**os.environ, "CLAIMWATCH_LOG_LEVEL": "WARNING", "CLAIMWATCH_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "crawler.cli", "bench", "--output", str(output), *args]
    completed = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "pipeline_to_raw_ratio" in completed.stdout  # the table
    return json.loads(output.read_text(encoding="utf-8"))


def check_results(results: dict, pages: int) -> None:
    for key in REQUIRED:
        assert key in results, key
    for package in ("python", "torch", "sentence-transformers", "scrapy", "trafilatura", "sqlalchemy"):
        assert results["versions"][package]
    assert 0 < results["pipeline_to_raw_ratio"] <= 2
    assert 0 < results["recrawl_to_first_crawl_cost_ratio"] <= 2
    assert results["encode_raw_sentences_per_s"] > 0 and results["pipeline_sentences_per_s"] > 0
    assert results["peak_rss_mb"] > 0 and results["peak_rss"]["largest_child"] > 0
    first, again = results["stages"]["first"], results["stages"]["recrawl"]
    assert first["article_pages_requested"] == pages
    # the raw encode covers exactly the sentences the match stage encoded
    assert results["raw_sentences"] == results["sentences_encoded"] == first["passages_encoded"] > 0
    assert again["passages_encoded"] == 0
    assert again["article_pages_requested"] == 0 and again["documents_stored"] == 0


@needs_corpora
@pytest.mark.slow
def test_small_bench_end_to_end_with_real_pages_and_variants(tmp_path: Path) -> None:
    ids = english_pages(3)
    corpora = subset_corpora(tmp_path, ids)
    results = run_bench(tmp_path, "--corpora", str(corpora), "--pages", "5", "--no-demo")
    check_results(results, pages=5)
    assert results["corpus"]["served_real"] == {"article-extraction-benchmark": 3}
    assert results["corpus"]["served_variants"] == {"article-extraction-benchmark": 2}
    first = results["stages"]["first"]
    # variants are new texts: none is dropped as a (near-)duplicate of its real page
    assert results["documents"] == 5 and first["duplicates"] == 0
    # the pages are off-topic: only with the relevance filter off are they all matched
    assert first["documents_matched"] == 5
    assert results["settings"]["relevance_filter"] is False


@pytest.mark.slow
def test_bench_without_corpora_runs_on_the_demo_site(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--corpora", str(tmp_path / "absent"))
    check_results(results, pages=0)
    assert results["corpus"]["corpus_pages"] == 0 and results["corpus"]["demo_articles"] > 0
    assert results["documents"] > 0


@needs_corpora
def test_bench_site_serves_listed_pages_and_distinct_variants(tmp_path: Path) -> None:
    from crawler.bench.site import BenchSite, read_corpora, serve
    from pipelines.dedup import content_hash, is_near_duplicate, simhash
    from pipelines.extract import decode_html, extract_article

    corpora = subset_corpora(tmp_path, english_pages(3))
    site = BenchSite(read_corpora(corpora), 7, datetime.now(UTC))
    server = serve(site, 0)
    try:
        with urllib.request.urlopen(f"{site.base_url}/sitemap-index.xml", timeout=10) as response:
            assert b"/sitemaps/news-0.xml" in response.read()
        with urllib.request.urlopen(f"{site.base_url}/sitemaps/news-0.xml", timeout=10) as response:
            sitemap = response.read().decode()
        texts = []
        for entry in site.listed:
            assert site.base_url + entry.path in sitemap
            with urllib.request.urlopen(site.base_url + entry.path, timeout=10) as response:
                body = response.read()
            article = extract_article(decode_html(body), site.base_url + entry.path)
            assert article is not None and len(article.text) > 300
            texts.append(article.text)
        with urllib.request.urlopen(f"{site.base_url}/_bench/hits", timeout=10) as response:
            assert json.load(response)["article_requests"] == 7
    finally:
        server.shutdown()
    assert len({content_hash(t) for t in texts}) == 7
    fingerprints = [simhash(t) for t in texts]
    for i, a in enumerate(fingerprints):
        assert not any(is_near_duplicate(a, b) for b in fingerprints[i + 1 :])


def irrelevant_item() -> PageItem:
    return PageItem(
        url="http://127.0.0.1/marrows.html",
        source_key=None,
        discovered_via="feed",
        final_url="http://127.0.0.1/marrows.html",
        http_status=200,
        content_type="text/html",
        body=OFF_TOPIC.encode(),
        encoding="utf-8",
    )


def test_relevance_filter_setting_decides_whether_an_irrelevant_page_is_matched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on = page_to_record(irrelevant_item())
    assert on.status == "irrelevant" and on.match_status == "skipped" and on.reason
    off = page_to_record(irrelevant_item(), relevance_filter=False)
    assert off.status == "ok" and off.match_status == "pending" and off.reason is None
    assert off.text == on.text

    # the crawl process gets the setting through its Scrapy settings
    def crawler(settings: Settings) -> SimpleNamespace:
        return SimpleNamespace(settings=build_scrapy_settings(settings, None, None), stats=None)

    monkeypatch.chdir(tmp_path)  # no claimwatch.toml here
    default = load_settings({})
    assert ExtractPipeline.from_crawler(crawler(default)).relevance_filter is True  # type: ignore[arg-type]
    off_settings = dataclasses.replace(default, relevance_filter=False)
    assert ExtractPipeline.from_crawler(crawler(off_settings)).relevance_filter is False  # type: ignore[arg-type]


def test_bench_relevance_filter_option_reaches_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--relevance-filter`` (memory runs at sizes the encoder cannot get through) keeps the filter on
    in the benchmark's settings; by default it is off."""
    from typer.testing import CliRunner

    import crawler.bench.benchmark
    from crawler.bench.benchmark import bench_settings
    from crawler.cli.app import app

    seen = []

    def fake_run_bench(settings: Settings, options: object, echo: object = None) -> dict:
        seen.append(options)
        raise crawler.bench.benchmark.BenchError("stopped by the test")

    monkeypatch.setattr(crawler.bench.benchmark, "run_bench", fake_run_bench)
    monkeypatch.chdir(tmp_path)
    for args, expected in (([], False), (["--relevance-filter"], True), (["--no-relevance-filter"], False)):
        result = CliRunner().invoke(app, ["bench", "--small", *args])
        assert result.exit_code == 1 and "stopped by the test" in result.output
        assert seen[-1].relevance_filter is expected  # type: ignore[attr-defined]
    base = load_settings({})
    assert bench_settings(base, "sqlite://", tmp_path).relevance_filter is False
    assert bench_settings(base, "sqlite://", tmp_path, relevance_filter=True).relevance_filter is True
