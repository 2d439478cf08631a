"""Exports over HTTP: CSV in UTF-8 with BOM, streamed; the monthly summary also as .xlsx."""

from __future__ import annotations

from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from app.auth.decorators import admin_required, login_required
from app.communities import access
from app.communities.models import Role
from app.errors import NotFound
from app.exports import service
from app.exports.schemas import AreaExportQuerySchema, ExportQuerySchema
from app.stats import service as stats

blp = Blueprint("exports", __name__, url_prefix="/api/v1",
                description="Excel-ready exports of a community's wishes, ledger, redemptions, "
                            "reports, activities and monthly summary (organisers)")

CSV_DOC = {"200": {"description": "CSV, UTF-8 with a byte-order mark, Chinese headers, "
                                  "Asia/Shanghai times; streamed (chunked)",
                   "content": {"text/csv": {"schema": {"type": "string"}}}}}
XLSX_DOC = {"200": {"description": "an Excel workbook: sheets 汇总, 心愿板 (or 各社区), 服务队",
                    "content": {service.XLSX_TYPE: {"schema": {"type": "string",
                                                               "format": "binary"}}}}}


@blp.route("/communities/<int:cid>/exports/<string:table>.csv", methods=["GET"])
@login_required
@blp.arguments(ExportQuerySchema, location="query")
@blp.doc(responses=CSV_DOC)
def export_csv(query, cid, table):
    """A table of the community as CSV for Excel (organiser)

    `table` is one of `wishes` (posted in the period), `ledger` (every entry of the period,
    with the account holder), `redemptions`, `reports`, `activities` (one row per sign-up,
    with check-in and hours credited; activities that started in the period) and `summary`
    (the period's figures, the boards with their 红黄蓝 when the period is a month, and the
    teams). Personal data (names, phones, addresses) is in it: organisers only, and each
    export is written to the community's audit log. Text cells that Excel would run as a
    formula (starting with = + - @) are prefixed with '. Rows are read from a server-side
    cursor and streamed with chunked transfer encoding: a cut download is an error, never a
    shorter file with a 200.
    """
    community = access.community(cid, Role.ORGANISER)
    if table not in service.TABLES:
        raise NotFound()
    return service.export_response(community.id, table, "csv", *service.period_of(query),
                                   current_user.id)


@blp.route("/communities/<int:cid>/exports/summary.xlsx", methods=["GET"])
@login_required
@blp.arguments(ExportQuerySchema, location="query")
@blp.doc(responses=XLSX_DOC)
def export_summary_xlsx(query, cid):
    """The monthly summary as an Excel workbook (organiser)

    The same figures as `summary.csv`, one sheet per section. `month=YYYY-MM` (or
    `from`/`to`); default this month so far. Written to the audit log.
    """
    community = access.community(cid, Role.ORGANISER)
    return service.export_response(community.id, "summary", "xlsx", *service.period_of(query),
                                   current_user.id)


def _area_summary(query: dict, ext: str):
    street, district = query.get("street"), query.get("district")
    ids = stats.communities_of(street, district)
    return service.area_summary_response(ids, *service.period_of(query), ext, current_user.id,
                                         {"street": street, "district": district})


@blp.route("/exports/summary.csv", methods=["GET"])
@admin_required
@blp.arguments(AreaExportQuerySchema, location="query")
@blp.doc(responses=CSV_DOC)
def export_area_summary_csv(query):
    """A street's (街道) or district's summary as CSV (platform admin)

    The area's figures recomputed over all its communities, then one row per community:
    counts only, no personal data. Neither `street` nor `district`: every community.
    """
    return _area_summary(query, "csv")


@blp.route("/exports/summary.xlsx", methods=["GET"])
@admin_required
@blp.arguments(AreaExportQuerySchema, location="query")
@blp.doc(responses=XLSX_DOC)
def export_area_summary_xlsx(query):
    """A street's (街道) or district's summary as an Excel workbook (platform admin)

    Sheets 汇总 (the area's figures) and 各社区 (one row per community); no personal data.
    """
    return _area_summary(query, "xlsx")
