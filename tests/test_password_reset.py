"""A forgotten password, reset by an organiser (issue 8, Decisions → Account care).

An organiser of one of the person's communities issues a one-time code (8 digits, 30 minutes,
recorded in the audit log); the person types it on /reset with a new password, which logs them
out everywhere. One answer for an unknown phone and a wrong, used, superseded, expired or locked
code; five tries per code; staff accounts are reset by a platform admin only.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from app.extensions import db
from tests.conftest import PASSWORD
from tests.helpers import assert_error, assert_field_error, bearer, fire, reading

LOGIN = "/api/v1/auth/login"
RESET = "/api/v1/auth/reset"
ME = "/api/v1/me"
NEW_PASSWORD = "新密码 new password 2026"
CJK = re.compile(r"[\u4e00-\u9fff]")


def issue_url(cid: int, uid: int) -> str:
    return f"/api/v1/communities/{cid}/members/{uid}/password-reset"


def issue(client, headers, cid, uid):
    return client.post(issue_url(cid, uid), headers=headers)


def issued_code(client, headers, cid, uid) -> str:
    response = issue(client, headers, cid, uid)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json["code"]


def reset(client, phone, code, password=NEW_PASSWORD, **headers):
    return client.post(RESET, json={"phone": phone, "code": code, "password": password},
                       headers=headers)


def logs_in(client, user, password) -> bool:
    response = client.post(LOGIN, json={"phone": user.phone, "password": password})
    assert response.status_code in (200, 401), response.get_data(as_text=True)
    return response.status_code == 200


def password_hash(app, user) -> str:
    from app.auth.models import User

    with app.app_context():
        return db.session.get(User, user.id).password_hash


def codes(app, user) -> list[tuple]:
    from app.auth.models import PasswordReset as Row

    with app.app_context():
        return [tuple(r) for r in db.session.execute(
            sa.select(Row.id, Row.attempts, Row.used_at, Row.superseded_at)
            .where(Row.user_id == user.id).order_by(Row.id))]


def audit_actions(client, headers, cid) -> list[dict]:
    response = client.get(f"/api/v1/communities/{cid}/audit-log", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json["items"]


def move_code_back(app, user, minutes: int) -> None:
    """Pretend the user's codes were issued `minutes` earlier."""
    from app.auth.models import PasswordReset as Row

    with app.app_context():
        for row in db.session.scalars(sa.select(Row).where(Row.user_id == user.id)):
            row.created_at -= timedelta(minutes=minutes)
            row.expires_at -= timedelta(minutes=minutes)
        db.session.commit()


# --- the happy path -----------------------------------------------------------------------

def test_an_organiser_resets_a_residents_password(app, client, world, factory, org):
    resident = world.resident
    before = [factory.tokens(resident), factory.tokens(resident)]  # two phones, logged in

    response = issue(client, org, world.community.id, resident.id)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.json
    assert set(body) == {"code", "expires_at", "user_id"}
    assert re.fullmatch(r"[0-9]{8}", body["code"]) and body["user_id"] == resident.id
    assert body["expires_at"].endswith("+08:00")
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=29) < lifetime <= timedelta(minutes=30)
    assert "no-store" in response.headers["Cache-Control"]
    with app.app_context():  # only a hash of the code is kept
        stored = db.session.execute(sa.text("SELECT code_hash FROM password_resets")).scalar_one()
    assert body["code"] not in stored and len(stored) == 64

    done = reset(client, resident.phone, body["code"])
    assert done.status_code == 204, done.get_data(as_text=True)
    assert done.get_data() == b""

    assert not logs_in(client, resident, PASSWORD)
    assert logs_in(client, resident, NEW_PASSWORD)
    for tokens in before:  # logged out everywhere
        assert_error(client.get(ME, headers=bearer(tokens["access_token"])), 401, "token_revoked")
        assert_error(client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])),
                     401, "token_revoked")
    with app.app_context():
        reasons = set(db.session.scalars(sa.text(
            "SELECT revoked_reason FROM token_families WHERE user_id = :u "
            "AND revoked_at IS NOT NULL"), {"u": resident.id}))
    assert reasons == {"password_reset"}

    # Both steps are in the community's audit log, the code in neither.
    events = audit_actions(client, org, world.community.id)
    issued = next(e for e in events if e["action"] == "account.reset_code_issued")
    assert issued["actor_id"] == world.organiser.id and issued["subject_user_id"] == resident.id
    used = next(e for e in events if e["action"] == "account.password_reset")
    assert used["actor_id"] == used["subject_user_id"] == resident.id
    assert body["code"] not in str(events)
    # ... and not in the other community's.
    other_events = audit_actions(client, factory.headers(world.other_organiser), world.other.id)
    assert not [e for e in other_events if e["action"].startswith("account.")]


def test_the_code_is_forgiving_about_how_it_is_typed(app, client, world, org):
    for typed in ("{0} {1}", "{0}-{1}", " {0}{1} "):
        code = issued_code(client, org, world.community.id, world.volunteer.id)
        fullwidth = typed.format(code[:4], code[4:])
        assert reset(client, world.volunteer.phone, fullwidth).status_code == 204, typed
    code = issued_code(client, org, world.community.id, world.volunteer.id)
    wide = code.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})  # ０１２…
    assert reset(client, world.volunteer.phone, wide).status_code == 204


def test_a_platform_admin_may_issue_without_being_a_member(client, world, factory):
    admin = factory.headers(world.admin)
    code = issued_code(client, admin, world.community.id, world.volunteer.id)
    assert reset(client, world.volunteer.phone, code).status_code == 204
    assert logs_in(client, world.volunteer, NEW_PASSWORD)


# --- who may not --------------------------------------------------------------------------

@pytest.mark.parametrize("who, status", [
    ("volunteer", 403), ("resident", 403),
    ("other_organiser", 404), ("other_volunteer", 404), ("outsider", 404),
])
def test_who_may_not_issue_a_code(app, client, world, factory, who, status):
    headers = factory.headers(getattr(world, who))
    target = world.resident if who != "resident" else world.volunteer
    before = codes(app, target)
    assert_error(issue(client, headers, world.community.id, target.id), status)
    assert codes(app, target) == before == []


def test_an_organiser_cannot_reach_people_outside_the_community(app, client, world, factory,
                                                                org):
    # Someone of the other community, a stranger, a missing id, an id out of range.
    for uid in (world.other_volunteer.id, world.outsider.id, 999_999, 2**31):
        assert_error(issue(client, org, world.community.id, uid), 404, case=uid)
    # The other community's organiser, in their own community, about our resident.
    other = factory.headers(world.other_organiser)
    assert_error(issue(client, other, world.other.id, world.resident.id), 404)
    assert codes(app, world.resident) == []
    assert_error(client.post(issue_url(world.community.id, world.resident.id)), 401)


def test_staff_accounts_are_reset_by_a_platform_admin_only(app, client, world, factory, org):
    co_organiser = factory.member(world.community, factory.user("张主任"), "organiser")
    # An organiser elsewhere, added here as a resident: still staff.
    factory.member(world.community, world.other_organiser, "resident")
    admin_member = factory.member(world.community, factory.user("管理员", admin=True), "resident")
    for target in (co_organiser, world.other_organiser, admin_member, world.organiser):
        body = assert_error(issue(client, org, world.community.id, target.id), 403,
                            "reset_needs_admin", case=target.display_name)
        assert "平台管理员" in body["message"]
        assert codes(app, target) == []
    admin = factory.headers(world.admin)
    code = issued_code(client, admin, world.community.id, co_organiser.id)
    assert reset(client, co_organiser.phone, code).status_code == 204


def test_a_member_of_another_community_is_reset_by_an_admin_only(app, client, world, factory,
                                                               org):
    # The other community's volunteer joins ours as a resident: a code from our organiser would
    # open their account, and their points, over there too.
    factory.member(world.community, world.other_volunteer, "resident")
    body = assert_error(issue(client, org, world.community.id, world.other_volunteer.id), 403,
                        "reset_other_communities")
    assert "平台管理员" in body["message"]
    assert codes(app, world.other_volunteer) == []
    # An organiser of both communities may; so may a platform admin.
    factory.member(world.other, world.organiser, "organiser")
    code = issued_code(client, org, world.community.id, world.other_volunteer.id)
    assert reset(client, world.other_volunteer.phone, code).status_code == 204


# --- codes that do not work ---------------------------------------------------------------

def test_one_answer_for_every_code_that_does_not_work(app, client, world, org):
    resident = world.resident
    code = issued_code(client, org, world.community.id, resident.id)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    answers = {
        "wrong code": reset(client, resident.phone, wrong),
        "unknown phone": reset(client, "13912345678", code),
        "someone else's phone": reset(client, world.volunteer.phone, code),
    }
    bodies = {name: assert_error(r, 400, "invalid_reset_code", case=name)
              for name, r in answers.items()}
    assert len({(b["error"], b["message"]) for b in bodies.values()}) == 1
    message = bodies["wrong code"]["message"]
    assert CJK.search(message) and "社区工作人员" in message
    assert not logs_in(client, resident, NEW_PASSWORD) and logs_in(client, resident, PASSWORD)
    # The right code still works after one wrong try.
    assert reset(client, resident.phone, code).status_code == 204


def test_a_code_works_once(app, client, world, org):
    code = issued_code(client, org, world.community.id, world.resident.id)
    assert reset(client, world.resident.phone, code).status_code == 204
    assert_error(reset(client, world.resident.phone, code, "another new password"), 400,
                 "invalid_reset_code")
    assert logs_in(client, world.resident, NEW_PASSWORD)
    assert not logs_in(client, world.resident, "another new password")


def test_a_code_expires_after_30_minutes(app, client, world, org):
    code = issued_code(client, org, world.community.id, world.resident.id)
    move_code_back(app, world.resident, 31)
    assert_error(reset(client, world.resident.phone, code), 400, "invalid_reset_code")
    assert logs_in(client, world.resident, PASSWORD)

    fresh = issued_code(client, org, world.community.id, world.resident.id)
    move_code_back(app, world.resident, 29)  # still inside its half hour
    assert reset(client, world.resident.phone, fresh).status_code == 204


def test_a_new_code_supersedes_the_old_one(app, client, world, org):
    first = issued_code(client, org, world.community.id, world.resident.id)
    second = issued_code(client, org, world.community.id, world.resident.id)
    assert_error(reset(client, world.resident.phone, first), 400, "invalid_reset_code")
    assert reset(client, world.resident.phone, second).status_code == 204
    (_, _, old_used, old_superseded), (_, _, new_used, _) = codes(app, world.resident)
    assert old_used is None and old_superseded is not None and new_used is not None


def test_five_wrong_tries_lock_a_code(app, client, world, org):
    resident = world.resident
    code = issued_code(client, org, world.community.id, resident.id)
    wrong = [f"{(int(code) + i) % 10**8:08d}" for i in range(1, 6)]
    for guess in wrong[:4]:
        assert_error(reset(client, resident.phone, guess), 400, "invalid_reset_code")
    assert codes(app, resident)[0][1] == 4
    assert_error(reset(client, resident.phone, wrong[4]), 400, "invalid_reset_code")
    # Locked: now even the right code is refused, and the tries stop counting.
    assert_error(reset(client, resident.phone, code), 400, "invalid_reset_code")
    assert codes(app, resident)[0][1] == 5
    assert logs_in(client, resident, PASSWORD) and not logs_in(client, resident, NEW_PASSWORD)
    # The staff issue a new code, which works.
    assert reset(client, resident.phone,
                 issued_code(client, org, world.community.id, resident.id)).status_code == 204


def test_four_wrong_tries_then_the_right_one(client, world, org):
    code = issued_code(client, org, world.community.id, world.resident.id)
    for i in range(1, 5):
        assert reset(client, world.resident.phone, f"{(int(code) + i) % 10**8:08d}"
                     ).status_code == 400
    assert reset(client, world.resident.phone, code).status_code == 204


# --- bad input ----------------------------------------------------------------------------

def test_bad_input_is_refused_and_changes_nothing(app, client, world, factory, org):
    resident = world.resident
    tokens = factory.tokens(resident)
    code = issued_code(client, org, world.community.id, resident.id)
    good = {"phone": resident.phone, "code": code, "password": NEW_PASSWORD}

    def without(field):
        return {k: v for k, v in good.items() if k != field}

    cases = [
        (without("phone"), "phone"), (without("code"), "code"), (without("password"), "password"),
        ({**good, "password": "short7!"}, "password"),
        ({**good, "password": "x" * 129}, "password"),
        ({**good, "password": "x" * 100_000}, "password"),
        ({**good, "password": "密码\ud800密码密码密码"}, "password"),  # a lone surrogate
        ({**good, "password": None}, "password"),
        ({**good, "code": code[:7]}, "code"), ({**good, "code": code + "0"}, "code"),
        ({**good, "code": "abcdefgh"}, "code"), ({**good, "code": "一二三四五六七八"}, "code"),
        ({**good, "code": "1" * 100_000}, "code"), ({**good, "code": int(code)}, "code"),
        ({**good, "code": ""}, "code"),
        ({**good, "phone": "1380013800"}, "phone"), ({**good, "phone": "王阿姨"}, "phone"),
        ({**good, "phone": resident.phone + "\x00"}, "phone"),
        ({**good, "user_id": resident.id}, "user_id"),
    ]

    def snapshot():
        return password_hash(app, resident), codes(app, resident)

    before = snapshot()
    for body, field in cases:
        # json.dumps escapes to ASCII, so a lone surrogate travels as \ud800.
        response = client.post(RESET, data=json.dumps(body), content_type="application/json")
        assert_field_error(response, field, case=body)
        assert snapshot() == before, body
    for raw in (b"[]", b'"x"', b"{", b"null"):
        response = client.post(RESET, data=raw, content_type="application/json")
        assert 400 <= response.status_code < 500, raw
        assert snapshot() == before, raw
    response = client.post(RESET, data=b'{"phone": "' + b"1" * (2 * 1024 * 1024) + b'"}',
                           content_type="application/json")
    assert_error(response, 413)
    assert snapshot() == before
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200
    # After all that, the code still works: no bad request spent a try.
    assert reset(client, resident.phone, code).status_code == 204


def test_issuing_takes_no_body_fields(app, client, world, org):
    response = client.post(issue_url(world.community.id, world.resident.id), headers=org,
                           json={"code": "12345678", "expires_at": "2099-01-01T00:00:00"})
    # No body is read: whatever is sent, the server draws the code and the expiry.
    assert response.status_code == 201
    assert response.json["code"] != "12345678"
    assert not response.json["expires_at"].startswith("2099")


def test_reset_is_rate_limited_per_address(make_app, world, factory):
    limited = make_app(LOGIN_RATE_LIMIT="3 per minute").test_client()
    answers = [reset(limited, world.resident.phone, "00000000") for _ in range(4)]
    assert [r.status_code for r in answers[:3]] == [400] * 3
    body = assert_error(answers[3], 429, "rate_limited")
    assert int(answers[3].headers["Retry-After"]) >= 1 and CJK.search(body["message"])


# --- concurrency, through real workers ----------------------------------------------------

@pytest.mark.live
def test_a_code_is_spent_once_and_tried_five_times_under_concurrency(live_server, app, world,
                                                                     factory):
    server = live_server(workers=4)
    org = factory.headers(world.organiser)
    issue_at = f"{server.url}{issue_url(world.community.id, world.resident.id)}"

    def post_reset(code, password):
        return requests.post(f"{server.url}{RESET}", timeout=60, json={
            "phone": world.resident.phone, "code": code, "password": password})

    # Twenty guesses at once: five are tried, the rest find the code locked.
    code = requests.post(issue_at, headers=org, timeout=60).json()["code"]
    guesses = fire(20, lambda i: post_reset(f"{(int(code) + 1 + i) % 10**8:08d}", NEW_PASSWORD))
    assert {r.status_code for r in guesses} == {400}
    with reading(app) as session:
        attempts = session.execute(sa.text("SELECT attempts FROM password_resets")).scalar_one()
    assert attempts == 5
    assert post_reset(code, NEW_PASSWORD).status_code == 400

    # The right code sent ten times at once, each with another password: one wins.
    code = requests.post(issue_at, headers=org, timeout=60).json()["code"]
    answers = fire(10, lambda i: post_reset(code, f"password number {i}"))
    assert sorted(r.status_code for r in answers) == [204] + [400] * 9, \
        [r.text[:200] for r in answers]
    winner = next(i for i, r in enumerate(answers) if r.status_code == 204)
    for i in range(10):
        response = requests.post(f"{server.url}{LOGIN}", timeout=60, json={
            "phone": world.resident.phone, "password": f"password number {i}"})
        assert response.status_code == (200 if i == winner else 401), i
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log and "database is locked" not in log, log[-3000:]
