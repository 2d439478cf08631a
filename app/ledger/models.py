"""The 心愿积分制 ledger: accounts, transfers and their append-only entries, rules, snapshots."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.extensions import db


class AccountKind(enum.StrEnum):
    USER = "user"
    ISSUANCE = "issuance"  # points come from here when earned; its balance is minus all issued
    STORE = "store"  # points go here when redeemed
    EXPIRY = "expiry"  # points go here when they expire (积分过期)


class TransferKind(enum.StrEnum):
    EARN_WISH = "earn_wish"
    EARN_REPORT = "earn_report"
    EARN_ACTIVITY = "earn_activity"
    ADJUSTMENT = "adjustment"
    REDEMPTION = "redemption"
    REFUND = "refund"
    EXPIRY = "expiry"
    DEBIT = "debit"


# Kinds that count as points *earned* (leaderboards, earned_total) and fall under the daily cap.
EARNING_KINDS = frozenset({TransferKind.EARN_WISH, TransferKind.EARN_REPORT,
                           TransferKind.EARN_ACTIVITY})
# Where earned points come from (`by_source`, the leaderboard's `source=`): each source's
# transfer kind, and the Account column keeping its total.
SOURCES = {"wish": TransferKind.EARN_WISH, "report": TransferKind.EARN_REPORT,
           "activity": TransferKind.EARN_ACTIVITY, "adjustment": TransferKind.ADJUSTMENT}
SOURCE_COLUMN = {TransferKind.EARN_WISH.value: "earned_wish",
                 TransferKind.EARN_REPORT.value: "earned_report",
                 TransferKind.EARN_ACTIVITY.value: "earned_activity",
                 TransferKind.ADJUSTMENT.value: "adjusted"}
CATEGORY_KIND = {"wish": TransferKind.EARN_WISH, "report": TransferKind.EARN_REPORT,
                 "activity": TransferKind.EARN_ACTIVITY}


class Account(db.Model):
    """One points account: a user's in one community, or a community's issuance or store.

    `balance`, `earned_total` (and its parts by source), `redeemed_total` and `entry_count` are
    kept by transfer() in the same transaction as the entries, so reading them is one row
    whatever the history length; `flask ledger verify` proves they equal the entries.
    """

    __tablename__ = "points_accounts"
    __table_args__ = (
        sa.UniqueConstraint("community_id", "key", name="uq_points_accounts_community_key"),
        sa.CheckConstraint("kind <> 'user' OR balance >= 0", name="user_balance_not_negative"),
        sa.CheckConstraint("kind IN ('user', 'issuance', 'store', 'expiry')", name="kind"),
        sa.CheckConstraint("(kind = 'user') = (user_id IS NOT NULL)", name="user_iff_user_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="RESTRICT"), index=True
    )
    key: Mapped[str] = mapped_column(sa.String(32))  # "user:<id>", "issuance", "store", "expiry"
    kind: Mapped[str] = mapped_column(sa.String(16))
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    earned_total: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    redeemed_total: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # earned_total by source (adjustments signed), so `by_source` is a read of this row too.
    earned_wish: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    earned_report: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    earned_activity: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    adjusted: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    entry_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Transfer(db.Model):
    """N points from one account to another of the same community, for one cause (its key)."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        sa.UniqueConstraint("community_id", "key", name="uq_ledger_transfers_community_key"),
        sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
        sa.CheckConstraint("requested_amount >= amount", name="amount_within_request"),
        sa.CheckConstraint("source_id <> destination_id", name="distinct_accounts"),
        sa.Index("ix_ledger_transfers_destination_created", "destination_id", "created_at"),
        sa.Index("ix_ledger_transfers_community_id_created_at", "community_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="RESTRICT"), index=True
    )
    key: Mapped[str] = mapped_column(sa.String(120))
    kind: Mapped[str] = mapped_column(sa.String(20))
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("points_accounts.id"))
    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("points_accounts.id"))
    # What the cause asked for; `amount` is what was posted (less when the daily cap cut it).
    requested_amount: Mapped[int] = mapped_column(sa.BigInteger)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    memo: Mapped[str] = mapped_column(sa.String(200), default="")
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def capped_amount(self) -> int:
        return self.requested_amount - self.amount


class Entry(db.Model):
    """One side of a transfer. Append-only: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.Index("ix_ledger_entries_account_id_id", "account_id", "id"),
        sa.Index("ix_ledger_entries_community_id_created_at", "community_id", "created_at"),
        sa.CheckConstraint("amount <> 0", name="amount_not_zero"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    transfer_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_transfers.id"), index=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("communities.id", ondelete="RESTRICT"))
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("points_accounts.id"))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    balance_after: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PointsRule(db.Model):
    """分类分级: how many points a (category, level) earns in one community."""

    __tablename__ = "points_rules"
    __table_args__ = (
        sa.CheckConstraint("category IN ('wish', 'report', 'activity')", name="category"),
        sa.CheckConstraint("level BETWEEN 1 AND 5", name="level"),
        sa.CheckConstraint("points >= 0", name="points_not_negative"),
    )

    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    level: Mapped[int] = mapped_column(primary_key=True)
    points: Mapped[int]


class PointsPolicy(db.Model):
    """Per-community settings of the scheme: satisfaction factors, the daily earning cap and
    points expiry."""

    __tablename__ = "points_policies"

    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    # Percent of the rule's points a wish earns for a rating of 1..5 stars.
    factor_1: Mapped[int] = mapped_column(default=0)
    factor_2: Mapped[int] = mapped_column(default=0)
    factor_3: Mapped[int] = mapped_column(default=60)
    factor_4: Mapped[int] = mapped_column(default=80)
    factor_5: Mapped[int] = mapped_column(default=100)
    daily_earn_cap: Mapped[int | None] = mapped_column(default=200)
    # Points expire this many months after they were earned; None: they never expire.
    expiry_months: Mapped[int | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def factors(self) -> dict[int, int]:
        return {n: getattr(self, f"factor_{n}") for n in range(1, 6)}


class PointsLot(db.Model):
    """Points that came into a user's account together, spent first in, first out.

    Every credit to a user's account opens a lot (a refund instead gives back the lots its
    redemption took, with their original dates); every debit takes from the oldest lots first,
    each take written as a `LotUse`. So the lots' `remaining` of an account sum to its balance
    (`flask ledger verify` proves it) and, when the community turns expiry on, what expires
    is known without a back-fill. Only ledger/service.py changes lots, under the account lock.
    """

    __tablename__ = "points_lots"
    __table_args__ = (
        sa.CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_amount"),
        sa.CheckConstraint("expired >= 0", name="expired_not_negative"),
        # Only lots still holding points: spending and expiry walk these, oldest first, and
        # the spent ones (most of a long history) are not in the index at all.
        sa.Index("ix_points_lots_open", "account_id", "earned_on", "id",
                 postgresql_where=sa.text("remaining > 0"), sqlite_where=sa.text("remaining > 0")),
        sa.Index("ix_points_lots_account_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="RESTRICT"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("points_accounts.id"))
    transfer_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_transfers.id"), index=True)
    earned_at: Mapped[datetime] = mapped_column()
    earned_on: Mapped[date] = mapped_column(sa.Date)  # the Asia/Shanghai day: expiry counts from it
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    remaining: Mapped[int] = mapped_column(sa.BigInteger)
    expired: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # of it, points expired so far


class LotUse(db.Model):
    """How many points of which lot one transfer took (positive) or gave back (negative)."""

    __tablename__ = "points_lot_uses"
    __table_args__ = (sa.CheckConstraint("amount <> 0", name="amount_not_zero"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("points_lots.id"), index=True)
    transfer_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_transfers.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)


class LeaderboardSnapshot(db.Model):
    """A closed week's ranking, frozen: 积分冠军 of week N never changes afterwards."""

    __tablename__ = "leaderboard_snapshots"

    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    week_start: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    by: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    ranking: Mapped[list] = mapped_column(sa.JSON)
    frozen_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeaderboardTotal(db.Model):
    """Points earned in one period by one volunteer or team: the leaderboards' pre-aggregate.

    One row per (community, period, its first day, source, volunteer-or-team, subject), kept by
    transfer() in the same transaction as the entries (app/ledger/totals.py), so a ranking is
    one index range scan of its top rows, however long the history, and always fresh.
    `period` is week (Monday), month (the 1st) or all (ALL_TIME); `source` a key of SOURCES or
    "all". A volunteer's row sums the counted entries of their account; a team's row sums the
    rows of its current members that are above zero (a member's net loss never costs the
    team). `flask ledger verify` recomputes both from the entries and team_members.
    """

    __tablename__ = "leaderboard_totals"
    __table_args__ = (
        # The ranking: equality on the prefix, then exactly the order the board shows.
        sa.Index("ix_leaderboard_totals_rank", "community_id", "period", "period_start",
                 "source", "by", sa.desc("points"), "last_entry_id", "subject_id"),
        sa.CheckConstraint("period IN ('week', 'month', 'all')", name="period"),
        sa.CheckConstraint("by IN ('volunteer', 'team')", name="by"),
    )

    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(5), primary_key=True)
    period_start: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    by: Mapped[str] = mapped_column(sa.String(9), primary_key=True)
    subject_id: Mapped[int] = mapped_column(primary_key=True)  # a user id or a team id
    points: Mapped[int] = mapped_column(sa.BigInteger)
    wishes_fulfilled: Mapped[int] = mapped_column(sa.Integer)
    # The latest counted entry: ties rank the earlier achiever first, and its created_at is
    # the row's last_earned_at.
    last_entry_id: Mapped[int] = mapped_column(sa.BigInteger)
