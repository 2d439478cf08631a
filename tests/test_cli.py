"""Command-line tasks (`flask users create-admin`, `flask seed demo`) and the production guard."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from app import create_app
from app.config import DEV_SECRET
from app.extensions import db
from tests.conftest import base_config

ADMIN_PHONE = "13912345678"
ADMIN_PASSWORD = "admin-pass-2026"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/me"


def create_admin(app, *args, password=None, input=None):
    """Run `flask users create-admin`; ADMIN_PASSWORD is set only when `password` is given."""
    return app.test_cli_runner().invoke(
        args=["users", "create-admin", *args],
        env={"ADMIN_PASSWORD": password},  # None removes it, whatever the outer environment says
        input=input,
    )


def login(client, phone, password):
    return client.post(LOGIN, data=json.dumps({"phone": phone, "password": password}),
                       content_type="application/json")


def users(app) -> list[tuple[str, str, bool, str]]:
    from app.auth.models import User

    with app.app_context():
        return [(u.phone, u.display_name, u.is_admin, u.password_hash)
                for u in db.session.scalars(sa.select(User).order_by(User.id))]


def me(client, token):
    return client.get(ME, headers={"Authorization": f"Bearer {token}"})


# --- users create-admin -------------------------------------------------------------------

def test_create_admin_with_password_from_the_environment(app, client):
    result = create_admin(app, "--phone", ADMIN_PHONE, "--name", " 平台管理员 ", password=ADMIN_PASSWORD)
    assert result.exit_code == 0, result.output
    assert ADMIN_PHONE in result.output and "created" in result.output
    assert ADMIN_PASSWORD not in result.output

    [(phone, name, is_admin, password_hash)] = users(app)
    assert (phone, name, is_admin) == (ADMIN_PHONE, "平台管理员", True)
    assert password_hash.startswith("$argon2id$") and ADMIN_PASSWORD not in password_hash

    response = login(client, ADMIN_PHONE, ADMIN_PASSWORD)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["user"]["is_admin"] is True
    assert me(client, response.json["access_token"]).json["is_admin"] is True
    assert login(client, ADMIN_PHONE, "wrong password").status_code == 401


def test_create_admin_prompts_for_the_password_without_echoing_it(app, client):
    secret = "typed-at-the-prompt-9"
    result = create_admin(app, "--phone", ADMIN_PHONE, "--name", "管理员", input=f"{secret}\n{secret}\n")
    assert result.exit_code == 0, result.output
    assert "Password" in result.output  # it asked
    assert secret not in result.output  # and did not echo
    assert login(client, ADMIN_PHONE, secret).status_code == 200


def test_create_admin_refuses_two_different_passwords_at_the_prompt(app):
    result = create_admin(app, "--phone", ADMIN_PHONE, "--name", "管理员",
                          input="first-password-1\nsecond-password-2\n")
    assert result.exit_code != 0
    assert "differ" in result.output
    assert users(app) == []


def test_create_admin_takes_no_password_argument(app):
    result = create_admin(app, "--phone", ADMIN_PHONE, "--name", "管理员", "--password", ADMIN_PASSWORD,
                          password=ADMIN_PASSWORD)
    assert result.exit_code == 2
    assert "No such option" in result.output and "--password" in result.output
    assert users(app) == []
    help_text = app.test_cli_runner().invoke(args=["users", "create-admin", "--help"]).output
    assert "--phone" in help_text and "--password" not in help_text


def test_create_admin_again_grants_the_role_and_keeps_the_password(app, client):
    registered = client.post("/api/v1/auth/register", json={
        "phone": ADMIN_PHONE, "password": "the-users-own-password", "display_name": "老王"})
    assert registered.status_code == 201
    [(_phone, _name, is_admin, password_hash)] = users(app)
    assert is_admin is False

    result = create_admin(app, "--phone", ADMIN_PHONE, "--name", "别的名字", password=ADMIN_PASSWORD)
    assert result.exit_code == 0, result.output
    assert "password unchanged" in result.output
    assert users(app) == [(ADMIN_PHONE, "老王", True, password_hash)]
    assert login(client, ADMIN_PHONE, ADMIN_PASSWORD).status_code == 401
    assert login(client, ADMIN_PHONE, "the-users-own-password").json["user"]["is_admin"] is True

    # Once more, even with no password available at all: nothing is asked, nothing changes.
    again = create_admin(app, "--phone", ADMIN_PHONE, "--name", "别的名字")
    assert again.exit_code == 0, again.output
    assert users(app) == [(ADMIN_PHONE, "老王", True, password_hash)]


BAD_PHONES = ["1391234567", "139123456789", "12912345678", "+8613912345678", "1391234567８",
              "１３９１２３４５６７８", "139 1234 5678", "13912345678\n", "abc", ""]
BAD_NAMES = ["", "   ", "谁" * 33, "管理\x00员", "管理\n员", "\u202e管理员"]


def test_create_admin_refuses_an_invalid_phone_or_name(app):
    for phone in BAD_PHONES:
        result = create_admin(app, "--phone", phone, "--name", "管理员", password=ADMIN_PASSWORD)
        assert result.exit_code == 2, (phone, result.output)
        assert "--phone" in result.output
    for name in BAD_NAMES:
        result = create_admin(app, "--phone", ADMIN_PHONE, "--name", name, password=ADMIN_PASSWORD)
        assert result.exit_code == 2, (name, result.output)
        assert "--name" in result.output
    assert users(app) == []


def test_create_admin_refuses_a_bad_password(app):
    for password in ("short", "x" * 129):
        result = create_admin(app, "--phone", ADMIN_PHONE, "--name", "管理员", password=password)
        assert result.exit_code != 0
        assert "8 to 128" in result.output
    result = create_admin(app, "--phone", ADMIN_PHONE, "--name", "管理员", input="short\nshort\n")
    assert result.exit_code != 0 and "8 to 128" in result.output
    assert users(app) == []


def test_create_admin_requires_phone_and_name(app):
    assert create_admin(app, "--name", "管理员", password=ADMIN_PASSWORD).exit_code == 2
    assert create_admin(app, "--phone", ADMIN_PHONE, password=ADMIN_PASSWORD).exit_code == 2
    assert users(app) == []


# --- seed demo ----------------------------------------------------------------------------

def row_counts(app) -> dict[str, int]:
    with app.app_context():
        tables = [t for t in sa.inspect(db.engine).get_table_names() if t != "alembic_version"]
        return {t: db.session.scalar(sa.select(sa.func.count()).select_from(sa.table(t)))
                for t in tables}


def seed(app):
    result = app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0, result.output
    return result.output


def printed_password(output: str) -> str:
    match = re.search(r"password for all: (\S+?)\)?:?\s*$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_seed_demo_twice_changes_nothing_and_its_logins_work(app, client):
    first = seed(app)
    counts = row_counts(app)
    assert counts["users"] >= 10 and counts["communities"] == 1
    assert counts["memberships"] >= 10 and counts["teams"] == 2
    hashes = {phone: password_hash for phone, _n, _a, password_hash in users(app)}

    second = seed(app)
    assert row_counts(app) == counts
    assert {phone: h for phone, _n, _a, h in users(app)} == hashes  # nobody's password was reset
    assert first == second

    password = printed_password(first)
    assert password == "xinyuan2026"
    for phone in ("13800000001", "13800000011", "13800000021", "13900000000"):
        assert phone in first
    assert "organiser" in first and "volunteer" in first and "resident" in first

    organiser = login(client, "13800000001", password)
    assert organiser.status_code == 200, organiser.get_data(as_text=True)
    assert organiser.json["user"]["display_name"] == "李书记"
    memberships = me(client, organiser.json["access_token"]).json["memberships"]
    assert [m["role"] for m in memberships] == ["organiser"]

    volunteer = me(client, login(client, "13800000011", password).json["access_token"]).json
    assert volunteer["memberships"][0]["role"] == "volunteer"
    assert volunteer["volunteer_profile"]["party_member"] is True

    admin = login(client, "13900000000", password).json
    assert admin["user"]["is_admin"] is True


def test_seed_demo_prints_the_configured_password(make_app):
    app = make_app(DEMO_PASSWORD="another-demo-pass")
    output = seed(app)
    assert printed_password(output) == "another-demo-pass"
    client = app.test_client()
    assert login(client, "13800000001", "another-demo-pass").status_code == 200
    assert login(client, "13800000001", "xinyuan2026").status_code == 401


def test_seed_demo_leaves_existing_users_alone(app, client):
    client.post("/api/v1/auth/register", json={
        "phone": "13800000001", "password": "my-own-password", "display_name": "真书记"})
    seed(app)
    assert login(client, "13800000001", "my-own-password").status_code == 200
    assert login(client, "13800000001", "xinyuan2026").status_code == 401


# --- production configuration -------------------------------------------------------------

def production(database_url, **overrides):
    return {**base_config(database_url), "ENV_NAME": "production", "TESTING": False, **overrides}


GOOD_SECRET = "s" * 20 + "e" * 20 + "c" * 8  # 48 characters


NO_DATABASE = "sqlite://"  # the refusal comes before any connection is made


def test_production_refuses_a_development_or_short_secret():
    for secret, jwt_secret in [
        (DEV_SECRET, DEV_SECRET),
        (DEV_SECRET, GOOD_SECRET),
        (GOOD_SECRET, DEV_SECRET),
        ("short-secret", "short-secret"),
        ("x" * 31, "x" * 31),
        (GOOD_SECRET, "x" * 31),
        ("", ""),
    ]:
        with pytest.raises(RuntimeError, match="production"):
            create_app(production(NO_DATABASE, SECRET_KEY=secret, JWT_SECRET_KEY=jwt_secret))
    # The same settings outside production start (the guard is about production only).
    create_app({**base_config(NO_DATABASE), "SECRET_KEY": DEV_SECRET, "JWT_SECRET_KEY": "x"})


def test_production_refuses_the_defaults_selected_by_environment(monkeypatch):
    monkeypatch.setenv("XINYUAN_ENV", "production")
    config = {k: v for k, v in base_config(NO_DATABASE).items() if k not in ("ENV_NAME", "TESTING")}
    with pytest.raises(RuntimeError):
        create_app({**config, "SECRET_KEY": DEV_SECRET, "JWT_SECRET_KEY": DEV_SECRET})


def test_production_starts_with_a_long_private_secret(make_app):
    app = make_app(ENV_NAME="production", TESTING=False, SECRET_KEY=GOOD_SECRET,
                   JWT_SECRET_KEY=GOOD_SECRET[::-1])
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    registered = client.post("/api/v1/auth/register", json={
        "phone": ADMIN_PHONE, "password": ADMIN_PASSWORD, "display_name": "管理员"})
    assert registered.status_code == 201
    token = login(client, ADMIN_PHONE, ADMIN_PASSWORD).json["access_token"]
    assert me(client, token).status_code == 200
    # The token is signed with the production secret, not the test one.
    import jwt as pyjwt

    pyjwt.decode(token, GOOD_SECRET[::-1], algorithms=["HS256"])
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token, base_config("")["JWT_SECRET_KEY"], algorithms=["HS256"])
