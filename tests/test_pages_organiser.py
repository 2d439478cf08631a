"""The organiser's pages through HTTP: review, dispatch, posting for a resident, boards,
pickup, the exchange-day counter, members and reset codes, the points passbook.

Data is made through the API (bearer tokens from the `factory` fixture); the pages are driven
as a browser would, signed in through /login with the CSRF cookie (tests/pages_helpers.py).
"""

from __future__ import annotations

import re
from html import unescape

import pytest
import requests
import sqlalchemy as sa

from app.db import utcnow
from tests.conftest import PASSWORD
from tests.helpers import API, fire, reading
from tests.pages_helpers import hidden, post_form, signed_in, text_of
from tests.wish_helpers import set_wish_columns

FORBIDDEN_WORDS = "这个页面只对本社区的社区工作人员开放"


class Org:
    """One community's organiser pages as the tests use them."""

    def __init__(self, app, factory, world):
        self.app, self.factory, self.w = app, factory, world
        self.cid = world.community.id
        self.api_client = app.test_client()
        self._headers: dict[int, dict] = {}
        self.board = self.api("POST", f"/communities/{self.cid}/boards", world.organiser,
                              {"name": "远创樾府 3 栋", "location": "东门公示栏"})

    # the API, for making data
    def api(self, method: str, path: str, user, body=None, status: int | None = None):
        if user.id not in self._headers:
            self._headers[user.id] = self.factory.headers(user)
        response = self.api_client.open(API + path, method=method, json=body,
                                        headers=self._headers[user.id])
        if status is not None:
            assert response.status_code == status, response.get_data(as_text=True)
        else:
            assert response.status_code < 300, response.get_data(as_text=True)
        return response.get_json() if response.data else None

    def wish(self, user=None, board=None, **body) -> dict:
        board = board or self.board
        return self.api("POST", f"/boards/{board['id']}/wishes", user or self.w.resident,
                        {"title": "厨房水龙头漏水", "category": "repair",
                         "description": "家里只有两位老人。", **body})

    def approve(self, wid: int, level: int = 2) -> dict:
        return self.api("POST", f"/wishes/{wid}/approve", self.w.organiser, {"level": level})

    def give(self, user, amount: int, reason: str = "参加防汛值守", cid: int | None = None,
             organiser=None):
        return self.api("POST", f"/communities/{cid or self.cid}/adjustments",
                        organiser or self.w.organiser,
                        {"user_id": user.id, "amount": amount, "reason": reason})

    def reward(self, name: str = "金龙鱼食用油 5L", cost: int = 30, stock: int | None = 10,
               cid: int | None = None, organiser=None, **body) -> dict:
        return self.api("POST", f"/communities/{cid or self.cid}/rewards",
                        organiser or self.w.organiser,
                        {"name": name, "kind": "goods", "cost": cost, "stock": stock, **body})

    def member_code(self, user) -> str:
        return self.api("GET", "/me/member-card", user)["code"]

    # the pages
    def browser(self, user=None):
        return signed_in(self.app.test_client(), user or self.w.organiser)

    # the database
    def wish_row(self, wid: int) -> dict:
        from app.wishes.models import Wish

        with reading(self.app) as session:
            return dict(session.execute(sa.select(Wish.__table__).where(Wish.id == wid))
                        .mappings().one())

    def count(self, model) -> int:
        with reading(self.app) as session:
            return session.scalar(sa.select(sa.func.count()).select_from(model))

    def redemptions(self) -> list[dict]:
        from app.store.models import Redemption

        with reading(self.app) as session:
            return [dict(r) for r in session.execute(
                sa.select(Redemption.__table__).order_by(Redemption.id)).mappings()]

    def balance(self, user) -> int:
        return self.api("GET", f"/communities/{self.cid}/accounts/{user.id}",
                        self.w.organiser)["balance"]


@pytest.fixture
def org(app, factory, world):
    return Org(app, factory, world)


def page_text(response) -> str:
    return text_of(response)


def field_value(html: str, name: str) -> str | None:
    found = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    if not found:
        return None
    value = re.search(r'value="([^"]*)"', found.group(0))
    return unescape(value.group(1)) if value else None


# --- who may look -----------------------------------------------------------------------------

def _pages(org) -> list[str]:
    return ["/organiser/review", "/organiser/dispatch", "/organiser/proxy", "/organiser/boards",
            "/organiser/pickup", "/organiser/counter", "/organiser/members",
            f"/organiser/passbook/{org.w.volunteer.id}",
            f"/organiser/boards/{org.board['id']}/qr.png"]


def test_every_organiser_page_opens_for_the_organiser(org):
    browser = org.browser()
    for url in _pages(org):
        response = browser.get(url)
        assert response.status_code == 200, (url, response.get_data(as_text=True)[:500])
        if not url.endswith(".png"):
            assert response.mimetype == "text/html"
            assert response.headers["Cache-Control"] == "private, no-store"
            assert len(response.data) < 60_000, url


@pytest.mark.parametrize("who", ["volunteer", "resident"])
def test_volunteers_and_residents_get_the_403_page(org, who):
    browser = org.browser(getattr(org.w, who))
    for url in _pages(org):
        response = browser.get(url)
        assert response.status_code == 403, url
        assert FORBIDDEN_WORDS in page_text(response), url
    wish = org.wish()
    before = org.wish_row(wish["id"])
    response = post_form(browser, f"/organiser/review/{wish['id']}", {"decision": "approve",
                                                                      "level": "3"})
    assert response.status_code == 403 and FORBIDDEN_WORDS in page_text(response)
    assert org.wish_row(wish["id"]) == before


def test_a_visitor_is_sent_to_login_and_back(org, client):
    response = client.get("/organiser/review?page=2")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/organiser/review%3Fpage%3D2"


def test_an_organiser_of_another_community_sees_404_pages_for_our_things(org, factory):
    wish = org.wish()
    org.approve(wish["id"])
    other = org.browser(org.w.other_organiser)
    for url in [f"/organiser/dispatch/{wish['id']}", f"/organiser/passbook/{org.w.volunteer.id}",
                f"/organiser/boards/{org.board['id']}/qr.png"]:
        response = other.get(url)
        assert response.status_code == 404, url
        assert "找不到这个页面" in page_text(response)
    pending = org.wish()
    before = org.wish_row(pending["id"])
    for url, body in [(f"/organiser/review/{pending['id']}", {"decision": "approve", "level": "2"}),
                      (f"/organiser/dispatch/{wish['id']}", {"volunteer_id": str(org.w.volunteer.id)}),
                      (f"/organiser/members/{org.w.volunteer.id}/reset-code", {})]:
        response = post_form(other, url, body)
        assert response.status_code == 404, url
    assert org.wish_row(pending["id"]) == before
    from app.auth.models import PasswordReset

    assert org.count(PasswordReset) == 0


# --- 1. the review queue ------------------------------------------------------------------------

def test_the_review_queue_shows_pending_wishes_oldest_first_with_points_per_level(org):
    first = org.wish(title="换水龙头", address="3 栋 502", contact_phone="13912345678")
    second = org.wish(title="陪老人去医院")
    org.approve(org.wish(title="已审核的")["id"])
    response = org.browser().get("/organiser/review")
    assert response.status_code == 200
    text = page_text(response)
    assert text.index("换水龙头") < text.index("陪老人去医院")
    assert "已审核的" not in text
    assert "2 个心愿等待审核" in text
    for words in ["维修", "远创樾府 3 栋", "王女士", "13912345678", "3 栋 502", "家里只有两位老人。",
                  "1 级（10 分）", "2 级（20 分）", "3 级（30 分）", "4 级（50 分）", "5 级（80 分）"]:
        assert words in text, words
    html = response.get_data(as_text=True)
    assert f'id="f-{first["id"]}-level"' in html and f'id="f-{second["id"]}-level"' in html


def test_a_full_review_page_stays_under_60_kb_and_pages_on(org):
    for n in range(12):
        org.wish(title=f"心愿{n:02d}" + "长" * 50, description="很长的说明，" * 333,
                 address="远创樾府 3 栋 502 室" * 5, contact_phone="13912345678")
    browser = org.browser()
    first = browser.get("/organiser/review")
    assert len(first.data) < 60_000, len(first.data)
    text = page_text(first)
    assert "第 1 / 2 页" in text and "心愿09" in text and "心愿10" not in text
    assert "查看全文" in text
    second = page_text(browser.get("/organiser/review?page=2"))
    assert "心愿10" in second and "心愿11" in second and "心愿09" not in second


def test_approving_with_a_level_opens_the_wish(org):
    wish = org.wish()
    browser = org.browser()
    response = post_form(browser, f"/organiser/review/{wish['id']}",
                         {"decision": "approve", "level": "4"})
    assert response.status_code == 303 and response.headers["Location"] == "/organiser/review"
    row = org.wish_row(wish["id"])
    assert (row["status"], row["level"]) == ("open", 4)
    text = page_text(browser.get("/organiser/review"))
    assert "已通过“厨房水龙头漏水”：4 级，完成后可得 50 分" in text
    assert "没有等待审核的心愿" in text


def test_rejecting_with_a_reason(org):
    wish = org.wish()
    response = post_form(org.browser(), f"/organiser/review/{wish['id']}",
                         {"decision": "reject", "reason": "请直接联系物业报修"})
    assert response.status_code == 303
    row = org.wish_row(wish["id"])
    assert (row["status"], row["reason"]) == ("rejected", "请直接联系物业报修")


@pytest.mark.parametrize("body, field, words", [
    ({"decision": "approve"}, "level", "请先选一个等级"),
    ({"decision": "approve", "level": "6"}, "level", None),
    ({"decision": "approve", "level": "三"}, "level", None),
    ({"decision": "reject", "reason": ""}, "reason", "请写明不通过的原因"),
    ({"decision": "reject", "reason": "太" * 201}, "reason", None),
])
def test_bad_review_input_is_422_beside_the_field_and_changes_nothing(org, body, field, words):
    wish = org.wish()
    before = org.wish_row(wish["id"])
    response = post_form(org.browser(), f"/organiser/review/{wish['id']}", body)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'id="f-{wish["id"]}-{field}-error">(.*?)</p>', html, re.S)
    assert error, html[:3000]
    if words:
        assert words in error.group(1)
    assert f'href="#f-{wish["id"]}-{field}"' in html  # the summary links to the field
    if field == "reason" and body["reason"]:
        assert body["reason"] in html  # what was typed is kept
    assert org.wish_row(wish["id"]) == before


def test_a_wish_handled_by_another_organiser_meanwhile_says_so(org):
    wish = org.wish()
    browser = org.browser()
    org.approve(wish["id"], 1)  # someone else, a moment earlier
    response = post_form(browser, f"/organiser/review/{wish['id']}",
                         {"decision": "reject", "reason": "不属于微心愿"})
    assert response.status_code == 409
    assert "已经由其他工作人员处理过了（现在是“待认领”）" in page_text(response)
    row = org.wish_row(wish["id"])
    assert (row["status"], row["level"]) == ("open", 1)


def test_review_without_the_csrf_token_is_refused(org):
    wish = org.wish()
    before = org.wish_row(wish["id"])
    response = post_form(org.browser(), f"/organiser/review/{wish['id']}",
                         {"decision": "approve", "level": "3"}, with_csrf=False)
    assert response.status_code == 403
    assert "这次提交没有生效" in page_text(response)
    assert org.wish_row(wish["id"]) == before


# --- 2. the dispatch queue ----------------------------------------------------------------------

def _escalated(org, **body) -> dict:
    wish = org.wish(**body)
    org.approve(wish["id"])
    set_wish_columns(org.app, wish["id"], escalated_at=utcnow())
    return wish


def test_the_dispatch_queue_lists_escalated_wishes_and_assigns_them(org, factory):
    waiting = _escalated(org, title="帮忙修门锁")
    org.approve(org.wish(title="刚开放的")["id"])
    org.api("PATCH", "/me/volunteer-profile", org.w.volunteer, {"skills": ["repair", "driving"]})
    other = factory.member(org.w.community, factory.user("张志愿"), "volunteer")
    browser = org.browser()
    text = page_text(browser.get("/organiser/dispatch"))
    assert "帮忙修门锁" in text and "刚开放的" not in text
    page = browser.get(f"/organiser/dispatch/{waiting['id']}")
    text = page_text(page)
    assert "王建国 · 水电维修、驾驶接送 · 手上 0 件（技能对口）" in text
    assert "张志愿 · 未填技能 · 手上 0 件" in text
    assert text.index("王建国") < text.index("张志愿")  # skills that fit first
    response = post_form(browser, f"/organiser/dispatch/{waiting['id']}",
                         {"volunteer_id": str(other.id)})
    assert response.status_code == 303 and response.headers["Location"] == "/organiser/dispatch"
    row = org.wish_row(waiting["id"])
    assert (row["status"], row["claimer_id"]) == ("claimed", other.id)
    text = page_text(browser.get("/organiser/dispatch"))
    assert "已把“帮忙修门锁”派给 张志愿" in text and "派单队列是空的" in text


@pytest.mark.parametrize("choice, words", [
    (None, "请先选择一位志愿者"),
    ("resident", "必须是本社区的志愿者"),
    ("other_volunteer", "必须是本社区的志愿者"),
])
def test_assigning_to_no_one_or_a_non_volunteer_is_refused(org, choice, words):
    wish = _escalated(org)
    before = org.wish_row(wish["id"])
    body = {"volunteer_id": str(getattr(org.w, choice).id)} if choice else {}
    response = post_form(org.browser(), f"/organiser/dispatch/{wish['id']}", body)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(rf'id="f-volunteer_id-error">.*{words}', html), html[:3000]
    assert org.wish_row(wish["id"]) == before


def test_assigning_a_wish_someone_claimed_meanwhile_says_it_left_the_queue(org):
    wish = _escalated(org)
    org.api("POST", f"/wishes/{wish['id']}/claim", org.w.volunteer, {})
    response = post_form(org.browser(), f"/organiser/dispatch/{wish['id']}",
                         {"volunteer_id": str(org.w.volunteer.id)})
    assert response.status_code == 409
    assert "已不在派单队列" in page_text(response)


# --- 3. posting for a resident ------------------------------------------------------------------

PROXY_BODY = {"proxy_name": "周大爷", "proxy_phone": "13912345678", "title": "换灯泡",
              "category": "repair", "description": "客厅灯不亮", "address": "3 栋 101"}


def _proxy_form(browser) -> tuple[str, str]:
    page = browser.get("/organiser/proxy")
    assert page.status_code == 200
    return hidden(page.get_data(as_text=True), "form_token"), page.get_data(as_text=True)


def test_posting_for_a_resident_is_recorded_as_proxy(org):
    from app.wishes.models import WishEvent

    browser = org.browser()
    token, html = _proxy_form(browser)
    assert "远创樾府 3 栋" in html
    response = post_form(browser, "/organiser/proxy",
                         {**PROXY_BODY, "board_id": str(org.board["id"]), "form_token": token})
    assert response.status_code == 303
    wid = int(re.fullmatch(r"/wishes/(\d+)", response.headers["Location"]).group(1))
    row = org.wish_row(wid)
    assert row["owner_id"] is None and row["posted_by_id"] == org.w.organiser.id
    assert (row["proxy_name"], row["proxy_phone"], row["contact_phone"]) == (
        "周大爷", "13912345678", "13912345678")
    assert (row["title"], row["address"], row["status"]) == ("换灯泡", "3 栋 101", "pending")
    with reading(org.app) as session:
        event = session.scalars(sa.select(WishEvent).where(WishEvent.wish_id == wid)).one()
        assert (event.action, event.by_proxy) == ("post", True)


def test_a_double_submit_of_the_proxy_form_makes_one_wish(org):
    from app.wishes.models import Wish

    browser = org.browser()
    token, _html = _proxy_form(browser)
    body = {**PROXY_BODY, "board_id": str(org.board["id"]), "form_token": token}
    first = post_form(browser, "/organiser/proxy", body)
    second = post_form(browser, "/organiser/proxy", body)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert org.count(Wish) == 1


@pytest.mark.parametrize("changes, field, words", [
    ({"proxy_name": ""}, "proxy_name", "请填写居民的称呼"),
    ({"proxy_phone": "12345"}, "proxy_phone", None),
    ({"proxy_phone": ""}, "proxy_phone", "请填写居民或其家人的手机号"),
    ({"title": ""}, "title", "请用一句话写下心愿"),
    ({"category": "nonsense"}, "category", None),
    ({"board_id": "999"}, "board_id", "请选择要发布到哪个心愿墙"),
])
def test_bad_proxy_input_is_422_with_what_was_typed_kept(org, changes, field, words):
    from app.wishes.models import Wish

    browser = org.browser()
    token, _html = _proxy_form(browser)
    body = {**PROXY_BODY, "board_id": str(org.board["id"]), "form_token": token, **changes}
    response = post_form(browser, "/organiser/proxy", body)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'id="f-{field}-error">(.*?)</p>', html, re.S)
    assert error, html[:3000]
    if words:
        assert words in error.group(1)
    assert field_value(html, "title") == body["title"]
    assert "客厅灯不亮" in html
    assert hidden(html, "form_token") == token  # the same form can still be sent once
    assert org.count(Wish) == 0
    fixed = post_form(browser, "/organiser/proxy",
                      {**PROXY_BODY, "board_id": str(org.board["id"]), "form_token": token})
    assert fixed.status_code == 303 and org.count(Wish) == 1


def test_posting_on_a_closed_board_says_so(org):
    from app.wishes.models import Wish

    org.api("PATCH", f"/boards/{org.board['id']}", org.w.organiser, {"enabled": False})
    browser = org.browser()
    token, _html = _proxy_form(browser)
    response = post_form(browser, "/organiser/proxy",
                         {**PROXY_BODY, "board_id": str(org.board["id"]), "form_token": token})
    assert response.status_code == 409
    assert "该心愿墙已关闭" in page_text(response)
    assert org.count(Wish) == 0


def test_proxy_wishes_waiting_for_confirmation_are_listed(org):
    browser = org.browser()
    token, _html = _proxy_form(browser)
    response = post_form(browser, "/organiser/proxy",
                         {**PROXY_BODY, "board_id": str(org.board["id"]), "form_token": token})
    wid = int(response.headers["Location"].rsplit("/", 1)[1])
    own = org.wish(title="自己发的")
    for w in (wid, own["id"]):
        org.approve(w)
        org.api("POST", f"/wishes/{w}/claim", org.w.volunteer, {})
        org.api("POST", f"/wishes/{w}/fulfil", org.w.volunteer, {"note": "已换好"})
    html = browser.get("/organiser/proxy").get_data(as_text=True)
    assert f'href="/wishes/{wid}"' in html and "换灯泡" in html
    assert "自己发的" not in html
    assert "王建国 办好于" in text_of(browser.get("/organiser/proxy"))


def test_proxy_without_the_csrf_token_is_refused(org):
    from app.wishes.models import Wish

    browser = org.browser()
    token, _html = _proxy_form(browser)
    response = post_form(browser, "/organiser/proxy",
                         {**PROXY_BODY, "board_id": str(org.board["id"]), "form_token": token},
                         with_csrf=False)
    assert response.status_code == 403 and org.count(Wish) == 0


# --- 4. boards ----------------------------------------------------------------------------------

def test_the_boards_page_links_each_board_and_its_poster(org):
    second = org.api("POST", f"/communities/{org.cid}/boards", org.w.organiser,
                     {"name": "南门", "auto_approve": True, "enabled": False})
    browser = org.browser()
    html = browser.get("/organiser/boards").get_data(as_text=True)
    for board in (org.board, second):
        assert f'href="/b/{board["token"]}"' in html
        assert f'href="/b/{board["token"]}/poster"' in html
        assert f'src="/organiser/boards/{board["id"]}/qr.png"' in html
    text = page_text(browser.get("/organiser/boards"))
    assert "东门公示栏" in text and "自动通过" in text and "已停用" in text
    image = browser.get(f"/organiser/boards/{org.board['id']}/qr.png")
    assert image.mimetype == "image/png" and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.headers["Cache-Control"] == "private, no-store"
    import io

    import zxingcpp
    from PIL import Image

    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.data)))
    assert decoded[0].text.endswith(f"/b/{org.board['token']}")
    poster = browser.get(f"/b/{org.board['token']}/poster")
    assert poster.status_code == 200


# --- 5. pickup ----------------------------------------------------------------------------------

def _redeemed(org, quantity: int = 1, **reward) -> dict:
    org.give(org.w.volunteer, 200)
    found = org.reward(**reward)
    return org.api("POST", f"/rewards/{found['id']}/redeem", org.w.volunteer,
                   {"quantity": quantity})


def test_pickup_prefills_from_the_qr_url_and_hands_over(org):
    redemption = _redeemed(org, 2)
    code = redemption["pickup_code"]
    browser = org.browser()
    page = browser.get(f"/organiser/pickup?code={code}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert field_value(html, "code") == code and "data-autosubmit" in html
    text = page_text(page)
    assert "金龙鱼食用油 5L" in text and "2 件" in text and "王建国" in text and "60 分" in text
    response = post_form(browser, "/organiser/pickup", {"pickup_code": hidden_code(html)})
    assert response.status_code == 303 and response.headers["Location"] == "/organiser/pickup"
    assert "已核销：金龙鱼食用油 5L × 2，请交给 王建国" in page_text(browser.get("/organiser/pickup"))
    row = org.redemptions()[0]
    assert (row["status"], row["fulfilled_by_id"]) == ("fulfilled", org.w.organiser.id)
    again = post_form(browser, "/organiser/pickup", {"pickup_code": code})
    assert again.status_code == 409
    assert "这份兑换已经领取过了" in page_text(again)
    assert "已经领取过了" in page_text(browser.get(f"/organiser/pickup?code={code}"))


def hidden_code(html: str) -> str:
    return re.search(r'name="pickup_code" value="([^"]+)"', html).group(1)


def test_a_code_typed_in_lower_case_with_spaces_is_found(org):
    code = _redeemed(org)["pickup_code"]
    typed = " ".join(code[i:i + 5] for i in (0, 5)).lower()
    response = post_form(org.browser(), "/organiser/pickup", {"pickup_code": typed})
    assert response.status_code == 303
    assert org.redemptions()[0]["status"] == "fulfilled"


@pytest.mark.parametrize("code", ["WRONGCODE2", "X" * 40])
def test_a_wrong_pickup_code_says_what_to_do(org, code):
    _redeemed(org)
    before = org.redemptions()
    browser = org.browser()
    for status, response in ((200, browser.get(f"/organiser/pickup?code={code}")),
                             (409, post_form(browser, "/organiser/pickup", {"pickup_code": code}))):
        assert response.status_code == status
        assert "没有找到这个取货码。请核对志愿者手机上“我的兑换”里的取货码" in page_text(response)
        assert field_value(response.get_data(as_text=True), "code") == code
    assert org.redemptions() == before


def test_an_empty_pickup_code_is_422(org):
    response = post_form(org.browser(), "/organiser/pickup", {"pickup_code": ""})
    assert response.status_code == 422
    assert "请输入或扫描志愿者的取货码" in page_text(response)


def test_a_cancelled_redemption_cannot_be_handed_over(org):
    redemption = _redeemed(org)
    org.api("POST", f"/redemptions/{redemption['id']}/cancel", org.w.volunteer, {})
    response = post_form(org.browser(), "/organiser/pickup",
                         {"pickup_code": redemption["pickup_code"]})
    assert response.status_code == 409
    assert "这份兑换的状态是“已取消”，积分已退还给志愿者" in page_text(response)


def test_a_pickup_code_of_another_community_is_not_found(org):
    org.give(org.w.other_volunteer, 100, cid=org.w.other.id, organiser=org.w.other_organiser)
    reward = org.reward(cid=org.w.other.id, organiser=org.w.other_organiser)
    theirs = org.api("POST", f"/rewards/{reward['id']}/redeem", org.w.other_volunteer, {})
    response = post_form(org.browser(), "/organiser/pickup", {"pickup_code": theirs["pickup_code"]})
    assert response.status_code == 409 and "没有找到这个取货码" in page_text(response)
    assert org.redemptions()[0]["status"] == "awaiting_pickup"


def test_pickup_without_the_csrf_token_is_refused(org):
    code = _redeemed(org)["pickup_code"]
    response = post_form(org.browser(), "/organiser/pickup", {"pickup_code": code}, with_csrf=False)
    assert response.status_code == 403
    assert org.redemptions()[0]["status"] == "awaiting_pickup"


# --- 6. the counter -----------------------------------------------------------------------------

def _counter(org, browser, code: str):
    page = browser.get(f"/organiser/counter?member_code={code}")
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    return page, hidden(page.get_data(as_text=True), "form_token")


def test_counter_member_code_then_redeem_then_receipt(org):
    org.give(org.w.volunteer, 100)
    oil = org.reward("食用油", cost=30, stock=5)
    rice = org.reward("大米 10 斤", cost=25, stock=5)
    code = org.member_code(org.w.volunteer)
    browser = org.browser()
    page, token = _counter(org, browser, code)
    html = page.get_data(as_text=True)
    assert field_value(html, "member_code") == code
    text = page_text(page)
    assert "王建国" in text and "100 可用积分" in text and "食用油" in text and "30 分/件" in text
    response = post_form(browser, "/organiser/counter", {
        "member_code": code, "form_token": token, f"qty-{oil['id']}": "2", f"qty-{rice['id']}": "1"})
    assert response.status_code == 303, page_text(response)[:1500]
    receipt_url = response.headers["Location"]
    assert receipt_url.startswith("/organiser/counter/receipts/")
    rows = org.redemptions()
    assert [(r["reward_name"], r["quantity"], r["status"], r["at_counter"], r["created_by_id"],
             r["fulfilled_by_id"]) for r in rows] == [
        ("食用油", 2, "fulfilled", True, org.w.organiser.id, org.w.organiser.id),
        ("大米 10 斤", 1, "fulfilled", True, org.w.organiser.id, org.w.organiser.id)]
    assert org.balance(org.w.volunteer) == 15
    receipt = browser.get(receipt_url)
    assert receipt.status_code == 200
    text = page_text(receipt)
    for words in ["兑换小票", "管园村 · 爱心超市", "王建国", "李书记（兑换日柜台）", "食用油 2 30 60",
                  "大米 10 斤 1 25 25", "共用积分 85", "兑换后余额 15", "打印小票"]:
        assert words in text, words
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", text)
    assert "js/organiser.js" in receipt.get_data(as_text=True)
    # the same form sent again: one redemption each, the second answer goes to the receipt
    again = post_form(browser, "/organiser/counter", {
        "member_code": code, "form_token": token, f"qty-{oil['id']}": "2", f"qty-{rice['id']}": "1"})
    assert again.status_code == 303 and again.headers["Location"] == receipt_url
    assert len(org.redemptions()) == 2 and org.balance(org.w.volunteer) == 15


def test_a_wrong_member_code_says_what_to_do(org):
    org.give(org.w.volunteer, 100)
    oil = org.reward("食用油", cost=30)
    mine = org.member_code(org.w.volunteer)
    theirs = org.member_code(org.w.other_volunteer)
    browser = org.browser()
    _page, token = _counter(org, browser, mine)
    words = "没有找到这张会员卡，或持卡人不是本社区成员。请志愿者在手机上打开“会员卡”重新出示"
    for code in ["not-a-card", theirs]:
        response = browser.get(f"/organiser/counter?member_code={code}")
        assert response.status_code == 200  # a search that found no one
        assert words in page_text(response)
        assert field_value(response.get_data(as_text=True), "member_code") == code
        # a card rotated (or a code changed) between looking and redeeming: refused
        response = post_form(browser, "/organiser/counter", {
            "member_code": code, "form_token": token, f"qty-{oil['id']}": "1"})
        assert response.status_code == 409 and words in page_text(response)
    assert org.redemptions() == [] and org.balance(org.w.volunteer) == 100


def test_the_counter_refuses_more_than_the_balance_and_keeps_nothing(org):
    org.give(org.w.volunteer, 40)
    oil = org.reward("食用油", cost=30, stock=5)
    rice = org.reward("大米", cost=25, stock=5)
    code = org.member_code(org.w.volunteer)
    browser = org.browser()
    _page, token = _counter(org, browser, code)
    body = {"member_code": code, "form_token": token, f"qty-{oil['id']}": "1",
            f"qty-{rice['id']}": "1"}
    response = post_form(browser, "/organiser/counter", body)
    assert response.status_code == 409
    text = page_text(response)
    assert "“大米”：积分不够。请减少数量或换一件便宜些的奖品" in text
    assert "40 可用积分" in text  # the balance as it is: nothing of that submit was kept
    html = response.get_data(as_text=True)
    assert field_value(html, f"qty-{oil['id']}") == "1"
    assert org.redemptions() == [] and org.balance(org.w.volunteer) == 40
    # fixed, the same form goes through once
    fixed = post_form(browser, "/organiser/counter", {**body, f"qty-{rice['id']}": "0"})
    assert fixed.status_code == 303 and len(org.redemptions()) == 1


@pytest.mark.parametrize("quantity, status, words", [
    ("0", 422, "请至少给一件奖品填上数量"),
    ("", 422, "请至少给一件奖品填上数量"),
    ("11", 422, "数量请填 0 到 10 之间的整数"),
    ("两", 422, "数量请填 0 到 10 之间的整数"),
])
def test_bad_counter_quantities_are_422(org, quantity, status, words):
    org.give(org.w.volunteer, 100)
    oil = org.reward("食用油", cost=30)
    code = org.member_code(org.w.volunteer)
    browser = org.browser()
    _page, token = _counter(org, browser, code)
    response = post_form(browser, "/organiser/counter",
                         {"member_code": code, "form_token": token, f"qty-{oil['id']}": quantity})
    assert response.status_code == status
    assert words in page_text(response)
    assert org.redemptions() == [] and org.balance(org.w.volunteer) == 100


def test_counter_without_the_csrf_token_is_refused(org):
    org.give(org.w.volunteer, 100)
    oil = org.reward("食用油", cost=30)
    code = org.member_code(org.w.volunteer)
    browser = org.browser()
    _page, token = _counter(org, browser, code)
    response = post_form(browser, "/organiser/counter",
                         {"member_code": code, "form_token": token, f"qty-{oil['id']}": "1"},
                         with_csrf=False)
    assert response.status_code == 403 and org.redemptions() == []


def test_receipts_are_only_of_our_counter(org):
    org.give(org.w.volunteer, 100)
    redemption = _redeemed(org)  # redeemed by the volunteer, not at the counter
    browser = org.browser()
    assert browser.get(f"/organiser/counter/receipts/{redemption['id']}").status_code == 404
    other_code = org.member_code(org.w.other_volunteer)
    org.give(org.w.other_volunteer, 100, cid=org.w.other.id, organiser=org.w.other_organiser)
    reward = org.reward(cid=org.w.other.id, organiser=org.w.other_organiser)
    theirs = org.api("POST", f"/rewards/{reward['id']}/redeem", org.w.other_organiser,
                     {"for_user_id": org.w.other_volunteer.id, "member_code": other_code})
    assert browser.get(f"/organiser/counter/receipts/{theirs['id']}").status_code == 404
    assert browser.get("/organiser/counter/receipts/1,x").status_code == 404


# --- 7. members and reset codes -----------------------------------------------------------------

def test_members_list_filters_by_role_and_links_passbooks(org):
    browser = org.browser()
    text = page_text(browser.get("/organiser/members"))
    assert "王建国" in text and "王女士" in text and "李书记" in text
    html = browser.get("/organiser/members?role=volunteer").get_data(as_text=True)
    assert "王建国" in html and "王女士" not in html
    assert f'href="/organiser/passbook/{org.w.volunteer.id}"' in html
    assert f'action="/organiser/members/{org.w.volunteer.id}/reset-code"' in html
    organisers = browser.get("/organiser/members?role=organiser").get_data(as_text=True)
    assert "reset-code" not in organisers and "由平台管理员重置" in organisers


def test_a_reset_code_is_shown_once_in_large_type(org):
    from app.audit import AuditEvent

    response = post_form(org.browser(), f"/organiser/members/{org.w.volunteer.id}/reset-code", {})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    html = response.get_data(as_text=True)
    code = re.search(r'class="code code--big">(\d{4}) (\d{4})<', html)
    assert code, html[:3000]
    text = page_text(response)
    assert "请在 /reset 输入这个重置码并设置新密码" in text and "30 分钟内有效" in text
    assert org.w.volunteer.phone in text
    with reading(org.app) as session:
        assert session.scalar(sa.select(AuditEvent.action).where(
            AuditEvent.subject_user_id == org.w.volunteer.id)) == "account.reset_code_issued"


def test_an_organiser_cannot_issue_a_reset_code_for_staff(org):
    from app.auth.models import PasswordReset

    colleague = org.factory.member(org.w.community, org.factory.user("赵主任"), "organiser")
    response = post_form(org.browser(), f"/organiser/members/{colleague.id}/reset-code", {})
    assert response.status_code == 403
    assert "密码只能由平台管理员重置" in page_text(response)
    assert org.count(PasswordReset) == 0


def test_reset_code_without_the_csrf_token_is_refused(org):
    from app.auth.models import PasswordReset

    response = post_form(org.browser(), f"/organiser/members/{org.w.volunteer.id}/reset-code", {},
                         with_csrf=False)
    assert response.status_code == 403 and org.count(PasswordReset) == 0


# --- 8. the passbook ----------------------------------------------------------------------------

def test_the_passbook_lists_every_entry_oldest_first_with_causes_and_totals(org):
    org.give(org.w.volunteer, 50, "参加防汛值守")
    org.give(org.w.volunteer, 20, "社区运动会服务")
    redemption = _redeemed(org, 1, name="食用油", cost=30)  # +200, then −30
    org.api("POST", f"/redemptions/{redemption['id']}/cancel", org.w.volunteer, {})
    response = org.browser().get(f"/organiser/passbook/{org.w.volunteer.id}")
    assert response.status_code == 200
    text = page_text(response)
    for words in ["积分存折", "管园村 · 王建国", "志愿者", "当前余额 270 分", "共几笔 5 笔",
                  "社区工作人员李书记调整积分：参加防汛值守 +50 50",
                  "社区工作人员李书记调整积分：社区运动会服务 +20 70",
                  "兑换「食用油」× 1 −30 240", "已取消，积分退还 +30 270",
                  "本页收入 +300", "本页支出 −30", "本页结余 270", "打印存折"]:
        assert words in text, words
    assert text.index("参加防汛值守") < text.index("社区运动会服务")
    assert re.search(r"\d{4}-\d{2}-\d{2} 社区工作人员李书记", text)
    assert "js/organiser.js" in response.get_data(as_text=True)


def test_a_long_passbook_pages_with_the_balance_carried_over(org):
    for n in range(103):
        org.give(org.w.volunteer, 1, f"第 {n} 次")
    browser = org.browser()
    first = page_text(browser.get(f"/organiser/passbook/{org.w.volunteer.id}"))
    assert "这是第 1 / 2 页" in first and "第 99 次" in first and "第 100 次" not in first
    second = page_text(browser.get(f"/organiser/passbook/{org.w.volunteer.id}?page=2"))
    assert "承上页 100" in second and "第 102 次 +1 103" in second and "本页结余 103" in second


def test_the_passbook_of_another_communitys_member_is_404(org):
    response = org.browser().get(f"/organiser/passbook/{org.w.other_volunteer.id}")
    assert response.status_code == 404
    assert org.browser().get(f"/organiser/passbook/{org.w.outsider.id}").status_code == 404


# --- concurrency over real workers --------------------------------------------------------------

@pytest.mark.live
def test_two_organisers_handing_over_one_pickup_at_once_exactly_one_succeeds(org, factory,
                                                                               live_server):
    from app.ledger.verify import verify

    colleague = factory.member(org.w.community, factory.user("赵主任"), "organiser")
    org.give(org.w.volunteer, 300)
    reward = org.reward(cost=10, stock=10)
    codes = [org.api("POST", f"/rewards/{reward['id']}/redeem", org.w.volunteer, {})["pickup_code"]
             for _ in range(3)]
    server = live_server(workers=4)

    def session_of(user) -> tuple[requests.Session, str]:
        browser = requests.Session()
        page = browser.get(f"{server.url}/login", timeout=60)
        token = browser.cookies["xy_csrf"]
        assert page.status_code == 200
        response = browser.post(f"{server.url}/login", timeout=60, allow_redirects=False,
                                data={"phone": user.phone, "password": PASSWORD, "next": "/",
                                      "csrf_token": token})
        assert response.status_code == 303, response.text[:2000]
        return browser, token

    sessions = [session_of(org.w.organiser), session_of(colleague)]
    for code in codes:  # three rounds: each code handed over by both at the same moment
        answers = fire(2, lambda i, code=code: sessions[i][0].post(
            f"{server.url}/organiser/pickup", timeout=60, allow_redirects=False,
            data={"pickup_code": code, "csrf_token": sessions[i][1]}))
        assert sorted(r.status_code for r in answers) == [303, 409], [r.text[:500] for r in answers]
        loser = next(r for r in answers if r.status_code == 409)
        assert "这份兑换已经领取过了" in loser.text
    rows = org.redemptions()
    assert len(rows) == 3 and all(r["status"] == "fulfilled" for r in rows)
    assert {r["fulfilled_by_id"] for r in rows} <= {org.w.organiser.id, colleague.id}
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log and "database is locked" not in log
    with reading(org.app):
        reports = verify()
    assert reports and all(not r.violations for r in reports)
