"""Volunteer activities' pages through HTTP (issue 9): the list, signing up, the scanned QR
kept through the login, the typed code, the organiser's pages, the certificate.

Activities are published through the API (tests/activity_helpers.py); the pages are driven as
a browser would (cookies, CSRF field); moving an activity in time sets its columns directly.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest

from app.localtime import SHANGHAI
from tests.activity_helpers import (
    activity_row,
    current_code,
    now,
    publish,
    set_times,
    signups,
    token_for,
)
from tests.ledger_helpers import assert_verified
from tests.live_pages import decode_qr
from tests.pages_helpers import hidden, html, page, post_form, signed_in, text_of


@pytest.fixture
def api(app):
    return app.test_client()


@pytest.fixture
def aid(api, factory, world):
    return publish(api, factory.headers(world.organiser), world.community.id,
                   title="重阳节敬老院陪伴", capacity=2)["id"]


def test_volunteer_lists_signs_up_and_cancels(app, client, world, aid):
    signed_in(client, world.volunteer)
    listing = text_of(page(client, "/activities"))
    assert "重阳节敬老院陪伴" in listing and "还剩 2 个名额" in listing
    assert "我要报名" in text_of(page(client, f"/activities/{aid}"))
    answer = post_form(client, f"/activities/{aid}/signup")
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/activities/{aid}")
    shown = text_of(page(client, f"/activities/{aid}"))
    assert "报名成功" in shown and "取消报名" in shown
    assert activity_row(app, aid)["signed_up"] == 1
    assert post_form(client, f"/activities/{aid}/cancel-signup").status_code == 303
    assert activity_row(app, aid)["signed_up"] == 0
    assert post_form(client, f"/activities/{aid}/signup", with_csrf=False).status_code == 403
    assert activity_row(app, aid)["signed_up"] == 0


def test_full_activity_refused_in_words(app, client, api, factory, world, aid):
    for n in range(2):
        person = factory.member(world.community, factory.user(f"先到{n}"), "volunteer")
        api.post(f"/api/v1/activities/{aid}/signup", headers=factory.headers(person))
    signed_in(client, world.volunteer)
    assert "名额已满" in text_of(page(client, f"/activities/{aid}"))
    refused = post_form(client, f"/activities/{aid}/signup")
    assert refused.status_code == 409 and "名额已满" in text_of(refused)


def test_resident_sees_but_cannot_sign_up_and_other_community_404(client, factory, world, aid):
    signed_in(client, world.resident)
    assert "我要报名" not in text_of(page(client, f"/activities/{aid}"))
    assert post_form(client, f"/activities/{aid}/signup").status_code == 403
    other = factory.user("外人")
    factory.member(world.other, other, "volunteer")
    client.post("/logout", data={"csrf_token": client.get_cookie("xy_csrf").value})
    signed_in(client, other)
    assert client.get(f"/activities/{aid}").status_code == 404


def test_scanned_qr_kept_through_the_login(app, client, api, factory, world, aid, monkeypatch):
    api.post(f"/api/v1/activities/{aid}/signup", headers=factory.headers(world.volunteer))
    set_times(app, aid, starts_in=timedelta(minutes=-5))
    token = token_for(app, aid)
    scanned = client.get(f"/a/{aid}/checkin?t={token}")
    assert scanned.status_code == 303
    location = unquote(scanned.headers["Location"])
    assert location.startswith("/login?next=") and f"/a/{aid}/checkin?s=" in location
    ticket = re.search(r"s=([^&]+)", location).group(1)

    # the login takes 100 seconds: the QR's token alone would now be near its end, the ticket
    # counts from the scan; then 2 more minutes later it has run out
    from app.activities import service
    scan_time = now()
    monkeypatch.setattr(service, "utcnow", lambda: scan_time + timedelta(seconds=100))
    signed_in(client, world.volunteer)
    confirm = page(client, f"/a/{aid}/checkin?s={ticket}")
    assert "确认签到" in text_of(confirm) and signups(app, aid)[world.volunteer.id]["status"] == "signed_up"
    assert hidden(html(confirm), "csrf_token")
    done = post_form(client, f"/a/{aid}/checkin", {"s": ticket})
    assert done.status_code == 303, text_of(done)
    assert signups(app, aid)[world.volunteer.id]["status"] == "attended"
    assert signups(app, aid)[world.volunteer.id]["checkin_method"] == "qr"


def test_old_forged_or_other_scans_refused(app, client, api, factory, world, aid, monkeypatch):
    api.post(f"/api/v1/activities/{aid}/signup", headers=factory.headers(world.volunteer))
    set_times(app, aid, starts_in=timedelta(minutes=-5))
    other = publish(api, factory.headers(world.organiser), world.community.id)["id"]
    signed_in(client, world.volunteer)
    for url in (f"/a/{aid}/checkin?t={token_for(app, other)}", f"/a/{aid}/checkin?t=forged",
                f"/a/{aid}/checkin?s=forged", f"/a/{aid}/checkin"):
        refused = client.get(url)
        assert refused.status_code == 409 and "过期或无效" in text_of(refused), url
    ticket = re.search(r'name="s" value="([^"]+)"', html(page(
        client, f"/a/{aid}/checkin?t={token_for(app, aid)}"))).group(1)
    from app.activities import service
    later = now() + timedelta(seconds=125)
    monkeypatch.setattr(service, "utcnow", lambda: later)
    refused = post_form(client, f"/a/{aid}/checkin", {"s": ticket})
    assert refused.status_code == 409
    assert signups(app, aid)[world.volunteer.id]["status"] == "signed_up"


def test_check_in_by_typing_the_code(app, client, api, factory, world, aid):
    api.post(f"/api/v1/activities/{aid}/signup", headers=factory.headers(world.volunteer))
    signed_in(client, world.volunteer)
    assert "现在没有可以签到的活动" in text_of(page(client, "/activities/checkin"))
    set_times(app, aid, starts_in=timedelta(minutes=20))
    assert "签到码" in text_of(page(client, "/activities/checkin"))
    wrong = post_form(client, "/activities/checkin", {"activity_id": str(aid), "code": "000000"})
    assert wrong.status_code == 409 and "签到码不正确" in text_of(wrong)
    done = post_form(client, "/activities/checkin",
                     {"activity_id": str(aid), "code": current_code(app, aid)})
    assert done.status_code == 303
    assert signups(app, aid)[world.volunteer.id]["checkin_method"] == "code"


def test_organiser_publishes_edits_screens_marks_and_completes(app, client, factory, world):
    signed_in(client, world.organiser)
    assert "发布新活动" in text_of(page(client, "/organiser/activities"))
    page(client, "/organiser/activities/new")
    start = (now() + timedelta(days=1)).astimezone(SHANGHAI)
    form = {"title": "清扫楼道", "description": "带手套", "place": "3 号楼", "capacity": "5",
            "level": "3", "hours": "1.5", "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")}
    bad = post_form(client, "/organiser/activities/new", {**form, "hours": "1.3", "capacity": "0"})
    assert bad.status_code == 422 and "清扫楼道" in html(bad)
    assert "志愿时长" in text_of(bad) and "名额" in text_of(bad)
    made = post_form(client, "/organiser/activities/new", form)
    assert made.status_code == 303, text_of(made)
    aid = int(re.search(r"/organiser/activities/(\d+)", made.headers["Location"]).group(1))
    row = activity_row(app, aid)
    assert row["half_hours"] == 3 and row["level"] == 3 and row["capacity"] == 5

    edited = post_form(client, f"/organiser/activities/{aid}", {**form, "title": "清扫楼道（改）"})
    assert edited.status_code == 303 and activity_row(app, aid)["title"] == "清扫楼道（改）"

    walk_in = factory.member(world.community, factory.user("临时来", phone="13912345678"), "volunteer")
    client_api = app.test_client()
    client_api.post(f"/api/v1/activities/{aid}/signup", headers=factory.headers(world.volunteer))
    set_times(app, aid, starts_in=timedelta(minutes=-5))

    screen = page(client, f"/organiser/activities/{aid}/checkin")
    data = re.search(r'src="data:image/png;base64,([^"]+)"', html(screen)).group(1)
    assert f"/a/{aid}/checkin?t=" in decode_qr(base64.b64decode(data))
    assert '<meta http-equiv="refresh"' in html(screen)
    feed = client.get(f"/organiser/activities/{aid}/checkin.json")
    assert feed.status_code == 200 and len(feed.get_json()["code"]) == 6

    marked = post_form(client, f"/organiser/activities/{aid}/present",
                       {"user_id": str(world.volunteer.id), "back": "screen"})
    assert marked.status_code == 303 and marked.headers["Location"].endswith("/checkin")
    walked = post_form(client, f"/organiser/activities/{aid}/present", {"phone": "139 1234 5678"})
    assert walked.status_code == 303
    unknown = post_form(client, f"/organiser/activities/{aid}/present", {"phone": "13000000000"})
    assert unknown.status_code == 422 and "没有找到" in text_of(unknown)
    assert signups(app, aid)[walk_in.id]["walk_in"] is True

    done = post_form(client, f"/organiser/activities/{aid}/complete")
    assert done.status_code == 303 and activity_row(app, aid)["status"] == "completed"
    again = post_form(client, f"/organiser/activities/{aid}/complete")
    assert again.status_code == 409 and "已结束" in text_of(again)
    assert_verified(app)

    client.post("/logout", data={"csrf_token": client.get_cookie("xy_csrf").value})
    signed_in(client, world.volunteer)
    shown = text_of(page(client, f"/activities/{aid}"))
    assert "已获得 30 积分和 1.5 小时志愿时长" in shown
    certificate = text_of(page(client, "/me/service-hours"))
    assert "志愿服务时长证明" in certificate and "管园村" in certificate
    assert "清扫楼道（改）" in certificate and "累计志愿服务时长 1.5 小时" in certificate


def test_organiser_cancels_before_start(app, client, api, factory, world, aid):
    api.post(f"/api/v1/activities/{aid}/signup", headers=factory.headers(world.volunteer))
    signed_in(client, world.organiser)
    assert post_form(client, f"/organiser/activities/{aid}/cancel", {"reason": "下雨"}).status_code == 303
    assert activity_row(app, aid)["status"] == "cancelled"
    assert signups(app, aid)[world.volunteer.id]["status"] == "cancelled"


def test_organiser_pages_refuse_volunteers(client, world, aid):
    signed_in(client, world.volunteer)
    for url in ("/organiser/activities", "/organiser/activities/new", f"/organiser/activities/{aid}",
                f"/organiser/activities/{aid}/checkin"):
        assert client.get(url).status_code == 403, url
    assert post_form(client, f"/organiser/activities/{aid}/complete").status_code == 403


def test_scan_is_never_a_state_change_on_get(app, client, api, factory, world, aid):
    api.post(f"/api/v1/activities/{aid}/signup", headers=factory.headers(world.volunteer))
    set_times(app, aid, starts_in=timedelta(minutes=-5))
    signed_in(client, world.volunteer)
    page(client, f"/a/{aid}/checkin?t={token_for(app, aid)}")
    assert signups(app, aid)[world.volunteer.id]["status"] == "signed_up"
