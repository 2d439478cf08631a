"""Volunteer activities (志愿服务参与): publish, sign up, check in, complete, service hours.

Why the counts hold under concurrent workers, on SQLite and PostgreSQL alike:
- a place is taken by `UPDATE activities SET signed_up = signed_up + 1 WHERE id = :id AND
  signed_up < capacity AND status = 'published' AND starts_at > :now`, checked by its row count,
  and a sign-up row is unique per (activity, user);
- completing is `UPDATE activities SET status = 'completed' WHERE status = 'published'`: only
  one completion wins, and each award is keyed `activity:<id>:<user>` in the ledger;
- check-ins and completion lock the activity row first (PostgreSQL; SQLite's BEGIN IMMEDIATE
  already serialises writers), so nobody is checked in after the attendance was settled.

Check-in codes (Decisions): the QR encodes `/a/<id>/checkin?t=<token>`, an itsdangerous token
bound to the activity and valid 2 minutes; under it a 6-digit code, HMAC-SHA256 of the app's
secret, the activity and a 30-second step, accepted for the current and 3 previous steps
(2 minutes). Each person may try at most 5 codes a minute, counted in the database.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import unicodedata
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from app import audit
from app.activities.models import (
    ABSENT,
    ATTENDED,
    CANCELLED,
    COMPLETED,
    PUBLISHED,
    SIGNED_UP,
    SIGNUP_CANCELLED,
    Activity,
    CheckinAttempt,
    SignUp,
)
from app.activities.transitions import check
from app.communities import access
from app.communities.models import Membership, Role
from app.db import insert_unless_present, utcnow
from app.errors import APIError, Conflict, NotFound, ValidationFailed, register_messages
from app.extensions import db
from app.i18n import N_
from app.ledger import service as ledger
from app.ledger.models import TransferKind
from app.notifications import outbox

TOKEN_SECONDS = 120          # a QR (or a screenshot of it) works for 2 minutes
SCAN_SECONDS = 120           # a scan carried through the login works 2 minutes from the scan
CODE_STEP = 30               # the 6-digit code changes every 30 seconds
CODE_STEPS_ACCEPTED = 4      # the current and the 3 previous steps: 2 minutes
ATTEMPTS_PER_MINUTE = 5
WINDOW_BEFORE = timedelta(minutes=30)
CHECKIN_SALT, SCAN_SALT = "activity-checkin", "activity-scan"
SIGNUP_ROLES = (Role.VOLUNTEER, Role.ORGANISER)  # organisers may volunteer too

register_messages({
    "activity_full": N_("该活动名额已满，请关注其他活动。"),
    "activity_started": N_("该活动已经开始，不能再{action_label}。"),
    "activity_not_started": N_("活动还没有开始，开始后才能结束并发放积分。"),
    "not_signed_up": N_("您没有报名该活动；如已到场，请联系现场工作人员为您登记。"),
    "already_checked_in": N_("您已签到，不能再取消报名；如有变化请联系社区工作人员。"),
    "checkin_closed": N_("现在不在签到时间内：签到从活动开始前 30 分钟到活动结束（{opens} 至 {closes}）。"),
    "checkin_code_invalid": N_("签到码不正确或已过期，请输入现场屏幕上最新的 6 位数字。"),
    "checkin_token_invalid": N_(
        "签到二维码已过期或无效，请重新扫描现场屏幕上最新的二维码，或输入二维码下方的 6 位数字。"),
})


# --- reading ------------------------------------------------------------------------------

def relations(activity: Activity, user_id: int) -> set[str]:
    """How the current user relates to the activity (see app/activities/transitions.py)."""
    found = set()
    if access.is_organiser(activity.community_id):
        found.add("organiser")
    member = Membership.find(activity.community_id, user_id)
    if member is not None and Role(member.role) in SIGNUP_ROLES:
        found.add("volunteer")
    return found


def find_signup(activity_id: int, user_id: int) -> SignUp | None:
    return db.session.scalar(sa.select(SignUp).where(
        SignUp.activity_id == activity_id, SignUp.user_id == user_id)
        .execution_options(populate_existing=True))


def checkin_window(activity: Activity) -> tuple[datetime, datetime]:
    return activity.starts_at - WINDOW_BEFORE, activity.ends_at


def checkin_open(activity: Activity, now: datetime | None = None) -> bool:
    opens, closes = checkin_window(activity)
    return activity.status == PUBLISHED and opens <= (now or utcnow()) <= closes


def describe(activity: Activity, user_id: int) -> dict:
    """The activity as the API shows it to `user_id` (their own sign-up included)."""
    return describe_all([activity], user_id)[0]


def describe_all(activities: list[Activity], user_id: int) -> list[dict]:
    """`describe` for a page of activities in two queries, however long the page: the user's
    sign-ups to all of them at once, and each community's points rules once."""
    now = utcnow()
    ids = [a.id for a in activities]
    mine = {s.activity_id: s for s in db.session.scalars(
        sa.select(SignUp).where(SignUp.activity_id.in_(ids), SignUp.user_id == user_id)
        .execution_options(populate_existing=True))} if ids else {}
    rules = {cid: {(r["category"], r["level"]): r["points"] for r in ledger.rules_for(cid)}
             for cid in {a.community_id for a in activities}}
    return [_describe(a, mine.get(a.id), rules[a.community_id][("activity", a.level)], now)
            for a in activities]


def _describe(activity: Activity, mine: SignUp | None, points: int, now: datetime) -> dict:
    body = {c: getattr(activity, c) for c in (
        "id", "community_id", "title", "description", "place", "starts_at", "ends_at",
        "capacity", "signed_up", "level", "hours", "status", "created_by_id", "created_at",
        "completed_at", "cancelled_at", "cancel_reason")}
    body["places_left"] = max(0, activity.capacity - activity.signed_up)
    body["points"] = points
    body["started"] = now >= activity.starts_at
    body["checkin_open"] = checkin_open(activity, now)
    body["checkin_opens_at"], body["checkin_closes_at"] = checkin_window(activity)
    body["my_signup"] = None if mine is None else signup_body(mine)
    return body


def signup_body(signup: SignUp) -> dict:
    return {"id": signup.id, "activity_id": signup.activity_id, "user_id": signup.user_id,
            "display_name": signup.user.display_name, "status": signup.status,
            "walk_in": signup.walk_in, "created_at": signup.created_at,
            "checked_in_at": signup.checked_in_at, "checked_in_by_id": signup.checked_in_by_id,
            "checkin_method": signup.checkin_method, "points_awarded": signup.points_awarded,
            "hours_credited": signup.hours_credited}


def activities_query(community_id: int, when: str = "all", status: str | None = None) -> sa.Select:
    """Upcoming (not yet ended) first, soonest first; then past ones, latest first."""
    now = utcnow()
    query = sa.select(Activity).where(Activity.community_id == community_id)
    if status:
        query = query.where(Activity.status == status)
    if when == "upcoming":
        query = query.where(Activity.ends_at >= now)
    elif when == "past":
        query = query.where(Activity.ends_at < now)
    ahead = Activity.ends_at >= now
    return query.order_by(sa.case((ahead, 0), else_=1), sa.case((ahead, Activity.starts_at)),
                          sa.case((~ahead, Activity.starts_at)).desc(), Activity.id)


def attendance_query(activity_id: int, status: str | None = None) -> sa.Select:
    query = sa.select(SignUp).where(SignUp.activity_id == activity_id)
    if status:
        query = query.where(SignUp.status == status)
    return query.order_by(SignUp.id)


def attendance_counts(activity_id: int) -> dict:
    rows = db.session.execute(sa.select(SignUp.status, sa.func.count())
                              .where(SignUp.activity_id == activity_id)
                              .group_by(SignUp.status)).all()
    counts = {status: 0 for status in (SIGNED_UP, ATTENDED, ABSENT, SIGNUP_CANCELLED)}
    counts.update({status: n for status, n in rows})
    counts["walk_in"] = db.session.scalar(sa.select(sa.func.count()).where(
        SignUp.activity_id == activity_id, SignUp.walk_in.is_(True))) or 0
    return counts


def my_signups_query(user_id: int, community_id: int | None = None,
                     status: str | None = None) -> sa.Select:
    query = sa.select(SignUp).join(Activity, Activity.id == SignUp.activity_id).where(
        SignUp.user_id == user_id)
    if community_id is not None:
        query = query.where(SignUp.community_id == community_id)
    if status:
        query = query.where(SignUp.status == status)
    return query.order_by(Activity.starts_at.desc(), SignUp.id.desc())


def service_record(community_id: int, user_id: int) -> list[SignUp]:
    """The completed activities a volunteer attended (the 志愿服务时长证明), oldest first."""
    return list(db.session.scalars(
        sa.select(SignUp).join(Activity, Activity.id == SignUp.activity_id).where(
            SignUp.community_id == community_id, SignUp.user_id == user_id,
            SignUp.status == ATTENDED, Activity.status == COMPLETED)
        .order_by(Activity.starts_at, Activity.id)))


# --- publishing, editing, cancelling ------------------------------------------------------

def _lock(activity_id: int) -> Activity:
    activity = db.session.scalar(sa.select(Activity).where(Activity.id == activity_id)
                                 .with_for_update(of=Activity)
                                 .execution_options(populate_existing=True))
    if activity is None:
        raise NotFound()
    return activity


def _check_times(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if starts_at <= now:
        raise ValidationFailed("starts_at", N_("开始时间必须晚于现在。"))
    if starts_at > now + timedelta(days=366):
        raise ValidationFailed("starts_at", N_("开始时间不能晚于一年以后。"))
    if ends_at <= starts_at:
        raise ValidationFailed("ends_at", N_("结束时间必须晚于开始时间。"))
    if ends_at - starts_at > timedelta(days=7):
        raise ValidationFailed("ends_at", N_("活动时长不能超过 7 天。"))


def create(community_id: int, data: dict, actor_id: int) -> Activity:
    now = utcnow()
    _check_times(data["starts_at"], data["ends_at"], now)
    activity = Activity(community_id=community_id, created_by_id=actor_id, created_at=now,
                        updated_at=now, status=PUBLISHED, signed_up=0, **data)
    db.session.add(activity)
    db.session.flush()
    audit.record(community_id, actor_id, "activity.published", activity_id=activity.id,
                 title=activity.title)
    return activity


def _require_not_started(activity: Activity, action: str, now: datetime) -> None:
    from app.activities.transitions import ACTION_LABELS
    from app.i18n import gettext

    if now >= activity.starts_at:
        raise Conflict("activity_started", action=action,
                       action_label=gettext(ACTION_LABELS[action]))


def update(activity_id: int, changes: dict, actor_id: int) -> Activity:
    """Edit before the start; the capacity never below the places already taken."""
    activity = _lock(activity_id)
    check(activity.status, "edit", relations(activity, actor_id))
    now = utcnow()
    _require_not_started(activity, "edit", now)
    if "starts_at" in changes or "ends_at" in changes:
        _check_times(changes.get("starts_at", activity.starts_at),
                     changes.get("ends_at", activity.ends_at), now)
    changes = {**changes, "updated_at": now}
    capacity = changes.get("capacity", activity.capacity)
    done = db.session.execute(
        sa.update(Activity).where(Activity.id == activity.id, Activity.status == PUBLISHED,
                                  Activity.signed_up <= capacity).values(**changes),
        execution_options={"synchronize_session": False}).rowcount
    if done != 1:
        raise ValidationFailed("capacity", N_("已有 {signed_up} 人报名，名额不能少于报名人数。"),
                               signed_up=activity.signed_up)
    audit.record(activity.community_id, actor_id, "activity.edited", activity_id=activity.id,
                 fields=sorted(k for k in changes if k != "updated_at"))
    return _lock(activity.id)


def cancel(activity_id: int, actor_id: int, reason: str | None = None) -> Activity:
    """Cancel before the start: every sign-up is released, and told (the outbox)."""
    activity = _lock(activity_id)
    check(activity.status, "cancel", relations(activity, actor_id))
    now = utcnow()
    _require_not_started(activity, "cancel", now)
    told = list(db.session.scalars(sa.select(SignUp.user_id).where(
        SignUp.activity_id == activity.id, SignUp.status.in_([SIGNED_UP, ATTENDED]))))
    outbox.activity_changed(activity, "activity.cancelled", actor_id, told, note=reason)
    db.session.execute(
        sa.update(SignUp).where(SignUp.activity_id == activity.id,
                                SignUp.status.in_([SIGNED_UP, ATTENDED]))
        .values(status=SIGNUP_CANCELLED, cancelled_at=now),
        execution_options={"synchronize_session": False})
    db.session.execute(
        sa.update(Activity).where(Activity.id == activity.id, Activity.status == PUBLISHED)
        .values(status=CANCELLED, cancelled_at=now, cancel_reason=reason, signed_up=0,
                updated_at=now), execution_options={"synchronize_session": False})
    audit.record(activity.community_id, actor_id, "activity.cancelled", activity_id=activity.id,
                 reason=reason)
    return _lock(activity.id)


# --- signing up ---------------------------------------------------------------------------

def _take_place(activity: Activity, now: datetime, *, before_start: bool) -> None:
    """Take one place by a conditional UPDATE; refuse in words when none could be taken."""
    condition = [Activity.id == activity.id, Activity.status == PUBLISHED,
                 Activity.signed_up < Activity.capacity]
    if before_start:
        condition.append(Activity.starts_at > now)
    taken = db.session.execute(
        sa.update(Activity).where(*condition).values(signed_up=Activity.signed_up + 1),
        execution_options={"synchronize_session": False}).rowcount
    if taken == 1:
        return
    fresh = _lock(activity.id)
    check(fresh.status, "signup", {"volunteer"})
    if before_start:
        _require_not_started(fresh, "signup", now)
    raise Conflict("activity_full")


def _give_back_place(activity_id: int) -> None:
    db.session.execute(
        sa.update(Activity).where(Activity.id == activity_id, Activity.signed_up > 0)
        .values(signed_up=Activity.signed_up - 1),
        execution_options={"synchronize_session": False})


def signup(activity_id: int, user_id: int) -> Activity:
    """Sign up (again after cancelling) while places are left and it has not started.

    Signing up twice changes nothing and answers the activity as it is."""
    activity = access.get(Activity, activity_id)
    check(activity.status, "signup", relations(activity, user_id))
    now = utcnow()
    _require_not_started(activity, "signup", now)
    existing = find_signup(activity.id, user_id)
    if existing is not None and existing.status in (SIGNED_UP, ATTENDED):
        return activity
    _take_place(activity, now, before_start=True)
    if existing is not None:
        done = db.session.execute(
            sa.update(SignUp).where(SignUp.id == existing.id,
                                    SignUp.status == SIGNUP_CANCELLED)
            .values(status=SIGNED_UP, cancelled_at=None, created_at=now),
            execution_options={"synchronize_session": False}).rowcount
    else:
        # RETURNING, not rowcount: psycopg reports no row count for ON CONFLICT DO NOTHING
        done = int(db.session.execute(insert_unless_present(db.session, SignUp, {
            "community_id": activity.community_id, "activity_id": activity.id,
            "user_id": user_id, "status": SIGNED_UP, "walk_in": False, "created_at": now},
            ["activity_id", "user_id"]).returning(SignUp.id)).scalar() is not None)
    if done != 1:  # the same person's other request signed up meanwhile
        _give_back_place(activity.id)
    return _lock(activity.id)


def cancel_signup(activity_id: int, user_id: int) -> Activity:
    activity = access.get(Activity, activity_id)
    check(activity.status, "cancel_signup", relations(activity, user_id))
    now = utcnow()
    _require_not_started(activity, "cancel_signup", now)
    done = db.session.execute(
        sa.update(SignUp).where(SignUp.activity_id == activity.id, SignUp.user_id == user_id,
                                SignUp.status == SIGNED_UP)
        .values(status=SIGNUP_CANCELLED, cancelled_at=now),
        execution_options={"synchronize_session": False}).rowcount
    if done == 1:
        _give_back_place(activity.id)
        return _lock(activity.id)
    existing = find_signup(activity.id, user_id)
    if existing is not None and existing.status == ATTENDED:
        raise Conflict("already_checked_in")
    if existing is None:
        raise Conflict("not_signed_up")
    return _lock(activity.id)  # cancelled already: nothing to do


# --- check-in codes -----------------------------------------------------------------------

class _Signer(TimestampSigner):
    """itsdangerous' timestamps, read from our clock (so tests can move it)."""

    def get_timestamp(self) -> int:
        return int(utcnow().timestamp())


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt, signer=_Signer)


def checkin_token(activity_id: int) -> str:
    """The token the QR carries: bound to the activity, valid TOKEN_SECONDS."""
    return _serializer(CHECKIN_SALT).dumps({"a": activity_id})


def token_valid(activity_id: int, token: str | None) -> bool:
    return _loads(CHECKIN_SALT, token, TOKEN_SECONDS, activity_id) is not None


def scan_ticket(activity_id: int) -> str:
    """What a valid scan leaves: signed now, so the 2 minutes count from the scan (the login
    in between does not eat into them)."""
    return _serializer(SCAN_SALT).dumps({"a": activity_id})


def ticket_valid(activity_id: int, ticket: str | None) -> bool:
    return _loads(SCAN_SALT, ticket, SCAN_SECONDS, activity_id) is not None


def _loads(salt: str, value: str | None, max_age: int, activity_id: int) -> dict | None:
    if not value or len(value) > 200:
        return None
    try:
        payload = _serializer(salt).loads(value, max_age=max_age)
    except BadData:
        return None
    if not isinstance(payload, dict) or payload.get("a") != activity_id:
        return None
    return payload


def _step(moment: datetime) -> int:
    return int(moment.timestamp()) // CODE_STEP


def _code_at(activity_id: int, step: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"activity-checkin-code:{activity_id}:{step}".encode(),
                      hashlib.sha256).digest()
    offset = digest[-1] & 0x0F  # RFC 4226's dynamic truncation
    number = int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def normalise_code(code: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", code) if not ch.isspace())


def code_valid(activity_id: int, code: str | None, now: datetime | None = None) -> bool:
    typed = normalise_code(code or "")
    if len(typed) != 6 or not typed.isascii() or not typed.isdigit():
        return False
    step = _step(now or utcnow())
    # compare every accepted step (no early exit): the time taken says nothing
    return bool(sum(hmac.compare_digest(typed, _code_at(activity_id, step - back))
                    for back in range(CODE_STEPS_ACCEPTED)))


def checkin_code(activity: Activity) -> dict:
    """What the organiser's screen shows now: the QR's URL (a fresh token) and the code."""
    now = utcnow()
    step = _step(now)
    token = checkin_token(activity.id)
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    rotates_at = datetime.fromtimestamp((step + 1) * CODE_STEP, now.tzinfo)
    return {"activity_id": activity.id, "code": _code_at(activity.id, step), "token": token,
            "url": f"{base}/a/{activity.id}/checkin?t={token}",
            "valid_until": now + timedelta(seconds=TOKEN_SECONDS),
            "code_valid_until": rotates_at + timedelta(
                seconds=CODE_STEP * (CODE_STEPS_ACCEPTED - 1)),
            "refresh_at": rotates_at,
            "refresh_seconds": max(1, math.ceil((rotates_at - now).total_seconds())),
            "checkin_open": checkin_open(activity, now)}


# --- checking in --------------------------------------------------------------------------

def _require_window(activity: Activity, now: datetime) -> None:
    from app.localtime import SHANGHAI

    opens, closes = checkin_window(activity)
    if not opens <= now <= closes:
        fmt = "%m-%d %H:%M"
        raise Conflict("checkin_closed", opens=opens.astimezone(SHANGHAI).strftime(fmt),
                       closes=closes.astimezone(SHANGHAI).strftime(fmt))


def _count_attempt(activity: Activity, user_id: int, now: datetime) -> None:
    """Record this try and commit it (it must outlive a refused request), then count: the
    sixth try within a minute is refused with 429 and when to try again.

    Insert-then-count: whatever the interleaving, the sixth to commit sees six."""
    # this person's tries older than the minute count no more: the table stays small
    db.session.execute(sa.delete(CheckinAttempt).where(
        CheckinAttempt.user_id == user_id,
        CheckinAttempt.created_at <= now - timedelta(seconds=60)))
    db.session.add(CheckinAttempt(community_id=activity.community_id, activity_id=activity.id,
                                  user_id=user_id, created_at=now))
    db.session.commit()
    recent = list(db.session.scalars(
        sa.select(CheckinAttempt.created_at).where(
            CheckinAttempt.user_id == user_id,
            CheckinAttempt.created_at > now - timedelta(seconds=60))
        .order_by(CheckinAttempt.created_at)))
    if len(recent) > ATTEMPTS_PER_MINUTE:
        # the next try is allowed once all but the newest four have left the minute
        frees_at = recent[len(recent) - ATTEMPTS_PER_MINUTE] + timedelta(seconds=60)
        retry = max(1, math.ceil((frees_at - now).total_seconds()))
        raise APIError("rate_limited", 429, headers={"Retry-After": str(retry)},
                       retry_after=retry)


def checkin(activity_id: int, user_id: int, *, code: str | None = None,
            token: str | None = None, ticket: str | None = None) -> SignUp:
    """A signed-up volunteer checks themself in with the QR's token (or a scan ticket carried
    through the login) or the 6-digit code, inside the window; at most 5 tries a minute."""
    activity = access.get(Activity, activity_id)
    check(activity.status, "checkin", relations(activity, user_id))
    now = utcnow()
    _require_window(activity, now)
    existing = find_signup(activity.id, user_id)
    if existing is None or existing.status not in (SIGNED_UP, ATTENDED):
        raise Conflict("not_signed_up")
    if existing.status == ATTENDED:
        return existing
    _count_attempt(activity, user_id, now)
    if code is not None:
        method = "code"
        if not code_valid(activity.id, code, now):
            raise Conflict("checkin_code_invalid")
    else:
        method = "qr"
        valid = token_valid(activity.id, token) if token is not None else ticket_valid(
            activity.id, ticket)
        if not valid:
            raise Conflict("checkin_token_invalid")
    return _attend(activity.id, user_id, user_id, method)


def _attend(activity_id: int, user_id: int, actor_id: int, method: str) -> SignUp:
    """Mark a sign-up attended under the activity's lock (re-checking it is still open)."""
    activity = _lock(activity_id)
    check(activity.status, "checkin" if actor_id == user_id else "mark_present",
          {"volunteer", "organiser"})
    now = utcnow()
    db.session.execute(
        sa.update(SignUp).where(SignUp.activity_id == activity.id, SignUp.user_id == user_id,
                                SignUp.status == SIGNED_UP)
        .values(status=ATTENDED, checked_in_at=now, checked_in_by_id=actor_id,
                checkin_method=method), execution_options={"synchronize_session": False})
    signup = find_signup(activity.id, user_id)
    if signup is None or signup.status != ATTENDED:
        raise Conflict("not_signed_up")
    return signup


def mark_present(activity_id: int, user_id: int, organiser_id: int) -> SignUp:
    """An organiser marks someone present: a sign-up, or a walk-in who did not sign up
    (counted as attended, capacity permitting). From 30 minutes before the start until the
    activity is completed (attendance may be put right after the end)."""
    activity = _lock(activity_id)
    check(activity.status, "mark_present", relations(activity, organiser_id))
    now = utcnow()
    if now < activity.starts_at - WINDOW_BEFORE:
        _require_window(activity, now)
    access.require_member(activity.community_id, user_id, "user_id", *SIGNUP_ROLES)
    existing = find_signup(activity.id, user_id)
    if existing is not None and existing.status == ATTENDED:
        return existing
    if existing is None or existing.status == SIGNUP_CANCELLED:
        _take_place(activity, now, before_start=False)
        if existing is None:
            db.session.execute(insert_unless_present(db.session, SignUp, {
                "community_id": activity.community_id, "activity_id": activity.id,
                "user_id": user_id, "status": SIGNED_UP, "walk_in": True, "created_at": now},
                ["activity_id", "user_id"]))
        else:
            db.session.execute(
                sa.update(SignUp).where(SignUp.id == existing.id,
                                        SignUp.status == SIGNUP_CANCELLED)
                .values(status=SIGNED_UP, walk_in=True, cancelled_at=None),
                execution_options={"synchronize_session": False})
    signup = _attend(activity.id, user_id, organiser_id, "organiser")
    audit.record(activity.community_id, organiser_id, "activity.marked_present",
                 subject_user_id=user_id, activity_id=activity.id, walk_in=signup.walk_in)
    return signup


# --- completing ---------------------------------------------------------------------------

def award_key(activity_id: int, user_id: int) -> str:
    return f"activity:{activity_id}:{user_id}"


def complete(activity_id: int, actor_id: int) -> Activity:
    """After the start: each attendee earns the rule points (once: the conditional status
    UPDATE lets one completion through, and the ledger key is unique) and the service hours;
    whoever is still only signed up is recorded absent and earns nothing."""
    activity = access.get(Activity, activity_id)
    check(activity.status, "complete", relations(activity, actor_id))
    now = utcnow()
    if now < activity.starts_at:
        raise Conflict("activity_not_started")
    won = db.session.execute(
        sa.update(Activity).where(Activity.id == activity.id, Activity.status == PUBLISHED,
                                  Activity.starts_at <= now)
        .values(status=COMPLETED, completed_at=now, completed_by_id=actor_id, updated_at=now),
        execution_options={"synchronize_session": False}).rowcount
    activity = _lock(activity.id)
    if won != 1:  # another completion (or a cancel) got there first
        check(activity.status, "complete", {"organiser"})
    db.session.execute(
        sa.update(SignUp).where(SignUp.activity_id == activity.id, SignUp.status == SIGNED_UP)
        .values(status=ABSENT, points_awarded=0, points_capped=0, half_hours_credited=0),
        execution_options={"synchronize_session": False})
    points = ledger.points_for(activity.community_id, "activity", activity.level)
    attendees = db.session.scalars(
        sa.select(SignUp).where(SignUp.activity_id == activity.id, SignUp.status == ATTENDED)
        .order_by(SignUp.user_id).execution_options(populate_existing=True)).all()
    for signup in attendees:
        signup.half_hours_credited = activity.half_hours
        signup.points_awarded, signup.points_capped = 0, 0
        if points > 0:
            posting = ledger.transfer(
                activity.community_id, ledger.issuance_account(activity.community_id),
                ledger.user_account(activity.community_id, signup.user_id), points,
                TransferKind.EARN_ACTIVITY, award_key(activity.id, signup.user_id),
                memo=f"志愿服务：{activity.title}"[:200], actor_id=actor_id)
            signup.points_awarded = posting.transfer.amount
            signup.points_capped = posting.capped
    db.session.flush()
    audit.record(activity.community_id, actor_id, "activity.completed", activity_id=activity.id,
                 attended=len(attendees), points_each=points)
    return activity


# --- service hours (志愿时长) --------------------------------------------------------------

# Built once (every points read runs the first): composing costs more than running it.
_HALF_HOURS = (sa.select(sa.func.coalesce(sa.func.sum(SignUp.half_hours_credited), 0))
               .join(Activity, Activity.id == SignUp.activity_id)
               .where(SignUp.user_id == sa.bindparam("user"), SignUp.status == ATTENDED,
                      Activity.status == COMPLETED))
_HALF_HOURS_IN = _HALF_HOURS.where(SignUp.community_id == sa.bindparam("community"))


def service_hours(community_id: int | None, user_id: int) -> float:
    """Hours credited to a volunteer by completed activities, in one community or (None) all."""
    if community_id is None:
        half_hours = db.session.scalar(_HALF_HOURS, {"user": user_id})
    else:
        half_hours = db.session.scalar(_HALF_HOURS_IN, {"user": user_id,
                                                        "community": community_id})
    return int(half_hours or 0) / 2


ledger.SERVICE_HOURS.append(service_hours)
