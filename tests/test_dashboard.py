"""The organiser dashboard (issue 10): figures beside last month's, SVG trend charts, the boards'
红黄蓝, top volunteers and teams; who may see it; what a chart may contain."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from xml.etree import ElementTree

import pytest

from app.db import frozen_clock
from app.stats import charts
from tests.pages_helpers import html, page, signed_in, text_of
from tests.stats_helpers import closed_path, live, local
from tests.wish_helpers import Kit, writing

NOW = "2026-11-20 12:00"  # a Friday in November (Asia/Shanghai)
CHARTS = sorted(charts.CHARTS)
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
URL = re.compile(r"https?://[^\s\"'<>)]+")


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def chart_url(cid: int, name: str) -> str:
    return f"/organiser/dashboard/charts/{cid}/{name}.svg"


def weeks(n: int = 12, **overrides) -> list[dict]:
    start = date(2026, 8, 31)
    series = []
    for i in range(n):
        point = {"week_start": start + timedelta(days=7 * i), "posted": i % 5, "closed": i % 3,
                 "completion_rate": (i % 4) / 4, "points_issued": 40 * i,
                 "points_redeemed": 15 * i, "service_hours": 1.5 * i}
        point.update(overrides)
        series.append(point)
    return series


def assert_safe_svg(svg: bytes) -> ElementTree.Element:
    root = ElementTree.fromstring(svg)  # well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = svg.decode("utf-8")
    assert "<script" not in text.lower() and "javascript:" not in text.lower()
    assert not any(e.tag.endswith("script") for e in root.iter())
    assert set(URL.findall(text)) <= NAMESPACES, set(URL.findall(text)) - NAMESPACES
    assert "<!--" not in text and "@import" not in text and "url(" not in text
    assert '"Noto Sans CJK SC"' in text  # Chinese legends render with a CJK font
    return root


# --- the charts, on their own -------------------------------------------------------------

@pytest.mark.parametrize("name", CHARTS)
def test_each_chart_is_a_safe_svg_with_chinese_labels(app, name):
    with app.test_request_context():
        svg = charts.render_svg(name, weeks())
    root = assert_safe_svg(svg)
    words = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for _key, legend in charts.CHARTS[name].series:
        if len(charts.CHARTS[name].series) > 1:
            assert legend in words
    assert "9/14" in words  # week labels M/D, every other one shown
    assert root.find("{http://www.w3.org/2000/svg}title").text == charts.CHARTS[name].title


@pytest.mark.parametrize("name", CHARTS)
def test_a_chart_of_nothing_still_draws(app, name):
    with app.test_request_context():
        empty = charts.render_svg(name, weeks(posted=0, closed=0, completion_rate=None,
                                              points_issued=0, points_redeemed=0,
                                              service_hours=0))
    assert_safe_svg(empty)


def test_alt_text_names_the_chart_and_this_weeks_figures(app):
    with app.test_request_context():
        alt = charts.describe("completion", weeks())
    assert alt.startswith("每周办结率，近 12 周。") and "75%" in alt


def test_ticks_are_whole_steps():
    assert charts._ticks(0, "count") == [0, 1]
    assert charts._ticks(4, "count") == [0, 1, 2, 3, 4]
    assert charts._ticks(23, "count") == [0, 5, 10, 15, 20, 25]
    assert charts._ticks(440, "count")[-1] >= 440
    assert charts._ticks(0.3, "percent") == [0, 25, 50, 75, 100]


# --- month over month, by hand -------------------------------------------------------------

def figures_of(**blocks) -> dict:
    wishes = {"posted": 0, "closed": 0, "completion_rate": None,
              "satisfaction": {"average": None}, "time_to_claim_seconds": {"median": None}}
    wishes.update(blocks.get("wishes", {}))
    return {"wishes": wishes, "volunteers": {"active": blocks.get("active", 0)},
            "points": {"issued": blocks.get("issued", 0), "redeemed": blocks.get("redeemed", 0)},
            "reports": {"received": blocks.get("received", 0), "resolved": 0},
            "activities": {"service_hours": blocks.get("hours", 0.0)}}


def test_month_over_month_signs_and_units(app):
    this = figures_of(wishes={"posted": 8, "closed": 3, "completion_rate": 0.5,
                              "satisfaction": {"average": 4.6},
                              "time_to_claim_seconds": {"median": 2 * 3600}},
                      active=4, issued=120, redeemed=30, received=2, hours=6.5)
    last = figures_of(wishes={"posted": 5, "closed": 3, "completion_rate": 0.75,
                              "satisfaction": {"average": None},
                              "time_to_claim_seconds": {"median": 3 * 86400}},
                      active=6, issued=80, redeemed=30, received=0, hours=4.0)
    with app.test_request_context():
        got = {f["key"]: f for f in charts.month_over_month(this, last)}
    assert (got["posted"]["direction"], got["posted"]["change"]) == ("up", "3")
    assert got["closed"]["direction"] == "same"
    assert (got["completion_rate"]["direction"], got["completion_rate"]["change"]) == (
        "down", "25 个百分点")
    assert (got["completion_rate"]["value"], got["completion_rate"]["previous"]) == ("50%", "75%")
    # Last month had no rating given by a person: nothing to compare with.
    assert got["satisfaction"]["direction"] is None and got["satisfaction"]["previous"] == "—"
    assert got["satisfaction"]["value"] == "4.6"
    # Time to claim in the units people use: 2 hours now, 3 days before.
    assert (got["claim_median"]["value"], got["claim_median"]["previous"]) == ("2 小时", "3 天")
    assert got["claim_median"]["direction"] == "down"
    assert got["claim_median"]["change"] == "2.9 天"
    assert (got["active_volunteers"]["direction"], got["active_volunteers"]["change"]) == (
        "down", "2")
    assert got["points_issued"]["change"] == "40" and got["points_issued"]["direction"] == "up"
    assert got["points_redeemed"]["direction"] == "same"
    assert got["reports_received"]["direction"] == "up"
    assert (got["service_hours"]["value"], got["service_hours"]["change"]) == (
        "6.5 小时", "2.5 小时")


def test_a_change_too_small_to_show_is_no_change(app):
    this = figures_of(wishes={"completion_rate": 0.80004,
                              "time_to_claim_seconds": {"median": 3600 + 20}})
    last = figures_of(wishes={"completion_rate": 0.8, "time_to_claim_seconds": {"median": 3600}})
    with app.test_request_context():
        got = {f["key"]: f for f in charts.month_over_month(this, last)}
    assert got["completion_rate"]["direction"] == "same"
    assert got["claim_median"]["direction"] == "same"


def test_durations_in_human_units(app):
    with app.test_request_context():
        assert charts.duration(None) == "—"
        assert charts.duration(45 * 60) == "45 分钟"
        assert charts.duration(5.5 * 3600) == "5.5 小时"
        assert charts.duration(36 * 3600) == "36 小时"
        assert charts.duration(3 * 86400) == "3 天"


# --- the page -----------------------------------------------------------------------------

def history(kit) -> None:
    """October: three wishes, all closed (two by the 20th); November (to the 20th): three,
    one closed."""
    live(kit, "2026-10-05 10:00", closed_path(kit, 2, 24, rating=5))
    live(kit, "2026-10-12 10:00", closed_path(kit, 4, 30, rating=4))
    live(kit, "2026-10-25 10:00", closed_path(kit, 3, 26, rating=5))
    live(kit, "2026-11-02 10:00", closed_path(kit, 1, 20, rating=5))
    live(kit, "2026-11-09 10:00", [(0, "approve", kit.organiser, {"level": 1})])
    live(kit, "2026-11-16 10:00", [(0, "approve", kit.organiser, {"level": 1}),
                                   (3, "claim", kit.volunteer2, {})])


def test_an_organiser_sees_the_figures_charts_ratings_and_leaders(kit, client, world):
    history(kit)
    from app.stats import ratings

    with frozen_clock(local(NOW)), writing(kit.app):
        assert ratings.close_month(kit.cid, date(2026, 10, 1))
    signed_in(client, world.organiser)
    with frozen_clock(local(NOW)):
        response = page(client, "/organiser/dashboard")
    body, words = html(response), text_of(response)
    assert len(response.get_data()) < 60 * 1024
    assert "数据看板" in words and "管园村" in words and "2026 年 11 月（截至今天）" in words
    # This month so far beside the same days of October: the wish of 25 October is not counted.
    assert "2026-11-01 至 2026-11-20，与上月 2026-10-01 至 2026-10-20 相比" in words
    # Posted 3 against 2; 办结率 1/3 against 2/2.
    assert re.search(r"发布的心愿 3 ▲ 比上月增加 1 上月同期 2", words), words
    assert re.search(r"办结率 33.3% ▼ 比上月减少 66.7 个百分点 上月同期 100%", words), words
    for label in ("平均满意度", "认领用时（中位数）", "活跃志愿者", "发放积分", "兑换积分",
                  "收到上报", "上报已解决", "志愿服务时长"):
        assert label in words
    # Four lazy charts of this community, sized, with words for those who cannot see them.
    images = re.findall(r"<img [^>]*>", body)
    assert len(images) == 4
    for name, tag in zip(["wishes", "completion", "points", "hours"], images, strict=True):
        assert f'src="{chart_url(kit.cid, name)}?lang=zh-CN"' in tag
        assert 'loading="lazy"' in tag and 'width="320"' in tag and 'height="240"' in tag
        assert re.search(r'alt="[^"]{10,}"', tag)
    # 红黄蓝: October closed (已定) and red; November live.
    assert "10 月 已定" in words and "11 月 本月实时" in words
    assert re.search(r'<span class="rating rating--red">红</span>', body)
    assert "远创樾府 3 栋" in words
    # November's leaders: the volunteer whose wish closed.
    assert "11 月志愿者前 1 名" in words and "王建国" in words
    csp = response.headers["Content-Security-Policy"]
    assert "img-src 'self'" in csp and "unsafe-inline" not in csp


def test_a_past_month_beside_the_one_before(kit, client, world):
    history(kit)
    signed_in(client, world.organiser)
    with frozen_clock(local(NOW)):
        response = page(client, "/organiser/dashboard?month=2026-10")
    words = text_of(response)
    assert "2026 年 10 月" in words and "截至今天" not in words
    assert "2026-10-01 至 2026-10-31，与上月 2026-09-01 至 2026-09-30 相比" in words
    assert re.search(r"发布的心愿 3 ▲ 比上月增加 3 上月 0", words), words
    # No wishes in September: no rate to compare with.
    assert re.search(r"办结率 100% 无法比较 上月 —", words), words
    assert "10 月 实时" in words  # ended, not closed by cron yet
    # The downloads of the month shown: its days for CSV, the month for the Excel summary.
    links = [unescape(u) for u in re.findall(r'href="(/organiser/exports/[^"]+)"', html(response))]
    assert links == [f"/organiser/exports/{name}.csv?from=2026-10-01&to=2026-10-31" for name in (
        "wishes", "ledger", "redemptions", "reports", "activities", "summary")] + [
        "/organiser/exports/summary.xlsx?month=2026-10"]


def test_an_empty_community_shows_dashes_not_errors(kit, client, world):
    signed_in(client, world.organiser)
    with frozen_clock(local(NOW)):
        words = text_of(page(client, "/organiser/dashboard"))
    assert "这个月还没有人获得积分。" in words and "这个月还没有服务队获得积分。" in words
    assert "与上月持平" in words and "无法比较" in words


def test_a_bad_or_future_month_is_a_page_message(kit, client, world):
    signed_in(client, world.organiser)
    for month in ["2026-13", "2026-00", "11-2026", "2026-1", "２０２６-11", "x" * 500, "",
                  "0001-01", "1999-12", "2026-12"]:
        with frozen_clock(local(NOW)):
            words = text_of(page(client, f"/organiser/dashboard?month={month}", 422))
        assert "没有这个月份的数据" in words and "2026-11 这样" in words, month


@pytest.mark.parametrize("who", ["volunteer", "resident"])
def test_volunteers_and_residents_are_refused(kit, client, world, who):
    signed_in(client, getattr(world, who))
    words = text_of(page(client, "/organiser/dashboard", 403))
    assert "只对本社区的社区工作人员开放" in words and "办结率" not in words


def test_a_visitor_is_sent_to_log_in(client):
    response = client.get("/organiser/dashboard")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=/organiser/dashboard")


# --- the chart answers --------------------------------------------------------------------

def test_each_chart_answer_is_svg_private_and_scriptless(kit, client, world):
    history(kit)
    signed_in(client, world.organiser)
    for name in CHARTS:
        with frozen_clock(local(NOW)):
            response = client.get(chart_url(kit.cid, name) + "?lang=zh-CN")
        assert response.status_code == 200, name
        assert response.mimetype == "image/svg+xml"
        assert response.headers["Cache-Control"].startswith("private")
        policy = response.headers["Content-Security-Policy"]
        assert policy.startswith("default-src 'none'") and "script-src" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert_safe_svg(response.get_data())
        if name == "wishes":  # twelve weeks, every other one labelled, this week's last
            labels = re.findall(r">(\d+/\d+)<", response.get_data(as_text=True))
            assert labels[0] == "8/31" and labels[-1] in ("11/16", "11/9")


def test_another_communitys_organiser_gets_404_for_its_charts(kit, client, world):
    signed_in(client, world.other_organiser)
    for name in CHARTS:
        assert client.get(chart_url(kit.cid, name)).status_code == 404
    # …while their own community's charts are theirs.
    assert client.get(chart_url(world.other.id, "wishes")).status_code == 200


@pytest.mark.parametrize("who", ["volunteer", "resident"])
def test_members_who_are_not_organisers_get_no_chart(kit, client, world, who):
    signed_in(client, getattr(world, who))
    response = client.get(chart_url(kit.cid, "points"))
    assert response.status_code == 403 and response.mimetype == "text/html"


def test_unknown_charts_and_communities_are_404(kit, client, world):
    signed_in(client, world.organiser)
    assert client.get(chart_url(kit.cid, "secrets")).status_code == 404
    assert client.get(chart_url(999999, "wishes")).status_code == 404
    assert client.get(chart_url(2**40, "wishes")).status_code == 404


def test_a_visitor_gets_no_chart(kit, client):
    response = client.get(chart_url(kit.cid, "wishes"))
    assert response.status_code == 303 and "image/svg" not in response.headers.get(
        "Content-Type", "")


# --- the export links -----------------------------------------------------------------------

def export_records(app) -> list[tuple]:
    """The audit log's export records: (community, table, format, from, to, actor)."""
    import sqlalchemy as sa

    from app.audit import AuditEvent
    from app.extensions import db

    with app.app_context():
        return [(e.community_id, e.details["table"], e.details["format"], e.details["from"],
                 e.details["to"], e.actor_id) for e in db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "export").order_by(AuditEvent.id))]


def test_an_export_link_downloads_the_communitys_export(kit, client, world):
    import csv
    import io

    live(kit, "2026-11-05 10:00", closed_path(kit, 2, 24, rating=5))
    signed_in(client, world.organiser)
    response = client.get("/organiser/exports/wishes.csv?from=2026-11-01&to=2026-11-20")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"), newline="")))
    assert rows[0][:2] == ["编号", "提交时间"] and len(rows) == 2
    xlsx = client.get("/organiser/exports/summary.xlsx?month=2026-11")
    assert xlsx.status_code == 200 and xlsx.get_data()[:2] == b"PK"  # a zip: the workbook
    assert export_records(kit.app) == [
        (kit.cid, "wishes", "csv", "2026-11-01", "2026-11-20", world.organiser.id),
        (kit.cid, "summary", "xlsx", "2026-11-01", "2026-11-30", world.organiser.id)]
    for unknown in ("secrets.csv", "wishes.xlsx", "summary.pdf", "wishes.csv.exe"):
        assert client.get(f"/organiser/exports/{unknown}").status_code == 404, unknown
    for bad in ("from=yesterday", "from=2026-11-20&to=2026-11-01", "month=2026-13"):
        refused = page(client, f"/organiser/exports/ledger.csv?{bad}", 422)
        assert "请回到数据看板" in text_of(refused), bad
    assert len(export_records(kit.app)) == 2  # a refused export is not on record


def test_only_organisers_export(kit, client, world):
    response = client.get("/organiser/exports/ledger.csv")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login?")
    signed_in(client, world.volunteer)
    assert page(client, "/organiser/exports/ledger.csv", 403)
    # Another community's organiser exports their own community, never this one.
    signed_in(client, world.other_organiser)
    assert client.get("/organiser/exports/ledger.csv").status_code == 200
    assert [record[0] for record in export_records(kit.app)] == [world.other.id]
