"""`flask ledger verify`: prove the stored balances, entries, lots and leaderboard totals tell
the same story.

Each check is one aggregate query, so verifying a long history stays a handful of scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from app.communities.models import Community
from app.extensions import db
from app.ledger import totals as leaderboard_totals
from app.ledger.models import (
    SOURCE_COLUMN,
    Account,
    AccountKind,
    Entry,
    LotUse,
    PointsLot,
    Transfer,
    TransferKind,
)


@dataclass
class CommunityReport:
    community_id: int
    code: str
    accounts: int = 0
    transfers: int = 0
    entries: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        state = "OK" if self.ok else f"FAILED ({len(self.violations)} violations)"
        return (f"{self.code}: {state} — {self.accounts} accounts, {self.transfers} transfers, "
                f"{self.entries} entries")


def verify(community_code: str | None = None) -> list[CommunityReport]:
    query = sa.select(Community).order_by(Community.id)
    if community_code:
        query = query.where(Community.code == community_code)
    return [_verify_community(c) for c in db.session.scalars(query)]


def _verify_community(community: Community) -> CommunityReport:
    cid = community.id
    report = CommunityReport(cid, community.code)
    problems = report.violations
    report.accounts = db.session.scalar(
        sa.select(sa.func.count()).where(Account.community_id == cid))
    report.transfers = db.session.scalar(
        sa.select(sa.func.count()).where(Transfer.community_id == cid))
    report.entries = db.session.scalar(
        sa.select(sa.func.count()).where(Entry.community_id == cid))

    # 1. Stored balance (and the stored counters) equal the entries.
    sums = (sa.select(Entry.account_id, sa.func.sum(Entry.amount).label("total"),
                      sa.func.count().label("n"))
            .where(Entry.community_id == cid).group_by(Entry.account_id).subquery())
    for account_id, balance, count, total, n in db.session.execute(
        sa.select(Account.id, Account.balance, Account.entry_count,
                  sa.func.coalesce(sums.c.total, 0), sa.func.coalesce(sums.c.n, 0))
        .outerjoin(sums, sums.c.account_id == Account.id)
        .where(Account.community_id == cid)
    ):
        if balance != total:
            problems.append(f"account {account_id}: stored balance {balance} ≠ entries {total}")
        if count != n:
            problems.append(f"account {account_id}: stored entry_count {count} ≠ entries {n}")

    # 2. Earned and redeemed totals equal their entries.
    earned = sa.func.sum(sa.case((Transfer.kind.in_(
        [k.value for k in TransferKind if k.value.startswith("earn_")] + ["adjustment"]),
        Entry.amount), else_=0))
    redeemed = sa.func.sum(sa.case((Transfer.kind.in_(["redemption", "refund"]), -Entry.amount),
                                   else_=0))
    totals = (sa.select(Entry.account_id, earned.label("earned"), redeemed.label("redeemed"))
              .join(Transfer, Transfer.id == Entry.transfer_id)
              .where(Entry.community_id == cid).group_by(Entry.account_id).subquery())
    for account_id, stored_earned, stored_redeemed, e, r in db.session.execute(
        sa.select(Account.id, Account.earned_total, Account.redeemed_total,
                  sa.func.coalesce(totals.c.earned, 0), sa.func.coalesce(totals.c.redeemed, 0))
        .outerjoin(totals, totals.c.account_id == Account.id)
        .where(Account.community_id == cid, Account.kind == AccountKind.USER.value)
    ):
        if stored_earned != e or stored_redeemed != r:
            problems.append(f"account {account_id}: earned/redeemed totals {stored_earned}/"
                            f"{stored_redeemed} ≠ entries {e}/{r}")

    # 2b. The earned totals by source equal their entries.
    by_kind = (sa.select(Entry.account_id, Transfer.kind, sa.func.sum(Entry.amount).label("n"))
               .join(Transfer, Transfer.id == Entry.transfer_id)
               .where(Entry.community_id == cid, Transfer.kind.in_(SOURCE_COLUMN))
               .group_by(Entry.account_id, Transfer.kind))
    found: dict[tuple[int, str], int] = {(a, k): int(n) for a, k, n in db.session.execute(by_kind)}
    for account in db.session.scalars(sa.select(Account).where(Account.community_id == cid)):
        for kind, column in SOURCE_COLUMN.items():
            if getattr(account, column) != found.get((account.id, kind), 0):
                problems.append(f"account {account.id}: stored {column} "
                                f"{getattr(account, column)} ≠ entries "
                                f"{found.get((account.id, kind), 0)}")

    # 3. Every transfer's entries sum to zero, match its amount and its two accounts.
    per_transfer = (sa.select(Entry.transfer_id, sa.func.sum(Entry.amount).label("net"),
                              sa.func.count().label("n"),
                              sa.func.max(Entry.amount).label("credit"),
                              sa.func.min(Entry.amount).label("debit"))
                    .where(Entry.community_id == cid).group_by(Entry.transfer_id).subquery())
    for transfer_id, amount, n, net, credit, debit in db.session.execute(
        sa.select(Transfer.id, Transfer.amount, per_transfer.c.n, per_transfer.c.net,
                  per_transfer.c.credit, per_transfer.c.debit)
        .outerjoin(per_transfer, per_transfer.c.transfer_id == Transfer.id)
        .where(Transfer.community_id == cid)
    ):
        expected_entries = 2 if amount > 0 else None
        if (n or None) != expected_entries or (amount > 0 and (
                net != 0 or credit != amount or debit != -amount)):
            problems.append(f"transfer {transfer_id}: entries {n or 0} summing to {net or 0} "
                            f"for amount {amount}")
    wrong_side = db.session.scalar(
        sa.select(sa.func.count()).select_from(Entry).join(Transfer,
                                                           Transfer.id == Entry.transfer_id)
        .where(Entry.community_id == cid, sa.or_(
            sa.and_(Entry.amount < 0, Entry.account_id != Transfer.source_id),
            sa.and_(Entry.amount > 0, Entry.account_id != Transfer.destination_id))))
    if wrong_side:
        problems.append(f"{wrong_side} entries posted to an account their transfer does not name")

    # 4. The community's entries sum to zero.
    community_net = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Entry.amount), 0)).where(Entry.community_id == cid))
    if community_net != 0:
        problems.append(f"the community's entries sum to {community_net}, not 0")

    # 5. No user balance is negative.
    for account_id, balance in db.session.execute(
        sa.select(Account.id, Account.balance).where(
            Account.community_id == cid, Account.kind == AccountKind.USER.value,
            Account.balance < 0)
    ):
        problems.append(f"account {account_id}: negative balance {balance}")

    # 6. Each entry's balance_after is the running sum of its account's entries.
    running = sa.func.sum(Entry.amount).over(partition_by=Entry.account_id, order_by=Entry.id)
    chain = (sa.select(Entry.id, Entry.account_id, Entry.balance_after,
                       running.label("running")).where(Entry.community_id == cid).subquery())
    for entry_id, account_id, after, expected in db.session.execute(
        sa.select(chain).where(chain.c.balance_after != chain.c.running).limit(20)
    ):
        problems.append(f"entry {entry_id} (account {account_id}): balance_after {after} ≠ "
                        f"running sum {expected}")

    # 7. The remaining points of a user's lots sum to its balance (what expires is what is
    # held), no lot is overdrawn, and each lot's uses account for what it no longer holds.
    lots = (sa.select(PointsLot.account_id, sa.func.sum(PointsLot.remaining).label("held"))
            .where(PointsLot.community_id == cid).group_by(PointsLot.account_id).subquery())
    for account_id, balance, held in db.session.execute(
        sa.select(Account.id, Account.balance, sa.func.coalesce(lots.c.held, 0))
        .outerjoin(lots, lots.c.account_id == Account.id)
        .where(Account.community_id == cid, Account.kind == AccountKind.USER.value,
               Account.balance != sa.func.coalesce(lots.c.held, 0))
    ):
        problems.append(f"account {account_id}: its lots hold {held} points, its balance is "
                        f"{balance}")
    uses = (sa.select(LotUse.lot_id, sa.func.sum(LotUse.amount).label("used"))
            .group_by(LotUse.lot_id).subquery())
    for lot_id, amount, remaining, used in db.session.execute(
        sa.select(PointsLot.id, PointsLot.amount, PointsLot.remaining,
                  sa.func.coalesce(uses.c.used, 0))
        .outerjoin(uses, uses.c.lot_id == PointsLot.id)
        .where(PointsLot.community_id == cid,
               PointsLot.amount - PointsLot.remaining != sa.func.coalesce(uses.c.used, 0))
        .limit(20)
    ):
        problems.append(f"lot {lot_id}: {amount} points, {remaining} left, but its uses took "
                        f"{used}")

    # 8. The leaderboards' totals equal the entries (volunteers) and the current members'
    # totals (teams).
    problems.extend(leaderboard_totals.differences(cid))
    return report
