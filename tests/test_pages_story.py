"""The whole loop on phones, in Debian's chromium against real gunicorn workers.

Board QR (decoded from the PNG) → register → post a wish → the organiser approves it → a
volunteer claims and fulfils it → the resident confirms with 5 stars → the volunteer's points
page shows the award with its cause → the volunteer redeems a reward → the organiser fulfils it
by its code; and the counter: member code → redeem for them → receipt. Every phone is watched
(tests/browser.py): a request to another host, a CSP violation or a console error fails the test.
Screenshots of each step go to tests/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.browser import SMALL_PHONE, screenshot
from tests.live_pages import (
    ORGANISER,
    VOLUNTEER,
    adjust,
    api_token,
    decode_qr,
    sign_in,
    volunteer_user_id,
    wish_id_of,
)

pytestmark = [pytest.mark.browser, pytest.mark.live]

def test_the_whole_story_on_phones(demo, phone_page, app):
    server, seeded = demo
    board_id = seeded["boards"][0][0]

    # The poster's QR, as a phone camera reads it, opens the board's page on our server.
    organiser_token = api_token(server, ORGANISER)
    png = requests.get(f"{server.url}/api/v1/boards/{board_id}/qrcode.png?size=512", timeout=10,
                       headers={"Authorization": f"Bearer {organiser_token}"})
    assert png.status_code == 200
    board_url = decode_qr(png.content)
    assert board_url.startswith(f"{server.url}/b/")

    # --- the resident: scan, register, post -----------------------------------------------
    resident = phone_page(server.url, size=SMALL_PHONE)
    resident.goto(board_url)
    assert resident.get_by_role("heading", level=1).is_visible()
    screenshot(resident, "01-board")
    resident.get_by_role("link", name="发布心愿").click()
    resident.wait_for_url(re.compile(r"/login\?next="))
    resident.get_by_role("link", name="注册一个").click()
    resident.get_by_label("称呼").fill("周奶奶")
    resident.get_by_label("手机号").fill("13955550001")
    resident.get_by_label("密码").fill("zhounainai2026")
    screenshot(resident, "02-register")
    resident.get_by_role("button", name="注册并登录").click()
    resident.wait_for_url(re.compile(r"/b/[^/]+/wish$"))
    resident.get_by_label("心愿标题").fill("帮忙换个灯泡")
    resident.get_by_text("维修", exact=False).first.click()
    resident.get_by_label("详细说明").fill("卫生间的灯泡坏了，我够不着。")
    resident.get_by_label("联系电话").fill("13955550001")
    resident.get_by_label("地址").fill("远创樾府 5 栋 301")
    screenshot(resident, "03-post-wish")
    resident.get_by_role("button", name="提交心愿").click()
    resident.wait_for_url(re.compile(r"/wishes/\d+$"))
    wish_id = wish_id_of(resident)
    assert "待审核" in resident.content()
    screenshot(resident, "04-wish-posted")

    # --- the organiser approves it on the review page ------------------------------------------
    organiser = phone_page(server.url)
    sign_in(organiser, ORGANISER)
    organiser.goto("/organiser/review")
    item = organiser.locator(f"#wish-{wish_id}")
    assert "帮忙换个灯泡" in item.inner_text()
    item.locator("label", has_text="4 级").click()
    screenshot(organiser, "05-review")
    item.get_by_role("button", name="通过").click()
    organiser.wait_for_url(re.compile(r"/organiser/review"))
    assert organiser.locator(f"#wish-{wish_id}").count() == 0

    # --- a volunteer claims it; only now the phone and address show ---------------------------
    volunteer = phone_page(server.url)
    sign_in(volunteer, VOLUNTEER)
    volunteer.goto("/volunteer/wishes")
    screenshot(volunteer, "06-volunteer-wishes")
    volunteer.get_by_role("link", name=re.compile("帮忙换个灯泡")).first.click()
    volunteer.wait_for_url(re.compile(rf"/wishes/{wish_id}$"))
    assert "13955550001" not in volunteer.content() and "5 栋 301" not in volunteer.content()
    volunteer.get_by_role("button", name="认领这个心愿").click()
    volunteer.wait_for_url(re.compile(rf"/wishes/{wish_id}"))
    assert "13955550001" in volunteer.content() and "远创樾府 5 栋 301" in volunteer.content()
    volunteer.get_by_label("办得怎么样").fill("已换好新灯泡，试过了")
    screenshot(volunteer, "07-claimed")
    volunteer.get_by_role("button", name="标记已完成").click()
    volunteer.wait_for_url(re.compile(rf"/wishes/{wish_id}"))
    assert "待确认" in volunteer.content()

    # --- the resident confirms with 5 stars -------------------------------------------------
    resident.goto("/me/wishes")
    screenshot(resident, "08-my-wishes")
    resident.get_by_role("link", name=re.compile("帮忙换个灯泡")).first.click()
    resident.locator("label[for='f-rating']").click()  # the five-star choice
    resident.get_by_label("想说的话").fill("小王师傅很及时，谢谢！")
    screenshot(resident, "09-confirm")
    resident.get_by_role("button", name="确认并评价").click()
    resident.wait_for_url(re.compile(rf"/wishes/{wish_id}"))
    page = resident.content()
    assert "已办结" in page
    for label in ("已发布", "已审核", "已认领", "已完成", "已评价"):
        assert label in page, label
    screenshot(resident, "10-closed-timeline")

    # --- the volunteer sees the award with its cause, and redeems ---------------------------
    volunteer.goto("/me/points")
    points = volunteer.content()
    assert "帮忙换个灯泡" in points
    assert re.search(r"\+\s*50", points), "the 5-star award of a level-4 wish (50 points)"
    screenshot(volunteer, "11-points")
    volunteer.goto("/store")
    screenshot(volunteer, "12-store")
    volunteer.get_by_role("link", name=re.compile("理发一次")).first.click()
    volunteer.get_by_role("button", name="确认兑换").click()
    volunteer.wait_for_url(re.compile(r"/store/redemptions/\d+$"))
    code = volunteer.locator(".code").first.inner_text().replace(" ", "").strip()
    assert re.fullmatch(r"[A-Z0-9]{6,16}", code), code
    screenshot(volunteer, "13-pickup-code")

    # --- the organiser hands it over by its code ---------------------------------------------
    organiser.goto("/organiser/pickup")
    organiser.get_by_label("取货码").fill(code)
    organiser.get_by_role("button", name="查找").click()
    assert "理发一次" in organiser.content()
    organiser.get_by_role("button", name="确认已交付").click()
    organiser.wait_for_load_state()
    assert "已核销" in organiser.content()
    screenshot(organiser, "14-pickup-done")

    # --- exchange day at the counter: member code → redeem for them → receipt ------------------
    volunteer.goto("/me/card")
    screenshot(volunteer, "15-member-card")
    member_code = volunteer.locator(".code").first.inner_text().replace(" ", "").strip()
    # 50 earned − 40 for the haircut leaves 10: the organiser first records 100 points earned
    # at last week's clean-up (an audited adjustment through the API).
    assert adjust(server, organiser_token, seeded["community_id"], volunteer_user_id(app), 100)
    organiser.goto("/organiser/counter")
    organiser.get_by_label("会员码").fill(member_code)
    organiser.get_by_role("button", name="查找会员").click()
    assert "王建国" in organiser.content() and "110" in organiser.content()
    screenshot(organiser, "16-counter")
    organiser.get_by_label("洗衣液 2kg").fill("1")
    organiser.once("dialog", lambda dialog: dialog.accept())
    organiser.get_by_role("button", name="兑换并打印小票").click()
    organiser.wait_for_url(re.compile(r"/organiser/counter/receipts/"))
    receipt = organiser.content()
    assert "洗衣液 2kg" in receipt and "王建国" in receipt and "60" in receipt
    screenshot(organiser, "17-receipt")

    from app.ledger.verify import verify

    with app.app_context():
        reports = verify()
        assert reports and all(report.ok for report in reports), reports
