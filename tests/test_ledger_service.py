"""The ledger service itself (issue 3): transfer(), accounts, idempotency, the daily cap, rules.

These call app.ledger.service directly inside an app context, the way later features (wishes,
redemptions, reports) will.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.audit import AuditEvent
from app.db import reset_write_intent, set_write_intent
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.ledger import service
from app.ledger.models import Account, Entry, PointsPolicy, PointsRule, Transfer, TransferKind
from tests.ledger_helpers import API, assert_verified, ledger_rows, set_clock


@pytest.fixture
def ctx(app, world):
    """An app context (with the world built) whose session is cleaned up afterwards.

    Its transactions start as plain reads (a request earlier in this thread may have left the
    write intent set); a test ends them (commit) before making requests of its own.
    """
    token = set_write_intent(False)
    with app.app_context():
        yield world
        db.session.rollback()
    reset_write_intent(token)


def accounts_of(community_id: int, *user_ids: int) -> tuple[int, ...]:
    """(issuance, store, user accounts...) of a community, created on first need."""
    ids = (service.issuance_account(community_id), service.store_account(community_id),
           *(service.user_account(community_id, uid) for uid in user_ids))
    db.session.commit()
    return ids


def account(account_id: int) -> Account:
    db.session.expire_all()
    return db.session.get(Account, account_id)


def entries_of(transfer_id: int) -> list[Entry]:
    return list(db.session.scalars(
        sa.select(Entry).where(Entry.transfer_id == transfer_id).order_by(Entry.id)))


def award(community_id, source, destination, amount, key, kind=TransferKind.EARN_WISH):
    posting = service.transfer(community_id, source, destination, amount, kind, key)
    db.session.commit()
    return posting


# --- accounts -----------------------------------------------------------------------------

def test_accounts_are_created_once_on_first_need(ctx, app):
    cid = ctx.community.id
    first = accounts_of(cid, ctx.volunteer.id)
    again = accounts_of(cid, ctx.volunteer.id)
    assert first == again
    assert len(set(first)) == 3
    rows = db.session.execute(sa.select(Account.key, Account.kind, Account.user_id, Account.balance)
                              .where(Account.community_id == cid).order_by(Account.id)).all()
    assert sorted(rows) == sorted([("issuance", "issuance", None, 0), ("store", "store", None, 0),
                                   (f"user:{ctx.volunteer.id}", "user", ctx.volunteer.id, 0)])
    # Accounts are per community: the same person has a separate one elsewhere.
    other = service.user_account(ctx.other.id, ctx.volunteer.id)
    assert other not in first
    assert service.find_user_account(ctx.community.id, ctx.resident.id) is None


def test_setup_community_gives_system_accounts_rules_and_policy(ctx):
    cid = ctx.other.id
    service.setup_community(cid)
    service.setup_community(cid)  # twice: nothing doubles
    db.session.commit()
    kinds = db.session.scalars(sa.select(Account.kind).where(Account.community_id == cid)).all()
    assert sorted(kinds) == ["issuance", "store"]
    rules = db.session.execute(sa.select(PointsRule.category, PointsRule.level, PointsRule.points)
                               .where(PointsRule.community_id == cid)).all()
    assert len(rules) == 15
    assert {(c, lv) for c, lv, _ in rules} == {(c, lv) for c in ("wish", "report", "activity")
                                               for lv in range(1, 6)}
    assert all(isinstance(p, int) and p >= 0 for _, _, p in rules)
    policy = db.session.get(PointsPolicy, cid)
    # PRODUCT.md: 5★ 100 %, 4★ 80 %, 3★ 60 %, 1–2★ 0 %.
    assert policy.factors() == {1: 0, 2: 0, 3: 60, 4: 80, 5: 100}
    assert policy.daily_earn_cap is None or policy.daily_earn_cap >= 1


# --- transfer -----------------------------------------------------------------------------

def test_transfer_writes_two_entries_that_sum_to_zero(ctx, app):
    cid = ctx.community.id
    issuance, _store, volunteer = accounts_of(cid, ctx.volunteer.id)
    posting = service.transfer(cid, issuance, volunteer, 30, TransferKind.EARN_WISH, "wish:1:award",
                               memo="帮王奶奶买菜", actor_id=ctx.organiser.id)
    db.session.commit()
    assert posting.created and posting.capped == 0
    record = db.session.get(Transfer, posting.transfer.id)
    assert (record.key, record.kind, record.amount, record.requested_amount, record.memo,
            record.actor_id, record.source_id, record.destination_id) == (
        "wish:1:award", "earn_wish", 30, 30, "帮王奶奶买菜", ctx.organiser.id, issuance,
        volunteer)
    entries = entries_of(record.id)
    assert sorted((e.account_id, e.amount, e.balance_after) for e in entries) == sorted(
        [(issuance, -30, -30), (volunteer, 30, 30)])
    assert sum(e.amount for e in entries) == 0
    assert all(e.created_at == record.created_at for e in entries)
    assert all(e.community_id == cid for e in entries)
    mine = account(volunteer)
    assert (mine.balance, mine.earned_total, mine.redeemed_total, mine.entry_count) == (30, 30, 0, 1)
    assert account(issuance).balance == -30
    assert_verified(app)


def test_balance_after_follows_every_posting(ctx, app):
    cid = ctx.community.id
    issuance, store, volunteer = accounts_of(cid, ctx.volunteer.id)
    award(cid, issuance, volunteer, 50, "wish:1:award")
    service.transfer(cid, volunteer, store, 20, TransferKind.REDEMPTION, "redemption:1")
    service.transfer(cid, store, volunteer, 20, TransferKind.REFUND, "redemption:1:refund")
    service.transfer(cid, volunteer, store, 45, TransferKind.REDEMPTION, "redemption:2")
    db.session.commit()
    rows = db.session.execute(sa.select(Entry.amount, Entry.balance_after)
                              .where(Entry.account_id == volunteer).order_by(Entry.id)).all()
    assert rows == [(50, 50), (-20, 30), (20, 50), (-45, 5)]
    store_rows = db.session.execute(sa.select(Entry.amount, Entry.balance_after)
                                    .where(Entry.account_id == store).order_by(Entry.id)).all()
    assert store_rows == [(20, 20), (-20, 0), (45, 45)]
    mine = account(volunteer)
    assert (mine.balance, mine.earned_total, mine.redeemed_total, mine.entry_count) == (5, 50, 45, 4)
    assert_verified(app)


def test_repeating_a_key_returns_the_original_and_moves_nothing(ctx, app):
    cid = ctx.community.id
    issuance, _store, volunteer = accounts_of(cid, ctx.volunteer.id)
    first = award(cid, issuance, volunteer, 30, "wish:7:award")
    before = ledger_rows(app)
    for _ in range(3):
        again = award(cid, issuance, volunteer, 30, "wish:7:award")
        assert not again.created
        assert again.transfer.id == first.transfer.id
        assert again.transfer.amount == 30
    assert ledger_rows(app) == before
    assert account(volunteer).balance == 30


@pytest.mark.parametrize("change", ["amount", "destination", "source", "kind"])
def test_same_key_for_a_different_transfer_is_refused(ctx, app, change):
    cid = ctx.community.id
    issuance, store, volunteer, resident = accounts_of(cid, ctx.volunteer.id, ctx.resident.id)
    award(cid, issuance, volunteer, 30, "wish:8:award")
    before = ledger_rows(app)
    arguments = {"source_id": issuance, "destination_id": volunteer, "amount": 30,
                 "kind": TransferKind.EARN_WISH}
    arguments.update({"amount": {"amount": 31}, "destination": {"destination_id": resident},
                      "source": {"source_id": store},
                      "kind": {"kind": TransferKind.EARN_REPORT}}[change])
    with pytest.raises(Conflict) as refused:
        service.transfer(cid, key="wish:8:award", **arguments)
    assert refused.value.slug == "idempotency_conflict"
    assert refused.value.status_code == 409
    db.session.commit()
    assert ledger_rows(app) == before


def test_keys_are_unique_per_community_not_globally(ctx, app):
    here = accounts_of(ctx.community.id, ctx.volunteer.id)
    there = accounts_of(ctx.other.id, ctx.other_volunteer.id)
    first = award(ctx.community.id, here[0], here[2], 10, "wish:1:award")
    second = award(ctx.other.id, there[0], there[2], 20, "wish:1:award")
    assert first.created and second.created
    assert first.transfer.id != second.transfer.id
    assert account(here[2]).balance == 10
    assert account(there[2]).balance == 20
    assert_verified(app)


def test_overdraw_is_refused_and_leaves_the_callers_other_work(ctx, app):
    cid = ctx.community.id
    issuance, store, volunteer = accounts_of(cid, ctx.volunteer.id)
    award(cid, issuance, volunteer, 10, "wish:1:award")
    before = ledger_rows(app)
    # The caller did something else in the same transaction before the refused transfer.
    db.session.add(AuditEvent(community_id=cid, actor_id=ctx.organiser.id, action="test.before",
                              details={}))
    with pytest.raises(Conflict) as refused:
        service.transfer(cid, volunteer, store, 11, TransferKind.REDEMPTION, "redemption:1")
    assert refused.value.slug == "insufficient_points"
    assert refused.value.status_code == 409
    db.session.commit()
    after = ledger_rows(app)
    assert after["audit_events"] == before["audit_events"] + 1  # the caller's work survived
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"}
    assert account(volunteer).balance == 10
    # The refused key was not consumed: the same cause can post once there is enough.
    award(cid, issuance, volunteer, 1, "wish:2:award")
    posting = service.transfer(cid, volunteer, store, 11, TransferKind.REDEMPTION, "redemption:1")
    db.session.commit()
    assert posting.created and account(volunteer).balance == 0
    assert_verified(app)


def test_exactly_the_whole_balance_can_be_spent(ctx, app):
    cid = ctx.community.id
    issuance, store, volunteer = accounts_of(cid, ctx.volunteer.id)
    award(cid, issuance, volunteer, 25, "wish:1:award")
    service.transfer(cid, volunteer, store, 25, TransferKind.REDEMPTION, "redemption:1")
    db.session.commit()
    assert account(volunteer).balance == 0
    with pytest.raises(Conflict):
        service.transfer(cid, volunteer, store, 1, TransferKind.REDEMPTION, "redemption:2")
    db.session.rollback()
    assert account(volunteer).balance == 0
    assert_verified(app)


def test_system_accounts_may_go_negative_user_accounts_may_not(ctx, app):
    cid = ctx.community.id
    issuance, store, volunteer, resident = accounts_of(cid, ctx.volunteer.id, ctx.resident.id)
    award(cid, issuance, volunteer, 40, "wish:1:award")
    assert account(issuance).balance == -40  # minus all issued
    with pytest.raises(Conflict):
        service.transfer(cid, resident, volunteer, 1, TransferKind.DEBIT, "debit:1")
    db.session.rollback()
    # The store can pay back more than it holds (a refund of an old redemption, say).
    service.transfer(cid, store, resident, 5, TransferKind.REFUND, "redemption:99:refund")
    db.session.commit()
    assert account(store).balance == -5
    assert account(resident).balance == 5
    assert_verified(app)


def test_transfer_belongs_to_the_callers_transaction(ctx, app):
    cid = ctx.community.id
    issuance, _store, volunteer = accounts_of(cid, ctx.volunteer.id)
    before = ledger_rows(app)
    service.transfer(cid, issuance, volunteer, 30, TransferKind.EARN_WISH, "wish:1:award")
    db.session.rollback()  # the caller's transaction failed for its own reasons
    assert ledger_rows(app) == before
    assert account(volunteer).balance == 0
    # ... so the cause posts when it is retried.
    assert award(cid, issuance, volunteer, 30, "wish:1:award").created


@pytest.mark.parametrize("amount", [0, -5, 1.5, 2.0, "5", True, None])
def test_transfer_refuses_amounts_that_are_not_positive_integers(ctx, app, amount):
    cid = ctx.community.id
    issuance, _store, volunteer = accounts_of(cid, ctx.volunteer.id)
    before = ledger_rows(app)
    with pytest.raises((ValueError, TypeError)):
        service.transfer(cid, issuance, volunteer, amount, TransferKind.EARN_WISH, "wish:1:award")
    db.session.rollback()
    assert ledger_rows(app) == before


def test_transfer_refuses_wrong_accounts_and_kinds(ctx, app):
    here = accounts_of(ctx.community.id, ctx.volunteer.id)
    there = accounts_of(ctx.other.id, ctx.other_volunteer.id)
    before = ledger_rows(app)
    cid = ctx.community.id
    with pytest.raises(ValueError):  # the same account twice
        service.transfer(cid, here[2], here[2], 1, TransferKind.DEBIT, "x:1")
    db.session.rollback()
    with pytest.raises(ValueError):  # an account of another community
        service.transfer(cid, here[0], there[2], 1, TransferKind.EARN_WISH, "x:2")
    db.session.rollback()
    with pytest.raises(ValueError):  # the community does not own either account
        service.transfer(ctx.other.id, here[0], here[2], 1, TransferKind.EARN_WISH, "x:3")
    db.session.rollback()
    with pytest.raises(ValueError):  # no such account
        service.transfer(cid, here[0], 999_999, 1, TransferKind.EARN_WISH, "x:4")
    db.session.rollback()
    with pytest.raises(ValueError):  # no such kind
        service.transfer(cid, here[0], here[2], 1, "gift", "x:5")
    db.session.rollback()
    assert ledger_rows(app) == before


# --- adjustments --------------------------------------------------------------------------

def test_adjust_moves_points_both_ways_and_is_audited(ctx, app):
    cid = ctx.community.id
    up = service.adjust(cid, ctx.volunteer.id, 15, "补录上周活动", ctx.organiser.id)
    down = service.adjust(cid, ctx.volunteer.id, -4, "重复录入", ctx.organiser.id)
    db.session.commit()
    assert up.created and down.created
    assert (up.transfer.kind, up.transfer.amount, up.transfer.memo) == ("adjustment", 15, "补录上周活动")
    assert down.transfer.amount == 4
    mine = service.find_user_account(cid, ctx.volunteer.id)
    assert up.transfer.destination_id == mine.id and down.transfer.source_id == mine.id
    assert mine.balance == 11
    events = db.session.execute(
        sa.select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.subject_user_id,
                  AuditEvent.details).where(AuditEvent.community_id == cid)
        .order_by(AuditEvent.id)).all()
    assert [(a, actor, subject) for a, actor, subject, _ in events] == [
        ("points.adjusted", ctx.organiser.id, ctx.volunteer.id)] * 2
    assert [(d["amount"], d["reason"], d["transfer_id"]) for *_, d in events] == [
        (15, "补录上周活动", up.transfer.id), (-4, "重复录入", down.transfer.id)]
    assert_verified(app)


def test_adjust_with_a_client_key_posts_and_audits_once(ctx, app):
    cid = ctx.community.id
    first = service.adjust(cid, ctx.volunteer.id, 5, "奖励", ctx.organiser.id, client_key="k-1")
    db.session.commit()
    before = ledger_rows(app)
    again = service.adjust(cid, ctx.volunteer.id, 5, "奖励", ctx.organiser.id, client_key="k-1")
    db.session.commit()
    assert not again.created and again.transfer.id == first.transfer.id
    assert ledger_rows(app) == before
    with pytest.raises(Conflict) as refused:
        service.adjust(cid, ctx.volunteer.id, 6, "奖励", ctx.organiser.id, client_key="k-1")
    assert refused.value.slug == "idempotency_conflict"
    db.session.rollback()
    with pytest.raises(Conflict) as refused:
        service.adjust(cid, ctx.resident.id, 5, "奖励", ctx.organiser.id, client_key="k-1")
    assert refused.value.slug == "idempotency_conflict"
    db.session.rollback()
    assert ledger_rows(app) == before


def test_adjust_refuses_non_members_and_overdraw(ctx, app):
    cid = ctx.community.id
    service.adjust(cid, ctx.volunteer.id, 3, "奖励", ctx.organiser.id)
    db.session.commit()
    before = ledger_rows(app)
    for stranger in (ctx.outsider.id, ctx.other_volunteer.id, 999_999):
        with pytest.raises(ValidationFailed):
            service.adjust(cid, stranger, 5, "奖励", ctx.organiser.id)
        db.session.rollback()
    with pytest.raises(Conflict) as refused:
        service.adjust(cid, ctx.volunteer.id, -4, "扣回", ctx.organiser.id)
    assert refused.value.slug == "insufficient_points"
    db.session.commit()
    after = ledger_rows(app)
    assert (after["transfers"], after["entries"], after["audit_events"]) == (
        before["transfers"], before["entries"], before["audit_events"])
    assert service.find_user_account(cid, ctx.volunteer.id).balance == 3


# --- the daily cap ------------------------------------------------------------------------

def set_cap(community_id: int, cap: int | None) -> None:
    service.setup_community(community_id)
    db.session.get(PointsPolicy, community_id).daily_earn_cap = cap
    db.session.commit()


def test_daily_cap_cuts_earning_kinds_only(ctx, app, monkeypatch):
    cid = ctx.community.id
    set_clock(monkeypatch, datetime(2025, 3, 12, 4, 0, tzinfo=UTC))  # noon in Shanghai
    set_cap(cid, 50)
    issuance, store, volunteer, resident = accounts_of(cid, ctx.volunteer.id, ctx.resident.id)
    first = award(cid, issuance, volunteer, 30, "wish:1:award")
    second = award(cid, issuance, volunteer, 30, "report:1:award", TransferKind.EARN_REPORT)
    third = award(cid, issuance, volunteer, 10, "activity:1:award", TransferKind.EARN_ACTIVITY)
    assert (first.transfer.amount, first.capped) == (30, 0)
    assert (second.transfer.amount, second.transfer.requested_amount, second.capped) == (20, 30, 10)
    assert (third.transfer.amount, third.capped) == (0, 10)
    assert entries_of(third.transfer.id) == []  # nothing posted, but the cause is recorded
    assert not award(cid, issuance, volunteer, 10, "activity:1:award",
                     TransferKind.EARN_ACTIVITY).created
    # Adjustments, redemptions and refunds are not earning: no cap.
    up = service.adjust(cid, ctx.volunteer.id, 500, "年度表彰", ctx.organiser.id)
    service.transfer(cid, volunteer, store, 100, TransferKind.REDEMPTION, "redemption:1")
    service.transfer(cid, store, volunteer, 100, TransferKind.REFUND, "redemption:1:refund")
    db.session.commit()
    assert (up.transfer.amount, up.capped) == (500, 0)
    # The cap is per volunteer: someone else still earns in full.
    assert award(cid, issuance, resident, 50, "wish:2:award").transfer.amount == 50
    mine = account(volunteer)
    assert (mine.balance, mine.earned_total) == (50 + 500, 50 + 500)
    assert_verified(app)


def test_daily_cap_resets_at_midnight_in_shanghai(ctx, app, monkeypatch):
    cid = ctx.community.id
    set_cap(cid, 40)
    issuance, _store, volunteer = accounts_of(cid, ctx.volunteer.id)
    # 2025-03-12 23:59:59 in Shanghai is 15:59:59 UTC; one second later it is the 13th there,
    # though still the 12th in UTC.
    set_clock(monkeypatch, datetime(2025, 3, 12, 15, 59, 59, tzinfo=UTC))
    assert award(cid, issuance, volunteer, 40, "wish:1:award").transfer.amount == 40
    assert award(cid, issuance, volunteer, 5, "wish:2:award").transfer.amount == 0
    set_clock(monkeypatch, datetime(2025, 3, 12, 16, 0, 0, tzinfo=UTC))
    assert award(cid, issuance, volunteer, 40, "wish:3:award").transfer.amount == 40
    set_clock(monkeypatch, datetime(2025, 3, 13, 15, 59, 0, tzinfo=UTC))
    assert award(cid, issuance, volunteer, 5, "wish:4:award").transfer.amount == 0
    set_clock(monkeypatch, datetime(2025, 3, 13, 16, 0, 0, tzinfo=UTC) + timedelta(hours=1))
    assert award(cid, issuance, volunteer, 45, "wish:5:award").transfer.amount == 40
    assert account(volunteer).balance == 120
    assert_verified(app)


def test_no_daily_cap_when_it_is_null(ctx, app):
    cid = ctx.community.id
    set_cap(cid, None)
    issuance, _store, volunteer = accounts_of(cid, ctx.volunteer.id)
    for n in range(3):
        assert award(cid, issuance, volunteer, 900, f"wish:{n}:award").capped == 0
    assert account(volunteer).balance == 2700


def test_daily_cap_set_over_http_applies_to_awards(ctx, app, client, factory):
    cid = ctx.community.id
    headers = factory.headers(ctx.organiser)
    body = client.get(f"{API}/communities/{cid}/points-rules", headers=headers).get_json()
    body["daily_earn_cap"] = 25
    response = client.put(f"{API}/communities/{cid}/points-rules", json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    db.session.commit()
    issuance, _store, volunteer = accounts_of(cid, ctx.volunteer.id)
    posting = award(cid, issuance, volunteer, 30, "wish:1:award")
    assert posting.transfer.amount == 25 and posting.transfer.amount < posting.transfer.requested_amount
    assert posting.capped == 5


# --- rules --------------------------------------------------------------------------------

def test_wish_award_is_rule_points_times_factor_rounded_down(ctx, app, client, factory):
    cid = ctx.community.id
    service.setup_community(cid)
    db.session.commit()
    wish_points = {r["level"]: r["points"] for r in service.rules_for(cid)
                   if r["category"] == "wish"}
    factors = {n: service.policy_for(cid)[f"factor_{n}"] for n in range(1, 6)}
    db.session.commit()
    assert (wish_points[3], factors[4]) == (30, 80)  # the example: 80 % of 30
    assert service.wish_award(cid, 3, 4) == 24
    for level in range(1, 6):
        for rating in range(1, 6):
            assert service.wish_award(cid, level, rating) == wish_points[level] * factors[rating] // 100
    # Odd numbers round down, and a rule change applies at once.
    headers = factory.headers(ctx.organiser)
    body = client.get(f"{API}/communities/{cid}/points-rules", headers=headers).get_json()
    for rule in body["rules"]:
        if (rule["category"], rule["level"]) == ("wish", 1):
            rule["points"] = 7
    body["satisfaction_factors"]["4"] = 33
    assert client.put(f"{API}/communities/{cid}/points-rules", json=body,
                      headers=headers).status_code == 200
    db.session.commit()
    assert service.wish_award(cid, 1, 4) == 2  # 7 × 33 % = 2.31
    assert service.wish_award(cid, 1, 5) == 7 * body["satisfaction_factors"]["5"] // 100
    assert service.points_for(cid, "wish", 1) == 7


def test_points_summary_counts_earned_redeemed_and_pending(ctx, app, monkeypatch):
    cid = ctx.community.id
    issuance, store, volunteer = accounts_of(cid, ctx.volunteer.id)
    nothing = {"wish": 0, "report": 0, "activity": 0, "adjustment": 0}
    assert service.points_summary(cid, ctx.resident.id) == {
        "community_id": cid, "balance": 0, "earned_total": 0, "redeemed_total": 0, "pending": 0,
        "by_source": nothing, "service_hours": 0, "expiring": None}
    award(cid, issuance, volunteer, 60, "wish:1:award")
    service.transfer(cid, volunteer, store, 25, TransferKind.REDEMPTION, "redemption:1")
    service.transfer(cid, volunteer, store, 5, TransferKind.REDEMPTION, "redemption:2")
    service.transfer(cid, store, volunteer, 5, TransferKind.REFUND, "redemption:2:refund")
    service.adjust(cid, ctx.volunteer.id, -10, "扣回", ctx.organiser.id)
    db.session.commit()
    # Causes that hold points back (wishes awaiting confirmation) register a source.
    monkeypatch.setattr(service, "PENDING_SOURCES",
                        [lambda c, u: 24 if (c, u) == (cid, ctx.volunteer.id) else 0])
    summary = service.points_summary(cid, ctx.volunteer.id)
    assert summary == {"community_id": cid, "balance": 25, "earned_total": 50,
                       "redeemed_total": 25, "pending": 24,
                       "by_source": {**nothing, "wish": 60, "adjustment": -10},
                       "service_hours": 0, "expiring": None}
    assert_verified(app)
