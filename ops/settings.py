"""Settings read from the environment, with embedded defaults for a laptop run.

Unset, every service falls back to an in-process stand-in: SQLite under var/, the local-memory
cache, Celery tasks executed eagerly. Setting DATABASE_URL, REDIS_URL or CELERY_BROKER_URL
switches each one to the real thing. README.md lists every variable.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from ops.runtime import gc_thresholds
from ops.secrets import resolve as secrets_resolve

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# No public fallback: a deployment sets both keys; the embedded SQLite database (a laptop, the
# CLI) and DEBUG use random keys of this machine kept in VAR_DIR (ops/secrets.py).
_SECRETS = secrets_resolve(
    dict(os.environ),
    debug=DEBUG,
    embedded=os.environ.get("DATABASE_URL", "sqlite:").startswith("sqlite:"),
    var_dir=VAR_DIR,
)
SECRET_KEY = _SECRETS.secret_key
FIELD_ENCRYPTION_KEY = _SECRETS.field_encryption_key
SECRETS_FROM_LOCAL_FILE = _SECRETS.local
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# The blue/green colour this container runs as (compose.yaml sets it per web service): returned
# in the X-App-Colour response header and on every JSON log line, so that a canary's responses
# and logs can be told from the live colour's. Empty outside the stack: no header.
APP_COLOUR = os.environ.get("APP_COLOUR", "").strip()
if APP_COLOUR not in {"", "blue", "green"}:
    raise ImproperlyConfigured(f"APP_COLOUR must be blue, green or empty, got {APP_COLOUR!r}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "erp",
    "dte",
    "dte.sandbox",
    "f29",
    "ai",
    "ops",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "ops.requestid.RequestIdMiddleware",
    "ops.requestid.ColourMiddleware",
    "ops.metrics.ScrapeMiddleware",
    "ops.security.RefuseNulBytes",
    "ops.security.ContentSecurityPolicy",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ops.urls"
WSGI_APPLICATION = "ops.wsgi.application"
# A refused CSRF check gets the site's Spanish page (or the API's JSON), not Django's English one.
CSRF_FAILURE_VIEW = "ops.errors.csrf_failure"
# The dashboard's panels from apps erp may not import (erp/dashboard.py), in the order shown.
DASHBOARD_PANELS = [
    "f29.dashboard.f29_panel",
    "dte.dashboard.sii_states_panel",
    "dte.dashboard.folios_panel",
    "dte.dashboard.certificates_panel",
    "dte.dashboard.received_panel",
]

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
                "erp.context_processors.current_company",
                "dte.context_processors.dte_warnings",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite, the embedded default, shared by the web process, the CLI and background threads:
    # WAL lets readers run while one connection writes; IMMEDIATE transactions take the write
    # lock at BEGIN, where the busy timeout applies (a deferred transaction that reads first and
    # writes later fails at once with "database is locked" when another one wrote meanwhile);
    # the timeout is how long a writer waits for the lock. No persistent connections.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": float(os.environ.get("SQLITE_BUSY_TIMEOUT", "30")),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # PostgreSQL. Two ways to pool connections (README.md, "Database connections"):
    #
    # DB_PGBOUNCER=1: DATABASE_URL points at PgBouncer in transaction pooling (the production
    # stack: compose.yaml, deploy/pgbouncer/). A server connection belongs to this process for
    # one transaction only, so nothing may outlive a transaction on it: no server-side cursors
    # (QuerySet.iterator() and the exports then read from a client-side cursor), no prepared
    # statements (psycopg prepares a query run 5 times; None: never). Row locks (FOR UPDATE)
    # live in their transaction and are fine; the project takes no advisory lock, LISTENs to
    # nothing and SETs nothing for a session (the time zone is PgBouncer's `timezone=UTC`, so
    # Django finds the server already in UTC and sends no SET TIME ZONE).
    #
    # DB_POOL=1: psycopg's pool inside each process (Django 5.1+), connections shared by its
    # threads, at most DB_POOL_MAX_SIZE; a thread waits up to DB_POOL_TIMEOUT seconds for one
    # (then an error). For a deployment that reaches PostgreSQL directly. Off by default: in
    # the stack PgBouncer is the pool (pooling twice only keeps idle client slots), and a pool's
    # threads do not survive a fork (Celery's prefork pool, gunicorn's --preload).
    if env_bool("DB_PGBOUNCER", False):
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
    if env_bool("DB_POOL", False):
        # The pool replaces persistent connections (Django refuses both).
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(os.environ.get("DB_POOL_MIN_SIZE", "2")),
            "max_size": int(os.environ.get("DB_POOL_MAX_SIZE", "10")),
            "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "10")),
            # Connections are replaced after this long, so that a PgBouncer or a PostgreSQL
            # restart, or a change of the server's settings, reaches every process.
            "max_lifetime": float(os.environ.get("DB_POOL_MAX_LIFETIME", "1800")),
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Python's garbage collector, tuned at start-up by ops.apps (see ops/runtime.py).
try:
    PYTHON_GC_THRESHOLDS = gc_thresholds(os.environ.get("PYTHON_GC_THRESHOLDS"))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "fe"),
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cache"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Workers log through Django's LOGGING (JSON lines with the request id), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
# Redis redelivers a task not acknowledged within this time: above the longest task's hard limit
# (the RCV import's 3,600 s), or a long import would run twice at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7200}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "America/Santiago"
# Queues (README.md, "Celery queues"), so that printing, e-mail and AI reviews never delay the
# SII: each has its own workers (compose.yaml: worker-<colour> takes sii and celery,
# worker-<colour>-aux takes pdf, email and ai, worker-<colour>-bulk takes bulk). Routed by task
# name, which is how dte.dispatch queues them (apply_async on the registered task), so the
# routes apply to every path. A task not named here goes to the default queue, `celery`,
# which the SII workers also take (ops.heartbeat, ops.ping, anything new until it is routed).
CELERY_TASK_DEFAULT_QUEUE = "celery"
TASK_QUEUES_BY_NAME = {
    # The sending pipeline: upload, status polls, the outbox tick that dispatches both, the
    # envelope collection of a batch, and the certification's libros (uploaded like
    # envelopes). What the SII's acceptance of a document waits for.
    "sii": [
        "dte.envelope_send",
        "dte.envelope_refresh",
        "dte.envelope_collect",
        "dte.outbox_tick",
        "dte.libro_send",
        "dte.libro_refresh",
    ],
    # The printed PDF: CPU-heavy (reportlab, PDF417), seconds each under load.
    "pdf": ["dte.dte_store_pdf"],
    # SMTP: a slow or unreachable mail server holds a worker until its timeout.
    "email": ["dte.dte_email", "dte.received_answer_email"],
    # Claude: up to AI_TIMEOUT (30 s) per call, with retries.
    "ai": ["ai.ai_review_document", "ai.ai_review_period"],
    # Long or bursty batch work that no document's acceptance waits for: the exchange
    # mailboxes, received documents (their intake, their confirmation and sync with the SII:
    # SII calls, but of the receiving side, which a backlog of suppliers' documents must not
    # put ahead of our own uploads), RCV imports (up to an hour), the F29 draft, and the
    # certification runs (they issue a whole set; the sending of what they issue is queued on
    # `sii` like any other document's).
    "bulk": [
        "dte.mailbox_poll",
        "dte.mailbox_poll_one",
        "dte.received_confirm",
        "dte.received_sync",
        "dte.received_intake_run",
        "dte.certification_run",
        "dte.certification_simulation",
        "f29.rcv_import_run",
        "f29.f29_draft_previous_month",
    ],
}
CELERY_TASK_ROUTES = {
    name: {"queue": queue} for queue, names in TASK_QUEUES_BY_NAME.items() for name in names
}
# Every queue declared: a worker started without -Q (a laptop, `celery -A ops worker -B`)
# consumes them all, so nothing waits in a queue nobody reads; compose.yaml's workers choose
# theirs with -Q.
CELERY_TASK_QUEUES = [Queue(name) for name in (CELERY_TASK_DEFAULT_QUEUE, *TASK_QUEUES_BY_NAME)]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "erp:dashboard"
LOGOUT_REDIRECT_URL = "login"

# Login lockout (django-axes), on the web login and /admin/login/: LOGIN_FAILURE_LIMIT wrong
# passwords for one username from one client address lock that pair out for
# LOGIN_LOCKOUT_MINUTES (HTTP 429, a Spanish page saying until when, Retry-After). Only the pair:
# someone guessing a user's password elsewhere does not lock the user out of their own address.
# Attempts live in the database (axes' database handler: the same on SQLite and PostgreSQL,
# shared by every worker, visible and deletable in admin to unlock early). A success resets the
# count; attempts during the lockout do not extend it. API tokens are not a login form: the API
# has its throttles (REST_FRAMEWORK below).
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_LOCKOUT_MINUTES = float(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15"))
if LOGIN_FAILURE_LIMIT < 1 or LOGIN_LOCKOUT_MINUTES <= 0:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT must be >= 1 and LOGIN_LOCKOUT_MINUTES > 0")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# Quiet at start-up: a command's output (one line on failure) is not axes' banner.
AXES_VERBOSE = False
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "erp.lockout.lockout_response"
# The client's address as the API throttles see it (TRUSTED_PROXY_COUNT, below).
AXES_CLIENT_IP_CALLABLE = "erp.lockout.client_ip"
AXES_COOLOFF_MESSAGE = "Demasiados intentos fallidos: espere antes de volver a intentarlo."
AXES_PERMALOCK_MESSAGE = "Demasiados intentos fallidos: contacte a un administrador."

# The client's address, for the login lockout and the API throttles: 0 means the direct peer
# (REMOTE_ADDR), right when clients reach the app directly; behind N reverse proxies that each
# append to X-Forwarded-For (the production stack: Traefik, 1; a load balancer in front of it
# too, 2), the address the outermost one saw. Never more than the real number of proxies: the
# left part of X-Forwarded-For is the client's own word.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
# API throttles (DRF, counters in the default cache: Redis with REDIS_URL): requests per
# authenticated user and per anonymous client address, as "<number>/<s|min|hour|day>"; empty
# turns that throttle off. Over the limit: 429 with Retry-After.
API_THROTTLE_USER = os.environ.get("API_THROTTLE_USER", "600/min").strip() or None
API_THROTTLE_ANON = os.environ.get("API_THROTTLE_ANON", "60/min").strip() or None
for _name, _rate in (
    ("API_THROTTLE_USER", API_THROTTLE_USER),
    ("API_THROTTLE_ANON", API_THROTTLE_ANON),
):
    _num, _, _period = (_rate or "1/s").partition("/")
    if not _num.isdigit() or _period not in {"s", "sec", "m", "min", "h", "hour", "d", "day"}:
        raise ImproperlyConfigured(f"{_name} must look like 600/min, got {_rate!r}")

LANGUAGE_CODE = "es-cl"
LANGUAGES = [("es-cl", "Español (Chile)")]
TIME_ZONE = "America/Santiago"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["ops.formats"]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it even before collectstatic
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "dte@localhost")
# Where the public verification pages (the QR on every printed document) are reached.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# E-mail each document to the receiver's exchange address once the SII accepts it.
DTE_EMAIL_ON_ACCEPT = env_bool("DTE_EMAIL_ON_ACCEPT", True)

# AI checks (ai/): the deterministic rules always run; Claude only with a key.
ANTHROPIC_API_KEY = os.environ.get("ANTHROPIC_API_KEY", "")
ANTHROPIC_BASE_URL = os.environ.get("ANTHROPIC_BASE_URL", "") or None
AI_MODEL = os.environ.get("AI_MODEL", "claude-sonnet-5-5")
AI_TIMEOUT = float(os.environ.get("AI_TIMEOUT", "30"))
AI_MAX_RETRIES = int(os.environ.get("AI_MAX_RETRIES", "2"))
AI_DAILY_TOKEN_BUDGET = int(os.environ.get("AI_DAILY_TOKEN_BUDGET", "200000"))
AI_CACHE_SECONDS = int(os.environ.get("AI_CACHE_SECONDS", str(7 * 24 * 3600)))
AI_REVIEW_ON_ISSUE = env_bool("AI_REVIEW_ON_ISSUE", True)
# For the ai_cost_usd_today gauge: USD per million input / output tokens of AI_MODEL.
AI_PRICE_INPUT = float(os.environ.get("AI_PRICE_INPUT", "3"))
AI_PRICE_OUTPUT = float(os.environ.get("AI_PRICE_OUTPUT", "15"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "erp.api.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "erp.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_THROTTLE_CLASSES": [
        "erp.api.throttling.AnonThrottle",
        "erp.api.throttling.UserThrottle",
    ],
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Facturación electrónica API",
    "DESCRIPTION": "Companies, partners, products and sales documents (DTE drafts).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"AdjustmentTypeEnum": "erp.models.AdjustmentType"},
    # Every /api/v1/ operation documents its error answers ({code, message, fields}).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "erp.api.schema.document_errors",
    ],
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (Traefik passes it on only from
# its trusted IPs): request.is_secure() and absolute URLs then say https. Never set it where a
# client can reach the app directly: the header would be the client's word.
if env_bool("BEHIND_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "ops.requestid.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "ops.requestid.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in ("plain", "json") else "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

SII_ENV = os.environ.get("SII_ENV", "sandbox")
if SII_ENV not in {"sandbox", "certification", "production"}:
    raise ImproperlyConfigured("SII_ENV must be sandbox, certification or production")
# Each company talks to the SII of its own environment (Company.sii_environment: its hosts,
# tokens and CAF keys); the deployment says which environments it allows. By default: the
# sandbox alone on a sandbox deployment; certification alone on a certification one; both
# certification and production on a production one (companies certify before going live).
_DEFAULT_ENVIRONMENTS = {
    "sandbox": "sandbox",
    "certification": "certification",
    "production": "certification,production",
}
SII_ENVIRONMENTS = tuple(
    env.strip()
    for env in os.environ.get("SII_ENVIRONMENTS", _DEFAULT_ENVIRONMENTS[SII_ENV]).split(",")
    if env.strip()
)
if not SII_ENVIRONMENTS or set(SII_ENVIRONMENTS) - {"sandbox", "certification", "production"}:
    raise ImproperlyConfigured(
        "SII_ENVIRONMENTS must list sandbox, certification and/or production"
    )
# A stand-in for the certification or production SII, serving the sandbox's paths under one
# base URL (a proxy, or tests with two sandboxes): empty means the SII's real hosts.
SII_CERTIFICATION_URL = os.environ.get("SII_CERTIFICATION_URL", "")
SII_PRODUCTION_URL = os.environ.get("SII_PRODUCTION_URL", "")
# The local sandbox is served by this same project under /_sii/ (make run: port 8000).
SII_SANDBOX_URL = os.environ.get("SII_SANDBOX_URL", "http://127.0.0.1:8000/_sii")
# /metrics (ops.metrics): Prometheus presents this bearer token; without one it is served only
# on a laptop (DEBUG or the embedded SQLite).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
METRICS_OPEN_WITHOUT_TOKEN = DEBUG or os.environ.get("DATABASE_URL", "sqlite:").startswith(
    "sqlite:"
)
# Serve the sandbox under /_sii/ from this app: only when the sandbox is an allowed environment,
# and, outside DEBUG and the embedded SQLite, only when the deployment asks for it.
SII_SANDBOX_SERVE = "sandbox" in SII_ENVIRONMENTS and env_bool(
    "SII_SANDBOX_SERVE",
    DEBUG or os.environ.get("DATABASE_URL", "sqlite:").startswith("sqlite:"),
)
SII_TIMEOUT = float(os.environ.get("SII_TIMEOUT", "15"))
SII_TOKEN_TTL = int(os.environ.get("SII_TOKEN_TTL", "1800"))
# Point one SII service elsewhere (a stand-in, a proxy): empty means the environment's host.
SII_ENDPOINT_OVERRIDES = {
    "soap_base": os.environ.get("SII_SOAP_BASE", ""),
    "upload_url": os.environ.get("SII_UPLOAD_URL", ""),
    "boleta_api": os.environ.get("SII_BOLETA_API", ""),
    "boleta_upload_url": os.environ.get("SII_BOLETA_UPLOAD_URL", ""),
    "rcv_url": os.environ.get("SII_RCV_URL", ""),
}
# Sending: attempts before a document "needs attention", backoff base and cap (seconds), how
# long an upload without answer is given before checking whether the SII got it, and how long
# an envelope is polled while the SII processes it.
SII_MAX_ATTEMPTS = int(os.environ.get("SII_MAX_ATTEMPTS", "8"))
SII_BACKOFF_BASE = float(os.environ.get("SII_BACKOFF_BASE", "5"))
SII_BACKOFF_MAX = float(os.environ.get("SII_BACKOFF_MAX", "900"))
SII_UPLOAD_GRACE = float(os.environ.get("SII_UPLOAD_GRACE", "120"))
SII_POLL_INTERVAL = float(os.environ.get("SII_POLL_INTERVAL", "20"))
# The first question comes this soon after an upload, then the wait doubles up to
# SII_POLL_INTERVAL (dte.sending.poll_delay): most envelopes are processed in seconds, and
# one question per envelope is shared by all its documents.
SII_POLL_FIRST = float(os.environ.get("SII_POLL_FIRST", "1"))
SII_MAX_POLLS = int(os.environ.get("SII_MAX_POLLS", "200"))
# After an upload that got no answer, the SII answers "not received" (FAU) until it has
# processed the envelope: minutes, at times hours (DOMAIN.md §4-5). Its documents are looked up
# every SII_POLL_INTERVAL (with backoff) for this long before the same envelope goes again.
SII_RECOVERY_WINDOW = float(os.environ.get("SII_RECOVERY_WINDOW", "3600"))
# A signed document without an envelope (a batch whose envelope could not be built) is wrapped
# and sent by the beat tick once it is this old.
SII_ENVELOPE_GRACE = float(os.environ.get("SII_ENVELOPE_GRACE", "60"))
# Documents issued one by one within this many seconds travel in one envelope (up to the SII's
# limits: 2,000 DTE per EnvioDTE, 500 boletas per EnvioBOLETA), enveloped and sent by the task
# dte.envelope_collect; 0: each issue makes and sends its own envelope at once.
SII_ENVELOPE_WINDOW = float(os.environ.get("SII_ENVELOPE_WINDOW", "1"))
# Without a worker (tasks eager), how long the in-process task keeps following an envelope.
SII_INPROCESS_FOLLOW = float(os.environ.get("SII_INPROCESS_FOLLOW", "60"))
# Send each issued envelope to the SII right after the commit (off: only the beat tick sends).
SII_AUTO_SEND = env_bool("SII_AUTO_SEND", True)
SII_OUTBOX_TICK = float(os.environ.get("SII_OUTBOX_TICK", "15"))
SII_DISPATCH_LEASE = float(os.environ.get("SII_DISPATCH_LEASE", "120"))
# A wait up to this long (a poll soon after an upload, a short backoff) is queued as a
# countdown task instead of waiting for the beat tick (dte.sending.schedule).
SII_SCHEDULE_AHEAD = float(os.environ.get("SII_SCHEDULE_AHEAD", "30"))
# Receiving: how often the exchange mailboxes are read, and the open received documents
# checked against the SII (its confirmation, RCV events, the 8-day deadline).
MAILBOX_POLL_SECONDS = float(os.environ.get("MAILBOX_POLL_SECONDS", "120"))
RECEIVED_SYNC_SECONDS = float(os.environ.get("RECEIVED_SYNC_SECONDS", "900"))
MAILBOX_TIMEOUT = 30.0
MAILBOX_BATCH = 50  # messages per poll: the next poll takes the rest

CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "dte-outbox": {"task": "dte.outbox_tick", "schedule": SII_OUTBOX_TICK},
    "dte-mailbox-poll": {"task": "dte.mailbox_poll", "schedule": MAILBOX_POLL_SECONDS},
    "dte-received-sync": {"task": "dte.received_sync", "schedule": RECEIVED_SYNC_SECONDS},
    # Drafting is idempotent and skips reviewed or filed periods, so running it on each of the
    # first five days catches documents the SII accepted late and days the beat was down.
    "ops-heartbeat": {"task": "ops.heartbeat", "schedule": 60.0},
    "f29-draft-previous-month": {
        "task": "f29.f29_draft_previous_month",
        "schedule": crontab(minute=30, hour=6, day_of_month="1-5"),
    },
}
