"""Boards and the micro-wish lifecycle: 群众点单、社区派单、党员接单.

Every action loads the wish under a row lock (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's
BEGIN IMMEDIATE already serialises writers), asks the transition table whether this actor may
take it from the current state, applies it and appends to the timeline — all in the request's
one transaction. Two volunteers racing for one wish: the second sees it claimed and gets 409.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app.auth.models import User
from app.communities import access
from app.communities.models import Membership, Role, VolunteerProfile
from app.db import (
    change_community_settings,
    community_settings,
    paginate,
    transaction_memo,
    utcnow,
    write_transaction,
)
from app.errors import Conflict, Forbidden, NotFound, register_messages
from app.extensions import db
from app.i18n import N_
from app.ledger import service as ledger
from app.ledger.models import TransferKind
from app.notifications import outbox
from app.wishes import transitions as lifecycle
from app.wishes.models import (
    CATEGORIES,
    Board,
    ClaimLapse,
    ContactReveal,
    RetiredBoardToken,
    Wish,
    WishEvent,
    WishSettings,
)

register_messages({
    "board_closed": N_("该心愿墙已关闭，暂不接收新的心愿，请联系社区工作人员。"),
    "own_wish": N_("不能认领自己发布的心愿。"),
    "already_handled": N_("这个心愿已经由其他工作人员处理过了（现在是“{state}”），不用再审核。"),
    "claim_limit_reached": N_("您已有 {limit} 个进行中的心愿，请先完成后再认领新的。"),
    "already_extended": N_("完成期限只能延长一次。"),
})

DEFAULT_SETTINGS = {"max_active_claims": 3, "fulfil_days": 3, "extension_days": 3,
                    "auto_confirm_days": 7, "auto_confirm_rating": 5, "escalate_hours": 24,
                    "default_level": 1}


# --- boards -------------------------------------------------------------------------------

def new_token() -> str:
    # 128 random bits in 22 URL-safe characters: unguessable, yet short enough to type from the
    # poster for those who cannot scan.
    return secrets.token_urlsafe(16)


def create_board(community_id: int, name: str, location: str = "", grid_label: str | None = None,
                 auto_approve: bool = False, enabled: bool = True) -> Board:
    board = Board(community_id=community_id, name=name, location=location,
                  grid_label=grid_label, auto_approve=auto_approve, enabled=enabled,
                  token=new_token())
    db.session.add(board)
    db.session.flush()
    return board


def update_board(board: Board, changes: dict) -> Board:
    for key, value in changes.items():
        setattr(board, key, value)
    db.session.flush()
    return board


def rotate_token(board: Board) -> Board:
    db.session.add(RetiredBoardToken(token=board.token, board_id=board.id))
    board.token = new_token()
    db.session.flush()
    return board


def boards_query(community_id: int) -> sa.Select:
    return sa.select(Board).where(Board.community_id == community_id).order_by(Board.id)


def public_url(board: Board) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + f"/b/{board.token}"


def board_by_token(token: str) -> tuple[Board | None, bool]:
    """The board a QR token names, and whether the token was replaced by a newer one."""
    board = db.session.scalar(sa.select(Board).where(Board.token == token))
    if board is not None:
        return board, False
    retired = db.session.get(RetiredBoardToken, token)
    if retired is not None:
        return db.session.get(Board, retired.board_id), True
    return None, False


# --- settings -----------------------------------------------------------------------------

def settings_for(community_id: int) -> dict:
    return community_settings(db.session, WishSettings, community_id, DEFAULT_SETTINGS)


def update_settings(community_id: int, changes: dict) -> dict:
    return change_community_settings(db.session, WishSettings, community_id, DEFAULT_SETTINGS,
                                     changes)


# --- relations of an actor to a wish ------------------------------------------------------

_LOOK_UP = object()  # relations(): no role given, read it


def relations(wish: Wish, user: User, role: str | object | None = _LOOK_UP) -> set[str]:
    found: set[str] = set()
    if role is _LOOK_UP:
        role = access.role_of(wish.community_id, user)
    if wish.owner_id == user.id:
        found.add("owner")
    if wish.claimer_id == user.id:
        found.add("claimer")
    if role == Role.ORGANISER:
        found.update({"organiser", "proxy"})
    if role == Role.VOLUNTEER:
        found.add("volunteer")
    return found


# --- posting ------------------------------------------------------------------------------

def post_wish(board: Board, author: User, data: dict) -> Wish:
    """Post a wish on a board; an organiser may post for a resident without an account."""
    if not board.enabled:
        raise Conflict("board_closed")
    proxy = data.pop("on_behalf_of", None)
    role = access.role_of(board.community_id, author)
    if proxy is not None and role != Role.ORGANISER:
        raise Forbidden("role_required", roles="社区工作人员")
    if role is None:
        # Scanning a board's QR and posting makes a resident of its community.
        db.session.add(Membership(community_id=board.community_id, user_id=author.id,
                                  role=Role.RESIDENT.value))
    wish = Wish(community_id=board.community_id, board_id=board.id, posted_by_id=author.id,
                status=lifecycle.PENDING, created_at=utcnow(), updated_at=utcnow(), **data)
    if proxy is not None:
        wish.proxy_name, wish.proxy_phone = proxy["name"], proxy["phone"]
        wish.contact_phone = wish.contact_phone or proxy["phone"]
    else:
        wish.owner_id = author.id
    db.session.add(wish)
    db.session.flush()
    _event(wish, author, "post", None, lifecycle.PENDING, by_proxy=proxy is not None)
    if board.auto_approve:
        level = settings_for(board.community_id)["default_level"]
        _open(wish, level)
        _event(wish, None, "approve", lifecycle.PENDING, lifecycle.OPEN, note="自动通过")
    db.session.flush()
    return wish


# --- the lifecycle ------------------------------------------------------------------------

def lock(wish_id: int) -> Wish:
    """The wish, read afresh and locked until the transaction ends; a wish already locked in
    this transaction (the route checked access on it) is not read twice."""
    locked = transaction_memo(db.session, "locked_wishes")
    if wish_id not in locked:
        wish = db.session.scalar(
            sa.select(Wish).where(Wish.id == wish_id).with_for_update(of=Wish)
            .execution_options(populate_existing=True))
        if wish is None:
            raise NotFound()
        locked[wish_id] = wish
    return locked[wish_id]


def act(wish_id: int, action: str, actor: User, *, expected_status: str | None = None,
        **payload) -> Wish:
    """Take `action` on a wish as `actor`; see the transition table.

    `expected_status`: the state the actor saw when deciding (a review queue shows pending
    wishes). If a colleague moved the wish on meanwhile, refuse (409 already_handled) even where
    the table would allow the action from the new state — rejecting an open wish is allowed, but
    is not what a reviewer who saw it pending meant.
    """
    wish = lock(wish_id)
    if expected_status is not None and wish.status != expected_status:
        raise Conflict("already_handled", state=lifecycle.STATUS_LABELS[wish.status],
                       errors={"status": [wish.status]})
    relation_set = relations(wish, actor)
    transition = lifecycle.check(wish.status, action, relation_set)
    proxy = lifecycle.by_proxy(transition, relation_set)
    before, former_claimer_id = wish.status, wish.claimer_id
    note = ACTIONS[action](wish, actor, **payload)
    wish.status = transition.to
    wish.updated_at = utcnow()
    _event(wish, actor, action, before, transition.to, note=note, by_proxy=proxy,
           former_claimer_id=former_claimer_id)
    db.session.flush()
    return wish


def _approve(wish: Wish, _actor: User, level: int) -> str:
    _open(wish, level)
    return f"等级 {level}"


def _open(wish: Wish, level: int | None = None) -> None:
    if level is not None:
        wish.level = level
    wish.status = lifecycle.OPEN
    wish.opened_at = utcnow()
    wish.escalated_at = None


def _reject(wish: Wish, _actor: User, reason: str) -> str:
    wish.reason = reason
    return reason


def _cancel(wish: Wish, _actor: User, reason: str | None = None) -> str | None:
    wish.reason = reason
    return reason


def _claim(wish: Wish, actor: User) -> str | None:
    _take(wish, actor.id)
    return None


def _assign(wish: Wish, _actor: User, volunteer_id: int) -> str:
    access.require_member(wish.community_id, volunteer_id, "volunteer_id", Role.VOLUNTEER)
    _take(wish, volunteer_id)
    volunteer = db.session.get(User, volunteer_id)
    return f"派单给 {volunteer.display_name}"


def _take(wish: Wish, volunteer_id: int) -> None:
    if wish.owner_id == volunteer_id:
        raise Forbidden("own_wish")
    # Serialise this volunteer's claims (PostgreSQL) so two at once cannot pass the cap.
    db.session.execute(sa.select(Membership.id).where(
        Membership.community_id == wish.community_id, Membership.user_id == volunteer_id)
        .with_for_update())
    settings = settings_for(wish.community_id)
    limit = settings["max_active_claims"]
    active = db.session.scalar(sa.select(sa.func.count()).where(
        Wish.claimer_id == volunteer_id, Wish.status == lifecycle.CLAIMED))
    if active >= limit:
        raise Conflict("claim_limit_reached", limit=limit)
    now = utcnow()
    wish.claimer_id = volunteer_id
    wish.claimed_at = now
    wish.fulfil_due_at = now + timedelta(days=settings["fulfil_days"])
    wish.fulfil_extended = False


def _release(wish: Wish, _actor: User, reason: str) -> str:
    _drop_claim(wish)
    return reason


def _drop_claim(wish: Wish) -> None:
    wish.claimer_id = None
    wish.claimed_at = None
    wish.fulfil_due_at = None
    wish.fulfil_extended = False
    _open(wish)


def _extend(wish: Wish, _actor: User) -> str:
    if wish.fulfil_extended:
        raise Conflict("already_extended")
    days = settings_for(wish.community_id)["extension_days"]
    wish.fulfil_due_at = wish.fulfil_due_at + timedelta(days=days)
    wish.fulfil_extended = True
    return f"延期 {days} 天"


def _fulfil(wish: Wish, _actor: User, note: str) -> str:
    wish.fulfilled_at = utcnow()
    wish.fulfil_note = note
    return note


def _confirm(wish: Wish, actor: User | None, rating: int, comment: str | None = None) -> str:
    wish.rating = rating
    wish.comment = comment
    wish.closed_at = utcnow()
    award(wish, rating, actor.id if actor else None)
    return f"{rating} 星" + (f"：{comment}" if comment else "")


def _dispute(wish: Wish, _actor: User, reason: str) -> str:
    wish.fulfilled_at = None
    wish.fulfil_note = None
    wish.fulfil_due_at = utcnow() + timedelta(days=settings_for(wish.community_id)["fulfil_days"])
    return reason


def award(wish: Wish, rating: int, actor_id: int | None) -> None:
    """Post the claimer's points for a closed wish through the ledger, once (its key)."""
    points = ledger.wish_award(wish.community_id, wish.level or 1, rating)
    wish.points_awarded, wish.points_capped = 0, 0
    if points <= 0:
        return
    posting = ledger.transfer(
        wish.community_id,
        ledger.issuance_account(wish.community_id),
        ledger.user_account(wish.community_id, wish.claimer_id),
        points, TransferKind.EARN_WISH, f"wish:{wish.id}:award",
        memo=f"微心愿：{wish.title}"[:200], actor_id=actor_id,
    )
    wish.points_awarded = posting.transfer.amount
    wish.points_capped = posting.capped


ACTIONS = {
    "approve": _approve, "reject": _reject, "cancel": _cancel, "claim": _claim,
    "assign": _assign, "release": _release, "extend": _extend, "fulfil": _fulfil,
    "confirm": _confirm, "dispute": _dispute,
}


def _event(wish: Wish, actor: User | None, action: str, before: str | None, after: str, *,
           note: str | None = None, by_proxy: bool = False,
           former_claimer_id: int | None = None) -> None:
    """A step on the wish's timeline, and the outbox event (notifications, webhooks) it is."""
    db.session.add(WishEvent(wish_id=wish.id, community_id=wish.community_id,
                             actor_id=actor.id if actor else None, action=action,
                             from_status=before, to_status=after,
                             note=note[:500] if note else None, by_proxy=by_proxy,
                             created_at=utcnow()))
    outbox.wish_changed(wish, action, actor.id if actor else None, note=note,
                        former_claimer_id=former_claimer_id)


# --- deadlines: `flask wishes tick` -------------------------------------------------------

def _system_step(wish_id: int, action: str, apply) -> bool:
    """Apply a system transition to one wish if it still applies (the lock re-reads it)."""
    wish = lock(wish_id)
    if (wish.status, action) not in lifecycle.TRANSITIONS:
        return False
    transition = lifecycle.TRANSITIONS[(wish.status, action)]
    before, former_claimer_id = wish.status, wish.claimer_id
    note = apply(wish)
    if note is False:
        return False
    wish.status = transition.to
    wish.updated_at = utcnow()
    _event(wish, None, action, before, transition.to, note=note,
           former_claimer_id=former_claimer_id)
    db.session.flush()
    return True


def _settings_cache():
    cache: dict[int, dict] = {}

    def get(community_id: int) -> dict:
        if community_id not in cache:
            cache[community_id] = settings_for(community_id)
        return cache[community_id]
    return get


def due_auto_confirm(now: datetime) -> list[int]:
    settings = _settings_cache()
    rows = db.session.execute(sa.select(Wish.id, Wish.community_id, Wish.fulfilled_at).where(
        Wish.status == lifecycle.FULFILLED)).all()
    return [wid for wid, cid, at in rows
            if at <= now - timedelta(days=settings(cid)["auto_confirm_days"])]


def auto_confirm(wish_id: int, now: datetime) -> bool:
    def apply(wish: Wish):
        days = settings_for(wish.community_id)["auto_confirm_days"]
        if wish.fulfilled_at > now - timedelta(days=days):
            return False
        rating = settings_for(wish.community_id)["auto_confirm_rating"]
        wish.rating = rating
        wish.rating_auto = True
        wish.closed_at = now
        award(wish, rating, None)
        return f"超过 {days} 天未确认，系统按 {rating} 星自动确认"
    return _system_step(wish_id, "auto_confirm", apply)


def due_lapses(now: datetime) -> list[int]:
    return list(db.session.scalars(sa.select(Wish.id).where(
        Wish.status == lifecycle.CLAIMED, Wish.fulfil_due_at < now)))


def lapse(wish_id: int, now: datetime) -> bool:
    def apply(wish: Wish):
        if wish.fulfil_due_at >= now:
            return False
        db.session.add(ClaimLapse(community_id=wish.community_id, user_id=wish.claimer_id,
                                  wish_id=wish.id, due_at=wish.fulfil_due_at, created_at=now))
        name = wish.claimer.display_name if wish.claimer else ""
        _drop_claim(wish)
        return f"{name} 未在期限内完成，心愿重新开放认领"
    return _system_step(wish_id, "lapse", apply)


def due_escalations(now: datetime) -> list[int]:
    settings = _settings_cache()
    rows = db.session.execute(sa.select(Wish.id, Wish.community_id, Wish.opened_at).where(
        Wish.status == lifecycle.OPEN, Wish.escalated_at.is_(None))).all()
    return [wid for wid, cid, at in rows
            if at is not None and at <= now - timedelta(hours=settings(cid)["escalate_hours"])]


def escalate(wish_id: int, now: datetime) -> bool:
    def apply(wish: Wish):
        if wish.escalated_at is not None:
            return False
        wish.escalated_at = now
        return "长时间无人认领，已转入派单队列"
    return _system_step(wish_id, "escalate", apply)


# --- reading: visibility and privacy ------------------------------------------------------

PUBLIC_STATES = (lifecycle.OPEN, lifecycle.CLAIMED, lifecycle.FULFILLED, lifecycle.CLOSED)


def visible_query(user: User, filters: dict) -> sa.Select:
    """Wishes the user may list: organisers all of their communities; others their own, the
    ones they hold, and the public states of their communities' wishes."""
    query = sa.select(Wish)
    if not user.is_admin:
        # The viewer's communities as constants, not a subquery: the planner then knows which
        # community it reads and takes the (community, board, status, id) index; an organiser
        # of every community listed needs no OR at all.
        if filters.get("community_id") is not None:
            roles = {filters["community_id"]: access.role_of(filters["community_id"], user)}
        else:
            roles = dict(db.session.execute(sa.select(Membership.community_id, Membership.role)
                                            .where(Membership.user_id == user.id)).all())
        member_of = sorted(cid for cid, role in roles.items() if role is not None)
        organised = [cid for cid in member_of if roles[cid] == Role.ORGANISER.value]
        query = query.where(Wish.community_id.in_(member_of))
        if organised != member_of:
            query = query.where(sa.or_(
                *([Wish.community_id.in_(organised)] if organised else []),
                Wish.owner_id == user.id, Wish.claimer_id == user.id,
                Wish.status.in_(PUBLIC_STATES)))
    for key in ("community_id", "board_id", "status", "category"):
        if filters.get(key) is not None:
            query = query.where(getattr(Wish, key) == filters[key])
    if filters.get("mine"):
        query = query.where(Wish.owner_id == user.id)
    if filters.get("claimed_by_me"):
        query = query.where(Wish.claimer_id == user.id)
    if filters.get("escalated") is not None:
        # The dispatch queue: escalated and still waiting (a wish taken, rejected or cancelled
        # since has left it; its timeline keeps the escalation).
        flag = sa.and_(Wish.escalated_at.is_not(None), Wish.status == lifecycle.OPEN)
        query = query.where(flag if filters["escalated"] else ~flag)
    if filters.get("after"):
        query = query.where(Wish.id < filters["after"])
    if filters.get("sort") == "match":
        query = query.order_by(_skill_match(user).desc(), Wish.id.desc())
    else:
        query = query.order_by(Wish.id.desc())
    return query


def list_visible(user: User, query: dict) -> dict:
    """One page of the wishes `user` may see, as they may see them; `next_after` continues it."""
    page = 1 if query.get("after") else query["page"]
    result = paginate(db.session, visible_query(user, query), page, query["per_page"])
    items = present_all(result["items"], user)
    # The claimer is shown the contact details of the wishes they hold: each is a logged reveal.
    log_reveals([(i["id"], i["community_id"]) for i in items if i["_reveal_to_claimer"]],
                user.id)
    more = len(items) == query["per_page"] and result["total"] > page * query["per_page"]
    keyset = more and query.get("sort") != "match"  # ids are not monotonic in match order
    return {**result, "items": items, "next_after": items[-1]["id"] if keyset else None}


def _skill_match(user: User):
    profile = db.session.get(VolunteerProfile, user.id)
    skills = set(profile.skills if profile else [])
    matching = [code for code, info in CATEGORIES.items() if skills & set(info["skills"])]
    if not matching:
        return sa.literal(0)
    return sa.case((Wish.category.in_(matching), 1), else_=0)


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    return phone[:3] + "****" + phone[-4:]


def mask_name(name: str | None) -> str | None:
    if not name:
        return None
    return name[0] + "*" * max(1, len(name) - 1)


def _sight(wish: Wish, viewer: User, role: str | object | None = _LOOK_UP,
           ) -> tuple[set[str], bool, bool]:
    """(relations, sees everything, holds it now) of a viewer: owner and organisers see all;
    the claimer sees the contact details only while holding the wish."""
    relation_set = relations(wish, viewer, role)
    full = bool(relation_set & {"owner", "organiser"})
    holds = ("claimer" in relation_set
             and wish.status in (lifecycle.CLAIMED, lifecycle.FULFILLED))
    return relation_set, full, holds


def present(wish: Wish, viewer: User) -> dict:
    """The wish as this viewer may see it: personal data masked unless they may see it."""
    return present_all([wish], viewer)[0]


def present_all(wishes: list[Wish], viewer: User) -> list[dict]:
    """present() for a page of wishes in a fixed number of queries, however long the page: the
    viewer's roles at once, and the pending awards of each community once."""
    roles = _roles(viewer, {w.community_id for w in wishes})
    pending = {cid: ledger.wish_awards(cid, settings_for(cid)["auto_confirm_rating"])
               for cid in {w.community_id for w in wishes if w.status == lifecycle.FULFILLED}}
    return [_present(w, viewer, roles[w.community_id], pending) for w in wishes]


def _roles(viewer: User, community_ids: set[int]) -> dict[int, str | None]:
    """The viewer's role in each community (a platform admin organises every one)."""
    if viewer.is_admin:
        return dict.fromkeys(community_ids, Role.ORGANISER.value)
    if len(community_ids) == 1:  # one wish, or one community's page: the kept membership
        (community_id,) = community_ids
        return {community_id: access.role_of(community_id, viewer)}
    found = dict(db.session.execute(sa.select(Membership.community_id, Membership.role).where(
        Membership.user_id == viewer.id, Membership.community_id.in_(community_ids))).all()
    ) if community_ids else {}
    return {cid: found.get(cid) for cid in community_ids}


def _present(wish: Wish, viewer: User, role: str | None,
             pending: dict[int, dict[int, int]]) -> dict:
    relation_set, full, holds = _sight(wish, viewer, role)
    shows_contact = full or holds
    owner_name = wish.owner.display_name if wish.owner else wish.proxy_name
    body = {
        **{c: getattr(wish, c) for c in (
            "id", "community_id", "board_id", "title", "description", "category", "status",
            "level", "claimer_id", "claimed_at", "fulfil_due_at", "fulfil_extended",
            "fulfilled_at", "fulfil_note", "rating", "comment", "closed_at", "points_awarded",
            "points_capped", "reason", "created_at", "updated_at", "opened_at")},
        "category_label": CATEGORIES[wish.category]["label"],
        "status_label": lifecycle.STATUS_LABELS[wish.status],
        "board_name": wish.board.name,
        "owner_id": wish.owner_id if full or "owner" in relation_set else None,
        "owner_name": owner_name if shows_contact else mask_name(owner_name),
        "posted_by_proxy": wish.owner_id is None,
        "claimer_name": wish.claimer.display_name if wish.claimer else None,
        "contact_phone": wish.contact_phone if shows_contact else mask_phone(wish.contact_phone),
        "address": wish.address if shows_contact else None,
        "contact_revealed": shows_contact,
        "escalated": wish.escalated_at is not None and wish.status == lifecycle.OPEN,
        "pending_points": (pending[wish.community_id][wish.level or 1]
                           if wish.status == lifecycle.FULFILLED else None),
    }
    body["_reveal_to_claimer"] = holds and not full and bool(wish.contact_phone or wish.address)
    return body


def log_reveal(wish_id: int, community_id: int, viewer_id: int) -> None:
    """Record that the claimer was shown the contact details (in its own write transaction,
    since it happens while answering a GET)."""
    log_reveals([(wish_id, community_id)], viewer_id)


def log_reveals(shown: list[tuple[int, int]], viewer_id: int) -> None:
    """log_reveal() for each (wish id, community id) a GET showed, in one write transaction."""
    if not shown:
        return
    db.session.commit()  # end the read transaction; the next BEGIN takes the write lock
    with write_transaction(db.session):
        for wish_id, community_id in shown:
            record_reveal(wish_id, community_id, viewer_id)


def record_reveal(wish_id: int, community_id: int, viewer_id: int) -> None:
    """Add a reveal to the current (write) transaction, e.g. the answer to a claim."""
    db.session.add(ContactReveal(wish_id=wish_id, community_id=community_id,
                                 viewer_id=viewer_id, created_at=utcnow()))


def timeline(wish: Wish, viewer: User | None = None) -> list[dict]:
    """The wish's steps; for a viewer who may not see the owner (see present()), the owner's
    own steps name them masked, as owner_name does."""
    hide_owner = False
    if viewer is not None and wish.owner_id is not None:
        _relations, full, holds = _sight(wish, viewer)
        hide_owner = not (full or holds)
    events = db.session.scalars(sa.select(WishEvent).where(WishEvent.wish_id == wish.id)
                                .order_by(WishEvent.id))
    steps = []
    for e in events:
        hidden = hide_owner and e.actor_id == wish.owner_id
        name = e.actor.display_name if e.actor else "系统"
        steps.append({"action": e.action, "from_status": e.from_status,
                      "to_status": e.to_status, "actor_id": None if hidden else e.actor_id,
                      "actor_name": mask_name(name) if hidden else name,
                      "by_proxy": e.by_proxy, "note": e.note, "created_at": e.created_at})
    return steps


_AWAITING_LEVELS = sa.select(Wish.level).where(  # built once: every points read runs it
    Wish.community_id == sa.bindparam("community"), Wish.claimer_id == sa.bindparam("user"),
    Wish.status == lifecycle.FULFILLED)


def pending_points(community_id: int, user_id: int) -> int:
    """Points of this volunteer's fulfilled wishes awaiting the resident's confirmation."""
    levels = db.session.scalars(_AWAITING_LEVELS, {"community": community_id,
                                                   "user": user_id}).all()
    if not levels:
        return 0
    # Rules and settings read once, whatever the number of wishes waiting.
    rating = settings_for(community_id)["auto_confirm_rating"]
    award_by_level = ledger.wish_awards(community_id, rating)
    return sum(award_by_level[level or 1] for level in levels)


ledger.PENDING_SOURCES.append(pending_points)
