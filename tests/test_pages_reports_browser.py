"""One story in a real browser at phone size (issue 9): a volunteer files a report with a photo
(the page's script downscales it first), the organiser accepts and resolves it from the queue,
and the volunteer sees the feedback and the points. Debian's chromium against real workers;
every page is checked with axe, and any off-site request, CSP violation or console error fails."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from tests.browser import PHONE, assert_axe_clean
from tests.conftest import PASSWORD
from tests.ledger_helpers import assert_verified
from tests.report_helpers import balance, jpeg, stored_files

pytestmark = [pytest.mark.browser, pytest.mark.live]


def sign_in(page, phone: str) -> None:
    page.goto("/login")
    page.get_by_label("手机号").fill(phone)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/$"))


def test_file_with_a_photo_accept_resolve_and_see_the_feedback(app, world, live_server,
                                                                phone_page, tmp_path):
    uploads = tmp_path / "uploads"
    server = live_server(workers=2, UPLOAD_DIR=str(uploads))
    photo = tmp_path / "IMG_2041.jpg"
    photo.write_bytes(jpeg(3000, 2250, gps=True))

    volunteer = phone_page(server.url, size=PHONE)
    sign_in(volunteer, world.volunteer.phone)
    volunteer.goto("/reports/new")
    assert_axe_clean(volunteer)
    volunteer.get_by_label("消防通道堵塞").check()
    volunteer.get_by_label("地点").fill("远创樾府 3 栋东侧")
    volunteer.get_by_label("问题描述").fill("消防通道被两辆电动车堵住了")
    volunteer.get_by_label("照片").set_input_files(str(photo))
    # reports.js swaps in a copy drawn at 2048 px on the long side before anything is sent.
    volunteer.wait_for_function(
        "async () => { const f = document.getElementById('f-photo').files[0];"
        " return f && (await createImageBitmap(f)).width === 2048; }", timeout=15_000)
    volunteer.get_by_role("button", name="提交上报").click()
    # The script shrinks the photo first, then submits: wait for the report's own page.
    volunteer.locator("img.report-photo-view").wait_for(timeout=30_000)
    assert re.search(r"/reports/\d+$", volunteer.url), volunteer.url
    rid = int(volunteer.url.rsplit("/", 1)[1])
    assert "已上报" in volunteer.content()
    width = volunteer.wait_for_function(
        "() => { const img = document.querySelector('img.report-photo-view');"
        " return img && img.complete && img.naturalWidth; }").json_value()
    assert width == 2048
    (stored,) = stored_files(uploads)
    kept = Image.open(io.BytesIO(stored.read_bytes()))
    assert kept.size == (2048, 1536) and not kept.getexif()
    assert_axe_clean(volunteer)

    organiser = phone_page(server.url, size=PHONE)
    sign_in(organiser, world.organiser.phone)
    organiser.goto("/organiser/reports")
    assert_axe_clean(organiser)
    item = organiser.locator(f"#report-{rid}")
    item.get_by_label("3 级（15 分）").check()
    item.get_by_role("button", name="受理").click()
    organiser.wait_for_url(re.compile(r"/organiser/reports"))
    assert "上报人得到 15 积分" in organiser.content()
    organiser.locator(f"#report-{rid}").get_by_label("分办给（人员或部门）").fill("物业维修班")
    organiser.locator(f"#report-{rid}").get_by_role("button", name="分办").click()
    organiser.wait_for_load_state()
    organiser.locator(f"#report-{rid}").get_by_label("处置结果").fill("已联系车主挪车，通道畅通")
    organiser.locator(f"#report-{rid}").get_by_role("button", name="办结并反馈").click()
    organiser.wait_for_load_state()
    assert "已办结反馈" in organiser.content() or "办结反馈" in organiser.content()

    volunteer.goto("/me/reports")
    text = volunteer.inner_text("main")
    assert "已办结" in text and "反馈：已联系车主挪车，通道畅通" in text and "得 15 积分" in text
    assert_axe_clean(volunteer)
    volunteer.goto(f"/reports/{rid}")
    text = volunteer.inner_text("main")
    assert "已联系车主挪车，通道畅通" in text and "15 积分" in text
    font = volunteer.evaluate("getComputedStyle(document.body).fontSize")
    assert font == "18px"
    assert balance(app, world.community.id, world.volunteer.id) == 15
    assert_verified(app)
