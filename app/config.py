"""Configuration read from environment variables.

`XINYUAN_ENV` picks the class (development, testing, production); every setting can be
overridden by an environment variable of the same name, and `create_app(config)` can override
again with a mapping, which is how the tests build isolated apps.
"""

import os
from datetime import timedelta
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"

# Shipped in the source so a newcomer can start without configuring anything; production refuses it.
DEV_SECRET = "xinyuan-development-secret-change-me-0000000000"


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class Config:
    ENV_NAME = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET)
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'xinyuan.sqlite3'}"
    )
    # Connections per process: a sync gunicorn worker holds at most one at a time, so a small
    # pool suffices; workers × instances × (size + overflow) must stay under PostgreSQL's
    # max_connections (gunicorn.conf.py explains the sum). SQLite uses neither setting.
    DATABASE_POOL_SIZE = _env_int("DATABASE_POOL_SIZE", 2)
    DATABASE_MAX_OVERFLOW = _env_int("DATABASE_MAX_OVERFLOW", 2)
    # A pooled connection idle this long is pinged before use (app.db.ping_idle_connections);
    # SQLAlchemy's pool_pre_ping, a round trip before every request, is off.
    DATABASE_PING_AFTER_IDLE_SECONDS = float(os.environ.get("DATABASE_PING_AFTER_IDLE_SECONDS",
                                                            "10"))
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": False}
    if not SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
        SQLALCHEMY_ENGINE_OPTIONS = {**SQLALCHEMY_ENGINE_OPTIONS, "pool_size": DATABASE_POOL_SIZE,
                                     "max_overflow": DATABASE_MAX_OVERFLOW}
    # How many reverse proxies stand in front of us (nginx on the same host: 1). Their
    # X-Forwarded-For/-Proto/-Host are believed, so rate limits and logs see the client; with
    # 0, those headers are ignored, since a client could write any address into them.
    TRUSTED_PROXIES = _env_int("TRUSTED_PROXIES", 0)
    SQLITE_BUSY_TIMEOUT_MS = _env_int("SQLITE_BUSY_TIMEOUT_MS", 30000)

    # JWT: the algorithm is pinned for encoding and decoding so a token can never pick its own.
    JWT_SECRET_KEY = os.environ.get("JWT_SECRET_KEY") or os.environ.get("SECRET_KEY", DEV_SECRET)
    JWT_ALGORITHM = "HS256"
    JWT_DECODE_ALGORITHMS = ["HS256"]
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(seconds=_env_int("JWT_ACCESS_SECONDS", 15 * 60))
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(seconds=_env_int("JWT_REFRESH_SECONDS", 30 * 86400))
    # The API reads tokens from the Authorization header only (app/auth/decorators.py); the
    # phone pages keep the same tokens in HttpOnly cookies (app/web/session.py), refreshed
    # silently, so the refresh cookie goes to every page path. CSRF is the pages' own double
    # submit (every page POST, login included), so flask-jwt-extended's check is off.
    JWT_TOKEN_LOCATION = ["headers", "cookies"]
    JWT_COOKIE_SAMESITE = "Lax"
    JWT_COOKIE_CSRF_PROTECT = False
    JWT_SESSION_COOKIE = False
    JWT_REFRESH_COOKIE_PATH = "/"
    JWT_ACCESS_COOKIE_NAME = "xy_access"
    JWT_REFRESH_COOKIE_NAME = "xy_refresh"
    JWT_ERROR_MESSAGE_KEY = "message"
    # A spent refresh token presented again this soon answers its successor pair (two tabs).
    REFRESH_REUSE_GRACE_SECONDS = _env_int("REFRESH_REUSE_GRACE_SECONDS", 30)

    MAX_CONTENT_LENGTH = 1024 * 1024
    JSON_SORT_KEYS = False
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    TIMEZONE = "Asia/Shanghai"

    RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # flask-limiter would send Retry-After on every response of a limited route; only a 429
    # should carry it (our error handler sets it), so its copy goes under another name.
    RATELIMIT_HEADER_RETRY_AFTER = "X-RateLimit-Retry-After"
    RATELIMIT_KEY_PREFIX = "xinyuan"
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
    REGISTER_RATE_LIMIT = os.environ.get("REGISTER_RATE_LIMIT", "5 per minute")

    API_TITLE = "Xinyuan 心愿 API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    # No OPENAPI_SWAGGER_UI_PATH: flask-smorest's Swagger UI page has an inline script the CSP
    # refuses, so app/ops/routes.py serves our own page at /api/v1/docs. Its assets come from
    # the swagger-ui-bundle package through our own route: the docs work with no internet.
    OPENAPI_SWAGGER_UI_URL = "/api/v1/docs/assets/"

    DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "xinyuan2026")


class DevelopmentConfig(Config):
    pass


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    # Tests exercise rate limiting explicitly with low limits of their own.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10000 per minute")
    REGISTER_RATE_LIMIT = os.environ.get("REGISTER_RATE_LIMIT", "10000 per minute")


class ProductionConfig(Config):
    ENV_NAME = "production"


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_class() -> type[Config]:
    name = os.environ.get("XINYUAN_ENV", "development").strip().lower()
    if name not in CONFIGS:
        raise RuntimeError(f"XINYUAN_ENV must be one of {', '.join(CONFIGS)}, not {name!r}")
    return CONFIGS[name]


def check_production_safety(config) -> None:
    """Refuse to run production on the development secret or a short one."""
    if config.get("ENV_NAME") != "production":
        return
    for key in ("SECRET_KEY", "JWT_SECRET_KEY"):
        value = config.get(key) or ""
        if value == DEV_SECRET or len(value) < 32:
            raise RuntimeError(
                f"{key} must be set to a private random value of at least 32 characters "
                "in production (XINYUAN_ENV=production); refusing to start."
            )

# Uploads (report photos): where the local-disk store keeps files, and the largest photo body.
Config.UPLOAD_DIR = os.environ.get("UPLOAD_DIR", str(INSTANCE_DIR / "uploads"))
Config.MAX_UPLOAD_BYTES = _env_int("MAX_UPLOAD_BYTES", 10 * 1024 * 1024)


def _env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


# Webhooks (app/notifications/delivery.py). Only public addresses are connected to, unless a
# network is allowlisted here (CIDRs, comma-separated; the tests allowlist 127.0.0.1/32).
Config.WEBHOOK_ALLOWED_NETWORKS = _env_list("WEBHOOK_ALLOWED_NETWORKS", "")
# Seconds before each retry (±WEBHOOK_JITTER); after the last the delivery is given up.
Config.WEBHOOK_RETRY_SCHEDULE = [float(s) for s in _env_list(
    "WEBHOOK_RETRY_SCHEDULE", "10,60,300,1800,7200,21600,43200,86400")]
Config.WEBHOOK_JITTER = float(os.environ.get("WEBHOOK_JITTER", "0.2"))
Config.WEBHOOK_TIMEOUT = float(os.environ.get("WEBHOOK_TIMEOUT", "5"))
# How long a worker's claim on a delivery lasts before another worker may take it again.
Config.WEBHOOK_LEASE_SECONDS = _env_int("WEBHOOK_LEASE_SECONDS", 60)
# Seconds between two messages to one group robot (WeCom and DingTalk take about 20 a minute).
Config.WEBHOOK_ROBOT_SPACING = float(os.environ.get("WEBHOOK_ROBOT_SPACING", "3"))
