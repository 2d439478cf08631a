"""The points store's pages through HTTP: rewards, the confirmation step, redeeming once,
refusals in words, my redemptions with the pickup QR, cancelling, the member card; and the
redeem form under concurrency through real gunicorn workers.

Rewards and points are made through the API and the ledger service (tests/store_helpers.py);
the pages are driven as a browser would (cookies, CSRF field, the one-time form token).
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
import requests

from tests.pages_helpers import CSRF_COOKIE, hidden, html, page, post_form, signed_in, text_of
from tests.store_helpers import (
    API,
    assert_verified,
    balance,
    decode_qr,
    give_points,
    make_reward,
    redeem,
    redemption_row,
    stock,
    store_state,
    transfers,
)
from tests.wish_helpers import PASSWORD


@pytest.fixture
def api(app):
    """A second client for the API (bearer headers), so page cookies never mix in."""
    return app.test_client()


@pytest.fixture
def org(factory, world):
    return factory.headers(world.organiser)


@pytest.fixture
def vol(factory, world):
    return factory.headers(world.volunteer)


@pytest.fixture
def oil(api, org, world):
    return make_reward(api, org, world.community.id, name="金龙鱼食用油 5L", cost=10, stock=5)


def confirm_form(client, reward_id: int) -> str:
    """Open the confirmation step; the form token it carries."""
    token = hidden(html(page(client, f"/store/rewards/{reward_id}")), "form_token")
    assert token
    return token


def submit(client, reward_id: int, token: str | None, quantity="1", **kwargs):
    data = {"quantity": quantity}
    if token is not None:
        data["form_token"] = token
    return post_form(client, f"/store/rewards/{reward_id}", data, **kwargs)


def public(path: str, **params) -> str:
    return "http://127.0.0.1:5000" + path + "?" + urlencode(params)


# --- /store ---------------------------------------------------------------------------------

def test_rewards_with_what_i_can_afford_marked(client, api, org, vol, world):
    cid = world.community.id
    give_points(client.application, cid, [world.volunteer.id], 40, world.organiser.id)
    cheap = make_reward(api, org, cid, name="肥皂", cost=10, stock=5)
    dear = make_reward(api, org, cid, name="电饭煲", cost=100, stock=2)
    honour = make_reward(api, org, cid, name="优秀志愿者证书", kind="honour", cost=5)
    haircut = make_reward(api, org, cid, name="理发服务", kind="service", cost=10, stock=8,
                          per_user_limit=1)
    gone = make_reward(api, org, cid, name="雨伞", cost=5, stock=0)
    hidden_reward = make_reward(api, org, cid, name="已下架的奖品", cost=1, active=False)
    towel = make_reward(api, org, cid, name="毛巾", cost=1)
    assert redeem(api, vol, haircut["id"]).status_code == 201  # this month's one is taken

    signed_in(client, world.volunteer)
    response = page(client, "/store")
    text, body = text_of(response), html(response)
    assert "30 我的可用积分" in text  # 40 − 10 for the haircut
    links = set(map(int, re.findall(r'href="/store/rewards/(\d+)"', body)))
    assert links == {cheap["id"], honour["id"], towel["id"]}
    assert text.count("积分够，可以兑换") == 3
    assert "还差 70 积分" in text
    assert "每人每月限 1 件，本月您已换 1 件" in text and "本月已达兑换上限" in text
    assert "已经换完了" in text and "名额还剩 7 个" in text and "还剩 5 件" in text
    assert "不限数量" in text
    assert "已下架的奖品" not in text
    assert 'class="list__item reward reward--ok"' in body  # marked visually too
    assert body.count("reward--blocked") == 3  # the dear one, the haircut and the umbrella
    assert dear["id"] not in links and gone["id"] not in links and hidden_reward["id"] not in links


def test_rewards_twenty_a_page(client, api, org, world):
    ids = [make_reward(api, org, world.community.id, name=f"奖品{n:02d}", cost=n + 1,
                       description="说明" * 100)["id"] for n in range(23)]
    signed_in(client, world.volunteer)
    first = page(client, "/store")
    assert re.findall(r'<h3 class="reward__name">(奖品\d+)</h3>', html(first)) == [
        f"奖品{n:02d}" for n in range(20)]  # cheapest first
    assert len(first.data) < 60_000
    assert 'href="/store?page=2"' in html(first)
    second = page(client, "/store?page=2")
    assert re.findall(r'<h3 class="reward__name">(奖品\d+)</h3>', html(second)) == [
        "奖品20", "奖品21", "奖品22"]
    assert len(ids) == 23


def test_another_communitys_rewards_are_not_here(client, api, factory, world):
    other = make_reward(api, factory.headers(world.other_organiser), world.other.id,
                        name="外社区的奖品")
    signed_in(client, world.volunteer)
    assert "外社区的奖品" not in text_of(page(client, "/store"))
    assert "找不到" in text_of(page(client, f"/store/rewards/{other['id']}", 404))
    before = store_state(client.application)
    response = post_form(client, f"/store/rewards/{other['id']}", {"quantity": "1"})
    assert response.status_code == 404
    assert store_state(client.application) == before


# --- the confirmation step and redeeming ------------------------------------------------------

def test_confirm_then_redeem(client, oil, world, app):
    cid = world.community.id
    give_points(app, cid, [world.volunteer.id], 30, world.organiser.id)
    signed_in(client, world.volunteer)
    response = page(client, f"/store/rewards/{oil['id']}")
    assert "用 10 积分兑换“金龙鱼食用油 5L”？兑换后余额将剩 20 积分。" in text_of(response)
    assert "2 件：共 20 积分，兑换后余额 10" in text_of(response)
    assert "4 件" not in text_of(response)  # 40 points: more than the balance
    assert balance(app, cid, world.volunteer.id) == 30  # looking changes nothing

    done = submit(client, oil["id"], hidden(html(response), "form_token"), "2")
    assert done.status_code == 303
    location = done.headers["Location"]
    rid = int(re.fullmatch(r"/store/redemptions/(\d+)", location).group(1))
    shown = page(client, location)
    row = redemption_row(app, rid)
    assert row["user_id"] == world.volunteer.id and row["quantity"] == 2
    assert row["cost_total"] == 20 and row["status"] == "awaiting_pickup"
    assert "兑换成功" in text_of(shown)
    code = row["pickup_code"]
    assert f'<p class="code code--big">{code[:5]} {code[5:]}</p>' in html(shown)
    assert 'data-fullscreen="pickup"' in html(shown) and 'id="pickup"' in html(shown)
    assert balance(app, cid, world.volunteer.id) == 10 and stock(app, oil["id"]) == 3
    assert [t["key"] for t in transfers(app)] == [f"redemption:{rid}:debit"]
    assert_verified(app)


@pytest.mark.parametrize("quantity", ["0", "-1", "abc", str(10**9), "11", "1.5"])
def test_bad_quantity_is_refused_in_words(client, oil, world, app, quantity):
    give_points(app, world.community.id, [world.volunteer.id], 200, world.organiser.id)
    signed_in(client, world.volunteer)
    token = confirm_form(client, oil["id"])
    before = store_state(app)
    response = submit(client, oil["id"], token, quantity)
    assert response.status_code == 422, text_of(response)[:800]
    text = text_of(response)
    assert "提交没有成功" in text and "兑换数量：" in text
    assert 'aria-invalid="true"' in html(response)
    assert hidden(html(response), "form_token") == token  # the same form, to correct and resend
    assert store_state(app) == before
    # Corrected, the same form then works once.
    assert submit(client, oil["id"], token, "1").status_code == 303


def test_insufficient_points_is_a_page_in_words(client, api, org, vol, oil, world, app):
    cid = world.community.id
    give_points(app, cid, [world.volunteer.id], 12, world.organiser.id)
    soap = make_reward(api, org, cid, name="肥皂", cost=5, stock=5)
    signed_in(client, world.volunteer)
    token = confirm_form(client, oil["id"])  # affordable when shown …
    assert redeem(api, vol, soap["id"]).status_code == 201  # … then 7 points are left
    before = store_state(app)
    response = submit(client, oil["id"], token)
    assert response.status_code == 409
    text = text_of(response)
    assert "这次没有兑换成功，积分没有扣除" in text and "积分不足" in text
    assert "认领并完成居民的心愿就能赚积分" in text and 'href="/volunteer/wishes"' in html(response)
    assert store_state(app) == before
    assert balance(app, cid, world.volunteer.id) == 7 and stock(app, oil["id"]) == 5

    # With points again, the same form goes through (the refused submit left no trace).
    give_points(app, cid, [world.volunteer.id], 10, world.organiser.id)
    assert submit(client, oil["id"], token).status_code == 303


def test_out_of_stock_and_limit_reached_and_inactive(client, api, org, factory, world, app):
    cid = world.community.id
    give_points(app, cid, [world.volunteer.id, world.resident.id], 100, world.organiser.id)
    last_one = make_reward(api, org, cid, name="最后一桶油", cost=10, stock=1)
    monthly = make_reward(api, org, cid, name="理发", kind="service", cost=5, stock=10,
                          per_user_limit=1)
    shelf = make_reward(api, org, cid, name="毛巾", cost=5, stock=10)
    signed_in(client, world.volunteer)
    tokens = {r["id"]: confirm_form(client, r["id"]) for r in (last_one, monthly, shelf)}
    resident = factory.headers(world.resident)
    assert redeem(api, resident, last_one["id"]).status_code == 201
    assert redeem(api, factory.headers(world.volunteer), monthly["id"]).status_code == 201
    assert api.patch(f"{API}/rewards/{shelf['id']}", json={"active": False},
                     headers=org).status_code == 200

    for reward, words, step in [(last_one, "库存不足", "看看其他奖品"),
                                (monthly, "本月兑换数量已达上限（每人每月 1 件）", "下个月 1 日起"),
                                (shelf, "该奖品已下架", "看看其他奖品")]:
        before = store_state(app)
        response = submit(client, reward["id"], tokens[reward["id"]])
        assert response.status_code == 409, (reward["name"], text_of(response)[:800])
        assert words in text_of(response) and step in text_of(response)
        assert "积分没有扣除" in text_of(response)
        assert store_state(app) == before
    # A reward taken off the shelf is gone from the list and its page.
    assert page(client, f"/store/rewards/{shelf['id']}", 404)


def test_without_the_csrf_token_nothing_happens(client, oil, world, app):
    give_points(app, world.community.id, [world.volunteer.id], 50, world.organiser.id)
    signed_in(client, world.volunteer)
    token = confirm_form(client, oil["id"])
    before = store_state(app)
    for data in ({"quantity": "1", "form_token": token},
                 {"quantity": "1", "form_token": token, "csrf_token": "forged"}):
        response = client.post(f"/store/rewards/{oil['id']}", data=data)
        assert response.status_code == 403
        assert "这次提交没有生效" in text_of(response)
        assert store_state(app) == before


def test_double_submit_makes_one_redemption(client, oil, world, app):
    cid = world.community.id
    give_points(app, cid, [world.volunteer.id], 50, world.organiser.id)
    signed_in(client, world.volunteer)
    token = confirm_form(client, oil["id"])
    first = submit(client, oil["id"], token)
    second = submit(client, oil["id"], token)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(transfers(app)) == 1
    assert balance(app, cid, world.volunteer.id) == 40 and stock(app, oil["id"]) == 4
    assert_verified(app)
    # A fresh form is a new redemption.
    assert submit(client, oil["id"], confirm_form(client, oil["id"])).headers["Location"] \
        != first.headers["Location"]
    assert balance(app, cid, world.volunteer.id) == 30


def test_the_counter_fields_cannot_be_slipped_into_the_form(client, oil, world, app):
    """The page redeems for the signed-in person only (for_user_id is the counter's, via C)."""
    give_points(app, world.community.id, [world.volunteer.id, world.resident.id], 50,
                world.organiser.id)
    signed_in(client, world.volunteer)
    response = post_form(client, f"/store/rewards/{oil['id']}",
                         {"quantity": "1", "for_user_id": str(world.resident.id),
                          "member_code": "x", "form_token": confirm_form(client, oil["id"])})
    assert response.status_code == 303
    assert balance(app, world.community.id, world.resident.id) == 50
    assert balance(app, world.community.id, world.volunteer.id) == 40


# --- my redemptions -------------------------------------------------------------------------

def test_my_redemptions_paginated_with_status_badges(client, api, org, vol, world, app):
    cid = world.community.id
    give_points(app, cid, [world.volunteer.id], 100, world.organiser.id)
    badge = make_reward(api, org, cid, name="荣誉证书", kind="honour", cost=1)
    ids = [redeem(api, vol, badge["id"]).get_json()["id"] for _ in range(22)]
    assert api.post(f"{API}/redemptions/{ids[0]}/cancel", json={}, headers=vol).status_code == 200
    assert api.post(f"{API}/redemptions/{ids[1]}/fulfil", json={},
                    headers=org).status_code == 200
    signed_in(client, world.volunteer)
    first = page(client, "/store/redemptions")
    listed = [int(i) for i in re.findall(r'href="/store/redemptions/(\d+)"', html(first))]
    assert listed == ids[::-1][:20]
    assert 'class="badge badge--awaiting_pickup">待领取' in html(first)
    second = page(client, "/store/redemptions?page=2")
    assert [int(i) for i in re.findall(r'href="/store/redemptions/(\d+)"', html(second))] \
        == [ids[1], ids[0]]
    assert 'class="badge badge--fulfilled_redemption">已领取' in html(second)
    assert 'class="badge badge--cancelled">已取消' in html(second)


def test_a_redemption_is_for_its_owner_only(client, api, factory, org, vol, oil, world, app):
    give_points(app, world.community.id, [world.volunteer.id], 50, world.organiser.id)
    rid = redeem(api, vol, oil["id"]).get_json()["id"]
    other_cid = world.other.id
    other_reward = make_reward(api, factory.headers(world.other_organiser), other_cid)
    give_points(app, other_cid, [world.other_volunteer.id], 50, world.other_organiser.id)
    other_rid = redeem(api, factory.headers(world.other_volunteer),
                       other_reward["id"]).get_json()["id"]

    signed_in(client, world.volunteer)
    page(client, f"/store/redemptions/{rid}")
    assert client.get(f"/store/redemptions/{rid}/qr.png").status_code == 200
    page(client, f"/store/redemptions/{other_rid}", 404)  # another community's
    assert client.get(f"/store/redemptions/{other_rid}/qr.png").status_code == 404
    for person in (world.resident, world.organiser):  # another user's, even the organiser
        other = app.test_client()
        signed_in(other, person)
        assert "找不到" in text_of(page(other, f"/store/redemptions/{rid}", 404))
        assert other.get(f"/store/redemptions/{rid}/qr.png").status_code == 404
        before = store_state(app)
        assert post_form(other, f"/store/redemptions/{rid}/cancel").status_code == 404
        assert store_state(app) == before


def test_pickup_qr_opens_the_organisers_pickup_page(client, api, vol, oil, world, app):
    give_points(app, world.community.id, [world.volunteer.id], 50, world.organiser.id)
    rid = redeem(api, vol, oil["id"]).get_json()["id"]
    code = redemption_row(app, rid)["pickup_code"]
    signed_in(client, world.volunteer)
    response = client.get(f"/store/redemptions/{rid}/qr.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert decode_qr(response.data) == [public("/organiser/pickup", code=code)]
    assert f'src="/store/redemptions/{rid}/qr.png"' in html(page(client, f"/store/redemptions/{rid}"))


def test_cancel_before_pickup_refunds_once(client, api, vol, oil, world, app):
    cid = world.community.id
    give_points(app, cid, [world.volunteer.id], 50, world.organiser.id)
    rid = redeem(api, vol, oil["id"]).get_json()["id"]
    signed_in(client, world.volunteer)
    shown = html(page(client, f"/store/redemptions/{rid}"))
    assert re.search(r'<form method="post" action="/store/redemptions/\d+/cancel" data-confirm="[^"]+10 积分',
                     shown)

    before = store_state(app)
    refused = client.post(f"/store/redemptions/{rid}/cancel", data={})
    assert refused.status_code == 403 and store_state(app) == before

    done = post_form(client, f"/store/redemptions/{rid}/cancel")
    assert done.status_code == 303 and done.headers["Location"] == f"/store/redemptions/{rid}"
    after = page(client, f"/store/redemptions/{rid}")
    assert "已取消兑换，10 积分已退回您的账户" in text_of(after) and "已取消" in text_of(after)
    assert "/cancel" not in html(after) and "qr.png" not in html(after)
    assert balance(app, cid, world.volunteer.id) == 50 and stock(app, oil["id"]) == 5

    before = store_state(app)
    again = post_form(client, f"/store/redemptions/{rid}/cancel")
    assert again.status_code == 409
    assert "该兑换当前状态为“已取消”，不能再取消" in text_of(again)
    assert store_state(app) == before
    assert client.get(f"/store/redemptions/{rid}/qr.png").status_code == 200  # still the owner's
    assert_verified(app)


# --- the member card ------------------------------------------------------------------------

def test_member_card_qr_opens_the_counter(client, api, vol, world, app):
    give_points(app, world.community.id, [world.volunteer.id], 25, world.organiser.id)
    signed_in(client, world.volunteer)
    response = page(client, "/me/card")
    code = re.search(r'<p class="code">([^<]+)</p>', html(response)).group(1)
    text = text_of(response)
    assert "王建国" in text and "管园村 可用积分：25" in text
    assert 'data-fullscreen="member-card"' in html(response)
    png = client.get("/me/card/qr.png")
    assert png.status_code == 200 and png.headers["Cache-Control"] == "private, no-store"
    assert decode_qr(png.data) == [public("/organiser/counter", member_code=code)]
    # The same card as the API's.
    assert code == api.get(f"{API}/me/member-card", headers=vol).get_json()["code"]


def test_rotate_the_member_card(client, world, app):
    signed_in(client, world.volunteer)
    old = re.search(r'<p class="code">([^<]+)</p>', html(page(client, "/me/card"))).group(1)
    assert 'action="/me/card/rotate" data-confirm=' in html(page(client, "/me/card"))
    refused = client.post("/me/card/rotate", data={})
    assert refused.status_code == 403
    assert re.search(r'<p class="code">([^<]+)</p>', html(page(client, "/me/card"))).group(1) == old
    done = post_form(client, "/me/card/rotate")
    assert done.status_code == 303 and done.headers["Location"] == "/me/card"
    shown = page(client, "/me/card")
    new = re.search(r'<p class="code">([^<]+)</p>', html(shown)).group(1)
    assert new != old and "旧的会员码不能再使用" in text_of(shown)
    assert decode_qr(client.get("/me/card/qr.png").data) == [
        public("/organiser/counter", member_code=new)]


def test_store_pages_need_a_login_and_a_community(client, world, oil):
    for url in ("/store", f"/store/rewards/{oil['id']}", "/store/redemptions", "/me/card"):
        response = client.get(url)
        assert response.status_code == 303 and response.headers["Location"].startswith("/login?next=")
    signed_in(client, world.outsider)
    for url in ("/store", "/me/card", f"/store/rewards/{oil['id']}"):
        assert client.get(url).status_code == 403, url


# --- concurrency over live gunicorn workers -------------------------------------------------

def _browser(server, user) -> requests.Session:
    """A signed-in browser: login through /login with the CSRF cookie the page set."""
    session = requests.Session()
    assert session.get(f"{server.url}/login", timeout=30).status_code == 200
    response = session.post(f"{server.url}/login", timeout=30, allow_redirects=False, data={
        "phone": user.phone, "password": PASSWORD, "next": "/",
        "csrf_token": session.cookies[CSRF_COOKIE]})
    assert response.status_code == 303, response.text[:1000]
    return session


def _clone(session: requests.Session) -> requests.Session:
    twin = requests.Session()
    twin.cookies.update(session.cookies)
    return twin


def _form_token(session, server, reward_id: int) -> str:
    response = session.get(f"{server.url}/store/rewards/{reward_id}", timeout=30)
    assert response.status_code == 200, response.text[:1000]
    return hidden(response.text, "form_token")


def _together(calls) -> list:
    gate = threading.Event()

    def run(call):
        gate.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        gate.set()
        return [f.result() for f in futures]


def _post(session, server, reward_id: int, token: str):
    def call():
        return session.post(f"{server.url}/store/rewards/{reward_id}", timeout=120,
                            allow_redirects=False,
                            data={"csrf_token": session.cookies[CSRF_COOKIE], "quantity": "1",
                                  "form_token": token})
    return call


def _server_clean(server) -> None:
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log and "database is locked" not in log, log[-4000:]


@pytest.mark.live
def test_eight_parallel_taps_of_one_form_make_one_redemption(live_server, app, oil, world):
    cid = world.community.id
    give_points(app, cid, [world.volunteer.id], 50, world.organiser.id)
    server = live_server(workers=4)
    browser = _browser(server, world.volunteer)
    token = _form_token(browser, server, oil["id"])
    answers = _together([_post(_clone(browser), server, oil["id"], token) for _ in range(8)])
    assert [a.status_code for a in answers] == [303] * 8, [a.text[:300] for a in answers]
    assert len({a.headers["Location"] for a in answers}) == 1
    assert re.fullmatch(r"/store/redemptions/\d+", answers[0].headers["Location"])
    assert len(transfers(app)) == 1
    assert balance(app, cid, world.volunteer.id) == 40 and stock(app, oil["id"]) == 4
    assert_verified(app)
    _server_clean(server)


@pytest.mark.live
def test_eight_parallel_forms_for_three_left_sell_three(live_server, app, api, org, world, factory):
    cid = world.community.id
    second = factory.member(world.community, factory.user("张志愿"), "volunteer")
    people = [world.volunteer, second]
    give_points(app, cid, [p.id for p in people], 100, world.organiser.id)
    reward = make_reward(api, org, cid, name="限量月饼", cost=10, stock=3)
    server = live_server(workers=4)
    browsers = {p.id: _browser(server, p) for p in people}
    calls = []
    for person in people:
        for _ in range(4):
            token = _form_token(browsers[person.id], server, reward["id"])
            calls.append(_post(_clone(browsers[person.id]), server, reward["id"], token))
    answers = _together(calls)
    codes = sorted(a.status_code for a in answers)
    assert codes == [303] * 3 + [409] * 5, [a.text[:300] for a in answers]
    assert all("库存不足" in a.text for a in answers if a.status_code == 409)
    assert stock(app, reward["id"]) == 0
    debits = transfers(app)
    assert len(debits) == 3 and all(t["amount"] == 10 for t in debits)
    spent = {p.id: 100 - balance(app, cid, p.id) for p in people}
    assert sum(spent.values()) == 30 and all(v % 10 == 0 for v in spent.values())
    assert_verified(app)
    _server_clean(server)
