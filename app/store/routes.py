"""The points store over HTTP: rewards, redeeming, pickup, cancel, member cards, totals."""

from flask import Response
from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from app import qr
from app.auth.decorators import login_required
from app.communities import access
from app.communities.models import Role
from app.db import paginate
from app.errors import Forbidden, NotFound
from app.extensions import db
from app.idempotency import DOC_PARAMETER, idempotent
from app.ledger import service as ledger
from app.schemas import page_schema
from app.store import service
from app.store.models import Redemption, Reward
from app.store.schemas import (
    CancelSchema,
    MemberCardSchema,
    PickupByCodeSchema,
    PickupSchema,
    RedeemSchema,
    RedemptionQuerySchema,
    RedemptionSchema,
    RewardCreateSchema,
    RewardQuerySchema,
    RewardSchema,
    RewardTotalSchema,
    RewardUpdateSchema,
    StoreSettingsSchema,
)

blp = Blueprint("store", __name__, url_prefix="/api/v1",
                description="The points store (爱心超市): rewards, redemptions, pickup")

RewardPage = page_schema(RewardSchema, "RewardPage")
RedemptionPage = page_schema(RedemptionSchema, "RedemptionPage")


def _reward_body(reward: Reward, balance: int | None = None) -> dict:
    body = {c: getattr(reward, c) for c in (
        "id", "community_id", "name", "description", "kind", "cost", "stock",
        "per_user_monthly_limit", "active", "image_url", "created_at")}
    body["affordable"] = None if balance is None else balance >= reward.cost
    return body


@blp.route("/communities/<int:cid>/rewards")
class Rewards(MethodView):
    @login_required
    @blp.arguments(RewardCreateSchema)
    @blp.response(201, RewardSchema)
    def post(self, data, cid):
        """Add a reward: goods (米、油…), a service (家政、理发…) or an honour (organiser)"""
        access.community(cid, Role.ORGANISER)
        return _reward_body(service.create_reward(cid, data))

    @login_required
    @blp.arguments(RewardQuerySchema, location="query")
    @blp.response(200, RewardPage)
    def get(self, query, cid):
        """Rewards: active ones with what I can afford marked; organisers see all"""
        access.community(cid)
        organiser = access.is_organiser(cid)
        statement = service.rewards_query(cid, only_active=not organiser)
        if organiser and query.get("active") is not None:
            statement = statement.where(Reward.active.is_(query["active"]))
        page = paginate(db.session, statement, query["page"], query["per_page"])
        balance = ledger.points_summary(cid, current_user.id)["balance"]
        return {**page, "items": [_reward_body(r, balance) for r in page["items"]]}


@blp.route("/rewards/<int:rid>")
class RewardDetail(MethodView):
    @login_required
    @blp.response(200, RewardSchema)
    def get(self, rid):
        """One reward (members; inactive ones for organisers only)"""
        reward = access.load(Reward, rid)
        if not reward.active and not access.is_organiser(reward.community_id):
            raise NotFound()
        balance = ledger.points_summary(reward.community_id, current_user.id)["balance"]
        return _reward_body(reward, balance)

    @login_required
    @blp.arguments(RewardUpdateSchema)
    @blp.response(200, RewardSchema)
    def patch(self, changes, rid):
        """Change a reward; past redemptions keep the cost they were made at (organiser)"""
        reward = access.load(Reward, rid, Role.ORGANISER)
        return _reward_body(service.update_reward(reward, changes))


@blp.route("/rewards/<int:rid>/redeem", methods=["POST"])
@login_required
@idempotent
@blp.arguments(RedeemSchema)
@blp.response(201, RedemptionSchema)
@blp.alt_response(409, description="out_of_stock, limit_reached, insufficient_points, "
                                   "reward_inactive, idempotency_conflict, member_code_mismatch")
@blp.doc(parameters=[DOC_PARAMETER])
def redeem(data, rid):
    """Redeem points for a reward; an organiser at the counter redeems for a volunteer"""
    if "for_user_id" in data:
        reward = access.load(Reward, rid)
        access.require(reward.community_id, Role.ORGANISER)
        return service.redeem_at_counter(reward, data["for_user_id"], data["member_code"],
                                         data["quantity"], current_user.id)
    return service.redeem(rid, current_user.id, data["quantity"], current_user.id,
                          check_access=True)


@blp.route("/redemptions", methods=["GET"])
@login_required
@blp.arguments(RedemptionQuerySchema, location="query")
@blp.response(200, RedemptionPage)
def list_redemptions(query):
    """My redemptions, and all of the communities I organise (pending pickups, history)"""
    organised = access.organised_community_ids()
    statement = service.redemptions_query(query, access.visible_community_ids(), current_user.id,
                                          organised)
    return paginate(db.session, statement, query["page"], query["per_page"])


def _private_qr(code: str) -> Response:
    """A code that lets its holder collect goods: shown as a QR, never stored by a cache."""
    response = Response(qr.png(code, 384), mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _load_redemption(redemption_id: int) -> Redemption:
    """The owner or an organiser of its community may see a redemption; others get 404."""
    redemption = access.load(Redemption, redemption_id)
    if redemption.user_id != current_user.id and not access.is_organiser(redemption.community_id):
        raise NotFound()
    return redemption


@blp.route("/redemptions/<int:redemption_id>", methods=["GET"])
@login_required
@blp.response(200, RedemptionSchema)
def get_redemption(redemption_id):
    """One redemption (its owner, with the pickup code; or an organiser)"""
    return _load_redemption(redemption_id)


@blp.route("/redemptions/<int:redemption_id>/qrcode.png", methods=["GET"])
@login_required
@blp.response(200, description="PNG of the pickup code", content_type="image/png")
def redemption_qr(redemption_id):
    """The pickup code as a QR to show at the store counter (owner)"""
    redemption = _load_redemption(redemption_id)
    if redemption.user_id != current_user.id:
        raise Forbidden()
    return _private_qr(redemption.pickup_code)


@blp.route("/redemptions/<int:redemption_id>/fulfil", methods=["POST"])
@login_required
@blp.arguments(PickupSchema)
@blp.response(200, RedemptionSchema)
@blp.alt_response(409, description="wrong_pickup_code, pickup_locked, redemption_not_pending")
def fulfil_redemption(data, redemption_id):
    """Hand over a redemption by its pickup code; honours by approval (organiser)"""
    redemption = access.load(Redemption, redemption_id, Role.ORGANISER)
    return service.fulfil(redemption.id, data.get("pickup_code"), current_user.id)


@blp.route("/communities/<int:cid>/redemptions/fulfil", methods=["POST"])
@login_required
@blp.arguments(PickupByCodeSchema)
@blp.response(200, RedemptionSchema)
def fulfil_by_code(data, cid):
    """Hand over the redemption a scanned or typed pickup code names (organiser)"""
    access.community(cid, Role.ORGANISER)
    redemption = service.find_by_code(cid, data["pickup_code"])
    return service.fulfil(redemption.id, data["pickup_code"], current_user.id)


@blp.route("/redemptions/<int:redemption_id>/cancel", methods=["POST"])
@login_required
@blp.arguments(CancelSchema)
@blp.response(200, RedemptionSchema)
def cancel_redemption(data, redemption_id):
    """Cancel before pickup: points refunded once, stock returned (owner or organiser)"""
    redemption = _load_redemption(redemption_id)
    return service.cancel(redemption.id, current_user.id, reason=data.get("reason"))


@blp.route("/me/member-card", methods=["GET"])
@login_required
@blp.response(200, MemberCardSchema)
def my_member_card():
    """My member code for the store counter"""
    return service.member_card(current_user.id)


@blp.route("/me/member-card.png", methods=["GET"])
@login_required
@blp.response(200, description="PNG of my member code", content_type="image/png")
def my_member_card_png():
    """My member code as a QR, shown at the store counter"""
    return _private_qr(service.member_card(current_user.id).code)


@blp.route("/me/member-card/rotate", methods=["POST"])
@login_required
@blp.response(200, MemberCardSchema)
def rotate_my_member_card():
    """Replace my member code (if the card was lost or photographed)"""
    return service.rotate_member_card(current_user.id)


@blp.route("/communities/<int:cid>/store/totals", methods=["GET"])
@login_required
@blp.response(200, RewardTotalSchema(many=True))
def store_totals(cid):
    """Per-reward totals: handed over, awaiting pickup, points spent (organiser)"""
    access.community(cid, Role.ORGANISER)
    return service.reward_totals(cid)


@blp.route("/communities/<int:cid>/store-settings")
class StoreSettingsView(MethodView):
    @login_required
    @blp.response(200, StoreSettingsSchema)
    def get(self, cid):
        """Days after which an unfulfilled redemption expires and is refunded (member)"""
        access.community(cid)
        return {"redemption_expiry_days": service.expiry_days(cid)}

    @login_required
    @blp.arguments(StoreSettingsSchema)
    @blp.response(200, StoreSettingsSchema)
    def put(self, data, cid):
        """Set the redemption expiry (organiser)"""
        access.community(cid, Role.ORGANISER)
        return service.update_settings(cid, data)
