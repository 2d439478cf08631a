"""The transactional outbox: the one place where a domain change becomes an event.

Domains call these functions inside the transaction that makes the change: the event, each
recipient's notification and each subscribed webhook's delivery are written with it, so a
change that rolls back tells nobody and one that commits is never lost. Nothing here sends
anything; `flask outbox run` (app.notifications.delivery) does, after the commit.

This module knows the domains' objects only by their attributes (duck typing) and imports no
domain service and no page.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from app.db import dialect_name, insert_unless_present, utcnow
from app.extensions import db
from app.notifications.catalogue import (
    CLAIMER,
    EVENT_TYPES,
    HOLDER,
    ORGANISERS,
    OWNER,
    PROXY_POSTER,
    REPORTER,
    SIGNED_UP,
)
from app.notifications.models import Delivery, Event, Notification, NotificationMute, Webhook

# The wish lifecycle's actions (app.wishes.transitions) and the events they are.
WISH_ACTIONS = {
    "post": "wish.posted", "approve": "wish.approved", "reject": "wish.rejected",
    "claim": "wish.claimed", "assign": "wish.dispatched", "release": "wish.released",
    "fulfil": "wish.fulfilled", "confirm": "wish.closed", "auto_confirm": "wish.closed",
    "dispute": "wish.disputed", "lapse": "wish.lapsed", "escalate": "wish.escalated",
}
REPORT_ACTIONS = {"accept": "report.accepted", "resolve": "report.resolved"}


def emit(event_type: str, community_id: int, *, subject: tuple[str, int] | None = None,
         actor_id: int | None = None, parties: dict | None = None, data: dict | None = None,
         key: str | None = None) -> int | None:
    """Write one event, its notifications and its deliveries into the current transaction;
    return the event's id.

    `parties` maps the catalogue's relations (owner, claimer, holder, …) to user ids (or lists
    of them); organisers are looked up here. With a `key`, an event already written under it
    makes this a no-op (None): reminders tell nobody twice, even from two runs at once.

    Recipients and subscribed webhooks are chosen by the database (INSERT … SELECT), not read
    back first: on PostgreSQL the event, its notifications and its deliveries are one
    statement (writing CTEs); SQLite, which has none, runs three.
    """
    spec = EVENT_TYPES[event_type]
    now = utcnow()
    values = {"community_id": community_id, "type": event_type,
              "subject_type": subject[0] if subject else None,
              "subject_id": subject[1] if subject else None, "actor_id": actor_id,
              "data": _clean(data or {}), "key": key, "created_at": now}
    insert = (insert_unless_present(db.session, Event, values, ["key"]) if key is not None
              else sa.insert(Event).values(**values)).returning(Event.id)
    recipients = _recipients(event_type, spec.recipients, community_id, parties or {},
                             actor_id)
    if dialect_name(db.session) == "postgresql":
        event = insert.cte("event")
        # The event CTE is one row (none when its key was taken): joined to every row.
        writes = [sa.insert(Delivery).from_select(
            DELIVERY_COLUMNS, _deliveries(event_type, community_id, event.c.id, now)
            .join_from(Webhook, event, sa.true())).cte("deliveries")]
        if recipients is not None:
            from app.auth.models import User

            writes.append(sa.insert(Notification).from_select(
                NOTIFICATION_COLUMNS, recipients.add_columns(event.c.id, sa.literal(now, _AT))
                .join_from(User, event, sa.true())).cte("notifications"))
        return db.session.scalar(sa.select(event.c.id).add_cte(*writes))
    event_id = db.session.scalar(insert)
    if event_id is None:
        return None
    if recipients is not None:
        db.session.execute(sa.insert(Notification).from_select(
            NOTIFICATION_COLUMNS,
            recipients.add_columns(sa.literal(event_id), sa.literal(now, _AT))))
    db.session.execute(sa.insert(Delivery).from_select(
        DELIVERY_COLUMNS, _deliveries(event_type, community_id, sa.literal(event_id), now)))
    return event_id


NOTIFICATION_COLUMNS = ["user_id", "event_id", "created_at"]
DELIVERY_COLUMNS = ["webhook_id", "event_id", "status", "attempts", "next_attempt_at",
                    "created_at"]
_AT = Event.created_at.type


def _recipients(event_type: str, relations: tuple[str, ...], community_id: int,
                parties: dict, actor_id: int | None) -> sa.Select | None:
    """Who hears it, as a SELECT of user ids (None: nobody): the parties named and, when the
    catalogue says so, the community's organisers, less the actor and whoever muted it."""
    from app.auth.models import User
    from app.communities.models import Membership, Role

    named: set[int] = set()
    for relation in relations:
        found = parties.get(relation)
        if isinstance(found, (list, tuple, set, frozenset)):
            named.update(uid for uid in found if uid is not None)
        elif found is not None and relation != ORGANISERS:
            named.add(found)
    who = [User.id.in_(sorted(named))] if named else []
    if ORGANISERS in relations:
        who.append(User.id.in_(sa.select(Membership.user_id).where(
            Membership.community_id == community_id,
            Membership.role == Role.ORGANISER.value).scalar_subquery()))
    if not who:
        return None
    muted = sa.select(NotificationMute.user_id).where(
        NotificationMute.user_id == User.id, NotificationMute.event_type == event_type)
    chosen = sa.select(User.id).where(sa.or_(*who), ~sa.exists(muted))
    return chosen.where(User.id != actor_id) if actor_id is not None else chosen


def _deliveries(event_type: str, community_id: int, event_id, now) -> sa.Select:
    """One pending delivery per enabled webhook of the community subscribed to the type."""
    if dialect_name(db.session) == "postgresql":
        subscribed = sa.cast(Webhook.events, JSONB).has_key(event_type)
    else:
        listed = sa.func.json_each(Webhook.events).table_valued("value")
        subscribed = sa.exists(sa.select(1).select_from(listed)
                               .where(listed.c.value == event_type))
    return (sa.select(Webhook.id, event_id, sa.literal("pending"), sa.literal(0),
                      sa.literal(now, _AT), sa.literal(now, _AT))
            .where(Webhook.community_id == community_id, Webhook.enabled.is_(True),
                   subscribed))


def _clean(data: dict) -> dict:
    """JSON-safe values only (datetimes as ISO text); None values dropped."""
    out = {}
    for name, value in data.items():
        if value is None:
            continue
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


_PHONE_LIKE = re.compile(r"\d(?:[\s-]?\d){6,}")


def mask_digits(text: str | None) -> str:
    """Phone-like runs of digits masked (13812345678 → 138****5678), for group messages."""
    def mask(found: re.Match) -> str:
        digits = re.sub(r"\D", "", found.group())
        if len(digits) >= 11:
            return digits[:3] + "****" + digits[-4:]
        return digits[:2] + "*" * (len(digits) - 2)
    return _PHONE_LIKE.sub(mask, text or "")


# --- what the domains call ----------------------------------------------------------------

def _name(user_id: int | None) -> str | None:
    if user_id is None:
        return None
    from app.auth.models import User

    user = db.session.get(User, user_id)
    return user.display_name if user else None


def wish_changed(wish, action: str, actor_id: int | None, *, note: str | None = None,
                 former_claimer_id: int | None = None) -> None:
    """A step of the wish lifecycle (its timeline entry) as an event, if it is one."""
    event_type = WISH_ACTIONS.get(action)
    if event_type is None:
        return
    claimer_id = wish.claimer_id or former_claimer_id
    parties = {OWNER: wish.owner_id, CLAIMER: claimer_id,
               PROXY_POSTER: wish.posted_by_id if wish.owner_id is None else None}
    from app.wishes.models import CATEGORIES

    emit(event_type, wish.community_id, subject=("wish", wish.id), actor_id=actor_id,
         parties=parties, data={
             "title": wish.title, "board": wish.board.name if wish.board else "",
             "category": CATEGORIES[wish.category]["label"], "level": wish.level,
             "claimer": _name(claimer_id), "rating": wish.rating, "note": note,
             "points": wish.points_awarded if action in ("confirm", "auto_confirm") else None})


def points_moved(community_id: int, kind: str, user_id: int, amount: int, memo: str,
                 transfer_id: int, actor_id: int | None) -> None:
    """Points earned (any source) or adjusted by an organiser: `amount` signed for the holder."""
    event_type = "points.adjusted" if kind == "adjustment" else "points.awarded"
    emit(event_type, community_id, subject=("transfer", transfer_id), actor_id=actor_id,
         parties={HOLDER: user_id},
         data={"amount": abs(amount), "signed_amount": f"{amount:+d}", "memo": memo,
               "kind": kind})


def points_expiring(community_id: int, user_id: int, account_id: int, points: int,
                    on) -> int | None:
    return emit("points.expiring", community_id, subject=("account", account_id),
                parties={HOLDER: user_id}, data={"amount": points, "date": on.isoformat()},
                key=f"points.expiring:{account_id}:{on.isoformat()}")


def redemption_changed(redemption, event_type: str, actor_id: int | None, *,
                       note: str | None = None, expires_on=None) -> int | None:
    data = {"reward": redemption.reward_name, "quantity": redemption.quantity,
            "amount": redemption.cost_total, "user": _name(redemption.user_id), "note": note,
            "kind": redemption.reward_kind, "holder_id": redemption.user_id}
    key = None
    if expires_on is not None:
        data["date"] = expires_on.isoformat()
        key = f"redemption.expiring:{redemption.id}"
    return emit(event_type, redemption.community_id, subject=("redemption", redemption.id),
                actor_id=actor_id, parties={HOLDER: redemption.user_id}, data=data, key=key)


def report_changed(report, event_type: str, actor_id: int | None, *,
                   note: str | None = None) -> None:
    from app.reports.models import CATEGORIES

    emit(event_type, report.community_id, subject=("report", report.id), actor_id=actor_id,
         parties={REPORTER: report.reporter_id},
         data={"title": report.location, "category": CATEGORIES[report.category],
               "amount": report.points_awarded or 0, "note": note,
               "reporter": _name(report.reporter_id)})


def activity_changed(activity, event_type: str, actor_id: int | None, people: list[int], *,
                     note: str | None = None, key: str | None = None) -> int | None:
    from app.localtime import SHANGHAI

    starts = activity.starts_at.astimezone(SHANGHAI)
    return emit(event_type, activity.community_id, subject=("activity", activity.id),
                actor_id=actor_id, parties={SIGNED_UP: people},
                data={"title": activity.title, "place": activity.place,
                      "time": starts.strftime("%H:%M"), "date": starts.date().isoformat(),
                      "note": note}, key=key)
