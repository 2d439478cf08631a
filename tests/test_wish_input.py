"""Bad input to wishes and their actions → 422 with per-field errors, and NOTHING written."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error, assert_field_error
from tests.wish_helpers import API, Kit, counts, wish_state

GOOD = {"title": "厨房水龙头漏水", "description": "想请人帮忙换个水龙头。", "category": "repair",
        "contact_phone": "13812345678", "address": "3 栋 502"}


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def post_raw(kit, body, user=None):
    return kit.post(f"/boards/{kit.board['id']}/wishes", user or kit.resident, body)


@pytest.mark.parametrize(("field", "value"), [
    ("title", ""),
    ("title", "   "),
    ("title", "\t\n"),
    ("title", "修" * 61),
    ("title", None),
    ("title", 123),
    ("title", ["水龙头"]),
    ("title", "漏水\x00了"),
    ("title", "漏水\u202e了"),  # bidi override: a control/format character
    ("title", "第一行\n第二行"),  # a title is one line
    ("description", "很" * 10_000),
    ("description", "很" * 2001),
    ("description", 42),
    ("category", "food"),
    ("category", "生活帮扶"),  # the label is not the code
    ("category", ""),
    ("category", None),
    ("contact_phone", "12345"),
    ("contact_phone", "138123456789"),
    ("contact_phone", "23812345678"),
    ("contact_phone", "1381234567a"),
    ("contact_phone", "１３８１２３４５６７８"),  # full-width digits
    ("contact_phone", "+8613812345678"),
    ("contact_phone", 13812345678),
    ("address", "楼" * 201),
    ("status", "open"),
    ("level", 5),
    ("owner_id", 1),
    ("claimer_id", 1),
    ("community_id", 2),
    ("board_id", 2),
    ("points_awarded", 100),
    ("escalated", True),
])
def test_bad_wish_fields_are_refused_with_nothing_written(kit, app, field, value):
    before = counts(app)
    response = post_raw(kit, {**GOOD, field: value}, user=kit.w.outsider)
    assert_field_error(response, field)
    assert counts(app) == before  # not even the outsider's resident membership


@pytest.mark.parametrize("missing", ["title", "category"])
def test_required_fields(kit, app, missing):
    before = counts(app)
    body = {k: v for k, v in GOOD.items() if k != missing}
    assert_field_error(post_raw(kit, body), missing)
    assert counts(app) == before


def test_not_json_or_empty_is_refused_with_nothing_written(kit, app):
    before = counts(app)
    url = f"{API}/boards/{kit.board['id']}/wishes"
    headers = kit.h(kit.resident)
    assert_error(kit.client.post(url, data="title=水龙头", headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert_error(kit.client.post(url, data="{not json", headers={
        **headers, "Content-Type": "application/json"}), 400)
    assert_error(kit.client.post(url, json=[GOOD], headers=headers), 422)
    assert_error(kit.client.post(url, json={}, headers=headers), 422)
    assert counts(app) == before


@pytest.mark.parametrize("title", ["🙏 帮忙修水管 🔧", "👨‍👩‍👧 一家人想拍张全家福", "❤️" * 30,
                                   "𠀀𠀁 生僻字也可以", "修" * 60])
def test_emoji_and_long_chinese_titles_are_accepted_and_round_trip(kit, title):
    wish = kit.post_wish(kit.resident, title=title, description=f"说明：{title}")
    assert wish["title"] == title
    again = kit.wish(wish["id"], kit.resident)
    assert (again["title"], again["description"]) == (title, f"说明：{title}")
    listed = kit.ok(kit.get("/wishes?mine=true", kit.resident))["items"]
    assert listed[0]["title"] == title


def test_a_description_may_run_over_several_lines(kit):
    # The board page's description is a textarea: people press Enter.
    text = "家里只有两位老人。\n厨房水龙头一直滴水，\r\n晚上声音很大。"
    wish = kit.post_wish(kit.resident, description=text)
    assert wish["description"] == "家里只有两位老人。\n厨房水龙头一直滴水，\n晚上声音很大。"
    assert kit.wish(wish["id"], kit.resident)["description"] == wish["description"]


@pytest.mark.parametrize("bad", ["响\x00铃", "转义\x1b[31m", "退格\x08", "方向\u202e"])
def test_a_description_still_refuses_other_control_characters(kit, app, bad):
    before = counts(app)
    assert_field_error(post_raw(kit, {**GOOD, "description": f"第一行\n{bad}"}), "description")
    assert counts(app) == before


def test_titles_are_trimmed_and_optional_fields_may_be_null(kit):
    wish = kit.post_wish(kit.resident, title="  水龙头漏水  ", contact_phone=None, address=None)
    assert wish["title"] == "水龙头漏水"
    assert wish["contact_phone"] is None and wish["address"] is None
    wish = kit.ok(post_raw(kit, {"title": "只写标题", "category": "other"}), 201)
    assert wish["description"] == "" and wish["contact_phone"] is None


def test_a_board_that_does_not_exist(kit, app):
    before = counts(app)
    assert_error(kit.post("/boards/999999/wishes", kit.resident, GOOD), 404)
    assert counts(app) == before


# --- actions ------------------------------------------------------------------------------

def assert_action_refused(kit, app, wid, action, body, field, user):
    before, rows = wish_state(app, wid), counts(app)
    response = kit.post(f"/wishes/{wid}/{action}", user, body)
    assert_field_error(response, field)
    assert wish_state(app, wid) == before
    assert counts(app) == rows


@pytest.mark.parametrize("rating", [0, 6, -1, "5", 4.5, 5.0, None, True, [5], {"stars": 5}])
def test_bad_ratings_are_refused(kit, app, rating):
    wid = kit.make("fulfilled")
    assert_action_refused(kit, app, wid, "confirm", {"rating": rating}, "rating", kit.resident)


def test_confirm_needs_a_rating_and_a_short_comment(kit, app):
    wid = kit.make("fulfilled")
    assert_action_refused(kit, app, wid, "confirm", {}, "rating", kit.resident)
    assert_action_refused(kit, app, wid, "confirm", {"rating": 5, "comment": "好" * 501},
                          "comment", kit.resident)
    assert_action_refused(kit, app, wid, "confirm", {"rating": 5, "points": 999}, "points",
                          kit.resident)


@pytest.mark.parametrize("level", [0, 6, -3, "3", 2.5, None, True])
def test_bad_levels_are_refused(kit, app, level):
    wid = kit.make("pending")
    assert_action_refused(kit, app, wid, "approve", {"level": level}, "level", kit.organiser)


def test_approve_needs_a_level_and_takes_nothing_else(kit, app):
    wid = kit.make("pending")
    assert_action_refused(kit, app, wid, "approve", {}, "level", kit.organiser)
    assert_action_refused(kit, app, wid, "approve", {"level": 3, "points": 500}, "points",
                          kit.organiser)


@pytest.mark.parametrize(("state", "action", "who"), [
    ("pending", "reject", "organiser"),
    ("open", "reject", "organiser"),
    ("claimed", "release", "volunteer"),
    ("claimed", "release", "organiser"),
    ("fulfilled", "dispute", "resident"),
])
def test_a_reason_is_required_and_at_most_200_characters(kit, app, state, action, who):
    wid = kit.make(state)
    user = getattr(kit, who)
    for reason in (None, "", "   ", "因" * 201, 7):
        body = {} if reason is None else {"reason": reason}
        assert_action_refused(kit, app, wid, action, body, "reason", user)
    # Exactly 200 is fine, and is kept on the timeline.
    wish = kit.do(wid, action, user, reason="因" * 200)
    assert wish["timeline"][-1]["note"] == "因" * 200


def test_cancel_reason_is_optional_but_bounded(kit, app):
    wid = kit.make("pending")
    assert_action_refused(kit, app, wid, "cancel", {"reason": "因" * 201}, "reason",
                          kit.resident)
    assert kit.ok(kit.post(f"/wishes/{wid}/cancel", kit.resident, {}))["status"] == "cancelled"


def test_fulfil_needs_a_note(kit, app):
    wid = kit.make("claimed")
    for body in ({}, {"note": ""}, {"note": "做" * 501}):
        assert_action_refused(kit, app, wid, "fulfil", body, "note", kit.volunteer)


@pytest.mark.parametrize("volunteer_id", [None, "3", 0, -1, 1.5, True])
def test_assign_needs_a_volunteer_id(kit, app, volunteer_id):
    wid = kit.make("open")
    body = {} if volunteer_id is None else {"volunteer_id": volunteer_id}
    assert_action_refused(kit, app, wid, "assign", body, "volunteer_id", kit.organiser)


@pytest.mark.parametrize("action", ["claim", "extend"])
def test_actions_without_a_body_take_no_fields(kit, app, action):
    wid = kit.make("open" if action == "claim" else "claimed")
    assert_action_refused(kit, app, wid, action, {"claimer_id": kit.volunteer2.id},
                          "claimer_id", kit.volunteer)
