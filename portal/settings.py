"""Settings for the Events Sync Portal, read from environment variables (see .env.example).

Zero configuration runs: SQLite in WAL mode, django-q2's ORM broker, email to the console.
``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and the Redis broker for scale.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_float, env_int, env_list, env_str
from portal.qconfig import q_cluster_validate

BASE_DIR = Path(__file__).resolve().parent.parent
TESTING = "pytest" in sys.modules or env_bool("PORTAL_TESTING", False)

DEBUG = env_bool("PORTAL_DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(
            "SECRET_KEY is required when PORTAL_DEBUG is off: it signs sessions and encrypts stored secrets."
        )
    SECRET_KEY = "insecure-development-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
# Origins (scheme://host[:port]) a form may be posted from when they differ from the host the
# request names, e.g. https://portal.example.com behind a proxy that rewrites the Host header.
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Where the portal itself is reachable; the sandbox sends its webhooks here.
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",  # django.contrib.admin with the console as its site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # "3 minutes ago" in the console
    "rest_framework",
    "knox",
    "drf_spectacular",
    # Swagger UI's and Redoc's files served from static: the portal loads nothing from a CDN.
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "portal",
    "sync",
    "sync.sandbox",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATA_DIR = Path(env_str("PORTAL_DATA_DIR", str(BASE_DIR / "var")))
# prometheus_client's multi-process mode (portal/metrics.py): every web and worker process on
# this machine writes its histograms here, and /metrics sums them. Set before the client is
# imported; clear it when the portal is (re)deployed.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "metrics"))
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
# /metrics answers staff, or a scraper sending "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = env_str("METRICS_TOKEN")
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0 if TESTING else 60)
        )
    }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "portal.sqlite3"),
            "OPTIONS": {
                # WAL lets the web server read while a worker writes; IMMEDIATE takes the write
                # lock at BEGIN so two writers queue on `timeout` instead of failing mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file, not Django's in-memory default: tests run workers and live servers in
            # threads, and only a file database lets concurrent writers wait (WAL) as in production.
            "TEST": {"NAME": DATA_DIR / "test-portal.sqlite3"},
            # A connection per process, not per request: opening one (and its PRAGMAs) cost
            # more than storing a webhook.
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 0 if TESTING else 60),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Queue (django-q2) ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER: dict = {
    "name": env_str("Q_CLUSTER_NAME", "portal"),
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 300),
    "retry": env_int("Q_RETRY", 360),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 5),
    "ack_failures": True,
    "save_limit": env_int("Q_SAVE_LIMIT", 1000),
    "catch_up": False,
    "label": "Task queue",
    "sync": env_bool("Q_SYNC", False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = env_float("Q_POLL", 0.5)
q_cluster_validate(Q_CLUSTER)
# --- Alerts ------------------------------------------------------------------------------
# An external system failing this many calls in a row is paused until staff resume it.
TARGET_PAUSE_AFTER_FAILURES = env_int("TARGET_PAUSE_AFTER_FAILURES", 25)
# Who hears of incidents (comma-separated); empty: superusers and Sync operators with an email.
ALERT_EMAILS = env_list("ALERT_EMAILS", [])

# --- Retention ---------------------------------------------------------------------------
# Webhook bodies and the request/response of calls older than this many days are dropped
# daily (the rows stay as the summary); failed deliveries keep theirs for replay.
RETENTION_DAYS = env_int("RETENTION_DAYS", 30)
RETENTION_BATCH = env_int("RETENTION_BATCH", 1000)

# A job claimed longer ago than this lost its worker (killed, or its machine went away) and
# the scheduled sweep lets it wait again: longer than any task may run (Q_TIMEOUT), plus a minute.
JOBS_STUCK_AFTER_SECONDS = env_int("JOBS_STUCK_AFTER_SECONDS", Q_CLUSTER["timeout"] + 60)
if Q_CLUSTER["timeout"] >= JOBS_STUCK_AFTER_SECONDS:
    raise ImproperlyConfigured(
        f"JOBS_STUCK_AFTER_SECONDS ({JOBS_STUCK_AFTER_SECONDS}) must be longer than Q_TIMEOUT "
        f"({Q_CLUSTER['timeout']}): a job still running would be handed to a second worker."
    )

CACHES = (
    {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    if REDIS_URL
    else {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
)
# Ticket counters are rendered once per change into this cache and served from it (no database
# per request). It must be shared by the web processes and the worker that sees the change:
# Redis when there is one, else files under PORTAL_DATA_DIR (one machine, as the quick start).
CACHES["counters"] = (
    {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "counters",
    }
    if REDIS_URL
    else {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "counter-cache"),
    }
)

# --- Ticket counters ---------------------------------------------------------------------
# Browsers and proxies may reuse a counter's JSON this long (then revalidate with its ETag).
COUNTER_MAX_AGE_SECONDS = env_int("COUNTER_MAX_AGE_SECONDS", 1)
# A rendered counter is dropped from the cache after this long and rendered again on the next
# request (a change the signal missed shows within this time at worst).
COUNTER_CACHE_SECONDS = env_int("COUNTER_CACHE_SECONDS", 300)
# Each web process reuses what it read from that cache for this long (a burst of requests and
# many streams of one counter cost one cache read per process per this time).
COUNTER_LOCAL_SECONDS = env_float("COUNTER_LOCAL_SECONDS", 0.2)
# One Server-Sent Events stream lasts this long, then the browser reconnects (``retry:``); it
# holds a web worker (or thread) meanwhile, never a database connection. 0: no SSE, the widget
# polls the JSON every COUNTER_POLL_SECONDS.
COUNTER_SSE_SECONDS = env_int("COUNTER_SSE_SECONDS", 55)
# How often an open stream looks at the cache for a new version (one small cache read).
COUNTER_SSE_POLL_SECONDS = env_float("COUNTER_SSE_POLL_SECONDS", 0.25)
COUNTER_POLL_SECONDS = env_int("COUNTER_POLL_SECONDS", 5)

# --- REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # ``Authorization: Token <token>``; only a SHA-512 digest of each token is stored.
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PAGINATION_CLASS": "sync.api.pagination.Pages",
    "PAGE_SIZE": 50,
    # The OpenAPI 3 schema at /api/schema/ is built from the views' annotations.
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Events Sync Portal API",
    "DESCRIPTION": (
        "For tools and scripts: start backfills, resyncs and dry runs; list dead letters, failed "
        "webhook deliveries and failed backfills; replay and retry them; list, send and cancel "
        "sale-start campaigns. Send "
        "`Authorization: Token <token>` (made in the admin under *API tokens*). A token acts as "
        "its user: reading needs the *Sync viewers* role, acting the *Sync operators* role."
    ),
    "VERSION": "1",
    # The schema and the docs pages are for staff (a token or an admin session), like the API.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Operations first; each shows its own request and response schemas.
    "SWAGGER_UI_SETTINGS": {"defaultModelsExpandDepth": -1, "deepLinking": True},
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status"; each enum gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "notifications.models.campaigns.SaleStartCampaign.Status",
    },
}
# A token expires this many days after it is made (0: never).
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 90)
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=API_TOKEN_TTL_DAYS) if API_TOKEN_TTL_DAYS > 0 else None,
    "AUTH_HEADER_PREFIX": "Token",
}

# --- Production profile: HTTPS, cookies, proxies ---------------------------------------
# Outside debug the session and CSRF cookies are only ever sent over HTTPS.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers probe /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)


def _proxy_ssl_header(raw: str) -> tuple[str, str] | None:
    """``X-Forwarded-Proto,https``: the header a TLS-terminating proxy sets, and its HTTPS value.

    Without it, Django behind such a proxy sees plain HTTP: the browser's https Origin then
    fails the CSRF check (a 403 at the admin login) and SECURE_SSL_REDIRECT loops.
    """
    if not raw.strip():
        return None
    header, _, value = raw.partition(",")
    header, value = header.strip(), value.strip()
    if not header or not value:
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER={raw!r}: write the header and its HTTPS value, "
            "e.g. X-Forwarded-Proto,https"
        )
    name = header.upper().replace("-", "_")
    return (name if name.startswith("HTTP_") else f"HTTP_{name}", value)


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env_str("SECURE_PROXY_SSL_HEADER"))
# How many proxies in front of the portal append to X-Forwarded-For; 0 trusts only the socket's
# address. Rate limits (logins, rejected webhooks) count per client address read this way.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# --- Auth, i18n, static ----------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out address is refused before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins per client address before it is locked out, and for how long.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_CLIENT_IP_CALLABLE = "portal.client.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
# Dates in lists as operators read them: "25 Nov 2026 07:26" (portal/formats/en/formats.py).
FORMAT_MODULE_PATH = "portal.formats"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# --- Email -----------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "portal@localhost")

# --- Sale-start notifications ----------------------------------------------------------
# Who the emails come from (a site may set its own), and the address links point at.
NOTIFICATIONS_FROM_EMAIL = env_str("NOTIFICATIONS_FROM_EMAIL", DEFAULT_FROM_EMAIL)
# A campaign found due more than this many minutes after its sale start (the portal was down)
# is not sent by itself: it waits for staff ("Send now" or "Cancel").
NOTIFICATIONS_GRACE_MINUTES = env_int("NOTIFICATIONS_GRACE_MINUTES", 30)
# Addresses per Wix Email Subscriptions query (Query by email $in), and emails per claim batch.
NOTIFICATIONS_WIX_BATCH = env_int("NOTIFICATIONS_WIX_BATCH", 100)
NOTIFICATIONS_SEND_BATCH = env_int("NOTIFICATIONS_SEND_BATCH", 50)
# The quick start's local mail sink keeps what it receives here (an mbox any mail program opens).
MAIL_SINK_MBOX = Path(env_str("MAIL_SINK_MBOX", str(DATA_DIR / "mail" / "sink.mbox")))

# --- Outbound HTTP and Wix ------------------------------------------------------------
HTTP_TIMEOUT = env_float("HTTP_TIMEOUT", 10.0)
HTTP_USER_AGENT = "events-sync-portal/0.1 (+https://github.com/events-sync-portal)"
WIX_API_BASE_URL = env_str("WIX_API_BASE_URL", "https://www.wixapis.com")
WIX_MAX_RETRIES = env_int("WIX_MAX_RETRIES", 5)
WIX_BACKOFF_BASE = env_float("WIX_BACKOFF_BASE", 0.5)
WIX_BACKOFF_CAP = env_float("WIX_BACKOFF_CAP", 30.0)
WIX_PAGE_SIZE = env_int("WIX_PAGE_SIZE", 100)

# --- Subscriber sources (Mailchimp, REST) ------------------------------------------------
# A 429, 5xx or network error while reading a source is retried in place this many times,
# with full-jitter backoff from SOURCE_BACKOFF_BASE seconds up to SOURCE_BACKOFF_CAP (or
# after the pause the peer asked for); then the campaign waits and tries again later.
SOURCE_MAX_RETRIES = env_int("SOURCE_MAX_RETRIES", 4)
SOURCE_BACKOFF_BASE = env_float("SOURCE_BACKOFF_BASE", 0.5)
SOURCE_BACKOFF_CAP = env_float("SOURCE_BACKOFF_CAP", 10.0)
# Mailchimp's API; {dc} is the server prefix (us6). Only changed to point at a test double.
MAILCHIMP_API_URL = env_str("MAILCHIMP_API_URL", "https://{dc}.api.mailchimp.com/3.0")

# --- Webhooks ----------------------------------------------------------------------------
# Clock skew allowed when checking a webhook token's exp/iat.
WEBHOOK_LEEWAY_SECONDS = env_int("WEBHOOK_LEEWAY_SECONDS", 60)
# A client address whose webhooks were refused this many times within the window gets 429
# without its body being read, until the window ends. Counted in the cache, never the database.
WEBHOOK_REJECT_LIMIT = env_int("WEBHOOK_REJECT_LIMIT", 30)
WEBHOOK_REJECT_WINDOW_SECONDS = env_int("WEBHOOK_REJECT_WINDOW_SECONDS", 300)
# Order Confirmed refreshes its ticket definitions (one Get) this many seconds after the first
# order of a burst; the orders confirmed meanwhile join that one Get (ticket counters).
TICKET_REFRESH_WINDOW_SECONDS = env_float("TICKET_REFRESH_WINDOW_SECONDS", 0.5)

# --- Queue tasks staff may schedule or re-queue (functions named *_task in these modules) ----
PORTAL_TASK_MODULES = ["sync.tasks", "sync.sandbox.tasks", "notifications.tasks"]

# --- Backfill -------------------------------------------------------------------------
# A running backfill writes a heartbeat after every event; one silent for longer is dead.
BACKFILL_STALE_AFTER = env_int("BACKFILL_STALE_AFTER", 600)

# --- Sandbox (fake Wix on this server; never on unless enabled) ------------------------
# On by default only under the test suite, which runs flows end to end against it.
PORTAL_SANDBOX = env_bool("PORTAL_SANDBOX", TESTING)
if PORTAL_SANDBOX and not (DEBUG or TESTING):
    raise ImproperlyConfigured(
        "PORTAL_SANDBOX=1 needs PORTAL_DEBUG=1: the sandbox serves a fake Wix with a known key and "
        "signs webhooks with its own key, which must never run in production."
    )
WIX_SANDBOX_API_KEY = env_str("WIX_SANDBOX_API_KEY", "sandbox-api-key")
SANDBOX_WEBHOOK_URL = env_str("SANDBOX_WEBHOOK_URL", f"{PORTAL_BASE_URL}/webhooks/wix/")
# Wix may answer a query page with fewer items than asked for; a cap below the asked limit
# plays that (the portal must page on to the total, not stop at a short page).
SANDBOX_MAX_PAGE_SIZE = env_int("SANDBOX_MAX_PAGE_SIZE", 100)
# How the sandbox's webhooks carry entities: "object" (entity, ... as Wix's SDK reads them),
# "both" (the object and the entityAsJson, ... string), "json" (the string alone, which the
# SDK cannot read) or "alternate" between object and both.
SANDBOX_WEBHOOK_CARRIERS = env_str("SANDBOX_WEBHOOK_CARRIERS", "alternate")
if SANDBOX_WEBHOOK_CARRIERS not in ("alternate", "both", "json", "object"):
    raise ImproperlyConfigured(
        f"SANDBOX_WEBHOOK_CARRIERS={SANDBOX_WEBHOOK_CARRIERS!r}: use alternate, both, json or object."
    )
# The fake ticketing system's bearer token, and a delay to play a slow target (benchmarks).
EXTERNAL_SANDBOX_TOKEN = env_str("EXTERNAL_SANDBOX_TOKEN", "sandbox-ticketing-token")
SANDBOX_TICKETING_DELAY_MS = env_int("SANDBOX_TICKETING_DELAY_MS", 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
