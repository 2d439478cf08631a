"""Problem reports over HTTP."""

from flask import request
from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestEntityTooLarge

from app.auth.decorators import login_required
from app.body import takes_uploads
from app.communities import access
from app.communities.models import Role
from app.db import paginate
from app.errors import APIError
from app.extensions import db
from app.reports import photos, service
from app.reports.schemas import (
    ReportAcceptSchema,
    ReportAssignSchema,
    ReportCategorySchema,
    ReportCreateSchema,
    ReportDuplicateSchema,
    ReportMultipartSchema,
    ReportPageSchema,
    ReportQuerySchema,
    ReportRejectSchema,
    ReportResolveSchema,
    ReportSchema,
    ReportSettingsSchema,
)

blp = Blueprint("reports", __name__, url_prefix="/api/v1",
                description="Problem reports (随手拍): filing, photos, accept, assign, resolve")

takes_uploads("reports.Reports")


def _create_body_doc() -> dict:
    return {"required": True, "content": {
        "application/json": {"schema": ReportCreateSchema},
        "multipart/form-data": {"schema": ReportMultipartSchema},
    }}


def _read_submission() -> tuple[dict, photos.CleanPhoto | None]:
    """The fields (JSON or multipart form) checked by the schema, and the cleaned photo."""
    schema = ReportCreateSchema()
    if request.mimetype != "multipart/form-data":
        document = request.get_json(silent=True)
        if not isinstance(document, dict):
            raise APIError("validation_error", 422, errors={"_schema": ["Invalid input type."]})
        return _load(schema, document), None
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        raise photos.too_large() from None
    extra = [name for name in files if name != "photo"]
    data = _load(schema, {k: v for k, v in form.items()}, extra)
    return data, photos.from_request()


def _load(schema, document: dict, extra: list[str] = ()) -> dict:
    import marshmallow as ma

    try:
        data = schema.load(document)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        for name in extra:
            messages.setdefault(name, ["Unknown field."])
        raise APIError("validation_error", 422, errors=messages) from None
    if extra:
        raise APIError("validation_error", 422, errors={n: ["Unknown field."] for n in extra})
    return data


@blp.route("/communities/<int:cid>/reports")
class Reports(MethodView):
    @login_required
    @blp.doc(requestBody=_create_body_doc())
    @blp.response(201, ReportSchema)
    @blp.alt_response(403, description="residents_may_not_report (a community setting)")
    @blp.alt_response(413, description="photo_too_large (over 10 MB)")
    @blp.alt_response(422, description="validation_error, photo_not_an_image, "
                                       "photo_too_many_pixels")
    def post(self, cid):
        """File a problem report (随手拍), JSON or multipart with an optional photo

        Volunteers and organisers of the community may file; residents where the community's
        report settings allow it. A near-identical report by the same person (same category
        and location within 24 h) is still created, with `possible_duplicate_of` set.
        """
        service.require_may_file(cid, current_user)  # refused before the body is read
        service.release_before_upload()
        data, photo = _read_submission()
        service.require_may_file(cid, current_user)  # again, in the writing transaction
        return service.detail(service.file_report(cid, current_user, data, photo))

    @login_required
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(200, ReportPageSchema)
    def get(self, query, cid):
        """List reports, pending first: organisers all of the community's, others their own"""
        access.community(cid)
        page = paginate(db.session, service.list_query(cid, current_user, query),
                        query["page"], query["per_page"])
        return {**page, "items": [service.present(r) for r in page["items"]]}


@blp.route("/communities/<int:cid>/report-settings")
class ReportSettings(MethodView):
    @login_required
    @blp.response(200, ReportSettingsSchema)
    def get(self, cid):
        """Whether residents may file reports in this community (any member)"""
        access.community(cid)
        return service.settings_for(cid)

    @login_required
    @blp.arguments(ReportSettingsSchema)
    @blp.response(200, ReportSettingsSchema)
    def put(self, data, cid):
        """Allow or stop residents filing reports (organiser)"""
        access.community(cid, Role.ORGANISER)
        return service.update_settings(cid, data, current_user.id)


@blp.route("/report-categories", methods=["GET"])
@login_required
@blp.response(200, ReportCategorySchema(many=True))
def report_categories():
    """The fixed list of report categories: slugs and labels (English with Accept-Language: en)"""
    return service.categories()


@blp.route("/reports/<int:rid>", methods=["GET"])
@login_required
@blp.response(200, ReportSchema)
def get_report(rid):
    """One report with its timeline (its reporter and the community's organisers)"""
    return service.detail(service.load_visible(rid, current_user))


@blp.route("/reports/<int:rid>/photo", methods=["GET"])
@login_required
@blp.response(200, description="the stored photo, re-encoded as JPEG without metadata",
              content_type="image/jpeg")
def report_photo(rid):
    """The report's photo (its reporter and the community's organisers)"""
    report = service.load_visible(rid, current_user)
    with service.open_photo(report) as handle:
        content = handle.read()
    return photos.response(content, report.photo_type)


def _register_action(action: str, schema, summary: str, description: str) -> None:
    def view(data, rid):
        service.load_visible(rid, current_user)  # others of the community: 404
        return service.detail(service.act(rid, action, current_user, **data))

    view.__name__ = f"report_{action}"
    view.__doc__ = f"{summary}\n\n{description}"
    decorated = blp.alt_response(
        409, description="report_invalid_transition (names the current state)")(
        blp.response(200, ReportSchema)(blp.arguments(schema)(view)))
    blp.route(f"/reports/<int:rid>/{action}", methods=["POST"])(login_required(decorated))


for _action, _schema, _summary, _description in [
    ("accept", ReportAcceptSchema, "Accept a pending report with a level 1–5 (organiser)",
     "pending → accepted; the reporter earns the rules table's report points, once "
     "(ledger key report:<id>:award)."),
    ("reject", ReportRejectSchema, "Reject a pending report with a reason (organiser)",
     "pending → rejected; no points."),
    ("duplicate", ReportDuplicateSchema, "Mark a pending report a duplicate of another (organiser)",
     "pending → duplicate; `of` is another report of the same community, not itself a "
     "duplicate; no points."),
    ("assign", ReportAssignSchema, "Hand an accepted report to a person or department (organiser)",
     "accepted → in_progress (分办); `to` is free text up to 100 characters."),
    ("resolve", ReportResolveSchema, "Resolve a report in progress with feedback (organiser)",
     "in_progress → resolved; the note is the feedback the reporter sees (反馈)."),
]:
    _register_action(_action, _schema, _summary, _description)
