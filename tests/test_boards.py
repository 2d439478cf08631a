"""Boards (心愿墙 / 帮办二维码): CRUD and permissions, unguessable tokens and their rotation,
the public page behind the QR, the QR codes themselves (decoded by a real QR reader) and the
printable poster."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from tests.helpers import assert_error, assert_field_error
from tests.pages_helpers import signed_in, text_of
from tests.wish_helpers import API, Kit, counts, decode_png, rasterise_svg

BASE = "https://xinyuan.example.cn"


@pytest.fixture
def app(make_app):
    # A trailing slash, as people write it: the QR must still encode exactly BASE/b/<token>.
    return make_app(PUBLIC_BASE_URL=BASE + "/")


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def html_of(response) -> str:
    assert response.mimetype == "text/html", response.headers
    return response.get_data(as_text=True)


# --- CRUD and permissions -----------------------------------------------------------------

def test_an_organiser_creates_lists_reads_and_updates_boards(kit):
    board = kit.ok(kit.post(f"/communities/{kit.cid}/boards", kit.organiser, {
        "name": "远创樾府 5 栋", "location": "5 栋大堂", "grid_label": "第三网格",
        "auto_approve": True}), 201)
    assert {k: board[k] for k in ("community_id", "name", "location", "grid_label",
                                  "auto_approve", "enabled")} == {
        "community_id": kit.cid, "name": "远创樾府 5 栋", "location": "5 栋大堂",
        "grid_label": "第三网格", "auto_approve": True, "enabled": True}
    assert board["public_url"] == f"{BASE}/b/{board['token']}"
    for member in (kit.organiser, kit.volunteer, kit.resident, kit.w.admin):
        listed = kit.ok(kit.get(f"/communities/{kit.cid}/boards", member))
        assert [b["id"] for b in listed["items"]] == [kit.board["id"], board["id"]]
        assert listed["total"] == 2
        assert kit.ok(kit.get(f"/boards/{board['id']}", member)) == board
    changed = kit.ok(kit.patch(f"/boards/{board['id']}", kit.organiser, {
        "name": "五栋", "location": "", "grid_label": None, "auto_approve": False,
        "enabled": False}))
    assert {k: changed[k] for k in ("name", "location", "grid_label", "auto_approve",
                                    "enabled")} == {"name": "五栋", "location": "",
                                                    "grid_label": None, "auto_approve": False,
                                                    "enabled": False}
    assert changed["token"] == board["token"]
    assert kit.ok(kit.get(f"/boards/{board['id']}", kit.resident)) == changed


def test_only_the_communitys_organisers_manage_its_boards(kit, app):
    bid, cid = kit.board["id"], kit.cid
    before = counts(app)
    for user in (kit.volunteer, kit.resident):
        assert_error(kit.post(f"/communities/{cid}/boards", user, {"name": "x"}), 403)
        assert_error(kit.patch(f"/boards/{bid}", user, {"name": "x"}), 403)
        assert_error(kit.post(f"/boards/{bid}/rotate-token", user), 403)
    for user in (kit.w.other_organiser, kit.w.other_volunteer, kit.w.outsider):
        assert_error(kit.post(f"/communities/{cid}/boards", user, {"name": "x"}), 404)
        assert_error(kit.get(f"/communities/{cid}/boards", user), 404)
        assert_error(kit.get(f"/boards/{bid}", user), 404)
        assert_error(kit.patch(f"/boards/{bid}", user, {"name": "x"}), 404)
        assert_error(kit.post(f"/boards/{bid}/rotate-token", user), 404)
        for path in ("qrcode.png", "qrcode.svg", "poster"):
            assert_error(kit.get(f"/boards/{bid}/{path}", user), 404)
    for path in (f"/boards/{bid}", f"/boards/{bid}/qrcode.png", f"/boards/{bid}/poster",
                 f"/communities/{cid}/boards"):
        assert_error(kit.client.get(API + path), 401)
    assert_error(kit.get("/boards/999999", kit.organiser), 404)
    assert counts(app) == before
    # The platform admin may.
    kit.ok(kit.patch(f"/boards/{bid}", kit.w.admin, {"location": "东门"}))


@pytest.mark.parametrize("body", [
    {}, {"name": ""}, {"name": "   "}, {"name": "墙" * 65}, {"name": 5},
    {"name": "墙", "auto_approve": "yes"}, {"name": "墙", "enabled": 1},
    {"name": "墙", "location": "楼" * 129}, {"name": "墙", "grid_label": "格" * 33},
    {"name": "墙", "token": "my-own-token-aaaaaaaaaaaaaaaaaa"},
    {"name": "墙", "community_id": 2}, {"name": "墙", "id": 77},
])
def test_bad_board_input_is_refused_and_writes_nothing(kit, app, body):
    before = counts(app)
    assert_error(kit.post(f"/communities/{kit.cid}/boards", kit.organiser, body), 422)
    assert counts(app) == before


@pytest.mark.parametrize("body", [{"name": ""}, {"token": "x" * 32}, {"community_id": 2},
                                  {"enabled": "false"}])
def test_bad_board_updates_are_refused(kit, body):
    field = next(iter(body))
    assert_field_error(kit.patch(f"/boards/{kit.board['id']}", kit.organiser, body), field)
    assert kit.ok(kit.get(f"/boards/{kit.board['id']}", kit.organiser)) == kit.board


# --- tokens -------------------------------------------------------------------------------

def test_tokens_are_unguessable_url_safe_and_unique(kit):
    tokens = [kit.board["token"]] + [kit.create_board(kit.cid, f"墙 {n}")["token"]
                                     for n in range(15)]
    tokens += [kit.ok(kit.post(f"/boards/{kit.board['id']}/rotate-token", kit.organiser))["token"]
               for _ in range(4)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token  # URL-safe, no padding
        assert len(token) * 6 >= 128, token  # ≥ 128 random bits of base64url
        assert str(kit.board["id"]) != token
    # Not derived from each other: no long common prefix.
    prefixes = {t[:6] for t in tokens}
    assert len(prefixes) == len(tokens)


def test_rotating_replaces_the_token_and_the_old_qr_says_so(kit, client):
    bid, first = kit.board["id"], kit.board["token"]
    rotated = kit.ok(kit.post(f"/boards/{bid}/rotate-token", kit.organiser))
    second = rotated["token"]
    assert second != first and rotated["public_url"] == f"{BASE}/b/{second}"
    assert kit.ok(kit.get(f"/boards/{bid}", kit.volunteer))["token"] == second
    third = kit.ok(kit.post(f"/boards/{bid}/rotate-token", kit.w.admin))["token"]
    for old in (first, second):
        response = client.get(f"/b/{old}")
        assert response.status_code == 410
        html = html_of(response)
        assert "已更换" in html and "新二维码" in html
        assert kit.board["name"] in html and kit.w.community.name in html
        # It does not lead to the new code (the old one is only in the page's own links).
        assert old not in text_of(response) and third not in html
        assert client.get(f"/b/{old}/poster").status_code == 404
    page = client.get(f"/b/{third}")
    assert page.status_code == 200 and kit.board["name"] in html_of(page)
    # The QR now encodes the new token.
    png = kit.get(f"/boards/{bid}/qrcode.png", kit.organiser).data
    assert [r.text for r in decode_png(png)] == [f"{BASE}/b/{third}"]


def test_unknown_tokens_get_a_friendly_not_found_page(client):
    for token in ("nope", "A" * 32, "%E4%B8%AD"):
        response = client.get(f"/b/{token}")
        assert response.status_code == 404
        assert "找不到" in html_of(response)


# --- the public page ----------------------------------------------------------------------

def test_the_public_page_needs_no_login_and_shows_the_board_and_recent_public_wishes(kit,
                                                                                     client):
    pending = kit.post_wish(kit.resident, title="还在审核的心愿")["id"]
    shown = kit.make("open", title="想请人陪老人散步")
    kit.make("rejected", title="被驳回的心愿")
    response = client.get(f"/b/{kit.board['token']}")
    assert response.status_code == 200
    html = html_of(response)
    assert kit.board["name"] in html and kit.w.community.name in html
    assert f'href="/b/{kit.board["token"]}/wish"' in html and "发布心愿" in html
    assert "想请人陪老人散步" in html
    assert "还在审核的心愿" not in html and "被驳回的心愿" not in html
    assert pending and shown
    # Posting needs a login, and the form offers every category label.
    form = client.get(f"/b/{kit.board['token']}/wish")
    assert form.status_code == 303 and "/login?next=" in form.headers["Location"]
    signed_in(client, kit.resident)
    html = html_of(client.get(f"/b/{kit.board['token']}/wish"))
    assert 'id="wish-form"' in html
    for label in ("生活帮扶", "维修", "跑腿代购", "陪伴探访", "政策咨询", "其他"):
        assert label in html


def test_a_disabled_board_shows_a_closed_page_and_takes_no_wishes(kit, app, client):
    bid, token = kit.board["id"], kit.board["token"]
    kit.ok(kit.patch(f"/boards/{bid}", kit.organiser, {"enabled": False}))
    response = client.get(f"/b/{token}")
    assert response.status_code == 200  # a clear page, not an error
    html = html_of(response)
    assert "暂停" in html and kit.board["name"] in html
    assert 'id="wish-form"' not in html
    before = counts(app)
    body = {"title": "水龙头漏水", "category": "repair"}
    for user in (kit.resident, kit.w.outsider, kit.organiser):
        assert_error(kit.post(f"/boards/{bid}/wishes", user, body), 409, "board_closed")
    assert counts(app) == before  # no wish, no event, no new membership
    # Enabled again, it works.
    kit.ok(kit.patch(f"/boards/{bid}", kit.organiser, {"enabled": True}))
    assert f'href="/b/{token}/wish"' in html_of(client.get(f"/b/{token}"))
    kit.post_wish(kit.resident)


# --- QR codes -----------------------------------------------------------------------------

@pytest.mark.parametrize("size", [128, 200, 333, 512, 1024, 2048])
def test_the_png_qr_decodes_to_the_boards_public_url(kit, size):
    response = kit.get(f"/boards/{kit.board['id']}/qrcode.png?size={size}", kit.resident)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    assert image.format == "PNG" and image.size == (size, size)
    results = decode_png(response.data)
    assert len(results) == 1
    assert results[0].format.name == "QRCode"
    assert results[0].text == f"{BASE}/b/{kit.board['token']}"
    assert results[0].ec_level in ("M", "Q", "H")


def test_the_default_png_size(kit):
    response = kit.get(f"/boards/{kit.board['id']}/qrcode.png", kit.organiser)
    assert response.status_code == 200
    size = Image.open(io.BytesIO(response.data)).size
    assert size[0] == size[1] and 128 <= size[0] <= 2048
    assert decode_png(response.data)[0].text == kit.board["public_url"]


@pytest.mark.parametrize("size", ["127", "2049", "abc", "0", "-512", "1e3", "512.5", ""])
def test_sizes_out_of_bounds_are_refused(kit, size):
    response = kit.get(f"/boards/{kit.board['id']}/qrcode.png?size={size}", kit.organiser)
    assert_field_error(response, "size")


def test_the_svg_qr_is_served_and_decodes_to_the_same_url(kit):
    response = kit.get(f"/boards/{kit.board['id']}/qrcode.svg", kit.volunteer)
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert "<svg" in svg and "http://www.w3.org/2000/svg" in svg
    results = decode_png(rasterise_svg(svg))
    assert [r.text for r in results] == [f"{BASE}/b/{kit.board['token']}"]


@pytest.mark.parametrize("path", ["qrcode.png?size=256", "qrcode.svg"])
def test_qr_codes_have_an_etag_and_cache_headers(kit, path):
    url = f"/boards/{kit.board['id']}/{path}"
    first = kit.get(url, kit.organiser)
    etag = first.headers.get("ETag")
    assert etag, first.headers
    cache = first.headers.get("Cache-Control", "")
    assert re.search(r"max-age=\d+", cache), cache
    assert kit.get(url, kit.organiser).headers["ETag"] == etag  # stable
    again = kit.get(url, kit.organiser, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert kit.get(url, kit.organiser, headers={"If-None-Match": '"other"'}).status_code == 200
    # A new token is a new image: the old ETag no longer matches.
    kit.ok(kit.post(f"/boards/{kit.board['id']}/rotate-token", kit.organiser))
    changed = kit.get(url, kit.organiser, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_different_sizes_have_different_etags(kit):
    tags = {kit.get(f"/boards/{kit.board['id']}/qrcode.png?size={s}", kit.organiser)
            .headers["ETag"] for s in (128, 256, 512)}
    assert len(tags) == 3


# --- the poster ---------------------------------------------------------------------------

def check_poster(kit, html: str) -> None:
    url = f"{BASE}/b/{kit.board['token']}"
    assert "<svg" in html
    assert kit.board["name"] in html and kit.w.community.name in html
    assert url in html  # the short URL in text, for those who cannot scan
    assert "A4" in html
    for step in ("扫描", "登录", "心愿", "认领", "评价"):
        assert step in html, step
    assert len(re.findall(r"<li>", html)) == 3  # three short steps
    svg = html[html.index("<svg"):html.index("</svg>") + len("</svg>")]
    assert [r.text for r in decode_png(rasterise_svg(svg))] == [url]
    # No personal data, no token of another board.
    assert kit.resident.phone not in html


def test_the_poster_is_a_printable_chinese_page_with_the_qr(kit):
    kit.make("open", contact_phone=kit.resident.phone)
    response = kit.get(f"/boards/{kit.board['id']}/poster", kit.volunteer)
    assert response.status_code == 200
    html = html_of(response)
    assert 'lang="zh-CN"' in html
    check_poster(kit, html)


def test_the_poster_is_public_through_the_token(kit, client):
    response = client.get(f"/b/{kit.board['token']}/poster")
    assert response.status_code == 200
    check_poster(kit, html_of(response))
    assert client.get("/b/not-a-token/poster").status_code == 404
