"""The ledger service: the only code that moves points.

Every posting is `transfer()`: N points from one account to another of the same community, for
one cause named by its key (`wish:123:award`, `redemption:45:refund`, `adjustment:…`). It writes
two entries that sum to zero and moves the stored balances in the caller's transaction, inside a
savepoint so a refusal leaves the caller's other work untouched.

Why it cannot overdraw or double-post, on SQLite and PostgreSQL alike:
- the accounts are locked in id order first (`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the
  request's BEGIN IMMEDIATE already holds the database's single write lock), so the key check and
  the daily-cap sum below see every committed posting;
- the debit is a conditional `UPDATE … WHERE balance >= :n`, backed by a CHECK constraint;
- the key is unique per community, so a racing duplicate fails on the index and is answered with
  the original transfer.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from app import audit
from app.communities import access
from app.communities.models import Membership
from app.communities.service import SERVICE_HOURS, service_hours  # noqa: F401  (re-exported)
from app.db import (
    dialect_insert,
    dialect_name,
    forget_memo,
    insert_unless_present,
    least,
    transaction_memo,
    utcnow,
)
from app.errors import Conflict, NotFound, ValidationFailed, register_messages
from app.extensions import db
from app.i18n import N_
from app.ledger import totals
from app.ledger.models import (
    EARNING_KINDS,
    SOURCE_COLUMN,
    SOURCES,
    Account,
    AccountKind,
    Entry,
    LotUse,
    PointsLot,
    PointsPolicy,
    PointsRule,
    Transfer,
    TransferKind,
)
from app.localtime import add_months, local_date, midnight_utc
from app.notifications import outbox

CATEGORIES = ("wish", "report", "activity")
LEVELS = (1, 2, 3, 4, 5)
DEFAULT_RULES = {
    "wish": (10, 20, 30, 50, 80),
    "report": (5, 10, 15, 20, 30),
    "activity": (10, 20, 30, 40, 50),
}
DEFAULT_POLICY = {"factor_1": 0, "factor_2": 0, "factor_3": 60, "factor_4": 80,
                  "factor_5": 100, "daily_earn_cap": 200, "expiry_months": None}


register_messages({
    "insufficient_points": N_("积分不足。"),
    "idempotency_conflict": N_("该幂等键已用于另一笔不同的操作，请换一个新的键。"),
})

MAX_OFFSET = 10_000  # deeper ledger pages must use keyset paging (?after=)

# Causes that hold points back until something happens (e.g. wishes awaiting confirmation)
# register a function (community_id, user_id) -> points here; the ledger imports no cause.
PENDING_SOURCES: list[Callable[[int, int], int]] = []
@dataclass(frozen=True)
class Posting:
    transfer: Transfer
    created: bool  # False when the key had posted before and this is the original, replayed

    @property
    def capped(self) -> int:
        """Points the daily cap kept from being posted."""
        return self.transfer.capped_amount


# --- accounts -----------------------------------------------------------------------------

def ensure_account(community_id: int, kind: AccountKind, user_id: int | None = None) -> int:
    """Return the id of an account, creating it on first need (race-safe)."""
    key = f"user:{user_id}" if kind == AccountKind.USER else kind.value
    found = db.session.scalar(
        sa.select(Account.id).where(Account.community_id == community_id, Account.key == key)
    )
    if found is not None:
        return found
    db.session.execute(insert_unless_present(db.session, Account, {
        "community_id": community_id, "key": key, "kind": kind.value, "user_id": user_id,
        "balance": 0, "earned_total": 0, "redeemed_total": 0, "entry_count": 0,
        **dict.fromkeys(SOURCE_COLUMN.values(), 0),
        "created_at": utcnow()}, ["community_id", "key"]))
    return db.session.scalar(
        sa.select(Account.id).where(Account.community_id == community_id, Account.key == key)
    )


def user_account(community_id: int, user_id: int) -> int:
    return ensure_account(community_id, AccountKind.USER, user_id)


def issuance_account(community_id: int) -> int:
    return ensure_account(community_id, AccountKind.ISSUANCE)


def store_account(community_id: int) -> int:
    return ensure_account(community_id, AccountKind.STORE)


def expiry_account(community_id: int) -> int:
    return ensure_account(community_id, AccountKind.EXPIRY)


def find_user_account(community_id: int, user_id: int) -> Account | None:
    """Read-only lookup by key: one row, whatever the history length."""
    return db.session.scalar(_USER_ACCOUNT, {"community": community_id, "key": f"user:{user_id}"})


# Statements the hot requests run, built once: composing one costs more than running it.
_USER_ACCOUNT = sa.select(Account).where(Account.community_id == sa.bindparam("community"),
                                         Account.key == sa.bindparam("key"))


# --- the transfer -------------------------------------------------------------------------

def transfer(community_id: int, source_id: int | str, destination_id: int | str, amount: int,
             kind: TransferKind | str, key: str, *, memo: str = "",
             actor_id: int | None = None, reverses: str | None = None) -> Posting:
    """Move `amount` points from source to destination for the cause `key`; see module doc.

    `source_id` and `destination_id` are account ids, or keys of the community's accounts
    ("user:5", "store"), which the lock itself looks up. `reverses` names the key of the
    transfer this one undoes (a redemption's refund): the points go back into the lots that
    transfer took them from, with their original dates.

    A refusal (too few points, a key reused for another cause) raises before this call has
    written anything, so no savepoint is needed; only when due expiries post first (a
    community with 积分过期 on) is there work of its own to undo, and a savepoint holds it.
    """
    kind = TransferKind(kind)
    if type(amount) is not int or amount <= 0:
        raise ValueError(f"a transfer moves a positive whole number of points, not {amount!r}")
    if source_id == destination_id:
        raise ValueError("a transfer needs two different accounts")

    months = None if kind == TransferKind.EXPIRY else policy_for(community_id)["expiry_months"]
    expiry_id = expiry_account(community_id) if months is not None else None
    locked = _lock_accounts(community_id, source_id, destination_id,
                            *([expiry_id] if expiry_id is not None else []))
    source_row, destination_row = _row(locked, source_id), _row(locked, destination_id)
    source_id, destination_id = source_row.id, destination_row.id
    debits_user = source_row.kind == AccountKind.USER.value
    expiring = expiry_id is not None and debits_user
    with db.session.begin_nested() if expiring else nullcontext():
        balance = source_row.balance
        if expiring:
            # An expired point is never spent: the account's due expiries post first, in this
            # transaction, under the same lock as the debit.
            balance -= _post_due_expiries(community_id, source_id, expiry_id, months)
        posted = amount
        if kind in EARNING_KINDS:
            posted = min(amount, _room_under_daily_cap(community_id, destination_id))
        if debits_user and balance < posted:
            existing = _find_transfer(community_id, key)  # a replay is answered, not refused
            if existing is None:
                raise Conflict("insufficient_points")
            return Posting(_replay(existing, source_id, destination_id, amount, kind), False)
        record = _persisted(Transfer, db.session.execute(
            _insert_transfer(dialect_name(db.session)), {
                "community_id": community_id, "key": key, "kind": kind.value,
                "source_id": source_id, "destination_id": destination_id,
                "requested_amount": amount, "amount": posted, "memo": memo[:200],
                "actor_id": actor_id, "created_at": utcnow()}).first())
        if record is None:
            # The key has posted before (or a concurrent posting of it committed first).
            existing = _find_transfer(community_id, key)
            return Posting(_replay(existing, source_id, destination_id, amount, kind), False)
        if posted > 0:
            after = _move(source_id, destination_id, posted, kind)
            # One INSERT of both rows (an executemany SQLAlchemy batches, and caches, unlike
            # a literal multi-row VALUES); RETURNING names each entry's account.
            entry_ids = {account: entry for entry, account in db.session.execute(
                sa.insert(Entry).returning(Entry.id, Entry.account_id),
                [{"transfer_id": record.id, "community_id": community_id,
                  "account_id": account_id, "amount": delta,
                  "balance_after": after[account_id], "created_at": record.created_at}
                 for account_id, delta in ((source_id, -posted), (destination_id, posted))])}
            if debits_user:
                _take_from_lots(source_id, posted, record, kind)
            if destination_row.kind == AccountKind.USER.value:
                _put_into_lots(community_id, destination_id, posted, record, reverses)
                db.session.flush()
            if kind in EARNING_KINDS or kind == TransferKind.ADJUSTMENT:
                credited = destination_row.kind == AccountKind.USER.value
                _count_earned(community_id, kind, destination_row if credited else source_row,
                              posted if credited else -posted,
                              entry_ids[destination_id if credited else source_id], record)
    _expire_accounts(source_id, destination_id)
    return Posting(record, True)


@functools.cache
def _insert_transfer(dialect: str):
    """INSERT … ON CONFLICT (community, key) DO NOTHING RETURNING the transfer, built once."""
    columns = ("community_id", "key", "kind", "source_id", "destination_id",
               "requested_amount", "amount", "memo", "actor_id", "created_at")
    table = Transfer.__table__  # the table, not the class: an ORM insert would rebuild it
    return (dialect_insert(dialect)(table).values({c: sa.bindparam(c) for c in columns})
            .on_conflict_do_nothing(index_elements=["community_id", "key"])
            .returning(*table.columns))


def _persisted(model, row: sa.Row | None):
    """The ORM object of a row an INSERT … RETURNING just wrote, in the session without
    loading it again (None for no row)."""
    if row is None:
        return None
    instance = model(**row._mapping)
    make_transient_to_detached(instance)
    db.session.add(instance)
    return instance


def _count_earned(community_id: int, kind: TransferKind, holder: sa.Row, amount: int,
                  entry_id: int, record: Transfer) -> None:
    """Points earned or adjusted (`amount` signed for the holder) count on the leaderboards
    (their totals, kept here) and are news to their holder (the outbox, same transaction);
    redemptions, refunds and expiries are told by the store and the reminders instead."""
    if holder.user_id is None:
        return
    totals.record(community_id, holder.user_id, kind.value, amount, entry_id, record.created_at)
    outbox.points_moved(community_id, kind.value, holder.user_id, amount, record.memo,
                        record.id, record.actor_id)


def _lock_accounts(community_id: int, *accounts: int | str) -> dict[int, sa.Row]:
    """Lock the accounts (ids or keys) in id order, so no two transfers deadlock; return
    their id, key, kind, holder and balance by id. An account named by a key that does not
    exist yet is made first (a user's, on their first debit or credit)."""
    ids = [a for a in accounts if isinstance(a, int)]
    keys = [a for a in accounts if isinstance(a, str)]
    params = {"ids": ids, "community": community_id, "keys": keys}
    rows = {r.id: r for r in db.session.execute(_LOCK, params)}
    missing = set(keys) - {r.key for r in rows.values()}
    if missing:
        for account_key in missing:
            kind, _, holder = account_key.partition(":")
            ensure_account(community_id, AccountKind(kind), int(holder) if holder else None)
        rows = {r.id: r for r in db.session.execute(_LOCK, params)}
    if len(rows) != len(set(accounts)) or any(r.community_id != community_id
                                               for r in rows.values()):
        raise ValueError("both accounts must exist and belong to the transfer's community")
    return rows


_LOCK = (sa.select(Account.id, Account.key, Account.community_id, Account.kind, Account.user_id,
                   Account.balance)
         .where(sa.or_(Account.id.in_(sa.bindparam("ids", expanding=True)),
                       sa.and_(Account.community_id == sa.bindparam("community"),
                               Account.key.in_(sa.bindparam("keys", expanding=True)))))
         .order_by(Account.id)
         .with_for_update())


def _row(locked: dict[int, sa.Row], account: int | str) -> sa.Row:
    if isinstance(account, int):
        return locked[account]
    return next(r for r in locked.values() if r.key == account)


def _find_transfer(community_id: int, key: str) -> Transfer | None:
    return db.session.scalar(
        sa.select(Transfer).where(Transfer.community_id == community_id, Transfer.key == key)
    )


def _replay(existing: Transfer, source_id: int, destination_id: int, amount: int,
            kind: TransferKind) -> Transfer:
    same = (existing.source_id, existing.destination_id, existing.requested_amount,
            existing.kind) == (source_id, destination_id, amount, kind.value)
    if not same:
        raise Conflict("idempotency_conflict")
    return existing


def _move(source_id: int, destination_id: int, points: int, kind: TransferKind) -> dict[int, int]:
    """Apply both sides of a transfer to the stored accounts in one statement; return the
    balances after it by account id.

    The debit is conditional: a user account's balance never goes below zero, whatever
    interleaving of requests or worker processes (the CHECK constraint backs it).
    """
    rows = db.session.execute(_move_statement(kind), {
        "source": source_id, "destination": destination_id, "points": points,
        "debit": -points}, execution_options={"synchronize_session": False}).all()
    if len(rows) != 2:
        raise Conflict("insufficient_points")
    return dict(rows)


@functools.cache
def _move_statement(kind: TransferKind) -> sa.Update:
    """Both sides' UPDATE for a kind of transfer (which totals it moves), built once."""
    source, points = sa.bindparam("source", type_=sa.Integer), sa.bindparam("points",
                                                                           type_=sa.BigInteger)
    delta = sa.case((Account.id == source, sa.bindparam("debit", type_=sa.BigInteger)),
                    else_=points)
    values: dict = {"balance": Account.balance + delta, "entry_count": Account.entry_count + 1}
    if kind in EARNING_KINDS or kind == TransferKind.ADJUSTMENT:
        values["earned_total"] = Account.earned_total + delta
        column = SOURCE_COLUMN[kind.value]
        values[column] = getattr(Account, column) + delta
    elif kind in (TransferKind.REDEMPTION, TransferKind.REFUND):
        values["redeemed_total"] = Account.redeemed_total - delta
    return (sa.update(Account)
            .where(Account.id.in_([source, sa.bindparam("destination", type_=sa.Integer)]),
                   sa.or_(Account.id != source, Account.kind != AccountKind.USER.value,
                          Account.balance >= points))
            .values(**values).returning(Account.id, Account.balance))


def _expire_accounts(*account_ids: int) -> None:
    for account_id in account_ids:
        loaded = db.session.identity_map.get(identity_key(Account, account_id))
        if loaded is not None:
            db.session.expire(loaded)


# --- lots: first in, first out, and expiry ------------------------------------------------

def _take_from_lots(account_id: int, points: int, record: Transfer, kind: TransferKind) -> None:
    """Take `points` from the account's oldest lots (first in, first out), set-based: each
    open lot's take is what the debit still needs after the older lots, up to what it holds.
    On PostgreSQL the uses and the lots' update are one statement; SQLite, which has no
    writing CTE, runs them as two."""
    params = {"account": account_id, "points": points, "transfer": record.id}
    options = {"synchronize_session": False}
    statements = _lot_statements(dialect_name(db.session), kind == TransferKind.EXPIRY)
    if len(statements) == 1:
        took = sum(db.session.scalars(statements[0], params, execution_options=options).all())
    else:
        uses, update = statements
        took = sum(amount for _lot, amount in db.session.execute(uses, params))
        db.session.execute(update, params, execution_options=options)
    if took != points:
        # The account's balance covered the debit, so its lots must have: they sum to it.
        raise RuntimeError(f"account {account_id}: its lots hold {took} points, "
                           f"not the {points} its balance allowed")


@functools.cache
def _lot_statements(dialect: str, expiring: bool) -> tuple:
    """The first-in-first-out take as statements with bound parameters, built once."""
    points = sa.bindparam("points", type_=sa.BigInteger)
    transfer = sa.bindparam("transfer", type_=sa.Integer)
    running = sa.func.sum(PointsLot.remaining).over(order_by=(PointsLot.earned_on, PointsLot.id))
    open_lots = (sa.select(PointsLot.id, PointsLot.remaining, running.label("through"))
                 .where(PointsLot.account_id == sa.bindparam("account", type_=sa.Integer),
                        PointsLot.remaining > 0)
                 .subquery())
    before = open_lots.c.through - open_lots.c.remaining  # what the older lots hold
    # Core tables, not the classes: the ORM would treat the parameters as rows to insert.
    use_table, lot_table = LotUse.__table__, PointsLot.__table__
    uses = (sa.insert(use_table)
            .from_select(["lot_id", "transfer_id", "amount"],
                         sa.select(open_lots.c.id, transfer,
                                   least(dialect, open_lots.c.remaining, points - before))
                         .where(before < points))
            .returning(use_table.c.lot_id, use_table.c.amount))

    def update(taken):
        return (sa.update(lot_table).where(lot_table.c.id == taken.c.lot_id)
                .values(remaining=lot_table.c.remaining - taken.c.amount,
                        expired=lot_table.c.expired + (taken.c.amount if expiring else 0)))
    if dialect == "postgresql":
        taken = uses.cte("taken")
        return (update(taken).returning(taken.c.amount),)
    return uses, update(sa.select(use_table.c.lot_id, use_table.c.amount)
                        .where(use_table.c.transfer_id == transfer).subquery())


def _put_into_lots(community_id: int, account_id: int, points: int, record: Transfer,
                   reverses: str | None) -> None:
    """Open a lot for the credit, or give a reversed transfer's points back to its lots."""
    left = points
    if reverses is not None:
        original = _find_transfer(community_id, reverses)
        uses = db.session.execute(
            sa.select(LotUse.lot_id, sa.func.sum(LotUse.amount).label("taken"))
            .where(LotUse.transfer_id == original.id).group_by(LotUse.lot_id)
            .order_by(LotUse.lot_id)).all() if original is not None else []
        for lot_id, taken in uses:
            back = min(left, int(taken))
            if back <= 0:
                continue
            db.session.execute(
                sa.update(PointsLot).where(PointsLot.id == lot_id)
                .values(remaining=PointsLot.remaining + back),
                execution_options={"synchronize_session": False})
            db.session.add(LotUse(lot_id=lot_id, transfer_id=record.id, amount=-back))
            left -= back
    if left:
        db.session.add(PointsLot(community_id=community_id, account_id=account_id,
                                 transfer_id=record.id, earned_at=record.created_at,
                                 earned_on=local_date(record.created_at), amount=left,
                                 remaining=left, expired=0))


def expiry_date(earned_on: date, months: int) -> date:
    """The day points earned on `earned_on` expire, at 00:00 Asia/Shanghai."""
    return add_months(earned_on, months)


def last_expired_earning_day(today: date, months: int) -> date:
    """The latest earning day whose points have expired by `today` (00:00 Asia/Shanghai).

    `expiry_date` never decreases as the earning day grows, so the expired lots are exactly
    those earned on or before this day: one index range, whatever the month lengths.
    """
    day = add_months(today, -months)
    while expiry_date(day + timedelta(days=1), months) <= today:
        day += timedelta(days=1)
    while expiry_date(day, months) > today:
        day -= timedelta(days=1)
    return day


def _post_due_expiries(community_id: int, account_id: int, expiry_id: int, months: int,
                       today: date | None = None) -> int:
    """Post one expiry transfer per due lot of the account (its lock held); return points.

    The due lots are the account's oldest, so each expiry's first-in-first-out take is
    exactly that lot. The key names the lot and how much of it had expired before, so a
    lot a refund refilled after it expired expires again, and a rerun posts nothing twice.
    """
    cutoff = last_expired_earning_day(today or local_date(utcnow()), months)
    due = db.session.execute(
        sa.select(PointsLot.id, PointsLot.remaining, PointsLot.expired, PointsLot.earned_on)
        .where(PointsLot.account_id == account_id, PointsLot.remaining > 0,
               PointsLot.earned_on <= cutoff)
        .order_by(PointsLot.earned_on, PointsLot.id)).all()
    total = 0
    for lot_id, remaining, expired, earned_on in due:
        transfer(community_id, account_id, expiry_id, int(remaining), TransferKind.EXPIRY,
                 f"expiry:lot:{lot_id}:{expired}",
                 memo=f"{earned_on.isoformat()} 获得的积分已过期（{months} 个月）")
        total += int(remaining)
    return total


def expire_due(community_id: int, user_id: int, today: date | None = None) -> int:
    """Post the user's due expiries in this community (the daily job); return the points."""
    months = policy_for(community_id)["expiry_months"]
    account = find_user_account(community_id, user_id)
    if months is None or account is None:
        return 0
    expiry_id = expiry_account(community_id)
    with db.session.begin_nested():
        _lock_accounts(community_id, account.id, expiry_id)
        total = _post_due_expiries(community_id, account.id, expiry_id, months, today)
    _expire_accounts(account.id, expiry_id)
    return total


def accounts_with_due_expiries(community_id: int, today: date | None = None) -> list[int]:
    """User ids of the community holding points that have expired but not been posted yet."""
    months = policy_for(community_id)["expiry_months"]
    if months is None:
        return []
    cutoff = last_expired_earning_day(today or local_date(utcnow()), months)
    return list(db.session.scalars(
        sa.select(Account.user_id).join(PointsLot, PointsLot.account_id == Account.id)
        .where(PointsLot.community_id == community_id, PointsLot.remaining > 0,
               PointsLot.earned_on <= cutoff)
        .group_by(Account.user_id).order_by(Account.user_id)))


_OLDEST_DAYS = (sa.select(PointsLot.earned_on, sa.func.sum(PointsLot.remaining))
                .where(PointsLot.account_id == sa.bindparam("account"), PointsLot.remaining > 0)
                .group_by(PointsLot.earned_on).order_by(PointsLot.earned_on).limit(4))


def expiring(community_id: int, account_id: int, today: date | None = None) -> dict | None:
    """The earliest expiry ahead of the account's points and how many expire that day.

    Points due but not yet posted (before the day's job ran) show as expiring today.
    """
    months = policy_for(community_id)["expiry_months"]
    if months is None:
        return None
    # Several earning days can share one expiry day (29–31 January all expire on 28 February
    # after a month), never more than four: the four oldest days are enough.
    days = db.session.execute(_OLDEST_DAYS, {"account": account_id}).all()
    if not days:
        return None
    on = expiry_date(days[0][0], months)
    today = today or local_date(utcnow())
    points = sum(int(n) for earned_on, n in days if expiry_date(earned_on, months) == on)
    return {"points": points, "on": max(on, today)}


# --- earning: the rules table and the daily cap -------------------------------------------

def _room_under_daily_cap(community_id: int, destination_id: int) -> int:
    cap = policy_for(community_id)["daily_earn_cap"]
    if cap is None:
        return 2**62
    start = midnight_utc(local_date(utcnow()))
    earned_today = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Transfer.amount), 0)).where(
            Transfer.destination_id == destination_id,
            Transfer.kind.in_([k.value for k in EARNING_KINDS]),
            Transfer.created_at >= start,
            Transfer.created_at < start + timedelta(days=1),
        )
    )
    return max(0, cap - int(earned_today))


def setup_community(community_id: int) -> None:
    """Give a new community its system accounts, default rules table and policy."""
    issuance_account(community_id)
    store_account(community_id)
    if db.session.get(PointsPolicy, community_id) is None:
        db.session.add(PointsPolicy(community_id=community_id, **DEFAULT_POLICY))
    have = set(db.session.execute(
        sa.select(PointsRule.category, PointsRule.level)
        .where(PointsRule.community_id == community_id)).all())
    for category, points in DEFAULT_RULES.items():
        for level, value in zip(LEVELS, points, strict=True):
            if (category, level) not in have:
                db.session.add(PointsRule(community_id=community_id, category=category,
                                          level=level, points=value))
    db.session.flush()
    _forget_rules()


def rules_for(community_id: int) -> list[dict]:
    """The full (category, level) → points table; defaults fill any missing row. Read once
    per transaction (pending points ask it per level)."""
    known = transaction_memo(db.session, "points_rules")
    if community_id not in known:
        known[community_id] = _read_rules(community_id)
    return known[community_id]


def _read_rules(community_id: int) -> list[dict]:
    table = {(c, lv): pts for c, pts_by_level in DEFAULT_RULES.items()
             for lv, pts in zip(LEVELS, pts_by_level, strict=True)}
    for rule in db.session.scalars(
            sa.select(PointsRule).where(PointsRule.community_id == community_id)):
        table[(rule.category, rule.level)] = rule.points
    return [{"category": c, "level": lv, "points": table[(c, lv)]}
            for c in CATEGORIES for lv in LEVELS]


def policy_for(community_id: int) -> dict:
    """The community's factors, daily cap and expiry, read once per transaction (every
    transfer asks)."""
    known = transaction_memo(db.session, "points_policy")
    if community_id not in known:
        policy = db.session.get(PointsPolicy, community_id)
        known[community_id] = (dict(DEFAULT_POLICY) if policy is None else {
            **{f"factor_{n}": v for n, v in policy.factors().items()},
            "daily_earn_cap": policy.daily_earn_cap, "expiry_months": policy.expiry_months})
    return dict(known[community_id])


def _forget_rules() -> None:
    forget_memo(db.session, "points_rules")
    forget_memo(db.session, "points_policy")


def rules_document(community_id: int) -> dict:
    """The rules table, satisfaction factors, daily cap and expiry, as `points-rules` shows them."""
    policy = policy_for(community_id)
    return {"rules": rules_for(community_id),
            "satisfaction_factors": {f"star_{n}": policy[f"factor_{n}"] for n in range(1, 6)},
            "daily_earn_cap": policy["daily_earn_cap"],
            "expiry_months": policy["expiry_months"]}


def points_for(community_id: int, category: str, level: int) -> int:
    return next(r["points"] for r in rules_for(community_id)
                if r["category"] == category and r["level"] == level)


def wish_award(community_id: int, level: int, rating: int) -> int:
    """Rule points for (wish, level) × the satisfaction factor of the rating, rounded down."""
    return wish_awards(community_id, rating)[level]


def wish_awards(community_id: int, rating: int) -> dict[int, int]:
    """wish_award() of every level at once: level → points (one read of rules and policy)."""
    factor = policy_for(community_id)[f"factor_{rating}"]
    return {r["level"]: r["points"] * factor // 100 for r in rules_for(community_id)
            if r["category"] == "wish"}


KEEP = object()  # replace_rules: leave this setting as it is


def replace_rules(community_id: int, rules: list[dict], factors: dict[int, int],
                  daily_earn_cap: int | None, actor_id: int, *,
                  expiry_months: int | object | None = KEEP) -> None:
    setup_community(community_id)
    before = {"rules": rules_for(community_id), **policy_for(community_id)}
    for rule in rules:
        db.session.execute(
            sa.update(PointsRule)
            .where(PointsRule.community_id == community_id,
                   PointsRule.category == rule["category"], PointsRule.level == rule["level"])
            .values(points=rule["points"])
        )
    policy = db.session.get(PointsPolicy, community_id)
    for stars, percent in factors.items():
        setattr(policy, f"factor_{stars}", percent)
    policy.daily_earn_cap = daily_earn_cap
    if expiry_months is not KEEP:
        policy.expiry_months = expiry_months
    policy.updated_at = utcnow()
    db.session.flush()
    db.session.expire_all()
    _forget_rules()
    after = {"rules": rules_for(community_id), **policy_for(community_id)}
    audit.record(community_id, actor_id, "points.rules_updated", before=before, after=after)


# --- organiser adjustments ----------------------------------------------------------------

def adjust(community_id: int, user_id: int, amount: int, reason: str, actor_id: int,
           client_key: str | None = None) -> Posting:
    """Add (amount > 0) or take back (amount < 0) points by an organiser, with a reason."""
    access.require_member(community_id, user_id, "user_id")
    key = f"adjustment:{actor_id}:{client_key}" if client_key else f"adjustment:{uuid.uuid4()}"
    account, issuance = user_account(community_id, user_id), issuance_account(community_id)
    source, destination = (issuance, account) if amount > 0 else (account, issuance)
    posting = transfer(community_id, source, destination, abs(amount), TransferKind.ADJUSTMENT,
                       key, memo=reason, actor_id=actor_id)
    if posting.created:
        audit.record(community_id, actor_id, "points.adjusted", subject_user_id=user_id,
                     amount=amount, reason=reason, transfer_id=posting.transfer.id)
    return posting


def describe_adjustment(posting: Posting, community_id: int, user_id: int) -> dict:
    record = posting.transfer
    account_id = user_account_id_or_none(community_id, user_id)
    balance_after = db.session.scalar(
        sa.select(Entry.balance_after).where(Entry.transfer_id == record.id,
                                             Entry.account_id == account_id))
    signed = record.amount if record.destination_id == account_id else -record.amount
    return {"id": record.id, "community_id": community_id, "user_id": user_id, "amount": signed,
            "reason": record.memo, "key": record.key, "actor_id": record.actor_id,
            "balance_after": balance_after, "created_at": record.created_at,
            "replayed": not posting.created}


def user_account_id_or_none(community_id: int, user_id: int) -> int | None:
    account = find_user_account(community_id, user_id)
    return account.id if account else None


# --- reading ------------------------------------------------------------------------------

def balance_after(community_id: int, user_id: int, key: str) -> int | None:
    """The user's balance right after the transfer with this key (None: no such posting)."""
    account = find_user_account(community_id, user_id)
    if account is None:
        return None
    return db.session.scalar(
        sa.select(Entry.balance_after).join(Transfer, Transfer.id == Entry.transfer_id)
        .where(Transfer.community_id == community_id, Transfer.key == key,
               Entry.account_id == account.id))


def points_summary(community_id: int, user_id: int) -> dict:
    """Balance, totals, pending points, points by source, service hours and what expires next."""
    account = find_user_account(community_id, user_id)
    pending = sum(source(community_id, user_id) for source in PENDING_SOURCES)
    summary = {"community_id": community_id, "balance": 0, "earned_total": 0,
               "redeemed_total": 0, "pending": pending,
               "by_source": dict.fromkeys(SOURCES, 0),
               "service_hours": service_hours(community_id, user_id), "expiring": None}
    if account is None:
        return summary
    summary.update(balance=account.balance, earned_total=account.earned_total,
                   redeemed_total=account.redeemed_total,
                   by_source=points_by_source(account),
                   expiring=expiring(community_id, account.id))
    return summary


def points_by_source(account: Account) -> dict[str, int]:
    """Points earned from each source (adjustments signed), as the account row keeps them."""
    return {source: getattr(account, SOURCE_COLUMN[kind.value])
            for source, kind in SOURCES.items()}


@functools.cache
def _ledger_statement(dialect: str, oldest_first: bool, keyset: bool) -> sa.Select:
    """The ledger page's statement, built once per form (composing costs more than running)."""
    # On PostgreSQL `account_id BETWEEN x AND x` ordered by (account_id, id), not `= x` ordered
    # by id: with `=` its planner may serve ORDER BY id from the primary key and filter on
    # account_id (it does when the account holds a large share of all entries), walking back
    # through every newer entry of other accounts; this form can only be ordered by the
    # (account_id, id) index. SQLite needs `=` to bound that index scan by `id < after` too.
    account = sa.bindparam("account", type_=sa.Integer)
    owner = (Entry.account_id.between(account, account) if dialect == "postgresql"
             else Entry.account_id == account)
    statement = (
        sa.select(Entry.id, Entry.transfer_id, Entry.amount, Entry.balance_after,
                  Entry.created_at, Transfer.kind, Transfer.key.label("reference"),
                  Transfer.memo)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .where(owner)
        .order_by(*((Entry.account_id, Entry.id) if oldest_first
                    else (Entry.account_id.desc(), Entry.id.desc())))
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    if keyset:
        after = sa.bindparam("after", type_=sa.BigInteger)
        return statement.where(Entry.id > after if oldest_first else Entry.id < after)
    return statement.offset(sa.bindparam("offset", type_=sa.Integer))


def ledger_page(community_id: int, user_id: int, *, after: int | None, page: int,
                per_page: int, oldest_first: bool = False) -> dict:
    """A user's entries, newest first (oldest first for a passbook). With `after` (an entry id)
    paging is by key: its cost is one index range scan of `per_page` rows, however long the
    history."""
    account = find_user_account(community_id, user_id)
    if after is None and (page - 1) * per_page > MAX_OFFSET:
        # OFFSET reads and discards every row before the page: refuse what would be slow.
        raise ValidationFailed(
            "page", N_("页码过深（超过 {max_offset} 条），请改用 after=上一页的 next_after 翻页。"),
            max_offset=MAX_OFFSET)
    result = {"items": [], "page": page, "per_page": per_page, "total": 0, "next_after": None}
    if account is None:
        return result
    # On PostgreSQL `account_id BETWEEN x AND x` ordered by (account_id, id), not `= x` ordered
    # by id: with `=` its planner may serve ORDER BY id from the primary key and filter on
    # account_id (it does when the account holds a large share of all entries), walking back
    # through every newer entry of other accounts; this form can only be ordered by the
    # (account_id, id) index. SQLite needs `=` to bound that index scan by `id < after` too.
    statement = _ledger_statement(dialect_name(db.session), oldest_first, after is not None)
    rows = db.session.execute(statement, {
        "account": account.id, "after": after, "limit": per_page + 1,
        "offset": (page - 1) * per_page}).mappings().all()
    items = [dict(row) for row in rows[:per_page]]
    result.update(items=items, total=account.entry_count,
                  next_after=items[-1]["id"] if len(rows) > per_page else None)
    return result


def require_member_account_owner(community_id: int, user_id: int) -> None:
    if (Membership.find(community_id, user_id) is None
            and find_user_account(community_id, user_id) is None):
        raise NotFound()
