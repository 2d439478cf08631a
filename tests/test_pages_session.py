"""The pages' sessions: cookie-held logins, silent refresh, CSRF on every form, safe `next`,
language and community choice — through HTTP with the test client."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.auth.models import TokenFamily, User
from app.extensions import db
from tests.conftest import PASSWORD
from tests.pages_helpers import csrf, post_form, signed_in, text_of


def _cookie(response, name: str) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    return None


def test_login_sets_httponly_lax_cookies_and_returns_to_next(client, world):
    response = post_form(client, "/login", {"phone": world.volunteer.phone, "password": PASSWORD,
                                            "next": "/me/points?x=1"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/me/points?x=1"
    for name in ("xy_access", "xy_refresh"):
        header = _cookie(response, name)
        assert header is not None, name
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
        assert "Secure" not in header  # served over plain HTTP in tests
    assert "Max-Age=900" in _cookie(response, "xy_access")  # short-lived, as the token
    home = client.get("/")
    assert "王建国" in text_of(home)


def test_cookies_are_secure_when_the_public_address_is_https(make_app, world):
    app = make_app(PUBLIC_BASE_URL="https://xinyuan.example.cn")
    client = app.test_client()
    page = client.get("/login")
    assert "Secure" in _cookie(page, "xy_csrf")
    response = post_form(client, "/login", {"phone": world.volunteer.phone, "password": PASSWORD})
    assert response.status_code == 303
    assert "Secure" in _cookie(response, "xy_access")
    assert "Secure" in _cookie(response, "xy_refresh")


@pytest.mark.parametrize("target", [
    "https://evil.example/steal", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
    "http:/evil", "me/wishes",
])
def test_next_only_goes_to_local_paths(client, world, target):
    response = post_form(client, "/login", {"phone": world.volunteer.phone, "password": PASSWORD,
                                            "next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_wrong_password_says_so_in_words_and_keeps_the_phone(client, world):
    response = post_form(client, "/login", {"phone": world.volunteer.phone, "password": "nope-nope"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "手机号或密码不正确" in page
    assert f'value="{world.volunteer.phone}"' in page
    assert "nope-nope" not in page  # a password is never echoed back
    assert 'href="#f-phone"' in page  # the error summary links to the field
    assert client.get_cookie("xy_access") is None


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(client, app):
    response = post_form(client, "/register", {"phone": "13912345678", "password": "longenough",
                                               "display_name": "王阿姨"}, with_csrf=False)
    assert response.status_code == 403
    assert "没有生效" in text_of(response)
    wrong = post_form(client, "/register", {"phone": "13912345678", "password": "longenough",
                                            "display_name": "王阿姨", "csrf_token": "forged"})
    assert wrong.status_code == 403
    with app.app_context():
        assert db.session.scalar(sa.select(User).where(User.phone == "13912345678")) is None


def test_register_from_a_board_link_signs_in_and_returns(client, app):
    response = post_form(client, "/register", {"phone": "13912345678", "password": "longenough",
                                               "display_name": "王阿姨", "next": "/me/wishes"})
    assert response.status_code == 303 and response.headers["Location"] == "/me/wishes"
    assert client.get_cookie("xy_access") is not None
    assert "王阿姨" in text_of(client.get("/"))


@pytest.mark.parametrize(("body", "field_text"), [
    ({"phone": "12345", "password": "longenough", "display_name": "王"}, "手机号"),
    ({"phone": "13912345678", "password": "short", "display_name": "王"}, "8 到 128"),
    ({"phone": "13912345678", "password": "longenough", "display_name": ""}, "必填"),
    ({"phone": "13912345678", "password": "longenough", "display_name": "王" * 33}, "32"),
    ({"phone": "13912345678", "password": "x" * 100_000, "display_name": "王"}, "128"),
])
def test_register_bad_input_is_explained_beside_the_field(client, app, body, field_text):
    response = post_form(client, "/register", body)
    assert response.status_code in (413, 422)
    if response.status_code == 422:
        assert field_text in text_of(response)
        if body["display_name"]:
            assert body["display_name"][:32] in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_a_registered_phone_is_told_to_log_in(client, world):
    response = post_form(client, "/register", {"phone": world.resident.phone,
                                               "password": "longenough", "display_name": "重复"})
    assert response.status_code == 422
    assert "已注册" in text_of(response)


def test_logout_revokes_the_login_for_every_worker(client, app, world):
    signed_in(client, world.volunteer)
    refresh = client.get_cookie("xy_refresh").value
    response = post_form(client, "/logout")
    assert response.status_code == 303
    assert "王建国" not in text_of(client.get("/"))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TokenFamily)
                                 .where(TokenFamily.revoked_at.is_(None))) == 0
    # The old refresh token no longer works anywhere, even replayed by hand.
    client.set_cookie("xy_refresh", refresh)
    assert "王建国" not in text_of(client.get("/"))


def test_logout_needs_the_csrf_token(client, world):
    signed_in(client, world.volunteer)
    assert post_form(client, "/logout", with_csrf=False).status_code == 403
    assert "王建国" in text_of(client.get("/"))


def test_an_expired_access_cookie_is_refreshed_without_asking(make_app, world):
    app = make_app(JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=-1))  # every access token is born expired
    client = app.test_client()
    signed_in(client, world.volunteer)
    first_refresh = client.get_cookie("xy_refresh").value
    page = client.get("/")
    assert "王建国" in text_of(page)
    assert _cookie(page, "xy_refresh") is not None  # rotated
    assert client.get_cookie("xy_refresh").value != first_refresh
    # And again with the new pair: the login goes on.
    assert "王建国" in text_of(client.get("/"))


def test_no_access_cookie_but_a_refresh_cookie_still_signs_in(client, world):
    signed_in(client, world.volunteer)
    client.delete_cookie("xy_access")
    assert "王建国" in text_of(client.get("/"))


def test_the_api_never_accepts_the_page_cookies(client, world):
    signed_in(client, world.volunteer)
    assert client.get("/api/v1/me").status_code == 401
    response = client.post(f"/api/v1/communities/{world.community.id}/adjustments",
                           json={"user_id": world.volunteer.id, "amount": 5, "reason": "x"})
    assert response.status_code == 401


def test_language_link_sets_a_cookie_that_wins_over_accept_language(client):
    response = client.get("/lang/en?next=/login")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    page = client.get("/login", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in page.get_data(as_text=True)
    client.get("/lang/zh?next=/login")
    page = client.get("/login", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in page.get_data(as_text=True)
    assert "登录" in text_of(page)
    assert client.get("/lang/fr?next=https://evil.example").headers["Location"] == "/"


def test_home_shows_what_each_role_can_do(client, world):
    assert "/login" in client.get("/").get_data(as_text=True)
    signed_in(client, world.resident)
    page = client.get("/").get_data(as_text=True)
    assert "/me/wishes" in page and "/organiser/review" not in page and "/store" not in page


def test_home_for_an_organiser_lists_the_organiser_pages(client, world):
    signed_in(client, world.organiser)
    page = client.get("/").get_data(as_text=True)
    for path in ("/organiser/review", "/organiser/dispatch", "/organiser/counter",
                 "/organiser/pickup", "/organiser/boards"):
        assert path in page


def test_the_community_switcher_is_remembered(client, factory, world):
    factory.member(world.other, world.volunteer, "volunteer")
    signed_in(client, world.volunteer)
    page = client.get("/")
    assert "管园村" in text_of(page) and "芙蓉社区" in text_of(page)
    response = post_form(client, "/community", {"community_id": str(world.other.id), "next": "/"})
    assert response.status_code == 303
    assert client.get_cookie("community").value == str(world.other.id)
    assert "<h1>芙蓉社区</h1>" in client.get("/").get_data(as_text=True)
    # A community the person does not belong to is ignored.
    post_form(client, "/community", {"community_id": "999999", "next": "/"})
    assert client.get_cookie("community").value == str(world.other.id)


def test_pages_are_never_cached_by_shared_caches(client):
    assert "no-store" in client.get("/login").headers["Cache-Control"]


def test_a_refresh_token_reused_after_its_grace_logs_out(make_app, world):
    app = make_app(JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=-1), REFRESH_REUSE_GRACE_SECONDS=0)
    client = app.test_client()
    signed_in(client, world.volunteer)
    stolen = client.get_cookie("xy_refresh").value
    assert "王建国" in text_of(client.get("/"))  # rotated: `stolen` is now spent
    thief = app.test_client()
    thief.set_cookie("xy_refresh", stolen)
    assert "王建国" not in text_of(thief.get("/"))
    # Reuse detection revoked the whole login: the rightful browser must sign in again.
    assert "王建国" not in text_of(client.get("/"))
    assert csrf(client)


def test_an_unknown_address_in_a_browser_is_a_page_in_words(client):
    page = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    assert "这个地址没有对应的页面" in text_of(page)
    assert 'href="/"' in page.get_data(as_text=True)  # a way back


def test_unknown_addresses_stay_json_for_api_clients(client):
    assert client.get("/no/such/page").mimetype == "application/json"
    api = client.get("/api/v1/no-such", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.mimetype == "application/json"

