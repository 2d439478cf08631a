"""Excel-ready exports: which rows, under which Chinese headers, written how.

Every export is a table: a header row in Chinese and one row per object, read from the database
through a server-side cursor (`yield_per`: PostgreSQL declares a named cursor, SQLite steps its
statement) and written out as CSV a few hundred rows at a time, so the worker's memory stays
the same whether a community has a hundred entries or ten million. The monthly summary is
small (figures, boards, teams) and is also offered as an .xlsx workbook.

Excel opens a CSV as Chinese only when it starts with a byte-order mark; and it runs any cell
that starts with = + - @ (or a tab or carriage return) as a formula, so such text gets a
leading apostrophe, the way Excel itself marks "text, not a formula". Numbers are left alone:
a debit of −20 is a number, not a formula.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

import sqlalchemy as sa
from flask import Response, stream_with_context
from openpyxl import Workbook
from sqlalchemy.orm import aliased

from app import audit
from app.activities.models import Activity, SignUp
from app.activities.transitions import STATUS_LABELS as ACTIVITY_LABELS
from app.auth.models import User
from app.extensions import db
from app.ledger.models import Account, Entry, Transfer, TransferKind
from app.localtime import SHANGHAI
from app.reports.models import CATEGORIES as REPORT_CATEGORIES
from app.reports.models import Report
from app.reports.transitions import STATUS_LABELS as REPORT_LABELS
from app.stats import ratings
from app.stats import service as stats
from app.stats.models import RATING_LABELS
from app.store.models import Redemption
from app.store.service import STATUS_LABELS as REDEMPTION_LABELS
from app.wishes.models import CATEGORIES as WISH_CATEGORIES
from app.wishes.models import Board, Wish
from app.wishes.transitions import STATUS_LABELS as WISH_LABELS

BOM = "\ufeff"
BATCH = 500  # rows fetched from the cursor, and written out, at a time
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TABLES = ("wishes", "ledger", "redemptions", "reports", "activities", "summary")
TABLE_NAMES = {"wishes": "心愿", "ledger": "积分流水", "redemptions": "兑换记录",
               "reports": "随手拍", "activities": "活动与签到", "summary": "月度汇总"}

TRANSFER_LABELS = {TransferKind.EARN_WISH: "心愿奖励", TransferKind.EARN_REPORT: "随手拍奖励",
                   TransferKind.EARN_ACTIVITY: "活动奖励", TransferKind.ADJUSTMENT: "调整",
                   TransferKind.REDEMPTION: "兑换", TransferKind.REFUND: "退还",
                   TransferKind.EXPIRY: "过期", TransferKind.DEBIT: "扣除"}
ACCOUNT_LABELS = {"issuance": "积分发放", "store": "爱心超市", "expiry": "过期积分"}
SIGNUP_LABELS = {"signed_up": "已报名", "cancelled": "已取消报名", "attended": "已签到",
                 "absent": "未到场"}
CHECKIN_LABELS = {"qr": "扫码", "code": "签到码", "organiser": "工作人员登记"}
REWARD_KINDS = {"goods": "物品", "service": "服务", "honour": "荣誉"}


def safe(value):
    """A cell as Excel should show it: text that Excel would run as a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def local(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def yes_no(flag) -> str:
    return "是" if flag else "否"


@dataclass(frozen=True)
class Table:
    """An export: its headers, the query of its rows (given a community and a UTC range) and how
    one result row becomes one CSV row."""

    headers: tuple[str, ...]
    query: Callable[[int, datetime, datetime], sa.Select]
    row: Callable[[sa.Row], Iterable]


# --- the tables ------------------------------------------------------------------------------

Owner, Claimer, Poster = aliased(User), aliased(User), aliased(User)


def _wishes(cid: int, start: datetime, end: datetime) -> sa.Select:
    return (sa.select(Wish.id, Wish.created_at, Board.name, Board.grid_label, Wish.category,
                      Wish.title, Wish.description, Wish.status, Wish.level,
                      sa.func.coalesce(Owner.display_name, Wish.proxy_name),
                      sa.func.coalesce(Wish.contact_phone, Owner.phone, Wish.proxy_phone),
                      Wish.address, Poster.display_name, Wish.posted_by_id != Wish.owner_id,
                      Claimer.display_name, Wish.claimed_at, Wish.fulfilled_at, Wish.closed_at,
                      Wish.rating, Wish.rating_auto, Wish.comment, Wish.points_awarded,
                      Wish.reason)
            .join(Board, Board.id == Wish.board_id)
            .outerjoin(Owner, Owner.id == Wish.owner_id)
            .outerjoin(Claimer, Claimer.id == Wish.claimer_id)
            .join(Poster, Poster.id == Wish.posted_by_id)
            .where(Wish.community_id == cid, Wish.created_at >= start, Wish.created_at < end)
            .order_by(Wish.created_at, Wish.id))


def _wish_row(r: sa.Row) -> Iterable:
    (wid, created, board, grid, category, title, description, status, level, owner, phone,
     address, poster, by_proxy, claimer, claimed, fulfilled, closed, rating, rating_auto,
     comment, points, reason) = r
    return (wid, local(created), board, grid or "", WISH_CATEGORIES.get(category, {}).get(
        "label", category), title, description, WISH_LABELS.get(status, status), level or "",
            owner or "", phone or "", address or "", poster if by_proxy else "", claimer or "",
            local(claimed), local(fulfilled), local(closed), rating or "",
            yes_no(rating_auto) if rating else "", comment or "", points or 0, reason or "")


WISHES = Table(
    ("编号", "提交时间", "心愿板", "网格", "类别", "标题", "内容", "状态", "等级", "心愿人",
     "联系电话", "地址", "代办人", "认领志愿者", "认领时间", "完成时间", "办结时间", "评分",
     "自动确认", "评价", "所得积分", "退回或撤回原因"),
    _wishes, _wish_row)


Holder, Actor = aliased(User), aliased(User)


def _ledger(cid: int, start: datetime, end: datetime) -> sa.Select:
    return (sa.select(Entry.id, Entry.transfer_id, Entry.created_at, Transfer.kind, Account.kind,
                      Account.key, Holder.display_name, Holder.phone, Entry.amount,
                      Entry.balance_after, Transfer.key, Transfer.memo, Actor.display_name)
            .join(Transfer, Transfer.id == Entry.transfer_id)
            .join(Account, Account.id == Entry.account_id)
            .outerjoin(Holder, Holder.id == Account.user_id)
            .outerjoin(Actor, Actor.id == Transfer.actor_id)
            .where(Entry.community_id == cid, Entry.created_at >= start, Entry.created_at < end)
            .order_by(Entry.created_at, Entry.id))


def _ledger_row(r: sa.Row) -> Iterable:
    (eid, tid, created, kind, account_kind, account_key, holder, phone, amount, balance,
     reference, memo, actor) = r
    return (eid, tid, local(created), TRANSFER_LABELS.get(kind, kind),
            holder or ACCOUNT_LABELS.get(account_kind, account_key), phone or "", amount,
            balance, reference, memo or "", actor or "")


LEDGER = Table(
    ("分录号", "流水号", "时间", "类型", "账户", "手机号", "积分变动", "变动后余额", "业务编号",
     "说明", "经办人"),
    _ledger, _ledger_row)


def _redemptions(cid: int, start: datetime, end: datetime) -> sa.Select:
    return (sa.select(Redemption.id, Redemption.created_at, Holder.display_name, Holder.phone,
                      Redemption.reward_name, Redemption.reward_kind, Redemption.quantity,
                      Redemption.unit_cost, Redemption.cost_total, Redemption.status,
                      Redemption.at_counter, Redemption.fulfilled_at, Redemption.cancelled_at,
                      Redemption.cancel_reason)
            .join(Holder, Holder.id == Redemption.user_id)
            .where(Redemption.community_id == cid, Redemption.created_at >= start,
                   Redemption.created_at < end)
            .order_by(Redemption.created_at, Redemption.id))


def _redemption_row(r: sa.Row) -> Iterable:
    (rid, created, name, phone, reward, kind, quantity, unit, total, status, at_counter,
     fulfilled, cancelled, reason) = r
    return (rid, local(created), name, phone, reward, REWARD_KINDS.get(kind, kind), quantity,
            unit, total, REDEMPTION_LABELS.get(status, status), yes_no(at_counter),
            local(fulfilled), local(cancelled), reason or "")


REDEMPTIONS = Table(
    ("编号", "兑换时间", "兑换人", "手机号", "奖品", "类型", "数量", "单价（积分）", "合计积分",
     "状态", "柜台代兑", "领取时间", "取消时间", "取消原因"),
    _redemptions, _redemption_row)


def _reports(cid: int, start: datetime, end: datetime) -> sa.Select:
    return (sa.select(Report.id, Report.created_at, Report.category, Report.description,
                      Report.location, Report.status, Holder.display_name, Holder.phone,
                      Report.level, Report.points_awarded, Report.assigned_to,
                      Report.accepted_at, Report.resolved_at, Report.resolution_note,
                      Report.reject_reason, Report.duplicate_of)
            .join(Holder, Holder.id == Report.reporter_id)
            .where(Report.community_id == cid, Report.created_at >= start,
                   Report.created_at < end)
            .order_by(Report.created_at, Report.id))


def _report_row(r: sa.Row) -> Iterable:
    (rid, created, category, description, location, status, name, phone, level, points,
     assigned, accepted, resolved, note, reject, duplicate) = r
    return (rid, local(created), REPORT_CATEGORIES.get(category, category), description,
            location, REPORT_LABELS.get(status, status), name, phone, level or "", points or 0,
            assigned or "", local(accepted), local(resolved), note or "", reject or "",
            duplicate or "")


REPORTS = Table(
    ("编号", "上报时间", "问题类别", "问题描述", "地点", "状态", "上报人", "手机号", "等级",
     "所得积分", "分办给", "受理时间", "办结时间", "处理说明", "不予采纳原因", "重复于"),
    _reports, _report_row)


def _activities(cid: int, start: datetime, end: datetime) -> sa.Select:
    # One row per sign-up, and one for an activity nobody signed up to (the outer join).
    return (sa.select(Activity.id, Activity.title, Activity.place, Activity.starts_at,
                      Activity.ends_at, Activity.status, Activity.capacity, Activity.half_hours,
                      Holder.display_name, Holder.phone, SignUp.status, SignUp.walk_in,
                      SignUp.created_at, SignUp.checked_in_at, SignUp.checkin_method,
                      SignUp.half_hours_credited, SignUp.points_awarded)
            .outerjoin(SignUp, SignUp.activity_id == Activity.id)
            .outerjoin(Holder, Holder.id == SignUp.user_id)
            .where(Activity.community_id == cid, Activity.starts_at >= start,
                   Activity.starts_at < end)
            .order_by(Activity.starts_at, Activity.id, SignUp.id))


def _activity_row(r: sa.Row) -> Iterable:
    (aid, title, place, starts, ends, status, capacity, half_hours, name, phone, signup,
     walk_in, signed, checked_in, method, credited, points) = r
    return (aid, title, place, local(starts), local(ends), ACTIVITY_LABELS.get(status, status),
            capacity, half_hours / 2, name or "", phone or "",
            SIGNUP_LABELS.get(signup, signup or ""), yes_no(walk_in) if signup else "",
            local(signed), local(checked_in), CHECKIN_LABELS.get(method, method or ""),
            (credited or 0) / 2 if signup else "", points or 0 if signup else "")


ACTIVITIES = Table(
    ("活动编号", "活动名称", "地点", "开始时间", "结束时间", "活动状态", "名额", "服务时长（小时）",
     "志愿者", "手机号", "报名状态", "现场登记", "报名时间", "签到时间", "签到方式",
     "计入时长（小时）", "所得积分"),
    _activities, _activity_row)

ROW_TABLES = {"wishes": WISHES, "ledger": LEDGER, "redemptions": REDEMPTIONS,
              "reports": REPORTS, "activities": ACTIVITIES}


# --- writing ---------------------------------------------------------------------------------


def _csv_chunks(headers: Iterable, rows: Iterable[Iterable]) -> Iterator[bytes]:
    """CSV bytes, BOM first, in chunks of BATCH rows (one write per chunk, not per row)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180, as Excel writes it
    buffer.write(BOM)
    writer.writerow(headers)
    for count, row in enumerate(rows, 1):
        writer.writerow([safe(cell) for cell in row])
        if count % BATCH == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def table_rows(name: str, community_id: int, start: date, end: date) -> Iterator[Iterable]:
    """The rows of a table export, fetched BATCH at a time from a server-side cursor."""
    table = ROW_TABLES[name]
    statement = table.query(community_id, *stats.utc_range(start, end))
    result = db.session.execute(statement.execution_options(yield_per=BATCH))
    try:
        for row in result:
            yield table.row(row)
    finally:
        result.close()


def summary_sections(community_ids: list[int], start: date,
                     end: date) -> list[tuple[str, tuple, list[tuple]]]:
    """The monthly summary as (sheet, headers, rows): the figures; then, for one community, its
    boards (with 红黄蓝 when the period is a calendar month) and teams, or for an area one row
    per community. Counts and names of boards, teams and communities only: no personal data."""
    figures = stats.community_stats(community_ids, start, end)
    w, p = figures["wishes"], figures["points"]
    sat = w["satisfaction"]
    claim, close = w["time_to_claim_seconds"], w["time_to_close_seconds"]
    rows = [("心愿", "提交", w["posted"]),
            *[("心愿", WISH_LABELS[s], w[s]) for s in WISH_LABELS],
            ("心愿", "办结率", _percent(w["completion_rate"])),
            ("满意度", "平均评分", _round(sat["average"])), ("满意度", "评价数", sat["count"]),
            *[("满意度", f"{star} 星", n) for star, n in sorted(sat["distribution"].items())],
            ("时效", "认领用时中位数（小时）", _hours(claim["median"])),
            ("时效", "认领用时 90% 分位（小时）", _hours(claim["p90"])),
            ("时效", "办结用时中位数（小时）", _hours(close["median"])),
            ("时效", "办结用时 90% 分位（小时）", _hours(close["p90"])),
            ("志愿者", "活跃志愿者", figures["volunteers"]["active"]),
            ("积分", "发放", p["issued"]), ("积分", "兑换", p["redeemed"]),
            ("积分", "退还", p["refunded"]), ("积分", "调整", p["adjusted"]),
            ("积分", "过期", p["expired"]),
            ("随手拍", "收到", figures["reports"]["received"]),
            ("随手拍", "受理", figures["reports"]["accepted"]),
            ("随手拍", "办结", figures["reports"]["resolved"]),
            ("活动", "举办", figures["activities"]["held"]),
            ("活动", "参加人次", figures["activities"]["attendances"]),
            ("活动", "服务时长（小时）", figures["activities"]["service_hours"])]
    sections = [("汇总", ("项目", "指标", "数值"), rows)]
    if len(community_ids) == 1:
        cid = community_ids[0]
        colours = {}
        if stats.month_bounds(start) == (start, end):
            colours = {r["board_id"]: r["rating"] for r in ratings.month_ratings(cid, start)}
        boards = [(b["board_name"], b["grid_label"] or "", b["wishes"]["posted"],
                   b["wishes"]["closed"], _percent(b["wishes"]["completion_rate"]),
                   _round(b["wishes"]["satisfaction"]["average"]),
                   _hours(b["wishes"]["time_to_claim_seconds"]["median"]),
                   RATING_LABELS.get(colours.get(b["board_id"]), ""))
                  for b in stats.board_stats(cid, start, end)]
        sections.append(("心愿板", ("心愿板", "网格", "提交", "办结", "办结率", "平均评分",
                                    "认领用时中位数（小时）", "红黄蓝"), boards))
        teams = [(t["team_name"], t["members"], t["active_volunteers"], t["points_earned"],
                  t["wishes"]["closed"], t["service_hours"])
                 for t in stats.team_stats(cid, start, end)]
        sections.append(("服务队", ("服务队", "队员", "活跃队员", "所得积分", "办结心愿",
                                    "服务时长（小时）"), teams))
    else:
        each = [(c["name"], c["wishes"]["posted"], c["wishes"]["closed"],
                 _percent(c["wishes"]["completion_rate"]),
                 _round(c["wishes"]["satisfaction"]["average"]), c["volunteers"]["active"],
                 c["reports"]["received"], c["activities"]["service_hours"])
                for c in stats.by_community(community_ids, start, end)]
        sections.append(("各社区", ("社区", "提交心愿", "办结", "办结率", "平均评分",
                                    "活跃志愿者", "随手拍", "服务时长（小时）"), each))
    return sections


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 2)


def _hours(seconds: float | None) -> float | str:
    return "" if seconds is None else round(seconds / 3600, 1)


def summary_csv(sections) -> bytes:
    """The summary's sections one under another, a blank line between, as Excel shows them."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    for index, (_title, headers, rows) in enumerate(sections):
        if index:
            writer.writerow([])
        writer.writerow(headers)
        writer.writerows([safe(cell) for cell in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


def summary_xlsx(sections) -> bytes:
    """The summary as a workbook, one sheet per section, written in openpyxl's write-only mode."""
    book = Workbook(write_only=True)
    for title, headers, rows in sections:
        sheet = book.create_sheet(title)
        sheet.append(list(headers))
        for row in rows:
            sheet.append([safe(cell) for cell in row])
    with tempfile.TemporaryFile() as file:
        book.save(file)
        file.seek(0)
        return file.read()


# --- answers ---------------------------------------------------------------------------------

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def period_of(query: dict) -> tuple[date, date]:
    """`month=YYYY-MM` as its first and last day, else `from`/`to` (default: this month so far)."""
    if "month" in query:
        return stats.month_bounds(stats.parse_month(query["month"]))
    return stats.period(query)


def filename(label: str, start: date, end: date, ext: str) -> str:
    span = start.strftime("%Y-%m") if stats.month_bounds(start) == (start, end) else \
        f"{start.isoformat()}_{end.isoformat()}"
    return f"{label}-{TABLE_NAMES.get(label, label)}-{span}.{ext}"


def attachment(body, mimetype: str, name: str) -> Response:
    """A download: streamed (no Content-Length, so chunked: a cut stream is an error to the
    client, never a short file with a 200), never cached, named in ASCII and in UTF-8."""
    ascii_name = name.encode("ascii", "ignore").decode() or "export"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{ascii_name}"; filename*=UTF-8\'\'{quote(name)}')
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _summary(sections, ext: str, name: str) -> Response:
    if ext == "xlsx":
        return attachment(summary_xlsx(sections), XLSX_TYPE, name)
    return attachment(summary_csv(sections), CSV_TYPE, name)


def export_response(community_id: int, table: str, ext: str, start: date, end: date,
                    actor_id: int) -> Response:
    """One community's export for its organiser: put on record in the audit log, then written.

    The audit record is committed before the first byte, so an export is on record even when
    the download is abandoned halfway; the rows are read inside the request's context
    (`stream_with_context`), on the session's connection, while the client reads them."""
    audit.record(community_id, actor_id, "export", table=table, format=ext,
                 **{"from": start.isoformat(), "to": end.isoformat()})
    db.session.commit()
    name = filename(table, start, end, ext)
    if table == "summary":
        return _summary(summary_sections([community_id], start, end), ext, name)
    rows = table_rows(table, community_id, start, end)
    return attachment(stream_with_context(_csv_chunks(ROW_TABLES[table].headers, rows)),
                      CSV_TYPE, name)


def area_summary_response(community_ids: list[int], start: date, end: date, ext: str,
                          actor_id: int, area: dict) -> Response:
    """A street's or district's summary for a platform admin: figures only, no personal data;
    on record in each of its communities' audit logs."""
    for cid in community_ids:
        audit.record(cid, actor_id, "export", table="summary", format=ext, area=area,
                     **{"from": start.isoformat(), "to": end.isoformat()})
    db.session.commit()
    return _summary(summary_sections(community_ids, start, end), ext,
                    filename("summary", start, end, ext))
