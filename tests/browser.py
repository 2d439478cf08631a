"""Helpers for the page tests: Debian's chromium through Playwright, axe-core, Lighthouse, screenshots.

The fixtures that use them (`chromium`, `phone_page`) are in conftest.py. Where chromium (or
Lighthouse) is missing the tests skip with the reason; `XINYUAN_REQUIRE_BROWSER=1` (set by .ci/run)
turns that skip into a failure, as XINYUAN_REQUIRE_POSTGRES does for PostgreSQL.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# Never `playwright install`: Debian's chromium, with nothing that calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
SCREENSHOTS = ROOT / "tests" / "screenshots"  # git-ignored
REQUIRE_BROWSER = os.environ.get("XINYUAN_REQUIRE_BROWSER") == "1"

# Chromium also logs CSP refusals to the console; the event is the page's own account of them
# (an init script runs before the page's scripts and is not subject to its CSP).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " blocked "
    + (event.blockedURI || "inline") + " at " + event.sourceFile + ":" + event.lineNumber);
});
"""

PHONE = (375, 667)
SMALL_PHONE = (360, 640)
LIGHTHOUSE_CATEGORIES = ("performance", "accessibility", "best-practices")


def unavailable(reason: str):
    """Skip with the reason, or fail when CI requires the browser tests to run."""
    if REQUIRE_BROWSER:
        pytest.fail(f"XINYUAN_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_session():
    """Start Playwright and Debian's chromium; yield the browser (a generator for a fixture)."""
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


# --- one phone: a browser context that records what its pages did ---------------------------

def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Watch:
    """Everything one phone context did: requests, requests to other hosts (aborted, never sent),
    console errors, CSP violations and uncaught page errors.

    Set `check_console = False` for a test that expects console errors; `clear()` forgets what
    was recorded so far (after a test has checked it on purpose).
    """

    def __init__(self, base_url: str | None):
        self.origin = None
        if base_url:
            parts = urlsplit(base_url)
            self.origin = (parts.scheme, parts.hostname, parts.port)
        self.check_console = True
        self.requests: list[str] = []
        self.offsite: list[str] = []
        self.console_errors: list[str] = []
        self.csp_violations: list[str] = []
        self.page_errors: list[str] = []

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in {"data", "blob", "about"}:
            return True
        if self.origin is not None:
            return (parts.scheme, parts.hostname, parts.port) == self.origin
        return parts.scheme in {"http", "https"} and _is_loopback(parts.hostname)

    def route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        if self.allowed(url):
            route.continue_()
        else:
            self.offsite.append(url)
            route.abort()

    def console(self, message) -> None:
        text = message.text
        where = message.location.get("url", "") if message.location else ""
        if "Content Security Policy" in text or text.startswith("CSP violation:"):
            self.csp_violations.append(f"{text} ({where})" if where else text)
        elif message.type == "error":
            self.console_errors.append(f"{text} ({where})" if where else text)

    def web_error(self, error) -> None:
        self.page_errors.append(str(error.error))

    def clear(self) -> None:
        for found in (self.offsite, self.console_errors, self.csp_violations, self.page_errors):
            found.clear()

    def problems(self) -> list[str]:
        found = [f"request to another host: {url}" for url in self.offsite]
        found += [f"CSP violation: {text}" for text in self.csp_violations]
        if self.check_console:
            found += [f"console error: {text}" for text in self.console_errors]
            found += [f"uncaught error: {text}" for text in self.page_errors]
        return found


class PhonePages:
    """The `phone_page` fixture: `phone_page(server.url)` opens a new phone (a fresh context,
    so no cookies) and returns its page; `phone_page.watch(page)` is what it recorded."""

    def __init__(self, browser):
        self.browser = browser
        self.opened: list[tuple[object, Watch]] = []

    def __call__(self, base_url: str | None = None, *, size: tuple[int, int] = PHONE,
                 javascript: bool = True, locale: str = "zh-CN"):
        """A page on a new phone; only `base_url`'s host and port may be asked for anything
        (only loopback addresses without one)."""
        width, height = size
        context = self.browser.new_context(
            viewport={"width": width, "height": height}, screen={"width": width, "height": height},
            device_scale_factor=2, is_mobile=True, has_touch=True, locale=locale,
            timezone_id="Asia/Shanghai", java_script_enabled=javascript, base_url=base_url)
        watch = Watch(base_url)
        context.route("**/*", watch.route)
        context.add_init_script(CSP_LISTENER)
        context.on("console", watch.console)
        context.on("weberror", watch.web_error)
        page = context.new_page()
        self.opened.append((page, watch))
        return page

    def watch(self, page) -> Watch:
        for opened, watch in self.opened:
            if opened is page:
                return watch
        raise LookupError("this page was not opened by phone_page")

    def close(self) -> list[str]:
        """Close every phone and return what went wrong on them."""
        problems = []
        for page, watch in self.opened:
            page.context.close()
            problems += watch.problems()
        self.opened.clear()
        return problems


# --- axe-core ------------------------------------------------------------------------------

def axe_violations(page, context=None) -> list[dict]:
    """Run axe-core (injected by axe-playwright-python) in the page; its violations."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        unavailable("axe-playwright-python is not installed (pip install -e '.[test]')")
    return Axe().run(page, context=context).response["violations"]


def format_violations(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation.get('impact')}): {violation['help']}")
        for node in violation["nodes"][:10]:
            lines.append(f"    {', '.join(str(t) for t in node['target'])}")
        if len(violation["nodes"]) > 10:
            lines.append(f"    … and {len(violation['nodes']) - 10} more")
    return "\n".join(lines)


def assert_axe_clean(page, context=None) -> None:
    """Fail with a readable list (rule, impact, the elements) if axe finds any violation."""
    violations = axe_violations(page, context)
    if violations:
        pytest.fail(f"axe found {len(violations)} violation(s) on {page.url}:\n"
                    + format_violations(violations), pytrace=False)


# --- Lighthouse ----------------------------------------------------------------------------

def cookie_header(context, url: str) -> dict:
    """The Cookie header a logged-in Playwright context sends to `url`, for `lighthouse(headers=)`."""
    cookies = context.cookies(url)
    return {"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in cookies)} if cookies else {}


def lighthouse(url: str, *, headers: dict | None = None, timeout: float = 180) -> dict:
    """Run Lighthouse 12 (npm, mobile profile) in Debian's chromium on one page.

    Returns the scores as 0–100 integers under "performance", "accessibility" and
    "best-practices", the page's total transfer in "bytes", the URL it ended on in "final_url"
    (after redirects), and "failing": the audits that cost
    accessibility or best-practices points (to say why a score is low). `headers` (e.g.
    `cookie_header(...)`) are sent with every request, for pages behind a login.
    """
    if not LIGHTHOUSE.exists():
        unavailable(f"{LIGHTHOUSE.relative_to(ROOT)} is missing (npm ci)")
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="lighthouse-") as tmp:
        report_path = Path(tmp) / "report.json"
        command = [
            str(LIGHTHOUSE), url,
            "--chrome-flags=--headless=new " + " ".join(CHROMIUM_ARGS),
            "--output=json", f"--output-path={report_path}",
            f"--only-categories={','.join(LIGHTHOUSE_CATEGORIES)}",
            "--form-factor=mobile", "--quiet",
        ]
        if headers:
            command.append(f"--extra-headers={json.dumps(headers)}")
        # TMPDIR: chrome-launcher's profile goes in our temporary directory and leaves with it.
        env = {**os.environ, "CHROME_PATH": CHROMIUM, "TMPDIR": tmp}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=ROOT)
        if done.returncode != 0 or not report_path.exists():
            raise AssertionError(f"lighthouse {url} exited {done.returncode}:\n"
                                 f"{done.stderr[-3000:]}")
        report = json.loads(report_path.read_text())
    if report.get("runtimeError"):
        error = report["runtimeError"]
        raise AssertionError(f"lighthouse could not score {url}: {error.get('code')} "
                             f"{error.get('message')}")
    result = {name: _score(report["categories"][name]) for name in LIGHTHOUSE_CATEGORIES}
    result["bytes"] = int(report["audits"]["total-byte-weight"]["numericValue"])
    # Where it ended up: a page behind a login whose cookies did not work scores /login instead.
    result["final_url"] = report.get("finalDisplayedUrl") or report.get("finalUrl")
    result["failing"] = sorted({
        ref["id"] for name in ("accessibility", "best-practices")
        for ref in report["categories"][name]["auditRefs"]
        if ref.get("weight") and (report["audits"][ref["id"]].get("score") is not None)
        and report["audits"][ref["id"]]["score"] < 1})
    return result


def _score(category: dict) -> int | None:
    return None if category.get("score") is None else round(category["score"] * 100)


# --- screenshots ---------------------------------------------------------------------------

def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of the page as tests/screenshots/<name>.png (git-ignored) and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^\w.-]+", "-", name).strip("-") + ".png")
    page.screenshot(path=str(path), full_page=full_page)
    return path
