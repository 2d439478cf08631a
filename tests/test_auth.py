"""Accounts and tokens (issue #2): register, log in, JWT pinning, expiry, refresh rotation with
reuse detection, logout across instances, /me, rate limits, and hostile input.

Everything goes through HTTP; the database is only read, to prove what was (not) written.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import sqlalchemy as sa

from app.extensions import db
from tests.conftest import PASSWORD, TEST_SECRET
from tests.helpers import assert_error, bearer, fresh_limit_window

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"

PHONE = "13800138000"
NAME = "王阿姨"
CJK = re.compile(r"[\u4e00-\u9fff]")
USER_KEYS = {"id", "phone", "display_name", "is_admin", "created_at"}
EN = {"Accept-Language": "en"}


# --- helpers ------------------------------------------------------------------------------

def post_json(client, path, body, headers=None, **kwargs):
    """POST `body` as JSON, escaping everything to ASCII so odd code points travel intact."""
    return client.post(path, data=json.dumps(body), content_type="application/json",
                       headers=headers or {}, **kwargs)


def register(client, phone=PHONE, password=PASSWORD, display_name=NAME, **kwargs):
    return post_json(client, REGISTER,
                     {"phone": phone, "password": password, "display_name": display_name}, **kwargs)


def login(client, phone=PHONE, password=PASSWORD, **kwargs):
    return post_json(client, LOGIN, {"phone": phone, "password": password}, **kwargs)


def registered_login(client, phone=PHONE, password=PASSWORD):
    assert register(client, phone, password).status_code == 201
    response = login(client, phone, password)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def decode(token: str) -> dict:
    return pyjwt.decode(token, TEST_SECRET, algorithms=["HS256"])


def row_counts(app) -> dict:
    with app.app_context():
        return {
            table: db.session.scalar(sa.select(sa.func.count()).select_from(sa.table(table)))
            for table in ("users", "token_families", "refresh_tokens")
        }


def stored_user(app, phone):
    from app.auth.models import User

    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.phone == phone))
        if user is not None:
            db.session.expunge(user)
        return user


def family(app, family_id):
    from app.auth.models import TokenFamily

    with app.app_context():
        row = db.session.get(TokenFamily, family_id)
        db.session.expunge(row)
        return row


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict, payload: dict, key: str = TEST_SECRET,
                digest=hashlib.sha256, signature: str | None = None) -> str:
    """A JWT assembled by hand, so the header can claim any algorithm."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    if signature is None:
        signature = b64url(hmac.new(key.encode(), signing_input.encode(), digest).digest())
    return f"{signing_input}.{signature}"


def outlive_the_grace(app):
    """Move every rotation back past the window in which a spent refresh token still answers
    its successor pair (REFRESH_REUSE_GRACE_SECONDS, tests/test_auth_refresh_grace.py)."""
    from app.auth.models import RefreshToken

    with app.app_context():
        db.session.execute(sa.update(RefreshToken).where(RefreshToken.used_at.is_not(None))
                           .values(used_at=datetime.now(UTC) - timedelta(minutes=5)))
        db.session.commit()


def send(client, token, path=ME):
    if path == ME:
        return client.get(ME, headers=bearer(token))
    return client.post(path, headers=bearer(token))


# --- registration -------------------------------------------------------------------------

def test_register_creates_user_hashed_with_argon2id(app, client):
    response = register(client)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.json
    assert set(body) == USER_KEYS
    assert body["phone"] == PHONE
    assert body["display_name"] == NAME
    assert body["is_admin"] is False
    assert isinstance(body["id"], int)
    assert body["created_at"].endswith("+08:00")
    text = response.get_data(as_text=True)
    assert "password" not in text and PASSWORD not in text

    user = stored_user(app, PHONE)
    assert user.id == body["id"]
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert user.is_admin is False
    assert row_counts(app) == {"users": 1, "token_families": 0, "refresh_tokens": 0}


def test_register_hashes_are_salted(app, client):
    assert register(client, "13800138000").status_code == 201
    assert register(client, "13800138001").status_code == 201
    first, second = stored_user(app, "13800138000"), stored_user(app, "13800138001")
    assert first.password_hash != second.password_hash


def test_register_duplicate_phone_is_409_and_keeps_the_first_account(app, client):
    assert register(client).status_code == 201
    before = row_counts(app)
    for phone in (PHONE, f"  {PHONE} "):
        response = register(client, phone, "another password", "冒名者")
        body = assert_error(response, 409, "phone_registered")
        assert CJK.search(body["message"])
    assert_error(register(client, password="another password", headers=EN), 409, "phone_registered")
    assert row_counts(app) == before
    assert stored_user(app, PHONE).display_name == NAME
    assert login(client, PHONE, PASSWORD).status_code == 200
    assert login(client, PHONE, "another password").status_code == 401


ACCEPTED_NAMES = [
    ("🌸小红🌸", "🌸小红🌸"),
    ("👨‍👩‍👧 一家人❤️", "👨‍👩‍👧 一家人❤️"),  # zero-width joiners in an emoji sequence; a variation selector
    ("  李四  ", "李四"),
    ("谁" * 32, "谁" * 32),
    ("' OR 1=1 --", "' OR 1=1 --"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
]


def test_register_accepts_display_names(app, client):
    for n, (display_name, stored) in enumerate(ACCEPTED_NAMES):
        phone = f"1390000{n:04d}"
        response = register(client, phone=phone, display_name=display_name)
        assert response.status_code == 201, (display_name, response.get_data(as_text=True))
        assert response.json["display_name"] == stored
        assert stored_user(app, phone).display_name == stored
    assert row_counts(app)["users"] == len(ACCEPTED_NAMES)


def test_register_accepts_mainland_mobiles(app, client):
    for phone in ("13000000000", "19999999999", f" {PHONE}\t"):
        response = register(client, phone=phone)
        assert response.status_code == 201, (phone, response.get_data(as_text=True))
        assert response.json["phone"] == phone.strip()
        assert stored_user(app, phone.strip()) is not None


def test_register_accepts_passwords_of_8_to_128_characters(client):
    passwords = ["12345678", "p" * 128, " 密码 ' OR 1=1 --\t "]
    for n, password in enumerate(passwords):
        phone = f"1390000000{n}"
        assert register(client, phone, password).status_code == 201, password
        assert login(client, phone, password).status_code == 200, password
    # Passwords are taken as typed: not trimmed.
    assert login(client, "13900000002", passwords[2].strip()).status_code == 401


GOOD = {"phone": PHONE, "password": PASSWORD, "display_name": NAME}


def _with(**changes):
    body = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


_DROP = object()

BAD_REGISTRATIONS = {
    # missing fields
    "no phone": (_with(phone=_DROP), "phone"),
    "no password": (_with(password=_DROP), "password"),
    "no display_name": (_with(display_name=_DROP), "display_name"),
    "empty object": ({}, "phone"),
    # fields nobody may set
    "is_admin": (_with(is_admin=True), "is_admin"),
    "id": (_with(id=1), "id"),
    "password_hash": (_with(password_hash="$argon2id$v=19$m=65536,t=3,p=4$x$y"), "password_hash"),
    "created_at": (_with(created_at="2020-01-01T00:00:00+08:00"), "created_at"),
    # wrong types
    "phone as number": (_with(phone=13800138000), "phone"),
    "phone as list": (_with(phone=[PHONE]), "phone"),
    "phone null": (_with(phone=None), "phone"),
    "phone bool": (_with(phone=True), "phone"),
    "phone object": (_with(phone={"number": PHONE}), "phone"),
    "password as number": (_with(password=12345678), "password"),
    "password as list": (_with(password=[PASSWORD]), "password"),
    "password null": (_with(password=None), "password"),
    "display_name as number": (_with(display_name=123), "display_name"),
    "display_name as list": (_with(display_name=[NAME]), "display_name"),
    "display_name null": (_with(display_name=None), "display_name"),
    # lengths
    "display_name empty": (_with(display_name=""), "display_name"),
    "display_name blank": (_with(display_name="   "), "display_name"),
    "display_name 33": (_with(display_name="谁" * 33), "display_name"),
    "display_name 10000": (_with(display_name="x" * 10_000), "display_name"),
    "password 7": (_with(password="1234567"), "password"),
    "password empty": (_with(password=""), "password"),
    "password 129": (_with(password="p" * 129), "password"),
    "password 10000": (_with(password="p" * 10_000), "password"),
    "phone 10000": (_with(phone="1" * 10_000), "phone"),
    # control characters and invalid text in the display name
    "display_name NUL": (_with(display_name="王\x00阿姨"), "display_name"),
    "display_name newline": (_with(display_name="王\n阿姨"), "display_name"),
    "display_name tab": (_with(display_name="王\t阿姨"), "display_name"),
    "display_name escape": (_with(display_name="\x1b[31m王"), "display_name"),
    "display_name DEL": (_with(display_name="王\x7f"), "display_name"),
    "display_name C1": (_with(display_name="王\x85阿姨"), "display_name"),
    "display_name RTL override": (_with(display_name="\u202e王阿姨"), "display_name"),
    "display_name zero width space": (_with(display_name="王\u200b阿姨"), "display_name"),
    "display_name lone surrogate": (_with(display_name="王\ud800"), "display_name"),
    "display_name private use": (_with(display_name="王\ue000"), "display_name"),
    # a password that is not valid Unicode text cannot be hashed
    "password lone surrogate": (_with(password="abcdefgh\ud800"), "password"),
    # phones
    "phone 10 digits": (_with(phone="1380013800"), "phone"),
    "phone 12 digits": (_with(phone="138001380000"), "phone"),
    "phone starts 12": (_with(phone="12800138000"), "phone"),
    "phone starts 10": (_with(phone="10800138000"), "phone"),
    "phone starts 2": (_with(phone="23800138000"), "phone"),
    "phone letter": (_with(phone="1380013800a"), "phone"),
    "phone letters": (_with(phone="abcdefghijk"), "phone"),
    "phone empty": (_with(phone=""), "phone"),
    "phone full-width": (_with(phone="１３８００１３８０００"), "phone"),
    "phone partly full-width": (_with(phone="13８００１３８０００"), "phone"),
    "phone arabic-indic digits": (_with(phone="13٨٠٠١٣٨٠٠٠"), "phone"),
    "phone with +86": (_with(phone="+8613800138000"), "phone"),
    "phone with 86": (_with(phone="8613800138000"), "phone"),
    "phone with spaces": (_with(phone="138 0013 8000"), "phone"),
    "phone with dashes": (_with(phone="138-0013-8000"), "phone"),
    "phone inner newline": (_with(phone="1380013\n8000"), "phone"),
    "phone sql": (_with(phone="' OR 1=1 --"), "phone"),
    "phone NUL": (_with(phone="1380013800\x00"), "phone"),
    "phone lone surrogate": (_with(phone="1380013800\ud800"), "phone"),
}


def test_register_refuses_bad_input_and_writes_nothing(app, client):
    before = row_counts(app)
    for case, (body, field) in BAD_REGISTRATIONS.items():
        response = post_json(client, REGISTER, body)
        assert response.status_code == 422, (case, response.get_data(as_text=True))
        envelope = assert_error(response, 422, "validation_error")
        assert field in envelope["errors"], (case, envelope)
        assert CJK.search(envelope["message"])
        assert row_counts(app) == before, case
        if isinstance(body.get("phone"), str) and body["phone"].isprintable():
            assert stored_user(app, body["phone"].strip()) is None, case


def test_register_is_admin_true_creates_no_admin(app, client):
    response = post_json(client, REGISTER, _with(is_admin=True))
    body = assert_error(response, 422, "validation_error")
    assert list(body["errors"]) == ["is_admin"]
    assert row_counts(app)["users"] == 0
    # The same person without the forbidden field becomes an ordinary user.
    assert register(client).json["is_admin"] is False
    from app.auth.models import User

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(User.is_admin.is_(True))) == 0


NOT_OBJECTS = [
    ("[]", "application/json", 422, "validation_error"),
    ('"13800138000"', "application/json", 422, "validation_error"),
    ("null", "application/json", 422, "validation_error"),
    ("42", "application/json", 422, "validation_error"),
    ('{"phone": "13800138000", ', "application/json", 400, "invalid_json"),
    ("{bad json", "application/json", 400, "invalid_json"),
    ("phone=13800138000&password=12345678&display_name=x",
     "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
]


def test_register_refuses_bodies_that_are_not_an_object(app, client):
    before = row_counts(app)
    for raw, content_type, status, error in NOT_OBJECTS:
        response = client.post(REGISTER, data=raw, content_type=content_type)
        assert response.status_code == status, (raw, response.get_data(as_text=True))
        assert_error(response, status, error)
    assert row_counts(app) == before


def test_register_refuses_an_oversized_body(app, client):
    body = json.dumps({**GOOD, "display_name": "x" * (1024 * 1024)})
    response = client.post(REGISTER, data=body, content_type="application/json")
    assert_error(response, 413, "payload_too_large")
    assert row_counts(app)["users"] == 0


def test_register_answers_in_chinese_by_default_and_english_on_request(client):
    bad = _with(phone="12345", display_name="王\x07")
    zh = assert_error(post_json(client, REGISTER, bad), 422, "validation_error")
    assert CJK.search(zh["message"])
    assert CJK.search(zh["errors"]["phone"][0])
    assert CJK.search(zh["errors"]["display_name"][0])
    missing = assert_error(post_json(client, REGISTER, {}), 422)
    assert CJK.search(missing["errors"]["password"][0])

    en = assert_error(post_json(client, REGISTER, bad, headers=EN), 422, "validation_error")
    assert not CJK.search(en["message"]) and en["message"].isascii()
    assert not CJK.search(en["errors"]["phone"][0])
    assert en["errors"].keys() == zh["errors"].keys()

    explicit = assert_error(post_json(client, REGISTER, bad, headers={"Accept-Language": "zh-CN"}), 422)
    assert explicit == zh
    preferred = post_json(client, REGISTER, bad, headers={"Accept-Language": "fr;q=1, en;q=0.5"})
    assert assert_error(preferred, 422)["message"] == en["message"]


def test_register_never_answers_html(client):
    for response in (client.get(REGISTER), client.put(REGISTER, json=GOOD),
                     client.post(REGISTER + "/nope", json=GOOD)):
        assert response.mimetype == "application/json"
        assert response.status_code in (404, 405)
        assert_error(response, response.status_code)


# --- login --------------------------------------------------------------------------------

def test_login_returns_tokens_with_pinned_lifetimes(app, client):
    user = register(client).json
    response = login(client)
    assert response.status_code == 200
    body = response.json
    assert set(body) >= {"access_token", "refresh_token", "user"}
    assert body["user"] == user
    assert set(body["user"]) == USER_KEYS
    assert "password" not in response.get_data(as_text=True)
    assert body.get("token_type", "Bearer") == "Bearer"
    assert body.get("expires_in", 900) in (899, 900)

    now = time.time()
    access, refresh = decode(body["access_token"]), decode(body["refresh_token"])
    assert pyjwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    assert access["type"] == "access" and refresh["type"] == "refresh"
    assert access["sub"] == refresh["sub"] == str(user["id"])
    assert access["fam"] == refresh["fam"]
    assert access["jti"] != refresh["jti"]
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 30 * 86400
    assert abs(access["exp"] - (now + 15 * 60)) < 30
    assert abs(refresh["exp"] - (now + 30 * 86400)) < 30

    from app.auth.models import RefreshToken

    with app.app_context():
        stored = db.session.get(RefreshToken, refresh["jti"])
        assert stored is not None and stored.family_id == refresh["fam"] and stored.used_at is None
        assert abs(stored.expires_at.timestamp() - refresh["exp"]) < 2
    assert family(app, access["fam"]).revoked_at is None
    assert row_counts(app) == {"users": 1, "token_families": 1, "refresh_tokens": 1}

    me = client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json["id"] == user["id"]


def test_each_login_is_a_new_family(client):
    registered_login(client)
    first, second = login(client).json, login(client).json
    assert decode(first["access_token"])["fam"] != decode(second["access_token"])["fam"]


def test_login_trims_the_phone_like_register_does(client):
    register(client)
    assert login(client, phone=f" {PHONE} ").status_code == 200


def test_failed_login_never_reveals_whether_the_phone_is_registered(app, client):
    register(client)
    before = row_counts(app)
    attempts = [
        login(client, "13999999999", PASSWORD),  # unknown phone, someone's password
        login(client, PHONE, "wrong password"),  # registered phone, wrong password
        login(client, PHONE, PASSWORD + " "),
        login(client, "not a phone", PASSWORD),
        login(client, "' OR 1=1 --", "' OR 1=1 --"),
        login(client, PHONE, "' OR '1'='1"),
        login(client, "13８００１３８０００", PASSWORD),
    ]
    # Text no database can store (NUL, a lone surrogate) is refused before any lookup, for
    # every phone alike: a 422 naming the field, which says nothing about registration.
    for unstorable in ("1380013800\x00", "1380013800\ud800", PHONE + "\x00"):
        refused = assert_error(login(client, unstorable, PASSWORD), 422, "validation_error")
        assert list(refused["errors"]) == ["phone"]
    first = attempts[0]
    body = assert_error(first, 401, "invalid_credentials")
    assert CJK.search(body["message"])
    for response in attempts[1:]:
        assert response.status_code == 401
        assert response.get_data() == first.get_data()
        assert "WWW-Authenticate" not in response.headers or (
            response.headers["WWW-Authenticate"] == first.headers.get("WWW-Authenticate"))

    en_unknown = login(client, "13999999999", "x" * 8, headers=EN)
    en_wrong = login(client, PHONE, "x" * 8, headers=EN)
    assert assert_error(en_unknown, 401, "invalid_credentials")["message"].isascii()
    assert en_unknown.get_data() == en_wrong.get_data()
    assert row_counts(app) == before


_LOGIN_GOOD = {"phone": PHONE, "password": PASSWORD}
BAD_LOGINS = {
    "no phone": ({"password": PASSWORD}, "phone"),
    "no password": ({"phone": PHONE}, "password"),
    "empty object": ({}, "phone"),
    "extra field": ({**_LOGIN_GOOD, "is_admin": True}, "is_admin"),
    "extra display_name": ({**_LOGIN_GOOD, "display_name": NAME}, "display_name"),
    "phone number type": ({**_LOGIN_GOOD, "phone": 13800138000}, "phone"),
    "phone list": ({**_LOGIN_GOOD, "phone": [PHONE]}, "phone"),
    "phone null": ({**_LOGIN_GOOD, "phone": None}, "phone"),
    "password number": ({**_LOGIN_GOOD, "password": 12345678}, "password"),
    "password list": ({**_LOGIN_GOOD, "password": [PASSWORD]}, "password"),
    "password null": ({**_LOGIN_GOOD, "password": None}, "password"),
    "password bool": ({**_LOGIN_GOOD, "password": True}, "password"),
    "phone empty": ({**_LOGIN_GOOD, "phone": ""}, "phone"),
    "password empty": ({**_LOGIN_GOOD, "password": ""}, "password"),
    "phone 10000": ({**_LOGIN_GOOD, "phone": "1" * 10_000}, "phone"),
    "password 10000": ({**_LOGIN_GOOD, "password": "p" * 10_000}, "password"),
    "password lone surrogate": ({**_LOGIN_GOOD, "password": PASSWORD + "\ud800"}, "password"),
}


def test_login_refuses_bad_input_and_writes_nothing(app, client):
    register(client)
    before = row_counts(app)
    for case, (body, field) in BAD_LOGINS.items():
        response = post_json(client, LOGIN, body)
        assert response.status_code == 422, (case, response.get_data(as_text=True))
        envelope = assert_error(response, 422, "validation_error")
        assert field in envelope["errors"], (case, envelope)
    assert row_counts(app) == before


def test_login_upgrades_an_outdated_hash(app, client):
    from argon2 import PasswordHasher

    from app.auth.models import User

    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    register(client)
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.phone == PHONE))
        user.password_hash = weak
        db.session.commit()
    assert login(client).status_code == 200
    upgraded = stored_user(app, PHONE).password_hash
    assert upgraded != weak and upgraded.startswith("$argon2id$")
    assert login(client).status_code == 200
    assert login(client, password="wrong password").status_code == 401


# --- tokens: algorithm pinning and forgery ------------------------------------------------

@pytest.fixture
def session(client):
    """A registered, logged-in user: its login body plus decoded claims."""
    body = registered_login(client)
    body["access_claims"] = decode(body["access_token"])
    body["refresh_claims"] = decode(body["refresh_token"])
    return body


def test_hand_signed_hs256_token_is_accepted(client, session):
    """The control for the forgeries below: the hand-made signer produces valid tokens."""
    token = hand_signed({"alg": "HS256", "typ": "JWT"}, session["access_claims"])
    assert client.get(ME, headers=bearer(token)).status_code == 200
    crafted = pyjwt.encode({**session["access_claims"], "jti": str(uuid.uuid4())}, TEST_SECRET,
                           algorithm="HS256")
    assert client.get(ME, headers=bearer(crafted)).status_code == 200


def _forgeries(claims: dict, other_user_id: int) -> dict[str, tuple[str, str | None]]:
    header = {"alg": "HS256", "typ": "JWT"}
    good = hand_signed(header, claims)
    head, payload, signature = good.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    no_fam = {k: v for k, v in claims.items() if k != "fam"}
    return {
        "alg none": (f"{b64url(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}.",
                     "unauthorized"),
        "alg None spelled": (hand_signed({"alg": "None", "typ": "JWT"}, claims, signature=""),
                             "unauthorized"),
        "HS512 with the right secret": (
            hand_signed({"alg": "HS512", "typ": "JWT"}, claims, digest=hashlib.sha512), "unauthorized"),
        "HS384 with the right secret": (
            hand_signed({"alg": "HS384", "typ": "JWT"}, claims, digest=hashlib.sha384), "unauthorized"),
        "RS256 header, HMAC signature": (hand_signed({"alg": "RS256", "typ": "JWT"}, claims),
                                         "unauthorized"),
        "integer sub": (pyjwt.encode({**claims, "sub": int(claims["sub"])}, TEST_SECRET,
                                     algorithm="HS256"), None),
        "no fam": (pyjwt.encode(no_fam, TEST_SECRET, algorithm="HS256"), None),
        "unknown fam": (pyjwt.encode({**claims, "fam": str(uuid.uuid4())}, TEST_SECRET,
                                     algorithm="HS256"), None),
        "other secret": (pyjwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256"),
                         "unauthorized"),
        "tampered signature": (f"{head}.{payload}.{flipped}", "unauthorized"),
        "signature removed": (f"{head}.{payload}.", "unauthorized"),
        "payload swapped to another user": (
            f"{head}.{b64url(json.dumps({**claims, 'sub': str(other_user_id)}).encode())}.{signature}",
            "unauthorized"),
        "garbage": ("not.a.jwt", "unauthorized"),
        "two parts": (f"{head}.{payload}", "unauthorized"),
    }


def test_forged_access_tokens_are_refused(client, session):
    other = registered_login(client, "13900000001")
    forgeries = _forgeries(session["access_claims"], other["user"]["id"])
    for name, (token, error) in forgeries.items():
        response = client.get(ME, headers=bearer(token))
        assert response.status_code == 401, (name, response.get_data(as_text=True))
        body = assert_error(response, 401, error)
        assert body["error"] in {"unauthorized", "token_revoked"}, name
    # Forging did not disturb the real logins.
    assert client.get(ME, headers=bearer(session["access_token"])).json["id"] == session["user"]["id"]
    assert client.get(ME, headers=bearer(other["access_token"])).json["id"] == other["user"]["id"]


def test_forged_refresh_tokens_are_refused(app, client, session):
    forgeries = _forgeries(session["refresh_claims"], 999)
    for name in ("alg none", "HS512 with the right secret", "RS256 header, HMAC signature",
                 "integer sub", "no fam", "unknown fam", "tampered signature", "other secret"):
        response = client.post(REFRESH, headers=bearer(forgeries[name][0]))
        assert response.status_code == 401, (name, response.get_data(as_text=True))
        assert_error(response, 401)
    assert row_counts(app)["refresh_tokens"] == 1
    # The genuine refresh token was neither spent nor revoked by the forgeries.
    assert family(app, session["refresh_claims"]["fam"]).revoked_at is None
    assert client.post(REFRESH, headers=bearer(session["refresh_token"])).status_code == 200


def test_me_without_a_usable_token_is_401(client):
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer"},
                    {"Authorization": "Bearer "},
                    {"Authorization": "Basic MTM4MDAxMzgwMDA6cGFzc3dvcmQ="},
                    {"Authorization": "Token abc"}):
        body = assert_error(client.get(ME, headers=headers), 401, "unauthorized")
        assert CJK.search(body["message"])
        en = assert_error(client.get(ME, headers={**headers, **EN}), 401, "unauthorized")
        assert en["message"].isascii()


def test_token_of_a_deleted_user_is_refused(app, client, session):
    from app.auth.models import User

    with app.app_context():
        db.session.execute(sa.delete(User).where(User.id == session["user"]["id"]))
        db.session.commit()
    assert_error(client.get(ME, headers=bearer(session["access_token"])), 401)


# --- expiry -------------------------------------------------------------------------------

def test_expired_access_token_is_refused(client, session):
    claims = session["access_claims"]
    past = int(time.time()) - 60
    expired = pyjwt.encode({**claims, "iat": past - 900, "nbf": past - 900, "exp": past},
                           TEST_SECRET, algorithm="HS256")
    body = assert_error(client.get(ME, headers=bearer(expired)), 401, "token_expired")
    assert CJK.search(body["message"])
    assert assert_error(client.get(ME, headers={**bearer(expired), **EN}), 401,
                        "token_expired")["message"].isascii()
    # The same claims, not yet expired, pass: the refusal was about time only.
    fresh = pyjwt.encode({**claims, "exp": int(time.time()) + 60}, TEST_SECRET, algorithm="HS256")
    assert client.get(ME, headers=bearer(fresh)).status_code == 200


def test_access_token_expires_after_the_configured_lifetime(make_app, client):
    short = make_app(JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=1)).test_client()
    assert register(client).status_code == 201
    tokens = login(short).json
    claims = decode(tokens["access_token"])
    assert claims["exp"] - claims["iat"] == 1
    time.sleep(max(0.0, claims["exp"] - time.time()) + 0.1)
    for each in (short, client):  # the token carries its expiry: every instance refuses it
        assert_error(each.get(ME, headers=bearer(tokens["access_token"])), 401, "token_expired")
    # The refresh token (30 days) still works and yields a working access token from the
    # normal instance.
    fresh = client.post(REFRESH, headers=bearer(tokens["refresh_token"]))
    assert fresh.status_code == 200
    assert client.get(ME, headers=bearer(fresh.json["access_token"])).status_code == 200


def test_expired_refresh_token_is_refused_without_revoking_the_login(app, client, session):
    claims = session["refresh_claims"]
    past = int(time.time()) - 60
    expired = pyjwt.encode({**claims, "iat": past - 100, "nbf": past - 100, "exp": past},
                           TEST_SECRET, algorithm="HS256")
    assert_error(client.post(REFRESH, headers=bearer(expired)), 401, "token_expired")
    assert family(app, claims["fam"]).revoked_at is None
    assert client.post(REFRESH, headers=bearer(session["refresh_token"])).status_code == 200


# --- refresh rotation ---------------------------------------------------------------------

def test_refresh_rotates_and_reuse_revokes_the_whole_family(app, client, session):
    old_access, old_refresh = session["access_token"], session["refresh_token"]
    rotated = client.post(REFRESH, headers=bearer(old_refresh))
    assert rotated.status_code == 200, rotated.get_data(as_text=True)
    new = rotated.json
    assert {"access_token", "refresh_token"} <= set(new)
    assert new["refresh_token"] != old_refresh and new["access_token"] != old_access
    new_access, new_refresh = decode(new["access_token"]), decode(new["refresh_token"])
    assert new_access["type"] == "access" and new_refresh["type"] == "refresh"
    assert new_access["fam"] == new_refresh["fam"] == session["access_claims"]["fam"]
    assert new_access["sub"] == session["access_claims"]["sub"]
    assert new_refresh["exp"] - new_refresh["iat"] == 30 * 86400
    assert new_access["exp"] - new_access["iat"] == 15 * 60
    assert client.get(ME, headers=bearer(new["access_token"])).json["id"] == session["user"]["id"]

    # A second, unrelated login of the same user.
    other = login(client).json

    # The spent refresh token comes back, later: someone copied it. The whole login is revoked.
    outlive_the_grace(app)
    body = assert_error(client.post(REFRESH, headers=bearer(old_refresh)), 401, "token_reused")
    assert CJK.search(body["message"])
    for token, path in ((new["access_token"], ME), (new["refresh_token"], REFRESH),
                        (old_access, ME), (old_refresh, REFRESH)):
        assert_error(send(client, token, path), 401, "token_revoked")
    revoked = family(app, session["access_claims"]["fam"])
    assert revoked.revoked_at is not None and revoked.revoked_reason == "reuse"

    # The other login is untouched.
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(other["refresh_token"])).status_code == 200


def test_refresh_chain_each_token_works_once(app, client, session):
    refresh = session["refresh_token"]
    seen = {refresh}
    for _ in range(3):
        response = client.post(REFRESH, headers=bearer(refresh))
        assert response.status_code == 200
        refresh = response.json["refresh_token"]
        assert refresh not in seen
        seen.add(refresh)
        assert client.get(ME, headers=bearer(response.json["access_token"])).status_code == 200
    assert row_counts(app)["refresh_tokens"] == 4
    assert row_counts(app)["token_families"] == 1


def test_reusing_the_newest_refresh_token_also_revokes(app, client, session):
    first = client.post(REFRESH, headers=bearer(session["refresh_token"])).json
    assert client.post(REFRESH, headers=bearer(first["refresh_token"])).status_code == 200
    outlive_the_grace(app)
    assert_error(client.post(REFRESH, headers=bearer(first["refresh_token"])), 401, "token_reused")
    assert_error(client.get(ME, headers=bearer(first["access_token"])), 401, "token_revoked")


def test_access_token_cannot_refresh_and_refresh_token_cannot_authenticate(app, client, session):
    assert_error(client.post(REFRESH, headers=bearer(session["access_token"])), 401)
    assert_error(client.get(ME, headers=bearer(session["refresh_token"])), 401)
    assert_error(client.post(LOGOUT, headers=bearer(session["refresh_token"])), 401)
    assert_error(client.patch("/api/v1/me/volunteer-profile", json={"party_member": True},
                              headers=bearer(session["refresh_token"])), 401)
    # A refresh token with its type claim switched to "access" is a forgery of the signature.
    claims = {**session["refresh_claims"], "type": "access"}
    head, _payload, signature = session["refresh_token"].split(".")
    switched = f"{head}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert_error(client.get(ME, headers=bearer(switched)), 401)
    # None of the refusals spent or revoked anything.
    assert family(app, session["access_claims"]["fam"]).revoked_at is None
    assert client.get(ME, headers=bearer(session["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(session["refresh_token"])).status_code == 200


def test_refresh_needs_a_token(client):
    assert_error(client.post(REFRESH), 401, "unauthorized")


# --- logout -------------------------------------------------------------------------------

def test_logout_revokes_the_login(app, client, session):
    other = login(client).json
    response = client.post(LOGOUT, headers=bearer(session["access_token"]))
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(client.get(ME, headers=bearer(session["access_token"])), 401, "token_revoked")
    assert_error(client.post(REFRESH, headers=bearer(session["refresh_token"])), 401, "token_revoked")
    assert_error(client.post(LOGOUT, headers=bearer(session["access_token"])), 401, "token_revoked")
    revoked = family(app, session["access_claims"]["fam"])
    assert revoked.revoked_at is not None and revoked.revoked_reason == "logout"
    # Another login of the same user is unaffected, and the user can log in again.
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(other["refresh_token"])).status_code == 200
    again = login(client).json
    assert client.get(ME, headers=bearer(again["access_token"])).status_code == 200


def test_logout_also_revokes_tokens_issued_by_rotation(client, session):
    rotated = client.post(REFRESH, headers=bearer(session["refresh_token"])).json
    assert client.post(LOGOUT, headers=bearer(session["access_token"])).status_code == 204
    assert_error(client.get(ME, headers=bearer(rotated["access_token"])), 401, "token_revoked")
    assert_error(client.post(REFRESH, headers=bearer(rotated["refresh_token"])), 401, "token_revoked")


def test_logout_needs_an_access_token(client):
    assert_error(client.post(LOGOUT), 401, "unauthorized")


def test_logout_on_one_instance_is_seen_by_another(make_app):
    app_a, app_b = make_app(), make_app()
    a, b = app_a.test_client(), app_b.test_client()
    assert register(a).status_code == 201
    first = login(a).json
    second = login(b).json  # another login, through the other instance
    for each in (a, b):
        assert each.get(ME, headers=bearer(first["access_token"])).status_code == 200

    assert a.post(LOGOUT, headers=bearer(first["access_token"])).status_code == 204
    assert_error(b.get(ME, headers=bearer(first["access_token"])), 401, "token_revoked")
    assert_error(b.post(REFRESH, headers=bearer(first["refresh_token"])), 401, "token_revoked")
    assert b.get(ME, headers=bearer(second["access_token"])).status_code == 200
    assert a.get(ME, headers=bearer(second["access_token"])).status_code == 200

    # Reuse detected on B revokes on A as well.
    rotated = b.post(REFRESH, headers=bearer(second["refresh_token"])).json
    outlive_the_grace(app_a)
    assert_error(a.post(REFRESH, headers=bearer(second["refresh_token"])), 401, "token_reused")
    assert_error(b.get(ME, headers=bearer(rotated["access_token"])), 401, "token_revoked")


# --- /me ----------------------------------------------------------------------------------

def test_me_of_a_new_user(client, session):
    me = client.get(ME, headers=bearer(session["access_token"]))
    assert me.status_code == 200
    body = me.json
    assert body["id"] == session["user"]["id"]
    assert body["phone"] == PHONE and body["display_name"] == NAME and body["is_admin"] is False
    assert body["memberships"] == []
    assert body["volunteer_profile"] is None
    assert "password" not in me.get_data(as_text=True)


def test_me_lists_memberships_and_volunteer_profile(client, world, factory):
    factory.member(world.other, world.volunteer, "resident")
    headers = factory.headers(world.volunteer)
    me = client.get(ME, headers=headers).json
    assert me["id"] == world.volunteer.id
    assert me["memberships"] == sorted([
        {"community_id": world.community.id, "role": "volunteer"},
        {"community_id": world.other.id, "role": "resident"},
    ], key=lambda m: m["community_id"])
    assert me["volunteer_profile"] is None

    skills = [s["code"] for s in client.get("/api/v1/skills").json][:2]
    patched = client.patch("/api/v1/me/volunteer-profile", headers=headers,
                           json={"party_member": True, "status": "retired", "skills": skills})
    assert patched.status_code == 200, patched.get_data(as_text=True)
    profile = client.get(ME, headers=headers).json["volunteer_profile"]
    assert profile["party_member"] is True
    assert profile["status"] == "retired"
    assert profile["skills"] == skills

    organiser = client.get(ME, headers=factory.headers(world.organiser)).json
    assert organiser["memberships"] == [{"community_id": world.community.id, "role": "organiser"}]
    assert organiser["volunteer_profile"] is None
    admin = client.get(ME, headers=factory.headers(world.admin)).json
    assert admin["is_admin"] is True and admin["memberships"] == []


# --- rate limits --------------------------------------------------------------------------

def _assert_rate_limited(response, language="zh", longest=60):
    body = assert_error(response, 429, "rate_limited")
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit() and 0 < int(retry_after) <= longest, retry_after
    if language == "zh":
        assert CJK.search(body["message"])
    else:
        assert body["message"].isascii()
    return body


def test_login_is_rate_limited_per_address(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    assert register(client).status_code == 201
    assert login(client).status_code == 200
    assert login(client, password="wrong password").status_code == 401
    assert post_json(client, LOGIN, {}).status_code == 422
    before = row_counts(app)
    _assert_rate_limited(login(client))  # the right password does not get past the limit
    _assert_rate_limited(login(client, headers=EN), language="en")
    assert row_counts(app) == before  # no login family was created for the refused attempts
    # Another address has its own budget.
    elsewhere = login(client, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert elsewhere.status_code == 200


def test_register_is_rate_limited_per_address(make_app):
    app = make_app(REGISTER_RATE_LIMIT="3 per minute")
    client = app.test_client()
    for n in range(3):
        assert register(client, phone=f"1390000000{n}").status_code == 201
    _assert_rate_limited(register(client, phone="13900000009"))
    assert stored_user(app, "13900000009") is None
    assert row_counts(app)["users"] == 3
    other = register(client, phone="13900000009", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 201


def test_login_and_register_limits_are_separate(make_app):
    client = make_app(LOGIN_RATE_LIMIT="1 per minute", REGISTER_RATE_LIMIT="2 per minute").test_client()
    assert register(client).status_code == 201
    assert login(client).status_code == 200
    _assert_rate_limited(login(client))
    assert register(client, phone="13900000001").status_code == 201
    _assert_rate_limited(register(client, phone="13900000002"))


REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="TEST_REDIS_URL not set (e.g. redis://127.0.0.1:6379/15)")


@pytest.fixture
def redis_window():
    """A Redis connection and a rate-limit window (in seconds) no other test uses."""
    with fresh_limit_window(REDIS_URL, 500, 400) as (window, connection, pattern):
        yield connection, window, pattern


@needs_redis
def test_rate_limit_in_redis_is_shared_by_two_instances(make_app, redis_window):
    connection, window, pattern = redis_window
    settings = {"RATELIMIT_STORAGE_URI": REDIS_URL, "LOGIN_RATE_LIMIT": f"3 per {window} second",
                "REGISTER_RATE_LIMIT": f"10000 per {window} second"}
    a = make_app(**settings).test_client()
    b = make_app(**settings).test_client()
    assert register(a).status_code == 201
    assert login(a).status_code == 200
    assert login(b).status_code == 200
    assert login(a, password="wrong password").status_code == 401
    assert any(connection.scan_iter(match=pattern)), "the limiter wrote nothing to Redis"
    _assert_rate_limited(login(b), longest=window)
    _assert_rate_limited(login(a), longest=window)


@needs_redis
def test_rate_limit_in_redis_is_shared_by_two_servers(live_server, redis_window):
    """Two gunicorn servers (separate processes, so no shared memory) share one budget."""
    import requests

    _connection, window, _pattern = redis_window
    # The testing config pins high limits; development reads LOGIN_RATE_LIMIT from the environment.
    env = {"XINYUAN_ENV": "development", "RATELIMIT_STORAGE_URI": REDIS_URL,
           "LOGIN_RATE_LIMIT": f"3 per {window} second"}
    servers = [live_server(workers=1, **env), live_server(workers=1, **env)]
    body = {"phone": PHONE, "password": PASSWORD}
    codes = [requests.post(f"{servers[n % 2].url}{LOGIN}", json=body, timeout=10).status_code
             for n in range(3)]
    assert codes == [401, 401, 401]
    for server in servers:
        response = requests.post(f"{server.url}{LOGIN}", json=body, timeout=10)
        assert response.status_code == 429, response.text
        assert response.json()["error"] == "rate_limited"
        assert 0 < int(response.headers["Retry-After"]) <= window


# --- timestamps ---------------------------------------------------------------------------

def test_created_at_is_shanghai_time(client):
    before = datetime.now(UTC)
    created = datetime.fromisoformat(register(client).json["created_at"])
    assert created.utcoffset() == timedelta(hours=8)
    assert abs(created - before) < timedelta(minutes=1)
