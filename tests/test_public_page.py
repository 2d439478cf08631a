"""The public notice page (公示栏, issue 10): `/p/<community code>` and its QR poster, read-only
and without a login; the volunteer's `public_name` choice (full or masked).

One November lived through the API at set moments (`app.db.frozen_clock`): last week's
champion frozen by `flask leaderboard freeze`, this week's leader live, October closed by
`flask stats close-month`. The page is then read as an anonymous phone would, and searched for
every phone, address and wish description the world holds: none may appear.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.db import frozen_clock
from app.stats.public import percent, public_name
from tests.helpers import assert_field_error, reading
from tests.live_pages import decode_qr
from tests.stats_helpers import closed_path, live, local
from tests.wish_helpers import API, Kit, rasterise_svg

NOW = local("2026-11-18 12:00")  # a Wednesday: last week is 11-09 … 11-15
PROFILE = f"{API}/me/volunteer-profile"
SECRET_DESCRIPTION = "楼道尽头那户独居的阿婆每晚十点后需要有人陪护翻身"
SECRET_ADDRESS = "幸福里九栋一二零一室"
SECRET_PHONE = "13955556666"


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


@pytest.fixture
def november(kit, app, client):
    """王建国 champion of last week (frozen), 张志愿 (masked) ahead this week in 红色足印服务队;
    October's board 红 and closed; November 2 of 3 wishes closed (66.7%, 黄); three rewards."""
    secret = {"description": SECRET_DESCRIPTION, "address": SECRET_ADDRESS,
              "contact_phone": SECRET_PHONE}
    live(kit, "2026-10-05 10:00", closed_path(kit, 1, 5))
    with frozen_clock(local("2026-11-01 00:10")):
        assert app.test_cli_runner().invoke(args=["stats", "close-month"]).exit_code == 0
    live(kit, "2026-11-10 10:00", closed_path(kit, 1, 5))
    live(kit, "2026-11-16 10:00", closed_path(kit, 1, 5, claimer=kit.volunteer2))
    with frozen_clock(local("2026-11-17 09:00")):
        wid = kit.post_wish(title="陪护翻身", **secret)["id"]
        kit.do(wid, "approve", kit.organiser, level=2)
    with frozen_clock(local("2026-11-17 00:05")):
        result = app.test_cli_runner().invoke(args=["leaderboard", "freeze"])
        assert result.exit_code == 0, result.output
    team = kit.ok(kit.post(f"/communities/{kit.cid}/teams", kit.organiser,
                           {"name": "红色足印服务队"}), 201)
    kit.ok(kit.post(f"/teams/{team['id']}/members", kit.organiser,
                    {"user_id": kit.volunteer2.id}), 201)
    kit.ok(kit.patch("/me/volunteer-profile", kit.volunteer2, {"public_name": "masked"}))
    for reward in ({"name": "大米五斤", "kind": "goods", "cost": 50, "stock": 3},
                   {"name": "食用油一桶", "kind": "goods", "cost": 80, "stock": 0},
                   {"name": "光荣榜上墙", "kind": "honour", "cost": 120}):
        kit.ok(kit.post(f"/communities/{kit.cid}/rewards", kit.organiser, reward), 201)
    return kit


def page(client, code: str = "guanyuan"):
    with frozen_clock(NOW):
        return client.get(f"/p/{code}", headers={"Accept": "text/html"})


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_notice_page(november, client):
    response = page(client)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert "Accept-Language" in response.headers["Vary"]
    assert "Set-Cookie" not in response.headers  # one cached copy suits every visitor
    html = response.get_data(as_text=True)
    text = text_of(html)
    assert "管园村 公示栏" in text
    # Last week's champion (frozen), this week's leader (live, masked by choice).
    champion = text[text.index("上周积分冠军"):text.index("本周暂时领先")]
    assert "已定" in champion and "王建国" in champion and "2026-11-09 至 2026-11-15" in champion
    leader = text[text.index("本周暂时领先"):text.index("本周积分排行")]
    assert "实时" in leader and "张**" in leader
    assert "张志愿" not in text
    week = text[text.index("本周积分排行"):text.index("月办结率")]
    assert "张**" in week and "红色足印服务队" in week and "王建国" not in week
    # 办结率 of November: 2 of 3.
    assert "11 月办结率" in text and "66.7%" in text
    # 红黄蓝 with the word on the colour: October closed 红, November live 黄.
    row = re.search(r"<th scope=\"row\">远创樾府 3 栋</th>(.*?)</tr>", html, re.S).group(1)
    assert re.findall(r'rating rating--(\w+)">(\w)<', row) == [("red", "红"), ("yellow", "黄")]
    assert "10 月已定" in text.replace(" ", "") or "10 月 已定" in text
    # The rules and the store.
    assert "积分规则" in text and "微心愿" in text and "5 星得 100%" in text
    assert "大米五斤" in text and "还剩 3 件" in text and "已换完" in text and "不限数量" in text
    # Nothing of the visitor's: no login form, no CSRF token.
    assert "csrf_token" not in html and "<form" not in html


def test_no_phone_address_or_description_ever(november, app, client):
    html = page(client).get_data(as_text=True)
    from app.auth.models import User
    from app.wishes.models import Wish

    with reading(app) as session:
        phones = set(session.scalars(sa.select(User.phone)))
        wishes = session.execute(sa.select(Wish.description, Wish.address,
                                           Wish.contact_phone)).all()
    secrets = phones | {v for row in wishes for v in row if v}
    assert SECRET_PHONE in secrets and SECRET_ADDRESS in secrets and len(secrets) > 8
    for secret in secrets:
        assert secret not in html, secret
    assert "王女士" not in html  # the resident who posted the wishes
    poster = client.get("/p/guanyuan/poster").get_data(as_text=True)
    assert not any(secret in poster for secret in secrets)


def test_an_empty_community_and_an_unknown_code(world, client):
    text = text_of(page(client).get_data(as_text=True))
    assert "上周没有人获得积分" in text and "本周还没有人获得积分" in text
    assert "本月还没有需要办理的心愿" in text
    client.set_cookie("lang", "en")
    english = page(client)
    assert english.status_code == 200 and '<html lang="en">' in english.get_data(as_text=True)
    client.delete_cookie("lang")
    missing = client.get("/p/no-such-place", headers={"Accept": "text/html"})
    assert missing.status_code == 404
    assert missing.mimetype == "text/html"
    assert "没有这个社区的公示栏" in missing.get_data(as_text=True)
    assert "public" not in missing.headers.get("Cache-Control", "")
    assert client.get("/p/no-such-place/poster").status_code == 404


def test_the_poster_qr_opens_the_notice_page(world, app, client):
    response = client.get("/p/guanyuan/poster")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "管园村" in html
    url = app.config["PUBLIC_BASE_URL"].rstrip("/") + "/p/guanyuan"
    assert url in html
    svg = html[html.index("<svg"):html.index("</svg>") + 6]
    assert decode_qr(rasterise_svg(svg)) == url


@pytest.mark.parametrize("name, choice, shown", [
    ("王小明", "masked", "王**"), ("王小明", "full", "王小明"), ("欧阳娜娜", "masked", "欧***"),
    ("王", "masked", "王"), ("", "masked", ""), ("王小明", None, "王小明"),
])
def test_public_name(name, choice, shown):
    assert public_name(name, choice) == shown


def test_percent():
    assert (percent(None), percent(1.0), percent(0.6667), percent(0.5)) == (
        None, "100%", "66.7%", "50%")


def test_public_name_in_the_profile_api(client, world, factory, app):
    mine, other = factory.headers(world.volunteer), factory.headers(world.other_volunteer)
    first = client.patch(PROFILE, json={"tags": ["骑手"]}, headers=mine)
    assert first.status_code == 200 and first.get_json()["public_name"] == "full"
    changed = client.patch(PROFILE, json={"public_name": "masked"}, headers=mine)
    assert changed.status_code == 200 and changed.get_json()["public_name"] == "masked"
    assert client.get(f"{API}/me", headers=mine).get_json()["volunteer_profile"][
        "public_name"] == "masked"
    for bad in ("hidden", "", None, 1, "MASKED"):
        assert_field_error(client.patch(PROFILE, json={"public_name": bad}, headers=mine),
                           "public_name", case=bad)
    # Another user's PATCH changes only their own profile.
    assert client.patch(PROFILE, json={"public_name": "full"}, headers=other).status_code == 200
    with reading(app) as session:
        from app.communities.models import VolunteerProfile

        stored = dict(session.execute(sa.select(VolunteerProfile.user_id,
                                                VolunteerProfile.public_name)).all())
    assert stored == {world.volunteer.id: "masked", world.other_volunteer.id: "full"}
    # Nobody may name another's profile: unknown fields are refused.
    assert_field_error(client.patch(PROFILE, json={"user_id": world.volunteer.id,
                                                   "public_name": "full"}, headers=other),
                       "user_id")


def test_the_openapi_document_describes_public_name(client):
    spec = client.get(f"{API}/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    update = next(s for n, s in schemas.items() if n.startswith("VolunteerProfileUpdate"))
    assert update["properties"]["public_name"]["enum"] == ["full", "masked"]
    assert "masked" in update["properties"]["public_name"]["description"]
