"""Assertions and contexts shared by the test modules."""

from __future__ import annotations

from contextlib import contextmanager
from http import HTTPStatus

ENVELOPE_KEYS = {"code", "status", "error", "message", "errors"}


def assert_error(response, status: int, error: str | None = None, note: object = "", *,
                 case: object = None) -> dict:
    """A refusal: the status and the JSON envelope {code, status, error, message, errors?},
    never HTML, never a trace. `note`/`case` (what was sent) is shown when a check fails."""
    note = case if case is not None else note
    text = response.get_data(as_text=True)
    assert response.status_code == status, (note, text)
    assert response.mimetype == "application/json", (note, text)
    body = response.get_json()
    assert body["code"] == status, (note, body)
    assert body["status"] == HTTPStatus(status).phrase, (note, body)
    assert isinstance(body["error"], str) and body["error"], (note, body)
    assert isinstance(body["message"], str) and body["message"].strip(), (note, body)
    assert set(body) <= ENVELOPE_KEYS, (note, body)
    assert "Traceback" not in text and "<html" not in text.lower(), (note, text)
    if error is not None:
        assert body["error"] == error, (note, body)
    return body


def assert_field_error(response, *fields: str, note: object = "", case: object = None) -> dict:
    """A 422 whose `errors` names each of `fields`."""
    note = case if case is not None else note
    body = assert_error(response, 422, "validation_error", note)
    for field in fields:
        assert field in body.get("errors", {}), (note, body)
    return body


@contextmanager
def reading(app):
    """A fresh app context that only reads: on SQLite a plain (deferred) BEGIN, so it never
    waits for the write lock a live server's worker or another session may hold."""
    from app.db import reset_write_intent, set_write_intent
    from app.extensions import db

    token = set_write_intent(False)
    try:
        with app.app_context():
            try:
                yield db.session
            finally:
                db.session.rollback()
                db.session.remove()
    finally:
        reset_write_intent(token)
