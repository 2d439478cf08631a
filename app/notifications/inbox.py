"""Each person's inbox: notifications rendered when read, in the reader's language."""

from __future__ import annotations

import string

import sqlalchemy as sa

from app.db import paginate, utcnow
from app.extensions import db
from app.i18n import gettext
from app.notifications.catalogue import EVENT_TYPES, ORGANISERS
from app.notifications.models import Event, Notification, NotificationMute

# Values in an event's data that are themselves Chinese msgids (labels) to translate.
TRANSLATED = ("category",)


class _Blank(dict):
    def __missing__(self, key):  # an older event without a newer placeholder shows nothing
        return ""


_formatter = string.Formatter()


def render(event: Event) -> str:
    """The event's line in the request's language, from its data snapshot."""
    spec = EVENT_TYPES.get(event.type)
    if spec is None:
        return event.type
    params = _Blank(event.data or {})
    for name in TRANSLATED:
        if params.get(name):
            params[name] = gettext(params[name])
    return _formatter.vformat(gettext(spec.text), (), params)


def label(event_type: str) -> str:
    spec = EVENT_TYPES.get(event_type)
    return gettext(spec.label) if spec else event_type


def link(event: Event, user_id: int) -> str | None:
    """The page a notification opens (the phone pages' paths)."""
    kind, oid = event.subject_type, event.subject_id
    if kind == "wish":
        if event.type in ("wish.posted",) and event.actor_id != user_id:
            return "/organiser/review"
        if event.type == "wish.escalated":
            return "/organiser/dispatch"
        return f"/wishes/{oid}"
    if kind == "redemption":
        if event.type == "redemption.created" and _is_staff_copy(event, user_id):
            return "/organiser/pickup"
        return f"/store/redemptions/{oid}"
    if kind == "report":
        if event.type == "report.filed":
            return "/organiser/reports"
        return f"/reports/{oid}"
    if kind == "activity":
        return f"/activities/{oid}"
    if kind in ("transfer", "account"):
        return "/me/points"
    return None


def _is_staff_copy(event: Event, user_id: int) -> bool:
    return ORGANISERS in EVENT_TYPES[event.type].recipients and (
        (event.data or {}).get("holder_id") != user_id)


def present(note: Notification) -> dict:
    event = note.event
    return {"id": note.id, "event_id": event.id, "type": event.type,
            "label": label(event.type), "text": render(event),
            "community_id": event.community_id,
            "object": ({"type": event.subject_type, "id": event.subject_id}
                       if event.subject_type else None),
            "link": link(event, note.user_id), "read": note.read_at is not None,
            "read_at": note.read_at, "created_at": note.created_at}


def unread_count(user_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)))


def page(user_id: int, *, unread: bool | None = None, after: int | None = None,
         page_number: int = 1, per_page: int = 20) -> dict:
    """Newest first; `after` (the last id seen) continues by keyset, `next_after` is the next."""
    query = sa.select(Notification).where(Notification.user_id == user_id)
    if unread is True:
        query = query.where(Notification.read_at.is_(None))
    elif unread is False:
        query = query.where(Notification.read_at.is_not(None))
    if after:
        query = query.where(Notification.id < after)
        page_number = 1
    result = paginate(db.session, query.order_by(Notification.id.desc()), page_number, per_page)
    items = [present(n) for n in result["items"]]
    more = len(items) == per_page and result["total"] > page_number * per_page
    return {**result, "items": items, "next_after": items[-1]["id"] if more else None,
            "unread_count": unread_count(user_id)}


def mark_read(user_id: int, ids: list[int] | None = None, everything: bool = False) -> int:
    """Mark the caller's own notifications read (others' ids are simply not theirs)."""
    statement = sa.update(Notification).where(Notification.user_id == user_id,
                                              Notification.read_at.is_(None))
    if not everything:
        statement = statement.where(Notification.id.in_(ids or []))
    return db.session.execute(statement.values(read_at=utcnow()),
                              execution_options={"synchronize_session": False}).rowcount


def muted(user_id: int) -> list[str]:
    return sorted(db.session.scalars(sa.select(NotificationMute.event_type).where(
        NotificationMute.user_id == user_id)))


def set_muted(user_id: int, types: list[str]) -> list[str]:
    db.session.execute(sa.delete(NotificationMute).where(NotificationMute.user_id == user_id))
    for event_type in sorted(set(types)):
        db.session.add(NotificationMute(user_id=user_id, event_type=event_type))
    db.session.flush()
    return muted(user_id)


def settings(user_id: int) -> dict:
    off = set(muted(user_id))
    return {"muted": sorted(off), "types": [
        {"type": name, "label": label(name), "muted": name in off} for name in EVENT_TYPES]}
