"""我的心愿 and a wish's page, through HTTP: who sees what (contact details only after claiming),
the timeline in words, and every action as a page form — happy paths, who may not, bad input
kept in the form, refusals in words, CSRF, one confirmation per form token."""

from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa

from tests.helpers import reading
from tests.pages_helpers import hidden, post_form, signed_in, text_of
from tests.wish_helpers import Kit, award_transfers, counts, set_wish_columns, wish_row, wish_state

PHONE, ADDRESS = "13812345678", "远创樾府 3 栋 502 室"


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


def page(response, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:3000]
    assert response.mimetype == "text/html", response.headers
    html = response.get_data(as_text=True)
    assert "Traceback" not in html and '"error":' not in html
    assert html.count("<h1") == 1
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    return html


def action_form(html: str, action: str) -> dict | None:
    """The hidden fields of the form posting `action` on the page, or None if not offered."""
    found = re.search(rf'<form method="post" action="/wishes/\d+/{action}".*?</form>', html, re.S)
    if not found:
        return None
    return {"form_token": hidden(found.group(0), "form_token"),
            "next": re.search(r'name="next" value="([^"]*)"', found.group(0)).group(1)}


def offered(html: str) -> set[str]:
    return set(re.findall(r'<form method="post" action="/wishes/\d+/(\w+)"', html))


def act(client, wid: int, action: str, data: dict | None = None, **kwargs):
    """Do what a person does: open the wish's page, fill in the action's form, send it."""
    html = page(client.get(f"/wishes/{wid}"))
    form = action_form(html, action)
    assert form is not None, (action, offered(html))
    return post_form(client, f"/wishes/{wid}/{action}", {**form, **(data or {})}, **kwargs)


def done(client, wid: int, action: str, data: dict | None = None) -> str:
    """An action that succeeds: 303 back to the wish; the page it leads to (with the flash)."""
    answer = act(client, wid, action, data)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:3000]
    assert answer.headers["Location"] == f"/wishes/{wid}"
    return text_of(client.get(answer.headers["Location"]))


def reveals(app, wid: int) -> list[int]:
    from app.wishes.models import ContactReveal

    with reading(app) as session:
        return list(session.scalars(sa.select(ContactReveal.viewer_id)
                                    .where(ContactReveal.wish_id == wid)))


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field__error" id="f-{name}-error">(.*?)</p>', html, re.S)
    assert found, html
    return unescape(re.sub(r"<[^>]+>", "", found.group(1)))


# --- 我的心愿 ------------------------------------------------------------------------------------

def test_my_wishes_lists_mine_newest_first_with_status_badges(kit, app, browser):
    pending = kit.post_wish(kit.resident, title="第一个心愿")["id"]
    opened = kit.make("open", title="第二个心愿")
    closed = kit.make("closed", title="第三个心愿")
    kit.post_wish(kit.volunteer2, title="别人的心愿")
    html = page(browser(kit.resident).get("/me/wishes"))
    text = text_of(browser(kit.resident).get("/me/wishes"))
    titles = re.findall(r'<span class="list__title">([^<]+)</span>', html)
    assert titles == ["第三个心愿", "第二个心愿", "第一个心愿"]
    assert "别人的心愿" not in text
    for wid in (pending, opened, closed):
        assert f'href="/wishes/{wid}"' in html
    for badge, label in (("pending", "待审核"), ("open", "待认领"), ("closed", "已办结")):
        assert f'badge--{badge}">{label}<' in html
    assert "远创樾府 3 栋" in text  # which board
    empty = text_of(browser(kit.volunteer).get("/me/wishes"))
    assert "还没有发布过心愿" in empty


def test_my_wishes_has_twenty_a_page(kit, app, browser):
    from app.extensions import db
    from app.wishes.models import Wish

    with app.app_context():
        for n in range(23):
            db.session.add(Wish(community_id=kit.cid, board_id=kit.board["id"],
                                owner_id=kit.resident.id, posted_by_id=kit.resident.id,
                                title=f"心愿 {n}", category="other", status="pending"))
        db.session.commit()
    one = page(browser(kit.resident).get("/me/wishes"))
    assert len(re.findall(r'class="list__item"', one)) == 20
    assert "第 1 / 2 页" in one and 'href="/me/wishes?page=2"' in one
    two = page(browser(kit.resident).get("/me/wishes?page=2"))
    assert re.findall(r'<span class="list__title">([^<]+)</span>', two) == ["心愿 2", "心愿 1", "心愿 0"]


def test_my_wishes_and_a_wish_need_a_login(kit, app):
    wid = kit.post_wish()["id"]
    client = app.test_client()
    for path in ("/me/wishes", f"/wishes/{wid}"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["Location"] == f"/login?next={path}"
    before = wish_state(app, wid)
    answer = post_form(client, f"/wishes/{wid}/cancel", {})
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/login")
    assert wish_state(app, wid) == before


# --- who sees what ----------------------------------------------------------------------------

def test_a_volunteer_sees_the_contact_only_after_claiming(kit, app, browser):
    wid = kit.make("open", contact_phone=PHONE, address=ADDRESS)
    volunteer = browser(kit.volunteer)
    for viewer in (kit.volunteer, kit.volunteer2):
        html = page(browser(viewer).get(f"/wishes/{wid}"))
        assert PHONE not in html and ADDRESS not in html and "5678" not in html
        assert kit.resident.display_name not in html  # the owner's name masked
        assert "认领后，您能看到居民的电话和地址" in text_of(browser(viewer).get(f"/wishes/{wid}"))
        assert "claim" in offered(html)
    assert reveals(app, wid) == []
    shown = done(volunteer, wid, "claim")
    assert "认领成功" in shown and PHONE in shown and ADDRESS in shown
    assert f'href="tel:{PHONE}"' in page(volunteer.get(f"/wishes/{wid}"))
    assert reveals(app, wid).count(kit.volunteer.id) >= 2  # the claim's answer, then each look
    # The other volunteer still sees nothing, and cannot claim it any more.
    other = page(browser(kit.volunteer2).get(f"/wishes/{wid}"))
    assert PHONE not in other and ADDRESS not in other and "claim" not in offered(other)
    assert kit.volunteer2.id not in reveals(app, wid)
    # Released, the contact is hidden from its former claimer again.
    done(volunteer, wid, "release", {"reason": "临时出差"})
    again = page(volunteer.get(f"/wishes/{wid}"))
    assert PHONE not in again and ADDRESS not in again


def test_the_owner_and_organisers_see_everything_residents_see_masked(kit, app, browser, factory):
    wid = kit.make("open", contact_phone=PHONE, address=ADDRESS)
    for viewer in (kit.resident, kit.organiser, kit.w.admin):
        text = text_of(browser(viewer).get(f"/wishes/{wid}"))
        assert PHONE in text and ADDRESS in text and kit.resident.display_name in text
    neighbour = factory.member(kit.community, factory.user("邻居"), "resident")
    html = page(browser(neighbour).get(f"/wishes/{wid}"))
    assert PHONE not in html and ADDRESS not in html and kit.resident.display_name not in html
    assert offered(html) == set()  # a neighbour can do nothing with it
    assert reveals(app, wid) == []  # nobody holding it was shown it


def test_another_communitys_wish_is_not_found(kit, app, browser):
    wid = kit.make("open", contact_phone=PHONE)
    before = wish_state(app, wid)
    for stranger in (kit.w.other_organiser, kit.w.other_volunteer, kit.w.outsider):
        client = browser(stranger)
        shown = client.get(f"/wishes/{wid}")
        html = page(shown, 404)
        assert "找不到" in text_of(shown) and kit.board["name"] not in html and PHONE not in html
        for action, data in (("claim", {}), ("approve", {"level": "3"}), ("cancel", {})):
            page(post_form(client, f"/wishes/{wid}/{action}", data), 404)
    page(browser(kit.resident).get("/wishes/999999"), 404)
    page(browser(kit.resident).get(f"/wishes/{2**40}", headers={"Accept": "text/html"}), 404)
    page(post_form(browser(kit.organiser), f"/wishes/{wid}/fly", {}), 404)
    assert wish_state(app, wid) == before


# --- the whole way, in words ----------------------------------------------------------------

def test_the_whole_way_from_approval_to_five_stars(kit, app, browser):
    wid = kit.post_wish(kit.resident, contact_phone=PHONE, address=ADDRESS)["id"]
    organiser, volunteer, owner = browser(kit.organiser), browser(kit.volunteer), browser(kit.resident)
    # The organiser approves with a level, each level showing its points.
    html = page(organiser.get(f"/wishes/{wid}"))
    assert offered(html) == {"approve", "reject", "cancel"}
    for level in range(1, 6):
        assert re.search(rf"等级 {level} · {kit.rule_points(level)} 分", html), level
    assert "已审核" not in text_of(organiser.get(f"/wishes/{wid}"))
    assert "已开放给志愿者认领" in done(organiser, wid, "approve", {"level": "4"})
    assert wish_row(app, wid)["level"] == 4
    # The owner sees no action but cancel while it is open.
    assert offered(page(owner.get(f"/wishes/{wid}"))) == {"cancel"}
    # A volunteer claims, extends once, and reports it done.
    assert offered(page(volunteer.get(f"/wishes/{wid}"))) == {"claim"}
    done(volunteer, wid, "claim")
    html = page(volunteer.get(f"/wishes/{wid}"))
    assert offered(html) == {"fulfil", "extend", "release"}
    due = wish_row(app, wid)["fulfil_due_at"]
    assert "已延期" in done(volunteer, wid, "extend")
    assert wish_row(app, wid)["fulfil_due_at"] > due
    assert "extend" not in offered(page(volunteer.get(f"/wishes/{wid}")))  # once only
    text = done(volunteer, wid, "fulfil", {"note": "已上门更换水龙头，试水正常"})
    pending = kit.rule_points(4) * kit.factor(5) // 100
    assert f"您将得到约 {pending} 分" in text
    # The owner confirms with five stars and a comment.
    html = page(owner.get(f"/wishes/{wid}"))
    assert offered(html) == {"confirm", "dispute"}
    assert html.count('class="star-rating__input"') == 5
    assert "感谢您的评价" in done(owner, wid, "confirm", {"rating": "5", "comment": "很及时，谢谢！"})
    row = wish_row(app, wid)
    assert (row["status"], row["rating"], row["comment"]) == ("closed", 5, "很及时，谢谢！")
    assert [t["amount"] for t in award_transfers(app, wid)] == [pending]
    # The timeline in plain words, one label per step, with times in Asia/Shanghai.
    shown = owner.get(f"/wishes/{wid}")
    html = page(shown)
    steps = [unescape(s) for s in re.findall(r'<span class="timeline__what">([^<]+)</span>', html)]
    assert steps == ["已发布", "已审核", f"已认领（{kit.volunteer.display_name}）", "已延期", "已完成",
                     "已评价"]
    assert len(re.findall(r'<span class="timeline__when">\d{4}-\d{2}-\d{2} \d{2}:\d{2}', html)) == 6
    text = text_of(shown)
    assert "等级 4" in text and "已上门更换水龙头，试水正常" in text and "很及时，谢谢！" in text
    assert "★★★★★" in html and "已办结" in text and f"志愿者已得到 {pending} 分" in text
    assert offered(html) == set()


def test_dispute_release_reject_cancel_and_assign(kit, app, browser, factory):
    organiser, volunteer, owner = browser(kit.organiser), browser(kit.volunteer), browser(kit.resident)
    # Dispute: not done yet, back to the volunteer.
    wid = kit.make("fulfilled")
    assert "志愿者会继续帮您" in done(owner, wid, "dispute", {"reason": "还在漏水"})
    assert wish_row(app, wid)["status"] == "claimed"
    assert "未解决，已退回志愿者" in text_of(owner.get(f"/wishes/{wid}"))
    # Release, with a reason: open again.
    assert "重新开放" in done(volunteer, wid, "release", {"reason": "临时出差"})
    assert wish_row(app, wid)["claimer_id"] is None
    assert "已退回" in text_of(owner.get(f"/wishes/{wid}")) and "临时出差" in text_of(
        owner.get(f"/wishes/{wid}"))
    # Assign: a select of the community's volunteers with their skills.
    kit.ok(kit.client.patch("/api/v1/me/volunteer-profile", json={"skills": ["repair", "driving"]},
                            headers=kit.h(kit.volunteer2)))
    html = page(organiser.get(f"/wishes/{wid}"))
    options = dict(re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', html))
    assert options[str(kit.volunteer2.id)] == f"{kit.volunteer2.display_name} · 水电维修、驾驶接送"
    assert options[str(kit.volunteer.id)] == kit.volunteer.display_name
    assert str(kit.resident.id) not in options and str(kit.organiser.id) not in options
    assert "已派单" in done(organiser, wid, "assign", {"volunteer_id": str(kit.volunteer2.id)})
    assert wish_row(app, wid)["claimer_id"] == kit.volunteer2.id
    assert "社区派单" in text_of(owner.get(f"/wishes/{wid}"))
    # Reject, with a reason the resident sees.
    other = kit.post_wish(title="买彩票")["id"]
    assert "未通过" in done(organiser, other, "reject", {"reason": "不属于微心愿范围"})
    text = text_of(owner.get(f"/wishes/{other}"))
    assert "未通过" in text and "不属于微心愿范围" in text
    # Cancel (asks first, in the browser).
    third = kit.post_wish(title="不需要了")["id"]
    assert 'data-confirm="确定要撤回这个心愿吗' in page(owner.get(f"/wishes/{third}"))
    assert "心愿已撤回" in done(owner, third, "cancel")
    assert wish_row(app, third)["status"] == "cancelled"
    assert "已撤回" in text_of(owner.get(f"/wishes/{third}"))


def test_an_organiser_confirms_for_a_resident_as_proxy(kit, app, browser):
    wid = kit.make("fulfilled")
    organiser = browser(kit.organiser)
    assert offered(page(organiser.get(f"/wishes/{wid}"))) == {"confirm", "dispute"}
    done(organiser, wid, "confirm", {"rating": "4"})
    steps = re.findall(r'<span class="timeline__what">([^<]+)</span>',
                       page(browser(kit.resident).get(f"/wishes/{wid}")))
    assert steps[-1] == "已评价（社区代办）"
    assert wish_row(app, wid)["rating"] == 4


def test_automatic_steps_say_what_happened(kit, app, browser):
    from datetime import timedelta

    from app.db import utcnow

    kit.settings(auto_confirm_days=5)
    wid = kit.make("fulfilled")
    set_wish_columns(app, wid, fulfilled_at=utcnow() - timedelta(days=6))
    kit.tick()
    steps = re.findall(r'<span class="timeline__what">([^<]+)</span>',
                       page(browser(kit.resident).get(f"/wishes/{wid}")))
    assert steps[-1] == "5天未评价，系统自动确认"
    late = kit.make("claimed")
    set_wish_columns(app, late, fulfil_due_at=utcnow() - timedelta(hours=1))
    kit.tick()
    text = text_of(browser(kit.resident).get(f"/wishes/{late}"))
    assert "超时未完成，已重新开放" in text


def test_next_goes_back_to_a_local_page_only(kit, app, browser):
    organiser = browser(kit.organiser)
    first, second = kit.post_wish()["id"], kit.post_wish()["id"]
    form = action_form(page(organiser.get(f"/wishes/{first}")), "approve")
    answer = post_form(organiser, f"/wishes/{first}/approve", {**form, "level": "2",
                                                               "next": "/organiser/review"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/organiser/review"
    form = action_form(page(organiser.get(f"/wishes/{second}")), "approve")
    answer = post_form(organiser, f"/wishes/{second}/approve", {**form, "level": "2",
                                                                "next": "https://evil.example/x"})
    assert answer.status_code == 303 and answer.headers["Location"] == f"/wishes/{second}"


# --- who may not, and refusals in words -------------------------------------------------------

def test_a_resident_cannot_approve(kit, app, browser):
    wid = kit.post_wish()["id"]
    resident = browser(kit.resident)
    html = page(resident.get(f"/wishes/{wid}"))
    assert offered(html) == {"cancel"}
    before = wish_state(app, wid)
    refused = post_form(resident, f"/wishes/{wid}/approve", {"level": "5",
                                                             "form_token": "t" * 20})
    html = page(refused, 403)
    text = text_of(refused)
    assert "您不能对该心愿执行“通过审核”" in text and "联系社区工作人员" in text
    # Whatever was typed: who may not hears that, not what was wrong with the input.
    page(post_form(resident, f"/wishes/{wid}/approve", {"level": "9"}), 403)
    assert wish_state(app, wid) == before
    # A volunteer cannot approve or confirm either; the owner cannot claim their own.
    page(post_form(browser(kit.volunteer), f"/wishes/{wid}/approve", {"level": "5"}), 403)
    fulfilled = kit.make("fulfilled")
    before = wish_state(app, fulfilled)
    page(post_form(browser(kit.volunteer2), f"/wishes/{fulfilled}/confirm", {"rating": "5"}), 403)
    assert wish_state(app, fulfilled) == before


def test_a_claimed_wish_cannot_be_claimed_again(kit, app, browser):
    wid = kit.make("open")
    first, second = browser(kit.volunteer), browser(kit.volunteer2)
    form = action_form(page(second.get(f"/wishes/{wid}")), "claim")
    done(first, wid, "claim")
    before = wish_state(app, wid)
    refused = post_form(second, f"/wishes/{wid}/claim", form)
    page(refused, 409)
    text = text_of(refused)
    assert "该心愿当前状态为“已认领”，不能执行“认领”" in text
    assert "请看下面的最新进度" in text and "已认领（" in text  # the wish as it is now
    assert wish_state(app, wid) == before
    assert kit.volunteer2.id not in reveals(app, wid)


def test_the_claim_limit_says_what_to_do(kit, app, browser):
    kit.settings(max_active_claims=1)
    kit.make("claimed")
    wid = kit.make("open")
    before = wish_state(app, wid)
    refused = act(browser(kit.volunteer), wid, "claim")
    page(refused, 409)
    assert "您已有 1 个进行中的心愿" in text_of(refused) and "标记已完成" in text_of(refused)
    assert wish_state(app, wid) == before


def test_a_refused_action_keeps_what_was_typed(kit, app, browser):
    wid = kit.make("claimed")
    volunteer = browser(kit.volunteer)
    form = action_form(page(volunteer.get(f"/wishes/{wid}")), "fulfil")
    kit.do(wid, "release", kit.organiser, reason="改派")  # meanwhile, the organiser took it back
    before = wish_state(app, wid)
    refused = post_form(volunteer, f"/wishes/{wid}/fulfil", {**form, "note": "已经修好了，换了新的阀门"})
    page(refused, 403)  # no longer its claimer
    text = text_of(refused)
    assert "已经修好了，换了新的阀门" in text and "您不能对该心愿执行“标记已完成”" in text
    assert wish_state(app, wid) == before


def test_extending_twice_is_refused_in_words(kit, app, browser):
    wid = kit.make("claimed")
    volunteer = browser(kit.volunteer)
    form = action_form(page(volunteer.get(f"/wishes/{wid}")), "extend")
    done(volunteer, wid, "extend")
    form["form_token"] = "another-token-000000"
    before = wish_state(app, wid)
    refused = post_form(volunteer, f"/wishes/{wid}/extend", form)
    page(refused, 409)
    assert "完成期限只能延长一次" in text_of(refused)
    assert wish_state(app, wid) == before


@pytest.mark.parametrize(("state", "who", "action", "data", "field"), [
    ("fulfilled", "resident", "confirm", {"comment": "还不错"}, "rating"),
    ("fulfilled", "resident", "confirm", {"rating": "6", "comment": "还不错"}, "rating"),
    ("fulfilled", "resident", "confirm", {"rating": "五", "comment": "还不错"}, "rating"),
    ("fulfilled", "resident", "confirm", {"rating": "5", "comment": "好" * 501}, "comment"),
    ("fulfilled", "resident", "dispute", {"reason": ""}, "reason"),
    ("fulfilled", "resident", "dispute", {"reason": "漏" * 201}, "reason"),
    ("claimed", "volunteer", "release", {"reason": "   "}, "reason"),
    ("claimed", "volunteer", "release", {"reason": "忙" * 10_000}, "reason"),
    ("claimed", "volunteer", "fulfil", {"note": ""}, "note"),
    ("claimed", "volunteer", "fulfil", {"note": "第一行\n第二行"}, "note"),
    ("pending", "organiser", "approve", {"level": "9"}, "level"),
    ("pending", "organiser", "approve", {}, "level"),
    ("pending", "organiser", "reject", {"reason": ""}, "reason"),
    ("open", "organiser", "assign", {"volunteer_id": ""}, "volunteer_id"),
    ("open", "organiser", "assign", {"volunteer_id": "abc"}, "volunteer_id"),
])
def test_bad_input_is_refused_beside_the_field_keeping_what_was_typed(
        kit, app, browser, state, who, action, data, field):
    wid = kit.make(state)
    client = browser(getattr(kit, who))
    before = wish_state(app, wid)
    refused = act(client, wid, action, data)
    html = page(refused, 422)
    assert wish_state(app, wid) == before
    assert re.search(r"[\u4e00-\u9fff]", field_error(html, field))
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S).group(0)
    assert f'href="#f-{field}"' in summary
    for name, value in data.items():
        if value.strip() and len(value) < 1000 and "\n" not in value and name not in ("rating", "level",
                                                                                       "volunteer_id"):
            assert f'value="{value}"' in html, name
    # The same form is there again, with its token, to correct and send.
    assert action in offered(html)


def test_assigning_to_someone_who_is_not_a_volunteer_is_refused_beside_the_field(kit, app, browser):
    wid = kit.make("open")
    before = wish_state(app, wid)
    refused = act(browser(kit.organiser), wid, "assign", {"volunteer_id": str(kit.resident.id)})
    html = page(refused, 422)
    assert "必须是本社区的志愿者" in field_error(html, "volunteer_id")
    assert wish_state(app, wid) == before


def test_without_the_csrf_token_no_action_is_taken(kit, app, browser):
    wid = kit.make("fulfilled")
    owner = browser(kit.resident)
    before, rows = wish_state(app, wid), counts(app)
    refused = act(owner, wid, "confirm", {"rating": "5"}, with_csrf=False)
    page(refused, 403)
    assert "没有生效" in text_of(refused)
    page(act(owner, wid, "confirm", {"rating": "5", "csrf_token": "forged"}), 403)
    assert wish_state(app, wid) == before and counts(app) == rows


def test_a_double_submit_confirms_once(kit, app, browser):
    wid = kit.make("fulfilled")
    owner = browser(kit.resident)
    form = action_form(page(owner.get(f"/wishes/{wid}")), "confirm")
    body = {**form, "rating": "5", "comment": "谢谢"}
    first = post_form(owner, f"/wishes/{wid}/confirm", body)
    second = post_form(owner, f"/wishes/{wid}/confirm", body)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"] == f"/wishes/{wid}"
    assert len(award_transfers(app, wid)) == 1
    events = [e["action"] for e in wish_state(app, wid)["events"]]
    assert events.count("confirm") == 1


def test_a_refused_submit_does_not_use_up_its_form_token(kit, app, browser):
    wid = kit.make("fulfilled")
    owner = browser(kit.resident)
    form = action_form(page(owner.get(f"/wishes/{wid}")), "confirm")
    html = page(post_form(owner, f"/wishes/{wid}/confirm", {**form, "comment": "忘了打分"}), 422)
    again = action_form(html, "confirm")
    assert again["form_token"] == form["form_token"]
    assert post_form(owner, f"/wishes/{wid}/confirm", {**again, "rating": "3"}).status_code == 303
    assert wish_row(app, wid)["rating"] == 3


def test_an_action_with_an_expired_access_cookie_refreshes_silently(kit, app, browser):
    wid = kit.make("claimed")
    volunteer = browser(kit.volunteer)
    form = action_form(page(volunteer.get(f"/wishes/{wid}")), "fulfil")
    volunteer.delete_cookie("xy_access")
    answer = post_form(volunteer, f"/wishes/{wid}/fulfil", {**form, "note": ""})
    html = page(answer, 422)  # still signed in: the form again, not the login page
    assert "fulfil" in offered(html)
    volunteer.delete_cookie("xy_access")
    answer = post_form(volunteer, f"/wishes/{wid}/fulfil", {**form, "note": "办好了"})
    assert answer.status_code == 303 and wish_row(app, wid)["status"] == "fulfilled"


def test_english_pages_use_the_same_forms(kit, app, browser):
    wid = kit.make("open")
    volunteer = browser(kit.volunteer)
    volunteer.set_cookie("lang", "en")
    html = page(volunteer.get(f"/wishes/{wid}"))
    assert 'lang="en"' in html and "claim" in offered(html)
