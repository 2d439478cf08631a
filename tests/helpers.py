"""Assertions and contexts shared by the test modules."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http import HTTPStatus
from threading import Barrier

API = "/api/v1"
ENVELOPE_KEYS = {"code", "status", "error", "message", "errors"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def call(client, method: str, path: str, headers: dict | None = None, body=None):
    """A test-client request to `API + path` with a JSON body."""
    return client.open(f"{API}{path}", method=method, headers=headers or {}, json=body)


def fire(count: int, call):
    """Run `call(i)` for i in range(count) from `count` threads released at the same moment."""
    barrier = Barrier(count)

    def run(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


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


def refuse_each(client, method: str, url: str, headers: dict, cases, snapshot) -> None:
    """Send every (body, field) case: each is a 422 naming that field, and `snapshot()` (the
    state the request could change) is the same after it as before."""
    before = snapshot()
    for body, field in cases:
        response = client.open(url, method=method, json=body, headers=headers)
        assert_field_error(response, field, note=body)
        assert snapshot() == before, body


@contextmanager
def fresh_limit_window(redis_url: str, lowest: int, span: int):
    """A rate-limit window (in seconds, lowest … lowest + span) no other test uses, a Redis
    connection, and the pattern of its keys: (window, connection, pattern).

    flask-limiter keeps its key prefix from the first app it was bound to, so a test's keys are
    told apart by the limit itself ("3 per <window> second"); Redis outlives a test, so they are
    removed before and after.
    """
    import uuid

    import redis

    window = lowest + uuid.uuid4().int % span
    connection = redis.Redis.from_url(redis_url)
    pattern = f"*/{window}/second"

    def clean():
        for key in connection.scan_iter(match=pattern):
            connection.delete(key)

    clean()
    try:
        yield window, connection, pattern
    finally:
        clean()
        connection.close()

