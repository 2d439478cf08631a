"""`/reset`: a person who forgot the password sets a new one with the code an organiser gave."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.db import utcnow
from tests.conftest import PASSWORD
from tests.helpers import reading
from tests.pages_helpers import post_form, signed_in, text_of
from tests.wish_helpers import writing

NEW_PASSWORD = "新的密码 2024 春"


def issue_code(app, organiser, member) -> str:
    """The organiser issues a code on the members page, as they would."""
    browser = signed_in(app.test_client(), organiser)
    response = post_form(browser, f"/organiser/members/{member.id}/reset-code", {})
    assert response.status_code == 200, text_of(response)[:1000]
    found = re.search(r'class="code code--big">(\d{4}) (\d{4})<', response.get_data(as_text=True))
    return found.group(1) + found.group(2)


def can_log_in(app, user, password: str) -> bool:
    response = post_form(app.test_client(), "/login",
                         {"phone": user.phone, "password": password, "next": "/"})
    return response.status_code == 303


def password_hash(app, user) -> str:
    from app.auth.models import User

    with reading(app) as session:
        return session.scalar(sa.select(User.password_hash).where(User.id == user.id))


def test_the_reset_page_is_public_and_linked_from_login(client):
    page = client.get("/reset")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for name in ("phone", "code", "password"):
        assert f'name="{name}"' in html and f'for="f-{name}"' in html
    assert 'href="/reset"' in client.get("/login").get_data(as_text=True)


def test_a_code_from_the_organiser_sets_a_new_password(app, client, world):
    code = issue_code(app, world.organiser, world.volunteer)
    signed_in_elsewhere = signed_in(app.test_client(), world.volunteer)
    spaced = f"{code[:4]} {code[4:]}"  # as the page shows it
    response = post_form(client, "/reset", {"phone": world.volunteer.phone, "code": spaced,
                                            "password": NEW_PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert "新密码已设置好，请用新密码登录" in text_of(client.get("/login"))
    assert can_log_in(app, world.volunteer, NEW_PASSWORD)
    assert not can_log_in(app, world.volunteer, PASSWORD)
    # every login of the person ended (the old browser is signed out)
    assert signed_in_elsewhere.get("/organiser/review").status_code == 303  # to /login
    # the code works once
    again = post_form(client, "/reset", {"phone": world.volunteer.phone, "code": code,
                                         "password": "another password 9"})
    assert again.status_code == 422
    assert can_log_in(app, world.volunteer, NEW_PASSWORD)


@pytest.mark.parametrize("case", ["wrong", "expired", "other_phone"])
def test_a_wrong_or_expired_code_shows_the_form_again_in_words(app, client, world, case):
    from app.auth.models import PasswordReset

    code = issue_code(app, world.organiser, world.volunteer)
    phone = world.volunteer.phone
    if case == "wrong":
        code = f"{(int(code) + 1) % 10**8:08d}"
    elif case == "expired":
        with writing(app) as session:
            session.execute(sa.update(PasswordReset).values(expires_at=utcnow() - timedelta(minutes=1)))
    else:
        phone = world.resident.phone
    before = password_hash(app, world.volunteer), password_hash(app, world.resident)
    response = post_form(client, "/reset", {"phone": phone, "code": code, "password": NEW_PASSWORD})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(r'id="f-code-error">(.*?)</p>', html, re.S)
    assert error and "请联系社区工作人员重新获取重置码" in error.group(1)
    assert 'href="#f-code"' in html  # the summary at the top links to the field
    assert f'value="{phone}"' in html  # the phone typed is kept
    assert NEW_PASSWORD not in html and re.search(r'<input[^>]*name="password"[^>]*>', html)
    assert 'value="' not in re.search(r'<input[^>]*name="password"[^>]*>', html).group(0)
    assert (password_hash(app, world.volunteer), password_hash(app, world.resident)) == before


@pytest.mark.parametrize("body, field", [
    ({"phone": "123"}, "phone"),
    ({"code": "12ab"}, "code"),
    ({"code": ""}, "code"),
    ({"password": "short"}, "password"),
    ({"password": ""}, "password"),
])
def test_bad_input_is_422_beside_the_field_and_changes_nothing(app, client, world, body, field):
    code = issue_code(app, world.organiser, world.volunteer)
    before = password_hash(app, world.volunteer)
    form = {"phone": world.volunteer.phone, "code": code, "password": NEW_PASSWORD, **body}
    response = post_form(client, "/reset", form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(rf'id="f-{field}-error">.+?</p>', html, re.S), html[:3000]
    if field != "phone":
        assert f'value="{world.volunteer.phone}"' in html
    assert password_hash(app, world.volunteer) == before
    # the code was not spent by the refused form
    fixed = post_form(client, "/reset", {"phone": world.volunteer.phone, "code": code,
                                         "password": NEW_PASSWORD})
    assert fixed.status_code == 303


def test_reset_without_the_csrf_token_is_refused(app, client, world):
    code = issue_code(app, world.organiser, world.volunteer)
    before = password_hash(app, world.volunteer)
    response = post_form(client, "/reset", {"phone": world.volunteer.phone, "code": code,
                                            "password": NEW_PASSWORD}, with_csrf=False)
    assert response.status_code == 403
    assert "这次提交没有生效" in text_of(response)
    assert password_hash(app, world.volunteer) == before


def test_reset_is_rate_limited_like_login(make_app, factory):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    user = factory.user("王建国")
    client = app.test_client()
    answers = [post_form(client, "/reset", {"phone": user.phone, "code": "12345678",
                                            "password": NEW_PASSWORD}).status_code
               for _ in range(4)]
    assert answers == [422, 422, 422, 429]
    response = post_form(client, "/reset", {"phone": user.phone, "code": "12345678",
                                            "password": NEW_PASSWORD})
    assert response.status_code == 429 and response.mimetype == "text/html"
    assert "请稍等片刻再试" in text_of(response)
    assert client.get("/reset").status_code == 200  # looking is not limited
