"""Accounts and tokens through real gunicorn worker processes, under concurrency.

Each test starts several workers on the test's database (SQLite in WAL mode shared by the
processes, or PostgreSQL) and fires requests from a thread pool, so they land on different
workers at the same time: revocation must be seen by every worker, a refresh token must be
spent exactly once (its concurrent repeats answering the one successor pair), a phone
registered exactly once, and nothing may answer 500 or "database is locked".
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import jwt as pyjwt
import pytest
import requests
import sqlalchemy as sa

from app.db import write_transaction
from app.extensions import db
from tests.helpers import bearer, fire, reading

pytestmark = pytest.mark.live

PASSWORD = "correct horse 马"  # what the `factory` fixture's users have (tests/conftest.py)
TIMEOUT = 60


def error_of(response) -> str | None:
    if response.status_code < 400:
        return None
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return response.json()["error"]


def assert_server_healthy(server) -> None:
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert "database is locked" not in log, log[-4000:]
    assert "WORKER TIMEOUT" not in log, log[-4000:]


def login(server, user) -> dict:
    response = requests.post(f"{server.url}/api/v1/auth/login",
                             json={"phone": user.phone, "password": PASSWORD}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_logout_is_seen_by_every_worker(live_server, factory):
    user = factory.user("王建国")
    server = live_server(workers=4)
    tokens = login(server, user)
    me = f"{server.url}/api/v1/me"

    # Every worker serves the token first (so no worker can answer from anything it cached) ...
    before = fire(40, lambda _i: requests.get(me, headers=bearer(tokens["access_token"]),
                                              timeout=TIMEOUT))
    assert [r.status_code for r in before] == [200] * 40
    assert {r.json()["id"] for r in before} == {user.id}

    response = requests.post(f"{server.url}/api/v1/auth/logout",
                             headers=bearer(tokens["access_token"]), timeout=TIMEOUT)
    assert response.status_code == 204, response.text
    assert response.content == b""

    # ... and after logout every single answer, from whichever worker, is 401 token_revoked.
    after = fire(40, lambda _i: requests.get(me, headers=bearer(tokens["access_token"]),
                                             timeout=TIMEOUT))
    assert [(r.status_code, error_of(r)) for r in after] == [(401, "token_revoked")] * 40

    # The login's refresh token died with it.
    response = requests.post(f"{server.url}/api/v1/auth/refresh",
                             headers=bearer(tokens["refresh_token"]), timeout=TIMEOUT)
    assert response.status_code == 401
    assert error_of(response) in {"token_revoked", "token_reused"}

    # Another login of the same user is untouched.
    fresh = login(server, user)
    assert requests.get(me, headers=bearer(fresh["access_token"]), timeout=TIMEOUT).status_code \
        == 200
    assert_server_healthy(server)


def refresh_rows(app, family_id: str) -> list:
    from app.auth.models import RefreshToken as Row

    with reading(app) as session:
        return session.execute(sa.select(Row.jti, Row.used_at, Row.successor_jti)
                               .where(Row.family_id == family_id)
                               .order_by(Row.used_at.is_(None), Row.used_at)).all()


def family_revocation(app, family_id: str):
    with reading(app) as session:
        return session.execute(sa.text(
            "SELECT revoked_at, revoked_reason FROM token_families WHERE id = :f"),
            {"f": family_id}).one()


def test_a_refresh_token_is_spent_exactly_once(live_server, factory, app):
    """Twenty tabs refreshing one token at once, on four workers: one rotation, one successor,
    and every tab gets that same pair (the grace window); nobody is logged out. Presented again
    after the window, the token revokes the login as before."""
    user = factory.user("李书记")
    server = live_server(workers=4)
    tokens = login(server, user)
    family_id = pyjwt.decode(tokens["refresh_token"], options={"verify_signature": False})["fam"]
    refresh = f"{server.url}/api/v1/auth/refresh"

    answers = fire(20, lambda _i: requests.post(refresh, headers=bearer(tokens["refresh_token"]),
                                                timeout=TIMEOUT))
    assert [(r.status_code, error_of(r)) for r in answers] == [(200, None)] * 20, \
        [r.text[:200] for r in answers if r.status_code != 200]
    pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in answers}
    assert len(pairs) == 1, pairs
    ((access, successor),) = pairs
    assert successor != tokens["refresh_token"] and access != tokens["access_token"]

    # Exactly one successor row, named by the spent one; the login is alive.
    spent, issued = refresh_rows(app, family_id)
    assert spent.used_at is not None and spent.successor_jti == issued.jti
    assert issued.used_at is None and issued.successor_jti is None
    assert family_revocation(app, family_id) == (None, None)
    me = f"{server.url}/api/v1/me"
    for each in (access, tokens["access_token"]):
        response = requests.get(me, headers=bearer(each), timeout=TIMEOUT)
        assert response.status_code == 200 and response.json()["id"] == user.id

    # After the window, the same token means it leaked: the whole login is revoked, the new
    # pair included.
    from app.auth.models import RefreshToken

    with app.app_context():
        with write_transaction(db.session):
            db.session.execute(sa.update(RefreshToken).where(RefreshToken.jti == spent.jti)
                               .values(used_at=spent.used_at - timedelta(seconds=31)))
        db.session.remove()
    response = requests.post(refresh, headers=bearer(tokens["refresh_token"]), timeout=TIMEOUT)
    assert (response.status_code, error_of(response)) == (401, "token_reused")
    revoked_at, reason = family_revocation(app, family_id)
    assert revoked_at is not None and reason == "reuse"
    for each in (access, tokens["access_token"]):
        response = requests.get(me, headers=bearer(each), timeout=TIMEOUT)
        assert (response.status_code, error_of(response)) == (401, "token_revoked")
    response = requests.post(refresh, headers=bearer(successor), timeout=TIMEOUT)
    assert (response.status_code, error_of(response)) == (401, "token_revoked")
    assert len(refresh_rows(app, family_id)) == 2
    assert_server_healthy(server)


def test_the_reuse_grace_comes_from_the_environment(live_server, factory):
    """With REFRESH_REUSE_GRACE_SECONDS=0 every second use is a reuse, on every worker."""
    user = factory.user("赵大爷")
    server = live_server(workers=2, REFRESH_REUSE_GRACE_SECONDS=0)
    tokens = login(server, user)
    refresh = f"{server.url}/api/v1/auth/refresh"
    first = requests.post(refresh, headers=bearer(tokens["refresh_token"]), timeout=TIMEOUT)
    assert first.status_code == 200, first.text
    again = requests.post(refresh, headers=bearer(tokens["refresh_token"]), timeout=TIMEOUT)
    assert (again.status_code, error_of(again)) == (401, "token_reused")
    response = requests.get(f"{server.url}/api/v1/me",
                            headers=bearer(first.json()["access_token"]), timeout=TIMEOUT)
    assert (response.status_code, error_of(response)) == (401, "token_revoked")
    assert_server_healthy(server)


def test_a_single_refresh_rotates_normally(live_server, factory):
    """The control for the race above: used once, a refresh token gives a working new pair."""
    user = factory.user("王女士")
    server = live_server(workers=2)
    tokens = login(server, user)
    response = requests.post(f"{server.url}/api/v1/auth/refresh",
                             headers=bearer(tokens["refresh_token"]), timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    pair = response.json()
    me = requests.get(f"{server.url}/api/v1/me", headers=bearer(pair["access_token"]),
                      timeout=TIMEOUT)
    assert me.status_code == 200 and me.json()["id"] == user.id
    again = requests.post(f"{server.url}/api/v1/auth/refresh",
                          headers=bearer(pair["refresh_token"]), timeout=TIMEOUT)
    assert again.status_code == 200, again.text
    assert_server_healthy(server)


def test_one_phone_registers_once_under_concurrency(live_server, app):
    server = live_server(workers=4)
    phone = "13912345678"

    def register(i):
        return requests.post(f"{server.url}/api/v1/auth/register",
                             json={"phone": phone, "password": f"password number {i}",
                                   "display_name": f"抢注{i}"}, timeout=TIMEOUT)

    answers = fire(20, register)
    outcomes = Counter((r.status_code, error_of(r)) for r in answers)
    assert outcomes == {(201, None): 1, (409, "phone_registered"): 19}, outcomes
    created = next(r.json() for r in answers if r.status_code == 201)
    assert created["phone"] == phone

    with app.app_context():
        rows = db.session.execute(sa.text("SELECT id, display_name FROM users WHERE phone = :p"),
                                  {"p": phone}).all()
        db.session.remove()
    assert len(rows) == 1
    assert rows[0].id == created["id"] and rows[0].display_name == created["display_name"]

    # The winner's password is the one that works.
    winner = int(created["display_name"].removeprefix("抢注"))
    ok = requests.post(f"{server.url}/api/v1/auth/login",
                       json={"phone": phone, "password": f"password number {winner}"},
                       timeout=TIMEOUT)
    assert ok.status_code == 200, ok.text
    assert_server_healthy(server)


def test_concurrent_logins_of_distinct_users_all_succeed(live_server, factory):
    users = [factory.user(f"志愿者{i}") for i in range(30)]
    server = live_server(workers=4)

    answers = fire(30, lambda i: requests.post(
        f"{server.url}/api/v1/auth/login",
        json={"phone": users[i].phone, "password": PASSWORD}, timeout=TIMEOUT))
    assert [(r.status_code, error_of(r)) for r in answers] == [(200, None)] * 30, \
        [r.text[:200] for r in answers if r.status_code != 200]
    assert [r.json()["user"]["id"] for r in answers] == [u.id for u in users]

    # Every token is its own user's, on whichever worker it lands.
    checks = fire(30, lambda i: requests.get(f"{server.url}/api/v1/me",
                                             headers=bearer(answers[i].json()["access_token"]),
                                             timeout=TIMEOUT))
    assert [r.status_code for r in checks] == [200] * 30
    assert [r.json()["id"] for r in checks] == [u.id for u in users]
    assert_server_healthy(server)
