"""Schemas of the statistics and ratings endpoints."""

from __future__ import annotations

from datetime import date

import marshmallow as ma
from marshmallow import fields, validate

from app.i18n import F_
from app.schemas import LocalDateTime, StrictSchema, Text
from app.stats.models import RATINGS

EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
MAX_DAYS = 3700  # about ten years: longer periods are a mistake, not a report


class PeriodQuerySchema(StrictSchema):
    from_ = fields.Date(data_key="from", metadata={
        "description": "first day, Asia/Shanghai (YYYY-MM-DD); default the 1st of this month"})
    to = fields.Date(metadata={
        "description": "last day, included (YYYY-MM-DD); default today (Asia/Shanghai)"})

    @ma.validates_schema
    def sensible(self, data, **_kwargs):
        for key, name in (("from_", "from"), ("to", "to")):
            if key in data and not EARLIEST <= data[key] <= LATEST:
                raise ma.ValidationError(F_("Give a date between 2000-01-01 and 2100-12-31."), name)
        if "from_" in data and "to" in data:
            if data["to"] < data["from_"]:
                raise ma.ValidationError(F_("`to` must not be before `from`."), "to")
            if (data["to"] - data["from_"]).days > MAX_DAYS:
                raise ma.ValidationError(F_("Ask for at most ten years at a time."), "to")


class AreaQuerySchema(PeriodQuerySchema):
    street = Text(max_length=64, metadata={"description": "街道: communities of this street"})
    district = Text(max_length=64, metadata={"description": "区: communities of this district"})


class MonthQuerySchema(StrictSchema):
    month = fields.String(validate=validate.Regexp(r"^\d{4}-\d{2}$", error=F_("Use YYYY-MM.")),
                          metadata={"description": "YYYY-MM (Asia/Shanghai); default this month"})


class TimingSchema(StrictSchema):
    median = fields.Float(allow_none=True)
    p90 = fields.Float(allow_none=True)


class SatisfactionSchema(StrictSchema):
    average = fields.Float(allow_none=True, metadata={
        "description": "mean of ratings given by people (or by proxy); a system auto-"
                       "confirmation's default rating is not counted"})
    count = fields.Integer()
    distribution = fields.Dict(keys=fields.String(), values=fields.Integer(),
                               metadata={"description": '{"1": n, …, "5": n}'})


class WishFiguresSchema(StrictSchema):
    posted = fields.Integer(metadata={"description": "wishes posted in the period (the cohort)"})
    pending = fields.Integer()
    open = fields.Integer()
    claimed = fields.Integer()
    fulfilled = fields.Integer(metadata={"description": "done, awaiting the resident"})
    closed = fields.Integer()
    cancelled = fields.Integer()
    rejected = fields.Integer()
    completion_rate = fields.Float(allow_none=True, metadata={
        "description": "办结率: closed ÷ (posted − cancelled − rejected), 0–1; null when that "
                       "is 0"})
    satisfaction = fields.Nested(SatisfactionSchema)
    time_to_claim_seconds = fields.Nested(TimingSchema, metadata={
        "description": "posting → the current claim, of the cohort's claimed wishes"})
    time_to_close_seconds = fields.Nested(TimingSchema, metadata={
        "description": "posting → closing, of the cohort's closed wishes"})


class PointsFiguresSchema(StrictSchema):
    issued = fields.Integer(metadata={"description": "earned for wishes, reports, activities"})
    redeemed = fields.Integer()
    refunded = fields.Integer()
    adjusted = fields.Integer(metadata={"description": "organiser adjustments, signed"})
    expired = fields.Integer()


class ReportFiguresSchema(StrictSchema):
    received = fields.Integer()
    accepted = fields.Integer()
    resolved = fields.Integer()
    rejected = fields.Integer()


class ActivityFiguresSchema(StrictSchema):
    held = fields.Integer(metadata={"description": "completed activities that started in the "
                                                   "period"})
    attendances = fields.Integer()
    service_hours = fields.Float()


class VolunteerFiguresSchema(StrictSchema):
    active = fields.Integer(metadata={"description": "volunteers who earned points, claimed or "
                                                     "fulfilled a wish in the period"})


class StatsSchema(StrictSchema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    wishes = fields.Nested(WishFiguresSchema)
    volunteers = fields.Nested(VolunteerFiguresSchema)
    points = fields.Nested(PointsFiguresSchema)
    reports = fields.Nested(ReportFiguresSchema)
    activities = fields.Nested(ActivityFiguresSchema)


class CommunityFiguresSchema(StrictSchema):
    community_id = fields.Integer()
    name = fields.String()
    code = fields.String()
    wishes = fields.Nested(WishFiguresSchema)
    volunteers = fields.Nested(VolunteerFiguresSchema)
    reports = fields.Nested(ReportFiguresSchema)
    activities = fields.Nested(ActivityFiguresSchema)


class AreaStatsSchema(StatsSchema):
    street = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    communities = fields.List(fields.Nested(CommunityFiguresSchema))


class BoardStatsSchema(StrictSchema):
    board_id = fields.Integer()
    board_name = fields.String()
    grid_label = fields.String(allow_none=True)
    wishes = fields.Nested(WishFiguresSchema)


class BoardStatsListSchema(StrictSchema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    items = fields.List(fields.Nested(BoardStatsSchema))


class TeamStatsSchema(StrictSchema):
    team_id = fields.Integer()
    team_name = fields.String()
    members = fields.Integer()
    wishes = fields.Nested(WishFiguresSchema, metadata={
        "description": "the cohort's wishes held or done by the team's members"})
    points_earned = fields.Integer()
    active_volunteers = fields.Integer()
    service_hours = fields.Float()


class TeamStatsListSchema(StrictSchema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    items = fields.List(fields.Nested(TeamStatsSchema))



class ThresholdsSchema(StrictSchema):
    completion_rate_red = fields.Float(validate=validate.Range(min=0, max=1), metadata={
        "description": "红 needs 办结率 at least this (0–1); default 0.9"})
    completion_rate_blue = fields.Float(validate=validate.Range(min=0, max=1), metadata={
        "description": "蓝 when 办结率 is below this; default 0.6"})
    satisfaction_red = fields.Float(validate=validate.Range(min=1, max=5), metadata={
        "description": "红 needs average satisfaction at least this (1–5); default 4.5"})
    satisfaction_blue = fields.Float(validate=validate.Range(min=1, max=5), metadata={
        "description": "蓝 when average satisfaction is below this; default 3.5"})
    claim_hours_red = fields.Float(validate=validate.Range(min=0, max=24 * 365), metadata={
        "description": "红 needs the median time to claim at most this many hours; default 24"})
    claim_hours_blue = fields.Float(validate=validate.Range(min=0, max=24 * 365), metadata={
        "description": "蓝 when the median time to claim exceeds this many hours; default 72"})


class BoardRatingSchema(StrictSchema):
    board_id = fields.Integer()
    board_name = fields.String()
    grid_label = fields.String(allow_none=True)
    month = fields.String()
    rating = fields.String(allow_none=True, validate=validate.OneOf(RATINGS), metadata={
        "description": "red (红旗网格, best) | yellow | blue (needs attention); null: no wishes "
                       "posted that month"})
    rating_label = fields.String(allow_none=True, metadata={"description": "红 | 黄 | 蓝"})
    frozen = fields.Boolean(metadata={"description": "true once the month is closed: the "
                                                     "stored rating, which never changes"})
    frozen_at = LocalDateTime(allow_none=True)
    wishes = fields.Integer()
    completion_rate = fields.Float(allow_none=True)
    satisfaction = fields.Float(allow_none=True)
    claim_seconds_median = fields.Float(allow_none=True)
    thresholds = fields.Nested(ThresholdsSchema)


class BoardRatingsSchema(StrictSchema):
    month = fields.String()
    closed = fields.Boolean()
    items = fields.List(fields.Nested(BoardRatingSchema))
