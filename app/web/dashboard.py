"""The organiser dashboard: trend charts (server-side SVG), 红黄蓝 table, top volunteers and teams.

`/organiser/dashboard` shows a month — this month so far by default, or `?month=2026-11` —
beside the month before it (this month so far beside the same days of last month), for the
organisers of the current community. The charts are separate SVG answers (<img>, lazy-loaded)
whose address names the community, so a browser's cached chart of one community is never shown
for another, and an organiser of another community gets 404 for them, as for any of its objects.

The export links are page routes (`/organiser/exports/<name>.<ext>`) of the current community
that hand the request to the same export service as the API (its period schema, its audit
record), and answer a bad period with a page in words rather than JSON.
"""

from __future__ import annotations

from datetime import date, timedelta

import marshmallow as ma
from flask import Response, g, request, url_for
from flask_jwt_extended import current_user

from app.communities import access
from app.communities.models import Role
from app.errors import NotFound, ValidationFailed
from app.errors import _localise_field_errors as localise_field_errors
from app.exports import service as exports
from app.exports.schemas import ExportQuerySchema
from app.i18n import N_, gettext
from app.ledger.leaderboard import leaderboard
from app.stats import charts, ratings
from app.stats import service as stats
from app.stats.models import RATING_LABELS
from app.web import html_lang
from app.web.pages import error_page, login_required, page_blueprint, render, role_required

bp = page_blueprint("dashboard_pages", __name__)

WEEKS = 12  # six week labels fit a 360 px chart
RATING_MONTHS = 4  # four columns of 红黄蓝 fit a 360 px screen beside the board names
TOP = 5
FIRST_MONTH = date(2000, 1, 1)  # before this no community kept records here
# A chart is an image: its own inline <style> (pygal's) and nothing else — no script, no fetch.
CHART_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
CHART_CACHE = "private, max-age=300"
# The exports an organiser downloads (app/exports): (name, extension, label msgid).
EXPORTS = (
    ("wishes", "csv", N_("心愿明细")),
    ("ledger", "csv", N_("积分流水")),
    ("redemptions", "csv", N_("兑换记录")),
    ("reports", "csv", N_("随手拍上报")),
    ("activities", "csv", N_("志愿活动与签到")),
    ("summary", "csv", N_("月度汇总")),
    ("summary", "xlsx", N_("月度汇总")),
)


@bp.get("/organiser/dashboard")
@role_required(Role.ORGANISER)
def dashboard():
    month = _month(request.args.get("month"))
    if month is None:
        return error_page(422, gettext("没有这个月份的数据。"),
                          gettext("月份写成 2026-11 这样，而且不能晚于本月。"))
    return render("organiser/dashboard.html", **overview(g.community.id, month))


@bp.get("/organiser/dashboard/charts/<int:cid>/<name>.svg")
@login_required
def chart(cid: int, name: str):
    """One trend chart of the last weeks, for organisers of community `cid`."""
    if name not in charts.CHARTS:
        raise NotFound()
    access.community(cid, Role.ORGANISER)
    response = Response(charts.render_svg(name, stats.weekly_series(cid, WEEKS)),
                        mimetype="image/svg+xml")
    response.headers["Cache-Control"] = CHART_CACHE
    response.headers["Content-Security-Policy"] = CHART_POLICY
    return response


@bp.get("/organiser/exports/<name>.<ext>")
@role_required(Role.ORGANISER)
def export(name: str, ext: str):
    """A download of the current community, written by the exports service (its audit record
    and its streaming), with the API's checks of ?from=&to= or ?month=."""
    if (name, ext) not in {(n, e) for n, e, _label in EXPORTS}:
        raise NotFound()
    try:
        query = ExportQuerySchema().load(request.args)
        start, end = exports.period_of(query)
    except ma.ValidationError as error:  # say which field is wrong, in words
        found = localise_field_errors(error.normalized_messages())
        return _bad_export("；".join(m for field in found.values()
                                    for m in (field if isinstance(field, list) else [str(field)])))
    except ValidationFailed as error:
        return _bad_export("；".join(m for found in (error.errors or {}).values() for m in found))
    return exports.export_response(g.community.id, name, ext, start, end, current_user.id)


def _bad_export(message: str):
    return error_page(422, message, gettext("请回到数据看板，用那里的链接下载。"))


# --- what the page shows ----------------------------------------------------------------------

def _month(text: str | None) -> date | None:
    """The month asked for (this month when none); None when it is not a month we have."""
    current = stats.today().replace(day=1)
    try:
        month = stats.parse_month(text)
    except ValidationFailed:
        return None
    return month if FIRST_MONTH <= month <= current else None


def overview(cid: int, month: date) -> dict:
    today = stats.today()
    is_current = month == today.replace(day=1)
    start, end = stats.month_bounds(month)
    before = stats.previous_month(month)
    before_start, before_end = stats.month_bounds(before)
    if is_current:  # this month so far, beside the same days of last month
        end = today
        before_end = before.replace(day=min(today.day, before_end.day))
    series = stats.weekly_series(cid, WEEKS)
    return {
        "month": month, "start": start, "end": end,
        "before": before, "before_start": before_start, "before_end": before_end,
        "is_current": is_current,
        "later": _later(month, today),
        "figures": charts.month_over_month(stats.community_stats([cid], start, end),
                                           stats.community_stats([cid], before_start, before_end)),
        "charts": _charts(cid, series),
        "ratings": rating_table(cid, month, today),
        "volunteers": _board(leaderboard(cid, "month", "volunteer", TOP, on=month)),
        "teams": _board(leaderboard(cid, "month", "team", TOP, on=month)),
        "exports": _exports(start, end, month),
    }


def _later(month: date, today: date) -> date | None:
    following = (month + timedelta(days=32)).replace(day=1)
    return following if following <= today.replace(day=1) else None


def _charts(cid: int, series: list[dict]) -> list[dict]:
    found = []
    for name, drawn in charts.CHARTS.items():
        unit = charts.UNITS[name]
        rows = [{"week": charts.week_label(p),
                 "values": [charts.format_value(unit, p.get(key)) for key, _legend in drawn.series]}
                for p in series]
        found.append({
            "name": name, "title": gettext(drawn.title), "alt": charts.describe(name, series),
            # The language is part of the address: a cached chart keeps its legend's language.
            "url": url_for("dashboard_pages.chart", cid=cid, name=name, lang=html_lang()),
            "width": charts.WIDTH, "height": charts.HEIGHT,
            "columns": [gettext(legend) for _key, legend in drawn.series], "rows": rows})
    return found


def rating_table(cid: int, month: date, today: date) -> dict:
    """Boards × months of 红黄蓝, oldest month first; each column says whether it is final."""
    months = [month]
    for _ in range(RATING_MONTHS - 1):
        months.insert(0, stats.previous_month(months[0]))
    current = today.replace(day=1)
    boards: dict[int, dict] = {}
    columns = []
    for m in months:
        columns.append({"month": m, "label": gettext("{m} 月").format(m=m.month),
                        "state": gettext("已定") if ratings.is_closed(cid, m) else
                        gettext("本月实时") if m == current else gettext("实时")})
        for row in ratings.month_ratings(cid, m):
            board = boards.setdefault(row["board_id"], {
                "name": row["board_name"], "grid": row["grid_label"], "cells": {}})
            board["cells"][m] = {"rating": row["rating"], "wishes": row["wishes"],
                                 "word": gettext(RATING_LABELS[row["rating"]])
                                 if row["rating"] else None}
    return {"columns": columns, "boards": [boards[b] for b in sorted(boards)]}


def _board(found: dict) -> dict:
    """A leaderboard in the shape the ranking macro reads (no "mine" rows here)."""
    return {"top": found["items"], "own": [], "own_below": []}


def _exports(start: date, end: date, month: date) -> list[dict]:
    """The download links of the month shown: its days for CSV, the month for the summary."""
    period = {"from": start.isoformat(), "to": end.isoformat()}
    links = []
    for name, ext, label in EXPORTS:
        query = {"month": month.strftime("%Y-%m")} if ext == "xlsx" else period
        links.append({"url": url_for("dashboard_pages.export", name=name, ext=ext, **query),
                      "label": gettext(label), "format": "Excel (.xlsx)" if ext == "xlsx"
                      else "CSV"})
    return links
