"""The API docs at /api/v1/docs work with no internet: every asset is ours, and a real browser
renders Swagger UI without asking any other host for anything."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TITLE = "Xinyuan 心愿 API"


class AssetCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.assets: list[tuple[str, str]] = []  # (tag, url)
        self.inline_scripts = 0
        self._in_script = False
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.assets.append((tag, attrs["src"]))
            else:
                self.inline_scripts += 1
        elif tag == "link" and attrs.get("href"):
            self.assets.append((tag, attrs["href"]))
        elif tag in {"img", "iframe", "source"} and attrs.get("src"):
            self.assets.append((tag, attrs["src"]))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def test_docs_assets_are_same_origin_and_served(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert "text/html" in response.content_type
    page = AssetCollector()
    page.feed(response.get_data(as_text=True))
    assert page.title.strip() == TITLE
    scripts = [url for tag, url in page.assets if tag == "script"]
    styles = [url for tag, url in page.assets if tag == "link"]
    assert scripts and styles, page.assets
    for _tag, url in page.assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"external asset {url}"
        assert url.startswith("/"), f"relative asset {url} breaks behind a prefix"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.get_data()) > 1000, url
        if url.endswith(".js"):
            assert "javascript" in asset.content_type, (url, asset.content_type)
        if url.endswith(".css"):
            assert "text/css" in asset.content_type, (url, asset.content_type)
    # The spec the page loads is ours too.
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_docs_assets_do_not_escape_their_directory(client):
    for path in ("/api/v1/docs/assets/../../../app/config.py",
                 "/api/v1/docs/assets/%2e%2e/%2e%2e/setup.cfg",
                 "/api/v1/docs/assets/no-such-file.js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "application/json"


@pytest.mark.browser
def test_docs_render_in_chromium_without_internet(live_server, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")

    server = live_server(workers=1)
    origin = urlsplit(server.url)
    blocked: list[str] = []
    failed: list[str] = []
    console_errors: list[str] = []

    def route(route):
        parts = urlsplit(route.request.url)
        if parts.scheme in {"data", "blob"} or (parts.hostname == "127.0.0.1"
                                                and parts.port == origin.port):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN")
            context.route("**/*", route)
            page = context.new_page()
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("console", lambda message: message.type == "error"
                    and console_errors.append(message.text))
            page.goto(f"{server.url}/api/v1/docs", wait_until="load")
            page.get_by_text(TITLE).first.wait_for(timeout=30_000)
            page.get_by_text("/api/v1/auth/login", exact=True).first.wait_for(timeout=30_000)
            # Open one operation: Swagger UI renders its details from our spec.
            page.get_by_text("/api/v1/auth/login", exact=True).first.click()
            page.get_by_text("Try it out").first.wait_for(timeout=10_000)
            operations = page.locator(".opblock").count()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            browser.close()

    assert operations >= 10, operations
    assert not blocked, f"the docs page tried to reach other hosts: {blocked}"
    assert not failed, f"requests failed: {failed}"
    assert not console_errors, console_errors
    assert (tmp_path / "docs.png").stat().st_size > 10_000
