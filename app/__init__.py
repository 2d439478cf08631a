"""Xinyuan 心愿: micro-wishes, volunteers and the 心愿积分制 points ledger."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from app.body import check_json_body
from app.config import check_production_safety, config_class
from app.db import MAX_ID, configure_sqlite, ping_idle_connections, set_write_intent
from app.errors import register_error_handlers
from app.extensions import api, db, jwt, limiter, migrate
from app.ops.request_id import init_request_id
from app.security import register_security_headers

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class IdConverter(IntegerConverter):
    """`<int:…>` in our URLs is an id: a number past any id is simply not found (404), instead
    of overflowing the database driver (a 500)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def create_app(config: Mapping | type | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.url_map.converters["int"] = IdConverter
    load_config(app, config)
    trust_proxies(app)
    init_request_id(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_request_hooks(app)
    register_security_headers(app)
    register_commands(app)
    return app


def load_config(app: Flask, config: Mapping | type | None) -> None:
    app.config.from_object(config_class())
    if isinstance(config, Mapping):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    check_production_safety(app.config)
    app.json.ensure_ascii = False  # Chinese stays readable in every JSON body
    app.json.sort_keys = False
    if not app.debug:
        logging.basicConfig(level=logging.INFO)


def trust_proxies(app: Flask) -> None:
    # Behind n proxies the client is the n-th address from the right of X-Forwarded-For; the
    # rate limiter and the logs then see it instead of the proxy's.
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)


def register_extensions(app: Flask) -> None:
    from app.auth.tokens import init_tokens
    from app.i18n import init_i18n

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    jwt.init_app(app)
    init_tokens(app)
    limiter.init_app(app)
    init_i18n(app)
    api.init_app(app, spec_kwargs={"info": {"description": _API_DESCRIPTION}})
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    with app.app_context():
        configure_sqlite(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
        ping_idle_connections(db.engine, app.config["DATABASE_PING_AFTER_IDLE_SECONDS"])


def register_blueprints(app: Flask) -> None:
    from app.activities.routes import blp as activities_blp
    from app.auth.routes import blp as auth_blp
    from app.communities.routes import blp as communities_blp
    from app.exports.routes import blp as exports_blp
    from app.ledger.routes import blp as ledger_blp
    from app.notifications.routes import blp as notifications_blp
    from app.notifications.webhook_routes import blp as webhooks_blp
    from app.ops.routes import bp as ops_bp
    from app.reports.routes import blp as reports_blp
    from app.stats.routes import blp as stats_blp
    from app.store.routes import blp as store_blp
    from app.web import register_pages
    from app.wishes.routes import blp as wishes_blp

    api.register_blueprint(auth_blp)
    api.register_blueprint(communities_blp)
    api.register_blueprint(ledger_blp)
    api.register_blueprint(wishes_blp)
    api.register_blueprint(store_blp)
    api.register_blueprint(reports_blp)
    api.register_blueprint(activities_blp)
    api.register_blueprint(stats_blp)
    api.register_blueprint(exports_blp)
    api.register_blueprint(notifications_blp)
    api.register_blueprint(webhooks_blp)
    app.register_blueprint(ops_bp)
    register_pages(app)


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def declare_write_intent():
        # Requests that may write take SQLite's write lock when their transaction begins.
        set_write_intent(request.method not in SAFE_METHODS)

    app.before_request(check_json_body)

    @app.teardown_request
    def forget_write_intent(_error):
        # So work after a request in the same thread (tests, CLI) starts with a plain BEGIN.
        set_write_intent(False)

    @app.after_request
    def commit_session(response):
        # The request commits once, and only when it succeeded.
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        return response


def register_commands(app: Flask) -> None:
    from app.cli import register

    register(app)


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


_API_DESCRIPTION = """\
心愿 (Xinyuan) runs a neighbourhood's micro-wish and volunteer-points scheme.

* Authenticate with `POST /api/v1/auth/login`, then send `Authorization: Bearer <access_token>`.
* Errors are always JSON: `{"code", "status", "error", "message", "errors"}`; `error` is a stable
  slug, `message` is Chinese by default and English with `Accept-Language: en`.
* Lists take `?page=&per_page=` (max 100) and answer `{"items", "page", "per_page", "total"}`.
* Timestamps are ISO 8601 in Asia/Shanghai (+08:00).
"""
