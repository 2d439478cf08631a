"""Pages: filing a problem report with the phone's camera (随手拍), my reports, the organiser's queue.

Each view loads with the API's access checks, parses the form with the API's schemas and calls
the service function the API route calls. The filing form is multipart (the photo); with
JavaScript on, app/static/js/reports.js downscales the photo before it is sent, and without
JavaScript the plain upload works (up to 10 MB, as the API).
"""

from __future__ import annotations

from flask import flash, g, request
from flask_jwt_extended import current_user

from app.body import takes_uploads
from app.communities.models import Role
from app.db import paginate
from app.errors import APIError, NotFound, message_for
from app.extensions import db
from app.i18n import N_, gettext
from app.ledger import service as ledger
from app.reports import photos, service
from app.reports import transitions as lifecycle
from app.reports.models import CATEGORIES, Report
from app.reports.schemas import (
    ReportAcceptSchema,
    ReportAssignSchema,
    ReportCreateSchema,
    ReportDuplicateSchema,
    ReportRejectSchema,
    ReportResolveSchema,
)
from app.web.forms import Form, claim_form, complete_form, new_form_token, parse
from app.web.pages import page_arg, page_blueprint, render, role_required, see_other

bp = page_blueprint("report_pages", __name__)
takes_uploads("report_pages.file_report")

PER_PAGE = 20
QUEUE_PER_PAGE = 6  # each report in the queue carries up to three forms: six stay well under 60 KB
MEMBERS = (Role.RESIDENT, Role.VOLUNTEER, Role.ORGANISER)
ORGANISER = Role.ORGANISER
LEVELS = (1, 2, 3, 4, 5)
FIELD_LABELS = {"category": N_("问题类别"), "description": N_("问题描述"), "location": N_("地点"),
                "photo": N_("照片")}
ACTION_SCHEMAS = {"accept": ReportAcceptSchema, "reject": ReportRejectSchema,
                  "duplicate": ReportDuplicateSchema, "assign": ReportAssignSchema,
                  "resolve": ReportResolveSchema}
ACTION_FIELDS = {"accept": "level", "reject": "reason", "duplicate": "of", "assign": "to",
                 "resolve": "note"}
# Said instead of the schema's generic "required" when nothing was typed.
ASK = {"level": N_("请先选一个等级（1–5 级），再点“受理”。"),
       "reason": N_("请写明不予采纳的原因（上报人会看到）。"),
       "of": N_("请填写重复的那条上报的编号。"),
       "to": N_("请填写分办给谁（人员或部门）。"),
       "note": N_("请写明处置结果（上报人会看到）。")}
QUEUE_VIEWS = {"open": N_("待处理"), "all": N_("全部")}
ACTION_LABELS = {"level": N_("等级"), "reason": N_("不予采纳的原因"), "of": N_("与哪一条重复（编号）"),
                 "to": N_("分办给（人员或部门）"), "note": N_("处置结果")}


def _categories() -> list[tuple[str, str]]:
    return [(slug, gettext(label)) for slug, label in CATEGORIES.items()]


def _labels() -> dict[str, str]:
    return {name: gettext(label) for name, label in FIELD_LABELS.items()}


# --- filing -------------------------------------------------------------------------------

def _form_page(status: int = 200, form: Form | None = None, token: str | None = None):
    return render("reports/new.html", status, form=form, form_token=token or new_form_token(),
                  categories=_categories(), labels=_labels(),
                  limit_mb=photos.limit_bytes() // (1024 * 1024))


@bp.get("/reports/new")
@role_required(*MEMBERS)
def new_report():
    """The filing form, for those who may file in the current community."""
    service.require_may_file(g.community.id, current_user)
    return _form_page()


@bp.post("/reports/new")
@role_required(*MEMBERS)
def file_report():
    """File as `POST /communities/<cid>/reports` does, once per form token."""
    cid = g.community.id
    service.require_may_file(cid, current_user)
    token = request.form.get("form_token")
    data, form = parse(ReportCreateSchema())
    service.release_before_upload()  # no write lock held while the photo is decoded
    photo = _photo(form)
    if data is None or not form.ok:
        return _form_page(422, form, token)
    done = claim_form(token)
    if done is not None:
        return see_other(url=done)
    service.require_may_file(cid, current_user)  # again, in the writing transaction
    report = service.file_report(cid, current_user, data, photo)
    url = f"/reports/{report.id}"
    complete_form(token, url)
    flash(gettext("已上报，社区工作人员会尽快处理。受理后您会得到积分。"), "success")
    if report.possible_duplicate_of:
        flash(gettext("提示：您在 24 小时内已上报过同一地点的同类问题（#{id}），这条会标记为可能重复，"
                      "由社区工作人员核实。").format(id=report.possible_duplicate_of), "warning")
    return see_other(url=url)


def _photo(form: Form) -> photos.CleanPhoto | None:
    """The chosen photo, cleaned; a refusal becomes the photo field's error."""
    try:
        return photos.from_request()
    except APIError as refused:
        form.error("photo", message_for(refused.slug, **refused.params)
                   + gettext("请重新选择照片。"))
        return None


# --- my reports and one report ------------------------------------------------------------

@bp.get("/me/reports")
@role_required(*MEMBERS)
def my_reports():
    """My reports in the current community, newest first, with their feedback."""
    page_number = page_arg()
    query = service.list_query(g.community.id, current_user, {"mine": True})
    query = query.order_by(None).order_by(Report.id.desc())
    page = paginate(db.session, query, page_number, PER_PAGE)
    last = max(1, -(-page["total"] // PER_PAGE))
    may_file = _may_file(g.community.id)
    return render("reports/mine.html", reports=[service.present(r) for r in page["items"]],
                  total=page["total"], page=page_number, pages=last, may_file=may_file)


def _may_file(cid: int) -> bool:
    try:
        service.require_may_file(cid, current_user)
    except APIError:
        return False
    return True


@bp.get("/reports/<int:rid>")
@role_required(*MEMBERS)
def report_page(rid: int):
    """One report: its state, the organiser's feedback, the timeline and the photo."""
    report = service.load_visible(rid, current_user)
    return render("reports/report.html", report=service.detail(report),
                  organiser=service.may_see_all(report.community_id, current_user),
                  mine=report.reporter_id == current_user.id)


@bp.get("/reports/<int:rid>/photo")
@role_required(*MEMBERS)
def report_photo(rid: int):
    """The stored photo, for the reporter and the community's organisers (as the API)."""
    report = service.load_visible(rid, current_user)
    with service.open_photo(report) as handle:
        return photos.response(handle.read(), report.photo_type)


# --- the organiser's queue ----------------------------------------------------------------

def _queue(status: int = 200, *, forms: dict | None = None, notice: str | None = None):
    view = request.args.get("view", "open")
    view = view if view in QUEUE_VIEWS else "open"
    filters = {"possible_duplicate": True} if request.args.get("flagged") == "1" else {}
    query = service.list_query(g.community.id, current_user, filters)
    if view == "open":
        query = query.where(Report.status.in_(
            (lifecycle.PENDING, lifecycle.ACCEPTED, lifecycle.IN_PROGRESS)))
    page = paginate(db.session, query, page_arg(), QUEUE_PER_PAGE)
    forms = forms or {}
    summary = Form(errors={f"{rid}-{name}": texts for rid, form in forms.items()
                           for name, texts in form.errors.items()})
    cid = g.community.id
    return render("reports/queue.html", status, page=page, view=view, views=QUEUE_VIEWS,
                  flagged=bool(filters), reports=[service.present(r) for r in page["items"]],
                  points={level: ledger.points_for(cid, "report", level) for level in LEVELS},
                  forms=forms, summary=summary, notice=notice,
                  summary_labels={key: gettext(ACTION_LABELS[key.split("-", 1)[1]])
                                  for key in summary.errors
                                  if key.split("-", 1)[1] in ACTION_LABELS})


@bp.get("/organiser/reports")
@role_required(ORGANISER)
def queue():
    """The community's reports, pending first; possible duplicates marked."""
    return _queue()


@bp.post("/organiser/reports/<int:rid>/<action>")
@role_required(ORGANISER)
def decide(rid: int, action: str):
    """Accept, reject, mark duplicate, assign or resolve, as the API's actions do."""
    if action not in ACTION_SCHEMAS:
        raise NotFound()
    report = service.load_visible(rid, current_user)
    if report.community_id != g.community.id:
        raise NotFound()
    field = ACTION_FIELDS[action]
    data, form = parse(ACTION_SCHEMAS[action](), keep=[field])
    form.values["action"] = action
    if form.errors.get(field) and not str(form.values.get(field, "")).strip():
        form.errors[field] = [gettext(ASK[field])]
    if data is None:
        return _queue(422, forms={rid: form})
    try:
        done = service.act(rid, action, current_user, **data)
    except APIError as error:
        db.session.rollback()
        if error.status_code == 422 and error.errors:
            for name, texts in error.errors.items():
                for text in texts:
                    form.error(name, str(text))
            return _queue(422, forms={rid: form})
        if error.status_code != 409:
            raise
        return _queue(409, notice=message_for(error.slug, **error.params))
    flash(_done_message(done, action), "success")
    args = {key: request.args[key] for key in ("page", "view", "flagged") if key in request.args}
    return see_other("report_pages.queue", **args)


def _done_message(report: Report, action: str) -> str:
    if action == "accept":
        return gettext("已受理 #{id}：{level} 级，上报人得到 {points} 积分。").format(
            id=report.id, level=report.level, points=report.points_awarded or 0)
    return gettext("#{id} 已{action}。").format(
        id=report.id, action=gettext(lifecycle.ACTION_LABELS[action]))
