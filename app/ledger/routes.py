"""Points over HTTP: rules, balances, ledgers, adjustments, the audit log, leaderboards."""

from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from app import audit, idempotency
from app.auth.decorators import login_required
from app.communities import access
from app.communities.models import Role
from app.db import paginate
from app.errors import ValidationFailed
from app.extensions import db
from app.i18n import N_
from app.ledger import leaderboard, service
from app.ledger.schemas import (
    AdjustmentCreateSchema,
    AdjustmentSchema,
    AuditEventSchema,
    CommunityQuerySchema,
    LeaderboardQuerySchema,
    LeaderboardSchema,
    LedgerPageSchema,
    LedgerQuerySchema,
    OrganiserLedgerQuerySchema,
    PointsRulesSchema,
    PointsSummarySchema,
)
from app.schemas import PageQuery, page_schema

blp = Blueprint("points", __name__, url_prefix="/api/v1",
                description="心愿积分制: points rules, balances, ledgers, adjustments, leaderboards")

AuditPage = page_schema(AuditEventSchema, "AuditEventPage")
# The adjustment's key is its ledger key (`adjustment:<organiser>:<key>`): it never expires.
IDEMPOTENCY_PARAMETER = {
    **idempotency.DOC_PARAMETER,
    "description": "optional; repeating a key returns the original adjustment and moves "
                   "nothing; the same key with another user or amount is refused (409)"}


def _my_community(community_id: int | None) -> int:
    """The community a /me view is about: the one asked for, or the caller's only one."""
    if community_id is None:
        ids = access.my_community_ids()
        if len(ids) != 1:
            raise ValidationFailed("community_id",
                                   N_("您属于多个社区（或尚未加入社区），请用 community_id 指明。"))
        return ids[0]
    access.require(community_id)
    return community_id


@blp.route("/communities/<int:cid>/points-rules")
class PointsRules(MethodView):
    @login_required
    @blp.response(200, PointsRulesSchema)
    def get(self, cid):
        """The community's points table, satisfaction factors, daily cap and expiry (any member)"""
        access.community(cid)
        return service.rules_document(cid)

    @login_required
    @blp.arguments(PointsRulesSchema)
    @blp.response(200, PointsRulesSchema)
    def put(self, data, cid):
        """Replace the points table, satisfaction factors, daily cap and expiry (organiser)

        Without `expiry_months` the expiry setting stays as it is.
        """
        access.community(cid, Role.ORGANISER)
        factors = {int(k.split("_")[1]): v for k, v in data["satisfaction_factors"].items()}
        service.replace_rules(cid, data["rules"], factors, data["daily_earn_cap"],
                              current_user.id,
                              expiry_months=data.get("expiry_months", service.KEEP))
        return service.rules_document(cid)


@blp.route("/me/points")
class MyPoints(MethodView):
    @login_required
    @blp.arguments(CommunityQuerySchema, location="query")
    @blp.response(200, PointsSummarySchema)
    def get(self, query):
        """My balance, points earned and redeemed, pending, by source, service hours, expiring"""
        cid = _my_community(query.get("community_id"))
        return service.points_summary(cid, current_user.id)


@blp.route("/me/ledger")
class MyLedger(MethodView):
    @login_required
    @blp.arguments(LedgerQuerySchema, location="query")
    @blp.response(200, LedgerPageSchema)
    def get(self, query):
        """My ledger entries, newest first (page, or keyset with ?after=)"""
        cid = _my_community(query.get("community_id"))
        return service.ledger_page(cid, current_user.id, after=query.get("after"),
                                   page=query["page"], per_page=query["per_page"])


@blp.route("/communities/<int:cid>/accounts/<int:uid>/ledger")
class MemberLedger(MethodView):
    @login_required
    @blp.arguments(OrganiserLedgerQuerySchema, location="query")
    @blp.response(200, LedgerPageSchema)
    def get(self, query, cid, uid):
        """A member's ledger entries, newest first (organiser)"""
        access.community(cid, Role.ORGANISER)
        service.require_member_account_owner(cid, uid)
        return service.ledger_page(cid, uid, after=query.get("after"), page=query["page"],
                                   per_page=query["per_page"])


@blp.route("/communities/<int:cid>/accounts/<int:uid>")
class MemberPoints(MethodView):
    @login_required
    @blp.response(200, PointsSummarySchema)
    def get(self, cid, uid):
        """A member's balance and totals (organiser)"""
        access.community(cid, Role.ORGANISER)
        service.require_member_account_owner(cid, uid)
        return service.points_summary(cid, uid)


@blp.route("/communities/<int:cid>/adjustments")
class Adjustments(MethodView):
    @login_required
    @blp.arguments(AdjustmentCreateSchema)
    @blp.response(201, AdjustmentSchema)
    @blp.alt_response(409, description="insufficient_points or idempotency_conflict")
    @blp.doc(parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, data, cid):
        """Add or take back points with a reason (organiser); audited"""
        access.community(cid, Role.ORGANISER)
        posting = service.adjust(cid, data["user_id"], data["amount"], data["reason"],
                                 current_user.id, client_key=idempotency.client_key())
        return service.describe_adjustment(posting, cid, data["user_id"])


@blp.route("/communities/<int:cid>/audit-log")
class AuditLog(MethodView):
    @login_required
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, AuditPage)
    def get(self, query, cid):
        """Organisers' actions in the community, newest first (organiser)"""
        access.community(cid, Role.ORGANISER)
        return paginate(db.session, audit.events_query(cid), query["page"], query["per_page"])


@blp.route("/communities/<int:cid>/leaderboard")
class Leaderboard(MethodView):
    @login_required
    @blp.arguments(LeaderboardQuerySchema, location="query")
    @blp.response(200, LeaderboardSchema)
    def get(self, query, cid):
        """Points earned this week, month or all time, by volunteer or team (any member)"""
        access.require(cid)
        return leaderboard.leaderboard(cid, query["period"], query["by"], query["limit"],
                                       on=query.get("on"), source=query.get("source"))
