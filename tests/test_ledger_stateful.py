"""A hypothesis state machine over the ledger service (issue 3).

Random sequences of awards (capped daily), adjustments, redemptions and refunds — with repeated
and conflicting keys — across three volunteers; after every step the database must agree with a
plain Python model and `verify()` must find nothing wrong. One app and database serve the whole
run; each example gets a community of its own.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from app.communities.models import Community, Membership
from app.errors import Conflict
from app.extensions import db
from app.ledger import service
from app.ledger.models import Account, Entry, PointsPolicy, Transfer, TransferKind
from app.ledger.verify import verify

DAILY_CAP = 120
USERS = 3
EARNING = (TransferKind.EARN_WISH, TransferKind.EARN_REPORT)


def test_ledger_state_machine(app, factory, monkeypatch):
    organiser = factory.user("书记")
    people = [factory.user(f"志愿者{n}") for n in range(USERS)]
    clock = {"now": datetime(2025, 6, 11, 4, 0, tzinfo=UTC)}  # noon in Shanghai
    monkeypatch.setattr("app.ledger.service.utcnow", lambda: clock["now"])
    numbers = itertools.count(1)

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.context = app.app_context()
            self.context.push()
            n = next(numbers)
            community = Community(name=f"状态机{n}", code=f"machine-{n}", street="", district="")
            db.session.add(community)
            db.session.flush()
            self.cid, self.code = community.id, community.code
            for user, role in [(organiser, "organiser")] + [(p, "volunteer") for p in people]:
                db.session.add(Membership(community_id=self.cid, user_id=user.id, role=role))
            service.setup_community(self.cid)
            db.session.get(PointsPolicy, self.cid).daily_earn_cap = DAILY_CAP
            self.issuance = service.issuance_account(self.cid)
            self.store = service.store_account(self.cid)
            self.accounts = [service.user_account(self.cid, p.id) for p in people]
            db.session.commit()
            # The model.
            self.balance = {a: 0 for a in (self.issuance, self.store, *self.accounts)}
            self.earned = [0] * USERS
            self.redeemed = [0] * USERS
            self.earned_today = [0] * USERS
            self.transfers = 0
            self.entries = 0
            self.awards: list[tuple[str, int, int, TransferKind, int]] = []
            self.adjustments: list[tuple[str, int, int, int]] = []
            self.redemptions: list[tuple[int, int, int]] = []
            self.refunded: dict[int, int] = {}
            self.serial = itertools.count(1)

        def teardown(self):
            db.session.rollback()
            self.context.pop()

        # -- helpers --

        def _move(self, source: int, destination: int, amount: int) -> None:
            self.balance[source] -= amount
            self.balance[destination] += amount
            self.transfers += 1
            self.entries += 2

        def _refused(self, slug: str, fn) -> None:
            """The call must raise Conflict(slug); whatever it left in the session is then
            committed, to prove it left nothing."""
            try:
                fn()
            except Conflict as error:
                assert error.slug == slug, error.slug
            else:
                raise AssertionError(f"expected {slug}")
            db.session.commit()

        # -- awards: issuance → volunteer, an earning kind, under the daily cap --

        @rule(who=st.integers(0, USERS - 1), amount=st.integers(1, 80),
              kind=st.sampled_from(EARNING))
        def award(self, who, amount, kind):
            key = f"{kind.value.split('_')[1]}:{next(self.serial)}:award"
            posting = service.transfer(self.cid, self.issuance, self.accounts[who], amount, kind,
                                       key)
            db.session.commit()
            posted = min(amount, max(0, DAILY_CAP - self.earned_today[who]))
            assert posting.created
            assert (posting.transfer.amount, posting.capped) == (posted, amount - posted)
            self.transfers += 1
            if posted:
                self.balance[self.issuance] -= posted
                self.balance[self.accounts[who]] += posted
                self.entries += 2
            self.earned[who] += posted
            self.earned_today[who] += posted
            self.awards.append((key, who, amount, kind, posting.transfer.id))

        @precondition(lambda self: self.awards)
        @rule(data=st.data())
        def repeat_award(self, data):
            key, who, amount, kind, transfer_id = data.draw(st.sampled_from(self.awards))
            posting = service.transfer(self.cid, self.issuance, self.accounts[who], amount, kind,
                                       key)
            db.session.commit()
            assert not posting.created and posting.transfer.id == transfer_id

        @precondition(lambda self: self.awards)
        @rule(data=st.data(), extra=st.integers(1, 10))
        def conflicting_award(self, data, extra):
            key, who, amount, kind, _ = data.draw(st.sampled_from(self.awards))
            self._refused("idempotency_conflict", lambda: service.transfer(
                self.cid, self.issuance, self.accounts[who], amount + extra, kind, key))

        @rule()
        def next_day(self):
            clock["now"] += timedelta(days=1)
            self.earned_today = [0] * USERS

        # -- adjustments: either way, never capped, never overdrawn --

        @rule(who=st.integers(0, USERS - 1),
              amount=st.integers(-60, 60).filter(lambda n: n != 0))
        def adjust(self, who, amount):
            key = f"adj-{next(self.serial)}"

            def call():
                return service.adjust(self.cid, people[who].id, amount, "调整", organiser.id,
                                      client_key=key)
            account = self.accounts[who]
            if amount < 0 and self.balance[account] < -amount:
                self._refused("insufficient_points", call)
                return
            posting = call()
            db.session.commit()
            assert posting.created and posting.capped == 0
            if amount > 0:
                self._move(self.issuance, account, amount)
            else:
                self._move(account, self.issuance, -amount)
            self.earned[who] += amount
            self.adjustments.append((key, who, amount, posting.transfer.id))

        @precondition(lambda self: self.adjustments)
        @rule(data=st.data())
        def repeat_adjustment(self, data):
            key, who, amount, transfer_id = data.draw(st.sampled_from(self.adjustments))
            posting = service.adjust(self.cid, people[who].id, amount, "调整", organiser.id,
                                     client_key=key)
            db.session.commit()
            assert not posting.created and posting.transfer.id == transfer_id

        # -- redemptions (volunteer → store) and refunds (store → volunteer) --

        @rule(who=st.integers(0, USERS - 1), amount=st.integers(1, 60))
        def redeem(self, who, amount):
            n = next(self.serial)
            account = self.accounts[who]

            def call():
                return service.transfer(self.cid, account, self.store, amount,
                                        TransferKind.REDEMPTION, f"redemption:{n}")
            if self.balance[account] < amount:
                self._refused("insufficient_points", call)
                return
            assert call().created
            db.session.commit()
            self._move(account, self.store, amount)
            self.redeemed[who] += amount
            self.redemptions.append((n, who, amount))

        @precondition(lambda self: self.redemptions)
        @rule(data=st.data())
        def refund(self, data):
            n, who, amount = data.draw(st.sampled_from(self.redemptions))
            posting = service.transfer(self.cid, self.store, self.accounts[who], amount,
                                       TransferKind.REFUND, f"redemption:{n}:refund")
            db.session.commit()
            if n in self.refunded:  # the same refund again: no double refund
                assert not posting.created and posting.transfer.id == self.refunded[n]
                return
            assert posting.created
            self.refunded[n] = posting.transfer.id
            self._move(self.store, self.accounts[who], amount)
            self.redeemed[who] -= amount

        @precondition(lambda self: self.refunded)
        @rule(data=st.data(), extra=st.integers(1, 5))
        def conflicting_refund(self, data, extra):
            n = data.draw(st.sampled_from(sorted(self.refunded)))
            _, who, amount = next(r for r in self.redemptions if r[0] == n)
            self._refused("idempotency_conflict", lambda: service.transfer(
                self.cid, self.store, self.accounts[who], amount + extra, TransferKind.REFUND,
                f"redemption:{n}:refund"))

        # -- after every step --

        @invariant()
        def books_agree(self):
            db.session.rollback()  # a fresh look at what is committed
            [report] = verify(self.code)
            assert report.violations == [], report.violations
            rows = {r.id: r for r in db.session.execute(
                sa.select(Account.id, Account.balance, Account.earned_total,
                          Account.redeemed_total).where(Account.community_id == self.cid))}
            assert {a: rows[a].balance for a in self.balance} == self.balance
            assert len(rows) == len(self.balance)
            for who, account in enumerate(self.accounts):
                assert rows[account].balance >= 0
                assert (rows[account].earned_total, rows[account].redeemed_total) == (
                    self.earned[who], self.redeemed[who])
            assert sum(self.balance.values()) == 0
            count = {model: db.session.scalar(sa.select(sa.func.count()).select_from(model)
                                              .where(model.community_id == self.cid))
                     for model in (Transfer, Entry)}
            assert (count[Transfer], count[Entry]) == (self.transfers, self.entries)
            db.session.rollback()

    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=20, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
