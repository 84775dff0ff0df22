"""Crawls shared through Redis (scrapy-redis): several crawl processes, on one or many machines, take
requests from one queue and skip what any of them has already requested.

A *shared run* (a crawl generation) is named by the setting ``shared_run`` (``claimwatch crawl
--shared-run KEY``; empty: today's UTC date). Its keys::

    claimwatch:<run>:<spider>:requests   the request queue of each spider (scrapy-redis PriorityQueue)
    claimwatch:<run>:dupefilter          request fingerprints, one set for every spider
    claimwatch:<run>:since               the since-window chosen by the first process (all use it)
    claimwatch:<run>:members             crawl processes currently in the run

The keys live for ``KEY_TTL`` after the last process joined, and the last process to leave deletes
them, so tomorrow's generation starts empty (its feed fetches are not filtered by today's
fingerprints). Every process fetches the seed requests (feeds, sitemaps, GDELT queries); the
article requests they produce are deduplicated in Redis by canonical URL, so each article page is
fetched once by one of the processes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.http import Request
from scrapy_redis.scheduler import Scheduler

from crawler.config import ConfigError, Settings, redact_url
from crawler.item_pipelines import StorePipeline

logger = logging.getLogger(__name__)

KEY_PREFIX = "claimwatch"
KEY_TTL = 2 * 24 * 3600  # seconds: a crashed run's keys do not outlive the next day's crawl
STORE_LOCK_TIMEOUT = 120  # seconds: a killed holder's store lock frees itself

# DECR the member count; the last member out deletes every key of the run (atomically: a process
# joining at the same moment either keeps the run alive or starts a fresh one).
_LEAVE = """
local n = redis.call('DECR', KEYS[1])
if n <= 0 then
  local keys = redis.call('KEYS', ARGV[1])
  for _, key in ipairs(keys) do redis.call('DEL', key) end
end
return n
"""


def run_key(settings: Settings) -> str:
    """The shared run's name: the setting, or today's UTC date."""
    return settings.shared_run.strip() or datetime.now(UTC).strftime("%Y-%m-%d")


def key(settings: Settings, name: str) -> str:
    return f"{KEY_PREFIX}:{run_key(settings)}:{name}"


def connect(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)


def join(settings: Settings) -> int:
    """Enter the shared run; the number of member processes now."""
    client = connect(settings.redis_url)
    members = key(settings, "members")
    with client.pipeline() as pipe:  # MULTI/EXEC
        pipe.incr(members)
        pipe.expire(members, KEY_TTL)
        count, _ = pipe.execute()
    return int(count)


def leave(settings: Settings) -> int:
    """Leave the shared run; the last member deletes its keys. The members left."""
    client = connect(settings.redis_url)
    pattern = f"{KEY_PREFIX}:{run_key(settings)}:*"
    return int(client.eval(_LEAVE, 1, key(settings, "members"), pattern))


def shared_since(settings: Settings, since: datetime) -> datetime:
    """The since-window of the shared run: the first process's (SET NX), so that every process
    requests the same articles."""
    import redis

    client = connect(settings.redis_url)
    name = key(settings, "since")
    try:
        client.set(name, since.isoformat(), nx=True, ex=KEY_TTL)
        stored = client.get(name)
    except redis.RedisError as exc:  # the first contact with Redis: a clean error, not a traceback
        raise ConfigError(
            f"setting redis_url: cannot use Redis at {redact_url(settings.redis_url)}: {exc}"
        ) from None
    return datetime.fromisoformat(stored.decode()) if stored else since


def scrapy_overrides(settings: Settings) -> dict[str, Any]:
    """Scrapy settings of a shared crawl: the project's item pipelines with the store under the
    run's lock."""
    from crawler import settings as project

    prefix = f"{KEY_PREFIX}:{run_key(settings)}"
    pipelines = dict(project.ITEM_PIPELINES)
    store = pipelines.pop("crawler.item_pipelines.StorePipeline")
    pipelines["crawler.shared_crawl.SharedStorePipeline"] = store
    return {
        "REDIS_URL": settings.redis_url,
        "SCHEDULER": "crawler.shared_crawl.SharedScheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_QUEUE_KEY": f"{prefix}:%(spider)s:requests",
        "SCHEDULER_DUPEFILTER_KEY": f"{prefix}:dupefilter",
        "SCHEDULER_PERSIST": True,  # the last process to leave cleans up (leave), not each one
        "SCHEDULER_FLUSH_ON_START": False,
        "CLAIMWATCH_STORE_LOCK_KEY": f"{prefix}:store-lock",
        "ITEM_PIPELINES": pipelines,
    }


def first_attempt(request: Request) -> bool:
    """Not a retry or a redirect of an earlier request (those must go through)."""
    return not request.meta.get("retry_times") and not request.meta.get("redirect_urls")


class SharedScheduler(Scheduler):
    """scrapy-redis's scheduler; article requests (which the spiders mark ``dont_filter`` so that a
    redirect loop is recorded rather than filtered) are deduplicated across processes on their
    first attempt, by their fingerprint in the shared set."""

    def enqueue_request(self, request: Request) -> bool:
        shared_check = request.meta.get("article") and request.dont_filter and first_attempt(request)
        if shared_check and self.df.request_seen(request):
            if self.stats:
                self.stats.inc_value("claimwatch/shared_duplicate_skipped", spider=self.spider)
            return False
        return bool(super().enqueue_request(request))


class SharedStorePipeline(StorePipeline):
    """Stores batches under a Redis lock of the shared run: a syndicated copy stored by another
    process is then committed before this batch looks for originals, so copies fetched by different
    processes are linked as in a single-process crawl."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedStorePipeline:
        pipeline = super().from_crawler(crawler)
        assert isinstance(pipeline, SharedStorePipeline)
        pipeline.redis = connect(crawler.settings.get("REDIS_URL"))
        pipeline.lock_key = crawler.settings.get("CLAIMWATCH_STORE_LOCK_KEY")
        return pipeline

    def flush(self, final: bool = False) -> bool:
        if not self.documents and not (final and self.states):
            return True
        lock = self.redis.lock(self.lock_key, timeout=STORE_LOCK_TIMEOUT, blocking_timeout=STORE_LOCK_TIMEOUT)
        if not lock.acquire():
            logger.error("could not take the store lock %s (will retry)", self.lock_key)
            return False
        try:
            return super().flush(final)
        finally:
            try:
                lock.release()
            except Exception as exc:  # expired meanwhile: nothing to release
                logger.warning("store lock %s: %s", self.lock_key, exc)
