"""Query parameters of the exports: a period as days (`from`, `to`) or as a month."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.i18n import F_
from app.schemas import Text
from app.stats.schemas import PeriodQuerySchema


class ExportQuerySchema(PeriodQuerySchema):
    month = fields.String(validate=validate.Regexp(r"^\d{4}-\d{2}$", error=F_("Use YYYY-MM.")),
                          metadata={"description": "a calendar month YYYY-MM (Asia/Shanghai), "
                                                   "instead of `from` and `to`"})

    @ma.validates_schema
    def one_kind_of_period(self, data, **_kwargs):
        if "month" in data and ("from_" in data or "to" in data):
            raise ma.ValidationError(F_("Give either `month` or `from`/`to`, not both."), "month")


class AreaExportQuerySchema(ExportQuerySchema):
    street = Text(max_length=64, metadata={"description": "街道: communities of this street"})
    district = Text(max_length=64, metadata={"description": "区: communities of this district"})
