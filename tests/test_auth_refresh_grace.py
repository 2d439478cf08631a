"""Two tabs refreshing at once must not log the person out (issue 8, Decisions → Sessions).

A refresh token presented again within REFRESH_REUSE_GRACE_SECONDS (30 s) of its rotation
answers the very same successor pair, re-encoded from the ids and times stored on the rows (no
bearer token is stored); presented later it still revokes the whole login. Concurrency across
real workers is in tests/test_live_auth.py; the migration that adds the columns is tested here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import sqlalchemy as sa

from app.errors import APIError
from app.extensions import db
from tests.conftest import PASSWORD, TEST_SECRET
from tests.helpers import assert_error, bearer

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"


def login(client, user) -> dict:
    response = client.post(LOGIN, json={"phone": user.phone, "password": PASSWORD})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def refresh(client, token):
    return client.post(REFRESH, headers=bearer(token))


def claims(token: str) -> dict:
    return pyjwt.decode(token, TEST_SECRET, algorithms=["HS256"])


def pair(body: dict) -> tuple[str, str]:
    return body["access_token"], body["refresh_token"]


def rows(app, family_id: str) -> list:
    from app.auth.models import RefreshToken

    with app.app_context():
        # Spent ones first, in the order they were rotated (issued_at has whole seconds only).
        found = db.session.scalars(
            sa.select(RefreshToken).where(RefreshToken.family_id == family_id)
            .order_by(RefreshToken.used_at.is_(None), RefreshToken.used_at)).all()
        for row in found:
            db.session.expunge(row)
        return found


def family_revoked(app, family_id: str) -> tuple:
    from app.auth.models import TokenFamily

    with app.app_context():
        row = db.session.get(TokenFamily, family_id)
        return row.revoked_at, row.revoked_reason


def rotated_ago(app, jti: str, seconds: float) -> None:
    """Pretend the token `jti` was rotated `seconds` ago."""
    from app.auth.models import RefreshToken

    with app.app_context():
        db.session.execute(sa.update(RefreshToken).where(RefreshToken.jti == jti)
                           .values(used_at=datetime.now(UTC) - timedelta(seconds=seconds)))
        db.session.commit()


@pytest.fixture
def user(factory):
    return factory.user("王阿姨")


def test_a_second_refresh_within_the_grace_answers_the_same_pair(app, client, user):
    tokens = login(client, user)
    family_id = claims(tokens["refresh_token"])["fam"]

    first = refresh(client, tokens["refresh_token"])
    second = refresh(client, tokens["refresh_token"])  # the other tab, a moment later
    assert first.status_code == second.status_code == 200, second.get_data(as_text=True)
    assert pair(second.json) == pair(first.json)
    assert pair(first.json) != pair(tokens)
    assert 0 < second.json["expires_in"] <= first.json["expires_in"] <= 15 * 60

    # One successor, recorded on the spent row; the login is alive and the pair works.
    spent, successor = rows(app, family_id)
    assert spent.jti == claims(tokens["refresh_token"])["jti"] and spent.used_at is not None
    assert spent.successor_jti == successor.jti == claims(first.json["refresh_token"])["jti"]
    assert successor.access_jti == claims(first.json["access_token"])["jti"]
    assert successor.used_at is None
    assert family_revoked(app, family_id) == (None, None)
    assert client.get(ME, headers=bearer(first.json["access_token"])).json["id"] == user.id
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200

    # The successor rotates normally, once.
    third = refresh(client, first.json["refresh_token"])
    assert third.status_code == 200
    assert pair(third.json) != pair(first.json)
    assert len(rows(app, family_id)) == 3


def test_the_replayed_pair_is_byte_for_byte_the_first_one_seconds_later(app, client, user):
    tokens = login(client, user)
    first = refresh(client, tokens["refresh_token"]).json
    time.sleep(1.1)  # a new second: nothing in the replay may come from the clock
    again = refresh(client, tokens["refresh_token"])
    assert again.status_code == 200
    assert pair(again.json) == pair(first)
    for token in pair(first):
        decoded = claims(token)
        assert decoded["iat"] == decoded["nbf"] and isinstance(decoded["iat"], int)
        assert decoded["fam"] == claims(tokens["access_token"])["fam"]
    access, refresh_claims = claims(first["access_token"]), claims(first["refresh_token"])
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh_claims["exp"] - refresh_claims["iat"] == 30 * 86400
    assert access["jti"] != refresh_claims["jti"]


def test_the_pair_is_the_same_with_flask_jwt_extendeds_cookie_csrf_on(make_app, user):
    """That check puts a random `csrf` claim in every token; ours is derived, so it replays."""
    client = make_app(JWT_COOKIE_CSRF_PROTECT=True).test_client()
    tokens = login(client, user)
    first = refresh(client, tokens["refresh_token"]).json
    again = refresh(client, tokens["refresh_token"]).json
    assert pair(again) == pair(first)
    access, refresh_claims = claims(first["access_token"]), claims(first["refresh_token"])
    assert access["csrf"] and refresh_claims["csrf"] and access["csrf"] != refresh_claims["csrf"]
    assert access["csrf"] not in (access["jti"], refresh_claims["jti"])


def test_no_bearer_token_is_stored(app, client, user):
    tokens = login(client, user)
    first = refresh(client, tokens["refresh_token"]).json
    with app.app_context():
        dump = "\n".join(repr(tuple(row)) for row in db.session.execute(
            sa.text("SELECT * FROM refresh_tokens")))
    for token in (*pair(tokens), *pair(first)):
        assert token not in dump
        assert token.split(".")[2] not in dump  # not even a signature


def test_reuse_after_the_grace_revokes_the_whole_login(app, client, user):
    tokens = login(client, user)
    other = login(client, user)  # another login of the same person: untouched
    family_id = claims(tokens["refresh_token"])["fam"]
    first = refresh(client, tokens["refresh_token"]).json

    rotated_ago(app, claims(tokens["refresh_token"])["jti"], 31)
    assert_error(refresh(client, tokens["refresh_token"]), 401, "token_reused")
    revoked_at, reason = family_revoked(app, family_id)
    assert revoked_at is not None and reason == "reuse"
    for token, path in ((first["access_token"], ME), (tokens["access_token"], ME)):
        assert_error(client.get(path, headers=bearer(token)), 401, "token_revoked")
    assert_error(refresh(client, first["refresh_token"]), 401, "token_revoked")
    assert len(rows(app, family_id)) == 2  # the refusal issued nothing

    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_just_inside_the_window_still_answers(app, client, user):
    tokens = login(client, user)
    first = refresh(client, tokens["refresh_token"]).json
    rotated_ago(app, claims(tokens["refresh_token"])["jti"], 25)
    again = refresh(client, tokens["refresh_token"])
    assert again.status_code == 200 and pair(again.json) == pair(first)


def test_the_grace_is_a_setting(make_app, user):
    strict = make_app(REFRESH_REUSE_GRACE_SECONDS=0).test_client()
    tokens = login(strict, user)
    assert refresh(strict, tokens["refresh_token"]).status_code == 200
    assert_error(refresh(strict, tokens["refresh_token"]), 401, "token_reused")

    generous = make_app(REFRESH_REUSE_GRACE_SECONDS=3600).test_client()
    tokens = login(generous, user)
    first = refresh(generous, tokens["refresh_token"]).json
    rotated_ago(generous.application, claims(tokens["refresh_token"])["jti"], 1800)
    assert pair(refresh(generous, tokens["refresh_token"]).json) == pair(first)


def test_two_tabs_one_running_ahead(app, client, user):
    """Tab A rotates twice; tab B, still on the first token, gets A's first pair, then A's
    second when it refreshes that: nobody is logged out and the chain stays one line."""
    tokens = login(client, user)
    family_id = claims(tokens["refresh_token"])["fam"]
    a1 = refresh(client, tokens["refresh_token"]).json
    a2 = refresh(client, a1["refresh_token"]).json

    b1 = refresh(client, tokens["refresh_token"])
    assert b1.status_code == 200 and pair(b1.json) == pair(a1)
    b2 = refresh(client, b1.json["refresh_token"])
    assert b2.status_code == 200 and pair(b2.json) == pair(a2)
    assert len(rows(app, family_id)) == 3
    assert family_revoked(app, family_id) == (None, None)


def test_the_grace_does_not_revive_a_login_that_ended(app, client, user):
    tokens = login(client, user)
    first = refresh(client, tokens["refresh_token"]).json
    assert client.post(LOGOUT, headers=bearer(first["access_token"])).status_code == 204
    assert_error(refresh(client, tokens["refresh_token"]), 401, "token_revoked")
    assert_error(refresh(client, first["refresh_token"]), 401, "token_revoked")


def test_an_access_token_still_cannot_refresh(client, user):
    tokens = login(client, user)
    assert refresh(client, tokens["refresh_token"]).status_code == 200
    assert_error(refresh(client, tokens["access_token"]), 401)


# --- what page code calls with the refresh cookie ------------------------------------------

def test_refresh_pair_for_pages(app, client, user):
    from app.auth import service

    tokens = login(client, user)
    with app.test_request_context(method="POST"):
        who, first = service.refresh_pair(tokens["refresh_token"])
        db.session.commit()
        assert who.id == user.id
        who, again = service.refresh_pair(tokens["refresh_token"])  # a second tab
        db.session.commit()
        assert pair(again) == pair(first)
    # What the page was given works on the API too.
    assert client.get(ME, headers=bearer(first["access_token"])).json["id"] == user.id

    past = int(time.time()) - 60
    expired = pyjwt.encode({**claims(first["refresh_token"]), "exp": past}, TEST_SECRET,
                           algorithm="HS256")
    refusals = {
        "not a token": ("junk", "unauthorized"),
        "an access token": (first["access_token"], "unauthorized"),
        "expired": (expired, "token_expired"),
    }
    with app.test_request_context(method="POST"):
        for name, (token, slug) in refusals.items():
            with pytest.raises(APIError) as refused:
                service.refresh_pair(token)
            assert (refused.value.status_code, refused.value.slug) == (401, slug), name
        db.session.rollback()

    assert client.post(LOGOUT, headers=bearer(first["access_token"])).status_code == 204
    with app.test_request_context(method="POST"), pytest.raises(APIError) as refused:
        service.refresh_pair(first["refresh_token"])
    assert refused.value.slug == "token_revoked"


# --- migration 0005 -------------------------------------------------------------------------

def test_migration_0005_keeps_tokens_and_downgrades_to_0004(make_app, tmp_path, database_kind):
    """`flask db upgrade` from zero to 0004, rows, then 0005, `downgrade 0004` and back."""
    if database_kind != "sqlite":
        pytest.skip("on PostgreSQL, test_openapi's up/down tests run every migration")
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'm.sqlite3'}")
    runner = app.test_cli_runner()

    def flask_db(*args):
        result = runner.invoke(args=["db", *args])
        assert result.exit_code == 0, (args, result.output, result.exception)

    now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    flask_db("upgrade", "0004")
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO users (id, phone, display_name, password_hash, is_admin, created_at) "
                "VALUES (1, '13800138000', '王阿姨', 'x', 0, :now)"), {"now": now})
            conn.execute(sa.text("INSERT INTO token_families (id, user_id, created_at) "
                                 "VALUES ('f1', 1, :now)"), {"now": now})
            conn.execute(sa.text(
                "INSERT INTO refresh_tokens (jti, family_id, issued_at, expires_at, used_at) "
                "VALUES ('r1', 'f1', :now, :now, :now)"), {"now": now})
        db.engine.dispose()

    flask_db("upgrade")
    with app.app_context():
        with db.engine.connect() as conn:
            kept = conn.execute(sa.text(
                "SELECT jti, used_at IS NOT NULL, access_jti, successor_jti "
                "FROM refresh_tokens")).all()
            tables = set(sa.inspect(conn).get_table_names())
            version = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        db.engine.dispose()
    assert [tuple(r) for r in kept] == [("r1", 1, None, None)]
    assert "password_resets" in tables and version >= "0005"

    flask_db("downgrade", "0004")
    with app.app_context():
        with db.engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "password_resets" not in inspector.get_table_names()
            columns = {c["name"] for c in inspector.get_columns("refresh_tokens")}
            assert columns == {"jti", "family_id", "issued_at", "expires_at", "used_at"}
            assert conn.scalar(sa.text("SELECT count(*) FROM refresh_tokens")) == 1
            assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0004"
        db.engine.dispose()

    flask_db("upgrade")
    with app.app_context():
        with db.engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM refresh_tokens")) == 1
        db.session.remove()
        db.engine.dispose()
