"""The report pages through HTTP (issue 9): filing with a photo (multipart), errors keeping what
was typed, the near-duplicate warning, my reports with the feedback, one report with its photo,
and the organiser's queue with its POST → redirect → GET forms; CSRF and who may see what."""

from __future__ import annotations

import io
import re

import pytest

from tests.ledger_helpers import assert_verified
from tests.pages_helpers import csrf, hidden, html, page, post_form, signed_in, text_of
from tests.report_helpers import API, act, balance, file_report, jpeg, report_rows, stored_files

FORM = {"category": "fire_lane", "location": "远创樾府 3 栋东侧", "description": "消防通道被电动车堵住了"}


pytestmark = pytest.mark.usefixtures("uploads")  # photos in a folder of the test's own


@pytest.fixture
def api(app):
    """A second client for the API (bearer headers), so page cookies never mix in."""
    return app.test_client()


def submit(client, data: dict, photo: bytes | None = None, *, token: str | None = None):
    body = {**data, "csrf_token": csrf(client)}
    if token is None:
        token = hidden(html(page(client, "/reports/new")), "form_token")
    body["form_token"] = token
    if photo is not None:
        body["photo"] = (io.BytesIO(photo), "IMG_0001.JPG")
    return client.post("/reports/new", data=body, content_type="multipart/form-data")


def test_the_form_takes_the_camera_and_works_as_multipart(client, world):
    signed_in(client, world.volunteer)
    text = html(page(client, "/reports/new"))
    assert 'enctype="multipart/form-data"' in text
    assert 'type="file" accept="image/*" capture="environment"' in text
    assert "js/reports.js" in text and "<script>" not in text
    for label in ("问题类别", "地点", "问题描述", "照片", "井盖破损", "消防通道堵塞"):
        assert label in text


def test_filing_with_a_photo_then_seeing_it(client, app, world, uploads):
    signed_in(client, world.volunteer)
    response = submit(client, FORM, jpeg(gps=True))
    assert response.status_code == 303, text_of(response)[:800]
    url = response.headers["Location"]
    report_page = page(client, url)
    text = text_of(report_page)
    assert "已上报" in text and "消防通道堵塞" in text and "待受理" in text
    assert "远创樾府 3 栋东侧" in text
    rid = int(url.rsplit("/", 1)[1])
    assert f'src="/reports/{rid}/photo"' in html(report_page)
    photo = client.get(f"/reports/{rid}/photo")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert b"SpyCam" not in photo.data and photo.headers["X-Content-Type-Options"] == "nosniff"
    assert "private" in photo.headers["Cache-Control"]
    assert len(stored_files(uploads)) == 1
    mine = text_of(page(client, "/me/reports"))
    assert "消防通道堵塞 · 远创樾府 3 栋东侧" in mine and "待受理" in mine


def test_errors_keep_what_was_typed(client, app, world, uploads):
    signed_in(client, world.volunteer)
    typed = {"category": "clutter", "location": "地" * 201, "description": "楼道里堆满了纸箱 📦"}
    response = submit(client, typed)
    assert response.status_code == 422
    body = html(response)
    assert "楼道里堆满了纸箱 📦" in body and "地" * 201 in body
    assert re.search(r'value="clutter"\s+id="f-category-3" checked', body)
    assert "提交没有成功" in body and 'href="#f-location"' in body
    # A file that is not an image: the photo's error, the text kept, nothing stored.
    response = submit(client, {**FORM, "description": "照片坏了的那次"}, b"not a picture")
    assert response.status_code == 422
    text = text_of(response)
    assert "不是可以识别的图片" in text and "请重新选择照片" in text
    assert "照片坏了的那次" in html(response)
    missing = submit(client, {})
    assert missing.status_code == 422
    assert report_rows(app)["reports"] == 0 and stored_files(uploads) == []


def test_a_double_submit_files_once(client, app, world):
    signed_in(client, world.volunteer)
    token = hidden(html(page(client, "/reports/new")), "form_token")
    first = submit(client, FORM, token=token)
    second = submit(client, FORM, token=token)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert report_rows(app)["reports"] == 1


def test_without_the_csrf_token_nothing_is_filed(client, app, world):
    signed_in(client, world.volunteer)
    response = client.post("/reports/new", data={**FORM}, content_type="multipart/form-data")
    assert response.status_code == 403 and "页面已过期" in text_of(response)
    response = post_form(client, "/organiser/reports/1/accept", {"level": "1"}, with_csrf=False)
    assert response.status_code in (403, 303)
    assert report_rows(app)["reports"] == 0


def test_the_near_duplicate_warning_is_shown_after_filing(client, world):
    signed_in(client, world.volunteer)
    first = submit(client, FORM).headers["Location"]
    again = submit(client, {**FORM, "description": "还是堵着"})
    text = text_of(page(client, again.headers["Location"]))
    assert f"#{first.rsplit('/', 1)[1]}" in text and "24 小时内" in text


def test_residents_are_told_when_the_community_does_not_take_their_reports(client, world, api,
                                                                            factory):
    signed_in(client, world.resident)
    response = client.get("/reports/new")
    assert response.status_code == 403 and "暂未开放居民上报" in text_of(response)
    api.put(f"{API}/communities/{world.community.id}/report-settings",
            json={"residents_may_report": True}, headers=factory.headers(world.organiser))
    page(client, "/reports/new")


def test_others_do_not_see_a_report_or_its_photo(client, api, world, factory):
    rid = file_report(api, world.community.id, factory.headers(world.volunteer),
                      photo=jpeg()).get_json()["id"]
    for who in (world.resident, world.other_organiser, world.outsider):
        other = client.application.test_client()
        signed_in(other, who)
        assert other.get(f"/reports/{rid}").status_code in (403, 404), who.display_name
        assert other.get(f"/reports/{rid}/photo").status_code in (403, 404), who.display_name
    volunteer_queue = client.application.test_client()
    signed_in(volunteer_queue, world.volunteer)
    assert volunteer_queue.get("/organiser/reports").status_code == 403


def test_the_organisers_queue_from_accept_to_resolve(client, api, app, world, factory):
    vol = factory.headers(world.volunteer)
    cid = world.community.id
    first = file_report(api, cid, vol, photo=jpeg()).get_json()["id"]
    flagged = file_report(api, cid, vol).get_json()["id"]
    signed_in(client, world.organiser)
    queue = page(client, "/organiser/reports")
    text = text_of(queue)
    assert f"可能与 #{first} 重复" in text and "有照片" in text
    assert "3 级（15 分）" in text  # the level radios show the rules table's points
    assert text.index(f"#{flagged}") < text.index(f"#{first}")  # newest pending first

    # A level not chosen: the error beside the radios; nothing changed.
    response = post_form(client, f"/organiser/reports/{first}/accept", {})
    assert response.status_code == 422 and "请先选一个等级" in text_of(response)
    response = post_form(client, f"/organiser/reports/{first}/accept", {"level": "3"})
    assert response.status_code == 303 and response.headers["Location"].startswith(
        "/organiser/reports")
    assert "上报人得到 15 积分" in text_of(page(client, response.headers["Location"]))
    assert balance(app, cid, world.volunteer.id) == 15

    # Accepting again (a colleague's tab): 409 in words, no second award.
    response = post_form(client, f"/organiser/reports/{first}/accept", {"level": "5"})
    assert response.status_code == 409 and "已受理" in text_of(response)
    response = post_form(client, f"/organiser/reports/{flagged}/duplicate", {"of": str(flagged)})
    assert response.status_code == 422 and "不能标记为与自己重复" in text_of(response)
    assert post_form(client, f"/organiser/reports/{flagged}/duplicate",
                     {"of": str(first)}).status_code == 303

    long_to = "部" * 101
    response = post_form(client, f"/organiser/reports/{first}/assign", {"to": long_to})
    assert response.status_code == 422 and long_to in html(response)
    assert post_form(client, f"/organiser/reports/{first}/assign",
                     {"to": "物业维修班"}).status_code == 303
    assert post_form(client, f"/organiser/reports/{first}/resolve",
                     {"note": "已挪车，通道畅通"}).status_code == 303
    assert post_form(client, f"/organiser/reports/{first}/nope", {"x": "1"}).status_code == 404
    assert balance(app, cid, world.volunteer.id) == 15
    assert_verified(app)

    reporter = app.test_client()
    signed_in(reporter, world.volunteer)
    mine = text_of(page(reporter, "/me/reports"))
    assert "反馈：已挪车，通道畅通" in mine and "得 15 积分" in mine
    detail = text_of(page(reporter, f"/reports/{first}"))
    assert "已挪车，通道畅通" in detail and "分办给 物业维修班" in detail
    assert f"与 #{first} 是同一个问题" in text_of(page(reporter, f"/reports/{flagged}"))


def test_another_communitys_report_is_not_found_in_my_queue(client, api, world, factory):
    theirs = file_report(api, world.other.id, factory.headers(world.other_volunteer)).get_json()
    signed_in(client, world.organiser)
    response = post_form(client, f"/organiser/reports/{theirs['id']}/accept", {"level": "1"})
    assert response.status_code == 404
    assert act(api, theirs["id"], "accept", factory.headers(world.organiser),
               {"level": 1}).status_code == 404


def test_a_full_queue_page_stays_within_the_page_budget(client, api, app, world, factory):
    from pathlib import Path

    static = Path(app.static_folder)
    vol = factory.headers(world.volunteer)
    for n in range(12):
        file_report(api, world.community.id, vol, photo=None, location=f"{n} 号楼 " + "长" * 180,
                    description="描述" * 500)
    signed_in(client, world.organiser)
    queue = page(client, "/organiser/reports")
    assert text_of(queue).count("受理并定级") == 6 and 'rel="next"' in html(queue)
    size = len(queue.data) + sum((static / p).stat().st_size
                                 for p in ("css/site.css", "js/site.js"))
    assert size <= 60 * 1024, size
    form_page = page(client, "/reports/new")
    size = len(form_page.data) + sum((static / p).stat().st_size
                                     for p in ("css/site.css", "js/site.js", "js/reports.js"))
    assert size <= 60 * 1024, size


def test_a_photo_over_the_limit_on_the_page_is_a_page_in_words(client, app, world):
    signed_in(client, world.volunteer)
    token = hidden(html(page(client, "/reports/new")), "form_token")
    big = b"\xff\xd8" + b"\0" * (11 * 1024 * 1024)
    response = client.post("/reports/new", content_type="multipart/form-data", data={
        **FORM, "csrf_token": csrf(client), "form_token": token,
        "photo": (io.BytesIO(big), "big.jpg")})
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "10 MB" in text_of(response)
    assert report_rows(app)["reports"] == 0
