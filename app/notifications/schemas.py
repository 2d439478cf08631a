"""Schemas of the inbox endpoints."""

import marshmallow as ma
from marshmallow import fields, validate

from app.i18n import F_
from app.notifications.catalogue import TYPE_NAMES
from app.schemas import (
    ID_RANGE,
    LocalDateTime,
    PageQuery,
    StrictBoolean,
    StrictInteger,
    StrictSchema,
)

EVENT_TYPE = {"validate": validate.OneOf(TYPE_NAMES),
              "metadata": {"description": "an event type (dotted slug)", "enum": list(TYPE_NAMES)}}


class NotificationQuerySchema(PageQuery):
    unread = fields.Boolean(metadata={"description": "true: only unread; false: only read"})
    after = fields.Integer(validate=ID_RANGE, metadata={
        "description": "keyset paging: the last id of the previous page (its `next_after`)"})


class NotificationObjectSchema(ma.Schema):
    type = fields.String(metadata={"description": "wish, redemption, report, activity, "
                                                  "transfer or account"})
    id = fields.Integer()


class NotificationSchema(ma.Schema):
    id = fields.Integer()
    event_id = fields.Integer()
    type = fields.String(metadata={"enum": list(TYPE_NAMES)})
    label = fields.String(metadata={"description": "short headline in the reader's language"})
    text = fields.String(metadata={"description": "the line, rendered now in the reader's "
                                                  "language from the event"})
    community_id = fields.Integer()
    object = fields.Nested(NotificationObjectSchema, allow_none=True)
    link = fields.String(allow_none=True, metadata={"description": "the phone page it opens"})
    read = fields.Boolean()
    read_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()


class NotificationPageSchema(ma.Schema):
    items = fields.List(fields.Nested(NotificationSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    next_after = fields.Integer(allow_none=True, metadata={
        "description": "pass as `after` for the next page; null on the last"})
    unread_count = fields.Integer(metadata={"description": "the caller's unread notifications"})


class MarkReadSchema(StrictSchema):
    ids = fields.List(StrictInteger(validate=ID_RANGE), validate=validate.Length(min=1, max=500),
                      metadata={"description": "notification ids of the caller's (others' ids "
                                               "are ignored)"})
    all = StrictBoolean(metadata={"description": "true: mark every notification read"})

    @ma.validates_schema
    def one_of(self, data, **_kwargs):
        if ("ids" in data) == bool(data.get("all")):
            raise ma.ValidationError(F_("Give either `ids` or `all: true`."), "ids")


class MarkReadResultSchema(ma.Schema):
    marked = fields.Integer()
    unread_count = fields.Integer()


class MuteTypeSchema(ma.Schema):
    type = fields.String(metadata={"enum": list(TYPE_NAMES)})
    label = fields.String()
    muted = fields.Boolean()


class NotificationSettingsSchema(StrictSchema):
    muted = fields.List(fields.String(**EVENT_TYPE), required=True,
                        validate=validate.Length(max=len(TYPE_NAMES)),
                        metadata={"description": "event types this person does not want in "
                                                 "the inbox"})
    types = fields.List(fields.Nested(MuteTypeSchema), dump_only=True)
