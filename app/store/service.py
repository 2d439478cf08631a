"""The points store (爱心超市): redeem points for goods, services and honours.

Redeeming runs in one transaction: the reward row is locked first, by the conditional
`UPDATE … WHERE active AND stock >= :n` that takes the stock (so its stock and each user's
monthly limit are checked against every committed redemption), and the points are debited
through the ledger. Any
refusal raises and the request rolls back whole: nothing is half-done.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.communities import access
from app.db import (
    change_community_settings,
    community_settings,
    dialect_insert,
    dialect_name,
    insert_unless_present,
    utcnow,
    write_transaction,
)
from app.errors import Conflict, NotFound, ValidationFailed, register_messages
from app.extensions import db
from app.i18n import N_
from app.ledger import service as ledger
from app.ledger.models import AccountKind, TransferKind
from app.localtime import local_date, midnight_utc
from app.notifications import outbox
from app.store.models import (
    AWAITING_PICKUP,
    CANCELLED,
    EXPIRED,
    FULFILLED,
    MemberCard,
    Redemption,
    Reward,
    StoreSettings,
)

# No 0/O, 1/I/L: codes are read aloud and typed by elderly volunteers and busy staff.
PICKUP_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PICKUP_LENGTH = 10  # 31^10 ≈ 8·10^14 codes, and five wrong tries lock a redemption
MAX_WRONG_CODES = 5
LOCK_MINUTES = 15

register_messages({
    "out_of_stock": N_("库存不足，请选择其他奖品或稍后再来。"),
    "limit_reached": N_("本月兑换数量已达上限（每人每月 {limit} 件）。"),
    "reward_inactive": N_("该奖品已下架。"),
    "wrong_pickup_code": N_("取货码不正确（还可尝试 {left} 次）。"),
    "pickup_locked": N_("取货码错误次数过多，请 {minutes} 分钟后再试。"),
    "redemption_not_pending": N_("该兑换当前状态为“{state_label}”，不能再{action_label}。"),
    "member_code_mismatch": N_("会员码与该志愿者不符，请重新扫描会员卡。"),
})


# --- rewards ------------------------------------------------------------------------------

def create_reward(community_id: int, data: dict) -> Reward:
    reward = Reward(community_id=community_id, created_at=utcnow(), **data)
    _check_stock_rule(reward)
    db.session.add(reward)
    db.session.flush()
    return reward


def update_reward(reward: Reward, changes: dict) -> Reward:
    for key, value in changes.items():
        setattr(reward, key, value)
    _check_stock_rule(reward)
    db.session.flush()
    return reward


def _check_stock_rule(reward: Reward) -> None:
    if reward.kind == "honour" and reward.stock is not None:
        raise ValidationFailed("stock", N_("荣誉类奖品没有库存，请不要填写。"))
    if reward.kind != "honour" and reward.stock is None:
        raise ValidationFailed("stock", N_("实物和服务类奖品需要填写库存。"))


def rewards_query(community_id: int, *, only_active: bool) -> sa.Select:
    query = sa.select(Reward).where(Reward.community_id == community_id)
    if only_active:
        query = query.where(Reward.active.is_(True))
    return query.order_by(Reward.cost, Reward.id)


# --- redeeming ----------------------------------------------------------------------------

def month_start_utc(now: datetime) -> datetime:
    """The start of the Asia/Shanghai calendar month `now` falls in (monthly limits)."""
    return midnight_utc(local_date(now).replace(day=1))


def redeem(reward_id: int, user_id: int, quantity: int, actor_id: int, *,
           at_counter: bool = False, check_access: bool = False) -> Redemption:
    """Redeem `quantity` of a reward for `user_id`; see the module doc for why it is safe.

    One conditional UPDATE locks the reward, checks it is on offer and in stock, takes the
    stock and returns the reward; only when it matches nothing is the reward read, to say
    why. With `check_access` the current user must be a member of the reward's community
    (checked after the UPDATE: a refusal rolls it back with the request).
    """
    now = utcnow()
    taken = (sa.case((Reward.stock.is_(None), None), else_=Reward.stock - quantity))
    reward = db.session.scalar(
        sa.update(Reward)
        .where(Reward.id == reward_id, Reward.active.is_(True),
               sa.or_(Reward.stock.is_(None), Reward.stock >= quantity))
        .values(stock=taken).returning(Reward)
        .execution_options(populate_existing=True, synchronize_session=False))
    if reward is None:
        raise _why_not_redeemable(reward_id, check_access)
    if check_access:
        access.require(reward.community_id)
    if reward.per_user_monthly_limit is not None:
        already = db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Redemption.quantity), 0))
            .where(Redemption.reward_id == reward.id, Redemption.user_id == user_id,
                   Redemption.status.in_([AWAITING_PICKUP, FULFILLED]),
                   Redemption.created_at >= month_start_utc(now)))
        if already + quantity > reward.per_user_monthly_limit:
            raise Conflict("limit_reached", limit=reward.per_user_monthly_limit)
    redemption = _insert_redemption(
        community_id=reward.community_id, reward_id=reward.id, user_id=user_id,
        reward_name=reward.name, reward_kind=reward.kind, unit_cost=reward.cost,
        quantity=quantity, cost_total=reward.cost * quantity, status=AWAITING_PICKUP,
        wrong_code_attempts=0, created_by_id=actor_id, created_at=now, at_counter=at_counter)
    # The user's account by key: the ledger's lock finds it, and one that does not exist
    # yet holds no points.
    ledger.transfer(
        reward.community_id, f"user:{user_id}", AccountKind.STORE.value, redemption.cost_total,
        TransferKind.REDEMPTION, debit_key(redemption.id),
        memo=f"兑换：{reward.name} × {quantity}", actor_id=actor_id,
    )
    if at_counter:
        _mark_fulfilled(redemption, actor_id, now)
    # Handed over at the counter there and then: the holder hears it is done, the staff nothing.
    outbox.redemption_changed(
        redemption, "redemption.fulfilled" if at_counter else "redemption.created", actor_id)
    db.session.flush()
    return redemption


def _why_not_redeemable(reward_id: int, check_access: bool) -> Exception:
    reward = access.get(Reward, reward_id)
    if check_access:
        access.require(reward.community_id)
    if not reward.active:
        return Conflict("reward_inactive")
    return Conflict("out_of_stock")


def _insert_redemption(**values) -> Redemption:
    """Insert the redemption with a fresh pickup code; the unique index, not a lookup, says
    whether a code is taken (a clash, about one in 10^14, draws another)."""
    insert = dialect_insert(dialect_name(db.session))
    while True:
        redemption = db.session.scalar(
            insert(Redemption).values(pickup_code=_new_pickup_code(), **values)
            .on_conflict_do_nothing(index_elements=["pickup_code"]).returning(Redemption))
        if redemption is not None:
            return redemption


def _new_pickup_code() -> str:
    return "".join(secrets.choice(PICKUP_ALPHABET) for _ in range(PICKUP_LENGTH))


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


# --- member cards and the counter ---------------------------------------------------------

def member_card(user_id: int) -> MemberCard:
    """The user's card, made on first need. Shown by GET requests, so the first view makes it
    in a write transaction of its own (SQLite: BEGIN IMMEDIATE), and concurrent first views
    (two devices) insert at most one card between them and all answer with it."""
    card = db.session.get(MemberCard, user_id)
    if card is None:
        with write_transaction(db.session):
            db.session.execute(insert_unless_present(db.session, MemberCard, {
                "user_id": user_id, "code": secrets.token_urlsafe(18), "rotated_at": utcnow()},
                ["user_id"]))
        card = db.session.get(MemberCard, user_id)
    return card


def rotate_member_card(user_id: int) -> MemberCard:
    card = member_card(user_id)
    card.code = secrets.token_urlsafe(18)
    card.rotated_at = utcnow()
    db.session.flush()
    return card


def redeem_at_counter(reward: Reward, for_user_id: int, member_code: str, quantity: int,
                      organiser_id: int) -> Redemption:
    """An organiser redeems for a volunteer who shows their member card: fulfilled at once."""
    access.require_member(reward.community_id, for_user_id, "for_user_id")
    card = db.session.get(MemberCard, for_user_id)
    if card is None or not secrets.compare_digest(card.code, member_code.strip()):
        raise Conflict("member_code_mismatch")
    return redeem(reward.id, for_user_id, quantity, organiser_id, at_counter=True)


# --- pickup, cancel, expiry ---------------------------------------------------------------

def debit_key(redemption_id: int) -> str:
    """The ledger key of a redemption's debit (its cause: one debit per redemption)."""
    return f"redemption:{redemption_id}:debit"


def balance_after(redemption: Redemption) -> int | None:
    """The redeemer's balance right after this redemption was debited."""
    return ledger.balance_after(redemption.community_id, redemption.user_id,
                                debit_key(redemption.id))


def lock(redemption_id: int) -> Redemption:
    redemption = db.session.scalar(
        sa.select(Redemption).where(Redemption.id == redemption_id).with_for_update(of=Redemption)
        .execution_options(populate_existing=True))
    if redemption is None:
        raise NotFound()
    return redemption


STATUS_LABELS = {AWAITING_PICKUP: "待领取", FULFILLED: "已领取", CANCELLED: "已取消",
                 EXPIRED: "已过期退还"}
ACTION_LABELS = {"fulfilled": "领取", "cancelled": "取消"}


def _require_pending(redemption: Redemption, action: str) -> None:
    if redemption.status != AWAITING_PICKUP:
        raise Conflict("redemption_not_pending", state=redemption.status,
                       state_label=STATUS_LABELS[redemption.status], action=action,
                       action_label=ACTION_LABELS[action], errors={"status": [redemption.status]})


def fulfil(redemption_id: int, pickup_code: str | None, actor_id: int) -> Redemption:
    """Hand over a redemption: by its pickup code, or for an honour by an organiser's approval.

    Wrong codes are counted even though the request fails (they are committed first); the
    fifth locks the redemption for 15 minutes.
    """
    redemption = lock(redemption_id)
    _require_pending(redemption, "fulfilled")
    if pickup_code is None and redemption.reward_kind != "honour":
        # A missing code is a malformed request, not a wrong guess: it must not count.
        raise ValidationFailed("pickup_code", N_("请填写取货码。"))
    now = utcnow()
    if redemption.locked_until is not None and redemption.locked_until > now:
        minutes = max(1, int((redemption.locked_until - now).total_seconds() // 60) + 1)
        raise Conflict("pickup_locked", minutes=minutes)
    # An honour is fulfilled by the organiser's approval; anything else needs its code.
    needs_code = redemption.reward_kind != "honour" or pickup_code is not None
    if needs_code and not _code_matches(redemption, pickup_code):
        _count_wrong_code(redemption, now)
    _mark_fulfilled(redemption, actor_id, now)
    outbox.redemption_changed(redemption, "redemption.fulfilled", actor_id)
    db.session.flush()
    return redemption


def _code_matches(redemption: Redemption, pickup_code: str | None) -> bool:
    return pickup_code is not None and secrets.compare_digest(
        normalise_code(pickup_code), redemption.pickup_code)


def _count_wrong_code(redemption: Redemption, now: datetime) -> None:
    redemption.wrong_code_attempts += 1
    left = MAX_WRONG_CODES - redemption.wrong_code_attempts
    if left <= 0:
        redemption.wrong_code_attempts = 0
        redemption.locked_until = now + timedelta(minutes=LOCK_MINUTES)
    db.session.commit()  # the count must outlive this failed request
    if left <= 0:
        raise Conflict("pickup_locked", minutes=LOCK_MINUTES)
    raise Conflict("wrong_pickup_code", left=left)


def _mark_fulfilled(redemption: Redemption, actor_id: int, now: datetime) -> None:
    redemption.status = FULFILLED
    redemption.fulfilled_at = now
    redemption.fulfilled_by_id = actor_id


def find_by_code(community_id: int, pickup_code: str) -> Redemption:
    found = db.session.scalar(sa.select(Redemption).where(
        Redemption.community_id == community_id,
        Redemption.pickup_code == normalise_code(pickup_code)))
    if found is None:
        raise NotFound()
    return found


def cancel(redemption_id: int, actor_id: int | None, *, reason: str | None = None,
           status: str = CANCELLED) -> Redemption:
    """Cancel before pickup: refund the points once (`redemption:<id>:refund`), return stock."""
    redemption = lock(redemption_id)
    _require_pending(redemption, "cancelled")
    now = utcnow()
    redemption.status = status
    redemption.cancelled_at = now
    redemption.cancelled_by_id = actor_id
    redemption.cancel_reason = reason
    db.session.execute(
        sa.update(Reward).where(Reward.id == redemption.reward_id, Reward.stock.is_not(None))
        .values(stock=Reward.stock + redemption.quantity),
        execution_options={"synchronize_session": False})
    ledger.transfer(
        redemption.community_id, ledger.store_account(redemption.community_id),
        ledger.user_account(redemption.community_id, redemption.user_id),
        redemption.cost_total, TransferKind.REFUND, f"redemption:{redemption.id}:refund",
        memo=f"退还：{redemption.reward_name} × {redemption.quantity}", actor_id=actor_id,
        reverses=debit_key(redemption.id),
    )
    outbox.redemption_changed(redemption, "redemption.cancelled", actor_id, note=reason)
    db.session.flush()
    return redemption


DEFAULT_SETTINGS = {"redemption_expiry_days": 30}


def expiry_days(community_id: int) -> int:
    return community_settings(db.session, StoreSettings, community_id,
                              DEFAULT_SETTINGS)["redemption_expiry_days"]


def update_settings(community_id: int, data: dict) -> dict:
    return change_community_settings(db.session, StoreSettings, community_id, DEFAULT_SETTINGS,
                                     data)


def due_expiry(now: datetime) -> list[int]:
    rows = db.session.execute(sa.select(Redemption.id, Redemption.community_id,
                                        Redemption.created_at)
                              .where(Redemption.status == AWAITING_PICKUP)).all()
    days: dict[int, int] = {}
    due = []
    for rid, cid, created in rows:
        days.setdefault(cid, expiry_days(cid))
        if created <= now - timedelta(days=days[cid]):
            due.append(rid)
    return due


def expire(redemption_id: int, now: datetime) -> bool:
    redemption = lock(redemption_id)
    if redemption.status != AWAITING_PICKUP or redemption.created_at > now - timedelta(
            days=expiry_days(redemption.community_id)):
        return False
    cancel(redemption_id, None, reason="逾期未领取，积分已退还", status=EXPIRED)
    return True


# --- reading ------------------------------------------------------------------------------

def redemptions_query(filters: dict, visible_community_ids, user_id: int,
                      organiser_community_ids) -> sa.Select:
    """Redemptions the user may list: their own, and all of the communities they organise."""
    query = sa.select(Redemption)
    if visible_community_ids is not None:
        query = query.where(sa.or_(Redemption.user_id == user_id,
                                   Redemption.community_id.in_(organiser_community_ids)))
    if filters.get("mine"):
        query = query.where(Redemption.user_id == user_id)
    for key in ("community_id", "status", "user_id", "reward_id"):
        if filters.get(key) is not None:
            query = query.where(getattr(Redemption, key) == filters[key])
    if filters.get("at_counter") is not None:
        query = query.where(Redemption.at_counter.is_(filters["at_counter"]))
    if filters.get("from"):
        query = query.where(Redemption.created_at >= filters["from"])
    if filters.get("to"):
        query = query.where(Redemption.created_at < filters["to"])
    return query.order_by(Redemption.id.desc())


def reward_totals(community_id: int) -> list[dict]:
    done = sa.case((Redemption.status == FULFILLED, Redemption.quantity), else_=0)
    waiting = sa.case((Redemption.status == AWAITING_PICKUP, Redemption.quantity), else_=0)
    points = sa.case((Redemption.status.in_([FULFILLED, AWAITING_PICKUP]),
                      Redemption.cost_total), else_=0)
    rows = db.session.execute(
        sa.select(Reward.id, Reward.name, Reward.kind, Reward.stock,
                  sa.func.coalesce(sa.func.sum(done), 0), sa.func.coalesce(sa.func.sum(waiting), 0),
                  sa.func.coalesce(sa.func.sum(points), 0))
        .outerjoin(Redemption, Redemption.reward_id == Reward.id)
        .where(Reward.community_id == community_id)
        .group_by(Reward.id, Reward.name, Reward.kind, Reward.stock).order_by(Reward.id)).all()
    return [{"reward_id": r[0], "name": r[1], "kind": r[2], "stock": r[3], "fulfilled": r[4],
             "awaiting_pickup": r[5], "points": r[6]} for r in rows]
