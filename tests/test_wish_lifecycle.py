"""The micro-wish lifecycle: every state × every action × every relation of the actor.

The expected table below is written from PRODUCT.md's "Micro-wish lifecycle" table, on purpose
not imported from app/wishes/transitions.py, so the two can disagree and a test can fail:

| from | to | who |
| pending | open | organiser (approve, with a level) |
| pending, open | rejected | organiser (reason) |
| pending, open | cancelled | owner (or an organiser for the resident, by proxy) |
| open | claimed | volunteer (claim) · organiser (assign = 派单) |
| claimed | open | the claimer or an organiser (release) |
| claimed | claimed | the claimer (extend the fulfil deadline, once) |
| claimed | fulfilled | the claimer |
| fulfilled | closed | owner, or organiser by proxy (confirm) |
| fulfilled | claimed | owner, or organiser by proxy (dispute) |

Refusals: a non-member of the wish's community gets 404 (the wish does not exist for them);
someone who may take this action in some state but not in this one gets 409 `invalid_transition`
naming the current state; anyone else 403. A refusal changes nothing.
"""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from tests.helpers import assert_error
from tests.wish_helpers import API, PAYLOADS, Kit, wish_state

STATES = ("pending", "open", "claimed", "fulfilled", "closed", "rejected", "cancelled")
ACTIONS = ("approve", "reject", "cancel", "claim", "assign", "release", "extend", "fulfil",
           "confirm", "dispute")
LABELS = {"pending": "待审核", "open": "待认领", "claimed": "已认领", "fulfilled": "待确认",
          "closed": "已办结", "rejected": "未通过", "cancelled": "已撤回"}

# (state, action) -> (next state, relations that may take it)
LIFECYCLE: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("pending", "approve"): ("open", frozenset({"organiser"})),
    ("pending", "reject"): ("rejected", frozenset({"organiser"})),
    ("open", "reject"): ("rejected", frozenset({"organiser"})),
    ("pending", "cancel"): ("cancelled", frozenset({"owner", "proxy"})),
    ("open", "cancel"): ("cancelled", frozenset({"owner", "proxy"})),
    ("open", "claim"): ("claimed", frozenset({"volunteer"})),
    ("open", "assign"): ("claimed", frozenset({"organiser"})),
    ("claimed", "release"): ("open", frozenset({"claimer", "organiser"})),
    ("claimed", "extend"): ("claimed", frozenset({"claimer"})),
    ("claimed", "fulfil"): ("fulfilled", frozenset({"claimer"})),
    ("fulfilled", "confirm"): ("closed", frozenset({"owner", "proxy"})),
    ("fulfilled", "dispute"): ("claimed", frozenset({"owner", "proxy"})),
}

# The people who try every action, and how each relates to the test's wishes.
ACTORS = ("owner", "claimer", "other_volunteer", "neighbour", "organiser", "admin",
          "other_organiser", "outsider")
NON_MEMBERS = {"other_organiser", "outsider"}


def relations_of(actor: str, state: str) -> frozenset[str]:
    holds = state in ("claimed", "fulfilled", "closed")  # the claimer is volunteer A
    return frozenset({
        "owner": {"owner"},
        "claimer": {"volunteer", "claimer"} if holds else {"volunteer"},
        "other_volunteer": {"volunteer"},
        "neighbour": set(),
        "organiser": {"organiser", "proxy"},
        "admin": {"organiser", "proxy"},
    }.get(actor, set()))


def expected(state: str, action: str, actor: str) -> tuple[int, str | None]:
    """(status code, next state or error slug) for this actor trying this action now."""
    if actor in NON_MEMBERS:
        return 404, "not_found"
    mine = relations_of(actor, state)
    rule = LIFECYCLE.get((state, action))
    if rule is not None and rule[1] & mine:
        return 200, rule[0]
    ever = any(a == action and who & mine for (_s, a), (_to, who) in LIFECYCLE.items())
    if ever and rule is None:
        return 409, "invalid_transition"
    return 403, None


def by_proxy(state: str, action: str, actor: str) -> bool:
    """Recorded as by proxy: an organiser took an action that is the resident's to take."""
    mine = relations_of(actor, state)
    who = LIFECYCLE[(state, action)][1]
    return "proxy" in who and "owner" not in mine and "proxy" in mine


@pytest.fixture
def kit(app, client, factory, world):
    kit = Kit(app, client, factory, world)
    kit.people = {
        "owner": world.resident,
        "claimer": world.volunteer,
        "other_volunteer": kit.volunteer2,
        "neighbour": factory.member(world.community, factory.user("邻居刘"), "resident"),
        "organiser": world.organiser,
        "admin": world.admin,
        "other_organiser": world.other_organiser,
        "outsider": world.outsider,
    }
    kit.settings(max_active_claims=50)  # the cap has its own tests
    return kit


def test_the_expected_table_covers_the_product_table():
    # Sanity of the table above: every state has some way in, terminal states have no way out.
    reachable = {"pending"} | {to for to, _who in LIFECYCLE.values()}
    assert reachable == set(STATES)
    for terminal in ("closed", "rejected", "cancelled"):
        assert not [k for k in LIFECYCLE if k[0] == terminal]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", STATES)
def test_every_actor_tries_every_action_in_every_state(kit, app, state, action):
    wid = kit.make(state)
    problems = []
    for actor in ACTORS:
        user = kit.people[actor]
        status, outcome = expected(state, action, actor)
        before = wish_state(app, wid)
        response = kit.act(wid, action, user)
        body = response.get_json()
        label = f"{actor} {action} on {state}"
        if response.status_code != status:
            problems.append(f"{label}: expected {status}, got {response.status_code} {body}")
            if response.status_code == 200:
                wid = kit.make(state)
            continue
        if status == 200:
            if body["status"] != outcome:
                problems.append(f"{label}: went to {body['status']}, expected {outcome}")
            events = wish_state(app, wid)["events"]
            if len(events) != len(before["events"]) + 1 or events[:-1] != before["events"]:
                problems.append(f"{label}: timeline not appended by exactly one event")
            timeline = body["timeline"]  # the answer shows the timeline as it now is
            if len(timeline) != len(events):
                problems.append(f"{label}: answer shows {len(timeline)} of {len(events)} events")
            last = timeline[-1]
            want = {"action": action, "from_status": state, "to_status": outcome,
                    "actor_id": user.id, "by_proxy": by_proxy(state, action, actor)}
            got = {k: last[k] for k in want}
            if got != want:
                problems.append(f"{label}: timeline event {got}, expected {want}")
            if last["actor_name"] != user.display_name:
                problems.append(f"{label}: timeline actor_name {last['actor_name']!r}")
            wid = kit.make(state)  # the next actor tries on a wish in the same state
            continue
        assert_error(response, status, outcome)
        if status == 409:
            if body.get("errors", {}).get("status") != [state]:
                problems.append(f"{label}: errors.status is {body.get('errors')}")
            if LABELS[state] not in body["message"]:
                problems.append(f"{label}: message {body['message']!r} does not name the state")
        after = wish_state(app, wid)
        if after != before:
            problems.append(f"{label}: refused with {status} but the wish changed")
    assert not problems, "\n".join(problems)


def test_invalid_transition_names_the_state_in_english_too(kit):
    wid = kit.make("closed")
    response = kit.post(f"/wishes/{wid}/claim", kit.volunteer2, {},
                        headers={"Accept-Language": "en"})
    body = assert_error(response, 409, "invalid_transition")
    assert "closed" in body["message"]
    assert body["errors"]["status"] == ["closed"]


def test_system_transitions_have_no_endpoint(kit):
    wid = kit.make("fulfilled")
    for action in ("auto_confirm", "lapse", "escalate", "post", "close"):
        response = kit.post(f"/wishes/{wid}/{action}", kit.organiser, {})
        assert response.status_code in (404, 405), (action, response.get_data(as_text=True))
    assert kit.wish(wid)["status"] == "fulfilled"


def test_actions_need_a_login_and_an_existing_wish(kit, client):
    wid = kit.make("open")
    assert_error(client.post(f"{API}/wishes/{wid}/claim", json={}), 401)
    assert_error(kit.post("/wishes/999999/claim", kit.volunteer), 404, "not_found")
    assert_error(kit.post(f"/wishes/{2**40}/claim", kit.volunteer), 404, "not_found")
    assert kit.wish(wid)["status"] == "open"


def test_a_long_life_is_one_consistent_timeline(kit):
    """post → approve → claim → release → assign → extend → fulfil → dispute → fulfil → confirm"""
    r, o, a, b = kit.resident, kit.organiser, kit.volunteer, kit.volunteer2
    wid = kit.post_wish(r)["id"]
    steps = [("approve", o, {"level": 2}), ("claim", b, {}), ("release", b, {}),
             ("assign", o, {"volunteer_id": a.id}), ("extend", a, {}), ("fulfil", a, {}),
             ("dispute", r, {}), ("fulfil", a, {"note": "第二次上门，已修好"}),
             ("confirm", o, {"rating": 5})]
    for action, user, payload in steps:
        kit.do(wid, action, user, **payload)
    wish = kit.wish(wid, r)
    timeline = wish["timeline"]
    assert [e["action"] for e in timeline] == ["post"] + [s[0] for s in steps]
    assert [e["actor_id"] for e in timeline] == [r.id] + [s[1].id for s in steps]
    assert [e["by_proxy"] for e in timeline] == [False] * 9 + [True]
    assert timeline[0]["from_status"] is None and timeline[0]["to_status"] == "pending"
    for earlier, later in itertools.pairwise(timeline):
        assert later["from_status"] == earlier["to_status"], timeline
        assert (datetime.fromisoformat(later["created_at"])
                >= datetime.fromisoformat(earlier["created_at"]))
    assert timeline[-1]["to_status"] == wish["status"] == "closed"
    # The notes people gave are on the timeline.
    notes = [e["note"] or "" for e in timeline]
    assert PAYLOADS["release"]["reason"] in notes[3]
    assert kit.volunteer.display_name in notes[4]
    assert PAYLOADS["dispute"]["reason"] in notes[7]
    assert "第二次上门" in notes[8]
    assert wish["claimer_id"] == a.id and wish["level"] == 2 and wish["rating"] == 5


def test_a_board_that_auto_approves_opens_wishes_at_the_default_level(kit):
    kit.settings(default_level=2)
    board = kit.create_board(kit.cid, "自动通过墙", auto_approve=True)
    wish = kit.post_wish(kit.resident, board=board)
    assert wish["status"] == "open" and wish["level"] == 2
    timeline = kit.wish(wish["id"])["timeline"]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in timeline] == [
        ("post", None, "pending"), ("approve", "pending", "open")]
    assert timeline[1]["actor_id"] is None
