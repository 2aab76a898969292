"""Every setting, read once from the environment (and from `.env` when present).

Real environment variables win over `.env`. A missing or malformed secret stops
the process here, with a message that says how to fix it, so neither
`manage.py` nor the gunicorn master ever starts half-configured.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import environ

from gatewaysite.pgbackend import pool as pgpool
from upstreams.crypto import EncryptionKeyError, parse_key

BASE_DIR = Path(__file__).resolve().parent.parent


class _HideEnvLineValues(logging.Filter):
    """django-environ logs a line of .env it cannot parse whole ("Invalid line: KEY = value"),
    value and all; that value is usually a secret. Only the variable's name is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Invalid line: %s" and record.args:
            name = str(record.args[0]).split("=", 1)[0].strip()[:64]
            record.msg, record.args = "Invalid line in .env (value hidden): %s", (name,)
        return True


logging.getLogger("environ.environ").addFilter(_HideEnvLineValues())

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")


def _fail(message: str) -> None:
    sys.stderr.write(f"gateway configuration error: {message}\n")
    raise SystemExit(2)


DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "insecure-development-only-key"  # noqa: S105 (only with DEBUG on)
    else:
        _fail(
            "SECRET_KEY is not set. Generate one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )

# --- secrets at rest --------------------------------------------------------------
_key_file = env.str("ENCRYPTION_KEY_FILE", default="")
try:
    if _key_file:
        try:
            _raw_key = Path(_key_file).read_bytes()
        except OSError as exc:
            raise EncryptionKeyError(
                f"ENCRYPTION_KEY_FILE {_key_file} cannot be read ({exc.strerror})."
            ) from None
        ENCRYPTION_KEY = parse_key(_raw_key, name="ENCRYPTION_KEY_FILE")
    else:
        ENCRYPTION_KEY = parse_key(env.str("ENCRYPTION_KEY", default=""))
    ENCRYPTION_KEY_PREVIOUS = [
        parse_key(k, name=f"ENCRYPTION_KEY_PREVIOUS[{i}]")
        for i, k in enumerate(env.list("ENCRYPTION_KEY_PREVIOUS", default=[]))
        if k.strip()
    ]
except EncryptionKeyError as exc:
    _fail(str(exc))

ADMIN_TOKEN = env.str("ADMIN_TOKEN", default="")
# Bearer token for GET /metrics; empty: /metrics answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- applications -------------------------------------------------------------------
INSTALLED_APPS = [
    # First, so its admin templates (base_site.html) win over the admin's own.
    "gatewaysite",
    "gatewaysite.apps.GatewayAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "keys",
    "upstreams",
    "logs",
    "proxy",
    "prices",
    "limits",
]

# No GZip or ConditionalGet middleware: they would buffer the proxy's event streams.
MIDDLEWARE = [
    # Outermost: a /v1 answer leaves with the upstream's headers and the gateway's own,
    # nothing the middleware below adds for the admin site (cookies, Vary, security headers).
    "gatewaysite.middleware.ProxyAnswerHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # /v1 leaves the chain here, straight to the proxy (what lies below is the admin's).
    "gatewaysite.middleware.ProxyShortcutMiddleware",
    "gatewaysite.middleware.NulInQueryMiddleware",
    "gatewaysite.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gatewaysite.urls"
WSGI_APPLICATION = "gatewaysite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- database -----------------------------------------------------------------------
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "data")))
DATABASE_URL = env.str("DATABASE_URL", default="")
# Set by gunicorn.conf.py for its workers; see gatewaysite/db_upkeep.py.
SQLITE_BACKGROUND_CHECKPOINT = env.bool("SQLITE_BACKGROUND_CHECKPOINT", default=False)
# SQLite under gunicorn: the WAL's size at which the background thread empties it.
SQLITE_WAL_LIMIT_MB = env.int("SQLITE_WAL_LIMIT_MB", default=64)
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=8)
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=5.0)
# PostgreSQL: after a failure to reach the database, seconds during which a worker
# answers 503 at once before one request tries again.
DB_RETRY_SECONDS = env.float("DB_RETRY_SECONDS", default=1.0)
# PostgreSQL: wait for the WAL flush on every commit (on), or only on the commits that
# change keys or upstreams (off, the default; see gatewaysite.versioning).
DB_SYNCHRONOUS_COMMIT = env.bool("DB_SYNCHRONOUS_COMMIT", default=False)
# PostgreSQL behind PgBouncer in transaction pooling: consecutive transactions of one
# connection may run on different server connections, so no server-side prepared
# statements and no startup options (PgBouncer refuses them; set synchronous_commit on
# the role instead, see Scaling out). Otherwise the hot path's statements, which run on
# psycopg's own cursor (gatewaysite/short_transaction.py), are prepared on a connection
# once it has run them five times; Django's own cursor binds values on the client and
# never prepares.
DB_PGBOUNCER = env.bool("DB_PGBOUNCER", default=False)


# Only two URL shapes mean one thing: anything else (a bare path, "sqlite:x" whose first
# letter django-environ drops, "sqlite://" that means memory) is refused here.
_DATABASE_URL_HOWTO = (
    "DATABASE_URL must be postgres://user:password@host:5432/name, or "
    "sqlite:////absolute/path/gateway.sqlite3 (four slashes), or unset for an SQLite file "
    "in DATA_DIR."
)
if DATABASE_URL and not (
    re.match(r"^postgres(ql)?://[^/]", DATABASE_URL) or re.match(r"^sqlite:////.", DATABASE_URL)
):
    _fail(_DATABASE_URL_HOWTO)
_db = env.db_url_config(DATABASE_URL or f"sqlite:///{DATA_DIR / 'gateway.sqlite3'}")
if _db["ENGINE"] == "django.db.backends.postgresql":
    _db["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django must not also keep them
    # Each connection is checked as the pool lends it, so one broken by a database
    # restart never reaches a request: without a round trip when it came back recently
    # and the server sent nothing since (gatewaysite/pgbackend), instead of Django's
    # CONN_HEALTH_CHECKS, which asks the server at every lend.
    _db["CONN_HEALTH_CHECKS"] = False
    _db["OPTIONS"] = {
        "connect_timeout": 3,
        # Log rows are written twice per request; not waiting for the disk on each
        # commit saves two fsyncs per request. A PostgreSQL crash (not a gateway
        # crash) can lose the last fraction of a second of log writes, the same
        # durability as SQLite's WAL with synchronous=NORMAL; every change to keys
        # and upstreams still commits synchronously (VersionStamp.bump).
        **(
            {}
            if DB_SYNCHRONOUS_COMMIT or DB_PGBOUNCER
            else {"options": "-c synchronous_commit=off"}
        ),
        "prepare_threshold": None if DB_PGBOUNCER else 5,
        # A bounded pool: one process holds at most DB_POOL_MAX_SIZE connections,
        # however many requests (or greenlets) it serves.
        "pool": {
            "min_size": 1,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": DB_POOL_TIMEOUT,
            "max_idle": 300,
            # Notes when each connection comes back (gatewaysite/pgbackend/pool.py).
            "reset": pgpool.connection_returned,
        },
    }
    # Django's backend, failing fast while the database is away (gatewaysite/pgbackend).
    _db["ENGINE"] = "gatewaysite.pgbackend"
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    _sqlite_path = Path(_db["NAME"])
    _sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    _db["CONN_MAX_AGE"] = 600
    _db["CONN_HEALTH_CHECKS"] = True
    _db["OPTIONS"] = {
        # Several gunicorn workers write at once: WAL lets readers go on while one
        # writes, IMMEDIATE takes the write lock up front (no upgrade deadlock),
        # and the busy timeout waits for it instead of failing "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;"
            # Under gunicorn a background thread checkpoints (gatewaysite/db_upkeep.py).
            + ("PRAGMA wal_autocheckpoint=0;" if SQLITE_BACKGROUND_CHECKPOINT else "")
        ),
    }
    # A file, not memory: the tests' live gunicorn (another process) must see it.
    _db["TEST"] = {"NAME": str(_sqlite_path.with_name(f"test-{_sqlite_path.name}"))}
else:
    _fail(_DATABASE_URL_HOWTO)
DATABASES = {"default": _db}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache --------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "gateway",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- auth, i18n, static -------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's PBKDF2, hashed off the gevent loop (gatewaysite/login.py); same stored hashes.
# Django's own PBKDF2PasswordHasher must not follow: the last hasher of an algorithm wins.
PASSWORD_HASHERS = [
    "gatewaysite.login.OffLoopPBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# Failed admin sign-ins allowed per client address and per username in a window (seconds).
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_EXCEPTION_REPORTER_FILTER = "gatewaysite.reporting.GatewayExceptionReporterFilter"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# The admin site's cookies stay with the admin site: never sent to /v1 (and so upstream).
SESSION_COOKIE_PATH = "/django-admin/"
CSRF_COOKIE_PATH = "/django-admin/"

# --- behind a TLS-terminating proxy -------------------------------------------------
# SECURE_COOKIES marks the admin's cookies Secure; SECURE_PROXY_SSL_HEADER names the
# header (e.g. X-Forwarded-Proto) by which the proxy says "https" (only if it always
# sets or strips it); SECURE_SSL_REDIRECT sends plain-HTTP pages to HTTPS (probes exempt).
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=False)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="").strip()
if _ssl_header:
    if not all(c.isalnum() or c == "-" for c in _ssl_header):
        _fail("SECURE_PROXY_SSL_HEADER must be a header name such as X-Forwarded-Proto.")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _ssl_header.upper().replace("-", "_"), "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)

# --- the gateway's own knobs --------------------------------------------------------
LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=90)
UPSTREAMS = env.str("UPSTREAMS", default="")
PROXY_MAX_STREAM_SECONDS = env.float("PROXY_MAX_STREAM_SECONDS", default=600.0)
PROXY_MAX_BODY_BYTES = env.int("PROXY_MAX_BODY_BYTES", default=32 * 1024 * 1024)
# A request body must be complete within PROXY_BODY_TIMEOUT seconds plus one second per
# PROXY_BODY_MIN_RATE bytes received, else 408 (a slow upload must not pin a worker's memory).
PROXY_BODY_TIMEOUT = env.float("PROXY_BODY_TIMEOUT", default=30.0)
PROXY_BODY_MIN_RATE = env.int("PROXY_BODY_MIN_RATE", default=10_000)
# Upstream timeout when an upstream sets none (seconds to headers and between chunks).
PROXY_DEFAULT_TIMEOUT = env.float("PROXY_DEFAULT_TIMEOUT", default=60.0)
# Seconds to open a connection to an upstream (capped by the upstream's own timeout).
PROXY_CONNECT_TIMEOUT = env.float("PROXY_CONNECT_TIMEOUT", default=10.0)
# Output tokens a budget reserves for a request that sets no max_tokens (limits app).
BUDGET_DEFAULT_MAX_TOKENS = env.int("BUDGET_DEFAULT_MAX_TOKENS", default=4096)
# Ask OpenAI chat streams for their usage when the client did not (and hide the added
# chunk from it), so every stream is counted and priced; per upstream: inject_stream_usage.
PROXY_FORCE_STREAM_USAGE = env.bool("PROXY_FORCE_STREAM_USAGE", default=True)
# Failover and cooling (proxy.failover, upstreams.health): upstreams tried per request;
# failures in a row that put an upstream in cooling, and for how long.
PROXY_MAX_ATTEMPTS = env.int("PROXY_MAX_ATTEMPTS", default=3)
UPSTREAM_FAILURES_TO_COOL = env.int("UPSTREAM_FAILURES_TO_COOL", default=5)
UPSTREAM_COOLDOWN_SECONDS = env.float("UPSTREAM_COOLDOWN_SECONDS", default=30.0)
if PROXY_MAX_ATTEMPTS < 1 or UPSTREAM_FAILURES_TO_COOL < 1 or UPSTREAM_COOLDOWN_SECONDS < 0:
    _fail(
        "PROXY_MAX_ATTEMPTS and UPSTREAM_FAILURES_TO_COOL must be at least 1, "
        "UPSTREAM_COOLDOWN_SECONDS at least 0."
    )

# --- Django REST framework ----------------------------------------------------------
# The admin token is the only door (gatewaysite/api/auth.py): no Session or Basic
# authentication anywhere, and a DRF view that sets nothing else is admin-only.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["gatewaysite.api.auth.AdminTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["gatewaysite.api.auth.IsAdminOperator"],
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["gatewaysite.api.parsers.AdminJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "gatewaysite.api.pagination.AdminPagination",
    "DEFAULT_SCHEMA_CLASS": "gatewaysite.api.schema.AdminAutoSchema",
    "EXCEPTION_HANDLER": "gatewaysite.api.exceptions.admin_exception_handler",
    "DEFAULT_METADATA_CLASS": "gatewaysite.api.metadata.AdminMetadata",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "LLM gateway admin API",
    "DESCRIPTION": (
        "Manage API keys, upstreams and request logs. Every call needs "
        "`Authorization: Bearer <ADMIN_TOKEN>`; errors are "
        '`{"error": code, "message": text, "details": ...}`; lists are pages '
        '`{"items", "total", "page", "page_size", "pages"}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/admin/",
    # Requests and answers differ (write-only api_key, read-only ids): separate components.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "Provider": "upstreams.models.Provider",
        "KeyStatus": "keys.models.KeyStatus",
        "LogState": "logs.models.RequestLog.State",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": False, "displayOperationId": False},
    "REDOC_DIST": "SIDECAR",
}

# --- logging: never headers, bodies or query strings --------------------------------
# plain: "time LEVEL logger request_id=… message"; json: one object per line, for shippers.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    _fail(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
if LOG_FORMAT == "json":
    logging.captureWarnings(True)  # Python's warnings too, as JSON lines (logger py.warnings)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s%(request_tag)s %(message)s"},
        "json": {"()": "gatewaysite.logfilters.JsonLines"},
    },
    # Control characters escaped in every line (a path or a model name can hold them);
    # every line about a request names it (its X-Gateway-Request-ID).
    "filters": {
        "escape": {"()": "gatewaysite.logfilters.EscapeControls"},
        "one_line": {"()": "gatewaysite.logfilters.OneLine"},
        "request_id": {"()": "gatewaysite.logfilters.RequestId"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["escape", "request_id"],
        },
        "console_one_line": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["one_line", "request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # A Host not in ALLOWED_HOSTS is an expected refusal: one line, not a traceback.
        "django.security.DisallowedHost": {
            "handlers": ["console_one_line"],
            "level": "ERROR",
            "propagate": False,
        },
        # django.request would log the path (with its query string) of every 4xx.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR"},
    },
}
