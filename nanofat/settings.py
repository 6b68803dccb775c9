"""Settings for the nanofat planner, read from the environment.

Every value a deployment may change comes from an environment variable (or, for secrets, a
file named by ``<NAME>_FILE``), and a bad value stops the process at start-up instead of
surfacing later as odd behaviour.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}"
    )


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_secret(name: str) -> str:
    """A secret from NAME, or from the file NAME_FILE points at (Docker/systemd secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, "")


DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off.")
    # A development key only, never used with DEBUG off.
    SECRET_KEY = "dev-only-insecure-key-nanofat-planner-not-for-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",  # login throttling (see the AXES_ block below)
    "pgtrigger",  # database triggers: append-only audit, frozen consented plans
    "planner",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After SessionMiddleware, so its answer is seen before the session is saved.
    "planner.middleware.SessionIdleTimeoutMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with the permissions kept in the session between reads (planner/security.py).
    "planner.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "planner.middleware.HtmxLoginRedirectMiddleware",
    "planner.middleware.PrivateCacheMiddleware",
    # Last, as django-axes requires: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "nanofat.urls"
WSGI_APPLICATION = "nanofat.wsgi.application"

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
                "django.template.context_processors.csp",
            ],
        },
    },
    {
        # The plan builder's regions only (planner/jinja.py says why); asked for by name.
        "NAME": "jinja2",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "planner.jinja.environment"},
    },
]

# --- Database -------------------------------------------------------------------------------
# No DATABASE_URL: an SQLite file in the project, so a fresh machine runs with nothing else.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
    )
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    _db["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django must not hold its own
    # A form's select lists its choices through QuerySet.iterator(), which on PostgreSQL opens a
    # server-side cursor: DECLARE, FETCH and CLOSE for 21 zones. No query here returns more rows
    # than fit in memory, so results come back in one round trip.
    _db["DISABLE_SERVER_SIDE_CURSORS"] = True
    _db["OPTIONS"] = {
        "pool": {
            "min_size": env_int("DB_POOL_MIN", 2),
            "max_size": env_int("DB_POOL_MAX", 8),
            "timeout": env_int("DB_POOL_TIMEOUT", 10),
        },
        # A held row lock or a runaway query answers with an error instead of hanging a worker.
        "options": (
            f"-c statement_timeout={env_int('DB_STATEMENT_TIMEOUT_MS', 10000)}"
            f" -c lock_timeout={env_int('DB_LOCK_TIMEOUT_MS', 5000)}"
        ),
    }
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["OPTIONS"] = {
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
        "transaction_mode": "IMMEDIATE",
        "timeout": 5,
        # FULL: a commit is on disk before the answer leaves, as PostgreSQL's default does. With
        # NORMAL a power cut could undo a signature the clinic was told is recorded.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "planner.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Login throttling (django-axes) ----------------------------------------------------------
# The lockout backend comes first and refuses a locked-out (username, address) pair before the
# password is checked. Failures count per username AND address together, so an attacker cannot
# lock a whole clinic out from one address, nor lock one person out from everywhere.
AUTHENTICATION_BACKENDS = [
    "planner.security.LockoutBackend",
    "planner.security.PermissionBackend",  # ModelBackend with one permission query, not two
]
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
_cool_off_minutes = env_int("LOGIN_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1 or _cool_off_minutes < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be at least 1.")
AXES_COOLOFF_TIME = timedelta(minutes=_cool_off_minutes)
AXES_RESET_ON_SUCCESS = True
# The client address is REMOTE_ADDR only: a client-sent X-Forwarded-For is never trusted.
AXES_CLIENT_IP_CALLABLE = "planner.security.client_ip"
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
AXES_LOCKOUT_CALLABLE = "planner.security.lockout_response"  # registration/locked_out.html

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "patient_list"
LOGOUT_REDIRECT_URL = "login"

# --- Sessions and cookies -------------------------------------------------------------------
# Sessions live in the database so any app server can serve any request.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 30) * 60
# The age is an inactivity timeout, not a fixed lifetime: SessionIdleTimeoutMiddleware pushes the
# expiry ahead, writing the session at most once a minute instead of on every request.
SESSION_TOUCH_SECONDS = 60
# The session keeps the user's permissions; a change of role counts from the next request
# (planner/signals.py), and anything else (raw SQL, a data migration) after this long at most.
PERMISSIONS_RECHECK_SECONDS = env_int("PERMISSIONS_RECHECK_SECONDS", 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

SECURE_HTTPS = env_bool("SECURE_HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = SECURE_HTTPS and env_bool("SECURE_SSL_REDIRECT", default=True)
# Health checks (docker, load balancers) call the app over plain HTTP: answer, do not redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if SECURE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Only the app's own origin: no inline script or style, no third-party host.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# Requests larger than this are refused before a view sees them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Static files ---------------------------------------------------------------------------
FIXTURE_DIRS = [BASE_DIR / "fixtures"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CACHES = {
    "default": {
        # Shared by every app server: no state in process memory.
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "nanofat_cache",
    }
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

# Logs name users and object ids, never patients: the formatter has no access to request bodies.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # 4xx request logs repeat the URL only; patient data is never in URLs.
        "django.request": {"level": "ERROR"},
        "django.security.DisallowedHost": {"level": "ERROR"},
        # WeasyPrint reports every layout step at INFO; only its warnings are worth a line.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # Lockouts (WARNING) only; every failed login is in the audit trail already.
        "axes": {"level": "WARNING"},
    },
}

PDF_RENDER_TIMEOUT_SECONDS = env_int("PDF_RENDER_TIMEOUT_SECONDS", 20)
# PDFs an app server renders at once (planner/render_service.py): each is a process at nice 10.
PDF_RENDER_PROCESSES = env_int("PDF_RENDER_PROCESSES", 1)

# --- Follow-up photos (planner/photos.py) ---------------------------------------------------
# Clinical photos live outside the static files and any media URL, served only by an
# authenticated, clinic-checked view. PHOTO_ROOT must not be inside STATIC_ROOT or a web root.
PHOTO_ROOT = Path(env_str("PHOTO_ROOT") or BASE_DIR / "private" / "photos")
PHOTO_MAX_BYTES = env_int("PHOTO_MAX_MB", 10) * 1024 * 1024
PHOTO_MAX_DIMENSION = env_int("PHOTO_MAX_DIMENSION", 8000)  # pixels on the longer side
if PHOTO_MAX_BYTES < 1 or PHOTO_MAX_DIMENSION < 1:
    raise ImproperlyConfigured("PHOTO_MAX_MB and PHOTO_MAX_DIMENSION must be at least 1.")
# --- end follow-up photos ---
