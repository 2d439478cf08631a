"""`flask wishes tick`: auto-confirm, lapsed claims, escalation — and running it again does
nothing more. Time moves either by a fake clock (monkeypatched `utcnow`) or by writing a wish's
timestamps in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.db import utcnow
from tests.helpers import assert_error, reading
from tests.wish_helpers import Kit, award_transfers, counts, set_wish_columns, tick_counts, wish_row

CONFIRMED, LAPSED, FLAGGED = "auto-confirmed", "released (lapsed)", "flagged for dispatch"


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


@pytest.fixture
def clock(monkeypatch):
    """Move 'now' for the tick, the wish service and the ledger alike."""
    state = {"offset": timedelta(0)}

    def fake_now():
        return utcnow() + state["offset"]

    for target in ("app.wishes.cli.utcnow", "app.wishes.service.utcnow",
                   "app.ledger.service.utcnow"):
        monkeypatch.setattr(target, fake_now)

    def move(**delta):
        state["offset"] = timedelta(**delta)
    return move


def everything(app) -> dict:
    """All rows the tick could touch, to prove a second run changes nothing."""
    from app.ledger.models import Account, Entry, Transfer
    from app.wishes.models import ClaimLapse, Wish, WishEvent

    with reading(app) as session:
        return {model.__tablename__: [dict(r) for r in session.execute(
            sa.select(model.__table__).order_by(*model.__table__.primary_key.columns)).mappings()]
            for model in (Wish, WishEvent, ClaimLapse, Transfer, Entry, Account)}


# --- auto-confirm -------------------------------------------------------------------------

def test_fulfilled_wishes_are_auto_confirmed_after_n_days_at_the_configured_rating(kit, app,
                                                                                   clock):
    kit.settings(auto_confirm_days=2, auto_confirm_rating=4)
    wid = kit.make("fulfilled", level=3)
    assert tick_counts(kit.tick())[CONFIRMED] == 0
    clock(days=2, minutes=-1)
    assert tick_counts(kit.tick())[CONFIRMED] == 0
    assert kit.wish(wid)["status"] == "fulfilled"

    clock(days=2, minutes=1)
    assert tick_counts(kit.tick()) == {CONFIRMED: 1, LAPSED: 0, FLAGGED: 0}
    wish = kit.wish(wid, kit.resident)
    expected = kit.rule_points(3) * kit.factor(4) // 100
    assert (wish["status"], wish["rating"], wish["points_awarded"]) == ("closed", 4, expected)
    event = wish["timeline"][-1]
    assert (event["action"], event["from_status"], event["to_status"]) == (
        "auto_confirm", "fulfilled", "closed")
    assert event["actor_id"] is None and event["actor_name"] == "系统"
    assert event["by_proxy"] is False
    (transfer,) = award_transfers(app, wid)
    assert transfer["amount"] == expected and transfer["actor_id"] is None
    assert kit.points(kit.volunteer)["balance"] == expected
    assert kit.points(kit.volunteer)["pending"] == 0

    # Again, and again later: nothing more.
    before = everything(app)
    assert tick_counts(kit.tick())[CONFIRMED] == 0
    clock(days=30)
    assert tick_counts(kit.tick())[CONFIRMED] == 0
    assert everything(app) == before
    # The resident confirming late is refused, and posts nothing.
    assert_error(kit.act(wid, "confirm", kit.resident, rating=5), 409, "invalid_transition")
    assert len(award_transfers(app, wid)) == 1


def test_auto_confirm_at_a_low_default_rating_closes_without_points(kit, app):
    kit.settings(auto_confirm_days=1, auto_confirm_rating=2)
    wid = kit.make("fulfilled", level=5)
    set_wish_columns(app, wid, fulfilled_at=utcnow() - timedelta(days=1, seconds=5))
    assert tick_counts(kit.tick())[CONFIRMED] == 1
    wish = kit.wish(wid)
    assert (wish["status"], wish["rating"], wish["points_awarded"]) == ("closed", 2, 0)
    assert award_transfers(app, wid) == []


def test_each_community_auto_confirms_by_its_own_settings(kit, app, factory):
    kit.settings(auto_confirm_days=1)
    mine = kit.make("fulfilled")
    other_board = kit.create_board(kit.w.other.id, "芙蓉墙")
    other_resident = factory.member(kit.w.other, factory.user("芙蓉居民"), "resident")
    theirs = kit.post_wish(other_resident, board=other_board)["id"]
    kit.do(theirs, "approve", kit.w.other_organiser, level=1)
    kit.do(theirs, "claim", kit.w.other_volunteer)
    kit.do(theirs, "fulfil", kit.w.other_volunteer)
    for wid in (mine, theirs):
        set_wish_columns(app, wid, fulfilled_at=utcnow() - timedelta(days=3))
    assert tick_counts(kit.tick())[CONFIRMED] == 1
    assert wish_row(app, mine)["status"] == "closed"
    assert wish_row(app, theirs)["status"] == "fulfilled"  # the default is 7 days


def test_a_disputed_wish_is_not_auto_confirmed(kit, app):
    kit.settings(auto_confirm_days=1)
    wid = kit.make("fulfilled")
    set_wish_columns(app, wid, fulfilled_at=utcnow() - timedelta(days=5))
    kit.do(wid, "dispute", kit.resident)
    assert tick_counts(kit.tick())[CONFIRMED] == 0
    assert wish_row(app, wid)["status"] == "claimed"


# --- lapsed claims ------------------------------------------------------------------------

def test_claims_past_their_fulfil_deadline_are_released_and_the_lapse_recorded(kit, app):
    kit.settings(max_active_claims=2)
    lapsed = kit.make("claimed")
    kept = kit.make("claimed")
    done = kit.make("fulfilled", claimer=kit.volunteer2)
    due = utcnow() - timedelta(minutes=5)
    set_wish_columns(app, lapsed, fulfil_due_at=due)
    set_wish_columns(app, done, fulfil_due_at=due)  # fulfilled in time: not a lapse
    other = kit.make("open")
    assert_error(kit.act(other, "claim", kit.volunteer), 409, "claim_limit_reached")

    assert tick_counts(kit.tick()) == {CONFIRMED: 0, LAPSED: 1, FLAGGED: 0}
    wish = kit.wish(lapsed)
    assert wish["status"] == "open" and wish["claimer_id"] is None
    assert wish["fulfil_due_at"] is None
    event = wish["timeline"][-1]
    assert (event["action"], event["from_status"], event["to_status"], event["actor_id"]) == (
        "lapse", "claimed", "open", None)
    assert kit.volunteer.display_name in event["note"]
    assert kit.wish(kept)["status"] == "claimed" and kit.wish(done)["status"] == "fulfilled"

    page = kit.ok(kit.get(f"/communities/{kit.cid}/claim-lapses", kit.organiser))
    assert page["total"] == 1
    (lapse,) = page["items"]
    assert (lapse["user_id"], lapse["wish_id"]) == (kit.volunteer.id, lapsed)
    from datetime import datetime

    assert abs(datetime.fromisoformat(lapse["due_at"]) - due) < timedelta(seconds=1)
    assert kit.ok(kit.get(f"/communities/{kit.cid}/claim-lapses?user_id={kit.volunteer2.id}",
                          kit.organiser))["total"] == 0
    assert_error(kit.get(f"/communities/{kit.cid}/claim-lapses", kit.volunteer), 403)
    # The volunteer's place is free again; the wish can be claimed anew.
    kit.do(other, "claim", kit.volunteer)
    kit.do(lapsed, "claim", kit.volunteer2)

    before = everything(app)
    assert tick_counts(kit.tick())[LAPSED] == 0
    assert everything(app) == before


def test_an_extended_claim_lapses_only_after_the_extension(kit, app, clock):
    kit.settings(fulfil_days=3, extension_days=2)
    wid = kit.make("claimed")
    kit.do(wid, "extend", kit.volunteer)
    clock(days=4)
    assert tick_counts(kit.tick())[LAPSED] == 0
    clock(days=5, minutes=1)
    assert tick_counts(kit.tick())[LAPSED] == 1
    assert wish_row(app, wid)["status"] == "open"


# --- escalation ---------------------------------------------------------------------------

def test_open_wishes_unclaimed_for_n_hours_are_flagged_for_dispatch(kit, app):
    kit.settings(escalate_hours=5)
    old, young = kit.make("open"), kit.make("open")
    pending, claimed = kit.make("pending"), kit.make("claimed")
    long_ago = utcnow() - timedelta(hours=5, minutes=1)
    set_wish_columns(app, old, opened_at=long_ago)
    set_wish_columns(app, young, opened_at=utcnow() - timedelta(hours=4, minutes=59))
    set_wish_columns(app, pending, created_at=long_ago)
    set_wish_columns(app, claimed, opened_at=long_ago)

    assert tick_counts(kit.tick()) == {CONFIRMED: 0, LAPSED: 0, FLAGGED: 1}
    queue = kit.ok(kit.get("/wishes?escalated=true", kit.organiser))
    assert [w["id"] for w in queue["items"]] == [old]
    assert queue["items"][0]["escalated"] is True and queue["items"][0]["status"] == "open"
    event = kit.wish(old)["timeline"][-1]
    assert (event["action"], event["from_status"], event["to_status"], event["actor_id"]) == (
        "escalate", "open", "open", None)
    assert old not in [w["id"] for w in kit.ok(kit.get("/wishes?escalated=false&per_page=100",
                                                        kit.organiser))["items"]]

    before = everything(app)
    assert tick_counts(kit.tick())[FLAGGED] == 0
    assert everything(app) == before

    # Dispatched, it leaves the queue; given back, it is open afresh and off the queue until
    # it has waited the N hours again.
    kit.do(old, "assign", kit.organiser, volunteer_id=kit.volunteer2.id)
    assert kit.ok(kit.get("/wishes?escalated=true", kit.organiser))["items"] == []
    assert kit.wish(old)["escalated"] is False
    kit.do(old, "release", kit.organiser)
    assert kit.ok(kit.get("/wishes?escalated=true", kit.organiser))["items"] == []
    assert tick_counts(kit.tick())[FLAGGED] == 0
    set_wish_columns(app, old, opened_at=long_ago)
    assert tick_counts(kit.tick())[FLAGGED] == 1
    assert [e["action"] for e in kit.wish(old)["timeline"]].count("escalate") == 2


def test_the_dispatch_queue_holds_only_wishes_still_waiting(kit, app):
    kit.settings(escalate_hours=1, max_active_claims=10)
    waiting = [kit.make("open") for _ in range(3)]
    for wid in waiting:
        set_wish_columns(app, wid, opened_at=utcnow() - timedelta(hours=2))
    assert tick_counts(kit.tick())[FLAGGED] == 3
    # One is claimed and carried through to closed, one is rejected: only the third waits.
    kit.do(waiting[0], "claim", kit.volunteer)
    kit.do(waiting[0], "fulfil", kit.volunteer)
    kit.do(waiting[0], "confirm", kit.resident, rating=5)
    kit.do(waiting[1], "reject", kit.organiser)
    queue = kit.ok(kit.get("/wishes?escalated=true", kit.organiser))
    assert [w["id"] for w in queue["items"] if w["status"] == "open"] == [waiting[2]]
    assert [w["id"] for w in queue["items"]] == [waiting[2]], queue["items"]


# --- all three at once, twice -------------------------------------------------------------

def test_a_second_tick_changes_nothing(kit, app):
    kit.settings(auto_confirm_days=1, escalate_hours=1, max_active_claims=10)
    past = utcnow() - timedelta(days=2)
    to_confirm = [kit.make("fulfilled") for _ in range(2)]
    to_lapse = [kit.make("claimed", claimer=kit.volunteer2) for _ in range(2)]
    to_flag = [kit.make("open") for _ in range(2)]
    for wid in to_confirm:
        set_wish_columns(app, wid, fulfilled_at=past)
    for wid in to_lapse:
        set_wish_columns(app, wid, fulfil_due_at=past, opened_at=past)
    for wid in to_flag:
        set_wish_columns(app, wid, opened_at=past)
    first = tick_counts(kit.tick())
    assert first[CONFIRMED] == 2 and first[LAPSED] == 2
    # The lapsed wishes reopen now, so only the two long-open ones are flagged.
    assert first[FLAGGED] == 2
    rows = counts(app)
    assert rows["claim_lapses"] == 2 and rows["transfers"] == 2
    before = everything(app)
    for _ in range(2):
        assert tick_counts(kit.tick()) == {CONFIRMED: 0, LAPSED: 0, FLAGGED: 0}
    assert everything(app) == before
