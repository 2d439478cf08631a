"""The points endpoints over HTTP (issue 3): rules, balances, ledgers, adjustments, audit log."""

from __future__ import annotations

import copy
import itertools
from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.ledger import service
from app.ledger.models import Account, Entry, PointsPolicy, PointsRule, TransferKind
from tests.helpers import assert_error, assert_field_error, reading
from tests.ledger_helpers import API, adjust, assert_verified, ledger_rows, user_balance

CATEGORIES = ("wish", "report", "activity")


def rules_url(cid: int) -> str:
    return f"{API}/communities/{cid}/points-rules"


def give(client, org, world, user, amount: int, reason: str = "初始积分"):
    response = adjust(client, org, world.community.id, user.id, amount, reason)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def audit_events(client, org, cid: int, **query) -> list[dict]:
    response = client.get(f"{API}/communities/{cid}/audit-log", headers=org, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


# --- rules --------------------------------------------------------------------------------

def assert_valid_rules_body(body: dict) -> None:
    assert set(body) == {"rules", "satisfaction_factors", "daily_earn_cap", "expiry_months"}
    pairs = [(r["category"], r["level"]) for r in body["rules"]]
    assert len(pairs) == 15 and set(pairs) == {(c, lv) for c in CATEGORIES for lv in range(1, 6)}
    assert all(type(r["points"]) is int and r["points"] >= 0 for r in body["rules"])
    assert set(body["satisfaction_factors"]) == {"1", "2", "3", "4", "5"}
    assert all(type(v) is int and 0 <= v <= 100 for v in body["satisfaction_factors"].values())
    assert body["daily_earn_cap"] is None or (type(body["daily_earn_cap"]) is int
                                              and body["daily_earn_cap"] >= 1)


def test_a_new_community_has_default_rules(client, world, factory, app):
    admin = factory.headers(world.admin)
    response = client.post(f"{API}/communities", headers=admin,
                           json={"name": "芙蓉村", "code": "furongcun", "street": "幸福街道",
                                 "district": "镜湖区"})
    assert response.status_code == 201, response.get_data(as_text=True)
    cid = response.get_json()["id"]
    body = client.get(rules_url(cid), headers=admin).get_json()
    assert_valid_rules_body(body)
    # PRODUCT.md: 5★ 100 %, 4★ 80 %, 3★ 60 %, 1–2★ 0 %.
    assert body["satisfaction_factors"] == {"1": 0, "2": 0, "3": 60, "4": 80, "5": 100}
    assert {(r["category"], r["level"]): r["points"] for r in body["rules"]} == {
        (c, lv): pts for c, row in service.DEFAULT_RULES.items()
        for lv, pts in zip(range(1, 6), row, strict=True)}
    # Creating a community asks nothing of the ledger: the defaults are shown, not stored, and
    # accounts, rules and policy are written on first need (tests/test_structure.py earns and
    # spends in a new community; replacing the rules stores them).
    with reading(app):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PointsRule)
                                 .where(PointsRule.community_id == cid)) == 0
        assert db.session.get(PointsPolicy, cid) is None
        kinds = db.session.scalars(sa.select(Account.kind).where(Account.community_id == cid))
        assert list(kinds) == []


def changed_rules(body: dict) -> dict:
    new = copy.deepcopy(body)
    for rule in new["rules"]:
        rule["points"] = rule["points"] * 2 + rule["level"]
    new["satisfaction_factors"] = {"1": 0, "2": 10, "3": 50, "4": 75, "5": 100}
    new["daily_earn_cap"] = 120
    return new


def test_organiser_replaces_rules_and_it_is_audited(client, world, org, factory):
    cid = world.community.id
    before = client.get(rules_url(cid), headers=org).get_json()
    assert_valid_rules_body(before)
    wanted = changed_rules(before)
    response = client.put(rules_url(cid), json=wanted, headers=org)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == wanted
    assert client.get(rules_url(cid), headers=org).get_json() == wanted
    # Any member can read them.
    resident = client.get(rules_url(cid), headers=factory.headers(world.resident))
    assert resident.status_code == 200 and resident.get_json() == wanted
    [event] = audit_events(client, org, cid)
    assert event["action"] == "points.rules_updated"
    assert event["actor_id"] == world.organiser.id
    details = event["details"]
    assert details["before"]["rules"] == before["rules"]
    assert details["after"]["rules"] == wanted["rules"]
    assert details["after"]["daily_earn_cap"] == 120
    assert details["before"]["daily_earn_cap"] == before["daily_earn_cap"]
    # A null cap is allowed (no cap).
    wanted["daily_earn_cap"] = None
    assert client.put(rules_url(cid), json=wanted, headers=org).get_json()["daily_earn_cap"] is None
    assert client.get(rules_url(cid), headers=org).get_json()["daily_earn_cap"] is None


def _mutations():
    def rules(fn):
        def apply(body):
            fn(body["rules"])
        return apply

    def put(key, value):
        def apply(body):
            body[key] = value
        return apply

    def factor(star, value):
        def apply(body):
            body["satisfaction_factors"][star] = value
        return apply

    def set_points(value):
        return rules(lambda rs: rs[0].update(points=value))

    return {
        "14 rows": rules(lambda rs: rs.pop()),
        "16 rows (a duplicate)": rules(lambda rs: rs.append(dict(rs[0]))),
        "duplicate instead of one": rules(lambda rs: rs.__setitem__(1, dict(rs[0]))),
        "no rows": put("rules", []),
        "rules not a list": put("rules", {"wish": 1}),
        "negative points": set_points(-1),
        "float points": set_points(2.5),
        "whole float points": set_points(10.0),
        "string points": set_points("10"),
        "boolean points": set_points(True),
        "null points": set_points(None),
        "huge points": set_points(2**53 + 1),
        "level 0": rules(lambda rs: rs[0].update(level=0)),
        "level 6": rules(lambda rs: rs[-1].update(level=6)),
        "unknown category": rules(lambda rs: rs[0].update(category="gift")),
        "unknown field in a rule": rules(lambda rs: rs[0].update(bonus=1)),
        "factor 101": factor("5", 101),
        "factor -1": factor("1", -1),
        "factor float": factor("4", 80.5),
        "factor string": factor("4", "80"),
        "factor missing": lambda body: body["satisfaction_factors"].pop("3"),
        "factor for 6 stars": factor("6", 100),
        "cap 0": put("daily_earn_cap", 0),
        "cap negative": put("daily_earn_cap", -5),
        "cap string": put("daily_earn_cap", "100"),
        "cap float": put("daily_earn_cap", 100.5),
        "cap missing": lambda body: body.pop("daily_earn_cap"),
        "rules missing": lambda body: body.pop("rules"),
        "factors missing": lambda body: body.pop("satisfaction_factors"),
        "unknown top-level field": put("bonus_points", 12),
        "expiry 0 months": put("expiry_months", 0),
        "expiry string": put("expiry_months", "12"),
    }


MUTATIONS = _mutations()


def test_invalid_rules_are_refused_and_change_nothing(client, world, org, app):
    cid = world.community.id
    before = client.get(rules_url(cid), headers=org).get_json()
    state = ledger_rows(app)
    for name, mutate in MUTATIONS.items():
        body = copy.deepcopy(before)
        mutate(body)
        response = client.put(rules_url(cid), json=body, headers=org)
        assert response.status_code == 422, (name, response.get_data(as_text=True))
        assert_error(response, 422, "validation_error")
        assert response.get_json().get("errors"), (name, response.get_json())
    assert client.get(rules_url(cid), headers=org).get_json() == before
    assert ledger_rows(app) == state  # no audit event either


def test_rules_permissions(client, world, factory, org):
    cid = world.community.id
    body = client.get(rules_url(cid), headers=org).get_json()
    for user in (world.volunteer, world.resident):
        headers = factory.headers(user)
        assert client.get(rules_url(cid), headers=headers).status_code == 200
        assert_error(client.put(rules_url(cid), json=body, headers=headers), 403)
    for user in (world.other_organiser, world.outsider):
        headers = factory.headers(user)
        assert_error(client.get(rules_url(cid), headers=headers), 404)
        assert_error(client.put(rules_url(cid), json=body, headers=headers), 404)
    assert_error(client.get(rules_url(cid)), 401)
    assert_error(client.put(rules_url(cid), json=body), 401)
    assert_error(client.get(rules_url(999_999), headers=org), 404)
    assert client.get(rules_url(cid), headers=org).get_json() == body


# --- adjustments --------------------------------------------------------------------------

def test_adjustment_answers_201_with_the_posting(client, world, org, factory, app):
    cid = world.community.id
    up = adjust(client, org, cid, world.volunteer.id, 30, "  参加周末清扫  ")
    assert up.status_code == 201, up.get_data(as_text=True)
    body = up.get_json()
    assert body["amount"] == 30 and body["balance_after"] == 30
    assert body["reason"] == "参加周末清扫"  # trimmed
    assert (body["user_id"], body["community_id"], body["actor_id"]) == (
        world.volunteer.id, cid, world.organiser.id)
    assert body["replayed"] is False
    assert datetime.fromisoformat(body["created_at"]).utcoffset().total_seconds() == 8 * 3600
    down = adjust(client, org, cid, world.volunteer.id, -12, "误录").get_json()
    assert (down["amount"], down["balance_after"]) == (-12, 18)
    assert down["id"] != body["id"]
    assert user_balance(app, cid, world.volunteer.id) == 18
    points = client.get(f"{API}/me/points", query_string={"community_id": cid},
                        headers=factory.headers(world.volunteer)).get_json()
    assert (points["balance"], points["earned_total"], points["redeemed_total"]) == (18, 18, 0)
    assert_verified(app)


def test_admin_may_adjust_and_a_200_character_reason_fits(client, world, factory, app):
    reason = "因" * 200
    response = adjust(client, factory.headers(world.admin), world.community.id,
                      world.volunteer.id, 7, reason)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["reason"] == reason
    assert response.get_json()["actor_id"] == world.admin.id
    assert user_balance(app, world.community.id, world.volunteer.id) == 7


def test_overdraw_is_409_and_writes_nothing(client, world, org, app):
    cid = world.community.id
    give(client, org, world, world.volunteer, 5)
    state = ledger_rows(app)
    body = assert_error(adjust(client, org, cid, world.volunteer.id, -6), 409,
                        "insufficient_points")
    assert body["message"]
    english = client.post(f"{API}/communities/{cid}/adjustments",
                          json={"user_id": world.volunteer.id, "amount": -6, "reason": "扣"},
                          headers={**org, "Accept-Language": "en"})
    assert assert_error(english, 409, "insufficient_points")["message"] != body["message"]
    # A member who never had points cannot be taken below zero either.
    assert_error(adjust(client, org, cid, world.resident.id, -1), 409, "insufficient_points")
    assert ledger_rows(app)["transfers"] == state["transfers"]
    assert ledger_rows(app)["entries"] == state["entries"]
    assert ledger_rows(app)["audit_events"] == state["audit_events"]
    assert user_balance(app, cid, world.volunteer.id) == 5
    assert adjust(client, org, cid, world.volunteer.id, -5).status_code == 201
    assert user_balance(app, cid, world.volunteer.id) == 0
    assert_verified(app)


def _bad_bodies(world) -> dict:
    good = {"user_id": world.volunteer.id, "amount": 5, "reason": "奖励"}

    def with_(**changes):
        return {**good, **changes}

    def without(name):
        return {k: v for k, v in good.items() if k != name}

    return {
        "zero": (with_(amount=0), "amount"),
        "minus zero": (with_(amount=-0), "amount"),
        "float": (with_(amount=1.5), "amount"),
        "whole float": (with_(amount=5.0), "amount"),
        "string": (with_(amount="5"), "amount"),
        "boolean": (with_(amount=True), "amount"),
        "null amount": (with_(amount=None), "amount"),
        "beyond 2^53": (with_(amount=2**53 + 1), "amount"),
        "beyond -2^53": (with_(amount=-(2**53) - 1), "amount"),
        "beyond a million": (with_(amount=1_000_001), "amount"),
        "huge": (with_(amount=10**40), "amount"),
        "amount missing": (without("amount"), "amount"),
        "reason missing": (without("reason"), "reason"),
        "reason empty": (with_(reason=""), "reason"),
        "reason whitespace": (with_(reason="   \t "), "reason"),
        "reason 201 chars": (with_(reason="因" * 201), "reason"),
        "reason control character": (with_(reason="奖\x00励"), "reason"),
        "reason not text": (with_(reason=5), "reason"),
        "user missing": (without("user_id"), "user_id"),
        "user as string": (with_(user_id=str(world.volunteer.id)), "user_id"),
        "user not a member": (with_(user_id=world.outsider.id), "user_id"),
        "user of another community": (with_(user_id=world.other_volunteer.id), "user_id"),
        "no such user": (with_(user_id=999_999), "user_id"),
        "user id zero": (with_(user_id=0), "user_id"),
        "unknown field balance": (with_(balance=100), "balance"),
        "unknown field actor": (with_(actor_id=world.admin.id), "actor_id"),
    }


def test_bad_adjustments_are_422_and_write_nothing(client, world, org, app):
    cid = world.community.id
    give(client, org, world, world.volunteer, 10)
    state = ledger_rows(app)
    for name, (body, field) in _bad_bodies(world).items():
        response = client.post(f"{API}/communities/{cid}/adjustments", json=body, headers=org)
        assert response.status_code == 422, (name, response.get_data(as_text=True))
        assert_field_error(response, field)
        assert ledger_rows(app) == state, name
    assert user_balance(app, cid, world.volunteer.id) == 10
    assert_verified(app)


def test_bad_adjustment_bodies_that_are_not_objects(client, world, org, app):
    cid = world.community.id
    state = ledger_rows(app)
    url = f"{API}/communities/{cid}/adjustments"
    assert_error(client.post(url, json=[1, 2], headers=org), 422)
    assert_error(client.post(url, json="5", headers=org), 422)
    assert_error(client.post(url, data="{not json", headers={**org, "Content-Type":
                                                              "application/json"}), 400)
    assert_error(client.post(url, headers=org), 422)
    assert ledger_rows(app) == state


def test_bad_idempotency_keys_are_422_and_write_nothing(client, world, org, app):
    cid = world.community.id
    state = ledger_rows(app)
    for key in ("k" * 65, "键-1", "clé", "", "   ", "a\tb"):
        response = client.post(f"{API}/communities/{cid}/adjustments",
                               json={"user_id": world.volunteer.id, "amount": 5,
                                     "reason": "奖励"},
                               headers={**org, "Idempotency-Key": key})
        assert_field_error(response, "Idempotency-Key")
    assert ledger_rows(app) == state
    assert adjust(client, org, cid, world.volunteer.id, 5, key="k" * 64).status_code == 201


def test_idempotency_key_replays_the_original(client, world, org, factory, app):
    cid = world.community.id
    first = adjust(client, org, cid, world.volunteer.id, 8, key="  batch-2025-03  ")
    assert first.status_code == 201, first.get_data(as_text=True)
    state = ledger_rows(app)
    again = adjust(client, org, cid, world.volunteer.id, 8, key="batch-2025-03")
    assert again.status_code in (200, 201)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["replayed"] is True
    assert again.get_json()["balance_after"] == 8
    assert ledger_rows(app) == state  # no entry, no transfer, no second audit event
    # The same key for something else is a conflict, and moves nothing.
    for amount, user in ((9, world.volunteer), (-8, world.volunteer), (8, world.resident)):
        response = adjust(client, org, cid, user.id, amount, key="batch-2025-03")
        assert_error(response, 409, "idempotency_conflict")
    assert ledger_rows(app) == state
    # Another organiser's key of the same text is their own.
    second_org = factory.member(world.community, factory.user("张主任"), "organiser")
    other = adjust(client, factory.headers(second_org), cid, world.volunteer.id, 8,
                   key="batch-2025-03")
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]
    assert user_balance(app, cid, world.volunteer.id) == 16
    assert_verified(app)


def test_adjustment_permissions(client, world, factory, org, app):
    cid = world.community.id
    state = ledger_rows(app)
    body = {"user_id": world.volunteer.id, "amount": 5, "reason": "奖励"}
    url = f"{API}/communities/{cid}/adjustments"
    for user in (world.volunteer, world.resident):
        assert_error(client.post(url, json=body, headers=factory.headers(user)), 403)
    for user in (world.other_organiser, world.other_volunteer, world.outsider):
        assert_error(client.post(url, json=body, headers=factory.headers(user)), 404)
    assert_error(client.post(url, json=body), 401)
    assert_error(client.post(url, json=body, headers={"Authorization": "Bearer nonsense"}), 401)
    assert_error(client.post(f"{API}/communities/999999/adjustments", json=body, headers=org), 404)
    # The other community's organiser cannot move points of their own members here either.
    assert_error(client.post(f"{API}/communities/{world.other.id}/adjustments", json=body,
                             headers=org), 404)
    assert ledger_rows(app) == state


# --- audit log ----------------------------------------------------------------------------

def test_audit_log_records_adjustments_newest_first(client, world, org, factory):
    cid = world.community.id
    give(client, org, world, world.volunteer, 10, "第一次")
    give(client, org, world, world.resident, 4, "第二次")
    adjust(client, org, cid, world.volunteer.id, -3, "第三次")
    assert_error(adjust(client, org, cid, world.volunteer.id, -100, "超额"), 409)
    events = audit_events(client, org, cid)
    assert [(e["action"], e["actor_id"], e["subject_user_id"], e["details"]["amount"],
             e["details"]["reason"]) for e in events] == [
        ("points.adjusted", world.organiser.id, world.volunteer.id, -3, "第三次"),
        ("points.adjusted", world.organiser.id, world.resident.id, 4, "第二次"),
        ("points.adjusted", world.organiser.id, world.volunteer.id, 10, "第一次"),
    ]
    page = client.get(f"{API}/communities/{cid}/audit-log", headers=org,
                      query_string={"per_page": 2, "page": 2}).get_json()
    assert page["total"] == 3 and [e["details"]["reason"] for e in page["items"]] == ["第一次"]
    # Only the community's organisers read it.
    url = f"{API}/communities/{cid}/audit-log"
    for user in (world.volunteer, world.resident):
        assert_error(client.get(url, headers=factory.headers(user)), 403)
    for user in (world.other_organiser, world.outsider):
        assert_error(client.get(url, headers=factory.headers(user)), 404)
    assert_error(client.get(url), 401)
    # Nothing of this community shows in the other one's log.
    other = client.get(f"{API}/communities/{world.other.id}/audit-log",
                       headers=factory.headers(world.other_organiser)).get_json()
    assert other["total"] == 0


# --- balances -----------------------------------------------------------------------------

def test_me_points(client, world, org, factory, app):
    cid = world.community.id
    volunteer = factory.headers(world.volunteer)
    url = f"{API}/me/points"
    empty = client.get(url, query_string={"community_id": cid}, headers=volunteer)
    assert empty.status_code == 200
    assert {k: empty.get_json()[k] for k in ("balance", "earned_total", "redeemed_total")} == {
        "balance": 0, "earned_total": 0, "redeemed_total": 0}
    give(client, org, world, world.volunteer, 40)
    with app.app_context():
        store = service.store_account(cid)
        mine = service.user_account(cid, world.volunteer.id)
        service.transfer(cid, mine, store, 15, TransferKind.REDEMPTION, "redemption:1")
        db.session.commit()
    body = client.get(url, query_string={"community_id": cid}, headers=volunteer).get_json()
    assert (body["balance"], body["earned_total"], body["redeemed_total"]) == (25, 40, 15)
    assert body["community_id"] == cid and body["pending"] >= 0
    # With a single community, community_id may be left out.
    assert client.get(url, headers=volunteer).get_json() == body
    # A member of several communities must say which.
    factory.member(world.other, world.volunteer, "volunteer")
    assert_field_error(client.get(url, headers=volunteer), "community_id")
    there = client.get(url, query_string={"community_id": world.other.id}, headers=volunteer)
    assert there.status_code == 200 and there.get_json()["balance"] == 0
    # Someone in no community, or asking about a community they are not in.
    assert_field_error(client.get(url, headers=factory.headers(world.outsider)), "community_id")
    assert_error(client.get(url, query_string={"community_id": world.other.id},
                            headers=factory.headers(world.resident)), 404)
    assert_error(client.get(url, query_string={"community_id": 999_999}, headers=volunteer), 404)
    assert_error(client.get(url, query_string={"community_id": "abc"}, headers=volunteer), 422)
    assert_error(client.get(url, query_string={"community_id": cid}), 401)


def test_organiser_reads_a_members_points(client, world, org, factory):
    cid = world.community.id
    give(client, org, world, world.resident, 9)
    url = f"{API}/communities/{cid}/accounts/{world.resident.id}"
    assert client.get(url, headers=org).get_json()["balance"] == 9
    assert_error(client.get(url, headers=factory.headers(world.volunteer)), 403)
    assert_error(client.get(url, headers=factory.headers(world.other_organiser)), 404)


def test_reading_a_balance_does_not_grow_with_history(client, world, org, factory, app):
    """One row by key: the statements run for GET /me/points and for a keyset page of the
    ledger are the same whether the account has 1 entry or 40."""
    cid = world.community.id
    volunteer = factory.headers(world.volunteer)

    def statements(path, **query):
        seen = []
        with app.app_context():
            engine = db.engine

        def record(_conn, _cursor, statement, _params, _context, _many):
            seen.append(statement)

        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            response = client.get(path, query_string=query, headers=volunteer)
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        assert response.status_code == 200
        return seen, response.get_json()

    give(client, org, world, world.volunteer, 1)
    small_points, _ = statements(f"{API}/me/points", community_id=cid)
    small_ledger, page = statements(f"{API}/me/ledger", community_id=cid, per_page=5,
                                    after=10**6)
    for n in range(39):
        give(client, org, world, world.volunteer, 1, f"第{n}次")
    big_points, body = statements(f"{API}/me/points", community_id=cid)
    big_ledger, page = statements(f"{API}/me/ledger", community_id=cid, per_page=5, after=10**6)
    assert body["balance"] == 40 and page["total"] == 40 and len(page["items"]) == 5
    assert small_points == big_points
    assert small_ledger == big_ledger
    assert not any("sum(" in s.lower() and "ledger_entries" in s for s in big_points)


# --- ledgers and keyset paging --------------------------------------------------------------

def account_entry_ids(app, cid: int, uid: int) -> list[int]:
    with reading(app):
        return list(db.session.scalars(
            sa.select(Entry.id).join(Account, Account.id == Entry.account_id)
            .where(Account.community_id == cid, Account.key == f"user:{uid}")
            .order_by(Entry.id.desc())))


def _make_history(client, org, world, app, n: int) -> None:
    cid = world.community.id
    # Interleave another member's postings so the volunteer's entry ids have gaps.
    for i in range(n):
        give(client, org, world, world.volunteer, i % 4 + 1, f"第{i}笔")
        if i % 3 == 0:
            give(client, org, world, world.resident, 1, "交错")
        if i % 5 == 4:
            assert adjust(client, org, cid, world.volunteer.id, -2, "扣回").status_code == 201


def walk_keyset(client, url, headers, per_page, **query) -> tuple[list[dict], list[dict]]:
    pages, items = [], []
    after = None
    for _ in range(1000):
        params = {"per_page": per_page, **query}
        if after is not None:
            params["after"] = after
        response = client.get(url, query_string=params, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        pages.append(page)
        items.extend(page["items"])
        after = page["next_after"]
        if after is None:
            return pages, items
    raise AssertionError("next_after never ended")


def test_my_ledger_keyset_paging_covers_every_entry_once(client, world, org, factory, app):
    cid = world.community.id
    _make_history(client, org, world, app, 24)
    expected = account_entry_ids(app, cid, world.volunteer.id)
    assert len(expected) == 24 + 24 // 5
    for per_page in (1, 7, 10, 100):
        check_keyset_walk(client, world, factory, app, expected, per_page)


def check_keyset_walk(client, world, factory, app, expected, per_page):
    cid = world.community.id
    pages, items = walk_keyset(client, f"{API}/me/ledger", factory.headers(world.volunteer),
                               per_page, community_id=cid)
    assert [i["id"] for i in items] == expected  # newest first, no gap, no duplicate
    assert all(p["total"] == len(expected) for p in pages)
    assert all(len(p["items"]) == per_page for p in pages[:-1])
    assert 1 <= len(pages[-1]["items"]) <= per_page
    assert len(pages) == -(-len(expected) // per_page)
    # Each entry's balance_after is the one before it plus its amount.
    for newer, older in itertools.pairwise(items):
        assert newer["balance_after"] == older["balance_after"] + newer["amount"]
    assert items[-1]["balance_after"] == items[-1]["amount"]
    assert items[0]["balance_after"] == user_balance(app, cid, world.volunteer.id)
    first = items[-1]
    assert set(first) >= {"id", "amount", "balance_after", "kind", "reference", "memo",
                          "created_at"}
    assert (first["kind"], first["memo"]) == ("adjustment", "第0笔")
    assert first["reference"].startswith("adjustment:")
    assert datetime.fromisoformat(first["created_at"]).utcoffset().total_seconds() == 8 * 3600


def test_page_numbers_give_the_same_order_as_keyset(client, world, org, factory, app):
    cid = world.community.id
    _make_history(client, org, world, app, 12)
    headers = factory.headers(world.volunteer)
    _, keyset = walk_keyset(client, f"{API}/me/ledger", headers, 5, community_id=cid)
    numbered = []
    for page in range(1, 5):
        body = client.get(f"{API}/me/ledger", headers=headers,
                          query_string={"community_id": cid, "per_page": 5,
                                        "page": page}).get_json()
        numbered.extend(body["items"])
    assert numbered == keyset


def test_keyset_paging_from_an_exact_multiple_ends_without_an_empty_page(
        client, world, org, factory, app):
    cid = world.community.id
    for n in range(6):
        give(client, org, world, world.volunteer, 1, f"第{n}笔")
    pages, items = walk_keyset(client, f"{API}/me/ledger", factory.headers(world.volunteer), 3,
                               community_id=cid)
    assert [len(p["items"]) for p in pages] == [3, 3]
    assert len({i["id"] for i in items}) == 6


def test_ledger_of_someone_without_an_account_is_empty(client, world, factory):
    body = client.get(f"{API}/me/ledger", headers=factory.headers(world.resident),
                      query_string={"community_id": world.community.id}).get_json()
    assert (body["items"], body["total"], body["next_after"]) == ([], 0, None)


def test_ledger_query_validation(client, world, factory):
    headers = factory.headers(world.volunteer)
    url = f"{API}/me/ledger"
    cid = world.community.id
    for query in ({"after": 0}, {"after": -1}, {"after": "x"}, {"per_page": 101},
                  {"per_page": 0}, {"page": 0}):
        assert_error(client.get(url, query_string={"community_id": cid, **query},
                                headers=headers), 422)
    assert_error(client.get(url, query_string={"community_id": world.other.id},
                            headers=headers), 404)
    assert_error(client.get(url, query_string={"community_id": cid}), 401)
    # Deep OFFSET pages are refused (they would read every row before them); keyset is not.
    deep = service.MAX_OFFSET // 20 + 2
    assert_field_error(client.get(url, query_string={"community_id": cid, "page": deep,
                                                     "per_page": 20}, headers=headers), "page")
    assert client.get(url, query_string={"community_id": cid, "page": deep, "per_page": 20,
                                         "after": 10**6}, headers=headers).status_code == 200


def test_organiser_reads_a_members_ledger_with_keyset_paging(client, world, org, factory, app):
    cid = world.community.id
    _make_history(client, org, world, app, 15)
    url = f"{API}/communities/{cid}/accounts/{world.volunteer.id}/ledger"
    pages, items = walk_keyset(client, url, org, 4)
    assert [i["id"] for i in items] == account_entry_ids(app, cid, world.volunteer.id)
    assert pages[0]["total"] == len(items)
    # The member's own view shows the same entries.
    _, own = walk_keyset(client, f"{API}/me/ledger", factory.headers(world.volunteer), 4,
                         community_id=cid)
    assert own == items


def test_member_ledger_permissions(client, world, org, factory):
    cid = world.community.id
    give(client, org, world, world.resident, 3)
    give(client, org, world, world.volunteer, 3)
    resident_ledger = f"{API}/communities/{cid}/accounts/{world.resident.id}/ledger"
    volunteer_ledger = f"{API}/communities/{cid}/accounts/{world.volunteer.id}/ledger"
    # Residents and volunteers cannot read others' ledgers (nor use the organiser view at all).
    assert_error(client.get(resident_ledger, headers=factory.headers(world.volunteer)), 403)
    assert_error(client.get(volunteer_ledger, headers=factory.headers(world.resident)), 403)
    assert_error(client.get(volunteer_ledger, headers=factory.headers(world.volunteer)), 403)
    # Organisers of another community, outsiders: as if it did not exist.
    for user in (world.other_organiser, world.outsider, world.other_volunteer):
        assert_error(client.get(resident_ledger, headers=factory.headers(user)), 404)
    # An organiser asking for someone who is not a member here.
    assert_error(client.get(f"{API}/communities/{cid}/accounts/{world.other_volunteer.id}/ledger",
                            headers=org), 404)
    assert_error(client.get(f"{API}/communities/{cid}/accounts/999999/ledger", headers=org), 404)
    assert_error(client.get(resident_ledger), 401)
    assert client.get(resident_ledger, headers=org).get_json()["total"] == 1
