"""Driving the phone pages with the Flask test client: CSRF tokens, signing in, form posts."""

from __future__ import annotations

import re
from html import unescape

from tests.conftest import PASSWORD

CSRF_COOKIE = "xy_csrf"
_TOKEN = re.compile(r'name="(csrf_token|form_token)" value="([^"]*)"')


def csrf(client) -> str:
    """The browser's CSRF token: the cookie a page set (fetching a page first if needed)."""
    cookie = client.get_cookie(CSRF_COOKIE)
    if cookie is None:
        client.get("/login")
        cookie = client.get_cookie(CSRF_COOKIE)
    return cookie.value


def hidden(html: str, name: str) -> str | None:
    """The value of a hidden token field in a page (the first one)."""
    for field, value in _TOKEN.findall(html):
        if field == name:
            return unescape(value)
    return None


def post_form(client, url: str, data: dict | None = None, *, with_csrf: bool = True, **kwargs):
    """POST a page form as a browser would, with the CSRF token unless told not to."""
    body = dict(data or {})
    if with_csrf:
        body.setdefault("csrf_token", csrf(client))
    return client.post(url, data=body, **kwargs)


def signed_in(client, user, password: str = PASSWORD):
    """Sign `user` in through the login page; the client then holds the login cookies."""
    response = post_form(client, "/login", {"phone": user.phone, "password": password, "next": "/"})
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return client


def text_of(response) -> str:
    """The page's visible text, roughly (tags removed), for asserting on words."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def page(client, url: str, status: int = 200):
    """GET a page and check it answered `status` as HTML (the page's text on failure)."""
    response = client.get(url)
    assert response.status_code == status, (url, text_of(response)[:1500])
    assert response.mimetype == "text/html"
    return response


def html(response) -> str:
    return response.get_data(as_text=True)
