"""Schemas of the points store."""

import marshmallow as ma
from flask_jwt_extended import current_user
from marshmallow import fields, validate

from app.schemas import (
    ID_RANGE,
    LocalDateTime,
    PageQuery,
    StrictBoolean,
    StrictInteger,
    StrictSchema,
    Text,
)
from app.store.models import REDEMPTION_STATUSES, REWARD_KINDS

MAX_COST = 1_000_000
MAX_STOCK = 1_000_000


def _url(value: str) -> bool:
    if not value.startswith(("https://", "http://", "/")):
        raise ma.ValidationError("Must be an http(s) URL or a path starting with /.")
    return True


class RewardCreateSchema(StrictSchema):
    name = Text(required=True, max_length=64, metadata={"example": "金龙鱼食用油 5L"})
    description = Text(load_default="", min_length=0, max_length=500)
    kind = fields.String(required=True, validate=validate.OneOf(list(REWARD_KINDS)),
                         metadata={"description": "goods 实物 · service 服务 · honour 荣誉"})
    cost = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_COST))
    stock = StrictInteger(load_default=None, allow_none=True,
                          validate=validate.Range(min=0, max=MAX_STOCK),
                          metadata={"description": "goods and services; honours have none"})
    per_user_limit = StrictInteger(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=1000),
        attribute="per_user_monthly_limit",
        metadata={"description": "at most this many per person per calendar month"})
    active = StrictBoolean(load_default=True)
    image_url = fields.String(load_default=None, allow_none=True,
                              validate=[validate.Length(max=500), _url])


class RewardUpdateSchema(StrictSchema):
    name = Text(max_length=64)
    description = Text(min_length=0, max_length=500)
    cost = StrictInteger(validate=validate.Range(min=1, max=MAX_COST))
    stock = StrictInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_STOCK))
    per_user_limit = StrictInteger(allow_none=True, validate=validate.Range(min=1, max=1000),
                                   attribute="per_user_monthly_limit")
    active = StrictBoolean()
    image_url = fields.String(allow_none=True, validate=[validate.Length(max=500), _url])


class RewardSchema(StrictSchema):
    id = fields.Integer()
    community_id = fields.Integer()
    name = fields.String()
    description = fields.String()
    kind = fields.String()
    kind_label = fields.Method("_kind_label")
    cost = fields.Integer()
    stock = fields.Integer(allow_none=True)
    per_user_limit = fields.Integer(allow_none=True, attribute="per_user_monthly_limit")
    active = fields.Boolean()
    image_url = fields.String(allow_none=True)
    affordable = fields.Boolean(allow_none=True,
                                metadata={"description": "my balance covers one (null: n/a)"})
    created_at = LocalDateTime()

    def _kind_label(self, reward):
        kind = reward["kind"] if isinstance(reward, dict) else reward.kind
        return REWARD_KINDS[kind]


class RewardQuerySchema(PageQuery):
    active = fields.Boolean(metadata={"description": "organisers: filter by active flag"})


class RedeemSchema(StrictSchema):
    quantity = StrictInteger(load_default=1, validate=validate.Range(min=1, max=10))
    for_user_id = StrictInteger(validate=ID_RANGE,
                                metadata={"description": "organiser at the counter: the volunteer"})
    member_code = fields.String(validate=validate.Length(min=1, max=64),
                                metadata={"description": "from the volunteer's member card QR"})

    @ma.validates_schema
    def counter_pair(self, data, **_kwargs):
        if ("for_user_id" in data) != ("member_code" in data):
            raise ma.ValidationError("Give both for_user_id and member_code, or neither.",
                                     "member_code")


class RedemptionSchema(StrictSchema):
    id = fields.Integer()
    community_id = fields.Integer()
    reward_id = fields.Integer()
    reward_name = fields.String()
    reward_kind = fields.String()
    user_id = fields.Integer()
    user_name = fields.String(attribute="user.display_name")
    quantity = fields.Integer()
    unit_cost = fields.Integer()
    cost_total = fields.Integer()
    status = fields.String()
    pickup_code = fields.Method("_code", allow_none=True,
                                metadata={"description": "shown to its owner only"})
    at_counter = fields.Boolean()
    created_by_id = fields.Integer()
    created_at = LocalDateTime()
    fulfilled_at = LocalDateTime(allow_none=True)
    fulfilled_by_id = fields.Integer(allow_none=True)
    cancelled_at = LocalDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    locked_until = LocalDateTime(allow_none=True)

    def _code(self, redemption):
        return redemption.pickup_code if redemption.user_id == current_user.id else None


class RedemptionQuerySchema(PageQuery):
    community_id = fields.Integer(validate=ID_RANGE)
    mine = fields.Boolean()
    status = fields.String(validate=validate.OneOf(REDEMPTION_STATUSES))
    user_id = fields.Integer(validate=ID_RANGE)
    reward_id = fields.Integer(validate=ID_RANGE)
    at_counter = fields.Boolean()
    from_ = fields.DateTime(data_key="from", attribute="from")
    to = fields.DateTime()


class PickupSchema(StrictSchema):
    pickup_code = fields.String(validate=validate.Length(min=1, max=32),
                                metadata={"description": "required except for honours"})


class PickupByCodeSchema(StrictSchema):
    pickup_code = fields.String(required=True, validate=validate.Length(min=1, max=32))


class CancelSchema(StrictSchema):
    reason = Text(load_default=None, allow_none=True, min_length=0, max_length=200)


class MemberCardSchema(StrictSchema):
    user_id = fields.Integer()
    code = fields.String()
    rotated_at = LocalDateTime()


class RewardTotalSchema(StrictSchema):
    reward_id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    stock = fields.Integer(allow_none=True)
    fulfilled = fields.Integer(metadata={"description": "quantity handed over"})
    awaiting_pickup = fields.Integer()
    points = fields.Integer(metadata={"description": "points spent (not refunded)"})


class StoreSettingsSchema(StrictSchema):
    redemption_expiry_days = StrictInteger(required=True, validate=validate.Range(min=1, max=365))
