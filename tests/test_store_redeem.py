"""Redeeming points in the store (issue 5): redemption, refusals, Idempotency-Key, pickup codes
and their lock, honours, cancel and refund, expiry, the counter with member cards, and the
organiser's views.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db import utcnow
from tests.helpers import assert_error, assert_field_error
from tests.store_helpers import (
    API,
    PICKUP_CODE,
    assert_verified,
    balance,
    created,
    decode_qr,
    give_points,
    make_reward,
    ok,
    redeem,
    redeemed_quantity,
    redemption_row,
    stock,
    store_state,
    transfers,
)


@pytest.fixture
def clock(monkeypatch):
    """The store service's clock, movable: `clock.now = …` or `clock.move(minutes=16)`."""

    class Clock:
        now = utcnow()

        def move(self, **delta):
            self.now = self.now + timedelta(**delta)

    c = Clock()
    monkeypatch.setattr("app.store.service.utcnow", lambda: c.now)
    return c


def cid_of(world) -> int:
    return world.community.id


def points(app, world, user=None, amount=100):
    give_points(app, world.community.id, [(user or world.volunteer).id], amount,
                world.organiser.id)


def fulfil(client, headers, redemption_id, code=None):
    body = {} if code is None else {"pickup_code": code}
    return client.post(f"{API}/redemptions/{redemption_id}/fulfil", json=body, headers=headers)


def fulfil_by_code(client, headers, cid, code):
    return client.post(f"{API}/communities/{cid}/redemptions/fulfil",
                       json={"pickup_code": code}, headers=headers)


def cancel(client, headers, redemption_id, **body):
    return client.post(f"{API}/redemptions/{redemption_id}/cancel", json=body, headers=headers)


def wrong_code(code: str) -> str:
    """A valid-looking code that differs from `code` in its last character."""
    return code[:-1] + ("2" if code[-1] != "2" else "3")


# --- the happy path ------------------------------------------------------------------------

def test_redeem_debits_takes_stock_and_gives_a_pickup_code(client, world, org, vol, app):
    cid = cid_of(world)
    reward = make_reward(client, org, cid, cost=10, stock=5)
    points(app, world, amount=100)

    body = created(redeem(client, vol, reward["id"], 2))
    assert body["status"] == "awaiting_pickup"
    assert PICKUP_CODE.match(body["pickup_code"]), body["pickup_code"]
    assert (body["quantity"], body["unit_cost"], body["cost_total"]) == (2, 10, 20)
    assert (body["user_id"], body["created_by_id"]) == (world.volunteer.id, world.volunteer.id)
    assert (body["reward_id"], body["community_id"], body["at_counter"]) == (
        reward["id"], cid, False)
    assert body["fulfilled_at"] is None and body["cancelled_at"] is None

    assert stock(app, reward["id"]) == 3
    assert balance(app, cid, world.volunteer.id) == 80
    debit = transfers(app)
    assert [(t["key"], t["kind"], t["amount"]) for t in debit] == [
        (f"redemption:{body['id']}:debit", "redemption", 20)]
    me = ok(client.get(f"{API}/me/points?community_id={cid}", headers=vol))
    assert (me["balance"], me["redeemed_total"]) == (80, 20)
    ledger = ok(client.get(f"{API}/me/ledger?community_id={cid}", headers=vol))
    assert ledger["items"][0]["amount"] == -20
    assert ledger["items"][0]["reference"] == f"redemption:{body['id']}:debit"

    # The owner reads it back with the code; so does the list of mine.
    again = ok(client.get(f"{API}/redemptions/{body['id']}", headers=vol))
    assert again["pickup_code"] == body["pickup_code"]
    mine = ok(client.get(f"{API}/redemptions?mine=true", headers=vol))
    assert [r["id"] for r in mine["items"]] == [body["id"]]
    assert_verified(app)


def test_pickup_codes_are_unique_unambiguous_and_random(client, world, org, vol, app):
    honour = make_reward(client, org, cid_of(world), name="评议加分", kind="honour", cost=1)
    goods = make_reward(client, org, cid_of(world), cost=1, stock=100)
    points(app, world, amount=200)
    codes = [created(redeem(client, vol, rid))["pickup_code"]
             for rid in [honour["id"], goods["id"]] * 20]
    assert len(set(codes)) == len(codes) == 40
    for code in codes:
        assert PICKUP_CODE.match(code), code
        assert len(code) >= 8
    assert not set("01OI").intersection("".join(codes))
    # Random, not a counter: many different characters, no shared prefix across all of them.
    assert len(set("".join(codes))) >= 20
    assert len({c[:3] for c in codes}) > 30


# --- refusals change nothing ---------------------------------------------------------------

def _out_of_stock(client, world, org, vol, app):
    points(app, world, amount=100)
    return make_reward(client, org, cid_of(world), cost=10, stock=1), 2


def _sold_out(client, world, org, vol, app):
    points(app, world, amount=100)
    return make_reward(client, org, cid_of(world), cost=10, stock=0), 1


def _limit_reached(client, world, org, vol, app):
    points(app, world, amount=100)
    reward = make_reward(client, org, cid_of(world), cost=10, stock=10, per_user_limit=2)
    created(redeem(client, vol, reward["id"], 2))
    return reward, 1


def _limit_exceeded_at_once(client, world, org, vol, app):
    points(app, world, amount=100)
    return make_reward(client, org, cid_of(world), cost=10, stock=10, per_user_limit=2), 3


def _insufficient(client, world, org, vol, app):
    points(app, world, amount=19)
    return make_reward(client, org, cid_of(world), cost=10, stock=10), 2


def _insufficient_honour(client, world, org, vol, app):
    points(app, world, amount=9)
    return make_reward(client, org, cid_of(world), kind="honour", cost=10), 1


def _inactive(client, world, org, vol, app):
    points(app, world, amount=100)
    reward = make_reward(client, org, cid_of(world), cost=10, stock=10)
    ok(client.patch(f"{API}/rewards/{reward['id']}", json={"active": False}, headers=org))
    return reward, 1


REFUSALS = [
    (_out_of_stock, "out_of_stock"),
    (_sold_out, "out_of_stock"),
    (_limit_reached, "limit_reached"),
    (_limit_exceeded_at_once, "limit_reached"),
    (_insufficient, "insufficient_points"),
    (_insufficient_honour, "insufficient_points"),
    (_inactive, "reward_inactive"),
]


@pytest.mark.parametrize(("setup", "error"), REFUSALS, ids=[s.__name__[1:] for s, _ in REFUSALS])
def test_refusals_are_409_and_change_nothing(client, world, org, vol, app, setup, error):
    reward, quantity = setup(client, world, org, vol, app)
    before = store_state(app)
    assert_error(redeem(client, vol, reward["id"], quantity), 409, error)
    # With an Idempotency-Key too: the refusal is not stored, nothing else is written.
    assert_error(redeem(client, vol, reward["id"], quantity, key="k-refused"), 409, error)
    assert store_state(app) == before
    assert_verified(app)


def test_the_monthly_limit_follows_the_shanghai_calendar(client, world, org, vol, app, clock,
                                                        factory):
    reward = make_reward(client, org, cid_of(world), cost=1, stock=50, per_user_limit=2)
    points(app, world, amount=100)
    shanghai_evening = datetime(2025, 3, 31, 15, 30, tzinfo=UTC)  # 23:30 on 31 March in 上海
    clock.now = shanghai_evening
    created(redeem(client, vol, reward["id"], 1))
    clock.move(minutes=10)
    assert_error(redeem(client, vol, reward["id"], 2), 409, "limit_reached")
    created(redeem(client, vol, reward["id"], 1))
    clock.move(minutes=10)
    assert_error(redeem(client, vol, reward["id"], 1), 409, "limit_reached")

    # 00:10 on 1 April in Shanghai, still 31 March in UTC: a new month for the limit.
    clock.now = shanghai_evening + timedelta(minutes=40)
    assert clock.now.day == 31
    april = created(redeem(client, vol, reward["id"], 2))
    assert_error(redeem(client, vol, reward["id"], 1), 409, "limit_reached")

    # A cancelled redemption gives its share of the limit back; one handed over does not.
    ok(cancel(client, vol, april["id"]))
    again = created(redeem(client, vol, reward["id"], 1))
    ok(fulfil(client, org, again["id"], again["pickup_code"]))
    created(redeem(client, vol, reward["id"], 1))
    assert_error(redeem(client, vol, reward["id"], 1), 409, "limit_reached")

    # The limit is per person: another volunteer still has theirs.
    other = world.resident
    points(app, world, user=other, amount=10)
    created(redeem(client, factory.headers(other), reward["id"], 2))


@pytest.mark.parametrize("quantity", [0, 11, -1, "2", 2.5, 2.0, None, True, 2**63, [1]])
def test_bad_quantities_are_422_and_change_nothing(client, world, org, vol, app, quantity):
    reward = make_reward(client, org, cid_of(world), cost=1, stock=50)
    points(app, world, amount=100)
    before = store_state(app)
    assert_field_error(redeem(client, vol, reward["id"], quantity), "quantity")
    assert store_state(app) == before


def test_other_bad_redeem_bodies_change_nothing(client, world, org, vol, app):
    reward = make_reward(client, org, cid_of(world), cost=1, stock=50)
    points(app, world, amount=100)
    url = f"{API}/rewards/{reward['id']}/redeem"
    before = store_state(app)
    assert_field_error(client.post(url, json={"quantity": 1, "user_id": world.resident.id},
                                   headers=vol), "user_id")
    assert_field_error(client.post(url, json={"quantity": 1, "cost_total": 0}, headers=vol),
                       "cost_total")
    for body in ([{"quantity": 1}], "1", 1):
        response = client.post(url, json=body, headers=vol)
        assert 400 <= response.status_code < 500 and response.is_json, body
    assert_error(client.post(url, data="{", headers={**vol, "Content-Type": "application/json"}),
                 400)
    assert store_state(app) == before


def test_who_may_redeem(client, world, org, app, factory):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    give_points(app, world.other.id, [world.other_volunteer.id], 100, world.other_organiser.id)
    before = store_state(app)
    for user in (world.other_volunteer, world.other_organiser, world.outsider):
        assert_error(redeem(client, factory.headers(user), reward["id"]), 404)
    assert_error(redeem(client, {}, reward["id"]), 401)
    assert_error(redeem(client, factory.headers(world.volunteer), 999999), 404)
    # A resident may redeem like anyone, but has no points.
    assert_error(redeem(client, factory.headers(world.resident), reward["id"]), 409,
                 "insufficient_points")
    assert store_state(app) == before


# --- Idempotency-Key -----------------------------------------------------------------------

def test_same_key_and_body_returns_the_same_redemption_once(client, world, org, vol, app):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    first = redeem(client, vol, reward["id"], 2, key="order-001")
    second = redeem(client, vol, reward["id"], 2, key="order-001")
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    rid = first.get_json()["id"]
    assert [t["key"] for t in transfers(app)] == [f"redemption:{rid}:debit"]
    assert balance(app, cid_of(world), world.volunteer.id) == 80
    assert stock(app, reward["id"]) == 3
    assert ok(client.get(f"{API}/redemptions?mine=true", headers=vol))["total"] == 1

    # Another key is another redemption.
    third = created(redeem(client, vol, reward["id"], 2, key="order-002"))
    assert third["id"] != rid
    assert balance(app, cid_of(world), world.volunteer.id) == 60


def test_same_key_with_another_body_is_a_conflict(client, world, org, vol, app):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    other = make_reward(client, org, cid_of(world), name="大米", cost=10, stock=5)
    points(app, world, amount=100)
    created(redeem(client, vol, reward["id"], 1, key="same"))
    before = store_state(app)
    assert_error(redeem(client, vol, reward["id"], 2, key="same"), 409, "idempotency_conflict")
    assert_error(redeem(client, vol, other["id"], 1, key="same"), 409, "idempotency_conflict")
    assert store_state(app) == before


def test_keys_are_per_user(client, world, org, vol, app, factory):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    points(app, world, user=world.resident, amount=100)
    mine = created(redeem(client, vol, reward["id"], 1, key="shared-key"))
    theirs = created(redeem(client, factory.headers(world.resident), reward["id"], 1,
                            key="shared-key"))
    assert mine["id"] != theirs["id"]
    assert (mine["user_id"], theirs["user_id"]) == (world.volunteer.id, world.resident.id)
    assert stock(app, reward["id"]) == 3
    assert len(transfers(app, "redemption:%:debit")) == 2


def test_a_refused_request_does_not_use_up_its_key(client, world, org, vol, app):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=0)
    points(app, world, amount=100)
    assert_error(redeem(client, vol, reward["id"], 1, key="retry-me"), 409, "out_of_stock")
    ok(client.patch(f"{API}/rewards/{reward['id']}", json={"stock": 1}, headers=org))
    body = created(redeem(client, vol, reward["id"], 1, key="retry-me"))
    assert body["status"] == "awaiting_pickup"
    assert stock(app, reward["id"]) == 0


@pytest.mark.parametrize("key", ["k" * 65, "密钥", "tab\there"])
def test_bad_idempotency_keys_are_422(client, world, org, vol, app, key):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    before = store_state(app)
    response = client.post(f"{API}/rewards/{reward['id']}/redeem", json={"quantity": 1},
                           headers={**vol, "Idempotency-Key": key.encode().decode("latin-1")})
    assert_error(response, 422, "validation_error")
    assert store_state(app) == before


def test_a_key_lasts_24_hours(client, world, org, vol, app, monkeypatch):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    start = utcnow()
    monkeypatch.setattr("app.idempotency.utcnow", lambda: start)
    first = created(redeem(client, vol, reward["id"], 1, key="daily"))
    monkeypatch.setattr("app.idempotency.utcnow", lambda: start + timedelta(hours=23, minutes=59))
    assert created(redeem(client, vol, reward["id"], 1, key="daily"))["id"] == first["id"]
    assert stock(app, reward["id"]) == 4
    # A day later the key is free again: the same body is a new redemption.
    monkeypatch.setattr("app.idempotency.utcnow", lambda: start + timedelta(hours=24, minutes=1))
    later = created(redeem(client, vol, reward["id"], 1, key="daily"))
    assert later["id"] != first["id"]
    assert stock(app, reward["id"]) == 3
    assert balance(app, cid_of(world), world.volunteer.id) == 80


# --- pickup --------------------------------------------------------------------------------

def test_the_pickup_qr_is_for_its_owner_only(client, world, org, vol, app, factory):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    body = created(redeem(client, vol, reward["id"]))
    url = f"{API}/redemptions/{body['id']}/qrcode.png"

    response = client.get(url, headers=vol)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert "no-store" in response.headers["Cache-Control"]
    assert decode_qr(response.data) == [body["pickup_code"]]

    assert_error(client.get(url, headers=org), 403)
    for user in (world.resident, world.other_organiser, world.other_volunteer, world.outsider):
        assert_error(client.get(url, headers=factory.headers(user)), 404)
        assert_error(client.get(f"{API}/redemptions/{body['id']}",
                                headers=factory.headers(user)), 404)
    assert_error(client.get(url), 401)
    # The organiser may read the redemption, but not its code.
    seen = ok(client.get(f"{API}/redemptions/{body['id']}", headers=org))
    assert seen["pickup_code"] is None and seen["user_id"] == world.volunteer.id


def test_organiser_fulfils_by_code(client, world, org, vol, app):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    one = created(redeem(client, vol, reward["id"]))
    two = created(redeem(client, vol, reward["id"]))
    before_balance = balance(app, cid_of(world), world.volunteer.id)

    done = ok(fulfil(client, org, one["id"], one["pickup_code"]))
    assert done["status"] == "fulfilled" and done["fulfilled_by_id"] == world.organiser.id
    assert done["fulfilled_at"] is not None
    # Typed as read aloud: lower case, with spaces and dashes.
    code = two["pickup_code"].lower()
    typed = f"{code[:4]}-{code[4:8]} {code[8:]}"
    by_code = ok(fulfil_by_code(client, org, cid_of(world), typed))
    assert by_code["id"] == two["id"] and by_code["status"] == "fulfilled"

    # Handing over moves no points and no stock; a second hand-over is refused.
    assert balance(app, cid_of(world), world.volunteer.id) == before_balance
    assert stock(app, reward["id"]) == 3
    before = store_state(app)
    assert_error(fulfil(client, org, one["id"], one["pickup_code"]), 409,
                 "redemption_not_pending")
    assert_error(fulfil_by_code(client, org, cid_of(world), two["pickup_code"]), 409,
                 "redemption_not_pending")
    assert store_state(app) == before
    assert ok(client.get(f"{API}/redemptions/{one['id']}", headers=vol))["status"] == "fulfilled"
    assert_verified(app)


def test_who_may_fulfil(client, world, org, vol, app, factory):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    body = created(redeem(client, vol, reward["id"]))
    code, cid = body["pickup_code"], cid_of(world)
    before = store_state(app)
    for user in (world.volunteer, world.resident):
        headers = factory.headers(user)
        assert_error(fulfil(client, headers, body["id"], code), 403)
        assert_error(fulfil_by_code(client, headers, cid, code), 403)
    other = factory.headers(world.other_organiser)
    assert_error(fulfil(client, other, body["id"], code), 404)
    assert_error(fulfil_by_code(client, other, cid, code), 404)
    # A code is found only in its own community.
    assert_error(fulfil_by_code(client, other, world.other.id, code), 404)
    assert_error(fulfil(client, {}, body["id"], code), 401)
    assert_error(fulfil_by_code(client, org, cid, "ABCDEFGHJK"), 404)
    assert_field_error(fulfil_by_code(client, org, cid, ""), "pickup_code")
    assert_field_error(client.post(f"{API}/communities/{cid}/redemptions/fulfil", json={},
                                   headers=org), "pickup_code")
    assert store_state(app) == before


def test_wrong_codes_are_counted_and_the_fifth_locks_for_15_minutes(client, world, org, vol, app,
                                                                   clock):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    body = created(redeem(client, vol, reward["id"]))
    rid, code = body["id"], body["pickup_code"]
    bad = wrong_code(code)

    for attempt in range(1, 5):
        assert_error(fulfil(client, org, rid, bad), 409, "wrong_pickup_code")
        row = redemption_row(app, rid)
        assert (row["wrong_code_attempts"], row["status"]) == (attempt, "awaiting_pickup")
        assert row["locked_until"] is None
    locked = assert_error(fulfil(client, org, rid, bad), 409, "pickup_locked")
    assert "15" in locked["message"]
    row = redemption_row(app, rid)
    assert row["locked_until"] == clock.now + timedelta(minutes=15)
    assert row["status"] == "awaiting_pickup"

    # Locked: even the right code is refused, by either route.
    before = store_state(app)
    assert_error(fulfil(client, org, rid, code), 409, "pickup_locked")
    assert_error(fulfil_by_code(client, org, cid_of(world), code), 409, "pickup_locked")
    clock.move(minutes=14, seconds=30)
    assert_error(fulfil(client, org, rid, code), 409, "pickup_locked")
    assert store_state(app) == before

    # After the lock the right code works; points and stock were never touched.
    clock.move(minutes=1)
    assert ok(fulfil(client, org, rid, code))["status"] == "fulfilled"
    assert balance(app, cid_of(world), world.volunteer.id) == 90
    assert stock(app, reward["id"]) == 4
    assert_verified(app)


def test_the_lock_applies_again_after_five_more_wrong_codes(client, world, org, vol, app, clock):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    body = created(redeem(client, vol, reward["id"]))
    rid, bad = body["id"], wrong_code(body["pickup_code"])
    for _ in range(4):
        assert_error(fulfil(client, org, rid, bad), 409, "wrong_pickup_code")
    assert_error(fulfil(client, org, rid, bad), 409, "pickup_locked")
    clock.move(minutes=16)
    for _ in range(4):
        assert_error(fulfil(client, org, rid, bad), 409, "wrong_pickup_code")
    assert_error(fulfil(client, org, rid, bad), 409, "pickup_locked")
    assert_error(fulfil(client, org, rid, body["pickup_code"]), 409, "pickup_locked")
    # Wrong codes for one redemption do not lock another.
    other = created(redeem(client, vol, reward["id"]))
    assert ok(fulfil(client, org, other["id"], other["pickup_code"]))["status"] == "fulfilled"


def test_goods_need_their_code_and_a_missing_code_is_not_a_wrong_guess(client, world, org, vol,
                                                                        app):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    body = created(redeem(client, vol, reward["id"]))
    before = store_state(app)
    for _ in range(6):
        assert_field_error(fulfil(client, org, body["id"]), "pickup_code")
    assert store_state(app) == before
    assert redemption_row(app, body["id"])["wrong_code_attempts"] == 0
    assert ok(fulfil(client, org, body["id"], body["pickup_code"]))["status"] == "fulfilled"


def test_honours_are_fulfilled_by_an_organisers_approval(client, world, org, vol, app, factory):
    honour = make_reward(client, org, cid_of(world), name="党员民主评议加分", kind="honour",
                         cost=50)
    points(app, world, amount=100)
    body = created(redeem(client, vol, honour["id"]))
    assert body["status"] == "awaiting_pickup" and body["reward_kind"] == "honour"
    assert stock(app, honour["id"]) is None
    assert_error(fulfil(client, vol, body["id"]), 403)
    done = ok(fulfil(client, org, body["id"]))
    assert done["status"] == "fulfilled" and done["fulfilled_by_id"] == world.organiser.id
    assert balance(app, cid_of(world), world.volunteer.id) == 50
    assert_verified(app)


# --- cancel and refund ---------------------------------------------------------------------

def test_the_volunteer_cancels_before_pickup_and_is_refunded_once(client, world, org, vol, app):
    cid = cid_of(world)
    reward = make_reward(client, org, cid, cost=10, stock=5)
    points(app, world, amount=100)
    body = created(redeem(client, vol, reward["id"], 3))
    assert (stock(app, reward["id"]), balance(app, cid, world.volunteer.id)) == (2, 70)

    done = ok(cancel(client, vol, body["id"], reason="不需要了"))
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    assert done["cancel_reason"] == "不需要了"
    assert (stock(app, reward["id"]), balance(app, cid, world.volunteer.id)) == (5, 100)
    refund = transfers(app, f"redemption:{body['id']}:refund")
    assert [(t["kind"], t["amount"]) for t in refund] == [("refund", 30)]

    before = store_state(app)
    assert_error(cancel(client, vol, body["id"]), 409, "redemption_not_pending")
    assert_error(cancel(client, org, body["id"]), 409, "redemption_not_pending")
    assert_error(fulfil(client, org, body["id"], body["pickup_code"]), 409,
                 "redemption_not_pending")
    assert store_state(app) == before
    me = ok(client.get(f"{API}/me/points?community_id={cid}", headers=vol))
    assert (me["balance"], me["redeemed_total"]) == (100, 0)
    assert_verified(app)


def test_an_organiser_cancels_and_honours_refund_without_stock(client, world, org, vol, app):
    cid = cid_of(world)
    goods = make_reward(client, org, cid, cost=10, stock=5)
    honour = make_reward(client, org, cid, name="荣誉", kind="honour", cost=20)
    points(app, world, amount=100)
    one = created(redeem(client, vol, goods["id"], 2))
    two = created(redeem(client, vol, honour["id"]))
    assert balance(app, cid, world.volunteer.id) == 60

    done = ok(cancel(client, org, one["id"], reason="商品质量问题"))
    assert done["status"] == "cancelled"
    assert redemption_row(app, one["id"])["cancelled_by_id"] == world.organiser.id
    ok(cancel(client, org, two["id"]))
    assert stock(app, goods["id"]) == 5 and stock(app, honour["id"]) is None
    assert balance(app, cid, world.volunteer.id) == 100
    assert len(transfers(app, "redemption:%:refund")) == 2
    assert_verified(app)


def test_no_cancel_after_pickup(client, world, org, vol, app):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    body = created(redeem(client, vol, reward["id"]))
    ok(fulfil(client, org, body["id"], body["pickup_code"]))
    before = store_state(app)
    assert_error(cancel(client, vol, body["id"]), 409, "redemption_not_pending")
    assert_error(cancel(client, org, body["id"]), 409, "redemption_not_pending")
    assert store_state(app) == before
    assert transfers(app, "redemption:%:refund") == []


def test_who_may_cancel(client, world, org, vol, app, factory):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    body = created(redeem(client, vol, reward["id"]))
    before = store_state(app)
    for user in (world.resident, world.other_organiser, world.other_volunteer, world.outsider):
        assert_error(cancel(client, factory.headers(user), body["id"]), 404)
    assert_error(cancel(client, {}, body["id"]), 401)
    assert_error(cancel(client, vol, 999999), 404)
    assert_field_error(cancel(client, vol, body["id"], reason="长" * 201), "reason")
    assert_field_error(cancel(client, vol, body["id"], refund=0), "refund")
    assert store_state(app) == before


# --- expiry --------------------------------------------------------------------------------

def test_expire_refunds_old_unfulfilled_redemptions_once(client, world, org, vol, app, factory,
                                                         clock):
    cid, other_cid = cid_of(world), world.other.id
    settings = f"{API}/communities/{cid}/store-settings"
    assert ok(client.get(settings, headers=vol)) == {"redemption_expiry_days": 30}
    assert_error(client.put(settings, json={"redemption_expiry_days": 7}, headers=vol), 403)
    assert_error(client.put(settings, json={"redemption_expiry_days": 7},
                            headers=factory.headers(world.other_organiser)), 404)
    for bad in (0, -1, 366, "7", 7.5, None):
        assert_field_error(client.put(settings, json={"redemption_expiry_days": bad},
                                      headers=org), "redemption_expiry_days", case=bad)
    assert ok(client.put(settings, json={"redemption_expiry_days": 7}, headers=org)) == {
        "redemption_expiry_days": 7}

    here = make_reward(client, org, cid, cost=10, stock=10)
    there_org = factory.headers(world.other_organiser)
    there = make_reward(client, there_org, other_cid, cost=10, stock=10)
    points(app, world, amount=100)
    give_points(app, other_cid, [world.other_volunteer.id], 100, world.other_organiser.id)
    other_vol = factory.headers(world.other_volunteer)

    real_now = clock.now
    clock.now = real_now - timedelta(days=8)
    stale = created(redeem(client, vol, here["id"], 2))                # 8 days, limit 7: expires
    handed = created(redeem(client, vol, here["id"], 1))               # handed over: stays
    ok(fulfil(client, org, handed["id"], handed["pickup_code"]))
    cancelled = created(redeem(client, vol, here["id"], 1))            # cancelled already
    ok(cancel(client, vol, cancelled["id"]))
    there_recent = created(redeem(client, other_vol, there["id"], 1))  # 8 days, limit 30: stays
    clock.now = real_now - timedelta(days=6)
    fresh = created(redeem(client, vol, here["id"], 1))                # 6 days: stays
    clock.now = real_now - timedelta(days=31)
    there_old = created(redeem(client, other_vol, there["id"], 3))     # 31 days, limit 30
    clock.now = real_now

    assert stock(app, here["id"]) == 10 - 2 - 1 - 1
    assert balance(app, cid, world.volunteer.id) == 100 - 20 - 10 - 10
    runner = app.test_cli_runner()
    result = runner.invoke(args=["redemptions", "expire"])
    assert result.exit_code == 0, result.output
    assert "expired and refunded: 2" in result.output

    statuses = {r: redemption_row(app, r)["status"] for r in (
        stale["id"], handed["id"], cancelled["id"], there_recent["id"], fresh["id"],
        there_old["id"])}
    assert statuses == {stale["id"]: "expired", handed["id"]: "fulfilled",
                        cancelled["id"]: "cancelled", there_recent["id"]: "awaiting_pickup",
                        fresh["id"]: "awaiting_pickup", there_old["id"]: "expired"}
    assert stock(app, here["id"]) == 10 - 1 - 1
    assert stock(app, there["id"]) == 10 - 1
    assert balance(app, cid, world.volunteer.id) == 100 - 10 - 10
    assert balance(app, other_cid, world.other_volunteer.id) == 100 - 10
    refunds = {t["key"]: t["amount"] for t in transfers(app, "redemption:%:refund")}
    assert refunds == {f"redemption:{stale['id']}:refund": 20,
                       f"redemption:{cancelled['id']}:refund": 10,
                       f"redemption:{there_old['id']}:refund": 30}
    assert redemption_row(app, stale["id"])["cancelled_by_id"] is None
    expired = ok(client.get(f"{API}/redemptions/{stale['id']}", headers=vol))
    assert expired["status"] == "expired" and expired["cancel_reason"]

    # Cron runs it again: nothing more happens.
    before = store_state(app)
    again = runner.invoke(args=["redemptions", "expire"])
    assert again.exit_code == 0 and "expired and refunded: 0" in again.output
    assert store_state(app) == before
    assert_error(cancel(client, vol, stale["id"]), 409, "redemption_not_pending")
    assert_error(fulfil(client, org, stale["id"], stale["pickup_code"]), 409,
                 "redemption_not_pending")
    assert_verified(app)


# --- the counter and member cards ----------------------------------------------------------

def test_member_card_code_and_qr_and_rotation(client, world, vol, app):
    card = ok(client.get(f"{API}/me/member-card", headers=vol))
    assert card["user_id"] == world.volunteer.id and len(card["code"]) >= 16
    assert ok(client.get(f"{API}/me/member-card", headers=vol))["code"] == card["code"]
    png = client.get(f"{API}/me/member-card.png", headers=vol)
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert "no-store" in png.headers["Cache-Control"]
    assert decode_qr(png.data) == [card["code"]]

    rotated = ok(client.post(f"{API}/me/member-card/rotate", json={}, headers=vol))
    assert rotated["code"] != card["code"]
    assert ok(client.get(f"{API}/me/member-card", headers=vol))["code"] == rotated["code"]
    assert decode_qr(client.get(f"{API}/me/member-card.png", headers=vol).data) == [
        rotated["code"]]
    assert_error(client.get(f"{API}/me/member-card"), 401)
    assert_error(client.get(f"{API}/me/member-card.png"), 401)


def test_counter_redemption_is_fulfilled_at_once(client, world, org, vol, app):
    cid = cid_of(world)
    reward = make_reward(client, org, cid, cost=10, stock=5)
    points(app, world, amount=100)
    code = decode_qr(client.get(f"{API}/me/member-card.png", headers=vol).data)[0]

    body = created(redeem(client, org, reward["id"], 2, for_user_id=world.volunteer.id,
                          member_code=code))
    assert body["status"] == "fulfilled" and body["at_counter"] is True
    assert (body["user_id"], body["created_by_id"], body["fulfilled_by_id"]) == (
        world.volunteer.id, world.organiser.id, world.organiser.id)
    assert body["fulfilled_at"] is not None and body["cost_total"] == 20
    assert stock(app, reward["id"]) == 3
    assert balance(app, cid, world.volunteer.id) == 80
    assert balance(app, cid, world.organiser.id) == 0
    assert [t["key"] for t in transfers(app)] == [f"redemption:{body['id']}:debit"]
    mine = ok(client.get(f"{API}/redemptions?mine=true", headers=vol))
    assert [(r["id"], r["at_counter"]) for r in mine["items"]] == [(body["id"], True)]
    # Handed over already: neither fulfilled again nor cancelled.
    assert_error(cancel(client, vol, body["id"]), 409, "redemption_not_pending")
    assert_verified(app)


def test_counter_needs_the_volunteers_current_member_code(client, world, org, vol, app, factory):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    points(app, world, user=world.resident, amount=100)
    old = ok(client.get(f"{API}/me/member-card", headers=vol))["code"]
    new = ok(client.post(f"{API}/me/member-card/rotate", json={}, headers=vol))["code"]
    residents = ok(client.get(f"{API}/me/member-card",
                              headers=factory.headers(world.resident)))["code"]
    before = store_state(app)
    for code in (old, residents, new + "x", "nonsense"):
        assert_error(redeem(client, org, reward["id"], for_user_id=world.volunteer.id,
                            member_code=code), 409, "member_code_mismatch")
    # Someone who never opened their card has no code to match.
    no_card = factory.member(world.community, factory.user("新志愿者"), "volunteer")
    assert_error(redeem(client, org, reward["id"], for_user_id=no_card.id, member_code=old),
                 409, "member_code_mismatch")
    assert store_state(app) == before
    created(redeem(client, org, reward["id"], for_user_id=world.volunteer.id, member_code=new))


def test_who_may_redeem_at_the_counter(client, world, org, vol, app, factory):
    reward = make_reward(client, org, cid_of(world), cost=10, stock=5)
    points(app, world, amount=100)
    code = ok(client.get(f"{API}/me/member-card", headers=vol))["code"]
    outside_code = ok(client.get(f"{API}/me/member-card",
                                 headers=factory.headers(world.other_volunteer)))["code"]
    points(app, world, user=world.resident, amount=100)
    before = store_state(app)
    counter = {"for_user_id": world.volunteer.id, "member_code": code}
    # A volunteer (even with the right code) cannot redeem for someone else.
    assert_error(redeem(client, factory.headers(world.resident), reward["id"], **counter), 403)
    assert_error(redeem(client, vol, reward["id"], **counter), 403)
    assert_error(redeem(client, factory.headers(world.other_organiser), reward["id"], **counter),
                 404)
    # Both halves are needed, and the person must belong to the community.
    assert_field_error(redeem(client, org, reward["id"], for_user_id=world.volunteer.id),
                       "member_code")
    assert_field_error(redeem(client, org, reward["id"], member_code=code), "member_code")
    assert_field_error(redeem(client, org, reward["id"], for_user_id=world.other_volunteer.id,
                              member_code=outside_code), "for_user_id")
    for bad in (0, "5", None):
        assert_field_error(redeem(client, org, reward["id"], for_user_id=bad, member_code=code),
                           "for_user_id", case=bad)
    assert store_state(app) == before


def test_the_counter_applies_the_same_checks_and_idempotency(client, world, org, vol, app):
    cid = cid_of(world)
    reward = make_reward(client, org, cid, cost=10, stock=3, per_user_limit=2)
    points(app, world, amount=25)
    code = ok(client.get(f"{API}/me/member-card", headers=vol))["code"]
    counter = {"for_user_id": world.volunteer.id, "member_code": code}

    before = store_state(app)
    assert_error(redeem(client, org, reward["id"], 3, **counter), 409, "limit_reached")
    assert store_state(app) == before
    first = redeem(client, org, reward["id"], 1, key="counter-1", **counter)
    replay = redeem(client, org, reward["id"], 1, key="counter-1", **counter)
    assert first.status_code == replay.status_code == 201
    assert replay.get_json()["id"] == first.get_json()["id"]
    assert balance(app, cid, world.volunteer.id) == 15
    assert_error(redeem(client, org, reward["id"], 2, key="counter-1", **counter), 409,
                 "idempotency_conflict")
    before = store_state(app)
    assert_error(redeem(client, org, reward["id"], 2, **counter), 409, "limit_reached")
    created(redeem(client, org, reward["id"], 1, **counter))
    assert_error(redeem(client, org, reward["id"], 1, **counter), 409, "limit_reached")
    assert balance(app, cid, world.volunteer.id) == 5
    assert store_state(app) != before
    # Points run out at the counter just as online.
    other = make_reward(client, org, cid, name="大米", cost=10, stock=3)
    before = store_state(app)
    assert_error(redeem(client, org, other["id"], 1, **counter), 409, "insufficient_points")
    assert store_state(app) == before
    assert_verified(app)


# --- organiser views -----------------------------------------------------------------------

def test_organiser_views_pending_pickups_history_and_totals(client, world, org, vol, app,
                                                            factory):
    cid = cid_of(world)
    oil = make_reward(client, org, cid, name="食用油", cost=10, stock=10)
    rice = make_reward(client, org, cid, name="大米", cost=5, stock=10)
    honour = make_reward(client, org, cid, name="荣誉", kind="honour", cost=20)
    points(app, world, amount=200)
    points(app, world, user=world.resident, amount=100)
    res = factory.headers(world.resident)
    code = ok(client.get(f"{API}/me/member-card", headers=vol))["code"]

    waiting = created(redeem(client, vol, oil["id"], 2))
    handed = created(redeem(client, vol, rice["id"], 3))
    ok(fulfil(client, org, handed["id"], handed["pickup_code"]))
    dropped = created(redeem(client, res, oil["id"], 1))
    ok(cancel(client, res, dropped["id"]))
    res_waiting = created(redeem(client, res, honour["id"]))
    at_counter = created(redeem(client, org, rice["id"], 1, for_user_id=world.volunteer.id,
                                member_code=code))
    # Another community's redemption, which nobody here may see.
    other_reward = make_reward(client, factory.headers(world.other_organiser), world.other.id,
                               cost=1, stock=5)
    give_points(app, world.other.id, [world.other_volunteer.id], 10, world.other_organiser.id)
    elsewhere = created(redeem(client, factory.headers(world.other_volunteer),
                               other_reward["id"]))

    def ids(query, headers=org):
        page = ok(client.get(f"{API}/redemptions?{query}", headers=headers))
        assert page["total"] == len(page["items"])
        return sorted(r["id"] for r in page["items"])

    assert ids(f"community_id={cid}&status=awaiting_pickup") == sorted(
        [waiting["id"], res_waiting["id"]])
    assert ids(f"community_id={cid}") == sorted(
        [waiting["id"], handed["id"], dropped["id"], res_waiting["id"], at_counter["id"]])
    assert ids(f"community_id={cid}&status=fulfilled") == sorted([handed["id"], at_counter["id"]])
    assert ids(f"community_id={cid}&status=cancelled") == [dropped["id"]]
    assert ids(f"community_id={cid}&user_id={world.resident.id}") == sorted(
        [dropped["id"], res_waiting["id"]])
    assert ids(f"community_id={cid}&reward_id={rice['id']}") == sorted(
        [handed["id"], at_counter["id"]])
    assert ids(f"community_id={cid}&at_counter=true") == [at_counter["id"]]
    assert ids("mine=true") == []
    assert elsewhere["id"] not in ids("")
    # Newest first, and the organiser never sees anyone's pickup code.
    listed = ok(client.get(f"{API}/redemptions?community_id={cid}", headers=org))["items"]
    assert [r["id"] for r in listed] == sorted((r["id"] for r in listed), reverse=True)
    assert {r["pickup_code"] for r in listed} == {None}
    assert {r["user_name"] for r in listed} == {"王建国", "王女士"}

    # A volunteer lists their own only, whatever they ask for.
    assert ids(f"community_id={cid}", vol) == sorted(
        [waiting["id"], handed["id"], at_counter["id"]])
    assert ids(f"user_id={world.resident.id}", vol) == []
    assert ids(f"community_id={cid}", factory.headers(world.other_organiser)) == []
    assert_field_error(client.get(f"{API}/redemptions?status=lost", headers=org), "status")
    assert_error(client.get(f"{API}/redemptions"), 401)

    totals = ok(client.get(f"{API}/communities/{cid}/store/totals", headers=org))
    by_reward = {t["reward_id"]: t for t in totals}
    assert set(by_reward) == {oil["id"], rice["id"], honour["id"]}
    assert {k: by_reward[oil["id"]][k] for k in ("fulfilled", "awaiting_pickup", "points",
                                                  "stock")} == {
        "fulfilled": 0, "awaiting_pickup": 2, "points": 20, "stock": 8}
    assert {k: by_reward[rice["id"]][k] for k in ("fulfilled", "awaiting_pickup", "points",
                                                   "stock")} == {
        "fulfilled": 4, "awaiting_pickup": 0, "points": 20, "stock": 6}
    assert {k: by_reward[honour["id"]][k] for k in ("fulfilled", "awaiting_pickup", "points",
                                                     "stock")} == {
        "fulfilled": 0, "awaiting_pickup": 1, "points": 20, "stock": None}
    assert_error(client.get(f"{API}/communities/{cid}/store/totals", headers=vol), 403)
    assert_error(client.get(f"{API}/communities/{cid}/store/totals",
                            headers=factory.headers(world.other_organiser)), 404)
    # Stock plus what is redeemed is what the organiser put on the shelf.
    assert stock(app, oil["id"]) + redeemed_quantity(app, oil["id"]) == 10
    assert stock(app, rice["id"]) + redeemed_quantity(app, rice["id"]) == 10
    assert_verified(app)


def test_organiser_history_filters_by_time_counter_and_pages(client, app, world, org, vol,
                                                            monkeypatch):
    from datetime import UTC, datetime

    import app.store.service as store_service

    cid = world.community.id
    give_points(app, cid, [world.volunteer.id], 1000, world.organiser.id)
    reward = make_reward(client, org, cid, cost=10, stock=50)
    monkeypatch.setattr(store_service, "utcnow", lambda: datetime(2026, 10, 15, 4, tzinfo=UTC))
    october = created(redeem(client, vol, reward["id"]))
    monkeypatch.setattr(store_service, "utcnow", lambda: datetime(2026, 11, 15, 4, tzinfo=UTC))
    november = [created(redeem(client, vol, reward["id"])) for _ in range(3)]
    code = ok(client.get(f"{API}/me/member-card", headers=vol))["code"]
    counter = created(redeem(client, org, reward["id"], for_user_id=world.volunteer.id,
                             member_code=code))

    def ids(**query):
        body = ok(client.get(f"{API}/redemptions", headers=org,
                             query_string={"community_id": cid, **query}))
        return [item["id"] for item in body["items"]], body["total"]

    assert ids(**{"to": "2026-11-01T00:00:00+08:00"}) == ([october["id"]], 1)
    assert ids(**{"from": "2026-11-01T00:00:00+08:00"})[1] == 4
    assert ids(at_counter="true") == ([counter["id"]], 1)
    assert ids(status="fulfilled") == ([counter["id"]], 1)
    newest_first = [counter["id"], *[r["id"] for r in reversed(november)], october["id"]]
    assert ids(per_page=2, page=1) == (newest_first[:2], 5)
    assert ids(per_page=2, page=3) == (newest_first[4:], 5)
    assert ids(user_id=world.resident.id) == ([], 0)
    assert client.get(f"{API}/redemptions", headers=org,
                      query_string={"from": "yesterday"}).status_code == 422
