"""The page-test tools work: phones at 375×667 and 360×640, the off-host and console recorder,
axe-core and Lighthouse, on pages that exist today (a board's page and the API docs)."""

from __future__ import annotations

import pytest

from tests.browser import SMALL_PHONE, assert_axe_clean, axe_violations, lighthouse, screenshot

pytestmark = pytest.mark.browser

CLEAN_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>测试页</title></head><body><main><h1>心愿</h1><p>一段说明文字。</p></main></body></html>"""


@pytest.fixture
def board(client, world, org) -> dict:
    response = client.post(f"/api/v1/communities/{world.community.id}/boards", headers=org,
                           json={"name": "远创樾府", "location": "东门公示栏"})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json


def test_a_phone_opens_the_board_page(live_server, phone_page, board):
    server = live_server(workers=1)
    page = phone_page(server.url)
    # The pages are being rebuilt: their own tests check their console; this one checks the tools.
    phone_page.watch(page).check_console = False
    response = page.goto(f"/b/{board['token']}")
    assert response.status == 200
    assert "远创樾府" in page.content()
    assert page.evaluate("[innerWidth, innerHeight, devicePixelRatio]") == [375, 667, 2]
    assert page.evaluate("navigator.maxTouchPoints") > 0
    watch = phone_page.watch(page)
    assert any(url.endswith(f"/b/{board['token']}") for url in watch.requests), watch.requests
    assert watch.offsite == []
    assert isinstance(axe_violations(page), list)  # axe ran; the page tests assert 0
    assert screenshot(page, "infra-board").stat().st_size > 5_000


def test_axe_runs_on_the_api_docs(live_server, phone_page):
    server = live_server(workers=1)
    page = phone_page(server.url)
    phone_page.watch(page).check_console = False
    assert page.goto("/api/v1/docs").status == 200
    page.locator(".opblock").first.wait_for(timeout=30_000)
    violations = axe_violations(page)
    assert all({"id", "impact", "nodes"} <= set(v) for v in violations)


def test_assert_axe_clean_names_each_violation_and_passes_a_clean_page(phone_page):
    page = phone_page()
    page.set_content(CLEAN_PAGE)
    assert_axe_clean(page)

    page.set_content(CLEAN_PAGE.replace("<p>", '<img src="data:image/gif;base64,'
                                        'R0lGODlhAQABAAAAACwAAAAAAQABAAA=" id="no-alt"><p>'))
    with pytest.raises(pytest.fail.Exception) as failed:
        assert_axe_clean(page)
    message = str(failed.value)
    assert "image-alt (critical)" in message and "#no-alt" in message, message


def test_the_recorder_catches_other_hosts_csp_violations_and_errors(phone_page):
    page = phone_page()
    watch = phone_page.watch(page)
    page.set_content('<html lang="zh-CN"><body><img src="http://example.invalid/x.png" alt="x">'
                     '<script>throw new Error("坏了")</script></body></html>')
    page.wait_for_load_state("load")
    assert watch.offsite == ["http://example.invalid/x.png"]  # aborted: nothing left this machine
    assert any("坏了" in error for error in watch.page_errors), watch.page_errors

    page.set_content('<html><head><meta http-equiv="Content-Security-Policy" '
                     "content=\"script-src 'self'\"></head><body><script>1</script></body></html>")
    assert any("inline script" in text for text in watch.csp_violations), watch.csp_violations
    problems = watch.problems()
    assert [p for p in problems if p.startswith("request to another host")] and \
        [p for p in problems if p.startswith("CSP violation")], problems
    watch.clear()  # seen on purpose: the teardown check must pass
    assert watch.problems() == []


def test_a_small_phone_without_javascript(phone_page):
    page = phone_page(size=SMALL_PHONE, javascript=False)
    page.set_content('<html lang="zh-CN"><body><noscript><p id="n">请开启脚本</p></noscript>'
                     '<p id="s"></p><script>document.getElementById("s").textContent = "有脚本"'
                     "</script></body></html>")
    assert page.viewport_size == {"width": 360, "height": 640}
    assert page.locator("#n").is_visible()  # <noscript> shows only when scripts are off
    assert page.locator("#s").text_content() == ""


@pytest.mark.slow
def test_lighthouse_scores_the_board_page(live_server, board):
    server = live_server(workers=1)
    # A header goes with every request: how a page behind a login is scored (a Cookie header).
    result = lighthouse(f"{server.url}/b/{board['token']}", headers={"Cookie": "lang=zh"})
    for category in ("performance", "accessibility", "best-practices"):
        assert result[category] is None or 0 <= result[category] <= 100, result
    assert result["accessibility"] is not None and result["best-practices"] is not None, result
    assert result["bytes"] > 500, result
    print(result)  # the lead asserts the thresholds once the new templates land
