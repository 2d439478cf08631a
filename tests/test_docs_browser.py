"""The API docs at /api/v1/docs work with no internet: every asset is ours, and a real browser
renders Swagger UI without asking any other host for anything, under the pages' strict CSP (our
own page starts Swagger UI from a static script, so no inline script or style is needed)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from app.security import PAGE_POLICY

TITLE = "Xinyuan 心愿 API"
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  var text = event.violatedDirective + " blocked " + (event.blockedURI || "inline")
    + " at " + event.sourceFile + ":" + event.lineNumber + " " + (event.sample || "");
  window.__cspViolations.push(text);
  console.error("CSP violation: " + text);
});
"""


class AssetCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.assets: list[tuple[str, str]] = []  # (tag, url)
        self.inline_scripts = 0
        self.inline_styles = 0  # <style> elements and style="" attributes
        self._in_script = False
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "style" or "style" in attrs:
            self.inline_styles += 1
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
    # Nothing inline, so the strict page CSP applies to the docs as to every page.
    assert (page.inline_scripts, page.inline_styles) == (0, 0)
    assert response.headers["Content-Security-Policy"] == PAGE_POLICY
    scripts = [url for tag, url in page.assets if tag == "script"]
    styles = [url for tag, url in page.assets if tag == "link"]
    assert scripts and styles, page.assets
    for _tag, url in page.assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"external asset {url}"
        assert url.startswith("/"), f"relative asset {url} breaks behind a prefix"
        asset = client.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".js"):
            assert "javascript" in asset.content_type, (url, asset.content_type)
            assert len(asset.get_data()) > 200, url
        elif url.endswith(".css"):
            assert "text/css" in asset.content_type, (url, asset.content_type)
            assert len(asset.get_data()) > 1000, url
        else:
            assert url.endswith(".svg") and asset.mimetype == "image/svg+xml", url
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
def test_docs_render_in_chromium_without_internet(live_server, chromium, tmp_path):
    server = live_server(workers=1)
    origin = urlsplit(server.url)
    blocked: list[str] = []
    failed: list[str] = []
    console_errors: list[str] = []
    documents: list = []

    def route(route):
        parts = urlsplit(route.request.url)
        if parts.scheme in {"data", "blob"} or (parts.hostname == "127.0.0.1"
                                                and parts.port == origin.port):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context = chromium.new_context(locale="zh-CN")
    try:
        context.route("**/*", route)
        # Chromium reports a CSP refusal to the page as an event, not through the console
        # API Playwright listens to: record every one (an init script runs before the page's
        # own and is not subject to its CSP).
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("console", lambda message: message.type == "error"
                and console_errors.append(message.text))
        page.on("response", lambda response: response.request.resource_type == "document"
                and documents.append(response))
        page.goto(f"{server.url}/api/v1/docs", wait_until="load")
        page.get_by_text(TITLE).first.wait_for(timeout=30_000)
        page.get_by_text("/api/v1/auth/login", exact=True).first.wait_for(timeout=30_000)
        # Open one operation: Swagger UI renders its details from our spec.
        page.get_by_text("/api/v1/auth/login", exact=True).first.click()
        page.get_by_text("Try it out").first.wait_for(timeout=10_000)
        operations = page.locator(".opblock").count()
        # Run a public operation: Swagger UI fetches it and renders the highlighted answer
        # (the runtime styling a strict style-src could refuse), then expand a schema.
        page.get_by_text("/api/v1/wish-categories", exact=True).first.click()
        block = page.locator(".opblock", has_text="/api/v1/wish-categories").first
        block.get_by_text("Try it out").click()
        block.get_by_text("Execute").click()
        answer = block.locator(".live-responses-table .highlight-code").first
        answer.wait_for(timeout=10_000)
        answered = answer.inner_text()
        schema = page.locator("section.models .model-container").first
        schema.locator(".model-box-control").first.click()  # expand one schema
        schema.locator(".model .property-row").first.wait_for(timeout=10_000)
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        violations = page.evaluate("window.__cspViolations")
        policy = documents[0].header_value("content-security-policy")
    finally:
        context.close()

    assert operations >= 10, operations
    assert "跑腿代购" in answered, answered
    assert not blocked, f"the docs page tried to reach other hosts: {blocked}"
    assert not failed, f"requests failed: {failed}"
    assert not console_errors, console_errors
    assert policy == PAGE_POLICY, policy
    assert violations == [], violations
    assert (tmp_path / "docs.png").stat().st_size > 10_000
