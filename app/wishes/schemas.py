"""Schemas of boards and wishes."""

import unicodedata

import marshmallow as ma
from marshmallow import fields, validate

from app.schemas import (
    ID_RANGE,
    LocalDateTime,
    PageQuery,
    Phone,
    StrictBoolean,
    StrictInteger,
    StrictSchema,
    Text,
)
from app.wishes.models import CATEGORIES
from app.wishes.transitions import STATUSES


class MultilineText(Text):
    """Text that may run over several lines (typed in a textarea): like Text, but line breaks
    are kept (CRLF/CR normalised to LF); every other control character is still refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = fields.String._deserialize(self, value, attr, data, **kwargs)
        text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
        if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} and ch not in "\n\u200d"
               for ch in text):
            raise ma.ValidationError("Contains control characters.")
        validate.Length(min=self.min_length, max=self.max_length)(text)
        return text


class BoardCreateSchema(StrictSchema):
    name = Text(required=True, max_length=64, metadata={"example": "远创樾府 3 栋"})
    location = Text(load_default="", min_length=0, max_length=128,
                    metadata={"example": "远创樾府东门公示栏"})
    grid_label = Text(load_default=None, allow_none=True, min_length=0, max_length=32,
                      metadata={"example": "第二网格"})
    auto_approve = StrictBoolean(load_default=False)
    enabled = StrictBoolean(load_default=True)


class BoardUpdateSchema(StrictSchema):
    name = Text(max_length=64)
    location = Text(min_length=0, max_length=128)
    grid_label = Text(allow_none=True, min_length=0, max_length=32)
    auto_approve = StrictBoolean()
    enabled = StrictBoolean()


class BoardSchema(StrictSchema):
    id = fields.Integer()
    community_id = fields.Integer()
    name = fields.String()
    location = fields.String()
    grid_label = fields.String(allow_none=True)
    auto_approve = fields.Boolean()
    enabled = fields.Boolean()
    token = fields.String(metadata={"description": "the public token in the QR code"})
    public_url = fields.String(metadata={"description": "what the QR code encodes"})
    created_at = LocalDateTime()


class QRQuerySchema(StrictSchema):
    size = fields.Integer(load_default=512, validate=validate.Range(min=128, max=2048),
                          metadata={"description": "pixels, 128–2048"})


class ProxySchema(StrictSchema):
    name = Text(required=True, max_length=32, metadata={"example": "周大爷"})
    phone = Phone(required=True)


class WishCreateSchema(StrictSchema):
    title = Text(required=True, max_length=60, metadata={"example": "厨房水龙头漏水"})
    description = MultilineText(load_default="", min_length=0, max_length=2000,
                       metadata={"example": "家里只有两位老人，希望有人帮忙换个水龙头。"})
    category = fields.String(required=True, validate=validate.OneOf(list(CATEGORIES)),
                             metadata={"description": "a code from GET /api/v1/wish-categories"})
    contact_phone = Phone(load_default=None, allow_none=True)
    address = Text(load_default=None, allow_none=True, min_length=0, max_length=200,
                   metadata={"example": "远创樾府 3 栋 502"})
    on_behalf_of = fields.Nested(ProxySchema, load_default=None, allow_none=True, metadata={
        "description": "organisers only: post for a resident without an account (代发)"})


class WishQuerySchema(PageQuery):
    community_id = fields.Integer(validate=ID_RANGE)
    board_id = fields.Integer(validate=ID_RANGE)
    status = fields.String(validate=validate.OneOf(STATUSES))
    category = fields.String(validate=validate.OneOf(list(CATEGORIES)))
    mine = fields.Boolean()
    claimed_by_me = fields.Boolean()
    escalated = fields.Boolean(metadata={"description": "true: the dispatch queue"})
    sort = fields.String(validate=validate.OneOf(["newest", "match"]),
                         metadata={"description": "match: open wishes fitting my skills first"})
    after = fields.Integer(validate=ID_RANGE,
                           metadata={"description": "keyset paging: wishes older than this id"})

    @ma.validates_schema
    def keyset_needs_newest_first(self, data, **_kwargs):
        if data.get("after") is not None and data.get("sort") == "match":
            raise ma.ValidationError(
                "after pages the newest-first order; with sort=match use page.", "after")


class ApproveSchema(StrictSchema):
    level = StrictInteger(required=True, validate=validate.Range(min=1, max=5))


class ReasonSchema(StrictSchema):
    reason = Text(required=True, max_length=200)


class OptionalReasonSchema(StrictSchema):
    reason = Text(load_default=None, allow_none=True, min_length=0, max_length=200)


class AssignSchema(StrictSchema):
    volunteer_id = StrictInteger(required=True, validate=ID_RANGE)


class FulfilSchema(StrictSchema):
    note = Text(required=True, max_length=500, metadata={"example": "已更换水龙头，试水正常"})


class ConfirmSchema(StrictSchema):
    rating = StrictInteger(required=True, validate=validate.Range(min=1, max=5))
    comment = Text(load_default=None, allow_none=True, min_length=0, max_length=500)


class EmptySchema(StrictSchema):
    pass


class TimelineEventSchema(StrictSchema):
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    actor_id = fields.Integer(allow_none=True)
    actor_name = fields.String()
    by_proxy = fields.Boolean()
    note = fields.String(allow_none=True)
    created_at = LocalDateTime()


class WishSummarySchema(StrictSchema):
    """A wish as lists show it (no timeline)."""

    id = fields.Integer()
    community_id = fields.Integer()
    board_id = fields.Integer()
    board_name = fields.String()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    category_label = fields.String()
    status = fields.String()
    status_label = fields.String()
    level = fields.Integer(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    owner_name = fields.String(allow_none=True, metadata={"description": "masked for others"})
    posted_by_proxy = fields.Boolean()
    contact_phone = fields.String(allow_none=True,
                                  metadata={"description": "masked (138****5678) unless you may "
                                                           "see it"})
    address = fields.String(allow_none=True, metadata={"description": "null unless you may see"})
    contact_revealed = fields.Boolean()
    claimer_id = fields.Integer(allow_none=True)
    claimer_name = fields.String(allow_none=True)
    claimed_at = LocalDateTime(allow_none=True)
    fulfil_due_at = LocalDateTime(allow_none=True)
    fulfil_extended = fields.Boolean()
    fulfilled_at = LocalDateTime(allow_none=True)
    fulfil_note = fields.String(allow_none=True)
    rating = fields.Integer(allow_none=True)
    comment = fields.String(allow_none=True)
    closed_at = LocalDateTime(allow_none=True)
    points_awarded = fields.Integer(allow_none=True)
    points_capped = fields.Integer(allow_none=True,
                                   metadata={"description": "points the daily cap withheld"})
    pending_points = fields.Integer(allow_none=True,
                                    metadata={"description": "what confirmation would award"})
    reason = fields.String(allow_none=True)
    escalated = fields.Boolean()
    opened_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()
    updated_at = LocalDateTime()


class WishSchema(WishSummarySchema):
    """A wish with its timeline."""

    timeline = fields.List(fields.Nested(TimelineEventSchema))


class WishPageSchema(StrictSchema):
    items = fields.List(fields.Nested(WishSummarySchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    next_after = fields.Integer(allow_none=True)


class CategorySchema(StrictSchema):
    code = fields.String()
    label = fields.String()


class WishSettingsSchema(StrictSchema):
    max_active_claims = StrictInteger(validate=validate.Range(min=1, max=50))
    fulfil_days = StrictInteger(validate=validate.Range(min=1, max=90))
    extension_days = StrictInteger(validate=validate.Range(min=1, max=90))
    auto_confirm_days = StrictInteger(validate=validate.Range(min=1, max=90))
    auto_confirm_rating = StrictInteger(validate=validate.Range(min=1, max=5))
    escalate_hours = StrictInteger(validate=validate.Range(min=1, max=24 * 90))
    default_level = StrictInteger(validate=validate.Range(min=1, max=5))


class LapseQuerySchema(PageQuery):
    user_id = fields.Integer(validate=ID_RANGE)


class ClaimLapseSchema(StrictSchema):
    id = fields.Integer()
    user_id = fields.Integer()
    wish_id = fields.Integer()
    due_at = LocalDateTime()
    created_at = LocalDateTime()
