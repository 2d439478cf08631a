"""Page forms: parsed by the API's own schemas, errors shown in words, each form used once.

`parse(schema)` reads `request.form` through the same marshmallow schema the API uses, so a
field is valid on a page exactly when it is valid in the API. Empty optional inputs count as
not given (a browser sends "" for every blank field).

`once()` makes a creating form (post a wish, redeem, confirm) work exactly once: the form
carries a token made when it was shown; the first submit claims it (a row in the same table
as the API's Idempotency-Key, in the request's transaction) and records where its result is;
a second submit — a double tap, a reload, a retry — is answered with a 303 to that result.
Concurrent submits queue on the unique key (PostgreSQL) or the write lock (SQLite).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass, field

import marshmallow as ma
import sqlalchemy as sa
from flask import request
from flask_jwt_extended import current_user

from app import idempotency
from app.errors import _localise_field_errors as localise_field_errors
from app.extensions import db
from app.idempotency import IdempotencyRecord
from app.web.session import CSRF_FIELD

FORM_TOKEN = "form_token"
_NOT_DATA = {CSRF_FIELD, FORM_TOKEN, "next"}
_DIGITS = re.compile(r"-?[0-9]{1,15}", re.ASCII)


@dataclass
class Form:
    """What was typed (to show again) and what is wrong with it, field by field."""

    values: dict = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, name: str, message: str) -> Form:
        self.errors.setdefault(name, []).append(message)
        return self

    @property
    def ok(self) -> bool:
        return not self.errors


def typed(names: list[str] | None = None) -> dict:
    return {k: v for k, v in request.form.items() if k not in _NOT_DATA
            and (names is None or k in names)}


def parse(schema: ma.Schema, *, keep: list[str] | None = None) -> tuple[dict | None, Form]:
    """Load `request.form` with `schema`: (data, form) — data is None when a field is wrong."""
    values = typed()
    given = {k: v for k, v in values.items() if v.strip() != "" and (keep is None or k in keep)}
    given = {k: _number(schema, k, v) for k, v in given.items()}
    form = Form(values=values)
    try:
        return schema.load(given), form
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_": error.messages}
        for name, texts in localise_field_errors(messages).items():
            for text in texts if isinstance(texts, list) else [str(texts)]:
                form.error(name, text if isinstance(text, str) else str(text))
        return None, form


def _number(schema: ma.Schema, name: str, value: str):
    """A browser sends every value as text: digits for an integer field (StrictInteger refuses
    "5") become the number; anything else stays text, for the schema to refuse in words."""
    return number(value) if isinstance(schema.fields.get(name), ma.fields.Integer) else value


def number(value):
    """Typed digits (full-width ones too: ５) as an int; anything else unchanged."""
    text = unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else value
    if isinstance(text, str) and _DIGITS.fullmatch(text):
        return int(text)
    return value


def new_form_token() -> str:
    return secrets.token_urlsafe(24)


def used_form(token: str | None) -> str | None:
    """If this form token was already used, where its result is (a local URL)."""
    if not token:
        return None
    record = _find(token)
    return record.body if record is not None and record.status_code == 303 else None


def claim_form(token: str | None) -> str | None:
    """Claim the form token for this submit; a URL to redirect to if it was used already."""
    if not token or len(token) > 58:
        return None  # a form without a token still works (it just isn't protected)
    record, mine = idempotency.claim(_key(token), "form")
    return None if mine else (record.body or "/")


def complete_form(token: str | None, result_url: str) -> None:
    """Record where the first submit's result is (same transaction as the result itself)."""
    record = _find(token) if token else None
    if record is not None:
        record.status_code, record.body = 303, result_url
        db.session.flush()


def _key(token: str) -> str:
    return f"form:{token}"  # tokens of up to 58 characters: the key fits its 64


def _find(token: str) -> IdempotencyRecord | None:
    return db.session.scalar(sa.select(IdempotencyRecord).where(
        IdempotencyRecord.user_id == current_user.id, IdempotencyRecord.key == _key(token)))
