"""The activity story in a real browser at phone size (issue 9), against real workers:
the organiser's check-in screen shows the rotating QR; a volunteer who is not signed in opens
the scanned URL, logs in, keeps the scan, confirms and is checked in; the organiser completes;
the volunteer sees the points and the hours. Every phone is watched (tests/browser.py)."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
import requests

from tests.activity_helpers import API, activity_body, set_times, signups
from tests.browser import assert_axe_clean
from tests.conftest import PASSWORD
from tests.ledger_helpers import assert_verified
from tests.live_pages import decode_qr
from tests.test_pages_quality import MEASURE, MIN_TAP

pytestmark = [pytest.mark.browser, pytest.mark.live]


def assert_phone_ready(page) -> None:
    """axe clean, 18 px body text, tap targets of 44 px, labelled inputs, no sideways scroll
    (the measures of tests/test_pages_quality.py)."""
    assert_axe_clean(page)
    measured = page.evaluate(MEASURE, MIN_TAP)
    assert measured["fontSize"] == "18px", page.url
    assert measured["small"] == [], (page.url, measured["small"])
    assert measured["unlabelled"] == [], (page.url, measured["unlabelled"])
    assert measured["scrollWidth"] <= measured["innerWidth"], page.url


def log_in(page, phone: str) -> None:
    page.get_by_label("手机号").fill(phone)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def test_scan_log_in_check_in_complete_points_and_hours(live_server, app, factory, world,
                                                        org, vol, phone_page):
    server = live_server(workers=2)
    made = requests.post(f"{server.url}{API}/communities/{world.community.id}/activities",
                         json=activity_body(title="社区花园除草", level=2, hours=1.5),
                         headers=org, timeout=10)
    assert made.status_code == 201, made.text
    aid = made.json()["id"]
    assert requests.post(f"{server.url}{API}/activities/{aid}/signup", headers=vol,
                         timeout=10).status_code == 200
    set_times(app, aid, starts_in=timedelta(minutes=-5))

    organiser = phone_page(server.url)
    organiser.goto("/login")
    log_in(organiser, world.organiser.phone)
    organiser.wait_for_url(re.compile(r"/$"))
    organiser.goto(f"/organiser/activities/{aid}/checkin")
    source = organiser.locator("#checkin-qr").get_attribute("src")
    scanned = decode_qr(base64.b64decode(source.split(",", 1)[1]))
    assert scanned.startswith(f"{server.url}/a/{aid}/checkin?t=")
    assert re.fullmatch(r"\d{3} \d{3}", organiser.locator("#checkin-code").inner_text().strip())
    assert_phone_ready(organiser)

    volunteer = phone_page(server.url)
    volunteer.goto(scanned)
    volunteer.wait_for_url(re.compile(r"/login\?next="))
    log_in(volunteer, world.volunteer.phone)
    volunteer.wait_for_url(re.compile(rf"/a/{aid}/checkin\?s="))
    assert signups(app, aid)[world.volunteer.id]["status"] == "signed_up"  # a GET changes nothing
    volunteer.get_by_role("button", name="确认签到").click()
    volunteer.wait_for_url(re.compile(rf"/activities/{aid}$"))
    assert "签到成功" in volunteer.content()
    assert signups(app, aid)[world.volunteer.id]["status"] == "attended"
    assert_phone_ready(volunteer)

    for path in ("/organiser/activities", "/organiser/activities/new", "/activities"):
        organiser.goto(path)
        assert_phone_ready(organiser)
    volunteer.goto("/activities/checkin")
    assert_phone_ready(volunteer)
    organiser.goto(f"/organiser/activities/{aid}")
    assert_phone_ready(organiser)
    organiser.once("dialog", lambda dialog: dialog.accept())
    organiser.get_by_role("button", name="结束活动并发放积分").click()
    organiser.wait_for_load_state()
    assert "活动已结束" in organiser.content()

    volunteer.goto(f"/activities/{aid}")
    assert "已获得 20 积分和 1.5 小时志愿时长" in volunteer.inner_text("main")
    volunteer.goto("/me/points")
    assert "20" in volunteer.inner_text("main")
    volunteer.goto("/me/service-hours")
    text = volunteer.inner_text("main")
    assert "社区花园除草" in text and "1.5" in text and "管园村" in text
    assert_phone_ready(volunteer)
    assert_verified(app)
