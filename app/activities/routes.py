"""Volunteer activities over HTTP."""

import base64

from flask import Response
from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from app import qr
from app.activities import service
from app.activities.models import Activity
from app.activities.schemas import (
    ActivityCreateSchema,
    ActivityQuerySchema,
    ActivitySchema,
    ActivityUpdateSchema,
    AttendanceQuerySchema,
    AttendanceSchema,
    CancelActivitySchema,
    CheckinCodeSchema,
    CheckinSchema,
    MyActivitiesQuerySchema,
    MySignUpSchema,
    SignUpSchema,
)
from app.auth.decorators import login_required
from app.communities import access
from app.communities.models import Role
from app.db import paginate
from app.extensions import db
from app.schemas import page_schema

blp = Blueprint("activities", __name__, url_prefix="/api/v1",
                description="Volunteer activities (志愿服务): sign-up, check-in, completion")

ActivityPage = page_schema(ActivitySchema, "ActivityPage")
MySignUpPage = page_schema(MySignUpSchema, "MySignUpPage")
QR_PIXELS = 512


def _body(activity: Activity) -> dict:
    return service.describe(activity, current_user.id)


@blp.route("/communities/<int:cid>/activities")
class Activities(MethodView):
    @login_required
    @blp.arguments(ActivityCreateSchema)
    @blp.response(201, ActivitySchema)
    def post(self, data, cid):
        """Publish a volunteer activity: time, place, capacity, level, service hours (organiser)"""
        access.community(cid, Role.ORGANISER)
        return _body(service.create(cid, data, current_user.id))

    @login_required
    @blp.arguments(ActivityQuerySchema, location="query")
    @blp.response(200, ActivityPage)
    def get(self, query, cid):
        """Activities of the community: upcoming first (soonest first), then past ones (member)"""
        access.community(cid)
        statement = service.activities_query(cid, query["when"], query.get("status"))
        page = paginate(db.session, statement, query["page"], query["per_page"])
        return {**page, "items": service.describe_all(page["items"], current_user.id)}


@blp.route("/activities/<int:activity_id>")
class ActivityDetail(MethodView):
    @login_required
    @blp.response(200, ActivitySchema)
    def get(self, activity_id):
        """One activity, with my sign-up (member)"""
        return _body(access.load(Activity, activity_id))

    @login_required
    @blp.arguments(ActivityUpdateSchema)
    @blp.response(200, ActivitySchema)
    @blp.alt_response(409, description="activity_started, activity_invalid_transition")
    def patch(self, changes, activity_id):
        """Change an activity before it starts; capacity not below the places taken (organiser)"""
        activity = access.load(Activity, activity_id, Role.ORGANISER)
        return _body(service.update(activity.id, changes, current_user.id))


@blp.route("/activities/<int:activity_id>/cancel", methods=["POST"])
@login_required
@blp.arguments(CancelActivitySchema)
@blp.response(200, ActivitySchema)
@blp.alt_response(409, description="activity_started, activity_invalid_transition")
def cancel(data, activity_id):
    """Cancel before the start; every sign-up is released (organiser)"""
    activity = access.load(Activity, activity_id, Role.ORGANISER)
    return _body(service.cancel(activity.id, current_user.id, data.get("reason")))


@blp.route("/activities/<int:activity_id>/signup", methods=["POST"])
@login_required
@blp.response(200, ActivitySchema)
@blp.alt_response(409, description="activity_full, activity_started, activity_invalid_transition")
def signup(activity_id):
    """Sign up while places are left, before the start; again changes nothing (volunteer or
    organiser of the community)"""
    activity = access.load(Activity, activity_id, Role.VOLUNTEER, Role.ORGANISER)
    return _body(service.signup(activity.id, current_user.id))


@blp.route("/activities/<int:activity_id>/cancel-signup", methods=["POST"])
@login_required
@blp.response(200, ActivitySchema)
@blp.alt_response(409, description="activity_started, already_checked_in, not_signed_up")
def cancel_signup(activity_id):
    """Cancel my sign-up before the start: the place is freed (volunteer)"""
    activity = access.load(Activity, activity_id, Role.VOLUNTEER, Role.ORGANISER)
    return _body(service.cancel_signup(activity.id, current_user.id))


@blp.route("/activities/<int:activity_id>/checkin", methods=["POST"])
@login_required
@blp.arguments(CheckinSchema)
@blp.response(200, SignUpSchema)
@blp.alt_response(409, description="checkin_closed, checkin_code_invalid, checkin_token_invalid, "
                                   "not_signed_up, activity_full, activity_invalid_transition")
@blp.alt_response(429, description="rate_limited: 5 tries a minute (Retry-After)")
def checkin(data, activity_id):
    """Check in: the volunteer with the 6-digit code or the QR's token, from 30 minutes before
    the start until the end; or an organiser marks a member present by user_id (walk-ins too)"""
    activity = access.load(Activity, activity_id, Role.VOLUNTEER, Role.ORGANISER)
    if "user_id" in data:
        access.require(activity.community_id, Role.ORGANISER)
        found = service.mark_present(activity.id, data["user_id"], current_user.id)
    else:
        found = service.checkin(activity.id, current_user.id, code=data.get("code"),
                                token=data.get("token"))
    return service.signup_body(found)


@blp.route("/activities/<int:activity_id>/checkin-code", methods=["GET"])
@login_required
@blp.response(200, CheckinCodeSchema)
def checkin_code(activity_id):
    """The rotating check-in code and its QR for the organiser's screen (organiser)"""
    activity = access.load(Activity, activity_id, Role.ORGANISER)
    code = service.checkin_code(activity)
    png = base64.b64encode(qr.png(code["url"], QR_PIXELS)).decode()
    return {**code, "qr_png": f"data:image/png;base64,{png}"}


@blp.route("/activities/<int:activity_id>/checkin-code.png", methods=["GET"])
@login_required
@blp.response(200, description="PNG of the check-in QR (valid 2 minutes)", content_type="image/png")
def checkin_code_png(activity_id):
    """The check-in QR alone, as a PNG (organiser)"""
    activity = access.load(Activity, activity_id, Role.ORGANISER)
    response = Response(qr.png(service.checkin_code(activity)["url"], QR_PIXELS),
                        mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/activities/<int:activity_id>/complete", methods=["POST"])
@login_required
@blp.response(200, ActivitySchema)
@blp.alt_response(409, description="activity_not_started, activity_invalid_transition")
def complete(activity_id):
    """Complete after the start: attendees earn the rule points and the hours, once (organiser)"""
    activity = access.load(Activity, activity_id, Role.ORGANISER)
    return _body(service.complete(activity.id, current_user.id))


@blp.route("/activities/<int:activity_id>/attendance", methods=["GET"])
@login_required
@blp.arguments(AttendanceQuerySchema, location="query")
@blp.response(200, AttendanceSchema)
def attendance(query, activity_id):
    """Who signed up, checked in, walked in, was absent or cancelled (organiser)"""
    activity = access.load(Activity, activity_id, Role.ORGANISER)
    page = paginate(db.session, service.attendance_query(activity.id, query.get("status")),
                    query["page"], query["per_page"])
    items = [{**service.signup_body(s), "phone": s.user.phone} for s in page["items"]]
    return {**page, "items": items, "counts": service.attendance_counts(activity.id)}


@blp.route("/me/activities", methods=["GET"])
@login_required
@blp.arguments(MyActivitiesQuerySchema, location="query")
@blp.response(200, MySignUpPage)
def my_activities(query):
    """My sign-ups, newest activity first, with the hours and points each earned"""
    statement = service.my_signups_query(current_user.id, query.get("community_id"),
                                         query.get("status"))
    page = paginate(db.session, statement, query["page"], query["per_page"])
    activities = service.describe_all([s.activity for s in page["items"]], current_user.id)
    return {**page, "items": [{**service.signup_body(s), "activity": a}
                              for s, a in zip(page["items"], activities, strict=True)]}
