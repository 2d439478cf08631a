"""Pooled connections that the database dropped while they sat idle are replaced before a
request uses them (app.db.ping_idle_connections), without a ping before every request."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db


def _backend_of_the_pool(app) -> int:
    with app.app_context():
        pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
        db.session.remove()  # back into the pool, idle
    return pid


def _terminate(pg_url: str, pid: int) -> None:
    admin = sa.create_engine(pg_url)
    with admin.begin() as connection:
        assert connection.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def _ready(app) -> int:
    return app.test_client().get("/readyz").status_code


def test_an_idle_connection_the_database_dropped_is_replaced(pg_url, make_app):
    app = make_app(DATABASE_PING_AFTER_IDLE_SECONDS=0,
                   SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0})
    pid = _backend_of_the_pool(app)
    _terminate(pg_url, pid)
    assert _ready(app) == 200
    assert _backend_of_the_pool(app) != pid  # a fresh connection took its place


def test_without_the_ping_the_dropped_connection_fails_the_request(pg_url, make_app):
    """The check above can fail: with pinging off, the dead connection reaches the request."""
    app = make_app(DATABASE_PING_AFTER_IDLE_SECONDS=-1,
                   SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0})
    _terminate(pg_url, _backend_of_the_pool(app))
    assert _ready(app) == 503
    assert _ready(app) == 200  # the pool, told of the disconnect, starts afresh
