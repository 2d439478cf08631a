"""Database foundations: the declarative base, UTC time, and write transactions.

SQLite is used by several gunicorn workers at once, so we take over its transaction handling
(see the SQLAlchemy SQLite dialect docs, "Serializable isolation / Savepoints / Transactional
DDL"): the driver's own lazy BEGIN is switched off, and we emit BEGIN ourselves. Requests that
may write start with BEGIN IMMEDIATE, which takes the write lock up front: concurrent writers
then queue on busy_timeout instead of failing with "database is locked" when a stale read
snapshot tries to upgrade to a write.
"""

from __future__ import annotations

import contextvars
import time
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, registry
from sqlalchemy.types import TypeDecorator

# Ids are 32-bit integer columns on PostgreSQL; an id parameter past this can match nothing.
MAX_ID = 2**31 - 1

# Whether the transaction about to begin may write (decides BEGIN IMMEDIATE on SQLite).
_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=False)


# The one clock of the application: every "now" (rows' timestamps, deadlines, the ledger's
# entries) is read through utcnow(). The demo seeder lives weeks of history in order through
# the real services by setting it (`frozen_clock`); nothing else may back-date a row.
_clock: contextvars.ContextVar = contextvars.ContextVar("clock", default=None)


def utcnow() -> datetime:
    override = _clock.get()
    return override() if override is not None else datetime.now(UTC)


@contextmanager
def frozen_clock(moment):
    """Run a block with utcnow() answering `moment` (an aware datetime, or a callable giving one).

    For the demo's history and for tests; contextvars keep it to this thread of work.
    """
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("naive datetime given to frozen_clock")
        fixed = moment.astimezone(UTC)
        moment = lambda: fixed  # noqa: E731
    token = _clock.set(moment)
    try:
        yield
    finally:
        _clock.reset(token)


# Indexes with a DESC column, which Alembic's autogenerate cannot compare (migrations/env.py
# leaves them out; tests/test_openapi.py checks their SQL on both databases instead).
UNCOMPARED_INDEXES = frozenset({"ix_leaderboard_totals_rank"})


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every database (SQLite stores it naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use app.db.utcnow() or an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def set_write_intent(value: bool = True) -> contextvars.Token:
    return _write_intent.set(value)


def reset_write_intent(token: contextvars.Token) -> None:
    _write_intent.reset(token)


@contextmanager
def write_transaction(session):
    """Run a block in one write transaction (BEGIN IMMEDIATE on SQLite); commit or roll back.

    For CLI commands and scripts; requests get the same through the app's before-request hook.
    """
    token = set_write_intent(True)
    try:
        session.commit()  # end any read transaction so the next BEGIN is the write one
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        reset_write_intent(token)


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Install the connection pragmas and our own BEGIN on an SQLite engine."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


def ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Before lending a pooled connection, check it is alive, if it sat idle long enough for
    the database to have gone away meanwhile (a restart, a failover, an idle timeout).

    SQLAlchemy's pool_pre_ping asks before every checkout: a round trip per request, a tenth
    of a points read's time under load here (scripts/bench --profile points). A connection
    lent a moment ago is as alive as a ping would show; one idle for `idle_seconds` is pinged,
    and a dead one is replaced before the request sees it (DisconnectionError makes the pool
    retry with a fresh connection).
    """
    if engine.dialect.name == "sqlite" or idle_seconds < 0:
        return

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy):
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception as gone:
            raise sa.exc.DisconnectionError() from gone


_MEMOS = "xinyuan.memos"


def transaction_memo(session, name: str) -> dict:
    """A dict of answers kept for the session's current transaction: emptied when it commits
    or rolls back (a savepoint's rollback included), so nothing outlives what it read."""
    return session.info.setdefault(_MEMOS, {}).setdefault(name, {})


def forget_memo(session, name: str) -> None:
    session.info.get(_MEMOS, {}).pop(name, None)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_memos(session, *_args) -> None:
    session.info.pop(_MEMOS, None)


def dialect_name(session) -> str:
    return session.get_bind().dialect.name


def dialect_insert(dialect: str):
    """The database's own INSERT construct (it has ON CONFLICT): PostgreSQL's or SQLite's."""
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def greatest(dialect: str, a, b):
    """The larger of two values in SQL: PostgreSQL's GREATEST, SQLite's two-argument max()."""
    return sa.func.greatest(a, b) if dialect == "postgresql" else sa.func.max(a, b)


def least(dialect: str, a, b):
    """The smaller of two values in SQL: PostgreSQL's LEAST, SQLite's two-argument min()."""
    return sa.func.least(a, b) if dialect == "postgresql" else sa.func.min(a, b)


def insert_unless_present(session, model, values: dict, conflict_on: list[str]):
    """INSERT … ON CONFLICT (conflict_on) DO NOTHING, on either database: a row created
    concurrently by another worker is not an error, and the first one stays."""
    return (dialect_insert(dialect_name(session))(model).values(**values)
            .on_conflict_do_nothing(index_elements=conflict_on))


def community_settings(session, model, community_id: int, defaults: dict) -> dict:
    """A domain's settings of one community (its row, or the defaults while it has none),
    read once per transaction (a community without a row would otherwise be asked again
    each time: the identity map cannot remember an absence)."""
    known = transaction_memo(session, "community_settings")
    if (model, community_id) not in known:
        found = session.get(model, community_id)
        known[model, community_id] = (dict(defaults) if found is None
                                      else {key: getattr(found, key) for key in defaults})
    return dict(known[model, community_id])


def change_community_settings(session, model, community_id: int, defaults: dict,
                              changes: dict) -> dict:
    """Store changed settings of one community (its row made on first change); return all."""
    found = session.get(model, community_id)
    if found is None:
        found = model(community_id=community_id, **defaults)
        session.add(found)
    for key, value in changes.items():
        setattr(found, key, value)
    session.flush()
    forget_memo(session, "community_settings")
    return community_settings(session, model, community_id, defaults)


def paginate(session, statement: sa.Select, page: int, per_page: int) -> dict:
    """Run `statement` for one page and count the whole; the list envelope of the API."""
    total = session.scalar(sa.select(sa.func.count()).select_from(statement.order_by(None).subquery()))
    items = session.scalars(statement.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": items, "page": page, "per_page": per_page, "total": total}
