"""红黄蓝 board ratings (issue 10): the rule, live months, `flask stats close-month` freezing a
month for good, thresholds per community; who may; bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import frozen_clock
from app.stats.models import DEFAULT_THRESHOLDS
from app.stats.ratings import rate
from tests.helpers import assert_error, assert_field_error
from tests.stats_helpers import closed_path, live, local
from tests.wish_helpers import Kit, writing

HOUR = 3600


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def block(posted=4, closed=4, cancelled=0, rejected=0, satisfaction=5.0, claim_hours=2.0):
    base = posted - cancelled - rejected
    return {"posted": posted, "closed": closed, "cancelled": cancelled, "rejected": rejected,
            "completion_rate": closed / base if base else None,
            "satisfaction": {"average": satisfaction},
            "time_to_claim_seconds": {"median": None if claim_hours is None
                                      else claim_hours * HOUR}}


@pytest.mark.parametrize("figures, colour", [
    ({}, "red"),
    ({"closed": 3}, "yellow"),                      # 75 %: under 红's 90 %, over 蓝's 60 %
    ({"closed": 2}, "blue"),                        # 50 %
    ({"satisfaction": 4.4}, "yellow"),
    ({"satisfaction": 3.4}, "blue"),
    ({"claim_hours": 24.0}, "red"),                 # at the threshold counts
    ({"claim_hours": 24.1}, "yellow"),
    ({"claim_hours": 72.1}, "blue"),
    ({"satisfaction": None}, "yellow"),             # no one rated yet: cannot be 红, not 蓝
    ({"claim_hours": None, "closed": 0}, "blue"),   # nothing done at all
    ({"posted": 0, "closed": 0}, None),             # no wishes: no colour
    ({"posted": 2, "closed": 0, "cancelled": 2, "claim_hours": None, "satisfaction": None},
     "yellow"),
])
def test_the_rule(figures, colour):
    assert rate(block(**figures), DEFAULT_THRESHOLDS) == colour


def ratings(kit, month: str, user=None) -> dict:
    response = kit.client.get(f"/api/v1/communities/{kit.cid}/boards/ratings",
                              query_string={"month": month}, headers=kit.h(user or kit.organiser))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return {row["board_name"]: row for row in body["items"]} | {"_closed": body["closed"]}


def close_month(app, when: str, *args: str):
    with frozen_clock(local(when)):
        result = app.test_cli_runner().invoke(args=["stats", "close-month", *args])
    return result


def october(kit):
    """远创樾府 3 栋: two wishes done well and fast (红). 村委会: two wishes, one left open and one
    done late with 3 stars (蓝). 空的墙: nothing (no colour)."""
    second = kit.create_board(kit.cid, "村委会")
    kit.create_board(kit.cid, "空的墙")
    live(kit, "2026-10-05 10:00", closed_path(kit, 1, 5))
    live(kit, "2026-10-06 10:00", closed_path(kit, 2, 6))
    late = live(kit, "2026-10-07 10:00", [(0, "approve", kit.organiser, {"level": 1})],
                board=second)
    live(kit, "2026-10-08 10:00", closed_path(kit, 80, 90, rating=3), board=second)
    return late


def test_a_live_month_and_its_closing(kit, app):
    late = october(kit)
    with frozen_clock(local("2026-10-30 12:00")):
        live_rows = ratings(kit, "2026-10")
    assert live_rows["_closed"] is False
    assert live_rows["远创樾府 3 栋"]["rating"] == "red"
    assert live_rows["远创樾府 3 栋"]["rating_label"] == "红"
    assert live_rows["村委会"]["rating"] == "blue"
    assert live_rows["空的墙"]["rating"] is None and live_rows["空的墙"]["wishes"] == 0
    assert all(not row["frozen"] for name, row in live_rows.items() if name != "_closed")

    result = close_month(app, "2026-11-01 00:10")
    assert result.exit_code == 0, result.output
    assert "guanyuan 2026-10: ratings stored" in result.output
    stored = ratings(kit, "2026-10")
    assert stored["_closed"] is True
    assert {n: r["rating"] for n, r in stored.items() if n != "_closed"} == {
        "远创樾府 3 栋": "red", "村委会": "blue", "空的墙": None}
    assert all(r["frozen"] and r["frozen_at"] for n, r in stored.items() if n != "_closed")

    # In November the late October wish is done at once with 5 stars, and the thresholds are
    # loosened: computed live, 村委会 would now be yellow — the stored October stays blue.
    start = local("2026-11-02 10:00")
    for hours, action, actor, payload in [(0, "claim", kit.volunteer, {}),
                                          (1, "fulfil", kit.volunteer, {}),
                                          (2, "confirm", kit.resident, {"rating": 5})]:
        with frozen_clock(start + timedelta(hours=hours)):
            kit.do(late, action, actor, **payload)
    kit.ok(kit.client.put(f"/api/v1/communities/{kit.cid}/rating-thresholds",
                          json={"completion_rate_blue": 0.1, "satisfaction_blue": 1,
                                "claim_hours_blue": 1000}, headers=kit.h(kit.organiser)))
    from app.stats import ratings as ratings_service
    with frozen_clock(start + timedelta(hours=3)), writing(app):
        recomputed = {r["board_name"]: r["rating"]
                      for r in ratings_service._live(kit.cid, local("2026-10-01").date())}
    assert recomputed["村委会"] != "blue"
    again = ratings(kit, "2026-10")
    assert again["村委会"]["rating"] == "blue"
    assert again["村委会"]["thresholds"] == DEFAULT_THRESHOLDS
    assert again["村委会"]["frozen_at"] == stored["村委会"]["frozen_at"]

    # Safe to repeat: nothing new is stored.
    repeat = close_month(app, "2026-11-05 00:10")
    assert repeat.exit_code == 0 and "0 month(s) closed" in repeat.output


def test_close_month_closes_every_ended_month_once(kit, app):
    live(kit, "2026-08-20 10:00", closed_path(kit, 1, 5))
    result = close_month(app, "2026-11-01 00:10")
    assert result.exit_code == 0, result.output
    assert "3 month(s) closed" in result.output        # August, September, October
    assert ratings(kit, "2026-09")["远创樾府 3 栋"]["rating"] is None
    assert ratings(kit, "2026-08")["远创樾府 3 栋"]["rating"] == "red"
    assert ratings(kit, "2026-11")["_closed"] is False


@pytest.mark.parametrize("args, message", [
    (["--month", "2026-11"], "not ended"),
    (["--month", "2026-13"], "YYYY-MM"),
    (["--month", "十一月"], "YYYY-MM"),
    (["--community", "nowhere"], "no community"),
])
def test_close_month_refuses_what_cannot_be_closed(kit, app, args, message):
    result = close_month(app, "2026-11-15 12:00", *args)
    assert result.exit_code != 0 and message in result.output
    assert ratings(kit, "2026-10")["_closed"] is False


def test_who_may_read_ratings(kit, world, factory):
    url = f"/api/v1/communities/{kit.cid}/boards/ratings"
    assert kit.client.get(url, headers=kit.h(kit.volunteer)).status_code == 200
    assert kit.client.get(url, headers=kit.h(kit.resident)).status_code == 200
    assert_error(kit.client.get(url), 401)
    assert_error(kit.client.get(url, headers=factory.headers(world.other_organiser)), 404)


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-10", "2026/10", "二〇二六-十", "x" * 500])
def test_bad_month_is_422(kit, month):
    response = kit.client.get(f"/api/v1/communities/{kit.cid}/boards/ratings",
                              query_string={"month": month}, headers=kit.h(kit.organiser))
    assert_field_error(response, "month", case=month)


def test_thresholds(kit, world, factory):
    url = f"/api/v1/communities/{kit.cid}/rating-thresholds"
    assert kit.ok(kit.client.get(url, headers=kit.h(kit.volunteer))) == DEFAULT_THRESHOLDS
    changed = kit.ok(kit.client.put(url, json={"satisfaction_red": 4.8},
                                    headers=kit.h(kit.organiser)))
    assert changed == {**DEFAULT_THRESHOLDS, "satisfaction_red": 4.8}
    assert_error(kit.client.put(url, json={"satisfaction_red": 4}, headers=kit.h(kit.volunteer)),
                 403)
    assert_error(kit.client.put(url, json={"satisfaction_red": 4},
                                headers=factory.headers(world.other_organiser)), 404)
    for body, field in [({"completion_rate_red": 0.5}, "completion_rate_red"),
                        ({"claim_hours_red": 100}, "claim_hours_red"),
                        ({"satisfaction_blue": 4.9}, "satisfaction_blue"),
                        ({"completion_rate_red": 1.5}, "completion_rate_red"),
                        ({"satisfaction_red": "五"}, "satisfaction_red"),
                        ({"claim_hours_blue": -1}, "claim_hours_blue"),
                        ({"colour": "red"}, "colour")]:
        assert_field_error(kit.client.put(url, json=body, headers=kit.h(kit.organiser)), field,
                           case=body)
    assert kit.ok(kit.client.get(url, headers=kit.h(kit.organiser)))["satisfaction_red"] == 4.8
