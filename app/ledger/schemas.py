"""Schemas of the points endpoints."""

import marshmallow as ma
from marshmallow import fields, validate

from app.ledger.models import SOURCES
from app.ledger.service import CATEGORIES, LEVELS
from app.schemas import ID_RANGE, LocalDateTime, PageQuery, StrictInteger, StrictSchema, Text

MAX_ENTRY_ID = 2**63 - 1  # ledger entry ids are 64-bit
MAX_POINTS = 1_000_000  # no single rule or adjustment moves more than this


class RuleSchema(StrictSchema):
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    level = StrictInteger(required=True, validate=validate.Range(min=1, max=5))
    points = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_POINTS))


class FactorsSchema(StrictSchema):
    """Percent of the rule's points a wish earns for each rating, 0–100."""

    _percent = {"required": True, "validate": validate.Range(min=0, max=100)}
    star_1 = StrictInteger(data_key="1", **_percent)
    star_2 = StrictInteger(data_key="2", **_percent)
    star_3 = StrictInteger(data_key="3", **_percent)
    star_4 = StrictInteger(data_key="4", **_percent)
    star_5 = StrictInteger(data_key="5", **_percent)


class PointsRulesSchema(StrictSchema):
    rules = fields.List(fields.Nested(RuleSchema), required=True,
                        metadata={"description": "one row per (category, level): 15 rows"})
    satisfaction_factors = fields.Nested(FactorsSchema, required=True)
    daily_earn_cap = StrictInteger(
        required=True, allow_none=True, validate=validate.Range(min=1, max=MAX_POINTS),
        metadata={"description": "points a volunteer can earn per day here; null: no cap"},
    )
    expiry_months = StrictInteger(
        allow_none=True, validate=validate.Range(min=1, max=120),
        metadata={"description": "points expire this many months after they were earned, at "
                                 "00:00 Asia/Shanghai, oldest spent first; null: never "
                                 "(the default). Left out of a PUT: unchanged."},
    )

    @ma.validates_schema
    def complete_table(self, data, **_kwargs):
        pairs = [(r["category"], r["level"]) for r in data.get("rules", [])]
        expected = {(c, lv) for c in CATEGORIES for lv in LEVELS}
        if len(pairs) != len(set(pairs)) or set(pairs) != expected:
            raise ma.ValidationError(
                "Give each (category, level) exactly once: wish, report, activity × levels 1–5.",
                "rules")


class ExpiringSchema(StrictSchema):
    points = fields.Integer(dump_only=True)
    on = fields.Date(dump_only=True)


class PointsSummarySchema(StrictSchema):
    community_id = fields.Integer(dump_only=True)
    balance = fields.Integer(dump_only=True)
    earned_total = fields.Integer(dump_only=True)
    redeemed_total = fields.Integer(dump_only=True)
    pending = fields.Integer(dump_only=True,
                             metadata={"description": "points of wishes awaiting confirmation"})
    by_source = fields.Dict(
        keys=fields.String(), values=fields.Integer(), dump_only=True,
        metadata={"description": "points earned from each source: wish, report, activity, "
                                 "adjustment (signed)"})
    service_hours = fields.Float(dump_only=True,
                                 metadata={"description": "志愿时长: hours of completed activities"})
    expiring = fields.Nested(
        ExpiringSchema, allow_none=True, dump_only=True,
        metadata={"description": "the next points to expire and the day (00:00 Asia/Shanghai); "
                                 "null when expiry is off or nothing is left to expire"})


class CommunityQuerySchema(StrictSchema):
    community_id = fields.Integer(validate=ID_RANGE)


class LedgerQuerySchema(PageQuery):
    community_id = fields.Integer(validate=ID_RANGE)
    after = fields.Integer(validate=validate.Range(min=1, max=MAX_ENTRY_ID),
                           metadata={"description": "keyset paging: entries older than this id"})


class OrganiserLedgerQuerySchema(PageQuery):
    after = fields.Integer(validate=validate.Range(min=1, max=MAX_ENTRY_ID))


class EntrySchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    transfer_id = fields.Integer(dump_only=True)
    amount = fields.Integer(dump_only=True)
    balance_after = fields.Integer(dump_only=True)
    kind = fields.String(dump_only=True)
    reference = fields.String(dump_only=True, metadata={"description": "the cause's key"})
    memo = fields.String(dump_only=True)
    created_at = LocalDateTime(dump_only=True)


class LedgerPageSchema(StrictSchema):
    items = fields.List(fields.Nested(EntrySchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    next_after = fields.Integer(allow_none=True,
                                metadata={"description": "pass as ?after= for the next page"})


class AdjustmentCreateSchema(StrictSchema):
    user_id = StrictInteger(required=True, validate=ID_RANGE)
    amount = StrictInteger(required=True, validate=[
        validate.Range(min=-MAX_POINTS, max=MAX_POINTS),
        validate.NoneOf([0], error="Must not be zero."),
    ])
    reason = Text(required=True, max_length=200)


class AdjustmentSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    community_id = fields.Integer(dump_only=True)
    user_id = fields.Integer(dump_only=True)
    amount = fields.Integer(dump_only=True)
    reason = fields.String(dump_only=True)
    key = fields.String(dump_only=True)
    actor_id = fields.Integer(dump_only=True)
    balance_after = fields.Integer(dump_only=True, allow_none=True)
    created_at = LocalDateTime(dump_only=True)
    replayed = fields.Boolean(dump_only=True)


class AuditEventSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    actor_id = fields.Integer(dump_only=True, allow_none=True)
    action = fields.String(dump_only=True)
    subject_user_id = fields.Integer(dump_only=True, allow_none=True)
    details = fields.Dict(dump_only=True)
    created_at = LocalDateTime(dump_only=True)


class LeaderboardQuerySchema(StrictSchema):
    period = fields.String(load_default="week", validate=validate.OneOf(["week", "month", "all"]))
    by = fields.String(load_default="volunteer", validate=validate.OneOf(["volunteer", "team"]))
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    source = fields.String(validate=validate.OneOf(list(SOURCES)), metadata={
        "description": "count only points from this source (default: all); a closed week's "
                       "frozen ranking is of all sources"})
    on = fields.Date(metadata={"description": "a day in the period wanted (default today, "
                                              "Asia/Shanghai); past weeks answer frozen rankings"})


class RankSchema(StrictSchema):
    rank = fields.Integer()
    user_id = fields.Integer()
    team_id = fields.Integer()
    display_name = fields.String()
    points = fields.Integer()
    wishes_fulfilled = fields.Integer()
    last_earned_at = fields.String(allow_none=True)


class LeaderboardSchema(StrictSchema):
    period = fields.String()
    by = fields.String()
    source = fields.String(allow_none=True, metadata={"description": "null: all sources"})
    start = fields.String(allow_none=True)
    end = fields.String(allow_none=True)
    frozen = fields.Boolean()
    frozen_at = LocalDateTime(allow_none=True)
    champion = fields.Nested(RankSchema, allow_none=True,
                             metadata={"description": "积分冠军: first of the ranking"})
    items = fields.List(fields.Nested(RankSchema))
