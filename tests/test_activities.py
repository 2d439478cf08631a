"""Volunteer activities over HTTP (issue 9): publish, sign up, check in, complete, hours."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.activity_helpers import (
    API,
    activity_body,
    activity_row,
    awards,
    current_code,
    now,
    publish,
    set_times,
    signups,
    token_for,
    volunteers,
)
from tests.helpers import assert_error, assert_field_error
from tests.ledger_helpers import assert_verified


def post(client, path, headers, body=None):
    return client.post(f"{API}{path}", headers=headers, json=body)


def ok(response, status=200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


# --- the whole flow -----------------------------------------------------------------------

def test_publish_sign_up_check_in_complete_awards_points_and_hours(app, client, factory, world,
                                                                   org, vol):
    cid = world.community.id
    activity = publish(client, org, cid, level=2, hours=2.5, capacity=5)
    assert activity["status"] == "published" and activity["signed_up"] == 0
    assert activity["hours"] == 2.5 and activity["points"] == 20 and activity["places_left"] == 5
    assert activity["starts_at"].endswith("+08:00") and activity["my_signup"] is None
    aid = activity["id"]

    listed = ok(client.get(f"{API}/communities/{cid}/activities", headers=vol))
    assert [a["id"] for a in listed["items"]] == [aid] and listed["total"] == 1

    joined = ok(post(client, f"/activities/{aid}/signup", vol))
    assert joined["signed_up"] == 1 and joined["my_signup"]["status"] == "signed_up"
    again = ok(post(client, f"/activities/{aid}/signup", vol))  # a double tap changes nothing
    assert again["signed_up"] == 1

    absent_one = factory.member(world.community, factory.user("没来的人"), "volunteer")
    ok(post(client, f"/activities/{aid}/signup", factory.headers(absent_one)))
    walk_in = factory.member(world.community, factory.user("临时来的人"), "volunteer")

    set_times(app, aid, starts_in=timedelta(minutes=-10))
    code = ok(client.get(f"{API}/activities/{aid}/checkin-code", headers=org))
    assert len(code["code"]) == 6 and code["code"].isdigit()
    assert code["url"].endswith(f"/a/{aid}/checkin?t={code['token']}")
    assert code["qr_png"].startswith("data:image/png;base64,") and code["checkin_open"] is True

    mine = ok(post(client, f"/activities/{aid}/checkin", vol, {"code": code["code"]}))
    assert mine["status"] == "attended" and mine["checkin_method"] == "code"
    assert mine["checked_in_by_id"] == world.volunteer.id
    walked = ok(post(client, f"/activities/{aid}/checkin", org, {"user_id": walk_in.id}))
    assert walked["status"] == "attended" and walked["walk_in"] is True
    assert walked["checked_in_by_id"] == world.organiser.id

    attendance = ok(client.get(f"{API}/activities/{aid}/attendance", headers=org))
    assert attendance["counts"]["attended"] == 2 and attendance["counts"]["signed_up"] == 1
    assert attendance["counts"]["walk_in"] == 1 and attendance["total"] == 3
    assert activity_row(app, aid)["signed_up"] == 3

    done = ok(post(client, f"/activities/{aid}/complete", org))
    assert done["status"] == "completed" and done["completed_at"]
    rows = signups(app, aid)
    assert rows[world.volunteer.id]["status"] == "attended"
    assert rows[world.volunteer.id]["points_awarded"] == 20
    assert rows[world.volunteer.id]["half_hours_credited"] == 5
    assert rows[absent_one.id]["status"] == "absent" and rows[absent_one.id]["points_awarded"] == 0
    assert rows[absent_one.id]["half_hours_credited"] == 0
    assert awards(app, aid) == sorted([(f"activity:{aid}:{world.volunteer.id}", 20),
                                       (f"activity:{aid}:{walk_in.id}", 20)])

    # completing twice awards once
    assert_error(post(client, f"/activities/{aid}/complete", org), 409, "activity_invalid_transition")
    assert len(awards(app, aid)) == 2

    mine = ok(client.get(f"{API}/me/activities?community_id={cid}", headers=vol))
    assert mine["total"] == 1 and mine["items"][0]["hours_credited"] == 2.5
    assert mine["items"][0]["points_awarded"] == 20 and mine["items"][0]["activity"]["id"] == aid

    from app.ledger import service as ledger
    with app.app_context():
        assert ledger.service_hours(cid, world.volunteer.id) == 2.5
        assert ledger.service_hours(None, world.volunteer.id) == 2.5
        assert ledger.service_hours(cid, absent_one.id) == 0
        assert ledger.service_hours(world.other.id, world.volunteer.id) == 0
    assert_verified(app)


def test_zero_points_rule_credits_hours_without_a_transfer(app, client, world, org, vol):
    cid = world.community.id
    rules = ok(client.get(f"{API}/communities/{cid}/points-rules", headers=org))
    for rule in rules["rules"]:
        if rule["category"] == "activity" and rule["level"] == 1:
            rule["points"] = 0
    rules.pop("expiring", None)
    response = client.put(f"{API}/communities/{cid}/points-rules", headers=org, json=rules)
    assert response.status_code == 200, response.get_json()
    aid = publish(client, org, cid, level=1, hours=1)["id"]
    ok(post(client, f"/activities/{aid}/signup", vol))
    set_times(app, aid, starts_in=timedelta(minutes=-5))
    ok(post(client, f"/activities/{aid}/checkin", org, {"user_id": world.volunteer.id}))
    ok(post(client, f"/activities/{aid}/complete", org))
    assert awards(app, aid) == []
    assert signups(app, aid)[world.volunteer.id]["half_hours_credited"] == 2


# --- capacity, cancel, edit ---------------------------------------------------------------

def test_sign_up_until_full_then_cancel_frees_a_place(app, client, factory, world, org):
    cid = world.community.id
    aid = publish(client, org, cid, capacity=2)["id"]
    people = volunteers(factory, world.community, 3)
    headers = [factory.headers(p) for p in people]
    ok(post(client, f"/activities/{aid}/signup", headers[0]))
    ok(post(client, f"/activities/{aid}/signup", headers[1]))
    body = assert_error(post(client, f"/activities/{aid}/signup", headers[2]), 409, "activity_full")
    assert "满" in body["message"]
    assert ok(post(client, f"/activities/{aid}/cancel-signup", headers[0]))["signed_up"] == 1
    assert ok(post(client, f"/activities/{aid}/cancel-signup", headers[0]))["signed_up"] == 1
    assert ok(post(client, f"/activities/{aid}/signup", headers[2]))["signed_up"] == 2
    # signing up again after cancelling works too, once a place is free
    assert_error(post(client, f"/activities/{aid}/signup", headers[0]), 409, "activity_full")
    ok(post(client, f"/activities/{aid}/cancel-signup", headers[1]))
    assert ok(post(client, f"/activities/{aid}/signup", headers[0]))["my_signup"]["status"] == "signed_up"
    assert activity_row(app, aid)["signed_up"] == 2
    assert_error(post(client, f"/activities/{aid}/cancel-signup", factory.headers(
        factory.member(world.community, factory.user("没报名"), "volunteer"))), 409, "not_signed_up")


def test_cancel_signup_and_sign_up_only_before_the_start(app, client, factory, world, org, vol):
    aid = publish(client, org, world.community.id)["id"]
    ok(post(client, f"/activities/{aid}/signup", vol))
    set_times(app, aid, starts_in=timedelta(minutes=-1))
    body = assert_error(post(client, f"/activities/{aid}/cancel-signup", vol), 409, "activity_started")
    assert "取消报名" in body["message"]
    late = factory.headers(factory.member(world.community, factory.user("迟到"), "volunteer"))
    assert_error(post(client, f"/activities/{aid}/signup", late), 409, "activity_started")
    assert activity_row(app, aid)["signed_up"] == 1


def test_cancel_before_start_releases_sign_ups(app, client, world, org, vol):
    aid = publish(client, org, world.community.id)["id"]
    ok(post(client, f"/activities/{aid}/signup", vol))
    done = ok(post(client, f"/activities/{aid}/cancel", org, {"reason": "下雨改期"}))
    assert done["status"] == "cancelled" and done["signed_up"] == 0
    assert done["cancel_reason"] == "下雨改期"
    assert signups(app, aid)[world.volunteer.id]["status"] == "cancelled"
    assert_error(post(client, f"/activities/{aid}/signup", vol), 409, "activity_invalid_transition")
    assert_error(post(client, f"/activities/{aid}/cancel", org, {}), 409, "activity_invalid_transition")
    assert_error(post(client, f"/activities/{aid}/complete", org), 409, "activity_invalid_transition")
    assert_error(client.patch(f"{API}/activities/{aid}", headers=org, json={"title": "新"}), 409,
                 "activity_invalid_transition")


def test_cancel_and_edit_refused_once_started_complete_refused_before(app, client, world, org):
    aid = publish(client, org, world.community.id)["id"]
    assert_error(post(client, f"/activities/{aid}/complete", org), 409, "activity_not_started")
    set_times(app, aid, starts_in=timedelta(seconds=-1))
    assert_error(post(client, f"/activities/{aid}/cancel", org, {}), 409, "activity_started")
    assert_error(client.patch(f"{API}/activities/{aid}", headers=org, json={"title": "改名"}), 409,
                 "activity_started")
    assert activity_row(app, aid)["status"] == "published"


def test_edit_before_start(app, client, factory, world, org):
    aid = publish(client, org, world.community.id, capacity=3)["id"]
    for person in volunteers(factory, world.community, 2):
        ok(post(client, f"/activities/{aid}/signup", factory.headers(person)))
    start = now() + timedelta(days=3)
    changed = ok(client.patch(f"{API}/activities/{aid}", headers=org, json={
        "title": "  改期：敬老院陪伴 ", "hours": 3, "capacity": 2, "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat()}))
    assert changed["title"] == "改期：敬老院陪伴" and changed["hours"] == 3.0
    assert changed["capacity"] == 2
    body = assert_field_error(client.patch(f"{API}/activities/{aid}", headers=org,
                                           json={"capacity": 1}), "capacity")
    assert "2" in body["errors"]["capacity"][0]
    assert_field_error(client.patch(f"{API}/activities/{aid}", headers=org,
                                    json={"ends_at": (start - timedelta(hours=1)).isoformat()}),
                       "ends_at")
    assert activity_row(app, aid)["capacity"] == 2


# --- check-in codes -----------------------------------------------------------------------

@pytest.fixture
def started(app, client, world, org, vol):
    """An activity that started 5 minutes ago with the world's volunteer signed up."""
    aid = publish(client, org, world.community.id)["id"]
    ok(post(client, f"/activities/{aid}/signup", vol))
    set_times(app, aid, starts_in=timedelta(minutes=-5))
    return aid


def test_check_in_with_the_scanned_token(app, client, world, vol, started):
    signed = ok(post(client, f"/activities/{started}/checkin", vol, {"token": token_for(app, started)}))
    assert signed["status"] == "attended" and signed["checkin_method"] == "qr"
    again = ok(post(client, f"/activities/{started}/checkin", vol, {"code": "000000"}))
    assert again["status"] == "attended"  # already in: nothing more to check


def test_refused_codes_and_tokens(app, client, world, org, vol, started, monkeypatch):
    other = publish(client, org, world.community.id)["id"]
    set_times(app, other, starts_in=timedelta(minutes=-5))
    code = current_code(app, started)
    forged = token_for(app, started)[:-3] + "abc"
    cases = [
        ({"code": current_code(app, other)}, "checkin_code_invalid"),      # other activity's
        ({"code": "12345"}, "checkin_code_invalid"),
        ({"code": "abcdef"}, "checkin_code_invalid"),
        ({"token": forged}, "checkin_token_invalid"),                     # forged
        ({"token": token_for(app, other)}, "checkin_token_invalid"),       # other activity's
    ]
    for body, slug in cases:
        assert_error(post(client, f"/activities/{started}/checkin", vol, body), 409, slug, body)
    assert signups(app, started)[world.volunteer.id]["status"] == "signed_up"

    # an expired token (a screenshot older than 2 minutes) and a code from 2.5 minutes ago
    from app.activities import service
    old_token = token_for(app, started)
    old_code = code
    later = now() + timedelta(seconds=151)
    monkeypatch.setattr(service, "utcnow", lambda: later)
    monkeypatch.setattr(service, "ATTEMPTS_PER_MINUTE", 100)
    assert_error(post(client, f"/activities/{started}/checkin", vol, {"token": old_token}), 409,
                 "checkin_token_invalid")
    assert_error(post(client, f"/activities/{started}/checkin", vol, {"code": old_code}), 409,
                 "checkin_code_invalid")
    assert signups(app, started)[world.volunteer.id]["status"] == "signed_up"


def test_code_accepted_for_two_minutes(app, client, world, vol, started, monkeypatch):
    from app.activities import service
    code = current_code(app, started)
    shown = now()
    monkeypatch.setattr(service, "utcnow", lambda: shown + timedelta(seconds=85))
    assert ok(post(client, f"/activities/{started}/checkin", vol, {"code": f" {code[:3]} {code[3:]}"})
              )["status"] == "attended"


def test_five_tries_a_minute_then_429(app, client, world, vol, started):
    for _ in range(5):
        assert_error(post(client, f"/activities/{started}/checkin", vol, {"code": "000001"}), 409,
                     "checkin_code_invalid")
    response = post(client, f"/activities/{started}/checkin", vol,
                    {"code": current_code(app, started)})
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert signups(app, started)[world.volunteer.id]["status"] == "signed_up"


def test_check_in_window(app, client, factory, world, org, vol):
    aid = publish(client, org, world.community.id)["id"]
    ok(post(client, f"/activities/{aid}/signup", vol))
    set_times(app, aid, starts_in=timedelta(minutes=31))
    body = assert_error(post(client, f"/activities/{aid}/checkin", vol,
                             {"code": current_code(app, aid)}), 409, "checkin_closed")
    assert "30" in body["message"]
    assert_error(post(client, f"/activities/{aid}/checkin", org, {"user_id": world.volunteer.id}),
                 409, "checkin_closed")
    set_times(app, aid, starts_in=timedelta(minutes=29))
    ok(post(client, f"/activities/{aid}/checkin", vol, {"code": current_code(app, aid)}))

    late = publish(client, org, world.community.id)["id"]
    ok(post(client, f"/activities/{late}/signup", vol))
    set_times(app, late, starts_in=timedelta(hours=-3), lasts=timedelta(hours=2))
    assert_error(post(client, f"/activities/{late}/checkin", vol, {"code": current_code(app, late)}),
                 409, "checkin_closed")
    # an organiser may still put attendance right after the end, before completing
    ok(post(client, f"/activities/{late}/checkin", org, {"user_id": world.volunteer.id}))


def test_self_check_in_needs_a_sign_up(app, client, factory, world, org, started):
    other = factory.headers(factory.member(world.community, factory.user("没报名"), "volunteer"))
    assert_error(post(client, f"/activities/{started}/checkin", other,
                      {"code": current_code(app, started)}), 409, "not_signed_up")


def test_walk_ins_count_against_capacity(app, client, factory, world, org):
    aid = publish(client, org, world.community.id, capacity=1)["id"]
    first, second = volunteers(factory, world.community, 2)
    set_times(app, aid, starts_in=timedelta(minutes=-1))
    walked = ok(post(client, f"/activities/{aid}/checkin", org, {"user_id": first.id}))
    assert walked["walk_in"] is True
    assert_error(post(client, f"/activities/{aid}/checkin", org, {"user_id": second.id}), 409,
                 "activity_full")
    assert_field_error(post(client, f"/activities/{aid}/checkin", org,
                            {"user_id": world.other_volunteer.id}), "user_id")
    assert_field_error(post(client, f"/activities/{aid}/checkin", org,
                            {"user_id": world.resident.id}), "user_id")
    assert activity_row(app, aid)["signed_up"] == 1


# --- who may ------------------------------------------------------------------------------

def test_permissions_across_roles_and_communities(app, client, factory, world, org, vol):
    cid = world.community.id
    aid = publish(client, org, cid)["id"]
    resident = factory.headers(world.resident)
    outsider = factory.headers(world.outsider)
    other_org = factory.headers(world.other_organiser)
    other_vol = factory.headers(world.other_volunteer)
    admin = factory.headers(world.admin)

    assert_error(post(client, f"/communities/{cid}/activities", vol, activity_body()), 403)
    assert_error(post(client, f"/communities/{cid}/activities", resident, activity_body()), 403)
    assert_error(post(client, f"/communities/{cid}/activities", other_org, activity_body()), 404)
    assert_error(client.get(f"{API}/communities/{cid}/activities", headers=outsider), 404)
    assert_error(client.get(f"{API}/activities/{aid}", headers=other_vol), 404)
    assert_error(client.get(f"{API}/activities/{aid}"), 401)
    for path in ("cancel", "complete"):
        assert_error(post(client, f"/activities/{aid}/{path}", vol, {} if path == "cancel" else None),
                     403)
        assert_error(post(client, f"/activities/{aid}/{path}", other_org,
                          {} if path == "cancel" else None), 404)
    for path in ("checkin-code", "checkin-code.png", "attendance"):
        assert_error(client.get(f"{API}/activities/{aid}/{path}", headers=vol), 403)
        assert_error(client.get(f"{API}/activities/{aid}/{path}", headers=other_org), 404)
    assert_error(client.patch(f"{API}/activities/{aid}", headers=vol, json={"title": "x"}), 403)
    assert_error(post(client, f"/activities/{aid}/signup", resident), 403)
    assert_error(post(client, f"/activities/{aid}/signup", other_vol), 404)
    set_times(app, aid, starts_in=timedelta(minutes=-1))
    assert_error(post(client, f"/activities/{aid}/checkin", vol, {"user_id": world.volunteer.id}), 403)
    assert_error(post(client, f"/activities/{aid}/checkin", resident, {"code": "123456"}), 403)
    assert activity_row(app, aid)["signed_up"] == 0

    # organisers may sign up themselves; an admin may organise but not volunteer
    set_times(app, aid, starts_in=timedelta(days=1))
    assert ok(post(client, f"/activities/{aid}/signup", org))["my_signup"]["status"] == "signed_up"
    assert_error(post(client, f"/activities/{aid}/signup", admin), 403)
    assert ok(client.get(f"{API}/activities/{aid}/attendance", headers=admin))["total"] == 1
    png = client.get(f"{API}/activities/{aid}/checkin-code.png", headers=org)
    assert png.status_code == 200 and png.mimetype == "image/png"
    from tests.live_pages import decode_qr
    assert f"/a/{aid}/checkin?t=" in decode_qr(png.data)


# --- bad input ----------------------------------------------------------------------------

BAD_FIELDS = [
    ({"title": None}, "title"), ({"title": ""}, "title"), ({"title": "  "}, "title"),
    ({"title": "长" * 61}, "title"), ({"title": 5}, "title"), ({"title": "a\x00b"}, "title"),
    ({"description": "长" * 2001}, "description"), ({"description": ["x"]}, "description"),
    ({"place": ""}, "place"), ({"place": "地" * 101}, "place"), ({"place": 1}, "place"),
    ({"starts_at": "tomorrow"}, "starts_at"), ({"starts_at": 1700000000}, "starts_at"),
    ({"starts_at": (now() - timedelta(hours=1)).isoformat(),
      "ends_at": (now() + timedelta(hours=1)).isoformat()}, "starts_at"),
    ({"starts_at": (now() + timedelta(days=400)).isoformat(),
      "ends_at": (now() + timedelta(days=400, hours=1)).isoformat()}, "starts_at"),
    ({"ends_at": (now() + timedelta(days=1)).isoformat()}, "ends_at"),   # before the start
    ({"ends_at": (now() + timedelta(days=12)).isoformat()}, "ends_at"),  # longer than 7 days
    ({"capacity": 0}, "capacity"), ({"capacity": -1}, "capacity"), ({"capacity": 10**9}, "capacity"),
    ({"capacity": "10"}, "capacity"), ({"capacity": 2.5}, "capacity"), ({"capacity": True}, "capacity"),
    ({"level": 0}, "level"), ({"level": 6}, "level"), ({"level": "2"}, "level"),
    ({"hours": 0}, "hours"), ({"hours": 0.25}, "hours"), ({"hours": 1.3}, "hours"),
    ({"hours": 24.5}, "hours"), ({"hours": -1}, "hours"), ({"hours": "2"}, "hours"),
    ({"hours": True}, "hours"), ({"hours": None}, "hours"), ({"hours": 1e308}, "hours"),
    ({"status": "completed"}, "status"), ({"signed_up": 3}, "signed_up"),
]


def test_bad_input_for_every_field_changes_nothing(app, client, world, org):
    cid = world.community.id
    for change, field in BAD_FIELDS:
        response = client.post(f"{API}/communities/{cid}/activities", headers=org,
                               json=activity_body(**change))
        assert_field_error(response, field, note=change)
    for field in ("title", "place", "starts_at", "ends_at", "capacity", "level", "hours"):
        body = activity_body()
        body.pop(field)
        assert_field_error(client.post(f"{API}/communities/{cid}/activities", headers=org,
                                       json=body), field, note=field)
    assert client.get(f"{API}/communities/{cid}/activities", headers=org).get_json()["total"] == 0
    aid = publish(client, org, cid)["id"]
    before = activity_row(app, aid)
    for change, field in BAD_FIELDS:
        if field in ("ends_at",):
            continue
        response = client.patch(f"{API}/activities/{aid}", headers=org, json=change)
        if field == "starts_at" and "ends_at" in change:
            assert response.status_code == 422, change
            continue
        if change.get(field, 0) is None and field in ("hours", "title"):
            assert response.status_code == 422, change
            continue
        assert_field_error(response, field, note=change)
    assert activity_row(app, aid) == before
    assert_field_error(post(client, f"/activities/{aid}/checkin", org, {}), "code")
    assert_field_error(post(client, f"/activities/{aid}/checkin", org,
                            {"code": "123456", "user_id": 1}), "code")
    assert_field_error(post(client, f"/activities/{aid}/checkin", org, {"user_id": "1"}), "user_id")
    assert_field_error(post(client, f"/activities/{aid}/cancel", org, {"reason": "原" * 201}), "reason")


def test_unicode_text_kept_and_hours_accepted(client, world, org):
    created = publish(client, org, world.community.id, title="🌸 重阳节·敬老 Ω", place="管园村 2 号楼",
                      hours=24, capacity=1000)
    assert created["title"] == "🌸 重阳节·敬老 Ω" and created["hours"] == 24.0
    assert publish(client, org, world.community.id, hours=0.5)["hours"] == 0.5
    naive = activity_body()
    naive["starts_at"] = (now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    naive["ends_at"] = (now() + timedelta(days=2, hours=3)).strftime("%Y-%m-%dT%H:%M")
    assert ok(client.post(f"{API}/communities/{world.community.id}/activities", headers=org,
                          json=naive), 201)["starts_at"].endswith("+08:00")


def test_lists_upcoming_first_and_paginate(app, client, world, org, vol):
    cid = world.community.id
    ids = [publish(client, org, cid, title=f"活动{i}")["id"] for i in range(4)]
    set_times(app, ids[0], starts_in=timedelta(days=-3))
    set_times(app, ids[1], starts_in=timedelta(days=-1))
    set_times(app, ids[2], starts_in=timedelta(days=5))
    set_times(app, ids[3], starts_in=timedelta(days=1))
    listed = ok(client.get(f"{API}/communities/{cid}/activities", headers=vol))
    assert [a["id"] for a in listed["items"]] == [ids[3], ids[2], ids[1], ids[0]]
    page = ok(client.get(f"{API}/communities/{cid}/activities?per_page=1&page=2", headers=vol))
    assert [a["id"] for a in page["items"]] == [ids[2]] and page["total"] == 4
    upcoming = ok(client.get(f"{API}/communities/{cid}/activities?when=upcoming", headers=vol))
    assert {a["id"] for a in upcoming["items"]} == {ids[2], ids[3]}
    assert_field_error(client.get(f"{API}/communities/{cid}/activities?when=soon", headers=vol), "when")
    assert_field_error(client.get(f"{API}/communities/{cid}/activities?per_page=101", headers=vol),
                       "per_page")
