"""The pages behind a board's QR code, through HTTP: the board's public page (no login, no
personal data), its friendly pages when disabled, replaced or unknown, and posting a wish
from a phone — login and back, errors in words with what was typed kept, CSRF, one wish per
form token, and a login refreshed silently from the refresh cookie."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from tests.helpers import reading
from tests.pages_helpers import csrf, hidden, post_form, signed_in, text_of
from tests.wish_helpers import Kit, counts

CONTACT = {"contact_phone": "13912345678", "address": "远创樾府 3 栋 502 室"}


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def page(response, status: int = 200) -> str:
    """An HTML page (never the API's JSON envelope) with the given status."""
    assert response.status_code == status, response.get_data(as_text=True)[:3000]
    assert response.mimetype == "text/html", response.headers
    html = response.get_data(as_text=True)
    assert "Traceback" not in html and '"error":' not in html
    assert html.count("<h1") == 1, html
    return html


def wish_form(client, token: str) -> dict:
    """What the form page hands a browser: its one-time form token."""
    html = page(client.get(f"/b/{token}/wish"))
    return {"form_token": hidden(html, "form_token")}


def typed_value(html: str, name: str) -> str | None:
    """The value an input (or the text a textarea) shows again."""
    found = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    if found:
        return found.group(1)
    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>([^<]*)</textarea>', html)
    return found.group(1) if found else None


def wishes_of(app) -> list[dict]:
    from app.wishes.models import Wish

    with reading(app) as session:
        return [dict(r) for r in session.execute(
            sa.select(Wish.__table__).order_by(Wish.id)).mappings()]


def good_wish(**fields) -> dict:
    return {"title": "帮忙换灯泡", "category": "repair", "description": "客厅的灯不亮了\n梯子家里有",
            **CONTACT, **fields}


# --- the board's page -------------------------------------------------------------------------

def test_the_board_page_is_public_and_shows_only_public_summaries(kit, app):
    client = app.test_client()
    shown = kit.make("open", title="想请人陪老人散步", **CONTACT)
    kit.make("claimed", title="帮忙修水管")
    kit.post_wish(kit.resident, title="还在审核的心愿")
    kit.make("rejected", title="被驳回的心愿")
    html = page(client.get(f"/b/{kit.board['token']}"))
    text = text_of(client.get(f"/b/{kit.board['token']}"))
    assert kit.board["name"] in text and kit.w.community.name in text and "东门公示栏" in text
    # How it works, in three plain steps, and the one big button.
    steps = re.search(r'<ol class="steps">(.*?)</ol>', html, re.S).group(1)
    assert steps.count("<li>") == 3
    assert re.search(rf'<a class="button button--primary button--big" href="/b/{kit.board["token"]}/wish">'
                     r"发布心愿</a>", html)
    # Public summaries: title, category, status badge, date.
    assert "想请人陪老人散步" in text and "帮忙修水管" in text
    assert "badge--open" in html and "待认领" in text and "badge--claimed" in html
    assert "陪伴探访" in text or "维修" in text
    assert re.search(r"\d{4}-\d{2}-\d{2}", text)
    assert "还在审核的心愿" not in text and "被驳回的心愿" not in text
    # No personal data at all: names, phones, addresses.
    for secret in (kit.resident.display_name, kit.resident.phone, CONTACT["contact_phone"],
                   CONTACT["address"], "138****", kit.volunteer.display_name):
        assert secret not in html, secret
    # No wish links (a wish's page needs a login) and no form to post here.
    assert f"/wishes/{shown}" not in html and "<form" not in html.replace(
        'class="inline-form"', "")


def test_the_board_page_lists_twenty_a_page_newest_first(kit, app):
    from app.wishes.models import Wish

    first = kit.make("open", title="心愿 0")
    with app.app_context():  # 24 more open wishes, written directly (the API path is slow)
        from app.extensions import db

        template = db.session.get(Wish, first)
        for n in range(1, 25):
            db.session.add(Wish(community_id=template.community_id, board_id=template.board_id,
                                owner_id=template.owner_id, posted_by_id=template.posted_by_id,
                                title=f"心愿 {n}", category="other", status="open", level=1))
        db.session.commit()
    client = app.test_client()
    one = text_of(client.get(f"/b/{kit.board['token']}"))
    assert "心愿 24" in one and "心愿 5 " in one and "心愿 4 " not in one
    assert "第 1 / 2 页" in one and "下一页" in one and "上一页" not in one
    two = page(client.get(f"/b/{kit.board['token']}?page=2"))
    assert all(f"心愿 {n}<" in two for n in range(5)) and "心愿 5<" not in two
    assert f'href="/b/{kit.board["token"]}?page=1"' in two
    for odd in ("0", "-3", "abc", "999999999"):
        assert client.get(f"/b/{kit.board['token']}?page={odd}").status_code == 200


def test_disabled_replaced_and_unknown_boards_get_pages_in_words(kit, app):
    client = app.test_client()
    token = kit.board["token"]
    kit.ok(kit.patch(f"/boards/{kit.board['id']}", kit.organiser, {"enabled": False}))
    closed = text_of(client.get(f"/b/{token}"))
    assert "暂停" in closed and "联系社区工作人员" in closed and kit.board["name"] in closed
    page(client.get(f"/b/{token}"), 200)
    assert f"/b/{token}/wish" not in client.get(f"/b/{token}").get_data(as_text=True)
    kit.ok(kit.patch(f"/boards/{kit.board['id']}", kit.organiser, {"enabled": True}))
    new = kit.ok(kit.post(f"/boards/{kit.board['id']}/rotate-token", kit.organiser))["token"]
    replaced = client.get(f"/b/{token}")
    html = page(replaced, 410)
    assert "已更换" in text_of(replaced) and "新二维码" in text_of(replaced) and new not in html
    missing = client.get("/b/not-a-real-token")
    page(missing, 404)
    assert "找不到" in text_of(missing) and "最新的二维码" in text_of(missing)
    # The form page of a replaced or unknown token says the same, for a signed-in person too.
    signed_in(client, kit.resident)
    page(client.get(f"/b/{token}/wish"), 410)
    page(client.get("/b/not-a-real-token/wish"), 404)
    before = counts(app)
    page(post_form(client, f"/b/{token}/wish", good_wish()), 410)
    assert counts(app) == before
    # The poster stays where it was.
    assert client.get(f"/b/{new}/poster").status_code == 200


# --- posting a wish -------------------------------------------------------------------------

def test_posting_needs_a_login_and_comes_back_to_the_form(kit, app):
    client = app.test_client()
    token = kit.board["token"]
    answer = client.get(f"/b/{token}/wish")
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/login?next=/b/{token}/wish"
    login = page(client.get(answer.headers["Location"]))
    assert f'name="next" value="/b/{token}/wish"' in login
    back = post_form(client, "/login", {"phone": kit.w.outsider.phone, "password": "correct horse 马",
                                        "next": f"/b/{token}/wish"})
    assert back.status_code == 303 and back.headers["Location"] == f"/b/{token}/wish"
    html = page(client.get(f"/b/{token}/wish"))
    assert 'id="wish-form"' in html and hidden(html, "form_token")


def test_a_resident_posts_a_wish_and_lands_on_its_page(kit, app):
    client = signed_in(app.test_client(), kit.w.outsider)  # not yet a member: becomes a resident
    html = page(client.get(f"/b/{kit.board['token']}/wish"))
    for label in ("心愿标题", "类别", "详细说明", "联系电话", "地址", "生活帮扶", "维修", "跑腿代购",
                  "陪伴探访", "政策咨询", "手机电脑", "其他"):
        assert label in html, label
    # Who sees the phone and address is said beside them.
    assert "只有认领您心愿的志愿者和社区工作人员能看到" in html
    assert re.search(r'<label class="field__label" for="f-contact_phone">', html)
    answer = post_form(client, f"/b/{kit.board['token']}/wish",
                       {**good_wish(), "form_token": hidden(html, "form_token")})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    [wish] = wishes_of(app)
    assert answer.headers["Location"] == f"/wishes/{wish['id']}"
    assert {k: wish[k] for k in ("title", "category", "description", "contact_phone", "address",
                                 "status", "owner_id", "board_id")} == {
        "title": "帮忙换灯泡", "category": "repair", "description": "客厅的灯不亮了\n梯子家里有",
        "contact_phone": "13912345678", "address": "远创樾府 3 栋 502 室", "status": "pending",
        "owner_id": kit.w.outsider.id, "board_id": kit.board["id"]}
    shown = client.get(answer.headers["Location"])
    text = text_of(shown)
    assert "心愿已提交" in text and "已发布" in text and "待审核" in text
    assert "13912345678" in text and "远创樾府 3 栋 502 室" in text  # the owner sees their own
    # The newcomer is now a resident of the board's community.
    from app.communities.models import Membership

    with reading(app) as session:
        member = session.scalar(sa.select(Membership).where(
            Membership.user_id == kit.w.outsider.id))
        assert (member.community_id, member.role) == (kit.cid, "resident")


def test_optional_fields_may_stay_empty(kit, app):
    client = signed_in(app.test_client(), kit.resident)
    answer = post_form(client, f"/b/{kit.board['token']}/wish", {
        **wish_form(client, kit.board["token"]), "title": "  想学用手机挂号  ", "category": "digital",
        "description": "", "contact_phone": "", "address": "   "})
    assert answer.status_code == 303
    [wish] = wishes_of(app)
    assert (wish["title"], wish["description"], wish["contact_phone"], wish["address"]) == (
        "想学用手机挂号", "", None, None)


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"title": ""}, "title", "必填"),
    ({"title": "   "}, "title", "必填"),
    ({"title": "长" * 10_000}, "title", "60"),
    ({"title": "长" * 61}, "title", "60"),
    ({"category": ""}, "category", "必填"),
    ({"category": "flying"}, "category", None),
    ({"contact_phone": "12345"}, "contact_phone", "手机号"),
    ({"contact_phone": "1391234567８"}, "contact_phone", "手机号"),
    ({"description": "说" * 2001}, "description", "2000"),
    ({"address": "址" * 201}, "address", "200"),
    ({"title": "带\x07控制符"}, "title", None),
])
def test_bad_input_is_refused_in_words_keeping_what_was_typed(kit, app, fields, field, words):
    client = signed_in(app.test_client(), kit.resident)
    typed = good_wish(**fields)
    before = counts(app)
    answer = post_form(client, f"/b/{kit.board['token']}/wish",
                       {**wish_form(client, kit.board["token"]), **typed})
    html = page(answer, 422)
    assert counts(app) == before  # nothing created, no membership, no event
    # The summary at the top links to the field; the message is beside it too.
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S).group(0)
    assert f'href="#f-{field}"' in summary
    beside = re.search(rf'<p class="field__error" id="f-{field}-error">(.*?)</p>', html, re.S)
    assert beside, html
    message = re.sub(r"<[^>]+>", "", beside.group(1))
    assert re.search(r"[\u4e00-\u9fff]", message), message  # in words, in Chinese
    if words:
        assert words in message, message
    # What was typed is shown again (the description too, line breaks and all).
    for name in ("title", "description", "address", "contact_phone"):
        if len(typed[name]) < 1000 and "\x07" not in typed[name]:
            assert unescape(typed_value(html, name) or "") == typed[name], name
    if typed["category"] == "repair":
        assert re.search(r'value="repair"\s+id="f-category[^"]*" checked', html)


def test_without_the_csrf_token_nothing_is_posted(kit, app):
    client = signed_in(app.test_client(), kit.resident)
    before = counts(app)
    body = {**wish_form(client, kit.board["token"]), **good_wish()}
    refused = post_form(client, f"/b/{kit.board['token']}/wish", body, with_csrf=False)
    page(refused, 403)
    assert "没有生效" in text_of(refused)
    wrong = post_form(client, f"/b/{kit.board['token']}/wish", {**body, "csrf_token": "forged"})
    page(wrong, 403)
    assert counts(app) == before


def test_a_double_submit_makes_one_wish_and_the_second_goes_to_it(kit, app):
    client = signed_in(app.test_client(), kit.resident)
    body = {**wish_form(client, kit.board["token"]), **good_wish()}
    first = post_form(client, f"/b/{kit.board['token']}/wish", body)
    second = post_form(client, f"/b/{kit.board['token']}/wish", body)
    assert first.status_code == second.status_code == 303
    [wish] = wishes_of(app)
    assert first.headers["Location"] == second.headers["Location"] == f"/wishes/{wish['id']}"
    # A fresh form is a fresh wish.
    third = post_form(client, f"/b/{kit.board['token']}/wish",
                      {**wish_form(client, kit.board["token"]), **good_wish(title="第二个心愿")})
    assert third.status_code == 303 and len(wishes_of(app)) == 2
    # A refused submit does not use up its token: corrected, the same form goes through.
    body = {**wish_form(client, kit.board["token"]), **good_wish(title="")}
    assert post_form(client, f"/b/{kit.board['token']}/wish", body).status_code == 422
    fixed = post_form(client, f"/b/{kit.board['token']}/wish", {**body, "title": "改好了"})
    assert fixed.status_code == 303 and len(wishes_of(app)) == 3


def test_a_closed_board_says_so_on_the_form_and_takes_nothing(kit, app):
    client = signed_in(app.test_client(), kit.resident)
    body = {**wish_form(client, kit.board["token"]), **good_wish()}
    kit.ok(kit.patch(f"/boards/{kit.board['id']}", kit.organiser, {"enabled": False}))
    shown = client.get(f"/b/{kit.board['token']}/wish")
    html = page(shown)
    assert "暂停接收心愿" in text_of(shown) and 'id="wish-form"' not in html
    before = counts(app)
    refused = post_form(client, f"/b/{kit.board['token']}/wish", body)
    page(refused, 409)
    assert "已关闭" in text_of(refused) and "联系社区工作人员" in text_of(refused)
    assert counts(app) == before


def test_posting_with_an_expired_access_cookie_refreshes_silently(kit, app):
    client = signed_in(app.test_client(), kit.resident)
    body = {**wish_form(client, kit.board["token"]), **good_wish(title="过了很久才提交")}
    client.delete_cookie("xy_access")  # the browser dropped the expired access cookie
    answer = post_form(client, f"/b/{kit.board['token']}/wish", body)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    [wish] = wishes_of(app)
    assert wish["title"] == "过了很久才提交" and wish["owner_id"] == kit.resident.id
    assert client.get_cookie("xy_access") is not None  # a new pair came back with the answer


def test_an_expired_access_token_keeps_what_was_typed(make_app, factory, world):
    app = make_app(JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=1))
    kit = Kit(app, app.test_client(), factory, world)
    client = signed_in(app.test_client(), kit.resident)
    body = {**wish_form(client, kit.board["token"]), **good_wish(title="", description="写了很久的说明")}
    time.sleep(1.5)  # the access cookie has expired; the refresh cookie has not
    answer = post_form(client, f"/b/{kit.board['token']}/wish", body)
    html = page(answer, 422)
    assert "写了很久的说明" in html
    assert 'id="wish-form"' in html  # the form again, not the login page
    time.sleep(1.5)
    fixed = post_form(client, f"/b/{kit.board['token']}/wish", {**body, "title": "终于提交"})
    assert fixed.status_code == 303
    assert [w["title"] for w in wishes_of(app)] == ["终于提交"]


def test_chinese_text_round_trips(kit, app):
    client = signed_in(app.test_client(), kit.resident)
    title = "请帮忙给 92 岁的张奶奶🍵读报纸"
    answer = post_form(client, f"/b/{kit.board['token']}/wish", {
        **wish_form(client, kit.board["token"]), **good_wish(title=title, category="companionship")})
    assert answer.status_code == 303
    assert title in page(client.get(answer.headers["Location"]))
    assert csrf(client)
