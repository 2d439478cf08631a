"""Pages: volunteer activities, sign-up, check-in by scanning, the organiser's check-in screen.

The QR on the organiser's screen opens `/a/<id>/checkin?t=<token>`. That GET never checks
anyone in: it verifies the token and turns it into a scan ticket signed at the moment of the
scan; a visitor who must log in first carries the ticket through `/login?next=…`, so the
2 minutes count from the scan, not from the end of the login. The check-in itself is the POST
of the confirm button (POST → 303 → GET).
"""

from __future__ import annotations

import base64

from flask import flash, g, jsonify, request
from flask_jwt_extended import current_user

from app import qr
from app.activities import service
from app.activities.models import ATTENDED, PUBLISHED, SIGNED_UP, Activity
from app.activities.schemas import ActivityEditFormSchema, ActivityFormSchema, CancelActivitySchema
from app.activities.transitions import STATUS_LABELS
from app.auth.models import User
from app.communities import access
from app.communities.models import Membership, Role
from app.db import paginate, utcnow
from app.errors import APIError, message_for
from app.extensions import db
from app.i18n import N_, gettext
from app.localtime import SHANGHAI
from app.web import session
from app.web.forms import Form, parse
from app.web.pages import (
    login_url,
    page_arg,
    page_blueprint,
    render,
    role_required,
    see_other,
)

bp = page_blueprint("activity_pages", __name__)

PER_PAGE = 20
MEMBERS = (Role.RESIDENT, Role.VOLUNTEER, Role.ORGANISER)
SIGNUP_LABELS = {"signed_up": N_("已报名"), "cancelled": N_("已取消报名"),
                 "attended": N_("已签到"), "absent": N_("未到场")}
# Activity and sign-up states drawn with the site's existing badges.
BADGES = {"published": "open", "completed": "closed", "cancelled": "cancelled",
          "signed_up": "open", "attended": "closed", "absent": "rejected"}
FIELD_LABELS = {"title": N_("活动名称"), "description": N_("活动内容"), "place": N_("地点"),
                "starts_at": N_("开始时间"), "ends_at": N_("结束时间"), "capacity": N_("名额"),
                "level": N_("活动等级"), "hours": N_("志愿时长（小时）")}
LEVELS = [(n, N_("{n} 级")) for n in range(1, 6)]


def _context(**extra) -> dict:
    return {"status_labels": STATUS_LABELS, "signup_labels": SIGNUP_LABELS, "badges": BADGES,
            **extra}


def _pages(total: int) -> int:
    return max(1, -(-total // PER_PAGE))


# --- volunteers: the list and one activity -------------------------------------------------

@bp.get("/activities")
@role_required(*MEMBERS)
def index():
    """The community's activities: upcoming first (soonest first), then past ones."""
    page_number = page_arg()
    result = paginate(db.session, service.activities_query(g.community.id), page_number, PER_PAGE)
    items = service.describe_all(result["items"], current_user.id)
    return render("activities/index.html", **_context(
        items=items, page=page_number, pages=_pages(result["total"]), role=g.role))


def _activity_page(activity_id: int, status: int = 200, refusal: str | None = None):
    activity = access.load(Activity, activity_id)
    body = service.describe(activity, current_user.id)
    member = Membership.find(activity.community_id, current_user.id)
    can_volunteer = member is not None and Role(member.role) in service.SIGNUP_ROLES
    return render("activities/activity.html", status, **_context(
        a=body, can_volunteer=can_volunteer, refusal=refusal,
        organiser=access.is_organiser(activity.community_id)))


@bp.get("/activities/<int:activity_id>")
@role_required(*MEMBERS)
def activity(activity_id: int):
    return _activity_page(activity_id)


def _act(activity_id: int, action, done: str):
    """Run a volunteer's action; a refusal shows the activity again with the reason."""
    found = access.load(Activity, activity_id, *service.SIGNUP_ROLES)
    try:
        action(found.id, current_user.id)
    except APIError as error:
        if error.status_code not in (409, 429):
            raise
        db.session.rollback()
        return _activity_page(activity_id, error.status_code,
                              refusal=message_for(error.slug, **error.params))
    flash(gettext(done), "success")
    return see_other("activity_pages.activity", activity_id=activity_id)


@bp.post("/activities/<int:activity_id>/signup")
@role_required(Role.VOLUNTEER, Role.ORGANISER)
def signup(activity_id: int):
    return _act(activity_id, service.signup, N_("报名成功！请按时到场，现场扫码签到。"))


@bp.post("/activities/<int:activity_id>/cancel-signup")
@role_required(Role.VOLUNTEER, Role.ORGANISER)
def cancel_signup(activity_id: int):
    return _act(activity_id, service.cancel_signup, N_("已取消报名，名额已让给其他志愿者。"))


# --- checking in: the scanned QR and the typed code ----------------------------------------

@bp.get("/a/<int:activity_id>/checkin")
def scan(activity_id: int):
    """What the QR opens. Verifies the token (or a scan ticket after the login) and shows a
    confirm button; changes nothing."""
    token, ticket = request.args.get("t"), request.args.get("s")
    if token is not None:
        if db.session.get(Activity, activity_id) is None or not service.token_valid(activity_id, token):
            return _scan_refused(activity_id)
        ticket = service.scan_ticket(activity_id)  # the 2 minutes start now, at the scan
    elif ticket is None or not service.ticket_valid(activity_id, ticket):
        return _scan_refused(activity_id)
    if session.person() is None:  # the ticket, not the token, goes through the login
        return see_other(url=login_url(f"/a/{activity_id}/checkin?s={ticket}"))
    found = access.load(Activity, activity_id)
    body = service.describe(found, current_user.id)
    return render("activities/scan.html", **_context(a=body, ticket=ticket))


def _scan_refused(activity_id: int, status: int = 409, message: str | None = None):
    return render("activities/scan.html", status, **_context(
        a=None, activity_id=activity_id, ticket=None,
        refusal=message or message_for("checkin_token_invalid")))


@bp.post("/a/<int:activity_id>/checkin")
@role_required(Role.VOLUNTEER, Role.ORGANISER)
def scan_confirm(activity_id: int):
    found = access.load(Activity, activity_id, *service.SIGNUP_ROLES)
    try:
        service.checkin(found.id, current_user.id, ticket=request.form.get("s", ""))
    except APIError as error:
        if error.status_code not in (409, 429):
            raise
        db.session.rollback()
        return _scan_refused(activity_id, error.status_code, message_for(error.slug, **error.params))
    flash(gettext("签到成功！活动结束后，积分和志愿时长会记到您的账户。"), "success")
    return see_other("activity_pages.activity", activity_id=activity_id)


def _open_for_me() -> list[dict]:
    """My sign-ups whose check-in is open now (the activities a typed code can be for)."""
    rows = db.session.scalars(service.my_signups_query(
        current_user.id, g.community.id, SIGNED_UP)).all()
    now = utcnow()
    return service.describe_all([s.activity for s in rows
                                 if service.checkin_open(s.activity, now)], current_user.id)


@bp.route("/activities/checkin", methods=["GET", "POST"])
@role_required(Role.VOLUNTEER, Role.ORGANISER)
def checkin_by_code():
    """Check in by typing the 6 digits shown under the QR."""
    choices = _open_for_me()
    if request.method == "GET":
        return render("activities/code.html", **_context(choices=choices, form=None))
    form = Form(values={"code": request.form.get("code", ""),
                        "activity_id": request.form.get("activity_id", "")})
    chosen = next((c for c in choices if str(c["id"]) == form.values["activity_id"]), None)
    if chosen is None:
        form.error("activity_id", gettext("请选择要签到的活动。"))
    if not form.values["code"].strip():
        form.error("code", gettext("请填写二维码下方的 6 位数字。"))
    if not form.ok:
        return render("activities/code.html", 422, **_context(choices=choices, form=form))
    try:
        service.checkin(chosen["id"], current_user.id, code=form.values["code"])
    except APIError as error:
        if error.status_code not in (409, 429):
            raise
        db.session.rollback()
        form.error("code", message_for(error.slug, **error.params))
        return render("activities/code.html", error.status_code,
                      **_context(choices=_open_for_me(), form=form))
    flash(gettext("签到成功！活动结束后，积分和志愿时长会记到您的账户。"), "success")
    return see_other("activity_pages.activity", activity_id=chosen["id"])


# --- the certificate (志愿服务时长证明) ------------------------------------------------------

@bp.get("/me/service-hours")
@role_required(*MEMBERS)
def certificate():
    rows = service.service_record(g.community.id, current_user.id)
    total = sum(r.half_hours_credited or 0 for r in rows) / 2
    return render("activities/certificate.html", rows=rows, total=total,
                  community=g.community, volunteer=current_user, today=utcnow())


# --- organisers ----------------------------------------------------------------------------

@bp.get("/organiser/activities")
@role_required(Role.ORGANISER)
def organiser_index():
    page_number = page_arg()
    result = paginate(db.session, service.activities_query(g.community.id), page_number, PER_PAGE)
    items = service.describe_all(result["items"], current_user.id)
    return render("activities/organiser_index.html", **_context(
        items=items, page=page_number, pages=_pages(result["total"])))


def _form_page(status: int = 200, *, form=None, activity=None, values=None, refusal=None):
    return render("activities/form.html", status, **_context(
        form=form, a=activity, values=values or {}, labels=FIELD_LABELS,
        levels=[(n, gettext(label).format(n=n)) for n, label in LEVELS], refusal=refusal))


def _local_input(moment) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _parse(schema, keep=None):
    """The API's own schema on the form (level and capacity typed as digits)."""
    return parse(schema, keep=keep)


@bp.route("/organiser/activities/new", methods=["GET", "POST"])
@role_required(Role.ORGANISER)
def new():
    if request.method == "GET":
        return _form_page(values={"level": "1", "hours": "2", "capacity": "10"})
    data, form = _parse(ActivityFormSchema())
    if data is None:
        return _form_page(422, form=form)
    try:
        created = service.create(g.community.id, data, current_user.id)
    except APIError as error:
        if error.status_code != 422:
            raise
        db.session.rollback()
        for name, messages in (error.errors or {}).items():
            for message in messages:
                form.error(name, message)
        return _form_page(422, form=form)
    flash(gettext("活动已发布，志愿者现在可以报名了。"), "success")
    return see_other("activity_pages.manage", activity_id=created.id)


def _manage_page(activity_id: int, status: int = 200, *, form=None, refusal=None):
    found = access.load(Activity, activity_id, Role.ORGANISER)
    body = service.describe(found, current_user.id)
    values = {"title": found.title, "description": found.description, "place": found.place,
              "starts_at": _local_input(found.starts_at), "ends_at": _local_input(found.ends_at),
              "capacity": str(found.capacity), "level": str(found.level),
              "hours": f"{found.hours:g}"}
    attendance = db.session.scalars(service.attendance_query(found.id)).all()
    return render("activities/manage.html", status, **_context(
        a=body, form=form, values=values, labels=FIELD_LABELS, refusal=refusal,
        levels=[(n, gettext(label).format(n=n)) for n, label in LEVELS],
        attendance=attendance, counts=service.attendance_counts(found.id),
        editable=found.status == PUBLISHED and not body["started"]))


@bp.route("/organiser/activities/<int:activity_id>", methods=["GET", "POST"])
@role_required(Role.ORGANISER)
def manage(activity_id: int):
    """Edit (before the start), cancel, complete; who signed up and who came."""
    if request.method == "GET":
        return _manage_page(activity_id)
    found = access.load(Activity, activity_id, Role.ORGANISER)
    data, form = _parse(ActivityEditFormSchema())
    if data is None:
        return _manage_page(activity_id, 422, form=form)
    try:
        service.update(found.id, data, current_user.id)
    except APIError as error:
        if error.status_code not in (409, 422):
            raise
        db.session.rollback()
        for name, messages in (error.errors or {}).items():
            if name != "status":
                for message in messages:
                    form.error(name, message)
        refusal = message_for(error.slug, **error.params) if error.status_code == 409 else None
        return _manage_page(activity_id, error.status_code, form=form, refusal=refusal)
    flash(gettext("活动已修改。"), "success")
    return see_other("activity_pages.manage", activity_id=activity_id)


def _organiser_act(activity_id: int, run, done: str, target: str = "activity_pages.manage"):
    found = access.load(Activity, activity_id, Role.ORGANISER)
    try:
        run(found)
    except APIError as error:
        if error.status_code not in (409, 422):
            raise
        db.session.rollback()
        return _manage_page(activity_id, error.status_code,
                            refusal=message_for(error.slug, **error.params)
                            if error.status_code == 409 else
                            "；".join(m for ms in (error.errors or {}).values() for m in ms))
    flash(done, "success")
    return see_other(target, activity_id=activity_id)


@bp.post("/organiser/activities/<int:activity_id>/cancel")
@role_required(Role.ORGANISER)
def cancel(activity_id: int):
    data, _form = parse(CancelActivitySchema())
    return _organiser_act(activity_id, lambda a: service.cancel(
        a.id, current_user.id, (data or {}).get("reason")),
        gettext("活动已取消，报名已全部释放。"))


@bp.post("/organiser/activities/<int:activity_id>/complete")
@role_required(Role.ORGANISER)
def complete(activity_id: int):
    return _organiser_act(activity_id, lambda a: service.complete(a.id, current_user.id),
                          gettext("活动已结束：到场的志愿者已获得积分和志愿时长，未到场的已记录。"))


def _member_by_phone(community_id: int, phone: str) -> int | None:
    phone = "".join(ch for ch in phone if ch.isdigit())
    return db.session.scalar(
        db.select(User.id).join(Membership, Membership.user_id == User.id)
        .where(User.phone == phone, Membership.community_id == community_id))


@bp.post("/organiser/activities/<int:activity_id>/present")
@role_required(Role.ORGANISER)
def present(activity_id: int):
    """Mark someone present: a sign-up (by user_id) or a walk-in (by phone)."""
    found = access.load(Activity, activity_id, Role.ORGANISER)
    user_id = request.form.get("user_id", "")
    if user_id.isascii() and user_id.isdigit():
        target = int(user_id)
    else:
        target = _member_by_phone(found.community_id, request.form.get("phone", ""))
    back = request.form.get("back") == "screen"
    if target is None:
        return _manage_page(activity_id, 422, refusal=gettext(
            "没有找到这个手机号的本社区成员，请核对号码；还没有账号的，请先在成员管理中添加。"))
    try:
        service.mark_present(found.id, target, current_user.id)
    except APIError as error:
        if error.status_code not in (409, 422):
            raise
        db.session.rollback()
        message = (message_for(error.slug, **error.params) if error.status_code == 409 else
                   "；".join(m for ms in (error.errors or {}).values() for m in ms))
        return _manage_page(activity_id, error.status_code, refusal=message)
    name = db.session.get(User, target).display_name
    flash(gettext("已登记 {name} 到场。").format(name=name), "success")
    return see_other("activity_pages.screen" if back else "activity_pages.manage",
                     activity_id=activity_id)


def _code_now(found: Activity) -> dict:
    code = service.checkin_code(found)
    png = base64.b64encode(qr.png(code["url"], 512)).decode()
    return {**code, "qr_png": f"data:image/png;base64,{png}"}


@bp.get("/organiser/activities/<int:activity_id>/checkin")
@role_required(Role.ORGANISER)
def screen(activity_id: int):
    """The check-in screen: the rotating QR full-screen, the 6 digits, who has come."""
    found = access.load(Activity, activity_id, Role.ORGANISER)
    body = service.describe(found, current_user.id)
    attendance = db.session.scalars(service.attendance_query(found.id)).all()
    return render("activities/screen.html", **_context(
        a=body, code=_code_now(found), attendance=attendance,
        counts=service.attendance_counts(found.id), attended=ATTENDED))


@bp.get("/organiser/activities/<int:activity_id>/checkin.json")
@role_required(Role.ORGANISER)
def screen_json(activity_id: int):
    """What activities.js fetches to turn the QR over without reloading (full screen stays)."""
    found = access.load(Activity, activity_id, Role.ORGANISER)
    code = _code_now(found)
    counts = service.attendance_counts(found.id)
    return jsonify({"code": code["code"], "qr_png": code["qr_png"], "url": code["url"],
                    "refresh_seconds": code["refresh_seconds"],
                    "valid_until": code["valid_until"].astimezone(SHANGHAI).strftime("%H:%M:%S"),
                    "attended": counts[ATTENDED], "signed_up": counts[SIGNED_UP]})

