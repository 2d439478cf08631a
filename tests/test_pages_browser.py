"""What only a real browser shows: CSRF refusals, double taps, pages without JavaScript, the
CSP, and what a volunteer who has not claimed can see — Debian's chromium against real workers.
Every phone is watched (tests/browser.py): a request to another host, a CSP violation or a
console error fails the test."""

from __future__ import annotations

import re

import pytest
import requests
import sqlalchemy as sa

from app.extensions import db
from app.wishes.models import Wish
from tests.live_pages import ORGANISER, PASSWORD, VOLUNTEER, api_token, sign_in, wish_id_of

pytestmark = [pytest.mark.browser, pytest.mark.live]

RESIDENT = "13800000021"


def wish_count(app) -> int:
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Wish))
        db.session.remove()
        return count


def board_path(seeded) -> str:
    """The first demo board's page, as a path on whichever server the test started."""
    return "/b/" + seeded["boards"][0][2].rsplit("/b/", 1)[1]


def fill_wish(page, title: str) -> None:
    page.get_by_label("心愿标题").fill(title)
    page.get_by_text("维修", exact=False).first.click()
    page.get_by_label("联系电话").fill("13955550002")


def api(server, token: str, path: str, body: dict | None = None) -> dict:
    answer = requests.post(f"{server.url}/api/v1{path}", json=body or {}, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def test_pages_carry_the_csp_and_break_none_of_it(demo, phone_page):
    server, seeded = demo
    page = phone_page(server.url)
    for path in ("/", "/login", board_path(seeded)):
        response = page.goto(path)
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    # The fixture fails the test on any CSP violation, console error or off-site request.


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(demo, phone_page, app):
    server, seeded = demo
    page = phone_page(server.url)
    sign_in(page, RESIDENT)
    page.goto(board_path(seeded) + "/wish")
    fill_wish(page, "没有令牌的心愿")
    before = wish_count(app)
    # What a forged cross-site form would send: everything but the page's own token.
    page.locator("form[method=post] input[name=csrf_token]").last.evaluate("e => e.remove()")
    phone_page.watch(page).check_console = False  # the 403 answer is logged by chromium
    page.get_by_role("button", name="提交心愿").click()
    page.wait_for_load_state()
    assert "没有生效" in page.content()
    assert wish_count(app) == before


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_double_tap_on_submit_makes_one_wish(demo, phone_page, app, javascript):
    server, seeded = demo
    page = phone_page(server.url, javascript=javascript)
    sign_in(page, RESIDENT)
    page.goto(board_path(seeded) + "/wish")
    fill_wish(page, "双击只发一个")
    before = wish_count(app)
    page.get_by_role("button", name="提交心愿").dblclick()
    page.wait_for_url(re.compile(r"/wishes/\d+$"))
    assert wish_count(app) == before + 1
    assert "双击只发一个" in page.content()
    # The second tap sent the same one-time form token: no second wish, whatever the browser did.
    page.wait_for_timeout(500)
    assert wish_count(app) == before + 1


def test_posting_and_confirming_work_without_javascript(demo, phone_page, app):
    server, seeded = demo
    resident = phone_page(server.url, javascript=False)
    sign_in(resident, RESIDENT)
    resident.goto(board_path(seeded) + "/wish")
    # A mistake first: the page explains it in words and keeps what was typed.
    resident.get_by_label("心愿标题").fill("")
    resident.get_by_label("详细说明").fill("没写标题的说明文字")
    resident.get_by_role("button", name="提交心愿").click()
    assert resident.locator(".error-summary").is_visible()
    assert resident.get_by_label("详细说明").input_value() == "没写标题的说明文字"
    phone_page.watch(resident).clear()  # chromium logs the 422 answer itself as a console error
    fill_wish(resident, "不用脚本也能发")
    resident.get_by_role("button", name="提交心愿").click()
    resident.wait_for_url(re.compile(r"/wishes/\d+$"))
    wish_id = wish_id_of(resident)

    organiser, volunteer = api_token(server, ORGANISER), api_token(server, VOLUNTEER)
    api(server, organiser, f"/wishes/{wish_id}/approve", {"level": 2})
    api(server, volunteer, f"/wishes/{wish_id}/claim")
    api(server, volunteer, f"/wishes/{wish_id}/fulfil", {"note": "办好了"})

    resident.goto(f"/wishes/{wish_id}")
    resident.locator("label[for='f-rating-4']").click()  # 4 stars
    resident.get_by_label("想说的话").fill("谢谢")
    resident.get_by_role("button", name="确认并评价").click()
    resident.wait_for_url(re.compile(rf"/wishes/{wish_id}"))
    assert "已办结" in resident.content()
    detail = requests.get(f"{server.url}/api/v1/wishes/{wish_id}", timeout=10,
                          headers={"Authorization": f"Bearer {organiser}"}).json()
    assert detail["status"] == "closed" and detail["rating"] == 4
    assert detail["points_awarded"] == 16  # level 2 (20 points) × 80 % for 4 stars


def test_a_volunteer_who_has_not_claimed_never_sees_the_phone(demo, phone_page):
    server, seeded = demo
    resident, organiser = api_token(server, RESIDENT), api_token(server, ORGANISER)
    board_id = seeded["boards"][0][0]
    wish = api(server, resident, f"/boards/{board_id}/wishes", {
        "title": "陪我去医院", "category": "companionship", "description": "周三上午复查",
        "contact_phone": "13966667777", "address": "远创樾府 9 栋 101"})
    api(server, organiser, f"/wishes/{wish['id']}/approve", {"level": 1})

    page = phone_page(server.url)
    sign_in(page, "13800000012")  # 陈秀英, a volunteer who has not claimed it
    for path in ("/volunteer/wishes", f"/wishes/{wish['id']}", "/"):
        page.goto(path)
        html = page.content()
        assert "陪我去医院" in html or path == "/"
        for secret in ("13966667777", "6667777", "9 栋 101"):
            assert secret not in html, (path, secret)
    # The phone's raw HTML too, not only what the DOM shows.
    assert "13966667777" not in page.request.get(f"/wishes/{wish['id']}").text()


def test_the_language_link_switches_the_page_to_english(demo, phone_page):
    server, _seeded = demo
    page = phone_page(server.url)
    page.goto("/login")
    page.get_by_role("link", name="English").click()
    page.wait_for_url(re.compile(r"/login"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("button", name=re.compile("Log in", re.I)).count() == 1
    page.get_by_label(re.compile("Mobile|Phone", re.I)).fill("13800000001")
    page.get_by_label(re.compile("Password", re.I)).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator("html").get_attribute("lang") == "en"
