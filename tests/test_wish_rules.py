"""The rules around the lifecycle: own wishes, the claim cap, who fulfils and confirms, proxy
posting, dispatch, points on close (exactly once, through the ledger), pending points, extend."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error, assert_field_error, reading
from tests.wish_helpers import API, Kit, award_transfers, counts, wish_state


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def full_table(kit, **changes) -> dict:
    """The community's points table with some (category, level) → points changed."""
    body = kit.ok(kit.get(f"/communities/{kit.cid}/points-rules", kit.organiser))
    for rule in body["rules"]:
        rule["points"] = changes.get((rule["category"], rule["level"]), rule["points"])
    return body


# --- own wishes and the claim cap ---------------------------------------------------------

def test_a_volunteer_cannot_claim_their_own_wish(kit):
    wid = kit.post_wish(kit.volunteer, title="想找人陪我去医院复查")["id"]
    kit.do(wid, "approve", kit.organiser, level=1)
    before = wish_state(kit.app, wid)
    assert_error(kit.act(wid, "claim", kit.volunteer), 403, "own_wish")
    assert wish_state(kit.app, wid) == before
    # Nor can an organiser dispatch it to them.
    response = kit.act(wid, "assign", kit.organiser, volunteer_id=kit.volunteer.id)
    assert response.status_code in (403, 422), response.get_data(as_text=True)
    assert response.get_json()["error"] in ("own_wish", "validation_error")
    assert wish_state(kit.app, wid) == before
    # Someone else can.
    assert kit.do(wid, "claim", kit.volunteer2)["claimer_id"] == kit.volunteer2.id


def test_wish_settings_have_defaults_and_only_organisers_change_them(kit):
    settings = kit.ok(kit.get(f"/communities/{kit.cid}/wish-settings", kit.volunteer))
    assert settings == {"max_active_claims": 3, "fulfil_days": 3, "extension_days": 3,
                        "auto_confirm_days": 7, "auto_confirm_rating": 5, "escalate_hours": 24,
                        "default_level": 1}
    assert_error(kit.patch(f"/communities/{kit.cid}/wish-settings", kit.volunteer,
                           {"max_active_claims": 9}), 403)
    assert_error(kit.patch(f"/communities/{kit.w.other.id}/wish-settings", kit.organiser,
                           {"max_active_claims": 9}), 404)
    for bad in ({"max_active_claims": 0}, {"max_active_claims": "5"}, {"auto_confirm_rating": 6},
                {"escalate_hours": 1.5}, {"claim_cap": 3}):
        assert_error(kit.patch(f"/communities/{kit.cid}/wish-settings", kit.organiser, bad), 422)
    assert kit.ok(kit.get(f"/communities/{kit.cid}/wish-settings", kit.organiser)) == settings
    changed = kit.settings(max_active_claims=2, auto_confirm_rating=4)
    assert changed == {**settings, "max_active_claims": 2, "auto_confirm_rating": 4}
    # Another community keeps its own.
    other = kit.ok(kit.get(f"/communities/{kit.w.other.id}/wish-settings", kit.w.other_organiser))
    assert other["max_active_claims"] == 3


@pytest.mark.parametrize("cap", [1, 2])
def test_a_volunteer_holds_at_most_the_configured_number_of_claims(kit, cap):
    kit.settings(max_active_claims=cap)
    wishes = [kit.make("open") for _ in range(cap + 2)]
    for wid in wishes[:cap]:
        kit.do(wid, "claim", kit.volunteer)
    before = wish_state(kit.app, wishes[cap])
    body = assert_error(kit.act(wishes[cap], "claim", kit.volunteer), 409, "claim_limit_reached")
    assert str(cap) in body["message"]
    assert wish_state(kit.app, wishes[cap]) == before
    # Dispatch respects the cap too.
    assert_error(kit.act(wishes[cap], "assign", kit.organiser, volunteer_id=kit.volunteer.id),
                 409, "claim_limit_reached")
    assert wish_state(kit.app, wishes[cap]) == before
    # Another volunteer is not affected.
    kit.do(wishes[cap], "claim", kit.volunteer2)
    # Fulfilling one frees a place; so does releasing one.
    kit.do(wishes[0], "fulfil", kit.volunteer)
    kit.do(wishes[cap + 1], "claim", kit.volunteer)
    assert_error(kit.act(kit.make("open"), "claim", kit.volunteer), 409, "claim_limit_reached")
    kit.do(wishes[cap + 1], "release", kit.volunteer)
    kit.do(wishes[cap + 1], "claim", kit.volunteer)


def test_the_default_cap_is_three(kit):
    wishes = [kit.make("open") for _ in range(4)]
    for wid in wishes[:3]:
        kit.do(wid, "claim", kit.volunteer)
    assert_error(kit.act(wishes[3], "claim", kit.volunteer), 409, "claim_limit_reached")


# --- who does what ------------------------------------------------------------------------

def test_only_the_claimer_fulfils(kit):
    wid = kit.make("claimed")
    before = wish_state(kit.app, wid)
    for user in (kit.volunteer2, kit.organiser, kit.resident, kit.w.admin):
        assert_error(kit.act(wid, "fulfil", user), 403)
    assert_error(kit.act(wid, "fulfil", kit.w.other_volunteer), 404)
    assert wish_state(kit.app, wid) == before
    wish = kit.do(wid, "fulfil", kit.volunteer, note="已修好")
    assert wish["status"] == "fulfilled" and wish["fulfil_note"] == "已修好"
    assert wish["fulfilled_at"] is not None


@pytest.mark.parametrize("who", ["owner", "organiser"])
def test_the_owner_or_an_organiser_by_proxy_confirms(kit, who):
    user = kit.resident if who == "owner" else kit.organiser
    wid = kit.make("fulfilled")
    for stranger in (kit.volunteer, kit.volunteer2):
        assert_error(kit.act(wid, "confirm", stranger), 403)
    wish = kit.do(wid, "confirm", user, rating=5, comment="谢谢小王")
    assert wish["status"] == "closed" and wish["rating"] == 5 and wish["comment"] == "谢谢小王"
    last = wish["timeline"][-1]
    assert (last["action"], last["actor_id"], last["by_proxy"]) == ("confirm", user.id,
                                                                    who == "organiser")


@pytest.mark.parametrize("who", ["owner", "organiser"])
def test_the_owner_or_an_organiser_by_proxy_disputes(kit, who):
    user = kit.resident if who == "owner" else kit.organiser
    wid = kit.make("fulfilled")
    assert_error(kit.act(wid, "dispute", kit.volunteer), 403)
    wish = kit.do(wid, "dispute", user, reason="水龙头还在滴水")
    assert wish["status"] == "claimed" and wish["claimer_id"] == kit.volunteer.id
    assert wish["fulfilled_at"] is None
    last = wish["timeline"][-1]
    assert (last["action"], last["note"], last["by_proxy"]) == (
        "dispute", "水龙头还在滴水", who == "organiser")
    # The claimer can fulfil again and the owner confirm.
    kit.do(wid, "fulfil", kit.volunteer, note="换了新的阀芯")
    assert kit.do(wid, "confirm", kit.resident, rating=4)["status"] == "closed"


def test_an_organiser_posts_for_a_resident_without_an_account(kit, app):
    before = counts(app)
    body = {"title": "帮周大爷买降压药", "category": "errands", "address": "3 栋 101",
            "on_behalf_of": {"name": "周大爷", "phone": "13955556666"}}
    wish = kit.ok(kit.post(f"/boards/{kit.board['id']}/wishes", kit.organiser, body), 201)
    after = counts(app)
    assert after["users"] == before["users"]  # no account was made for 周大爷
    assert after["memberships"] == before["memberships"]
    assert wish["status"] == "pending" and wish["posted_by_proxy"] is True
    assert wish["owner_id"] is None and wish["owner_name"] == "周大爷"
    assert wish["contact_phone"] == "13955556666"
    assert wish["timeline"][0]["by_proxy"] is True
    assert wish["timeline"][0]["actor_id"] == kit.organiser.id
    # Nobody can log in as 周大爷.
    response = kit.client.post(f"{API}/auth/login",
                               json={"phone": "13955556666", "password": "whatever123"})
    assert response.status_code == 401
    # The whole life runs, the organiser confirming by proxy; the volunteer earns.
    wid = wish["id"]
    kit.do(wid, "approve", kit.organiser, level=2)
    assert_error(kit.act(wid, "cancel", kit.resident), 403)  # a resident is not its owner
    kit.do(wid, "claim", kit.volunteer)
    assert kit.wish(wid, kit.volunteer)["owner_name"] == "周大爷"  # the claimer sees whom to help
    kit.do(wid, "fulfil", kit.volunteer)
    closed = kit.do(wid, "confirm", kit.organiser, rating=5)
    assert closed["timeline"][-1]["by_proxy"] is True
    assert kit.points(kit.volunteer)["balance"] == kit.rule_points(2) * kit.factor(5) // 100


def test_only_organisers_may_post_on_someones_behalf(kit, app):
    body = {"title": "代发", "category": "other",
            "on_behalf_of": {"name": "周大爷", "phone": "13955556666"}}
    for user in (kit.resident, kit.volunteer):
        before = counts(app)
        assert_error(kit.post(f"/boards/{kit.board['id']}/wishes", user, body), 403)
        assert counts(app) == before
    for proxy in ({"name": "周大爷"}, {"name": "", "phone": "13955556666"},
                  {"name": "周大爷", "phone": "139555566"}, {"name": "周大爷", "phone": "1",
                                                             "id": 3}):
        before = counts(app)
        assert_error(kit.post(f"/boards/{kit.board['id']}/wishes", kit.organiser,
                              {**body, "on_behalf_of": proxy}), 422)
        assert counts(app) == before


def test_anyone_who_posts_on_a_board_joins_its_community_as_a_resident(kit, factory):
    newcomer = factory.user("新住户")
    wish = kit.post_wish(newcomer)
    assert wish["owner_id"] == newcomer.id
    me = kit.ok(kit.get("/me", newcomer))
    assert {"community_id": kit.cid, "role": "resident"} in [
        {k: m[k] for k in ("community_id", "role")} for m in me["memberships"]]
    # A volunteer posting keeps their role.
    kit.post_wish(kit.volunteer)
    roles = kit.ok(kit.get(f"/communities/{kit.cid}/members?role=volunteer", kit.organiser))
    assert kit.volunteer.id in [m["user_id"] for m in roles["items"]]


# --- dispatch (派单) -----------------------------------------------------------------------

def test_an_organiser_dispatches_to_a_volunteer_of_the_community(kit):
    wid = kit.make("open")
    wish = kit.do(wid, "assign", kit.organiser, volunteer_id=kit.volunteer2.id)
    assert wish["status"] == "claimed" and wish["claimer_id"] == kit.volunteer2.id
    assert wish["fulfil_due_at"] is not None
    event = wish["timeline"][-1]
    assert event["action"] == "assign" and event["actor_id"] == kit.organiser.id
    assert kit.volunteer2.display_name in event["note"]
    # The assigned volunteer now holds it: they fulfil; the one who did not claim cannot.
    assert_error(kit.act(wid, "fulfil", kit.volunteer), 403)
    kit.do(wid, "fulfil", kit.volunteer2)


@pytest.mark.parametrize("target", ["resident", "organiser", "other_volunteer", "outsider",
                                    "nobody"])
def test_dispatch_only_to_a_volunteer_of_the_community(kit, target):
    volunteer_id = {"resident": kit.resident.id, "organiser": kit.organiser.id,
                    "other_volunteer": kit.w.other_volunteer.id, "outsider": kit.w.outsider.id,
                    "nobody": 987654}[target]
    wid = kit.make("open")
    before = wish_state(kit.app, wid)
    assert_field_error(kit.act(wid, "assign", kit.organiser, volunteer_id=volunteer_id),
                       "volunteer_id")
    assert wish_state(kit.app, wid) == before


def test_volunteers_cannot_dispatch(kit):
    wid = kit.make("open")
    assert_error(kit.act(wid, "assign", kit.volunteer, volunteer_id=kit.volunteer2.id), 403)
    assert_error(kit.act(wid, "assign", kit.w.other_organiser, volunteer_id=kit.volunteer.id), 404)
    assert kit.wish(wid)["status"] == "open"


# --- points on close ----------------------------------------------------------------------

def test_four_stars_on_a_level_three_wish_award_eighty_percent_once(kit, app):
    level3, factor4 = kit.rule_points(3), kit.factor(4)
    assert factor4 == 80  # PRODUCT.md's default satisfaction factor
    wid = kit.make("fulfilled", level=3)
    assert award_transfers(app, wid) == []
    wish = kit.do(wid, "confirm", kit.resident, rating=4, comment="很好")
    expected = level3 * 80 // 100
    assert wish["points_awarded"] == expected
    transfers = award_transfers(app, wid)
    assert len(transfers) == 1
    assert transfers[0]["amount"] == expected and transfers[0]["kind"] == "earn_wish"
    points = kit.points(kit.volunteer)
    assert points["balance"] == points["earned_total"] == expected
    ledger = kit.ok(kit.get(f"/me/ledger?community_id={kit.cid}", kit.volunteer))
    assert [(e["amount"], e["reference"]) for e in ledger["items"]] == [
        (expected, f"wish:{wid}:award")]
    # Confirming again is refused and posts nothing more.
    before = counts(app)
    assert_error(kit.act(wid, "confirm", kit.resident, rating=5), 409, "invalid_transition")
    assert_error(kit.act(wid, "confirm", kit.organiser, rating=5), 409, "invalid_transition")
    assert counts(app) == before
    assert len(award_transfers(app, wid)) == 1
    assert kit.points(kit.volunteer)["balance"] == expected


def test_the_award_follows_the_communitys_own_rules_table(kit):
    table = full_table(kit, **{})
    for rule in table["rules"]:
        if rule["category"] == "wish" and rule["level"] == 3:
            rule["points"] = 55
    table["satisfaction_factors"]["3"] = 50
    kit.ok(kit.client.put(f"{API}/communities/{kit.cid}/points-rules", json=table,
                          headers=kit.h(kit.organiser)))
    wid = kit.make("fulfilled", level=3)
    assert kit.do(wid, "confirm", kit.resident, rating=4)["points_awarded"] == 55 * 80 // 100
    wid = kit.make("fulfilled", level=3, claimer=kit.volunteer2)
    assert kit.do(wid, "confirm", kit.resident, rating=3)["points_awarded"] == 55 * 50 // 100
    assert kit.points(kit.volunteer)["balance"] == 44
    assert kit.points(kit.volunteer2)["balance"] == 27


@pytest.mark.parametrize("rating", [1, 2])
def test_one_or_two_stars_award_nothing(kit, app, rating):
    wid = kit.make("fulfilled", level=5)
    before = counts(app)
    wish = kit.do(wid, "confirm", kit.resident, rating=rating, comment="没修好就走了")
    assert wish["status"] == "closed" and wish["rating"] == rating
    assert wish["points_awarded"] == 0
    assert award_transfers(app, wid) == []
    assert counts(app)["transfers"] == before["transfers"]
    assert kit.points(kit.volunteer)["balance"] == 0


def test_the_claimer_is_paid_not_whoever_else_touched_the_wish(kit):
    wid = kit.make("open", level=2)
    kit.do(wid, "claim", kit.volunteer)
    kit.do(wid, "release", kit.volunteer)
    kit.do(wid, "assign", kit.organiser, volunteer_id=kit.volunteer2.id)
    kit.do(wid, "fulfil", kit.volunteer2)
    kit.do(wid, "confirm", kit.resident, rating=5)
    assert kit.points(kit.volunteer)["balance"] == 0
    assert kit.points(kit.volunteer2)["balance"] == kit.rule_points(2)


def test_pending_points_show_while_the_wish_awaits_confirmation(kit):
    level4 = kit.rule_points(4)
    wid = kit.make("claimed", level=4)
    assert kit.points(kit.volunteer)["pending"] == 0
    kit.do(wid, "fulfil", kit.volunteer)
    # Pending is what the auto-confirm rating (5★ by default: 100 %) would bring.
    points = kit.points(kit.volunteer)
    assert (points["pending"], points["balance"]) == (level4, 0)
    assert kit.wish(wid, kit.volunteer)["pending_points"] == level4
    kit.settings(auto_confirm_rating=3)
    assert kit.points(kit.volunteer)["pending"] == level4 * kit.factor(3) // 100
    # A second fulfilled wish adds up; others' pending points are their own.
    wid2 = kit.make("fulfilled", level=1)
    assert kit.points(kit.volunteer)["pending"] == (level4 + kit.rule_points(1)) * 60 // 100
    assert kit.points(kit.volunteer2)["pending"] == 0
    kit.do(wid, "confirm", kit.resident, rating=5)
    points = kit.points(kit.volunteer)
    assert points["pending"] == kit.rule_points(1) * 60 // 100
    assert points["balance"] == level4
    kit.do(wid2, "dispute", kit.resident)
    assert kit.points(kit.volunteer)["pending"] == 0


def test_the_daily_cap_limits_wish_awards_and_says_so(kit):
    table = full_table(kit)
    table["daily_earn_cap"] = 25
    kit.ok(kit.client.put(f"{API}/communities/{kit.cid}/points-rules", json=table,
                          headers=kit.h(kit.organiser)))
    wid = kit.make("fulfilled", level=3)
    wish = kit.do(wid, "confirm", kit.resident, rating=5)
    assert wish["points_awarded"] == 25
    assert wish["points_capped"] == kit.rule_points(3) - 25
    assert kit.points(kit.volunteer)["balance"] == 25


# --- the fulfil deadline can be extended once ---------------------------------------------

def test_the_claimer_extends_the_deadline_once(kit, app):
    kit.settings(extension_days=2)
    wid = kit.make("claimed")
    due = kit.wish(wid)["fulfil_due_at"]
    assert_error(kit.act(wid, "extend", kit.volunteer2), 403)
    assert_error(kit.act(wid, "extend", kit.organiser), 403)
    wish = kit.do(wid, "extend", kit.volunteer)
    assert wish["fulfil_extended"] is True and wish["status"] == "claimed"
    from datetime import datetime, timedelta

    moved = datetime.fromisoformat(wish["fulfil_due_at"]) - datetime.fromisoformat(due)
    assert moved == timedelta(days=2)
    before = wish_state(app, wid)
    body = assert_error(kit.act(wid, "extend", kit.volunteer), 409, "already_extended")
    assert body["message"]
    assert wish_state(app, wid) == before
    # A new claim after a release starts with its own one extension.
    kit.do(wid, "release", kit.volunteer)
    kit.do(wid, "claim", kit.volunteer2)
    assert kit.do(wid, "extend", kit.volunteer2)["fulfil_extended"] is True


def test_claiming_sets_the_fulfil_deadline_from_the_settings(kit, app):
    kit.settings(fulfil_days=5)
    wid = kit.make("open")
    kit.do(wid, "claim", kit.volunteer)
    from datetime import timedelta

    from app.wishes.models import Wish

    with reading(app) as session:
        wish = session.get(Wish, wid)
        assert wish.fulfil_due_at - wish.claimed_at == timedelta(days=5)
