"""The points store's rewards (issue 5): organisers manage them, members see what they can afford.

Kinds are goods and services (which have a stock) and honours (which have none). Bad input is a
422 that writes nothing; other roles get 403, other communities 404, no token 401.
"""

from __future__ import annotations

import pytest

from tests.helpers import assert_error, assert_field_error
from tests.store_helpers import (
    API,
    created,
    give_points,
    make_reward,
    ok,
    redeem,
    redemption_row,
    store_state,
    transfers,
)


def rewards_url(cid: int) -> str:
    return f"{API}/communities/{cid}/rewards"


# --- creating and changing -----------------------------------------------------------------

def test_organiser_creates_goods_services_and_honours(client, world, org):
    cid = world.community.id
    oil = make_reward(client, org, cid, name="金龙鱼食用油 5L", kind="goods", cost=30, stock=12,
                      per_user_limit=2, description="每户每月限两桶",
                      image_url="https://example.org/oil.jpg")
    haircut = make_reward(client, org, cid, name="理发", kind="service", cost=15, stock=8)
    honour = make_reward(client, org, cid, name="党员民主评议加分", kind="honour", cost=50)

    assert oil["community_id"] == cid and oil["kind"] == "goods" and oil["kind_label"] == "实物"
    assert (oil["cost"], oil["stock"], oil["per_user_limit"]) == (30, 12, 2)
    assert oil["active"] is True and oil["description"] == "每户每月限两桶"
    assert oil["image_url"] == "https://example.org/oil.jpg"
    assert oil["created_at"].endswith("+08:00")
    assert (haircut["kind"], haircut["kind_label"], haircut["stock"]) == ("service", "服务", 8)
    assert haircut["per_user_limit"] is None
    assert (honour["kind"], honour["kind_label"], honour["stock"]) == ("honour", "荣誉", None)

    listed = ok(client.get(rewards_url(cid), headers=org))
    assert listed["total"] == 3
    assert {r["id"] for r in listed["items"]} == {oil["id"], haircut["id"], honour["id"]}
    assert ok(client.get(f"{API}/rewards/{oil['id']}", headers=org))["stock"] == 12


def test_a_chinese_name_of_64_characters_fits_and_an_admin_may_create(client, world, factory):
    name = "米" * 64
    reward = make_reward(client, factory.headers(world.admin), world.community.id, name=name)
    assert reward["name"] == name


def test_honours_have_no_stock_and_goods_and_services_must_have_one(client, world, org, app):
    cid = world.community.id
    before = store_state(app)
    for body in ({"name": "荣誉", "kind": "honour", "cost": 5, "stock": 3},
                 {"name": "荣誉", "kind": "honour", "cost": 5, "stock": 0},
                 {"name": "大米", "kind": "goods", "cost": 5},
                 {"name": "大米", "kind": "goods", "cost": 5, "stock": None},
                 {"name": "家政", "kind": "service", "cost": 5}):
        assert_field_error(client.post(rewards_url(cid), json=body, headers=org), "stock")
    assert store_state(app) == before

    honour = make_reward(client, org, cid, name="荣誉", kind="honour", cost=5)
    goods = make_reward(client, org, cid, name="大米", kind="goods", cost=5, stock=4)
    before = store_state(app)
    assert_field_error(client.patch(f"{API}/rewards/{honour['id']}", json={"stock": 5},
                                    headers=org), "stock")
    assert_field_error(client.patch(f"{API}/rewards/{goods['id']}", json={"stock": None},
                                    headers=org), "stock")
    assert store_state(app) == before


def test_organiser_patches_a_reward(client, world, org):
    reward = make_reward(client, org, world.community.id)
    changes = {"name": "鲁花花生油 5L", "description": "新到货", "cost": 45, "stock": 20,
               "per_user_limit": 1, "active": False, "image_url": "/static/oil.png"}
    patched = ok(client.patch(f"{API}/rewards/{reward['id']}", json=changes, headers=org))
    for field, value in changes.items():
        assert patched[field] == value, field
    again = ok(client.get(f"{API}/rewards/{reward['id']}", headers=org))
    assert {k: again[k] for k in changes} == changes
    cleared = ok(client.patch(f"{API}/rewards/{reward['id']}",
                              json={"per_user_limit": None, "image_url": None}, headers=org))
    assert cleared["per_user_limit"] is None and cleared["image_url"] is None
    assert cleared["cost"] == 45 and cleared["kind"] == "goods"


# --- what members see ----------------------------------------------------------------------

def test_volunteers_see_active_rewards_with_what_they_can_afford(client, world, org, vol, app,
                                                                factory):
    cid = world.community.id
    cheap = make_reward(client, org, cid, name="洗衣液", cost=10, stock=3)
    exact = make_reward(client, org, cid, name="食用油", cost=15, stock=3)
    dear = make_reward(client, org, cid, name="大米 10kg", cost=20, stock=3)
    hidden = make_reward(client, org, cid, name="下架商品", cost=1, stock=3, active=False)
    give_points(app, cid, [world.volunteer.id], 15, world.organiser.id)

    seen = ok(client.get(rewards_url(cid), headers=vol))
    assert seen["total"] == 3
    by_id = {r["id"]: r for r in seen["items"]}
    assert set(by_id) == {cheap["id"], exact["id"], dear["id"]}
    assert {i: r["affordable"] for i, r in by_id.items()} == {
        cheap["id"]: True, exact["id"]: True, dear["id"]: False}
    assert_error(client.get(f"{API}/rewards/{hidden['id']}", headers=vol), 404)
    assert ok(client.get(f"{API}/rewards/{dear['id']}", headers=vol))["affordable"] is False

    # The mark follows the balance as it is now.
    give_points(app, cid, [world.volunteer.id], 5, world.organiser.id)
    assert ok(client.get(f"{API}/rewards/{dear['id']}", headers=vol))["affordable"] is True

    # A resident without points sees the same rewards, none affordable.
    resident = ok(client.get(rewards_url(cid), headers=factory.headers(world.resident)))
    assert {r["id"] for r in resident["items"]} == set(by_id)
    assert {r["affordable"] for r in resident["items"]} == {False}

    # Organisers see inactive ones too, and may filter by the flag.
    assert ok(client.get(rewards_url(cid), headers=org))["total"] == 4
    inactive = ok(client.get(rewards_url(cid) + "?active=false", headers=org))
    assert [r["id"] for r in inactive["items"]] == [hidden["id"]]
    assert ok(client.get(f"{API}/rewards/{hidden['id']}", headers=org))["active"] is False
    # ... and the filter gives a volunteer nothing beyond the active ones.
    assert ok(client.get(rewards_url(cid) + "?active=false", headers=vol))["total"] == 3


def test_affordable_counts_the_balance_in_that_community_only(client, world, factory, app):
    both = factory.user("两边都参加")
    factory.member(world.community, both, "volunteer")
    factory.member(world.other, both, "volunteer")
    here = make_reward(client, factory.headers(world.organiser), world.community.id, cost=10)
    there = make_reward(client, factory.headers(world.other_organiser), world.other.id, cost=10)
    give_points(app, world.community.id, [both.id], 50, world.organiser.id)

    headers = factory.headers(both)
    assert ok(client.get(f"{API}/rewards/{here['id']}", headers=headers))["affordable"] is True
    assert ok(client.get(f"{API}/rewards/{there['id']}", headers=headers))["affordable"] is False


def test_changing_a_cost_never_changes_past_redemptions(client, world, org, vol, app):
    cid = world.community.id
    reward = make_reward(client, org, cid, name="食用油", cost=10, stock=10)
    give_points(app, cid, [world.volunteer.id], 100, world.organiser.id)
    first = created(redeem(client, vol, reward["id"], 2))
    assert (first["unit_cost"], first["cost_total"]) == (10, 20)

    ok(client.patch(f"{API}/rewards/{reward['id']}", json={"cost": 30, "name": "鲁花油"},
                    headers=org))
    past = ok(client.get(f"{API}/redemptions/{first['id']}", headers=vol))
    assert (past["unit_cost"], past["cost_total"], past["reward_name"]) == (10, 20, "食用油")

    second = created(redeem(client, vol, reward["id"], 1))
    assert (second["unit_cost"], second["cost_total"], second["reward_name"]) == (30, 30, "鲁花油")

    # Cancelling the first refunds what was paid then, not today's price.
    ok(client.post(f"{API}/redemptions/{first['id']}/cancel", json={}, headers=vol))
    refund = transfers(app, f"redemption:{first['id']}:refund")
    assert [t["amount"] for t in refund] == [20]
    assert redemption_row(app, first["id"])["cost_total"] == 20
    me = ok(client.get(f"{API}/me/points?community_id={cid}", headers=vol))
    assert me["balance"] == 100 - 20 - 30 + 20


# --- permissions ---------------------------------------------------------------------------

def test_only_organisers_create_and_change_rewards(client, world, factory, org, app):
    cid = world.community.id
    reward = make_reward(client, org, cid)
    before = store_state(app)
    body = {"name": "大米", "kind": "goods", "cost": 5, "stock": 1}

    for user in (world.volunteer, world.resident):
        headers = factory.headers(user)
        assert_error(client.post(rewards_url(cid), json=body, headers=headers), 403)
        assert_error(client.patch(f"{API}/rewards/{reward['id']}", json={"cost": 1},
                                  headers=headers), 403)
    # Another community's organiser, and a stranger: as if it did not exist.
    for user in (world.other_organiser, world.outsider, world.other_volunteer):
        headers = factory.headers(user)
        assert_error(client.post(rewards_url(cid), json=body, headers=headers), 404)
        assert_error(client.patch(f"{API}/rewards/{reward['id']}", json={"cost": 1},
                                  headers=headers), 404)
        assert_error(client.get(f"{API}/rewards/{reward['id']}", headers=headers), 404)
        assert_error(client.get(rewards_url(cid), headers=headers), 404)
    # No token.
    assert_error(client.post(rewards_url(cid), json=body), 401)
    assert_error(client.patch(f"{API}/rewards/{reward['id']}", json={"cost": 1}), 401)
    assert_error(client.get(rewards_url(cid)), 401)
    assert_error(client.get(f"{API}/rewards/{reward['id']}"), 401)
    # Unknown ids.
    assert_error(client.patch(f"{API}/rewards/999999", json={"cost": 1}, headers=org), 404)
    assert_error(client.post(rewards_url(999999), json=body, headers=org), 404)
    assert store_state(app) == before


# --- bad input -----------------------------------------------------------------------------

GOOD = {"name": "洗衣液", "kind": "goods", "cost": 10, "stock": 3}
BAD_CREATES = [
    ({"cost": 0}, "cost"),
    ({"cost": -1}, "cost"),
    ({"cost": "5"}, "cost"),
    ({"cost": 2.5}, "cost"),
    ({"cost": 5.0}, "cost"),
    ({"cost": True}, "cost"),
    ({"cost": None}, "cost"),
    ({"cost": 10_000_001}, "cost"),
    ({"cost": 2**63}, "cost"),
    ({"cost": 10**30}, "cost"),
    ({"stock": -1}, "stock"),
    ({"stock": "3"}, "stock"),
    ({"stock": 1.5}, "stock"),
    ({"stock": 2**63}, "stock"),
    ({"kind": "food"}, "kind"),
    ({"kind": "GOODS"}, "kind"),
    ({"kind": None}, "kind"),
    ({"name": "米" * 65}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "大米\x00"}, "name"),
    ({"description": "字" * 501}, "description"),
    ({"per_user_limit": 0}, "per_user_limit"),
    ({"per_user_limit": -2}, "per_user_limit"),
    ({"active": "yes"}, "active"),
    ({"active": 1}, "active"),
    ({"image_url": "javascript:alert(1)"}, "image_url"),
    ({"community_id": 2}, "community_id"),
    ({"id": 77}, "id"),
    ({"created_at": "2020-01-01T00:00:00+08:00"}, "created_at"),
    ({"balance": 5}, "balance"),
]


def test_bad_rewards_are_422_and_write_nothing(client, world, org, app):
    before = store_state(app)
    for change, field in BAD_CREATES:
        response = client.post(rewards_url(world.community.id), json={**GOOD, **change},
                               headers=org)
        assert_field_error(response, field, case=change)
    assert store_state(app) == before


@pytest.mark.parametrize("missing", ["name", "kind", "cost"])
def test_required_reward_fields(client, world, org, app, missing):
    before = store_state(app)
    body = {k: v for k, v in GOOD.items() if k != missing}
    assert_field_error(client.post(rewards_url(world.community.id), json=body, headers=org),
                       missing)
    assert store_state(app) == before


def test_reward_bodies_that_are_not_objects(client, world, org, app):
    before = store_state(app)
    url = rewards_url(world.community.id)
    for body in ([GOOD], "大米", 5, None):
        response = client.post(url, json=body, headers=org)
        assert 400 <= response.status_code < 500, response.get_data(as_text=True)
        assert response.is_json
    response = client.post(url, data="{not json", headers={**org,
                                                           "Content-Type": "application/json"})
    assert_error(response, 400)
    assert store_state(app) == before


BAD_PATCHES = [
    ({"cost": 0}, "cost"),
    ({"cost": -1}, "cost"),
    ({"cost": "5"}, "cost"),
    ({"cost": 2.5}, "cost"),
    ({"cost": 2**63}, "cost"),
    ({"stock": -1}, "stock"),
    ({"stock": "2"}, "stock"),
    ({"name": "米" * 65}, "name"),
    ({"name": None}, "name"),
    ({"active": None}, "active"),
    ({"kind": "honour"}, "kind"),  # a reward's kind is fixed once made
    ({"community_id": 2}, "community_id"),
    ({"id": 5}, "id"),
    ({"cost": 5, "stock": 3, "owner": 1}, "owner"),
]


def test_bad_patches_are_422_and_change_nothing(client, world, org, app):
    reward = make_reward(client, org, world.community.id)
    before = store_state(app)
    for body, field in BAD_PATCHES:
        response = client.patch(f"{API}/rewards/{reward['id']}", json=body, headers=org)
        assert_field_error(response, field, case=body)
    assert store_state(app) == before
