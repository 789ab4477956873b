"""Settings for Q16 Curator, read from the environment (12-factor).

Every value has a safe default for the embedded single-machine setup (`make run`),
except SECRET_KEY, which is required whenever DEBUG is off. Production sets
DATABASE_URL (PostgreSQL) and REDIS_URL; see README.md for the full table.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from config import storage_settings

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (make run generates one in Q16_DATA_DIR)."
        )
    SECRET_KEY = "insecure-debug-only-key"  # noqa: S105 - only ever used with DEBUG on

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Where the embedded setup keeps its database, media, Redis socket and secret key.
DATA_DIR = Path(os.environ.get("Q16_DATA_DIR", BASE_DIR / "var")).resolve()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "curation",
    "reviewer",
    "labels",
    "audit",
    "worker",
    # Request metrics for /metrics (config/metrics.py); it adds no tables.
    "django_prometheus",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics (config/probes.py), before the HTTPS redirect and the host
    # check: probes and scrapers come over plain HTTP to the internal address.
    "config.probes.ProbeMiddleware",
    # Request counts and latencies (django-prometheus): Before first, After last but axes.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Body size limits per endpoint (config/body_limits.py): after authentication (admins get
    # the upload limits), before anything reads the body (CSRF's process_view, the views).
    "config.body_limits.RequestBodyLimitMiddleware",
    # URL path ids outside the bigint range answer 404 before a view queries them.
    "config.path_ids.PathIdMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes requires: turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

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

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded setup has a web server and a worker writing at once: wait for
    # the lock instead of failing, and let readers proceed during writes (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes first: it refuses locked-out credentials before any other backend checks them.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files from the app folders without collectstatic in the embedded setup.
WHITENOISE_USE_FINDERS = True

# Media is never served from a public URL: images go through an authorised view.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media")).resolve()
MEDIA_URL = "/nonpublic-media/"
# Where stored files live (config/storage_settings.py): `local` under MEDIA_ROOT (the
# default), or `s3`: one bucket (Q16_S3_BUCKET, under Q16_S3_PREFIX; Q16_S3_ENDPOINT_URL for
# MinIO and the like; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), so a worker
# on another machine reads and writes the same files as the web server.
Q16_STORAGE = os.environ.get("Q16_STORAGE", "local").strip().lower() or "local"
Q16_S3_BUCKET = os.environ.get("Q16_S3_BUCKET", "")
Q16_S3_PREFIX = os.environ.get("Q16_S3_PREFIX", "q16")
Q16_S3_ENDPOINT_URL = os.environ.get("Q16_S3_ENDPOINT_URL", "")
Q16_S3_REGION = os.environ.get("Q16_S3_REGION", os.environ.get("AWS_DEFAULT_REGION", ""))
STORAGES.update(
    storage_settings.file_storages(
        kind=Q16_STORAGE,
        bucket=Q16_S3_BUCKET,
        prefix=Q16_S3_PREFIX,
        endpoint_url=Q16_S3_ENDPOINT_URL,
        region=Q16_S3_REGION,
    )
)
if Q16_STORAGE == "s3":
    # s3:// source URLs (folders, shards, tables) read through fsspec at the same endpoint.
    storage_settings.configure_fsspec(
        endpoint_url=Q16_S3_ENDPOINT_URL,
        key=os.environ.get("AWS_ACCESS_KEY_ID", ""),
        secret=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
    )
# Embedding shard files (curation.shard_files) are STORAGES["embeddings"], set above: local
# under MEDIA_ROOT/embeddings by default, in the bucket with Q16_STORAGE=s3.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 2**20
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 2**20
# The largest request body anywhere but the upload endpoints (config/body_limits.py lists
# them; the archive upload is bounded by Q16_MAX_ARCHIVE_BYTES below).
Q16_MAX_BODY_BYTES = env_int("Q16_MAX_BODY_BYTES", 2**20)

# --- Security (production values when DEBUG is off) -------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the review UI reads it to send X-CSRFToken
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Login throttling and lockout (django-axes), for the login page, the Django admin login and
# the API token endpoint: after AXES_FAILURE_LIMIT failed attempts for one username from one
# IP address, that pair is refused (HTTP 429) for AXES_COOLOFF_MINUTES, even with the right
# password; after Q16_USERNAME_FAILURE_LIMIT failures for one username from all addresses
# together (password spraying from many addresses), that username is refused from everywhere
# (other usernames are not). A successful login resets the counts (config/lockout.py).
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
Q16_USERNAME_FAILURE_LIMIT = env_int("Q16_USERNAME_FAILURE_LIMIT", 20)
if Q16_USERNAME_FAILURE_LIMIT < AXES_FAILURE_LIMIT:
    raise ImproperlyConfigured("Q16_USERNAME_FAILURE_LIMIT must be at least AXES_FAILURE_LIMIT.")
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]
AXES_HANDLER = "config.lockout.LockoutHandler"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# The client address is REMOTE_ADDR; behind trusted reverse proxies (AXES_BEHIND_PROXY=true,
# as in docker-compose.yml), the address the outermost of Q16_PROXY_COUNT proxies appended to
# X-Forwarded-For (config/client_ip.py). Turn it on only when the app is reachable through
# the proxies alone: otherwise a client can choose its address (the per-username limit holds).
AXES_BEHIND_PROXY = env_bool("AXES_BEHIND_PROXY", False)
Q16_PROXY_COUNT = env_int("Q16_PROXY_COUNT", 1)
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"

# Content-Security-Policy (django-csp): no inline script or style anywhere in the UI; the
# pages load static/js and static/css only. Image responses set their own stricter policy
# (curation/media.py); the Swagger UI page relaxes style-src only (config/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# --- REST API ------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so that an unauthenticated request gets 401 with a WWW-Authenticate header.
    # Tokens expire (Q16_TOKEN_TTL_HOURS) and die with a password change or deactivation.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "curation.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "curation.api.exceptions.domain_exception_handler",
}
# How long an API token (POST /api/auth/token/) works; a new one comes from the same endpoint.
Q16_TOKEN_TTL_HOURS = env_float("Q16_TOKEN_TTL_HOURS", 720)  # 30 days
if Q16_TOKEN_TTL_HOURS <= 0:
    raise ImproperlyConfigured("Q16_TOKEN_TTL_HOURS must be positive: API tokens always expire.")
SPECTACULAR_SETTINGS = {
    "TITLE": "Q16 Curator API",
    "DESCRIPTION": "Import datasets, score them with CLIP + Q16 prompts, review, retrain, export.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its Swagger UI are for logged-in users; the UI's files come from the
    # drf-spectacular-sidecar package (served locally, no CDN).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "DatasetStateEnum": "curation.models.Dataset.State",
        "JobStateEnum": "curation.models.ScoringRun.State",
        "ExportStateEnum": "curation.models.Export.State",
        "ReviewItemStateEnum": "reviewer.models.ReviewItem.State",
        "RunKindEnum": "curation.models.ScoringRun.Kind",
        "PromptJobKindEnum": "curation.models.PromptJob.Kind",
        "HashKindEnum": "curation.bank_models.HashKind",
    },
}

# --- Celery --------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# Progress lives on the database rows, so no result backend is needed.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged only after it finished: a killed worker's task is redelivered.
CELERY_TASK_ACKS_LATE = True
# ...and a task whose worker process died is requeued rather than marked failed.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One task at a time per process: chunks are long, prefetching would starve other workers.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Hard and soft limits for one task (a chunk); both must stay below the visibility timeout.
CELERY_TASK_TIME_LIMIT = env_int("Q16_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("Q16_TASK_SOFT_TIME_LIMIT", 3300)
# Redis redelivers an unacknowledged task after this many seconds; it must exceed the
# longest chunk, or a slow chunk would run twice at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("Q16_VISIBILITY_TIMEOUT", 7200),
    # How a worker puts back tasks it had taken when a worker or Redis died mid-delivery:
    # every `interval` s it scans, at most every `throttle`-th tick, under a lock that a
    # crash can leave held for `mutex_expire` s. kombu's defaults (10, 10, 300) are kept.
    "unacked_restore_interval": env_int("Q16_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env_int("Q16_UNACKED_RESTORE_THROTTLE", 10),
    "unacked_mutex_expire": env_int("Q16_UNACKED_MUTEX_EXPIRE", 300),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Workers recycle after this many tasks to bound memory growth from fragmentation.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("Q16_WORKER_MAX_TASKS_PER_CHILD", 1000)
# Work with no sign of life for this long, and no task in the broker or on a worker, is
# re-queued (curation/services/recovery.py): e.g. after Redis lost its queue in a crash.
Q16_STALL_SECONDS = env_int("Q16_STALL_SECONDS", 600)
# Periodic tasks for `celery beat` (or `celery worker -B`): the lost-work recovery, which
# also runs once whenever a worker starts.
CELERY_BEAT_SCHEDULE = {
    "recover-stalled-work": {
        "task": "worker.tasks.recover_stalled_work",
        "schedule": env_int("Q16_RECOVERY_INTERVAL", 300),
    },
}

# Two queues. `gpu`: the work that runs the image encoder, the scoring chunks. `cpu`:
# everything else (imports, rescoring from cached embeddings, prompt training, exports, the
# lost-work recovery). A worker without -Q takes both (`make run`'s does); `-Q gpu` or `-Q cpu`
# makes a GPU-only or CPU-only worker (docker-compose.yml, `make worker WORKER_QUEUES=...`).
Q16_GPU_QUEUE = "gpu"
Q16_CPU_QUEUE = "cpu"
# Each queue has its own exchange and routing key: sharing Celery's default ones would bind both
# queues to one key, and every task would land in both.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name) for name in (Q16_GPU_QUEUE, Q16_CPU_QUEUE)
)
# A task routed nowhere below (one added later) goes to cpu, never to a queue nobody reads.
CELERY_TASK_DEFAULT_QUEUE = Q16_CPU_QUEUE
# By the task names curation/dispatch.py sends (tests/ops/test_routing.py checks each has one).
CELERY_TASK_ROUTES = {
    "worker.tasks.score_chunk": {"queue": Q16_GPU_QUEUE},
    "worker.tasks.rescore_run": {"queue": Q16_CPU_QUEUE},
    "worker.tasks.rescore_chunks": {"queue": Q16_CPU_QUEUE},
    "worker.tasks.import_dataset": {"queue": Q16_CPU_QUEUE},
    "worker.tasks.index_chunk": {"queue": Q16_CPU_QUEUE},
    "worker.tasks.run_prompt_job": {"queue": Q16_CPU_QUEUE},
    "worker.tasks.build_export": {"queue": Q16_CPU_QUEUE},
    "worker.tasks.match_hash_bank": {"queue": Q16_CPU_QUEUE},
    "worker.tasks.match_dataset_banks": {"queue": Q16_CPU_QUEUE},
    "worker.tasks.recover_stalled_work": {"queue": Q16_CPU_QUEUE},
}
# Task events, so that Flower can follow the workers (docs/deployment.md): workers report each
# task's start and end, senders each sent task. Q16_CELERY_EVENTS=false turns both off.
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("Q16_CELERY_EVENTS", True)
CELERY_TASK_SEND_SENT_EVENT = env_bool("Q16_CELERY_EVENTS", True)

# --- Operations: health and metrics (config/probes.py, config/metrics.py) --------------
# /metrics answers a request carrying `Authorization: Bearer <Q16_METRICS_TOKEN>` (when set),
# or one from an address in Q16_METRICS_ALLOWED_NETWORKS that came through no proxy (no
# X-Forwarded-For, X-Real-IP or Forwarded header: behind a reverse proxy on the same host,
# every public request comes from loopback). Default: loopback only, no token.
Q16_METRICS_TOKEN = os.environ.get("Q16_METRICS_TOKEN", "")
if Q16_METRICS_TOKEN and len(Q16_METRICS_TOKEN) < 16:
    raise ImproperlyConfigured(
        "Q16_METRICS_TOKEN must be at least 16 characters (e.g. python3 -c "
        '"import secrets; print(secrets.token_urlsafe(32))"), or empty for none.'
    )
Q16_METRICS_ALLOWED_NETWORKS = env_list("Q16_METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
for _network in Q16_METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"Q16_METRICS_ALLOWED_NETWORKS: {exc}") from None
# Workers' images per second are measured over the chunks they finished this many seconds back.
Q16_METRICS_RATE_WINDOW = env_int("Q16_METRICS_RATE_WINDOW", 600)
if Q16_METRICS_RATE_WINDOW < 1:
    raise ImproperlyConfigured("Q16_METRICS_RATE_WINDOW must be positive (seconds).")

# --- Q16 engine ------------------------------------------------------------------------
Q16_CLIP_MODEL = os.environ.get("Q16_CLIP_MODEL", "ViT-B-16")
Q16_CLIP_PRETRAINED = os.environ.get("Q16_CLIP_PRETRAINED", "openai")
# A local checkpoint wins over the pretrained tag (machines without internet).
Q16_CLIP_CHECKPOINT = os.environ.get("Q16_CLIP_CHECKPOINT", "")
Q16_DEVICE = os.environ.get("Q16_DEVICE", "auto")
# Image-encoder backend: "torch", or on CPU "openvino" / "openvino-bf16" / "openvino-int8"
# (extra cpu-fast), or "auto": the fastest one within the fidelity bounds on this CPU
# (measured once by `manage.py choose_backend` or a worker, see worker.engine.backend_choice).
Q16_BACKEND = os.environ.get("Q16_BACKEND", "torch")
Q16_BATCH_SIZE = env_int("Q16_BATCH_SIZE", 64)
# 0: the default (every core on a CPU, cores-1 beside a GPU; see worker.engine.pipeline).
Q16_DECODE_WORKERS = env_int("Q16_DECODE_WORKERS", 0)
Q16_CHUNK_SIZE = env_int("Q16_CHUNK_SIZE", 2048)
# Rescoring from cached embeddings encodes nothing, so its chunks can be far larger.
Q16_RESCORE_CHUNK_SIZE = env_int("Q16_RESCORE_CHUNK_SIZE", 20000)
# Import chunks (curation.services.indexing): files or URLs per chunk, and shards per chunk
# (a WebDataset shard holds thousands of samples). Each chunk is one index_chunk task.
Q16_INDEX_CHUNK_SIZE = env_int("Q16_INDEX_CHUNK_SIZE", 1000)
Q16_INDEX_SHARDS_PER_CHUNK = env_int("Q16_INDEX_SHARDS_PER_CHUNK", 1)
# A rescore run is split into this many Celery tasks (ranges of its chunks, so of its
# shards) that workers of the cpu queue take in parallel; 1 rescores in one task.
Q16_RESCORE_PARALLEL = env_int("Q16_RESCORE_PARALLEL", 2)
Q16_DEFAULT_THRESHOLD = env_float("Q16_DEFAULT_THRESHOLD", 0.5)
# Short, renewed by the open review page (a heartbeat every half lease): a crashed tab's items
# come back to the queue within this many seconds.
Q16_LEASE_SECONDS = env_int("Q16_LEASE_SECONDS", 120)
# Reviewer protection (reviewer/services/exposure.py): the global defaults, which an admin may
# override per reviewer on the Exposure page. 0 turns the cap or the enforced break off.
# The cap counts different images revealed per day (server TIME_ZONE); the break is due after
# Q16_EXPOSURE_BREAK_AFTER_MINUTES of reviewing without a pause of Q16_EXPOSURE_BREAK_MINUTES.
Q16_EXPOSURE_DAILY_CAP = env_int("Q16_EXPOSURE_DAILY_CAP", 0)
Q16_EXPOSURE_BREAK_AFTER_MINUTES = env_int("Q16_EXPOSURE_BREAK_AFTER_MINUTES", 0)
Q16_EXPOSURE_BREAK_MINUTES = env_int("Q16_EXPOSURE_BREAK_MINUTES", 10)
# Gaps between a reviewer's actions longer than this are pauses, not time reviewing (statistics).
Q16_EXPOSURE_IDLE_MINUTES = env_int("Q16_EXPOSURE_IDLE_MINUTES", 5)
# The longest a single reveal is recorded for (a reveal whose end never arrived counts this long).
Q16_EXPOSURE_MAX_REVEAL_SECONDS = env_int("Q16_EXPOSURE_MAX_REVEAL_SECONDS", 600)
if min(Q16_EXPOSURE_DAILY_CAP, Q16_EXPOSURE_BREAK_AFTER_MINUTES) < 0:
    raise ImproperlyConfigured("The exposure cap and break settings must be 0 (off) or positive.")
if min(Q16_EXPOSURE_BREAK_MINUTES, Q16_EXPOSURE_IDLE_MINUTES, Q16_EXPOSURE_MAX_REVEAL_SECONDS) < 1:
    raise ImproperlyConfigured(
        "Q16_EXPOSURE_BREAK_MINUTES, Q16_EXPOSURE_IDLE_MINUTES and "
        "Q16_EXPOSURE_MAX_REVEAL_SECONDS must be positive."
    )
# Folders an admin may import from on the server (comma-separated); unset or empty: only
# <Q16_DATA_DIR>/imports. The data directory (database, media, secret key) except that folder,
# /proc, /sys and /dev are refused whatever this says (curation/services/datasets.py).
Q16_IMPORT_ROOTS = env_list("Q16_IMPORT_ROOTS", "") or [str(DATA_DIR / "imports")]
# URL prefixes remote sources (WebDataset shards, fsspec URLs such as s3://bucket/prefix/) may
# come from (comma-separated); empty: no remote imports. fsspec reads its own credentials.
Q16_IMPORT_URL_PREFIXES = env_list("Q16_IMPORT_URL_PREFIXES", "")
# Where cleaned copies of datasets may be written (labels/exports/cleaned.py): folders on the
# server (comma-separated; unset: <Q16_DATA_DIR>/cleaned) and URL prefixes (s3://bucket/...;
# empty: none). fsspec reads its own credentials.
Q16_EXPORT_ROOTS = env_list("Q16_EXPORT_ROOTS", "") or [str(DATA_DIR / "cleaned")]
Q16_EXPORT_URL_PREFIXES = env_list("Q16_EXPORT_URL_PREFIXES", "")
Q16_MAX_IMAGE_BYTES = env_int("Q16_MAX_IMAGE_BYTES", 50 * 2**20)
Q16_MAX_IMAGE_PIXELS = env_int("Q16_MAX_IMAGE_PIXELS", 100_000_000)
Q16_MAX_ARCHIVE_BYTES = env_int("Q16_MAX_ARCHIVE_BYTES", 20 * 2**30)
Q16_MAX_ARCHIVE_RATIO = env_int("Q16_MAX_ARCHIVE_RATIO", 200)
Q16_MAX_ARCHIVE_ENTRIES = env_int("Q16_MAX_ARCHIVE_ENTRIES", 2_000_000)
# Hash banks (curation/services/banks.py): the largest bank file (upload or command), its
# most entries, and the match distances. pHash: 64 bits, a re-encoded or resized copy is
# usually within 4, unrelated images rarely within 10; 6 is the near-duplicate default too.
# PDQ: 256 bits, 31 is the threshold PDQ's authors and HMA use; hashes of quality < 50
# (flat, featureless images) match too much and are left out.
Q16_MAX_BANK_BYTES = env_int("Q16_MAX_BANK_BYTES", 64 * 2**20)
Q16_MAX_BANK_ENTRIES = env_int("Q16_MAX_BANK_ENTRIES", 2_000_000)
Q16_BANK_PHASH_DISTANCE = env_int("Q16_BANK_PHASH_DISTANCE", 6)
Q16_BANK_PDQ_DISTANCE = env_int("Q16_BANK_PDQ_DISTANCE", 31)
Q16_BANK_PDQ_MIN_QUALITY = env_int("Q16_BANK_PDQ_MIN_QUALITY", 50)
# URL-list imports (curation/services/url_import.py): only public http(s) addresses.
Q16_MAX_URLS = env_int("Q16_MAX_URLS", 100_000)
Q16_URL_CONNECT_TIMEOUT = env_float("Q16_URL_CONNECT_TIMEOUT", 5.0)
Q16_URL_TOTAL_TIMEOUT = env_float("Q16_URL_TOTAL_TIMEOUT", 30.0)
Q16_URL_MAX_REDIRECTS = env_int("Q16_URL_MAX_REDIRECTS", 5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
