"""Problem reports (随手拍 / 社情民意收集): 发现—分办—处置—反馈.

A volunteer (or a resident, where the community allows it) files a report; an organiser accepts
it with a level (the reporter earns the rule points through the ledger, key
`report:<id>:award`), rejects it, or marks it a duplicate; an accepted report is assigned and
then resolved with a note the reporter sees. Every action locks the report row first (`SELECT …
FOR UPDATE` on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) and asks the
transition table, so of two accepts racing the second finds it accepted and gets 409; the
ledger key would refuse a second award anyway.
"""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import event

from app import audit, storage
from app.auth.models import User
from app.communities import access
from app.communities.models import Role
from app.db import change_community_settings, community_settings, utcnow
from app.errors import Forbidden, NotFound, ValidationFailed, register_messages
from app.extensions import db
from app.i18n import N_, gettext
from app.ledger import service as ledger
from app.ledger.models import TransferKind
from app.notifications import outbox
from app.reports import transitions as lifecycle
from app.reports.models import CATEGORIES, Report, ReportEvent, ReportSettings
from app.reports.photos import CleanPhoto

register_messages({
    "residents_may_not_report": N_("本社区暂未开放居民上报，请联系社区志愿者或工作人员反映问题。"),
})

NEAR_DUPLICATE_WINDOW = timedelta(hours=24)
DEFAULT_SETTINGS = {"residents_may_report": False}
_SPACES = re.compile(r"\s+")


# --- settings -----------------------------------------------------------------------------

def settings_for(community_id: int) -> dict:
    return community_settings(db.session, ReportSettings, community_id, DEFAULT_SETTINGS)


def update_settings(community_id: int, changes: dict, actor_id: int) -> dict:
    audit.record(community_id, actor_id, "report.settings", **changes)
    return change_community_settings(db.session, ReportSettings, community_id,
                                     DEFAULT_SETTINGS, changes)


# --- who may do what ----------------------------------------------------------------------

def relations(report: Report, user: User) -> set[str]:
    found: set[str] = set()
    if report.reporter_id == user.id:
        found.add("reporter")
    if access.role_of(report.community_id, user) == Role.ORGANISER:
        found.add("organiser")
    return found


def may_see_all(community_id: int, user: User) -> bool:
    return access.role_of(community_id, user) == Role.ORGANISER


def load_visible(report_id: int, user: User) -> Report:
    """A report its reporter or an organiser of its community may see; others 404 (members of
    the community who did not file it, like strangers: a report may name neighbours)."""
    report = access.load(Report, report_id)
    if report.reporter_id != user.id and not may_see_all(report.community_id, user):
        raise NotFound()
    return report


def require_may_file(community_id: int, user: User) -> None:
    """Volunteers and organisers may file; residents where the community allows it; 404 others."""
    member = access.require(community_id)
    if member is None or member.role != Role.RESIDENT:
        return
    if not settings_for(community_id)["residents_may_report"]:
        raise Forbidden("residents_may_not_report")


# --- filing -------------------------------------------------------------------------------

def release_before_upload() -> None:
    """End the request's transaction (nothing is written yet) before reading and decoding a
    photo: on SQLite a write request's transaction holds the database's one write lock, and
    a 10 MB body from a phone on a slow network must not keep every other writer waiting.
    The next query begins the transaction the report is written in."""
    db.session.rollback()


def location_key(location: str) -> str:
    return _SPACES.sub(" ", location).strip()


def file_report(community_id: int, reporter: User, data: dict,
                photo: CleanPhoto | None = None) -> Report:
    """File a report (the caller checked `require_may_file`); flag a near-identical one."""
    now = utcnow()
    key = location_key(data["location"])
    earlier = db.session.scalar(
        sa.select(Report.id).where(
            Report.community_id == community_id, Report.reporter_id == reporter.id,
            Report.category == data["category"], Report.location_key == key,
            Report.created_at >= now - NEAR_DUPLICATE_WINDOW)
        .order_by(Report.id.desc()).limit(1))
    report = Report(community_id=community_id, reporter_id=reporter.id,
                    category=data["category"], description=data["description"],
                    location=data["location"], location_key=key, status=lifecycle.PENDING,
                    possible_duplicate_of=earlier, created_at=now, updated_at=now)
    db.session.add(report)
    db.session.flush()
    if photo is not None:
        _attach_photo(report, photo)
    _event(report, reporter, "file", None, lifecycle.PENDING)
    outbox.report_changed(report, "report.filed", reporter.id)
    db.session.flush()
    return report


def _attach_photo(report: Report, photo: CleanPhoto) -> None:
    """Store the photo after the row exists, and delete it again unless the transaction
    commits: a request failing after this leaves no file behind."""
    key = storage.new_key(f"reports/{report.community_id}", photo.extension)
    storage.store().put(key, photo.content)
    _delete_unless_committed(key)
    report.photo_key, report.photo_type = key, photo.content_type
    report.photo_bytes = len(photo.content)
    report.photo_width, report.photo_height = photo.width, photo.height


def _delete_unless_committed(key: str) -> None:
    session = db.session()
    root = session.get_transaction()
    while root is not None and root.parent is not None:
        root = root.parent
    store = storage.store()
    state = {"committed": False, "done": False}

    def committed(_session):
        state["committed"] = True

    def ended(_session, transaction):
        if transaction is root and not state["done"]:
            state["done"] = True
            if not state["committed"]:
                store.delete(key)

    event.listen(session, "after_commit", committed)
    event.listen(session, "after_transaction_end", ended)


# --- the lifecycle ------------------------------------------------------------------------

def lock(report_id: int) -> Report:
    report = db.session.scalar(
        sa.select(Report).where(Report.id == report_id).with_for_update(of=Report)
        .execution_options(populate_existing=True))
    if report is None:
        raise NotFound()
    return report


def act(report_id: int, action: str, actor: User, **payload) -> Report:
    """Take `action` on a report as `actor`, under a row lock; see the transition table."""
    report = lock(report_id)
    transition = lifecycle.check(report.status, action, relations(report, actor))
    before = report.status
    note = ACTIONS[action](report, actor, **payload)
    report.status = transition.to
    report.updated_at = utcnow()
    _event(report, actor, action, before, transition.to, note=note)
    if action in outbox.REPORT_ACTIONS:
        outbox.report_changed(report, outbox.REPORT_ACTIONS[action], actor.id, note=note)
    audit.record(report.community_id, actor.id, f"report.{action}",
                 subject_user_id=report.reporter_id, report_id=report.id, note=note)
    db.session.flush()
    return report


def _accept(report: Report, actor: User, level: int) -> str:
    report.level = level
    report.accepted_at = utcnow()
    points = ledger.points_for(report.community_id, "report", level)
    report.points_awarded, report.points_capped = 0, 0
    if points > 0:  # a rule of 0 posts nothing (transfer() moves positive amounts only)
        posting = ledger.transfer(
            report.community_id, ledger.issuance_account(report.community_id),
            ledger.user_account(report.community_id, report.reporter_id), points,
            TransferKind.EARN_REPORT, f"report:{report.id}:award",
            memo=f"随手拍：{gettext(CATEGORIES[report.category])} {report.location}"[:200],
            actor_id=actor.id)
        report.points_awarded = posting.transfer.amount
        report.points_capped = posting.capped
    return gettext("等级 {level}，{points} 积分").format(level=level, points=report.points_awarded)


def _reject(report: Report, _actor: User, reason: str) -> str:
    report.reject_reason = reason
    return reason


def _duplicate(report: Report, _actor: User, of: int) -> str:
    original = db.session.get(Report, of)
    if original is None or original.community_id != report.community_id:
        raise ValidationFailed("of", N_("必须是本社区的另一条上报。"))
    if original.id == report.id:
        raise ValidationFailed("of", N_("不能标记为与自己重复。"))
    if original.status == lifecycle.DUPLICATE:
        raise ValidationFailed("of", N_("这条上报本身已标记为重复，请选择最初的那一条（#{id}）。"),
                               id=original.duplicate_of or original.id)
    report.duplicate_of = original.id
    return gettext("与 #{id} 重复").format(id=original.id)


def _assign(report: Report, _actor: User, to: str) -> str:
    report.assigned_to = to
    return gettext("分办给 {to}").format(to=to)


def _resolve(report: Report, _actor: User, note: str) -> str:
    report.resolution_note = note
    report.resolved_at = utcnow()
    return note


ACTIONS = {"accept": _accept, "reject": _reject, "duplicate": _duplicate, "assign": _assign,
           "resolve": _resolve}


def _event(report: Report, actor: User | None, action: str, before: str | None, after: str, *,
           note: str | None = None) -> None:
    db.session.add(ReportEvent(report_id=report.id, community_id=report.community_id,
                               actor_id=actor.id if actor else None, action=action,
                               from_status=before, to_status=after,
                               note=note[:500] if note else None, created_at=utcnow()))


# --- reading ------------------------------------------------------------------------------

def list_query(community_id: int, user: User, filters: dict) -> sa.Select:
    """Organisers see every report of the community; others only their own. Pending first."""
    query = sa.select(Report).where(Report.community_id == community_id)
    if filters.get("mine") or not may_see_all(community_id, user):
        query = query.where(Report.reporter_id == user.id)
    for key in ("status", "category"):
        if filters.get(key) is not None:
            query = query.where(getattr(Report, key) == filters[key])
    if filters.get("possible_duplicate") is not None:
        flagged = Report.possible_duplicate_of.is_not(None)
        query = query.where(flagged if filters["possible_duplicate"] else ~flagged)
    return query.order_by(sa.case((Report.status == lifecycle.PENDING, 0), else_=1),
                          Report.id.desc())


def present(report: Report) -> dict:
    body = {c: getattr(report, c) for c in (
        "id", "community_id", "reporter_id", "category", "description", "location", "status",
        "level", "points_awarded", "points_capped", "assigned_to", "resolution_note",
        "reject_reason", "duplicate_of", "possible_duplicate_of", "photo_width", "photo_height",
        "created_at", "updated_at", "accepted_at", "resolved_at")}
    body.update({
        "reporter_name": report.reporter.display_name,
        "category_label": gettext(CATEGORIES[report.category]),
        "status_label": gettext(lifecycle.STATUS_LABELS[report.status]),
        "has_photo": report.photo_key is not None,
        "photo_url": f"/api/v1/reports/{report.id}/photo" if report.photo_key else None,
    })
    return body


def timeline(report: Report) -> list[dict]:
    events = db.session.scalars(sa.select(ReportEvent).where(ReportEvent.report_id == report.id)
                                .order_by(ReportEvent.id))
    return [{"action": e.action, "action_label": gettext(lifecycle.ACTION_LABELS[e.action]),
             "from_status": e.from_status, "to_status": e.to_status, "actor_id": e.actor_id,
             "actor_name": e.actor.display_name if e.actor else gettext("系统"),
             "note": e.note, "created_at": e.created_at} for e in events]


def detail(report: Report) -> dict:
    return {**present(report), "timeline": timeline(report)}


def open_photo(report: Report):
    """The stored photo's file, or 404 when the report has none (or the file is gone)."""
    if report.photo_key is None:
        raise NotFound()
    try:
        return storage.store().open(report.photo_key)
    except FileNotFoundError:
        raise NotFound() from None


def categories() -> list[dict]:
    return [{"slug": slug, "label": gettext(label)} for slug, label in CATEGORIES.items()]
