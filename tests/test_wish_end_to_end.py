"""Issue 4's "Done when", entirely over HTTP against real gunicorn workers: a resident posts on
a board, an organiser approves it at level 3, a volunteer claims and fulfils it, the resident
confirms with 4★, and the volunteer's balance shows 80 % of the level's points. Then the same
start by hand in a browser: the board's public page, its login form, a wish in Chinese."""

from __future__ import annotations

import pytest
import requests

from tests.helpers import bearer
from tests.wish_helpers import API, LIVE_TIMEOUT, PASSWORD, assert_server_healthy

pytestmark = pytest.mark.live
CHROMIUM = "/usr/bin/chromium"


class Http:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, token: str | None = None, expect: int = 200,
             **kw) -> dict:
        headers = bearer(token) if token else {}
        response = requests.request(method, f"{self.base}{API}{path}", headers=headers,
                                    timeout=LIVE_TIMEOUT, **kw)
        assert response.status_code == expect, (method, path, response.status_code,
                                                response.text)
        return response.json() if response.content else {}

    def login(self, phone: str, password: str) -> str:
        return self.call("POST", "/auth/login", json={"phone": phone,
                                                      "password": password})["access_token"]

    def register(self, phone: str, name: str, password: str = "邻里互助 2026") -> str:
        self.call("POST", "/auth/register", expect=201, json={
            "phone": phone, "password": password, "display_name": name})
        return self.login(phone, password)


def test_a_wish_from_start_to_finish_over_http(live_server, factory):
    admin = factory.user("平台管理员", admin=True)
    server = live_server(workers=4)
    http = Http(server.url)
    admin_token = http.login(admin.phone, PASSWORD)

    # The platform admin opens a community with its first organiser.
    organiser = http.register("13900000001", "李书记")
    community = http.call("POST", "/communities", admin_token, expect=201, json={
        "name": "管园村", "code": "guanyuan", "street": "幸福街道", "district": "镜湖区"})
    cid = community["id"]
    http.call("POST", f"/communities/{cid}/members", admin_token, expect=201,
              json={"phone": "13900000001", "role": "organiser"})

    # The organiser puts up a board and enrols a volunteer.
    board = http.call("POST", f"/communities/{cid}/boards", organiser, expect=201,
                      json={"name": "管园新村 3 栋", "location": "3 栋公示栏"})
    volunteer = http.register("13900000002", "王建国")
    http.call("POST", f"/communities/{cid}/members", organiser, expect=201,
              json={"phone": "13900000002", "role": "volunteer"})
    page = requests.get(f"{server.url}/b/{board['token']}", timeout=LIVE_TIMEOUT)
    assert page.status_code == 200 and "管园新村 3 栋" in page.text

    # A resident (a new account) posts on the board.
    resident = http.register("13900000003", "王女士")
    wish = http.call("POST", f"/boards/{board['id']}/wishes", resident, expect=201, json={
        "title": "厨房水龙头漏水", "description": "家里只有两位老人，想请人帮忙换个水龙头。",
        "category": "repair", "contact_phone": "13900000003", "address": "3 栋 502"})
    wid = wish["id"]
    assert wish["status"] == "pending"

    # The organiser approves at level 3; the volunteer claims and fulfils.
    assert http.call("POST", f"/wishes/{wid}/approve", organiser,
                     json={"level": 3})["status"] == "open"
    open_ones = http.call("GET", f"/wishes?community_id={cid}&status=open", volunteer)
    assert [w["id"] for w in open_ones["items"]] == [wid]
    assert http.call("POST", f"/wishes/{wid}/claim", volunteer, json={})["status"] == "claimed"
    seen = http.call("GET", f"/wishes/{wid}", volunteer)
    assert seen["contact_phone"] == "13900000003" and seen["address"] == "3 栋 502"
    assert http.call("POST", f"/wishes/{wid}/fulfil", volunteer,
                     json={"note": "已更换水龙头，试水正常"})["status"] == "fulfilled"
    rules = http.call("GET", f"/communities/{cid}/points-rules", volunteer)
    level3 = next(r["points"] for r in rules["rules"]
                  if r["category"] == "wish" and r["level"] == 3)
    assert rules["satisfaction_factors"]["4"] == 80
    waiting = http.call("GET", f"/me/points?community_id={cid}", volunteer)
    assert waiting["balance"] == 0 and waiting["pending"] > 0

    # The resident confirms with 4★: the volunteer earns 80 % of the level-3 points.
    closed = http.call("POST", f"/wishes/{wid}/confirm", resident,
                       json={"rating": 4, "comment": "小王修得很好，谢谢！"})
    assert closed["status"] == "closed" and closed["points_awarded"] == level3 * 80 // 100
    points = http.call("GET", f"/me/points?community_id={cid}", volunteer)
    assert points["balance"] == level3 * 80 // 100 == points["earned_total"]
    assert points["balance"] * 100 == level3 * 80  # exactly 80 %, nothing rounded away
    assert points["pending"] == 0
    ledger = http.call("GET", f"/me/ledger?community_id={cid}", volunteer)
    assert [(e["amount"], e["reference"]) for e in ledger["items"]] == [
        (level3 * 80 // 100, f"wish:{wid}:award")]
    timeline = http.call("GET", f"/wishes/{wid}", resident)["timeline"]
    assert [e["action"] for e in timeline] == ["post", "approve", "claim", "fulfil", "confirm"]
    # Confirming again changes nothing.
    http.call("POST", f"/wishes/{wid}/confirm", resident, expect=409, json={"rating": 5})
    assert http.call("GET", f"/me/points?community_id={cid}", volunteer)["balance"] == (
        level3 * 80 // 100)
    assert_server_healthy(server)


@pytest.mark.browser
def test_posting_a_wish_from_the_boards_public_page_in_a_browser(live_server, phone_page,
                                                                    kit_for_browser, tmp_path):
    board, resident = kit_for_browser
    server = live_server(workers=2)
    title = "想请志愿者帮忙修一下楼道的灯🙏"
    page = phone_page(server.url, size=(390, 844))
    page.goto(f"/b/{board['token']}")
    assert board["name"] in page.title()
    page.click("a.button--big")  # 发布心愿: signing in first, then back to the form
    page.wait_for_selector("#f-phone", timeout=15_000)
    page.fill("#f-phone", resident.phone)
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit].button--primary")
    page.wait_for_selector("#wish-form", state="visible", timeout=15_000)
    page.fill("#wish-form input[name=title]", title)
    page.locator("#wish-form label.radios__label", has_text="维修").click()
    page.fill("#wish-form textarea[name=description]", "三楼楼道的灯坏了一个星期，晚上很黑。")
    page.fill("#wish-form input[name=contact_phone]", "13812345678")
    page.fill("#wish-form input[name=address]", "3 栋 3 楼")
    page.click("#wish-form button[type=submit]")
    message = page.locator(".notice--success")
    message.wait_for(timeout=15_000)
    text = message.inner_text()
    landed = page.url
    page.screenshot(path=str(tmp_path / "board-wish-posted.png"), full_page=True)
    assert "心愿已提交" in text
    assert (tmp_path / "board-wish-posted.png").stat().st_size > 0

    # The wish exists, as the resident's, pending review, exactly as typed.
    token = Http(server.url).login(resident.phone, PASSWORD)
    mine = Http(server.url).call("GET", "/wishes?mine=true", token)["items"]
    assert len(mine) == 1
    wish = mine[0]
    assert landed == f"{server.url}/wishes/{wish['id']}"  # the new wish's own page
    assert (wish["title"], wish["category"], wish["status"], wish["board_id"]) == (
        title, "repair", "pending", board["id"])
    assert wish["contact_phone"] == "13812345678" and wish["address"] == "3 栋 3 楼"
    assert_server_healthy(server)


@pytest.fixture
def kit_for_browser(app, client, factory, world):
    from tests.wish_helpers import Kit

    kit = Kit(app, client, factory, world)
    return kit.board, factory.user("住在三楼的刘阿姨")
