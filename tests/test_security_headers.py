"""Security headers on every response: pages, API, errors, static files, the poster, gunicorn.

Every response says nosniff, DENY framing and same-origin referrers. Pages carry the strict page
CSP (no 'unsafe-inline' anywhere); everything else carries a CSP that allows nothing, so a JSON
body or an SVG opened on its own can never run or load anything.
"""

from __future__ import annotations

import re

import pytest
import requests

from app.security import PAGE_POLICY, RESOURCE_POLICY

API = "/api/v1"
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
STRICT_PAGE_DIRECTIVES = {
    "default-src": "'self'", "script-src": "'self'", "style-src": "'self'",
    "img-src": "'self' data:", "font-src": "'self'", "connect-src": "'self'",
    "form-action": "'self'", "frame-ancestors": "'none'", "base-uri": "'none'",
    "object-src": "'none'",
}


def directives(policy: str) -> dict[str, str]:
    return dict(part.strip().partition(" ")[::2] for part in policy.split(";") if part.strip())


def assert_secured(response, page: bool, note: object = "") -> None:
    headers = response.headers
    for name, value in ALWAYS.items():
        assert headers.get(name) == value, (note, name, dict(headers))
    policy = headers.get("Content-Security-Policy")
    assert policy == (PAGE_POLICY if page else RESOURCE_POLICY), (note, policy)
    assert "unsafe" not in policy, (note, policy)
    content_type = headers.get("Content-Type", "")
    assert content_type.startswith("text/html") == page, (note, content_type)


def test_the_page_policy_is_the_strict_one():
    assert directives(PAGE_POLICY) == STRICT_PAGE_DIRECTIVES
    assert directives(RESOURCE_POLICY) == {"default-src": "'none'", "frame-ancestors": "'none'",
                                           "base-uri": "'none'"}


@pytest.fixture
def board(client, factory, world, org) -> dict:
    response = client.post(f"{API}/communities/{world.community.id}/boards", headers=org,
                           json={"name": "一号楼", "location": "东门"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# (name, method, path template, status, is a page); {token} and {bid} come from `board`.
CASES = [
    ("api json", "GET", f"{API}/wish-categories", 200, False),
    ("api json with a token", "GET", f"{API}/boards/{{bid}}", 200, False),
    ("api 401", "GET", f"{API}/me", 401, False),
    ("api 404", "GET", f"{API}/no-such-thing", 404, False),
    ("api 405", "DELETE", f"{API}/wish-categories", 405, False),
    ("api 415", "POST", f"{API}/auth/login", 415, False),
    ("api 422", "POST", f"{API}/auth/login", 422, False),
    ("openapi spec", "GET", f"{API}/openapi.json", 200, False),
    ("docs page", "GET", f"{API}/docs", 200, True),
    ("docs asset", "GET", f"{API}/docs/assets/swagger-ui.css", 200, False),
    ("docs asset missing", "GET", f"{API}/docs/assets/nothing.js", 404, False),
    ("board page", "GET", "/b/{token}", 200, True),
    ("board missing page", "GET", "/b/no-such-token", 404, True),
    ("poster (public)", "GET", "/b/{token}/poster", 200, True),
    ("poster (api)", "GET", f"{API}/boards/{{bid}}/poster", 200, True),
    ("qr png", "GET", f"{API}/boards/{{bid}}/qrcode.png", 200, False),
    ("qr svg", "GET", f"{API}/boards/{{bid}}/qrcode.svg", 200, False),
    ("static css", "GET", "/static/css/poster.css", 200, False),
    ("static js", "GET", "/static/js/swagger-init.js", 200, False),
    ("static svg", "GET", "/static/favicon.svg", 200, False),
    ("static missing", "GET", "/static/nothing.css", 404, False),
    ("favicon", "GET", "/favicon.ico", 200, False),
    ("health", "GET", "/healthz", 200, False),
]
BODIES = {"api 415": {"data": "phone=1", "content_type": "text/plain"},
          "api 422": {"json": {"phone": "not a phone"}}}


@pytest.mark.parametrize(("name", "method", "path", "status", "page"), CASES,
                         ids=[case[0] for case in CASES])
def test_every_response_is_secured(client, board, org, name, method, path, status, page):
    path = path.format(token=board["token"], bid=board["id"])
    headers = {} if name == "api 401" else org
    response = client.open(path, method=method, headers=headers, **BODIES.get(name, {}))
    assert response.status_code == status, (name, response.get_data(as_text=True)[:300])
    assert_secured(response, page, name)


def test_a_body_too_large_is_secured(client):
    raw = b'{"phone": "' + b"1" * (1024 * 1024) + b'"}'
    response = client.post(f"{API}/auth/login", data=raw, content_type="application/json")
    assert response.status_code == 413
    assert_secured(response, False)


def test_a_rate_limited_response_is_secured(make_app, world):
    client = make_app(LOGIN_RATE_LIMIT="1 per minute").test_client()
    attempt = {"phone": world.volunteer.phone, "password": "wrong password"}
    assert client.post(f"{API}/auth/login", json=attempt).status_code == 401
    response = client.post(f"{API}/auth/login", json=attempt)
    assert response.status_code == 429
    assert_secured(response, False)


def test_an_unexpected_error_is_secured(make_app):
    app = make_app()

    @app.get(f"{API}/_boom")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get(f"{API}/_boom")
    assert response.status_code == 500 and response.get_json()["error"] == "internal_error"
    assert_secured(response, False)


def test_a_view_may_set_its_own_headers(make_app):
    # The hook only fills in what is missing: a view that frames itself on purpose keeps its say.
    app = make_app()

    @app.get("/_framed")
    def framed():
        return "<p>ok</p>", 200, {"X-Frame-Options": "SAMEORIGIN"}

    response = app.test_client().get("/_framed")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Content-Security-Policy"] == PAGE_POLICY


# --- the poster needs nothing the CSP refuses ------------------------------------------------

def test_the_poster_has_no_inline_style_and_prints_on_a4(client, board):
    html = client.get(f"/b/{board['token']}/poster").get_data(as_text=True)
    assert "<style" not in html and not re.search(r"\sstyle\s*=", html), "inline style"
    assert "<script" not in html
    assert html.count("<svg") == 1  # the QR, inline, drawn by attributes only
    links = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert [link.split("?")[0] for link in links] == ["/static/css/poster.css"], links
    css = client.get(links[0])
    assert css.status_code == 200 and css.mimetype == "text/css"
    text = css.get_data(as_text=True)
    assert re.search(r"@page\s*\{\s*size:\s*A4", text)
    assert re.search(r"\.qr svg\s*\{\s*width:\s*110mm;\s*height:\s*110mm", text)  # scannable
    assert '<link rel="icon" href="/static/favicon.svg"' in html


def test_the_favicon_answers_both_addresses(client):
    icon = client.get("/favicon.ico")
    static = client.get("/static/favicon.svg")
    assert icon.mimetype == static.mimetype == "image/svg+xml"
    assert icon.get_data() == static.get_data()
    assert b"<svg" in icon.get_data() and b"<script" not in icon.get_data()


# --- real gunicorn workers ------------------------------------------------------------------

@pytest.mark.live
def test_gunicorn_serves_the_same_headers(live_server, board):
    server = live_server(workers=1)
    cases = [(f"{API}/wish-categories", 200, False), (f"{API}/no-such-thing", 404, False),
             (f"{API}/docs", 200, True), (f"/b/{board['token']}", 200, True),
             (f"/b/{board['token']}/poster", 200, True), ("/static/css/poster.css", 200, False),
             ("/favicon.ico", 200, False)]
    for path, status, page in cases:
        response = requests.get(server.url + path, timeout=30)
        assert response.status_code == status, (path, response.text[:300])
        assert_secured(response, page, path)
    refused = requests.post(f"{server.url}{API}/auth/login", data="x" * (1024 * 1024 + 10),
                            headers={"Content-Type": "application/json"}, timeout=30)
    assert refused.status_code == 413
    assert_secured(refused, False, "413 under gunicorn")
