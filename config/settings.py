"""Django settings, all from the environment.

Embedded default (nothing set): SQLite file, in-memory channel layer, Celery eager, DEBUG on.
Production: DJANGO_ENV=production plus DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TRIAGE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. a container's cpuset; Linux), else all."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DJANGO_ENV = os.environ.get("DJANGO_ENV", "").strip() or "development"
if DJANGO_ENV not in {"development", "production"}:
    # A typo ("prod") must not fall back to DEBUG with the development key.
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'development' or 'production', not {DJANGO_ENV!r}.")
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)

# Development only: a fixed, obviously-insecure key so sessions survive restarts. Production
# refuses it (triage/deploy_checks.py), as it refuses deploy/env.example's placeholders.
DEVELOPMENT_SECRET_KEY = "dev-insecure-key-do-not-use-in-production-0123456789abcdefghijklmnop"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set in production (DJANGO_ENV=production).")
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",  # login throttling (below)
    "triage",
]

MIDDLEWARE = [
    "triage.node.NodeHeaderMiddleware",  # X-Triage-Node: which web node answered (deploy/README.md)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # CSP, Permissions-Policy, Cache-Control: no-store (static files are served above it).
    "triage.security_headers.SecurityHeadersMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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

# --- database ---------------------------------------------------------------------------
if "DATABASE_URL" not in os.environ:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'triage.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the consumer write while the dashboard reads.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer and Celery ------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py >= 6 reads with a 5 s socket timeout by default, exactly channels-redis's
            # BZPOPMIN wait: an idle consumer's read then times out and the socket dies.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}],
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
    CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"

# --- auth ---------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes) on every login that authenticates: /accounts/login/ and the
# admin's. After AXES_FAILURE_LIMIT failures for one username from one address, that pair is
# refused (also with the right password) for AXES_COOLOFF_TIME; a success resets the count.
# Lockouts are stored as SecurityEvent rows (triage/login_security.py). Unlock early with
# `manage.py axes_reset_username <name>`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=float(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# daphne --proxy-headers already puts the client's address (from X-Forwarded-For set by the
# TLS proxy) in REMOTE_ADDR; reading the header here again would let a client choose its IP.
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static files: whitenoise with hashed (cache-busting) names in production ------------
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "triage" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- security (production) ----------------------------------------------------------------
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Health probes inside the cluster speak plain HTTP to daphne, with no X-Forwarded-Proto.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- email (escalation notifications) -------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "triage@localhost")

# --- the triage platform ----------------------------------------------------------------------
TRIAGE = {
    # Patient tokens: how long a session token may be used to (re)connect.
    "SESSION_TOKEN_TTL_SECONDS": int(os.environ.get("TRIAGE_SESSION_TOKEN_TTL", str(4 * 3600))),
    # Load the voice models at ASGI start-up rather than on the first call.
    "PRELOAD_MODELS": env_bool("TRIAGE_PRELOAD_MODELS", PRODUCTION),
    "STORE_AUDIO": env_bool("TRIAGE_STORE_AUDIO", False),
    "ESCALATION_EMAILS": env_list("TRIAGE_ESCALATION_EMAILS"),
    "ESCALATION_WEBHOOK_URL": os.environ.get("TRIAGE_ESCALATION_WEBHOOK_URL", ""),
    # Per-connection limits on the patient socket.
    "MAX_TEXT_MESSAGE_BYTES": int(os.environ.get("TRIAGE_MAX_TEXT_MESSAGE_BYTES", "4096")),
    "MAX_AUDIO_FRAME_BYTES": int(os.environ.get("TRIAGE_MAX_AUDIO_FRAME_BYTES", "9600")),
    "MAX_MESSAGES_PER_SECOND": int(os.environ.get("TRIAGE_MAX_MESSAGES_PER_SECOND", "200")),
    # --- clinician side (docs/clinician.md) ---
    # Links in notifications point here (the dashboard and the review page).
    "PUBLIC_BASE_URL": os.environ.get("TRIAGE_PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
    # HMAC-SHA256 of the webhook body, sent as X-Triage-Signature when set.
    "ESCALATION_WEBHOOK_SECRET": os.environ.get("TRIAGE_ESCALATION_WEBHOOK_SECRET", ""),
    "NOTIFY_TIMEOUT_SECONDS": float(os.environ.get("TRIAGE_NOTIFY_TIMEOUT_SECONDS", "5")),
    "NOTIFY_MAX_RETRIES": int(os.environ.get("TRIAGE_NOTIFY_MAX_RETRIES", "8")),
    "NOTIFY_BACKOFF_SECONDS": float(os.environ.get("TRIAGE_NOTIFY_BACKOFF_SECONDS", "2")),
    "NOTIFY_BACKOFF_MAX_SECONDS": float(os.environ.get("TRIAGE_NOTIFY_BACKOFF_MAX_SECONDS", "300")),
    # The outbox sweep republishes messages not handled this long after they were published.
    "OUTBOX_REDELIVER_AFTER_SECONDS": float(os.environ.get("TRIAGE_OUTBOX_REDELIVER_AFTER_SECONDS", "120")),
    "OUTBOX_SWEEP_SECONDS": float(os.environ.get("TRIAGE_OUTBOX_SWEEP_SECONDS", "10")),
    "OUTBOX_SWEEP_BATCH": int(os.environ.get("TRIAGE_OUTBOX_SWEEP_BATCH", "500")),
    # No activity for this long: Celery beat closes the session as abandoned (a drop-off).
    "ABANDON_AFTER_SECONDS": float(os.environ.get("TRIAGE_ABANDON_AFTER_SECONDS", str(15 * 60))),
    "ABANDON_CHECK_SECONDS": float(os.environ.get("TRIAGE_ABANDON_CHECK_SECONDS", "60")),
    "TELEMETRY_BUCKET_SECONDS": int(os.environ.get("TRIAGE_TELEMETRY_BUCKET_SECONDS", "300")),
    "TELEMETRY_RECOMPUTE_SECONDS": float(os.environ.get("TRIAGE_TELEMETRY_RECOMPUTE_SECONDS", "60")),
    # An open dashboard socket re-checks its login this often (0: only on signals and messages),
    # catching what sends no signal: an expired session, a bulk UPDATE of users.
    "DASHBOARD_RECHECK_SECONDS": float(os.environ.get("TRIAGE_DASHBOARD_RECHECK_SECONDS", "60")),
    # Run CELERY_BEAT_SCHEDULE in a thread of the ASGI process (triage/inprocess_beat.py). On by
    # default when tasks run eagerly (embedded mode: no broker, so no beat process).
    "INPROCESS_BEAT": env_bool("TRIAGE_INPROCESS_BEAT", CELERY_TASK_ALWAYS_EAGER),
    # On SIGTERM (rolling deploy) active calls may go on this long before the process stops
    # (triage/drain.py). Keep the orchestrator's grace period longer than this.
    "DRAIN_SECONDS": float(os.environ.get("TRIAGE_DRAIN_SECONDS", "600")),
    # Calls one web process takes at once; callers over it wait in the shared line
    # (triage/admission/). 0: no cap. Default 2 per CPU: on the 2-vCPU reference machine 4
    # concurrent callers kept answer-heard p95 within 10 % of one caller's (docs/benchmarks.md).
    "MAX_CALLS": int(os.environ.get("TRIAGE_MAX_CALLS", str(2 * _usable_cpus()))),
}

# /metrics: a Prometheus bearer token, or a staff login (docs/metrics.md).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# Celery beat (run `celery -A config beat` as its own process; not `worker -B`, whose beat child
# can outlive a killed worker: deploy/README.md). In embedded mode the ASGI process runs this
# schedule itself (TRIAGE["INPROCESS_BEAT"]).
CELERY_BEAT_SCHEDULE = {
    "sweep-outbox": {"task": "triage.sweep_outbox", "schedule": TRIAGE["OUTBOX_SWEEP_SECONDS"]},
    "close-abandoned-sessions": {
        "task": "triage.close_abandoned_sessions",
        "schedule": TRIAGE["ABANDON_CHECK_SECONDS"],
    },
    "telemetry-aggregates": {
        "task": "triage.compute_telemetry_aggregates",
        "schedule": TRIAGE["TELEMETRY_RECOMPUTE_SECONDS"],
    },
}
# A dead broker must fail a publish quickly (the outbox keeps the message for the sweep).
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Every record reaching the console has patient tokens redacted, whatever logger wrote it.
    "filters": {"redact_tokens": {"()": "triage.redact.RedactingFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tokens"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {
            "handlers": ["console"],
            "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
        # faster-whisper logs segment text at DEBUG; keep third-party chatter off INFO.
        "faster_whisper": {"level": "WARNING"},
        # Eager (embedded) Celery logs "Task ... succeeded" at INFO for every in-process beat run
        # (the outbox sweep every 10 s): keep the console for what a person needs. A real worker
        # keeps its task log.
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
