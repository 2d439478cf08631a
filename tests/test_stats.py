"""Statistics (issue 10): hand-computed cohorts, Asia/Shanghai day edges, percentiles, points,
reports and activities, boards, teams, a street's communities; who may ask; bad periods."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import frozen_clock
from tests.helpers import assert_error, assert_field_error
from tests.stats_helpers import HOUR, closed_path, live, local, stats
from tests.wish_helpers import Kit, writing


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def october(kit):
    """Seven wishes posted in October 2026, each in a known state with known times."""
    k = kit
    ids = {
        "w1": live(k, "2026-10-05 10:00", closed_path(k, 2, 24, rating=5)),
        "w2": live(k, "2026-10-06 09:00", closed_path(k, 4, 48, rating=3)),
        "w3": live(k, "2026-10-07 09:00", [(0, "approve", k.organiser, {"level": 1}),
                                           (10, "claim", k.volunteer2, {}),
                                           (20, "fulfil", k.volunteer2, {})]),
        "w4": live(k, "2026-10-08 09:00", [(0, "approve", k.organiser, {"level": 1})]),
        "w5": live(k, "2026-10-09 09:00", [(1, "cancel", k.resident, {})]),
        "w6": live(k, "2026-10-10 09:00", [(1, "reject", k.organiser, {})]),
        "w7": live(k, "2026-10-11 09:00", [(0, "approve", k.organiser, {"level": 1}),
                                           (6, "claim", k.volunteer2, {}),
                                           (8, "fulfil", k.volunteer2, {})]),
    }
    # w7 is closed by the system after the confirmation window, with the default rating.
    from app.wishes import service

    moment = local("2026-10-11 09:00") + timedelta(days=8)
    with frozen_clock(moment), writing(kit.app):
        assert service.auto_confirm(ids["w7"], moment)
    return ids


def test_a_month_of_wishes_by_hand(kit):
    october(kit)
    body = stats(kit, **{"from": "2026-10-01", "to": "2026-10-31"})
    wishes = body["wishes"]
    assert (body["from"], body["to"]) == ("2026-10-01", "2026-10-31")
    assert {k: wishes[k] for k in ("posted", "pending", "open", "claimed", "fulfilled", "closed",
                                   "cancelled", "rejected")} == {
        "posted": 7, "pending": 0, "open": 1, "claimed": 0, "fulfilled": 1, "closed": 3,
        "cancelled": 1, "rejected": 1}
    assert wishes["completion_rate"] == pytest.approx(3 / 5)
    # People's ratings only: 5 and 3 (w7's automatic 5 is left out).
    assert wishes["satisfaction"] == {"average": 4.0, "count": 2,
                                      "distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}}
    # Claims after 2, 4, 6 and 10 hours: median 5 h; p90 at rank 2.7 → 6 + 0.7 × 4 = 8.8 h.
    claim = wishes["time_to_claim_seconds"]
    assert claim["median"] == pytest.approx(5 * HOUR, abs=1)
    assert claim["p90"] == pytest.approx(8.8 * HOUR, abs=1)
    # Closed after 24 h, 48 h and 8 days (192 h): median 48 h; p90 at 1.8 → 48 + 0.8 × 144.
    close = wishes["time_to_close_seconds"]
    assert close["median"] == pytest.approx(48 * HOUR, abs=1)
    assert close["p90"] == pytest.approx((48 + 0.8 * 144) * HOUR, abs=1)
    # Level-1 wish points (the default table) went to the claimers when the wishes closed.
    assert body["points"]["issued"] > 0
    assert body["points"]["redeemed"] == body["points"]["expired"] == 0
    assert body["volunteers"]["active"] == 2


def test_an_empty_period_has_nulls_not_zeros(kit):
    october(kit)
    wishes = stats(kit, **{"from": "2025-01-01", "to": "2025-01-31"})["wishes"]
    assert wishes["posted"] == 0
    assert wishes["completion_rate"] is None
    assert wishes["satisfaction"]["average"] is None
    assert wishes["time_to_claim_seconds"] == {"median": None, "p90": None}
    assert wishes["time_to_close_seconds"] == {"median": None, "p90": None}


def test_only_cancelled_and_rejected_leave_no_completion_rate(kit):
    live(kit, "2026-09-02 10:00", [(1, "cancel", kit.resident, {})])
    live(kit, "2026-09-03 10:00", [(1, "reject", kit.organiser, {})])
    wishes = stats(kit, **{"from": "2026-09-01", "to": "2026-09-30"})["wishes"]
    assert (wishes["posted"], wishes["completion_rate"]) == (2, None)


def test_days_are_shanghai_days(kit):
    """23:30 on 31 October and 00:30 on 1 November (Asia/Shanghai) are 15:30 and 16:30 UTC on
    the same UTC day; the first belongs to October, the second to November."""
    late = live(kit, "2026-10-31 23:30", closed_path(kit, 1, 50))
    live(kit, "2026-11-01 00:30", [(0, "approve", kit.organiser, {"level": 1})])
    last_day = stats(kit, **{"from": "2026-10-31", "to": "2026-10-31"})["wishes"]
    first_day = stats(kit, **{"from": "2026-11-01", "to": "2026-11-01"})["wishes"]
    assert (last_day["posted"], last_day["closed"]) == (1, 1)
    assert (first_day["posted"], first_day["open"]) == (1, 1)
    # The October wish closed on 2 November: it stays in October's cohort (closed), and its
    # points were issued in November.
    october_ = stats(kit, **{"from": "2026-10-01", "to": "2026-10-31"})
    november = stats(kit, **{"from": "2026-11-01", "to": "2026-11-30"})
    assert october_["wishes"]["completion_rate"] == 1.0
    assert november["wishes"]["posted"] == 1 and november["wishes"]["closed"] == 0
    assert october_["points"]["issued"] == 0 and november["points"]["issued"] > 0
    assert kit.wish(late)["status"] == "closed"


def test_points_moved_in_the_period(kit, factory):
    from app.ledger import service as ledger

    live(kit, "2026-10-05 10:00", closed_path(kit, 1, 5))
    with frozen_clock(local("2026-10-20 10:00")), writing(kit.app):
        ledger.adjust(kit.cid, kit.volunteer.id, 30, "补记", kit.organiser.id)
        ledger.adjust(kit.cid, kit.volunteer.id, -7, "更正", kit.organiser.id)
    with frozen_clock(local("2026-11-03 10:00")), writing(kit.app):
        ledger.adjust(kit.cid, kit.volunteer.id, 100, "下月", kit.organiser.id)
    points = stats(kit, **{"from": "2026-10-01", "to": "2026-10-31"})["points"]
    assert points["adjusted"] == 23
    assert points["issued"] == kit.rule_points(1) * kit.factor(5) // 100


def test_boards_and_their_cohorts(kit):
    second = kit.create_board(kit.cid, "村委会", location="一楼")
    kit.create_board(kit.cid, "空的墙")
    live(kit, "2026-10-05 10:00", closed_path(kit, 1, 5))
    live(kit, "2026-10-06 10:00", [(0, "approve", kit.organiser, {"level": 1})], board=second)
    live(kit, "2026-10-07 10:00", [(1, "cancel", kit.resident, {})], board=second)
    body = stats(kit, "/boards/", **{"from": "2026-10-01", "to": "2026-10-31"})
    by_name = {b["board_name"]: b["wishes"] for b in body["items"]}
    assert by_name["远创樾府 3 栋"]["posted"] == 1 and by_name["远创樾府 3 栋"]["completion_rate"] == 1
    assert by_name["村委会"]["posted"] == 2 and by_name["村委会"]["completion_rate"] == 0
    assert by_name["空的墙"]["posted"] == 0 and by_name["空的墙"]["completion_rate"] is None


def test_teams_count_their_members_wishes(kit):
    team = kit.ok(kit.post(f"/communities/{kit.cid}/teams", kit.organiser,
                           {"name": "红色足印", "leader_id": kit.volunteer.id}), 201)
    live(kit, "2026-10-05 10:00", closed_path(kit, 3, 5))
    live(kit, "2026-10-06 10:00", closed_path(kit, 1, 5, claimer=kit.volunteer2))
    items = stats(kit, "/teams/", **{"from": "2026-10-01", "to": "2026-10-31"})["items"]
    (row,) = [t for t in items if t["team_id"] == team["id"]]
    assert row["members"] == 1 and row["active_volunteers"] == 1
    assert row["wishes"]["posted"] == 1 and row["wishes"]["closed"] == 1
    assert row["wishes"]["time_to_claim_seconds"]["median"] == pytest.approx(3 * HOUR, abs=1)
    assert row["points_earned"] == kit.rule_points(1) * kit.factor(5) // 100


def test_reports_and_activities(kit):
    from tests.activity_helpers import activity_body

    with frozen_clock(local("2026-10-05 10:00")):
        with writing(kit.app):
            from app.reports.service import update_settings
            update_settings(kit.cid, {"residents_may_report": True}, kit.organiser.id)
        report = kit.ok(kit.post(f"/communities/{kit.cid}/reports", kit.resident, {
            "category": "sanitation", "description": "垃圾桶满了", "location": "3栋门口"}), 201)
        kit.ok(kit.post(f"/communities/{kit.cid}/reports", kit.resident, {
            "category": "facility", "description": "路灯不亮", "location": "东门"}), 201)
        kit.ok(kit.post(f"/reports/{report['id']}/accept", kit.organiser, {"level": 1}))
        kit.ok(kit.post(f"/reports/{report['id']}/assign", kit.organiser, {"to": "物业"}))
        kit.ok(kit.post(f"/reports/{report['id']}/resolve", kit.organiser, {"note": "已清运"}))
        starts = local("2026-10-06 09:00")
        body = activity_body(starts_at=starts.isoformat(),
                             ends_at=(starts + timedelta(hours=2)).isoformat(), hours=2.5)
        activity = kit.ok(kit.post(f"/communities/{kit.cid}/activities", kit.organiser, body), 201)
    with frozen_clock(local("2026-10-06 09:30")):
        kit.ok(kit.post(f"/activities/{activity['id']}/checkin", kit.organiser,
                        {"user_id": kit.volunteer.id}))
    with frozen_clock(local("2026-10-06 12:00")):
        kit.ok(kit.post(f"/activities/{activity['id']}/complete", kit.organiser, {}))
    body = stats(kit, **{"from": "2026-10-01", "to": "2026-10-31"})
    assert body["reports"] == {"received": 2, "accepted": 1, "resolved": 1, "rejected": 0}
    assert body["activities"] == {"held": 1, "attendances": 1, "service_hours": 2.5}
    assert body["volunteers"]["active"] == 1


def test_a_street_recomputes_its_median(app, client, factory, world, kit):
    """管园村 claims after 1 h; 芙蓉社区 after 3 h and 5 h. The street's median is 3 h (of all
    three wishes), not 2.5 h (the mean of the two medians)."""
    live(kit, "2026-10-05 10:00", [(0, "approve", kit.organiser, {"level": 1}),
                                   (1, "claim", kit.volunteer, {})])
    other = Kit.__new__(Kit)
    other.app, other.client, other.factory, other.w = app, client, factory, world
    other._headers, other.cid, other.organiser = {}, world.other.id, world.other_organiser
    other.resident = factory.member(world.other, factory.user("芙蓉居民"), "resident")
    other.board = other.ok(other.post(f"/communities/{world.other.id}/boards",
                                      world.other_organiser, {"name": "芙蓉墙"}), 201)
    for hours, when in ((3, "2026-10-06 10:00"), (5, "2026-10-07 10:00")):
        live(other, when, [(0, "approve", world.other_organiser, {"level": 1}),
                           (hours, "claim", world.other_volunteer, {})])
    response = client.get("/api/v1/stats", headers=factory.headers(world.admin), query_string={
        "street": "幸福街道", "from": "2026-10-01", "to": "2026-10-31"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["wishes"]["posted"] == 3
    assert body["wishes"]["time_to_claim_seconds"]["median"] == pytest.approx(3 * HOUR, abs=1)
    assert [c["wishes"]["posted"] for c in body["communities"]] == [1, 2]
    assert body["volunteers"]["active"] == 2
    nowhere = client.get("/api/v1/stats", headers=factory.headers(world.admin),
                         query_string={"district": "不存在区"}).get_json()
    assert nowhere["communities"] == [] and nowhere["wishes"]["posted"] == 0
    assert_error(client.get("/api/v1/stats", headers=factory.headers(world.organiser)), 403)


@pytest.mark.parametrize("path", ["/", "/boards/", "/teams/"])
def test_who_may_not_see_the_figures(kit, world, factory, path):
    url = f"/api/v1/communities/{kit.cid}{path}stats"
    client = kit.client
    assert_error(client.get(url), 401)
    assert_error(client.get(url, headers=kit.h(kit.volunteer)), 403)
    assert_error(client.get(url, headers=kit.h(kit.resident)), 403)
    assert_error(client.get(url, headers=factory.headers(world.other_organiser)), 404)
    assert_error(client.get(url, headers=factory.headers(world.outsider)), 404)
    assert_error(client.get(f"/api/v1/communities/999999{path}stats",
                            headers=kit.h(kit.organiser)), 404)
    assert client.get(url, headers=factory.headers(world.admin)).status_code == 200


@pytest.mark.parametrize("query, field", [
    ({"from": "2026-13-01"}, "from"),
    ({"from": "2026-02-30"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"from": "2026-10-31", "to": "2026-10-01"}, "to"),
    ({"from": "1900-01-01"}, "from"),
    ({"to": "9999-12-31"}, "to"),
    ({"from": "2000-01-01", "to": "2100-12-31"}, "to"),
    ({"from": "２０２６-10-01"}, "from"),
    ({"from": "2026-10-01" * 200}, "from"),
])
def test_bad_periods_are_422(kit, query, field):
    response = kit.client.get(f"/api/v1/communities/{kit.cid}/stats", query_string=query,
                              headers=kit.h(kit.organiser))
    assert_field_error(response, field, case=query)


def test_defaults_to_this_month_so_far(kit):
    with frozen_clock(local("2026-10-20 12:00")):
        body = stats(kit)
    assert (body["from"], body["to"]) == ("2026-10-01", "2026-10-20")


def test_the_weekly_and_monthly_series_agree_with_the_stats_of_each_period(kit):
    """The dashboard's trends (grouped queries, one per figure) give each week and month the
    same figures as /stats of that week or month; 23:30 on a Sunday is that week's."""
    from datetime import date

    from app.stats import service

    october(kit)
    live(kit, "2026-10-18 23:30", closed_path(kit, 2, 30, rating=4))  # a Sunday night
    live(kit, "2026-10-19 00:30", [(1, "cancel", kit.resident, {})])  # the Monday after
    with kit.app.app_context():
        weeks = service.weekly_series(kit.cid, 6, date(2026, 10, 28))
        months = service.monthly_series(kit.cid, 3, date(2026, 11, 15))
        expected = []
        for point in weeks:
            start = point["week_start"]
            expected.append(service.community_stats([kit.cid], start, start + timedelta(days=6)))
        by_month = [service.community_stats([kit.cid], *service.month_bounds(p["month"]))
                    for p in months]
    assert [p["week_start"].isoformat() for p in weeks] == [
        "2026-09-21", "2026-09-28", "2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26"]
    for point, figures in [*zip(weeks, expected, strict=True), *zip(months, by_month, strict=True)]:
        assert point["posted"] == figures["wishes"]["posted"]
        assert point["closed"] == figures["wishes"]["closed"]
        assert point["completion_rate"] == figures["wishes"]["completion_rate"]
        assert point["points_issued"] == figures["points"]["issued"]
        assert point["points_redeemed"] == figures["points"]["redeemed"]
        assert point["service_hours"] == figures["activities"]["service_hours"]
    assert [p["posted"] for p in weeks] == [0, 0, 7, 1, 1, 0]
    assert [p["month"].month for p in months] == [9, 10, 11]
    assert [p["posted"] for p in months] == [0, 9, 0]
    assert sum(p["points_issued"] for p in weeks) > 0
