"""消息 through HTTP: the inbox page, opening one, marking all read, what to mute, and the bell on
every phone page — notifications made by real actions (a wish posted, approved, claimed), read by
the person they are for and by nobody else."""

from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa
from flask import g, render_template

from tests.helpers import reading
from tests.pages_helpers import hidden, page, post_form, signed_in, text_of
from tests.wish_helpers import Kit

INBOX = "/me/notifications"
SETTINGS = "/me/notifications/settings"


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


@pytest.fixture
def browser(app):
    """A signed-in phone per person: `browser(user)` (one client each, cookies kept)."""
    clients: dict[int, object] = {}

    def open_for(user):
        if user.id not in clients:
            clients[user.id] = signed_in(app.test_client(), user)
        return clients[user.id]

    return open_for


def notes(app, user) -> list[dict]:
    """The person's stored notifications, newest first: id, type, read, subject."""
    from app.notifications.models import Event, Notification

    with reading(app) as session:
        rows = session.execute(
            sa.select(Notification.id, Event.type, Notification.read_at, Event.subject_id)
            .join(Event, Event.id == Notification.event_id)
            .where(Notification.user_id == user.id).order_by(Notification.id.desc())).all()
        return [{"id": i, "type": t, "read": r is not None, "subject": s} for i, t, r, s in rows]


def mutes(app, user) -> list[str]:
    from app.notifications.models import NotificationMute

    with reading(app) as session:
        return sorted(session.scalars(sa.select(NotificationMute.event_type)
                                      .where(NotificationMute.user_id == user.id)))


def inbox_html(client, **kwargs) -> str:
    response = client.get(INBOX, **kwargs)
    assert response.status_code == 200, text_of(response)[:2000]
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert html.count("<h1") == 1 and "Traceback" not in html
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    return html


def items(html: str) -> list[str]:
    """The inbox's items as text, in page order."""
    found = re.findall(r'<li class="list__item inbox__item[^"]*">(.*?)</li>', html, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip() for item in found]


def unread_items(html: str) -> int:
    return len(re.findall(r'class="list__item inbox__item inbox__item--unread"', html))


def open_form_of(html: str, nid: int) -> str:
    found = re.search(rf'<form class="inbox__form" method="post" action="/me/notifications/{nid}/open">'
                      r".*?</form>", html, re.S)
    assert found, f"no form to open notification {nid}"
    return hidden(found.group(0), "csrf_token")


def words(html: str) -> str:
    """The visible text of a page's markup, roughly (as tests.pages_helpers.text_of)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def bell(html: str) -> str | None:
    """The masthead bell's markup, or None when there is none."""
    found = re.search(r'<a class="masthead__link bell[^"]*"[^>]*>.*?</a>', html, re.S)
    return found.group(0) if found else None


# --- who may look -------------------------------------------------------------------------

@pytest.mark.parametrize("path", [INBOX, SETTINGS, f"{INBOX}?after=5"])
def test_a_visitor_is_sent_to_log_in_and_back(client, path):
    answer = client.get(path)
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/login?next=/me/notifications")


@pytest.mark.parametrize("path", [f"{INBOX}/read", f"{INBOX}/1/open", SETTINGS])
def test_a_visitor_posting_changes_nothing_and_is_sent_to_log_in(client, path):
    answer = post_form(client, path, {"muted": "wish.claimed"})
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/login?next=")


# --- the inbox -------------------------------------------------------------------------------

def test_the_inbox_lists_what_happened_newest_first_unread_marked_in_words(kit, app, browser):
    from app.web import local_time

    kit.make("claimed", title="帮忙换灯泡")
    stored = notes(app, kit.resident)
    assert [n["type"] for n in stored] == ["wish.claimed", "wish.approved"]
    html = inbox_html(browser(kit.resident))
    listed = items(html)
    assert len(listed) == 2
    assert "心愿已认领" in listed[0] and "王建国 认领了心愿“帮忙换灯泡”。" in listed[0]
    assert "心愿已通过审核" in listed[1] and "心愿“帮忙换灯泡”已通过审核，正在等志愿者认领。" in listed[1]
    assert all(item.startswith("未读") for item in listed)  # in words, not by colour alone
    assert unread_items(html) == 2
    assert "2 条未读" in text_of(browser(kit.resident).get(INBOX))
    with reading(app) as session:
        from app.notifications.models import Notification

        moment = session.get(Notification, stored[0]["id"]).created_at
    assert local_time(moment) in listed[0]  # Asia/Shanghai wall-clock time
    for note in stored:
        assert f'action="/me/notifications/{note["id"]}/open"' in html
    # The organiser heard of the new wish; the resident never hears of their own posting.
    assert [n["type"] for n in notes(app, kit.organiser)] == ["wish.claimed", "wish.posted"]


def test_an_empty_inbox_says_so_in_words(kit, browser):
    html = inbox_html(browser(kit.volunteer2))
    assert "还没有消息" in words(html)
    assert items(html) == []
    assert "全部标为已读" not in html  # nothing to mark


@pytest.mark.parametrize("how", ["cookie", "accept-language"])
def test_the_inbox_speaks_english_when_asked(kit, app, how):
    kit.make("claimed", title="Fix the lamp")
    client = signed_in(app.test_client(), kit.resident)
    if how == "cookie":
        client.set_cookie("lang", "en")
        html = inbox_html(client)
    else:
        html = inbox_html(client, headers={"Accept-Language": "en"})
    assert '<html lang="en">' in html
    listed = items(html)
    assert len(listed) == 2 and all("Fix the lamp" in item for item in listed)
    # The lines are rendered now, in the reader's language: no Chinese text of them is left.
    assert not any(re.search(r"[\u4e00-\u9fff]", item.replace("王建国", "")) for item in listed), listed
    assert "Mark all as read" in html


def test_mark_all_read_clears_the_count(kit, app, browser):
    kit.make("claimed")
    phone = browser(kit.resident)
    html = inbox_html(phone)
    answer = post_form(phone, f"{INBOX}/read", {"csrf_token": hidden(html, "csrf_token")})
    assert answer.status_code == 303 and answer.headers["Location"] == INBOX
    assert all(n["read"] for n in notes(app, kit.resident))
    after = phone.get(INBOX)
    words = text_of(after)
    assert "已把 2 条消息标为已读" in words and "没有未读的消息" in words
    assert unread_items(after.get_data(as_text=True)) == 0
    assert len(items(after.get_data(as_text=True))) == 2  # still listed, as read
    # The API agrees: the same count, now 0.
    body = kit.ok(kit.get("/me/notifications", kit.resident))
    assert body["unread_count"] == 0


def test_mark_all_read_without_the_pages_token_changes_nothing(kit, app, browser):
    kit.make("claimed")
    answer = post_form(browser(kit.resident), f"{INBOX}/read", with_csrf=False)
    assert answer.status_code == 403 and "没有生效" in text_of(answer)
    assert not any(n["read"] for n in notes(app, kit.resident))


def test_marking_all_read_touches_only_my_own(kit, app, browser):
    kit.make("open")
    kit.make("open", owner=kit.volunteer2)
    phone = browser(kit.resident)
    post_form(phone, f"{INBOX}/read")
    assert all(n["read"] for n in notes(app, kit.resident))
    assert not any(n["read"] for n in notes(app, kit.volunteer2))


def test_opening_one_marks_it_read_and_goes_to_its_page(kit, app, browser):
    wid = kit.make("claimed")
    claimed, _approved = notes(app, kit.resident)
    phone = browser(kit.resident)
    token = open_form_of(inbox_html(phone), claimed["id"])
    answer = post_form(phone, f"{INBOX}/{claimed['id']}/open", {"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/wishes/{wid}"
    assert [n["read"] for n in notes(app, kit.resident)] == [True, False]
    assert page(phone, answer.headers["Location"])  # the wish's page opens for its owner
    html = inbox_html(phone)
    assert unread_items(html) == 1 and "1 条未读" in words(html)
    # Opening it again still goes there (already read: nothing more changes).
    again = post_form(phone, f"{INBOX}/{claimed['id']}/open")
    assert again.status_code == 303 and again.headers["Location"] == f"/wishes/{wid}"


def test_an_organisers_notification_opens_the_review_queue(kit, app, browser):
    kit.post_wish(kit.resident, title="需要审核的心愿")
    (posted,) = notes(app, kit.organiser)
    answer = post_form(browser(kit.organiser), f"{INBOX}/{posted['id']}/open")
    assert answer.status_code == 303 and answer.headers["Location"] == "/organiser/review"


def test_nobody_else_can_open_or_see_my_notification(kit, app, browser, world):
    kit.make("claimed", title="只给王女士看")
    mine = notes(app, kit.resident)
    for other in (kit.volunteer2, kit.organiser, world.other_organiser, world.outsider):
        phone = browser(other)
        assert "只给王女士看" not in inbox_html(phone) or other is kit.organiser
        for note in mine:
            answer = post_form(phone, f"{INBOX}/{note['id']}/open")
            assert answer.status_code == 404, (other.display_name, answer.headers)
            assert "找不到这条消息" in text_of(answer)
            assert "Location" not in answer.headers
    # The volunteer who claimed is not told of the claim either: it was their own act.
    assert [n["type"] for n in notes(app, kit.volunteer)] == []
    assert not any(n["read"] for n in notes(app, kit.resident))


def test_the_organiser_sees_only_their_own_lines(kit, app, browser):
    kit.make("claimed", title="大家都知道的心愿")
    html = inbox_html(browser(kit.organiser))
    listed = items(html)
    # wish.posted and wish.claimed reach organisers; wish.approved (their own act) does not.
    assert len(listed) == 2
    assert "新心愿待审核" in listed[1] and "王建国 认领了心愿" in listed[0]


def test_a_notification_that_does_not_exist_is_404(kit, browser):
    answer = post_form(browser(kit.resident), f"{INBOX}/999999/open")
    assert answer.status_code == 404 and "找不到这条消息" in text_of(answer)


def test_more_continues_after_the_last_one_shown(kit, app, browser):
    for n in range(22):
        kit.make("open", title=f"心愿第{n:02d}号")
    stored = notes(app, kit.resident)
    assert len(stored) == 22
    phone = browser(kit.resident)
    first = inbox_html(phone)
    assert len(items(first)) == 20
    assert "心愿第21号" in items(first)[0] and "心愿第02号" in items(first)[-1]
    more = re.search(r'<a class="button button--secondary pager__link" href="([^"]+)" rel="next">更多</a>',
                     first)
    assert more, first
    assert more.group(1) == f"{INBOX}?after={stored[19]['id']}"
    second = inbox_html(phone, query_string={"after": stored[19]["id"]})
    assert [item.split("心愿第")[1][:2] for item in items(second)] == ["01", "00"]
    assert 'rel="next"' not in second and "回到最新" in second
    beyond = inbox_html(phone, query_string={"after": stored[-1]["id"]})
    assert items(beyond) == [] and "没有更早的消息了" in words(beyond)


@pytest.mark.parametrize("after", ["abc", "-1", "0", "1.5", "99999999999999999999"])
def test_a_bad_paging_position_is_refused_in_words(kit, browser, after):
    answer = browser(kit.resident).get(INBOX, query_string={"after": after})
    assert answer.status_code == 422
    assert "翻页位置不对" in text_of(answer)


# --- settings ---------------------------------------------------------------------------------

def settings_html(client) -> str:
    response = client.get(SETTINGS)
    assert response.status_code == 200, text_of(response)[:2000]
    return response.get_data(as_text=True)


def checked(html: str) -> list[str]:
    return re.findall(r'name="muted" value="([^"]+)" id="[^"]+" checked', html)


def test_settings_offer_every_event_type_by_its_label(kit, browser):
    from app.notifications.catalogue import EVENT_TYPES

    html = settings_html(browser(kit.resident))
    offered = re.findall(r'type="checkbox" name="muted" value="([^"]+)"', html)
    assert offered == list(EVENT_TYPES)
    for box_id in re.findall(r'type="checkbox" name="muted" value="[^"]+" id="([^"]+)"', html):
        assert f'<label class="checkboxes__label" for="{box_id}">' in html  # each labelled
    assert "心愿已认领" in words(html) and checked(html) == []


def test_muting_a_type_stops_new_ones_and_is_kept(kit, app, browser):
    phone = browser(kit.resident)
    token = hidden(settings_html(phone), "csrf_token")
    answer = phone.post(SETTINGS, data={"csrf_token": token,
                                        "muted": ["wish.claimed", "points.awarded"]})
    assert answer.status_code == 303 and answer.headers["Location"] == SETTINGS
    assert mutes(app, kit.resident) == ["points.awarded", "wish.claimed"]
    shown = phone.get(SETTINGS)
    assert "已保存" in text_of(shown)
    assert sorted(checked(shown.get_data(as_text=True))) == ["points.awarded", "wish.claimed"]
    kit.make("claimed", title="静音之后")
    assert [n["type"] for n in notes(app, kit.resident)] == ["wish.approved"]
    listed = items(inbox_html(phone))
    assert len(listed) == 1 and "已通过审核" in listed[0]
    # Unticking everything brings them back.
    answer = post_form(phone, SETTINGS, {})
    assert answer.status_code == 303 and mutes(app, kit.resident) == []
    assert "所有类型的消息都会放进您的消息箱" in text_of(phone.get(SETTINGS))
    kit.make("claimed", title="恢复之后")
    assert [n["type"] for n in notes(app, kit.resident)][:2] == ["wish.claimed", "wish.approved"]


def test_my_mutes_are_mine_only(kit, app, browser):
    post_form(browser(kit.resident), SETTINGS, {"muted": "wish.approved"})
    kit.make("open", owner=kit.volunteer2)
    assert [n["type"] for n in notes(app, kit.volunteer2)] == ["wish.approved"]
    assert checked(settings_html(browser(kit.volunteer2))) == []


@pytest.mark.parametrize("muted", [["no.such.type"], ["wish.claimed", "wish.claimed'><script>"],
                                   ["WISH.CLAIMED"], [""]])
def test_an_unknown_type_is_refused_in_words_and_changes_nothing(kit, app, browser, muted):
    phone = browser(kit.resident)
    post_form(phone, SETTINGS, {"muted": "points.awarded"})
    assert mutes(app, kit.resident) == ["points.awarded"]
    token = hidden(settings_html(phone), "csrf_token")
    answer = phone.post(SETTINGS, data={"csrf_token": token, "muted": muted})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "<script>" not in html.split("</header>", 1)[1].replace("<script src", "")
    words = text_of(answer)
    assert "保存没有成功" in words and "原来的设置没有改变" in words
    assert mutes(app, kit.resident) == ["points.awarded"]
    assert checked(html) == ["points.awarded"]  # the form shows what is really saved


def test_settings_without_the_pages_token_change_nothing(kit, app, browser):
    answer = post_form(browser(kit.resident), SETTINGS, {"muted": "wish.claimed"}, with_csrf=False)
    assert answer.status_code == 403
    assert mutes(app, kit.resident) == []


# --- the bell -------------------------------------------------------------------------------

BELL_PAGES = ["/", "/me/wishes", "/store", "/store/redemptions", "/me/reports", SETTINGS]


def test_the_bell_shows_the_unread_count_on_every_page(kit, app, browser):
    wid = kit.make("fulfilled")
    assert len(notes(app, kit.resident)) == 3  # approved, claimed, fulfilled
    phone = browser(kit.resident)
    for path in [*BELL_PAGES, f"/wishes/{wid}"]:
        html = page(phone, path).get_data(as_text=True)
        found = bell(html)
        assert found, (path, "no bell in the masthead")
        assert 'href="/me/notifications"' in found
        assert '<span class="bell__count" aria-hidden="true">3</span>' in found, (path, found)
        assert "3 条未读消息" in found
    # After reading them all, no badge anywhere (the link stays).
    post_form(phone, f"{INBOX}/read")
    for path in BELL_PAGES:
        found = bell(page(phone, path).get_data(as_text=True))
        assert found and "bell__count" not in found and "未读" not in found, (path, found)


def test_the_bell_counts_only_my_own(kit, app, browser):
    kit.make("claimed")
    found = bell(page(browser(kit.volunteer2), "/").get_data(as_text=True))
    assert found and "bell__count" not in found


def test_a_visitor_has_no_bell(client):
    for path in ("/", "/login"):
        html = page(client, path).get_data(as_text=True)
        assert bell(html) is None and "/me/notifications" not in html


def test_the_bell_marks_the_inbox_as_the_current_page(kit, browser):
    found = bell(inbox_html(browser(kit.resident)))
    assert found and 'aria-current="page"' in found
    assert 'aria-current' not in bell(page(browser(kit.resident), "/").get_data(as_text=True))


@pytest.mark.parametrize(("count", "shown"), [(0, None), (1, "1"), (99, "99"), (100, "99+"),
                                              (5000, "99+")])
def test_the_bell_partial_caps_its_badge(app, count, shown):
    with app.test_request_context("/"):
        g.unread_notifications = count  # what the request counted
        html = render_template("components/bell.html")
    if shown is None:
        assert "bell__count" not in html and "未读" not in html
    else:
        assert f'<span class="bell__count" aria-hidden="true">{shown}</span>' in html
        assert f"{shown} 条未读消息" in html
