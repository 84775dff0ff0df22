"""Scrapy settings of claimwatch: the one settings module of the Scrapy project.

Values that users tune (User-Agent, delays, sizes, database) come from claimwatch's settings
(`crawler.config`) and are applied on top of this module by `crawler.crawl_process`.
"""

BOT_NAME = "claimwatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = "claimwatch/0.1 (+https://github.com/claimwatch/claimwatch; research crawler)"
ROBOTSTXT_OBEY = True

# Scrapy 2.19 starts a local code-execution endpoint by default; a crawler never needs it.
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False

CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
CONCURRENT_ITEMS = 4
DOWNLOAD_DELAY = 1.0
RANDOMIZE_DOWNLOAD_DELAY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
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

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

# claimwatch-specific (overridden from crawler.config at run time)
CLAIMWATCH_DATABASE_URL = "sqlite:///claimwatch.db"
CLAIMWATCH_RUN_ID = None
CLAIMWATCH_ALLOW_LOOPBACK = False
CLAIMWATCH_STORE_BATCH_SIZE = 50
CLAIMWATCH_STORE_FLUSH_SECONDS = 2.0
CLAIMWATCH_SINCE = None
# Only the first N entries of a feed or sitemap are read (feeds list newest first; Google News sitemaps
# hold at most 1000): a listing of 100,000 items must not turn into 100,000 requests or minutes of parsing.
CLAIMWATCH_MAX_SOURCE_ENTRIES = 1000
