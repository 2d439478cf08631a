"""Exports (issue 10): CSV with BOM and Chinese headers that parse back, Shanghai times, no
formula injection, the monthly summary as CSV and xlsx, who may export, the audit record, bad
periods, and one export streamed by a live gunicorn (chunked, constant memory)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
import pytest
import sqlalchemy as sa

from app.db import frozen_clock
from tests.helpers import assert_error, assert_field_error
from tests.stats_helpers import closed_path, live, local
from tests.wish_helpers import Kit, writing

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def export(kit, name: str, user=None, status: int = 200, **query):
    response = kit.client.get(f"/api/v1/communities/{kit.cid}/exports/{name}",
                              query_string=query, headers=kit.h(user or kit.organiser))
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response


def table(response) -> list[list[str]]:
    """The CSV as Excel reads it: a BOM, then RFC 4180 rows."""
    assert response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode()), raw[:10]
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def wishes_of_october(kit) -> dict[str, int]:
    """A wish posted at 23:30 on 31 October (in), one at 00:30 on 1 November (out), one closed with
    a rating, one whose text Excel would run as a formula."""
    ids = {"late": live(kit, "2026-10-31 23:30", closed_path(kit, 2, 24, rating=4)),
           "next": live(kit, "2026-11-01 00:30", [])}
    with frozen_clock(local("2026-10-10 09:00")):
        ids["formula"] = kit.post_wish(kit.resident, title="=HYPERLINK(\"x\")求助",
                                       description="+86 电话 @物业 -1")["id"]
    return ids


def test_wishes_export_parses_back_with_chinese_headers_and_shanghai_times(kit):
    ids = wishes_of_october(kit)
    response = export(kit, "wishes.csv", **OCTOBER)
    assert response.headers["Cache-Control"] == "no-store"
    assert "filename*=UTF-8''wishes-" in response.headers["Content-Disposition"]
    rows = table(response)
    header = rows[0]
    assert header[:8] == ["编号", "提交时间", "心愿板", "网格", "类别", "标题", "内容", "状态"]
    by_id = {int(row[0]): dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert set(by_id) == {ids["late"], ids["formula"]}  # 00:30 on 1 November is November's
    late = by_id[ids["late"]]
    assert late["提交时间"] == "2026-10-31 23:30:00"
    assert late["办结时间"] == "2026-11-01 23:30:00"
    assert (late["状态"], late["评分"], late["自动确认"]) == ("已办结", "4", "否")
    assert late["心愿人"] == "王女士" and late["认领志愿者"] == "王建国"
    assert late["心愿板"] == "远创樾府 3 栋"
    assert int(late["所得积分"]) > 0
    # Excel would run these: each text cell gets a leading apostrophe.
    formula = by_id[ids["formula"]]
    assert formula["标题"] == "'=HYPERLINK(\"x\")求助"
    assert formula["内容"] == "'+86 电话 @物业 -1"
    november = table(export(kit, "wishes.csv", month="2026-11"))
    assert [int(r[0]) for r in november[1:]] == [ids["next"]]


def test_ledger_export_holds_every_entry_of_the_period_with_numbers_left_alone(kit):
    from app.extensions import db
    from app.ledger.models import Entry
    from app.ledger.service import adjust

    wishes_of_october(kit)
    with frozen_clock(local("2026-10-20 10:00")), writing(kit.app):
        adjust(kit.cid, kit.volunteer.id, -3, "-更正 =误记", kit.organiser.id)
    rows = table(export(kit, "ledger.csv", **OCTOBER))
    header = rows[0]
    assert header == ["分录号", "流水号", "时间", "类型", "账户", "手机号", "积分变动", "变动后余额",
                      "业务编号", "说明", "经办人"]
    with kit.app.app_context():
        low, high = local("2026-10-01 00:00"), local("2026-11-01 00:00")
        expected = db.session.scalar(sa.select(sa.func.count()).select_from(Entry).where(
            Entry.community_id == kit.cid, Entry.created_at >= low, Entry.created_at < high))
    assert len(rows) - 1 == expected > 0
    entries = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    # The 31 October wish closed on 1 November: its award is November's, not October's.
    adjustment = [e for e in entries if e["类型"] == "调整"]
    assert {e["积分变动"] for e in adjustment} == {"-3", "3"}  # a number: no apostrophe
    assert {e["说明"] for e in adjustment} == {"'-更正 =误记"}
    assert {e["经办人"] for e in adjustment} == {"李书记"}
    assert "王建国" in {e["账户"] for e in adjustment}
    # Each transfer's two entries sum to zero.
    by_transfer: dict[str, int] = {}
    for entry in entries:
        by_transfer[entry["流水号"]] = by_transfer.get(entry["流水号"], 0) + int(entry["积分变动"])
    assert set(by_transfer.values()) == {0}


def test_reports_activities_and_redemptions_exports(kit):
    from app.ledger.service import adjust
    from tests.activity_helpers import activity_body

    with frozen_clock(local("2026-10-05 10:00")):
        with writing(kit.app):
            from app.reports.service import update_settings
            update_settings(kit.cid, {"residents_may_report": True}, kit.organiser.id)
            adjust(kit.cid, kit.volunteer.id, 500, "发放", kit.organiser.id)
        report = kit.ok(kit.post(f"/communities/{kit.cid}/reports", kit.resident, {
            "category": "sanitation", "description": "垃圾桶满了", "location": "3栋门口"}), 201)
        kit.ok(kit.post(f"/reports/{report['id']}/accept", kit.organiser, {"level": 1}))
        starts = local("2026-10-06 09:00")
        body = activity_body(title="敬老院义剪", starts_at=starts.isoformat(),
                             ends_at=(starts + timedelta(hours=2)).isoformat(), hours=2.5)
        activity = kit.ok(kit.post(f"/communities/{kit.cid}/activities", kit.organiser, body), 201)
        empty = kit.ok(kit.post(f"/communities/{kit.cid}/activities", kit.organiser,
                                {**body, "title": "无人报名的活动"}), 201)
        reward = kit.ok(kit.post(f"/communities/{kit.cid}/rewards", kit.organiser, {
            "name": "洗衣液", "kind": "goods", "cost": 50, "stock": 10}), 201)
        kit.ok(kit.post(f"/rewards/{reward['id']}/redeem", kit.volunteer, {"quantity": 2}), 201)
    with frozen_clock(local("2026-10-06 09:30")):
        kit.ok(kit.post(f"/activities/{activity['id']}/checkin", kit.organiser,
                        {"user_id": kit.volunteer.id}))
    with frozen_clock(local("2026-10-06 12:00")):
        kit.ok(kit.post(f"/activities/{activity['id']}/complete", kit.organiser, {}))

    reports = table(export(kit, "reports.csv", **OCTOBER))
    row = dict(zip(reports[0], reports[1], strict=True))
    assert len(reports) == 2
    assert (row["问题描述"], row["地点"], row["状态"], row["上报人"]) == (
        "垃圾桶满了", "3栋门口", "已受理", "王女士")

    activities = table(export(kit, "activities.csv", **OCTOBER))
    rows = [dict(zip(activities[0], r, strict=True)) for r in activities[1:]]
    assert [(r["活动名称"], r["志愿者"], r["报名状态"]) for r in rows] == [
        ("敬老院义剪", "王建国", "已签到"), ("无人报名的活动", "", "")]
    assert rows[0]["签到时间"] == "2026-10-06 09:30:00"
    assert (rows[0]["计入时长（小时）"], rows[0]["签到方式"]) == ("2.5", "工作人员登记")
    assert int(rows[0]["所得积分"]) > 0
    assert rows[1]["活动编号"] == str(empty["id"])

    redemptions = table(export(kit, "redemptions.csv", **OCTOBER))
    row = dict(zip(redemptions[0], redemptions[1], strict=True))
    assert (row["兑换人"], row["奖品"], row["数量"], row["合计积分"], row["状态"]) == (
        "王建国", "洗衣液", "2", "100", "待领取")
    assert "取货码" not in redemptions[0]  # the pickup code is the volunteer's secret


def test_monthly_summary_as_csv_and_xlsx(kit):
    wishes_of_october(kit)
    rows = table(export(kit, "summary.csv", month="2026-10"))
    assert rows[0] == ["项目", "指标", "数值"]
    figures = {(r[0], r[1]): r[2] for r in rows[1:] if len(r) == 3 and r[0] in (
        "心愿", "积分", "满意度")}
    assert figures[("心愿", "提交")] == "2"
    # A cohort: the 31 October wish counts as closed although it closed in November.
    assert figures[("心愿", "已办结")] == "1"
    assert figures[("心愿", "待审核")] == "1"
    assert figures[("心愿", "办结率")] == "50.0%"
    board_header = next(r for r in rows if r and r[0] == "心愿板")
    assert board_header[-1] == "红黄蓝"

    response = export(kit, "summary.xlsx", month="2026-10")
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()), read_only=True)
    assert book.sheetnames == ["汇总", "心愿板", "服务队"]
    summary = list(book["汇总"].iter_rows(values_only=True))
    assert summary[0] == ("项目", "指标", "数值")
    assert ("心愿", "提交", 2) in summary
    boards = list(book["心愿板"].iter_rows(values_only=True))
    assert boards[1][0] == "远创樾府 3 栋" and boards[1][2] == 2


def test_every_export_is_on_the_audit_log(kit):
    from app.audit import AuditEvent
    from app.extensions import db

    export(kit, "ledger.csv", **OCTOBER)
    export(kit, "summary.xlsx", month="2026-10")
    with kit.app.app_context():
        events = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.community_id == kit.cid, AuditEvent.action == "export")
            .order_by(AuditEvent.id)).all()
        assert [(e.actor_id, e.details["table"], e.details["format"], e.details["from"],
                 e.details["to"]) for e in events] == [
            (kit.organiser.id, "ledger", "csv", "2026-10-01", "2026-10-31"),
            (kit.organiser.id, "summary", "xlsx", "2026-10-01", "2026-10-31")]


@pytest.mark.parametrize("name", ["wishes.csv", "ledger.csv", "redemptions.csv", "reports.csv",
                                  "activities.csv", "summary.csv", "summary.xlsx"])
def test_only_the_communitys_organisers_export(kit, name):
    w = kit.w
    assert_error(export(kit, name, w.volunteer, 403), 403)
    assert_error(export(kit, name, w.resident, 403), 403)
    assert_error(export(kit, name, w.other_organiser, 404), 404)
    assert_error(export(kit, name, w.outsider, 404), 404)
    response = kit.client.get(f"/api/v1/communities/{kit.cid}/exports/{name}")
    assert response.status_code == 401


def test_an_unknown_table_or_community_is_404(kit):
    assert_error(export(kit, "passwords.csv", status=404), 404)
    response = kit.client.get("/api/v1/communities/999999/exports/wishes.csv",
                              headers=kit.h(kit.organiser))
    assert response.status_code == 404


@pytest.mark.parametrize("query, field", [
    ({"from": "2026-13-01"}, "from"), ({"from": "yesterday"}, "from"),
    ({"from": "2026-10-31", "to": "2026-10-01"}, "to"), ({"to": "1999-12-31"}, "to"),
    ({"from": "2000-01-01", "to": "2100-12-31"}, "to"), ({"month": "2026-1"}, "month"),
    ({"month": "十月"}, "month"), ({"month": "2026-13"}, "month"), ({"month": "２０２６-10"}, "month"),
    ({"month": "2026-10", "from": "2026-10-01"}, "month"),
])
def test_bad_periods_are_422_and_nothing_is_recorded(kit, query, field):
    from app.audit import AuditEvent
    from app.extensions import db

    assert_field_error(export(kit, "wishes.csv", status=422, **query), field)
    with kit.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "export")) == 0


def test_a_street_summary_for_the_admin_has_no_personal_data(kit):
    w = kit.w
    wishes_of_october(kit)
    with writing(kit.app):
        from app.communities.models import Community
        from app.extensions import db
        for community in (w.community, w.other):
            db.session.get(Community, community.id).street = "江东街道"
    response = kit.client.get("/api/v1/exports/summary.csv", headers=kit.h(w.admin),
                              query_string={"street": "江东街道", "month": "2026-10"})
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert ["心愿", "提交", "2"] in rows
    header = rows.index(["社区", "提交心愿", "办结", "办结率", "平均评分", "活跃志愿者", "随手拍",
                         "服务时长（小时）"])
    assert [r[0] for r in rows[header + 1:]] == ["管园村", "芙蓉社区"]
    for secret in ("王女士", "王建国", "李书记", kit.resident.phone, kit.volunteer.phone):
        assert secret not in text
    book = kit.client.get("/api/v1/exports/summary.xlsx", headers=kit.h(w.admin),
                          query_string={"street": "江东街道", "month": "2026-10"})
    assert openpyxl.load_workbook(io.BytesIO(book.get_data())).sheetnames == ["汇总", "各社区"]
    assert kit.client.get("/api/v1/exports/summary.csv",
                          headers=kit.h(w.organiser)).status_code == 403


@pytest.mark.slow
def test_a_live_gunicorn_streams_the_ledger_chunked(kit, database_url, tmp_path):
    """Through a real worker: chunked transfer encoding (no Content-Length), and the rows that
    come back are the ledger's."""
    import requests

    from app.ledger.service import adjust
    from tests.conftest import start_gunicorn

    with frozen_clock(local("2026-10-20 10:00")), writing(kit.app):
        for n in range(1, 301):  # 600 entries: more than one batch of the cursor
            adjust(kit.cid, kit.volunteer.id, n % 7 + 1, f"发放 {n}", kit.organiser.id)
    server = start_gunicorn(database_url, tmp_path, workers=2)
    try:
        token = kit.h(kit.organiser)
        with requests.get(f"{server.url}/api/v1/communities/{kit.cid}/exports/ledger.csv",
                          params=OCTOBER, headers=token, stream=True, timeout=60) as response:
            assert response.status_code == 200
            assert response.headers.get("Transfer-Encoding") == "chunked"
            assert "Content-Length" not in response.headers
            body = b"".join(response.iter_content(65536))
    finally:
        server.stop()
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert len(rows) == 1 + 2 * 300
    assert {r[9] for r in rows[1:]} == {f"发放 {n}" for n in range(1, 301)}


def test_gunicorn_in_the_project_folder_gives_long_exports_time():
    """`gunicorn wsgi:app` reads ./gunicorn.conf.py: a sync worker is not killed after the
    default 30 s in the middle of a long export."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    printed = subprocess.run([sys.executable, "-m", "gunicorn", "--print-config", "wsgi:app"],
                             cwd=root, capture_output=True, text=True, timeout=60, check=True)
    settings = dict(line.split("=", 1) for line in printed.stdout.splitlines() if "=" in line)
    assert int(settings["timeout                            "].strip()) >= 300
