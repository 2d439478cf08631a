"""The organiser's 消息推送 pages (issue 11): list and add webhooks, change, test, remove one,
its recent deliveries and resending — through the test client as a browser would (login, CSRF).

Other roles get the 403 page, another community's webhook the 404 page; a refused form
shows the errors in words beside the fields with what was typed kept (never the secret).
"""

from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa

from tests.helpers import API, reading
from tests.pages_helpers import post_form, signed_in, text_of
from tests.webhook_helpers import DINGTALK, SECRET, WECOM, Receiver

FORBIDDEN_WORDS = "这个页面只对本社区的社区工作人员开放"


def rows(app) -> list[dict]:
    from app.notifications.models import Webhook

    with reading(app) as session:
        return [dict(r) for r in session.execute(
            sa.select(Webhook.__table__).order_by(Webhook.id)).mappings()]


def api_hook(client, factory, world, **body) -> dict:
    body = {"url": WECOM, "format": "wecom", "events": ["wish.posted"], **body}
    response = client.post(f"{API}/communities/{world.community.id}/webhooks", json=body,
                           headers=factory.headers(world.organiser))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def field_value(html: str, name: str) -> str | None:
    found = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    if not found:
        return None
    value = re.search(r'value="([^"]*)"', found.group(0))
    return unescape(value.group(1)) if value else None


def checked(html: str, name: str) -> set[str]:
    return {unescape(v) for v in re.findall(
        rf'<input[^>]*name="{re.escape(name)}" value="([^"]*)"[^>]*checked', html)}


ADD = {"name": "居委会工作群", "format": "wecom", "url": WECOM,
       "events": ["wish.posted", "report.filed"], "enabled": "1"}


# --- who may look -----------------------------------------------------------------------------

def test_the_organiser_adds_a_group_robot_and_sees_it_listed(app, client, world):
    browser = signed_in(client, world.organiser)
    empty = browser.get("/organiser/webhooks")
    assert empty.status_code == 200 and empty.headers["Cache-Control"] == "private, no-store"
    text = text_of(empty)
    for words in ("还没有设置推送", "群设置", "群机器人", "添加", "智能群助手", "自定义", "加签",
                  "自定义关键词", "心愿", "新心愿", "积分到账", "可发到群"):
        assert words in text, words

    added = post_form(browser, "/organiser/webhooks", {**ADD, "secret": SECRET,
                                                       "quiet_start": "22:00",
                                                       "quiet_end": "07:00"})
    assert added.status_code == 303, text_of(added)[:1500]
    [row] = rows(app)
    assert added.headers["Location"] == f"/organiser/webhooks/{row['id']}"
    assert (row["name"], row["format"], row["url"], row["secret"]) == (
        "居委会工作群", "wecom", WECOM, SECRET)
    assert row["events"] == ["wish.posted", "report.filed"] and row["enabled"] is True
    assert (row["quiet_start"], row["quiet_end"]) == ("22:00", "07:00")

    detail = browser.get(added.headers["Location"])
    html = detail.get_data(as_text=True)
    assert "已添加“居委会工作群”" in text_of(detail)
    assert SECRET not in html and "0ec2sifa5aaa" not in html and "key=69****aa" in html
    listed = browser.get("/organiser/webhooks")
    text = text_of(listed)
    assert "居委会工作群" in text and "企业微信群机器人" in text and "新心愿、新随手拍" in text
    assert SECRET not in listed.get_data(as_text=True)


@pytest.mark.parametrize("who", ["volunteer", "resident"])
def test_volunteers_and_residents_get_the_403_page(app, client, factory, world, who):
    hook = api_hook(client, factory, world)
    before = rows(app)
    browser = signed_in(app.test_client(), getattr(world, who))
    for url in ("/organiser/webhooks", f"/organiser/webhooks/{hook['id']}"):
        response = browser.get(url)
        assert response.status_code == 403 and FORBIDDEN_WORDS in text_of(response), url
    for url, body in [("/organiser/webhooks", ADD), (f"/organiser/webhooks/{hook['id']}", ADD),
                      (f"/organiser/webhooks/{hook['id']}/delete", {}),
                      (f"/organiser/webhooks/{hook['id']}/test", {})]:
        response = post_form(browser, url, body)
        assert response.status_code == 403, url
    assert rows(app) == before


def test_an_organiser_of_another_community_sees_404_pages(app, client, factory, world):
    hook = api_hook(client, factory, world)
    before = rows(app)
    other = signed_in(app.test_client(), world.other_organiser)
    assert "还没有设置推送" in text_of(other.get("/organiser/webhooks"))  # theirs: none
    assert other.get(f"/organiser/webhooks/{hook['id']}").status_code == 404
    for url in (f"/organiser/webhooks/{hook['id']}", f"/organiser/webhooks/{hook['id']}/delete",
                f"/organiser/webhooks/{hook['id']}/test",
                f"/organiser/webhooks/{hook['id']}/deliveries/1/resend"):
        response = post_form(other, url, ADD)
        assert response.status_code == 404, url
        assert "找不到这个页面" in text_of(response)
    assert rows(app) == before


def test_a_visitor_is_sent_to_login_and_a_post_without_csrf_changes_nothing(app, client, world):
    response = client.get("/organiser/webhooks")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/organiser/webhooks"
    browser = signed_in(client, world.organiser)
    refused = post_form(browser, "/organiser/webhooks", ADD, with_csrf=False)
    assert refused.status_code == 403 and rows(app) == []


# --- a refused form ---------------------------------------------------------------------------

@pytest.mark.parametrize("changes, field, words", [
    ({"url": ""}, "url", "请填写接收消息的网址"),
    ({"url": "qyapi.weixin.qq.com/cgi-bin/webhook/send"}, "url", "以 https:// 或 http:// 开头"),
    ({"url": "ftp://files.example.org/"}, "url", "只能推送到 https:// 或 http://"),
    ({"url": "http://169.254.169.254/latest/"}, "url", "内网、本机或保留地址（169.254.169.254）"),
    ({"url": "http://10.0.0.1/"}, "url", "内网、本机或保留地址"),
    ({"url": "http://[::1]/"}, "url", "内网、本机或保留地址"),
    ({"events": []}, "events", "请至少选择一种要推送的事件"),
    ({"events": ["wish.posted", "points.awarded"]}, "events", "群机器人只能推送"),
    ({"events": ["wish.nope"]}, "events", "wish.posted"),
    ({"secret": "x" * 200}, "secret", "128"),
    ({"name": "心" * 41}, "name", "40"),
    ({"quiet_start": "22:00"}, "quiet_end", "免打扰时段要同时填写"),
    ({"quiet_start": "25:00", "quiet_end": "07:00"}, "quiet_start", "HH:MM"),
    ({"format": "fax"}, "format", "json"),
])
def test_a_refused_form_says_why_beside_the_field_and_keeps_what_was_typed(
        app, client, world, changes, field, words):
    browser = signed_in(client, world.organiser)
    body = {**ADD, "name": "居委会工作群", **changes}
    response = post_form(browser, "/organiser/webhooks", {**body, "secret": changes.get(
        "secret", SECRET)})
    assert response.status_code == 422, text_of(response)[:1000]
    html = response.get_data(as_text=True)
    error = re.search(rf'<p class="field__error" id="f-{field}-error">(.*?)</p>', html, re.S)
    assert error, (field, text_of(response)[:2000])
    assert words in unescape(error.group(1)), unescape(error.group(1))
    assert f'href="#f-{field}"' in html  # the summary links to the field
    assert SECRET not in html and "x" * 200 not in html  # the secret is never put back
    if field != "name":
        assert field_value(html, "name") == "居委会工作群"
    if field != "url":
        assert field_value(html, "url") == body["url"]
    if field != "events":
        assert checked(html, "events") == set(body["events"])
    assert rows(app) == []


# --- one webhook: change, test, resend, remove ------------------------------------------------

def test_the_edit_form_shows_the_masked_url_and_keeps_the_real_one(app, client, factory, world):
    hook = api_hook(client, factory, world, secret=SECRET, name="工作群")
    browser = signed_in(client, world.organiser)
    url = f"/organiser/webhooks/{hook['id']}"
    html = browser.get(url).get_data(as_text=True)
    assert field_value(html, "url") == hook["url"] and "****" in hook["url"]
    assert field_value(html, "secret") is None or field_value(html, "secret") == ""
    assert checked(html, "events") == {"wish.posted"} and checked(html, "enabled") == {"1"}
    assert "已设置（不会显示出来）" in html

    changed = post_form(browser, url, {"name": "居委会群", "format": "wecom", "url": hook["url"],
                                       "events": ["wish.posted", "wish.disputed"],
                                       "quiet_start": "", "quiet_end": ""})
    assert changed.status_code == 303, text_of(changed)[:1500]
    [row] = rows(app)
    assert row["url"] == WECOM and row["secret"] == SECRET and row["enabled"] is False
    assert row["name"] == "居委会群" and row["events"] == ["wish.posted", "wish.disputed"]
    assert "已保存修改" in text_of(browser.get(url))

    cleared = post_form(browser, url, {"name": "钉钉群", "format": "dingtalk", "url": DINGTALK,
                                       "events": ["wish.posted"], "clear_secret": "1",
                                       "enabled": "1", "quiet_start": "21:30",
                                       "quiet_end": "08:00"})
    assert cleared.status_code == 303
    [row] = rows(app)
    assert (row["format"], row["url"], row["secret"], row["enabled"]) == (
        "dingtalk", DINGTALK, None, True)
    assert (row["quiet_start"], row["quiet_end"]) == ("21:30", "08:00")


def test_a_refused_change_keeps_what_was_typed_and_changes_nothing(app, client, factory, world):
    hook = api_hook(client, factory, world, secret=SECRET)
    before = rows(app)
    browser = signed_in(client, world.organiser)
    response = post_form(browser, f"/organiser/webhooks/{hook['id']}", {
        "name": "新名字", "format": "wecom", "url": hook["url"],
        "events": ["wish.posted", "points.expiring"], "enabled": "1"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "群机器人只能推送" in text_of(response) and "积分即将过期" in text_of(response)
    assert field_value(html, "name") == "新名字"
    assert checked(html, "events") == {"wish.posted", "points.expiring"}
    assert rows(app) == before
    blank = post_form(browser, f"/organiser/webhooks/{hook['id']}", {
        "name": "新名字", "format": "wecom", "url": "", "events": ["wish.posted"]})
    assert blank.status_code == 422 and "请填写接收消息的网址" in text_of(blank)
    assert rows(app) == before


def test_removing_a_webhook(app, client, factory, world):
    hook = api_hook(client, factory, world, name="旧群")
    browser = signed_in(client, world.organiser)
    html = browser.get(f"/organiser/webhooks/{hook['id']}").get_data(as_text=True)
    assert "data-confirm=" in html and "确定删除“旧群”" in html
    response = post_form(browser, f"/organiser/webhooks/{hook['id']}/delete")
    assert response.status_code == 303 and response.headers["Location"] == "/organiser/webhooks"
    assert rows(app) == [] and "已删除“旧群”" in text_of(browser.get("/organiser/webhooks"))
    assert browser.get(f"/organiser/webhooks/{hook['id']}").status_code == 404


@pytest.fixture
def receiver(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", ["127.0.0.1/32"])
    found = Receiver()
    yield found
    found.stop()


def test_the_test_button_shows_the_receivers_answer(app, client, factory, world, receiver):
    hook = api_hook(client, factory, world, format="json", url=receiver.url(),
                    events=["wish.posted"], name="自建系统")
    browser = signed_in(client, world.organiser)
    page = browser.get(f"/organiser/webhooks/{hook['id']}")
    assert "发送测试消息" in text_of(page)
    answer = post_form(browser, f"/organiser/webhooks/{hook['id']}/test")
    assert answer.status_code == 200, text_of(answer)[:1500]
    text = text_of(answer)
    assert "测试消息已送达" in text and "状态码 200" in text and "毫秒" in text
    assert len(receiver.requests) == 1

    receiver.answer((503, '{"errcode":1,"errmsg":"busy"}'))
    failed = text_of(post_form(browser, f"/organiser/webhooks/{hook['id']}/test"))
    assert "测试消息没有送达" in failed and "状态码 503" in failed and "错误" in failed


def test_the_deliveries_table_and_resending_one(app, client, factory, world, receiver):
    hook = api_hook(client, factory, world, format="json", url=receiver.url(),
                    events=["wish.posted"])
    org = factory.headers(world.organiser)
    board = client.post(f"{API}/communities/{world.community.id}/boards", headers=org,
                        json={"name": "3 栋", "location": "东门"}).get_json()
    assert client.post(f"{API}/boards/{board['id']}/wishes", headers=factory.headers(world.resident),
                       json={"title": "帮忙换灯泡", "category": "repair",
                             "description": "谢谢"}).status_code == 201
    [delivery] = client.get(f"{API}/webhooks/{hook['id']}/deliveries", headers=org).get_json()["items"]

    browser = signed_in(client, world.organiser)
    url = f"/organiser/webhooks/{hook['id']}"
    page = browser.get(url)
    text = text_of(page)
    assert "最近的推送记录" in text and "新心愿" in text and "待发送" in text and "重新发送" in text
    shown = delivery["created_at"][:16].replace("T", " ")  # Asia/Shanghai wall-clock time
    assert shown in text

    resent = post_form(browser, f"{url}/deliveries/{delivery['id']}/resend")
    assert resent.status_code == 303 and resent.headers["Location"] == url
    text = text_of(browser.get(url))
    assert "已重新发送，对方已收到（状态码 200）" in text and "已送达" in text
    assert len(receiver.requests) == 1

    other = api_hook(client, factory, world, name="另一个")
    assert post_form(browser, f"/organiser/webhooks/{other['id']}/deliveries/{delivery['id']}"
                              "/resend").status_code == 404


# --- on a phone -------------------------------------------------------------------------------

@pytest.mark.browser
def test_adding_a_robot_and_testing_it_on_a_small_phone(demo, phone_page):
    """The pages fit 360 px without sideways scrolling and pass axe (the test answer is a page
    of its own; nothing leaves the machine: a .invalid name never resolves)."""
    from tests.browser import SMALL_PHONE, assert_axe_clean, screenshot
    from tests.live_pages import ORGANISER, sign_in

    server, _seeded = demo
    page = phone_page(server.url, size=SMALL_PHONE)
    sign_in(page, ORGANISER)
    page.goto("/organiser/webhooks")  # linked from the organiser's home by the lead
    assert page.url.endswith("/organiser/webhooks")
    fits = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(fits)
    assert_axe_clean(page)

    phone_page.watch(page).clear()
    page.get_by_role("button", name="添加", exact=True).click()  # nothing filled in: 422
    phone_page.watch(page).clear()  # chromium logs the 422 answer as a console error
    assert "请填写接收消息的网址" in page.content() and page.evaluate(fits)
    assert_axe_clean(page)
    screenshot(page, "webhooks-error")

    page.get_by_label("名称").fill("居委会工作群")
    page.get_by_label("接收地址").fill(
        "https://qyapi.weixin.invalid/cgi-bin/webhook/send?key=693a91f6-7aaa-4bc4")
    page.get_by_label("新心愿（可发到群）").check()
    page.get_by_role("button", name="添加", exact=True).click()
    page.wait_for_url(re.compile(r"/organiser/webhooks/\d+$"))
    assert "已添加“居委会工作群”" in page.content() and "key=69****c4" in page.content()
    assert page.evaluate(fits)
    assert_axe_clean(page)

    page.get_by_role("button", name="发送测试消息").click()
    phone_page.watch(page).clear()
    assert "测试消息没有送达" in page.content() and page.evaluate(fits)
    assert_axe_clean(page)
    screenshot(page, "webhook-test-answer")
