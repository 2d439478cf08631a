"""Schemas of problem reports."""

from marshmallow import fields, validate

from app.reports.models import CATEGORIES
from app.reports.transitions import STATUSES
from app.schemas import (
    ID_RANGE,
    LocalDateTime,
    PageQuery,
    StrictBoolean,
    StrictInteger,
    StrictSchema,
    Text,
)
from app.wishes.schemas import MultilineText


class ReportCreateSchema(StrictSchema):
    category = fields.String(required=True, validate=validate.OneOf(list(CATEGORIES)),
                             metadata={"description": "a slug from GET /api/v1/report-categories",
                                       "example": "fire_lane"})
    description = MultilineText(required=True, max_length=1000,
                                metadata={"example": "3 栋楼下消防通道被两辆电动车堵住了。"})
    location = Text(required=True, max_length=200, metadata={"example": "远创樾府 3 栋东侧"})


class ReportMultipartSchema(ReportCreateSchema):
    """The same fields as multipart/form-data, with the optional photo (documentation only)."""

    photo = fields.Raw(metadata={"type": "string", "format": "binary", "description":
                                 "JPEG, PNG or WebP, up to 10 MB; stored re-encoded without "
                                 "metadata, at most 2048 px on the long side"})


class ReportQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(STATUSES))
    category = fields.String(validate=validate.OneOf(list(CATEGORIES)))
    mine = fields.Boolean(metadata={"description": "only reports I filed"})
    possible_duplicate = fields.Boolean(
        metadata={"description": "true: only those flagged as a possible duplicate"})


class ReportAcceptSchema(StrictSchema):
    level = StrictInteger(required=True, validate=validate.Range(min=1, max=5),
                          metadata={"description": "1–5: the points come from the rules table"})


class ReportRejectSchema(StrictSchema):
    reason = Text(required=True, max_length=200, metadata={"example": "不属于本社区管辖范围"})


class ReportDuplicateSchema(StrictSchema):
    of = StrictInteger(required=True, validate=ID_RANGE,
                       metadata={"description": "id of the original report, same community"})


class ReportAssignSchema(StrictSchema):
    to = Text(required=True, max_length=100, metadata={"example": "物业维修班 张师傅"})


class ReportResolveSchema(StrictSchema):
    note = MultilineText(required=True, max_length=500,
                         metadata={"example": "已联系车主挪车，通道已畅通。"})


class ReportSettingsSchema(StrictSchema):
    residents_may_report = StrictBoolean(
        required=True, metadata={"description": "whether residents may file reports"})


class ReportTimelineEventSchema(StrictSchema):
    action = fields.String()
    action_label = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    actor_id = fields.Integer(allow_none=True)
    actor_name = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    created_at = LocalDateTime()


class ReportSummarySchema(StrictSchema):
    id = fields.Integer()
    community_id = fields.Integer()
    reporter_id = fields.Integer()
    reporter_name = fields.String()
    category = fields.String()
    category_label = fields.String()
    description = fields.String()
    location = fields.String()
    status = fields.String()
    status_label = fields.String()
    level = fields.Integer(allow_none=True)
    points_awarded = fields.Integer(allow_none=True,
                                    metadata={"description": "what the reporter earned"})
    points_capped = fields.Integer(allow_none=True,
                                   metadata={"description": "points the daily cap withheld"})
    assigned_to = fields.String(allow_none=True)
    resolution_note = fields.String(allow_none=True,
                                    metadata={"description": "the feedback the reporter sees"})
    reject_reason = fields.String(allow_none=True)
    duplicate_of = fields.Integer(allow_none=True)
    possible_duplicate_of = fields.Integer(
        allow_none=True, metadata={"description": "a near-identical report by the same reporter "
                                                  "(same category and place, within 24 h)"})
    has_photo = fields.Boolean()
    photo_url = fields.String(allow_none=True)
    photo_width = fields.Integer(allow_none=True)
    photo_height = fields.Integer(allow_none=True)
    created_at = LocalDateTime()
    updated_at = LocalDateTime()
    accepted_at = LocalDateTime(allow_none=True)
    resolved_at = LocalDateTime(allow_none=True)


class ReportSchema(ReportSummarySchema):
    timeline = fields.List(fields.Nested(ReportTimelineEventSchema))


class ReportPageSchema(StrictSchema):
    items = fields.List(fields.Nested(ReportSummarySchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class ReportCategorySchema(StrictSchema):
    slug = fields.String()
    label = fields.String()
