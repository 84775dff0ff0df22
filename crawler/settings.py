"""Scrapy settings of claimwatch: the one settings module of the Scrapy project.

Values that users tune (User-Agent, delays, sizes, database) take their defaults from claimwatch's
one settings source (`crawler.config`); a run's own values are applied on top of this module by
`crawler.crawl_process.build_scrapy_settings`.
"""

from crawler.config import Settings

_DEFAULTS = Settings()

BOT_NAME = "claimwatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = _DEFAULTS.user_agent
ROBOTSTXT_OBEY = _DEFAULTS.robotstxt_obey

# Scrapy 2.19 starts a local code-execution endpoint by default; a crawler never needs it.
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False

CONCURRENT_REQUESTS = _DEFAULTS.concurrent_requests
CONCURRENT_REQUESTS_PER_DOMAIN = _DEFAULTS.concurrent_per_domain
CONCURRENT_ITEMS = 4
DOWNLOAD_DELAY = _DEFAULTS.download_delay
RANDOMIZE_DOWNLOAD_DELAY = True
AUTOTHROTTLE_ENABLED = _DEFAULTS.autothrottle
AUTOTHROTTLE_START_DELAY = max(DOWNLOAD_DELAY, 0.1)
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

DOWNLOAD_TIMEOUT = _DEFAULTS.download_timeout
DOWNLOAD_MAXSIZE = _DEFAULTS.download_maxsize
DOWNLOAD_WARNSIZE = min(DOWNLOAD_MAXSIZE, 4 * 1024 * 1024)
RETRY_ENABLED = True
RETRY_TIMES = 2
REDIRECT_MAX_TIMES = 5
METAREFRESH_ENABLED = False
COOKIES_ENABLED = False
DNS_TIMEOUT = 20

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.AddressPolicyMiddleware": 50,
    "crawler.middlewares.KnownUrlMiddleware": 60,
    "crawler.middlewares.RetryAfterMiddleware": 560,  # above RetryMiddleware (550)
}
ITEM_PIPELINES = {
    "crawler.item_pipelines.ExtractPipeline": 100,
    "crawler.item_pipelines.StorePipeline": 900,
}

LOG_LEVEL = _DEFAULTS.log_level
FEED_EXPORT_ENCODING = "utf-8"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

# claimwatch-specific (overridden from crawler.config at run time)
CLAIMWATCH_DATABASE_URL = _DEFAULTS.database_url
CLAIMWATCH_RUN_ID = None
CLAIMWATCH_ALLOW_LOOPBACK = _DEFAULTS.allow_loopback
CLAIMWATCH_STORE_BATCH_SIZE = _DEFAULTS.store_batch_size
CLAIMWATCH_STORE_FLUSH_SECONDS = _DEFAULTS.store_flush_seconds
CLAIMWATCH_SINCE = None
# Only the first N entries of a feed or sitemap are read (feeds list newest first; Google News sitemaps
# hold at most 1000): a listing of 100,000 items must not turn into 100,000 requests or minutes of parsing.
CLAIMWATCH_MAX_SOURCE_ENTRIES = _DEFAULTS.max_source_entries
CLAIMWATCH_RELEVANCE_FILTER = _DEFAULTS.relevance_filter
CLAIMWATCH_GDELT_API_URL = _DEFAULTS.gdelt_api_url
CLAIMWATCH_GDELT_DELAY = _DEFAULTS.gdelt_delay
CLAIMWATCH_GDELT_MAX_RECORDS = _DEFAULTS.gdelt_max_records
