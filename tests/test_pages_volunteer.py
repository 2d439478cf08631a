"""The volunteer's pages through HTTP: wishes to claim, 我的积分 with causes, the leaderboard.

Data is made through the API (a separate test client with bearer headers, tests/wish_helpers.py's
Kit), the pages are read as a signed-in browser would (cookies, tests/pages_helpers.py).
"""

from __future__ import annotations

import re

import pytest

from tests.pages_helpers import html, page, signed_in, text_of
from tests.store_helpers import give_points, make_reward, redeem
from tests.wish_helpers import Kit


@pytest.fixture
def kit(app, factory, world):
    return Kit(app, app.test_client(), factory, world)


def wish_links(response) -> list[int]:
    """Ids of the wishes a list links to, in page order (each once)."""
    seen: list[int] = []
    for wid in map(int, re.findall(r'href="/wishes/(\d+)"', html(response))):
        if wid not in seen:
            seen.append(wid)
    return seen


def section(response, heading: str) -> str:
    """The HTML of the <section> whose <h2> says `heading`."""
    for part in re.findall(r"<section\b.*?</section>", html(response), flags=re.S):
        if re.search(rf"<h2[^>]*>{re.escape(heading)}</h2>", part):
            return part
    raise AssertionError(f"no section {heading!r}")


# --- /volunteer/wishes ----------------------------------------------------------------------

def test_open_wishes_matching_my_skills_first_and_those_i_hold(kit, client, world):
    assert kit.ok(kit.client.patch("/api/v1/me/volunteer-profile", json={"skills": ["errands"]},
                                   headers=kit.h(world.volunteer)))
    repair = kit.make("open", title="换水龙头", category="repair")
    errand = kit.make("open", title="帮忙买药", category="errands")  # older than the next one
    newest = kit.make("open", title="修门锁", category="repair")
    pending = kit.post_wish(title="还没审核的心愿")["id"]
    held = kit.make("claimed", title="我认领的心愿")
    other_board = kit.create_board(world.other.id, "外社区心愿墙")
    elsewhere = kit.post_wish(world.other_volunteer, board=other_board, title="外社区的心愿")["id"]

    signed_in(client, world.volunteer)
    response = page(client, "/volunteer/wishes")
    waiting = section(response, "等待认领的心愿")
    ids = [int(i) for i in dict.fromkeys(re.findall(r'href="/wishes/(\d+)"', waiting))]
    # Matching (errands) first, then newest first: not simply newest first.
    assert ids == [errand, newest, repair]
    assert "适合您" in waiting and waiting.index("适合您") < waiting.index("修门锁")
    assert pending not in wish_links(response) and elsewhere not in wish_links(response)
    mine = section(response, "我认领的")
    assert f'href="/wishes/{held}"' in mine and "我认领的心愿" in mine
    assert re.search(r"请在 \d{4}-\d\d-\d\d \d\d:\d\d 前完成", text_of(response))
    assert "共 3 个心愿等待认领" in text_of(response)


def test_filter_by_category_with_chinese_labels(kit, client, world):
    repair = kit.make("open", title="换水龙头", category="repair")
    errand = kit.make("open", title="帮忙买药", category="errands")
    signed_in(client, world.volunteer)
    everything = page(client, "/volunteer/wishes")
    assert '<option value="errands">跑腿代购</option>' in html(everything)
    filtered = page(client, "/volunteer/wishes?category=errands")
    assert wish_links(filtered) == [errand] and repair not in wish_links(filtered)
    assert '<option value="errands" selected>' in html(filtered)
    assert "“跑腿代购”类共 1 个心愿等待认领" in text_of(filtered)


@pytest.mark.parametrize("query", ["category=bogus", "page=0", "page=abc"])
def test_bad_filter_is_a_page_in_words(kit, client, world, query):
    signed_in(client, world.volunteer)
    response = page(client, f"/volunteer/wishes?{query}", 422)
    assert "请回到上一页重新选择" in text_of(response)
    assert "Traceback" not in html(response)


def test_twenty_a_page(kit, client, world):
    for n in range(23):
        kit.make("open", title=f"心愿{n:02d}", category="other")
    signed_in(client, world.volunteer)
    first = page(client, "/volunteer/wishes")
    assert len(wish_links(first)) == 20
    assert len(first.data) < 60_000  # a full page stays light on a cheap phone
    assert 'href="/volunteer/wishes?page=2"' in html(first)
    second = page(client, "/volunteer/wishes?page=2")
    assert len(wish_links(second)) == 3
    assert not set(wish_links(first)) & set(wish_links(second))
    with_category = page(client, "/volunteer/wishes?category=other")
    assert 'href="/volunteer/wishes?category=other&amp;page=2"' in html(with_category)


def test_only_volunteers_and_organisers(kit, client, world):
    kit.make("open")
    signed_in(client, world.resident)
    response = page(client, "/volunteer/wishes", 403)
    assert "志愿者" in text_of(response) and "联系社区工作人员" in text_of(response)
    page(client, "/me/points")  # the resident's own points page still works

    other = client.application.test_client()
    signed_in(other, world.organiser)
    page(other, "/volunteer/wishes")


def test_not_signed_in_goes_to_login_and_back(client):
    response = client.get("/volunteer/wishes?category=repair")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/volunteer/wishes%3Fcategory%3Drepair"
    assert client.get("/me/points").headers["Location"] == "/login?next=/me/points"


# --- /me/points -----------------------------------------------------------------------------

def test_history_says_the_cause_of_every_line(kit, client, world, app):
    wid = kit.make("closed", title="厨房水龙头漏水", level=3, rating=5)
    adjustment = kit.ok(kit.post(f"/communities/{kit.cid}/adjustments", world.organiser,
                                 {"user_id": world.volunteer.id, "amount": 15,
                                  "reason": "参加防汛值守"}), 201)
    reward = make_reward(kit.client, kit.h(world.organiser), kit.cid, name="大米 5kg", cost=20)
    taken = kit.ok(redeem(kit.client, kit.h(world.volunteer), reward["id"]), 201)
    cancelled = kit.ok(redeem(kit.client, kit.h(world.volunteer), reward["id"]), 201)
    kit.ok(kit.post(f"/redemptions/{cancelled['id']}/cancel", world.volunteer,
                    {"reason": "买重复了"}))
    kit.ok(kit.post(f"/communities/{kit.cid}/adjustments", world.organiser,
                    {"user_id": world.volunteer.id, "amount": -5, "reason": "重复登记，扣回"}), 201)

    signed_in(client, world.volunteer)
    response = page(client, "/me/points")
    text, body = text_of(response), html(response)
    summary = kit.points(world.volunteer)
    award = kit.rule_points(3)  # 5 stars: 100 %
    assert summary["balance"] == award + 15 - 20 - 5
    assert f"{summary['balance']} 可用积分" in text
    assert f"{summary['earned_total']} 累计获得" in text
    assert f"{summary['redeemed_total']} 已兑换" in text

    assert f'<a href="/wishes/{wid}">微心愿「厨房水龙头漏水」办结，评价 5 星</a>' in body
    assert f"+{award}" in text
    assert "社区工作人员李书记调整积分：参加防汛值守" in text
    assert "社区工作人员李书记调整积分：重复登记，扣回" in text and "−5" in text
    assert f'<a href="/store/redemptions/{taken["id"]}">兑换「大米 5kg」× 1</a>' in body
    assert (f'<a href="/store/redemptions/{cancelled["id"]}">兑换「大米 5kg」× 1 已取消，积分退还'
            f'（原因：买重复了）</a>') in body
    # Newest first, each with the balance after it.
    assert text.index("重复登记") < text.index("已取消") < text.index("参加防汛值守") \
        < text.index("厨房水龙头漏水")
    assert f"余额 {summary['balance']}" in text
    assert adjustment["balance_after"] == award + 15


def test_pending_points_and_what_expires_next(kit, client, world):
    kit.make("fulfilled", level=2)
    give_points(kit.app, kit.cid, [world.volunteer.id], 30, world.organiser.id)
    reward = make_reward(kit.client, kit.h(world.organiser), kit.cid, name="理发券", cost=10)
    taken = kit.ok(redeem(kit.client, kit.h(world.volunteer), reward["id"]), 201)

    signed_in(client, world.volunteer)
    response = page(client, "/me/points")
    pending = kit.points(world.volunteer)["pending"]
    assert pending > 0 and f"{pending} 待确认" in text_of(response)
    assert re.search(r"您兑换的「理发券」× 1 还没有领取，请在 \d{4}-\d\d-\d\d 前", text_of(response))
    assert f'href="/store/redemptions/{taken["id"]}"' in html(response)


def test_history_pages_by_key(kit, client, world, app):
    from app.db import write_transaction
    from app.extensions import db
    from app.ledger.service import adjust

    with app.app_context(), write_transaction(db.session):
        for n in range(25):
            adjust(kit.cid, world.volunteer.id, 1, f"第{n}次", world.organiser.id)
    signed_in(client, world.volunteer)
    first = page(client, "/me/points")
    assert text_of(first).count("调整积分：第") == 20
    assert len(first.data) < 60_000
    assert "第24次" in text_of(first) and "第4次" not in text_of(first).replace("第24次", "")
    after = re.search(r'href="/me/points\?after=(\d+)"', html(first)).group(1)
    second = page(client, f"/me/points?after={after}")
    assert text_of(second).count("调整积分：第") == 5
    assert "第0次" in text_of(second) and "第20次" not in text_of(second)
    assert "?after=" not in html(second) and 'href="/me/points"' in html(second)


@pytest.mark.parametrize("after", ["abc", "0", "-3", str(10**30)])
def test_bad_history_position_is_a_page_in_words(client, world, after):
    signed_in(client, world.volunteer)
    response = page(client, f"/me/points?after={after}", 422)
    assert "翻页位置" in text_of(response)


def test_points_need_a_community(client, world):
    signed_in(client, world.outsider)
    response = page(client, "/me/points", 403)
    assert "联系社区工作人员" in text_of(response)


def test_causes_for_another_viewer_do_not_link_the_redemption(kit, world, app):
    """What the organiser's passbook (helper C) gets from describe(): no owner-only links."""
    from app.auth.models import User
    from app.extensions import db
    from app.ledger.service import ledger_page
    from app.web.causes import describe

    give_points(app, kit.cid, [world.volunteer.id], 30, world.organiser.id)
    reward = make_reward(kit.client, kit.h(world.organiser), kit.cid, cost=10)
    kit.ok(redeem(kit.client, kit.h(world.volunteer), reward["id"]), 201)
    with app.test_request_context():
        entries = ledger_page(kit.cid, world.volunteer.id, after=None, page=1, per_page=20)["items"]
        mine = describe(entries, db.session.get(User, world.volunteer.id))
        theirs = describe(entries, db.session.get(User, world.organiser.id))
    assert [c["label"] for c in mine] == ["兑换", "调整"]
    assert mine[0]["url"].startswith("/store/redemptions/") and theirs[0]["url"] is None
    assert theirs[1] == {"label": "调整", "text": "社区工作人员李书记调整积分：测试发放积分",
                         "url": None, "note": "测试发放积分"}


def test_causes_are_looked_up_once_per_kind_not_per_line(kit, world, app):
    import sqlalchemy as sa

    from app.auth.models import User
    from app.extensions import db
    from app.ledger.service import ledger_page
    from app.web.causes import describe

    for n in range(3):
        kit.make("closed", title=f"心愿{n}", rating=5)
    give_points(app, kit.cid, [world.volunteer.id], 100, world.organiser.id)
    reward = make_reward(kit.client, kit.h(world.organiser), kit.cid, cost=5)
    for _ in range(3):
        kit.ok(redeem(kit.client, kit.h(world.volunteer), reward["id"]), 201)
    with app.test_request_context():
        entries = ledger_page(kit.cid, world.volunteer.id, after=None, page=1, per_page=20)["items"]
        viewer = db.session.get(User, world.volunteer.id)
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        sa.event.listen(db.engine, "before_cursor_execute", listener)
        try:
            found = describe(entries, viewer)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert len(entries) == 7 and len(found) == 7
    assert len(statements) == 3, statements  # wishes, redemptions, the adjustment's organiser
    assert sorted(c["label"] for c in found) == ["兑换"] * 3 + ["心愿奖励"] * 3 + ["调整"]


# --- the leaderboard ------------------------------------------------------------------------

def test_leaderboard_shows_my_rank_even_below_the_top(kit, client, world, factory, app):
    others = [factory.member(world.community, factory.user(f"志愿者{n:02d}"), "volunteer")
              for n in range(11)]
    give_points(app, kit.cid, [u.id for u in others], 50, world.organiser.id)
    give_points(app, kit.cid, [world.volunteer.id], 10, world.organiser.id)
    team = kit.ok(kit.post(f"/communities/{kit.cid}/teams", world.organiser,
                           {"name": "红色足印服务队"}), 201)
    kit.ok(kit.post(f"/teams/{team['id']}/members", world.organiser,
                    {"user_id": world.volunteer.id}), 201)

    signed_in(client, world.volunteer)
    for period in ("week", "month", "all"):
        response = page(client, f"/leaderboard?period={period}")
        text = text_of(response)
        assert "您排第 12 名，10 积分" in text, period
        assert re.search(r'<tr class="ranking__mine">\s*<td class="num">12</td>', html(response))
        assert text.count("志愿者0") + text.count("志愿者1") == 10  # the top ten, then me
        assert f'href="/leaderboard?period={period}" aria-current="page"' in html(response)
        assert "您的“红色足印服务队”排第 1 名" in text
    points = page(client, "/me/points")
    assert "本周排名：第 12 名（共 12 人）" in text_of(points)


@pytest.mark.parametrize("period", ["year", ""])
def test_leaderboard_period(client, world, period):
    signed_in(client, world.volunteer)
    if period:
        assert "时间段" in text_of(page(client, f"/leaderboard?period={period}", 422))
    else:
        assert 'href="/leaderboard?period=week" aria-current="page"' in html(
            page(client, "/leaderboard?period="))
