"""Idempotency-Key for POSTs that create: a retried request returns the original answer.

The key is claimed first, by inserting its row in the request's transaction: a concurrent
request with the same key waits on the unique index (PostgreSQL) or the write lock (SQLite),
then finds the finished answer and replays it instead of doing the work again. A request that
fails rolls back, claim included, so the key can be retried. Keys are per user and last 24 h.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from functools import wraps

import sqlalchemy as sa
from flask import Response, request
from flask_jwt_extended import current_user
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.i18n import N_

HEADER = "Idempotency-Key"
LIFETIME = timedelta(hours=24)
DOC_PARAMETER = {
    "in": "header", "name": HEADER, "required": False,
    "description": "Retrying with the same key and body within 24 h returns the original "
                   "answer and does the work once; the same key with another body is refused "
                   "(409 idempotency_conflict). Keys are per user.",
    "schema": {"type": "string", "maxLength": 64},
}


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_records"
    __table_args__ = (sa.UniqueConstraint("user_id", "key", name="uq_idempotency_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(64))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None]
    body: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def client_key() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 64 or not key.isascii() or not key.isprintable():
        raise ValidationFailed(HEADER, N_("Idempotency-Key 须为 1–64 个可打印 ASCII 字符。"))
    return key


def _fingerprint() -> str:
    try:
        body = json.dumps(request.get_json(silent=True), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        body = request.get_data(as_text=True)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise Conflict("idempotency_conflict")
    response = Response(record.body, status=record.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _find(key: str) -> IdempotencyRecord | None:
    return db.session.scalar(sa.select(IdempotencyRecord).where(
        IdempotencyRecord.user_id == current_user.id, IdempotencyRecord.key == key))


def claim(key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Claim `key` for the current user, in the request's transaction.

    Returns (record, True) when this request now holds the key and should do the work (then
    fill in `status_code` and `body`), or (the earlier request's record, False). A concurrent
    request with the same key waits on the unique index or the write lock, then gets False.
    """
    existing = _find(key)
    if existing is not None and existing.created_at < utcnow() - LIFETIME:
        db.session.delete(existing)
        db.session.flush()
        existing = None
    if existing is not None:
        return existing, False
    record = IdempotencyRecord(user_id=current_user.id, key=key, request_hash=fingerprint,
                               created_at=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(record)
            db.session.flush()
    except sa.exc.IntegrityError:
        # Another request with this key committed first.
        db.session.rollback()
        return _find(key), False
    return record, True


def idempotent(view):
    """Wrap a creating view (inside login_required) to honour the Idempotency-Key header."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = client_key()
        if key is None:
            return view(*args, **kwargs)
        fingerprint = _fingerprint()
        record, mine = claim(key, fingerprint)
        if not mine:
            return _replay(record, fingerprint)
        response = view(*args, **kwargs)
        record.status_code = response.status_code
        record.body = response.get_data(as_text=True)
        db.session.flush()
        return response

    return wrapper
