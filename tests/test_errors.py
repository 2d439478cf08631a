"""The error contract: every failure is the one JSON envelope, in the caller's language.

`{"code", "status", "error", "message", "errors"?}` with Content-Type application/json, never
HTML and never a stack trace; `message` is Chinese by default and English with
`Accept-Language: en`.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from http import HTTPStatus

import pytest
import sqlalchemy as sa

from app.extensions import db

CJK = re.compile(r"[\u4e00-\u9fff]")
LEAK_MARKERS = ("Traceback", 'File "', "<html", "<!doctype", "Werkzeug", "sqlalchemy",
                "RuntimeError", "secret detail")
REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ENGLISH = ["en", "en-US", "en;q=0.9", "en-GB,en;q=0.8", "fr-FR, en;q=0.5"]


def assert_envelope(response, status: int, error: str | None = None) -> dict:
    """The response is our envelope with this status (and slug); returns the body."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/json", (response.mimetype, text)
    body = response.get_json()
    assert isinstance(body, dict), text
    assert {"code", "status", "error", "message"} <= set(body), body
    assert set(body) <= {"code", "status", "error", "message", "errors"}, body
    assert body["code"] == status
    assert body["status"] == HTTPStatus(status).phrase
    assert isinstance(body["error"], str) and re.fullmatch(r"[a-z][a-z0-9_]*", body["error"])
    assert isinstance(body["message"], str) and body["message"].strip()
    if error is not None:
        assert body["error"] == error, body
    for marker in LEAK_MARKERS:
        assert marker.lower() not in text.lower(), (marker, text)
    return body


def assert_chinese(text: str) -> None:
    assert CJK.search(text), f"expected Chinese text, got {text!r}"


def assert_english(text: str) -> None:
    assert not CJK.search(text), f"expected English text, got {text!r}"
    assert re.search(r"[A-Za-z]{3}", text), text


def all_field_messages(errors) -> list[str]:
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in all_field_messages(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in all_field_messages(value)]
    return [errors] if isinstance(errors, str) else []


# --- routing -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/no-such-page", "/api/v1/no-such-thing", "/api/v1/",
                                  "/api/v1/communities/abc", "/api/v1/auth/register/extra"])
def test_unknown_route_is_a_json_404(client, path):
    body = assert_envelope(client.get(path), 404, "not_found")
    assert_chinese(body["message"])


def test_unknown_route_in_english(client):
    body = assert_envelope(client.get("/api/v1/nope", headers={"Accept-Language": "en"}), 404,
                           "not_found")
    assert_english(body["message"])


def test_missing_object_is_a_json_404(client, world, factory):
    response = client.get("/api/v1/communities/987654", headers=factory.headers(world.organiser))
    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", LOGIN, {"POST"}),
    ("GET", REGISTER, {"POST"}),
    ("PUT", "/api/v1/me", {"GET"}),
    ("POST", "/healthz", {"GET"}),
])
def test_wrong_method_is_a_json_405_with_allow(client, method, path, allowed):
    response = client.open(path, method=method)
    body = assert_envelope(response, 405, "method_not_allowed")
    assert method in body["message"]
    assert_chinese(body["message"])
    allow = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= allow, response.headers
    assert method not in allow


def test_head_and_options(client):
    head = client.head("/healthz")
    assert head.status_code == 200
    assert head.get_data() == b""

    missing = client.head("/api/v1/nope")
    assert missing.status_code == 404
    assert missing.mimetype == "application/json"
    assert missing.get_data() == b""

    options = client.options(LOGIN)
    assert options.status_code == 200
    assert "POST" in options.headers["Allow"]

    # OPTIONS needs no token (CORS preflights carry none) and reveals no data.
    options = client.options("/api/v1/me")
    assert options.status_code == 200
    assert {"GET", "HEAD"} <= {m.strip() for m in options.headers["Allow"].split(",")}

    assert_envelope(client.options("/api/v1/nope"), 404, "not_found")


# --- bodies --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"{bad json", b'{"phone": "138', b"{'phone': 1}",
                                 b'{"phone": "\xff\xfe"}', b"[" * 200_000 + b"]" * 200_000])
def test_malformed_json_is_400_invalid_json(client, raw):
    response = client.post(REGISTER, data=raw, content_type="application/json")
    body = assert_envelope(response, 400, "invalid_json")
    assert_chinese(body["message"])


def test_malformed_json_in_english(client):
    response = client.post(REGISTER, data=b"{", content_type="application/json",
                           headers={"Accept-Language": "en"})
    assert_english(assert_envelope(response, 400, "invalid_json")["message"])


@pytest.mark.parametrize("raw", [b"[]", b'[{"phone": "13800138000"}]', b'"13800138000"', b"42",
                                 b"null", b"true"])
def test_body_that_is_not_an_object_is_a_4xx(client, raw):
    response = client.post(REGISTER, data=raw, content_type="application/json")
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    body = assert_envelope(response, response.status_code)
    assert_chinese(body["message"])
    for text in all_field_messages(body.get("errors")):
        assert_chinese(text)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          None])
def test_json_sent_with_another_content_type_is_a_clear_4xx(client, content_type):
    raw = b'{"phone": "13800138000", "password": "long enough 1", "display_name": "x"}'
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(REGISTER, data=raw, headers=headers)
    body = assert_envelope(response, 415, "unsupported_media_type")
    assert "application/json" in body["message"]
    assert_chinese(body["message"])
    english = client.post(REGISTER, data=raw, headers={**headers, "Accept-Language": "en"})
    assert_english(assert_envelope(english, 415, "unsupported_media_type")["message"])
    with client.application.app_context():
        assert db.session.scalar(sa.text("SELECT count(*) FROM users")) == 0


def test_body_over_one_mebibyte_is_413(client):
    raw = b'{"display_name": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(REGISTER, data=raw, content_type="application/json")
    body = assert_envelope(response, 413, "payload_too_large")
    assert_chinese(body["message"])
    english = client.post(REGISTER, data=raw, content_type="application/json",
                          headers={"Accept-Language": "en"})
    assert_english(assert_envelope(english, 413, "payload_too_large")["message"])


def test_body_just_under_the_limit_is_read(client):
    # Not refused for size: it is read and judged on its fields.
    raw = b'{"display_name": "' + b"x" * (1024 * 1024 - 100) + b'"}'
    response = client.post(REGISTER, data=raw, content_type="application/json")
    assert_envelope(response, 422, "validation_error")


# --- validation ----------------------------------------------------------------------------

BAD_REGISTRATION = {
    "phone": "12345",
    "password": "short",
    "display_name": "长" * 40,
    "role": "admin",
}


def test_field_validation_is_422_with_a_message_per_field_in_chinese(client):
    body = assert_envelope(client.post(REGISTER, json=BAD_REGISTRATION), 422, "validation_error")
    assert_chinese(body["message"])
    errors = body["errors"]
    assert set(errors) == {"phone", "password", "display_name", "role"}, errors
    for field, messages in errors.items():
        assert isinstance(messages, list) and messages, (field, messages)
        for text in messages:
            assert_chinese(text)
    assert any("8" in text and "128" in text for text in errors["password"]), errors
    assert any("32" in text for text in errors["display_name"]), errors


@pytest.mark.parametrize("language", ENGLISH)
def test_field_validation_in_english(client, language):
    response = client.post(REGISTER, json=BAD_REGISTRATION, headers={"Accept-Language": language})
    body = assert_envelope(response, 422, "validation_error")
    assert_english(body["message"])
    assert set(body["errors"]) == {"phone", "password", "display_name", "role"}
    for text in all_field_messages(body["errors"]):
        assert_english(text)
    assert body["errors"]["role"] == ["Unknown field."]


@pytest.mark.parametrize("payload", [
    {},
    {"phone": 13800138000, "password": None, "display_name": ["x"]},
    {"phone": "13800138000", "password": "long enough 1", "display_name": "a\u0007b"},
    {"phone": "13800138000", "password": "long enough 1", "display_name": "   "},
])
def test_standard_field_messages_are_translated(client, payload):
    body = assert_envelope(client.post(REGISTER, json=payload), 422, "validation_error")
    assert body["errors"]
    for text in all_field_messages(body["errors"]):
        assert_chinese(text)


@pytest.mark.parametrize("language", ["zh-CN", "zh", "zh-CN,zh;q=0.9,en;q=0.8", "fr", "", "*"])
def test_chinese_is_the_default(client, language):
    headers = {"Accept-Language": language} if language else {}
    body = assert_envelope(client.post(REGISTER, json={}, headers=headers), 422)
    assert_chinese(body["message"])
    for text in all_field_messages(body["errors"]):
        assert_chinese(text)


def test_query_validation_is_422(client, world, factory):
    response = client.get("/api/v1/communities?per_page=1000&page=0",
                          headers=factory.headers(world.organiser))
    body = assert_envelope(response, 422, "validation_error")
    assert {"per_page", "page"} <= set(body["errors"]), body


def test_ids_past_the_id_range_are_4xx_not_500(client, world, factory):
    """Ids are 32-bit columns on PostgreSQL and SQLite overflows past 64 bits: a huge id in the
    path, the query or the body is "not found" or a validation error, never a driver error."""
    headers = factory.headers(world.organiser)
    cid = world.community.id
    team = client.post(f"/api/v1/communities/{cid}/teams", json={"name": "红色足印"},
                       headers=headers)
    assert team.status_code == 201, team.get_data(as_text=True)
    tid = team.get_json()["id"]
    for path in (f"/api/v1/communities/{2**31}", f"/api/v1/communities/{10**30}",
                 f"/api/v1/teams/{2**40}", f"/api/v1/teams/{2**63}"):
        assert_envelope(client.get(path, headers=headers), 404, "not_found")
    response = client.delete(f"/api/v1/communities/{cid}/members/{2**63}", headers=headers)
    assert_envelope(response, 404, "not_found")
    for path in (f"/api/v1/me/ledger?community_id={2**40}", f"/api/v1/wishes?community_id={2**40}",
                 f"/api/v1/me/ledger?community_id={cid}&after={10**25}"):
        assert_envelope(client.get(path, headers=headers), 422, "validation_error")
    for path, body in ((f"/api/v1/teams/{tid}/members", {"user_id": 2**40}),
                       (f"/api/v1/communities/{cid}/members", {"user_id": 2**40,
                                                               "role": "volunteer"}),
                       (f"/api/v1/communities/{cid}/adjustments", {"user_id": 2**40, "amount": 5,
                                                                   "reason": "测试"})):
        body = assert_envelope(client.post(path, json=body, headers=headers), 422,
                               "validation_error")
        assert "user_id" in body["errors"]


# --- auth ----------------------------------------------------------------------------------

def test_no_token_is_401(client):
    body = assert_envelope(client.get("/api/v1/me"), 401, "unauthorized")
    assert_chinese(body["message"])
    english = client.get("/api/v1/me", headers={"Accept-Language": "en-US"})
    assert_english(assert_envelope(english, 401, "unauthorized")["message"])


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer abc", "Bearer a.b.c", "Basic YTpi",
                                           "Token abc"])
def test_bad_token_is_401(client, authorization):
    assert_envelope(client.get("/api/v1/me", headers={"Authorization": authorization}), 401)


def test_expired_token_is_401_token_expired(app, client, world):
    from flask_jwt_extended import create_access_token

    with app.app_context():
        token = create_access_token(identity=str(world.volunteer.id),
                                    expires_delta=timedelta(seconds=-60),
                                    additional_claims={"fam": "whatever"})
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert_chinese(assert_envelope(response, 401, "token_expired")["message"])


def test_token_signed_with_another_key_is_401(client, world):
    import jwt as pyjwt

    token = pyjwt.encode({"sub": str(world.admin.id), "type": "access", "fam": "x", "jti": "j",
                          "exp": 4102444800}, "not-our-secret-" + "y" * 40, algorithm="HS256")
    assert_envelope(client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}), 401)


def test_refresh_token_is_not_an_access_token(client, world, factory):
    tokens = factory.tokens(world.volunteer)
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert_envelope(response, 401)
    response = client.post("/api/v1/auth/refresh",
                           headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert_envelope(response, 401)


def test_role_is_403(client, world, factory):
    # A volunteer of the community may not add members.
    response = client.post(f"/api/v1/communities/{world.community.id}/members",
                           json={"user_id": world.outsider.id, "role": "volunteer"},
                           headers=factory.headers(world.volunteer))
    body = assert_envelope(response, 403)
    assert_chinese(body["message"])
    # Only a platform admin creates communities.
    response = client.post("/api/v1/communities",
                           json={"name": "新社区", "code": "xin"},
                           headers=factory.headers(world.organiser, **{"Accept-Language": "en"}))
    assert_english(assert_envelope(response, 403, "admin_required")["message"])


def test_rate_limit_is_429_with_retry_after(make_app, world):
    client = make_app(LOGIN_RATE_LIMIT="2 per minute").test_client()
    attempt = {"phone": world.volunteer.phone, "password": "wrong password"}
    for _ in range(2):
        assert_envelope(client.post(LOGIN, json=attempt), 401, "invalid_credentials")
    time.sleep(3)  # refused later in the window: the wait is what is left of it
    response = client.post(LOGIN, json=attempt)
    body = assert_envelope(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 58
    said = int(re.search(r"\d+", body["message"]).group())
    assert abs(said - retry_after) <= 1, (said, retry_after)
    assert_chinese(body["message"])
    english = client.post(LOGIN, json=attempt, headers={"Accept-Language": "en"})
    assert_english(assert_envelope(english, 429, "rate_limited")["message"])
    assert int(english.headers["Retry-After"]) >= 1


# --- 500 -----------------------------------------------------------------------------------

def test_unhandled_exception_is_500_without_trace_but_logged(make_app, caplog):
    app = make_app()

    @app.post("/api/v1/_boom")
    def boom():
        from app.auth.models import User

        db.session.add(User(phone="13900000000", display_name="半截", password_hash="x"))
        db.session.flush()
        raise RuntimeError("secret detail")

    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        response = client.post("/api/v1/_boom")
    body = assert_envelope(response, 500, "internal_error")
    assert "errors" not in body
    assert_chinese(body["message"])
    assert "secret detail" in caplog.text
    assert "Traceback" in caplog.text and "RuntimeError" in caplog.text
    # The failed request wrote nothing.
    with app.app_context():
        assert db.session.scalar(sa.text("SELECT count(*) FROM users")) == 0

    with caplog.at_level(logging.ERROR):
        english = client.post("/api/v1/_boom", headers={"Accept-Language": "en"})
    assert_english(assert_envelope(english, 500, "internal_error")["message"])


# --- health --------------------------------------------------------------------------------

def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_with_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["database"] == "ok"


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=3",
    "sqlite:////nonexistent-xinyuan-dir/sub/x.sqlite3",
])
def test_readyz_without_database_is_503(make_app, url):
    client = make_app(SQLALCHEMY_DATABASE_URI=url).test_client()
    assert client.get("/healthz").status_code == 200  # the process is up ...
    response = client.get("/readyz")  # ... but not ready
    body = assert_envelope(response, 503, "service_unavailable")
    assert_chinese(body["message"])
    assert "127.0.0.1" not in response.get_data(as_text=True)
    assert "nonexistent" not in response.get_data(as_text=True)
    english = client.get("/readyz", headers={"Accept-Language": "en"})
    assert_english(assert_envelope(english, 503, "service_unavailable")["message"])
