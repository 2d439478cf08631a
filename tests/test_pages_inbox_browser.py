"""The bell and the inbox in a real chromium at phone size against real gunicorn workers: the
unread badge on the pages, opening one notification, marking all read, the badge gone."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.browser import SMALL_PHONE, assert_axe_clean
from tests.wish_helpers import PASSWORD, Kit

pytestmark = [pytest.mark.browser, pytest.mark.live]


def sign_in(page, phone: str) -> None:
    page.goto("/login")
    page.get_by_label("手机号").fill(phone)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/$"))


def badge(page) -> str | None:
    """The bell's count as shown, or None when the masthead has no badge."""
    count = page.locator(".masthead .bell__count")
    return count.inner_text() if count.count() else None


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_badge_counts_unread_until_everything_is_read(app, client, factory, world,
                                                          live_server, phone_page):
    kit = Kit(app, client, factory, world)
    wid = kit.make("fulfilled", title="帮忙换灯泡")  # approved, claimed, fulfilled: 3 for her
    server = live_server(workers=2)
    page = phone_page(server.url, size=SMALL_PHONE)
    sign_in(page, kit.resident.phone)

    for path in ("/", "/me/wishes", "/store"):
        page.goto(path)
        assert badge(page) == "3", path
        assert fits_the_screen(page), path
    assert_axe_clean(page)
    bell = page.get_by_role("link", name="消息 3 条未读消息")
    assert bell.is_visible()
    assert bell.bounding_box()["height"] >= 44  # a tap target for any finger

    bell.click()
    page.wait_for_url(re.compile(r"/me/notifications$"))
    items = page.locator(".inbox__item")
    assert items.count() == 3
    assert page.locator(".inbox__item--unread").count() == 3
    assert "未读" in items.first.inner_text() and "已完成心愿“帮忙换灯泡”" in items.first.inner_text()
    assert fits_the_screen(page)
    assert min(item.bounding_box()["height"] for item in items.all()) >= 44
    assert_axe_clean(page)

    # Tapping one opens its wish and reads it: one fewer on the badge.
    items.first.get_by_role("button").click()
    page.wait_for_url(re.compile(rf"/wishes/{wid}$"))
    assert badge(page) == "2"

    page.get_by_role("link", name="消息 2 条未读消息").click()
    page.wait_for_url(re.compile(r"/me/notifications$"))
    assert page.locator(".inbox__item--unread").count() == 2
    page.get_by_role("button", name="全部标为已读").click()
    page.wait_for_url(re.compile(r"/me/notifications$"))
    assert "已把 2 条消息标为已读" in page.locator(".notice").inner_text()
    assert page.locator(".inbox__item--unread").count() == 0
    assert badge(page) is None
    assert page.get_by_role("button", name="全部标为已读").count() == 0

    page.goto("/")
    assert badge(page) is None
    assert page.get_by_role("link", name="消息", exact=True).is_visible()  # the link stays


def test_muting_by_tapping_the_boxes_keeps_the_choice(app, client, factory, world, live_server,
                                                      phone_page):
    from app.notifications.models import NotificationMute
    from tests.helpers import reading

    kit = Kit(app, client, factory, world)
    server = live_server(workers=2)
    page = phone_page(server.url, size=SMALL_PHONE)
    sign_in(page, kit.resident.phone)
    page.goto("/me/notifications")
    assert "还没有消息" in page.locator("main").inner_text()
    page.get_by_role("link", name="消息设置：选择不想收到的消息").click()
    page.wait_for_url(re.compile(r"/me/notifications/settings$"))
    boxes = page.locator(".checkboxes__label")
    assert min(box.bounding_box()["height"] for box in boxes.all()) >= 44
    page.get_by_label("心愿已认领", exact=True).check()  # tapping the label ticks the box
    page.get_by_text("积分到账", exact=True).click()
    page.get_by_role("button", name="保存设置").click()
    page.wait_for_url(re.compile(r"/me/notifications/settings$"))
    assert "已保存" in page.locator(".notice").inner_text()
    assert page.get_by_label("心愿已认领", exact=True).is_checked()
    assert page.get_by_label("积分到账", exact=True).is_checked()
    assert not page.get_by_label("心愿已通过审核", exact=True).is_checked()
    assert fits_the_screen(page)
    assert_axe_clean(page)
    with reading(app) as session:
        assert sorted(session.scalars(sa.select(NotificationMute.event_type).where(
            NotificationMute.user_id == kit.resident.id))) == ["points.awarded", "wish.claimed"]
