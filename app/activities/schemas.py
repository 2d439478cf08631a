"""Schemas of volunteer activities."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.activities.models import SIGNUP_STATUSES, STATUSES
from app.localtime import SHANGHAI
from app.schemas import ID_RANGE, LocalDateTime, PageQuery, StrictInteger, StrictSchema, Text
from app.wishes.schemas import MultilineText

MAX_CAPACITY = 1000


class Moment(fields.AwareDateTime):
    """An ISO 8601 moment; without an offset it is Asia/Shanghai wall-clock time (what a
    phone's date-time picker sends)."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=SHANGHAI, **kwargs)


class Hours(fields.Field):
    """Service hours: a JSON number in steps of 0.5 from 0.5 to 24, kept as half-hours.

    `text=True` (the page form) also takes the number typed as text ("2.5")."""

    default_error_messages = {
        "invalid": "Not a valid number.",
        "step": "Must be 0.5 to 24 in steps of 0.5.",
    }

    def __init__(self, *, text: bool = False, **kwargs):
        kwargs.setdefault("metadata", {}).update(
            {"type": "number", "minimum": 0.5, "maximum": 24, "multipleOf": 0.5,
             "example": 2.5})
        super().__init__(**kwargs)
        self.text = text

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value / 2

    def _deserialize(self, value, attr, data, **kwargs):
        if self.text and isinstance(value, str):
            try:
                value = float(value.strip().replace("，", ".").replace("．", "."))
            except ValueError:
                raise self.make_error("invalid") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.make_error("invalid")
        if not 0.5 <= value <= 24 or value * 2 != int(value * 2):
            raise self.make_error("step")
        return int(value * 2)


class ActivityUpdateSchema(StrictSchema):
    title = Text(max_length=60, metadata={"example": "重阳节敬老院陪伴"})
    description = MultilineText(min_length=0, max_length=2000)
    place = Text(max_length=100, metadata={"example": "管园村敬老院"})
    starts_at = Moment()
    ends_at = Moment()
    capacity = StrictInteger(validate=validate.Range(min=1, max=MAX_CAPACITY))
    level = StrictInteger(validate=validate.Range(min=1, max=5),
                          metadata={"description": "grade 1–5 in the points-rules table"})
    hours = Hours(attribute="half_hours",
                  metadata={"description": "service hours credited to each attendee"})

    @ma.validates_schema
    def ends_after_start(self, data, **_kwargs):
        if "starts_at" in data and "ends_at" in data and data["ends_at"] <= data["starts_at"]:
            raise ma.ValidationError("Must be after starts_at.", "ends_at")


class ActivityCreateSchema(ActivityUpdateSchema):
    title = Text(required=True, max_length=60, metadata={"example": "重阳节敬老院陪伴"})
    description = MultilineText(load_default="", min_length=0, max_length=2000)
    place = Text(required=True, max_length=100, metadata={"example": "管园村敬老院"})
    starts_at = Moment(required=True)
    ends_at = Moment(required=True)
    capacity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_CAPACITY))
    level = StrictInteger(required=True, validate=validate.Range(min=1, max=5))
    hours = Hours(required=True, attribute="half_hours")


class ActivityFormSchema(ActivityCreateSchema):
    """The page form: the same rules, with hours typed as text."""

    hours = Hours(required=True, attribute="half_hours", text=True)


class ActivityEditFormSchema(ActivityUpdateSchema):
    hours = Hours(attribute="half_hours", text=True)


class CancelActivitySchema(StrictSchema):
    reason = Text(load_default=None, allow_none=True, min_length=0, max_length=200)


class SignUpSchema(StrictSchema):
    id = fields.Integer()
    activity_id = fields.Integer()
    user_id = fields.Integer()
    display_name = fields.String()
    phone = fields.String(metadata={"description": "organisers only (attendance)"})
    status = fields.String(metadata={"description": "signed_up · cancelled · attended · absent"})
    walk_in = fields.Boolean(metadata={"description": "marked present without signing up"})
    created_at = LocalDateTime()
    checked_in_at = LocalDateTime(allow_none=True)
    checked_in_by_id = fields.Integer(allow_none=True)
    checkin_method = fields.String(allow_none=True, metadata={"description": "qr · code · organiser"})
    points_awarded = fields.Integer(allow_none=True)
    hours_credited = fields.Float(allow_none=True)


class ActivitySchema(StrictSchema):
    id = fields.Integer()
    community_id = fields.Integer()
    title = fields.String()
    description = fields.String()
    place = fields.String()
    starts_at = LocalDateTime()
    ends_at = LocalDateTime()
    capacity = fields.Integer()
    signed_up = fields.Integer(metadata={"description": "places taken (walk-ins included)"})
    places_left = fields.Integer()
    level = fields.Integer()
    hours = fields.Float()
    points = fields.Integer(metadata={"description": "what each attendee earns by the rules"})
    status = fields.String(metadata={"description": "published · cancelled · completed"})
    started = fields.Boolean()
    checkin_open = fields.Boolean()
    checkin_opens_at = LocalDateTime()
    checkin_closes_at = LocalDateTime()
    created_by_id = fields.Integer()
    created_at = LocalDateTime()
    completed_at = LocalDateTime(allow_none=True)
    cancelled_at = LocalDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    my_signup = fields.Nested(SignUpSchema, allow_none=True)


class ActivityQuerySchema(PageQuery):
    when = fields.String(load_default="all", validate=validate.OneOf(["upcoming", "past", "all"]))
    status = fields.String(validate=validate.OneOf(STATUSES))


class AttendanceQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(SIGNUP_STATUSES))


class MyActivitiesQuerySchema(PageQuery):
    community_id = fields.Integer(validate=ID_RANGE)
    status = fields.String(validate=validate.OneOf(SIGNUP_STATUSES))


class MySignUpSchema(SignUpSchema):
    activity = fields.Nested(ActivitySchema)


class CheckinSchema(StrictSchema):
    code = fields.String(validate=validate.Length(min=1, max=20),
                         metadata={"description": "the 6 digits under the QR (volunteer)"})
    token = fields.String(validate=validate.Length(min=1, max=200),
                          metadata={"description": "the t= of the scanned QR URL (volunteer)"})
    user_id = StrictInteger(validate=ID_RANGE,
                            metadata={"description": "organiser: mark this member present"})

    @ma.validates_schema
    def exactly_one(self, data, **_kwargs):
        if len([k for k in ("code", "token", "user_id") if k in data]) != 1:
            raise ma.ValidationError("Give exactly one of code, token or user_id.", "code")


class CheckinCodeSchema(StrictSchema):
    activity_id = fields.Integer()
    code = fields.String(metadata={"description": "6 digits, changes every 30 s"})
    token = fields.String()
    url = fields.String(metadata={"description": "what the QR encodes"})
    qr_png = fields.String(metadata={"description": "the QR as a data:image/png;base64 URL"})
    valid_until = LocalDateTime(metadata={"description": "the QR's token stops working"})
    code_valid_until = LocalDateTime()
    refresh_at = LocalDateTime(metadata={"description": "a new code is shown from then"})
    refresh_seconds = fields.Integer()
    checkin_open = fields.Boolean()


class AttendanceSchema(StrictSchema):
    items = fields.List(fields.Nested(SignUpSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "signed_up, attended, absent, cancelled, walk_in"})
