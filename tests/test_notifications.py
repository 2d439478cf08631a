"""Notifications: the outbox written in the change's transaction, who hears what, the inbox API,
mutes and the reminders (issue 11). Webhook delivery has its own modules."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.activity_helpers import publish, set_times
from tests.helpers import assert_error, assert_field_error, reading
from tests.report_helpers import act as report_act
from tests.report_helpers import file_report
from tests.store_helpers import give_points, make_reward, redeem
from tests.wish_helpers import Kit, writing

API = "/api/v1"


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def inbox(kit, user, **query) -> dict:
    return kit.ok(kit.client.get(f"{API}/me/notifications", query_string=query,
                                 headers=kit.h(user)))


def types_of(kit, user) -> list[str]:
    return [n["type"] for n in inbox(kit, user, per_page=100)["items"]]


def events(app) -> list[tuple[str, int | None]]:
    from app.notifications.models import Event

    with reading(app) as session:
        return [(e.type, e.subject_id) for e in session.scalars(sa.select(Event)
                                                                .order_by(Event.id))]


def notified(app) -> list[tuple[str, int]]:
    """(event type, recipient) of every notification, in order."""
    from app.notifications.models import Event, Notification

    with reading(app) as session:
        return [tuple(row) for row in session.execute(
            sa.select(Event.type, Notification.user_id).join(Event)
            .order_by(Notification.id))]


# --- who hears what -----------------------------------------------------------------------

def test_a_wish_s_life_tells_each_party_what_concerns_them(kit, app):
    organiser, volunteer, resident = kit.organiser, kit.volunteer, kit.resident
    wid = kit.post_wish()["id"]
    assert notified(app) == [("wish.posted", organiser.id)]
    kit.do(wid, "approve", organiser)
    kit.do(wid, "claim", volunteer)
    kit.do(wid, "fulfil", volunteer)
    kit.do(wid, "confirm", resident, rating=5)

    assert types_of(kit, resident) == ["wish.fulfilled", "wish.claimed", "wish.approved"]
    assert types_of(kit, volunteer) == ["wish.closed", "points.awarded"]
    # Organisers hear of new, claimed and closed wishes; never of their own approval.
    assert types_of(kit, organiser) == ["wish.closed", "wish.claimed", "wish.posted"]

    newest = inbox(kit, resident)["items"][0]
    assert newest["text"] == f"{volunteer.display_name} 已完成心愿“厨房水龙头漏水”，请确认并评价。"
    assert newest["object"] == {"type": "wish", "id": wid}
    assert newest["link"] == f"/wishes/{wid}"
    points = inbox(kit, volunteer)["items"][1]
    assert points["text"].startswith("您获得了 ") and "积分" in points["text"]
    assert points["link"] == "/me/points"
    # No phone number or address ever goes into an event's snapshot.
    from app.notifications.models import Event

    with reading(app) as session:
        for data in session.scalars(sa.select(Event.data)):
            assert "13812345678" not in str(data) and "502" not in str(data)


def test_dispatch_release_and_dispute_reach_the_volunteer_and_the_resident(kit, app):
    wid = kit.post_wish()["id"]
    kit.do(wid, "approve", kit.organiser)
    kit.do(wid, "assign", kit.organiser, volunteer_id=kit.volunteer.id)
    assert types_of(kit, kit.volunteer) == ["wish.dispatched"]
    assert inbox(kit, kit.volunteer)["items"][0]["text"] == (
        f"社区把心愿“厨房水龙头漏水”派给了 {kit.volunteer.display_name}。")
    kit.do(wid, "release", kit.volunteer)
    assert types_of(kit, kit.resident)[:2] == ["wish.released", "wish.dispatched"]
    kit.do(wid, "claim", kit.volunteer2)
    kit.do(wid, "fulfil", kit.volunteer2)
    kit.do(wid, "dispute", kit.resident)
    assert types_of(kit, kit.volunteer2)[0] == "wish.disputed"
    assert "wish.disputed" in types_of(kit, kit.organiser)


def test_a_rejected_wish_tells_its_owner_why(kit):
    wid = kit.post_wish()["id"]
    kit.do(wid, "reject", kit.organiser, reason="请直接联系物业报修")
    item = inbox(kit, kit.resident)["items"][0]
    assert item["type"] == "wish.rejected"
    assert item["text"] == "心愿“厨房水龙头漏水”没有通过审核：请直接联系物业报修"


def test_a_proxy_posted_wish_tells_the_grid_worker_who_posted_it(kit, factory, world):
    grid = factory.member(world.community, factory.user("网格员小周"), "organiser")
    body = {"title": "帮忙取药", "description": "独居老人行动不便", "category": "errands",
            "on_behalf_of": {"name": "张奶奶", "phone": "13900001111"}}
    wid = kit.ok(kit.post(f"/boards/{kit.board['id']}/wishes", grid, body), 201)["id"]
    kit.do(wid, "approve", kit.organiser)
    assert types_of(kit, grid)[0] == "wish.approved"


def test_deadlines_lapse_and_escalation_are_told(kit, app):
    from app.db import utcnow
    from app.wishes import service

    wid = kit.post_wish()["id"]
    kit.do(wid, "approve", kit.organiser)
    kit.do(wid, "claim", kit.volunteer)
    later = utcnow() + timedelta(days=30)
    with writing(app):
        assert service.lapse(wid, later)
    assert types_of(kit, kit.volunteer)[0] == "wish.lapsed"
    assert types_of(kit, kit.resident)[0] == "wish.lapsed"
    with writing(app):
        assert service.escalate(wid, later)
    assert types_of(kit, kit.organiser)[0] == "wish.escalated"
    assert inbox(kit, kit.organiser)["items"][0]["link"] == "/organiser/dispatch"


def test_points_adjusted_by_an_organiser_tell_the_holder(kit, app, world):
    give_points(app, world.community.id, [world.resident.id], 30, world.organiser.id)
    item = inbox(kit, world.resident)["items"][0]
    assert item["type"] == "points.adjusted"
    assert item["text"] == "社区调整了您的积分 +30：测试发放积分"


def test_store_redemption_created_fulfilled_and_cancelled(kit, app, client, world, org):
    give_points(app, world.community.id, [world.volunteer.id], 100, world.organiser.id)
    reward = make_reward(client, org, world.community.id)
    vol = kit.h(world.volunteer)
    first = redeem(client, vol, reward["id"]).get_json()
    assert types_of(kit, world.organiser)[0] == "redemption.created"
    assert inbox(kit, world.organiser)["items"][0]["link"] == "/organiser/pickup"
    kit.ok(client.post(f"{API}/redemptions/{first['id']}/fulfil", headers=org,
                       json={"pickup_code": first["pickup_code"]}))
    assert types_of(kit, world.volunteer)[0] == "redemption.fulfilled"
    second = redeem(client, vol, reward["id"]).get_json()
    kit.ok(client.post(f"{API}/redemptions/{second['id']}/cancel", headers=vol, json={}))
    # Cancelling one's own redemption is one's own act: the staff are not bothered either.
    assert types_of(kit, world.volunteer)[0] == "redemption.fulfilled"
    third = redeem(client, vol, reward["id"]).get_json()
    kit.ok(client.post(f"{API}/redemptions/{third['id']}/cancel", headers=org,
                       json={"reason": "暂时缺货"}))
    top = inbox(kit, world.volunteer)["items"][0]
    assert top["type"] == "redemption.cancelled" and "已退还" in top["text"]
    # The pickup code is the holder's secret: never in an event.
    from app.notifications.models import Event

    with reading(app) as session:
        assert first["pickup_code"] not in str(list(session.scalars(sa.select(Event.data))))


def test_reports_are_told_to_organisers_and_back_to_the_reporter(kit, client, world, org):
    report = file_report(client, world.community.id, kit.h(world.volunteer)).get_json()
    assert types_of(kit, world.organiser)[0] == "report.filed"
    kit.ok(report_act(client, report["id"], "accept", org, {"level": 2}))
    kit.ok(report_act(client, report["id"], "assign", org, {"to": "物业公司"}))
    kit.ok(report_act(client, report["id"], "resolve", org, {"note": "已通知物业清理"}))
    assert types_of(kit, world.volunteer)[:3] == ["report.resolved", "report.accepted",
                                                  "points.awarded"]
    assert inbox(kit, world.volunteer)["items"][0]["link"] == f"/reports/{report['id']}"


def test_a_cancelled_activity_tells_everyone_signed_up(kit, client, world, org):
    activity = publish(client, org, world.community.id)
    kit.ok(client.post(f"{API}/activities/{activity['id']}/signup", headers=kit.h(world.volunteer)))
    kit.ok(client.post(f"{API}/activities/{activity['id']}/cancel", headers=org,
                       json={"reason": "下雨改期"}))
    item = inbox(kit, world.volunteer)["items"][0]
    assert item["type"] == "activity.cancelled"
    assert item["text"] == "活动“重阳节敬老院陪伴”已取消：下雨改期"


# --- the outbox is the change's transaction -----------------------------------------------

def test_a_change_that_rolls_back_leaves_no_event_and_one_that_commits_leaves_its_own(kit, app):
    from app.auth.models import User
    from app.extensions import db
    from app.wishes import service
    from app.wishes.models import Board

    wid = kit.post_wish()["id"]
    kit.do(wid, "approve", kit.organiser)
    before = events(app)
    with app.app_context():
        from app.db import write_transaction

        with pytest.raises(RuntimeError), write_transaction(db.session):
            service.act(wid, "claim", db.session.get(User, kit.volunteer.id))
            service.post_wish(db.session.get(Board, kit.board["id"]),
                              db.session.get(User, kit.resident.id),
                              {"title": "又一个", "description": "x", "category": "repair"})
            raise RuntimeError("the request failed halfway")
        db.session.remove()
    assert events(app) == before
    kit.do(wid, "claim", kit.volunteer)
    assert events(app) == [*before, ("wish.claimed", wid)]


def test_a_refused_request_writes_no_event(kit, app):
    wid = kit.post_wish()["id"]
    before = (events(app), notified(app))
    assert_error(kit.act(wid, "claim", kit.volunteer), 409)  # still pending review
    assert_error(kit.act(wid, "approve", kit.volunteer), 403)
    assert (events(app), notified(app)) == before


def test_webhook_deliveries_are_written_with_the_event_for_subscribed_enabled_hooks(kit, app):
    from app.notifications.models import Delivery, Webhook

    with writing(app) as session:
        for name, events_, enabled in (("all", ["wish.posted", "wish.claimed"], True),
                                       ("claims", ["wish.claimed"], True),
                                       ("off", ["wish.posted"], False)):
            session.add(Webhook(community_id=kit.cid, name=name, url="https://example.com/h",
                                format="json", events=events_, enabled=enabled))
    wid = kit.post_wish()["id"]
    with reading(app) as session:
        rows = session.execute(sa.select(Webhook.name, Delivery.status).join(Webhook)
                               .order_by(Delivery.id)).all()
    assert [tuple(r) for r in rows] == [("all", "pending")]
    kit.do(wid, "approve", kit.organiser)  # nobody subscribed to approvals
    kit.do(wid, "claim", kit.volunteer)
    with reading(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 3


# --- the inbox ----------------------------------------------------------------------------

def _many(kit, count: int) -> list[int]:
    return [kit.post_wish(title=f"心愿{i}")["id"] for i in range(count)]


def test_the_inbox_is_newest_first_with_keyset_paging_and_an_unread_count(kit):
    _many(kit, 7)
    first = inbox(kit, kit.organiser, per_page=3)
    assert first["unread_count"] == 7 and first["total"] == 7
    ids = [n["id"] for n in first["items"]]
    assert ids == sorted(ids, reverse=True)
    assert first["next_after"] == ids[-1]
    second = inbox(kit, kit.organiser, per_page=3, after=first["next_after"])
    third = inbox(kit, kit.organiser, per_page=3, after=second["next_after"])
    seen = ids + [n["id"] for n in second["items"]] + [n["id"] for n in third["items"]]
    assert len(seen) == len(set(seen)) == 7 and third["next_after"] is None
    assert [n["text"] for n in third["items"]] == ["新心愿待审核：远创樾府 3 栋 · 维修：心愿0"]


def test_marking_read_by_ids_and_all(kit):
    _many(kit, 4)
    items = inbox(kit, kit.organiser)["items"]
    answer = kit.ok(kit.post("/me/notifications/read", kit.organiser,
                             {"ids": [items[0]["id"], items[1]["id"]]}))
    assert answer == {"marked": 2, "unread_count": 2}
    unread = inbox(kit, kit.organiser, unread="true")
    assert [n["id"] for n in unread["items"]] == [items[2]["id"], items[3]["id"]]
    assert [n["read"] for n in inbox(kit, kit.organiser)["items"]] == [True, True, False, False]
    assert kit.ok(kit.post("/me/notifications/read", kit.organiser, {"all": True})) == {
        "marked": 2, "unread_count": 0}
    assert kit.ok(kit.post("/me/notifications/read", kit.organiser, {"all": True}))["marked"] == 0


def test_nobody_reads_or_marks_another_person_s_notifications(kit, factory, world):
    _many(kit, 2)
    mine = inbox(kit, kit.organiser)["items"]
    other = factory.member(world.community, factory.user("另一位书记"), "volunteer")
    assert inbox(kit, other)["items"] == [] and inbox(kit, other)["unread_count"] == 0
    assert inbox(kit, world.other_organiser)["total"] == 0
    answer = kit.ok(kit.post("/me/notifications/read", other, {"ids": [n["id"] for n in mine]}))
    assert answer == {"marked": 0, "unread_count": 0}
    assert inbox(kit, kit.organiser)["unread_count"] == 2
    assert_error(kit.client.get(f"{API}/me/notifications"), 401)
    assert_error(kit.client.post(f"{API}/me/notifications/read", json={"all": True}), 401)


@pytest.mark.parametrize("body, field", [
    ({}, "ids"), ({"ids": []}, "ids"), ({"ids": "1"}, "ids"), ({"ids": [0]}, "ids"),
    ({"ids": ["一"]}, "ids"), ({"ids": [1.5]}, "ids"), ({"ids": list(range(1, 502))}, "ids"),
    ({"ids": [1], "all": True}, "ids"), ({"all": "yes"}, "all"), ({"all": False}, "ids"),
    ({"all": True, "role": "admin"}, "role"), ({"ids": [2**40]}, "ids"),
])
def test_bad_read_requests_are_refused_and_change_nothing(kit, body, field):
    _many(kit, 1)
    assert_field_error(kit.post("/me/notifications/read", kit.organiser, body), field, case=body)
    assert inbox(kit, kit.organiser)["unread_count"] == 1


@pytest.mark.parametrize("query", [{"per_page": 0}, {"per_page": 101}, {"after": "x"},
                                   {"after": -1}, {"unread": "maybe"}, {"page": "二"}])
def test_bad_inbox_queries_are_refused(kit, query):
    response = kit.client.get(f"{API}/me/notifications", query_string=query,
                              headers=kit.h(kit.organiser))
    assert_field_error(response, next(iter(query)), case=query)


def test_texts_are_rendered_in_the_reader_s_language_when_read(kit):
    wid = kit.post_wish()["id"]
    kit.do(wid, "approve", kit.organiser)
    english = kit.ok(kit.client.get(f"{API}/me/notifications", headers={
        **kit.h(kit.resident), "Accept-Language": "en"}))["items"][0]
    chinese = inbox(kit, kit.resident)["items"][0]
    assert chinese["text"] == "心愿“厨房水龙头漏水”已通过审核，正在等志愿者认领。"
    assert english["text"].startswith("Your wish") or "approved" in english["text"]
    assert "厨房水龙头漏水" in english["text"] and english["label"] != chinese["label"]


def test_a_corrected_translation_applies_to_old_notifications(kit, app, monkeypatch):
    from app.notifications import catalogue

    kit.do(kit.post_wish()["id"], "reject", kit.organiser, reason="重复")
    spec = catalogue.EVENT_TYPES["wish.rejected"]
    monkeypatch.setitem(catalogue.EVENT_TYPES, "wish.rejected",
                        catalogue.EventType(spec.recipients, "心愿“{title}”未通过：{note}",
                                            spec.label))
    assert inbox(kit, kit.resident)["items"][0]["text"] == "心愿“厨房水龙头漏水”未通过：重复"


# --- mutes --------------------------------------------------------------------------------

def test_a_muted_type_no_longer_reaches_the_inbox(kit):
    settings = kit.ok(kit.client.get(f"{API}/me/notifications/settings",
                                     headers=kit.h(kit.organiser)))
    assert settings["muted"] == [] and {"type": "wish.posted", "label": "新心愿",
                                        "muted": False} in settings["types"]
    answer = kit.ok(kit.client.put(f"{API}/me/notifications/settings",
                                   headers=kit.h(kit.organiser),
                                   json={"muted": ["wish.posted", "wish.posted"]}))
    assert answer["muted"] == ["wish.posted"]
    wid = kit.post_wish()["id"]
    assert types_of(kit, kit.organiser) == []
    kit.do(wid, "approve", kit.organiser)
    kit.do(wid, "claim", kit.volunteer)
    assert types_of(kit, kit.organiser) == ["wish.claimed"]


@pytest.mark.parametrize("body, field", [
    ({"muted": ["wish.exploded"]}, "muted"), ({"muted": "wish.posted"}, "muted"),
    ({}, "muted"), ({"muted": [1]}, "muted"), ({"muted": [], "all": 1}, "all"),
    ({"muted": ["心愿" * 1000]}, "muted"),
])
def test_bad_settings_are_refused_and_change_nothing(kit, body, field):
    kit.ok(kit.client.put(f"{API}/me/notifications/settings", headers=kit.h(kit.resident),
                          json={"muted": ["points.awarded"]}))
    response = kit.client.put(f"{API}/me/notifications/settings", headers=kit.h(kit.resident),
                              json=body)
    assert_field_error(response, field, case=body)
    assert kit.ok(kit.client.get(f"{API}/me/notifications/settings",
                                 headers=kit.h(kit.resident)))["muted"] == ["points.awarded"]


def test_the_openapi_document_lists_the_event_types():
    from app import create_app
    from app.notifications.catalogue import TYPE_NAMES

    spec = create_app({"TESTING": True}).test_client().get(f"{API}/openapi.json").get_json()
    text = str(spec["components"]["schemas"])
    for name in ("wish.posted", "wish.escalated", "points.expiring", "activity.reminder"):
        assert name in TYPE_NAMES and f"'{name}'" in text


# --- reminders: `flask notifications remind` ----------------------------------------------

def test_reminders_tell_once_however_often_they_run(kit, app, client, world, org):
    from app.notifications import reminders

    # An activity tomorrow with one person signed up.
    activity = publish(client, org, world.community.id)
    kit.ok(client.post(f"{API}/activities/{activity['id']}/signup", headers=kit.h(world.volunteer)))
    from app.db import utcnow
    from app.localtime import SHANGHAI

    now = utcnow()
    tomorrow_10 = (now.astimezone(SHANGHAI) + timedelta(days=1)).replace(hour=10, minute=0)
    set_times(app, activity["id"], starts_in=tomorrow_10 - now)
    # A redemption waiting for pickup, 28 of its 30 days gone.
    give_points(app, world.community.id, [world.resident.id], 100, world.organiser.id)
    reward = make_reward(client, org, world.community.id)
    redemption = redeem(client, kit.h(world.resident), reward["id"]).get_json()
    from app.notifications.models import Event
    from app.store.models import Redemption

    with writing(app) as session:
        session.execute(sa.update(Redemption).where(Redemption.id == redemption["id"])
                        .values(created_at=now - timedelta(days=28)))
    with app.app_context():
        first = reminders.remind(now)
        second = reminders.remind(now)
    assert first == {"points_expiring": 0, "redemptions_expiring": 1, "activities_tomorrow": 1}
    assert second == {"points_expiring": 0, "redemptions_expiring": 0, "activities_tomorrow": 0}
    reminder = inbox(kit, world.volunteer)["items"][0]
    assert reminder["type"] == "activity.reminder"
    assert reminder["text"] == "活动“重阳节敬老院陪伴”明天 10:00 开始，地点：管园村敬老院。"
    assert inbox(kit, world.resident)["items"][0]["type"] == "redemption.expiring"
    with reading(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Event).where(
            Event.key.is_not(None))) == 2


def test_points_expiring_within_a_week_are_reminded_once(kit, app, client, world, org):
    from app.db import utcnow
    from app.ledger import service as ledger
    from app.notifications import reminders

    body = kit.ok(kit.client.get(f"{API}/communities/{world.community.id}/points-rules",
                                 headers=org))
    kit.ok(kit.client.put(f"{API}/communities/{world.community.id}/points-rules", headers=org,
                          json={**body, "expiry_months": 1}))
    give_points(app, world.community.id, [world.volunteer.id], 40, world.organiser.id)
    with app.app_context():
        account = ledger.user_account_id_or_none(world.community.id, world.volunteer.id)
        soon = ledger.expiring(world.community.id, account)
    assert soon["points"] == 40
    days_left = (soon["on"] - (utcnow() + timedelta(hours=8)).date()).days
    early = utcnow() + timedelta(days=days_left - 8)  # eight days before: not yet
    near = utcnow() + timedelta(days=days_left - 6)
    with app.app_context():
        assert reminders.remind(early)["points_expiring"] == 0
        assert reminders.remind(near)["points_expiring"] == 1
        assert reminders.remind(near + timedelta(hours=1))["points_expiring"] == 0
    item = inbox(kit, world.volunteer)["items"][0]
    assert item["type"] == "points.expiring"
    assert item["text"] == f"您有 40 积分将在 {soon['on'].isoformat()} 过期，记得去爱心超市兑换。"


def test_the_remind_command_runs(app):
    result = app.test_cli_runner().invoke(args=["notifications", "remind"])
    assert result.exit_code == 0, result.output
    assert "points_expiring=0" in result.output


def test_group_messages_carry_no_personal_data(kit, app):
    from app.communities.models import Community
    from app.notifications import delivery
    from app.notifications.models import Delivery, Event, Webhook

    with writing(app) as session:
        session.add(Webhook(community_id=kit.cid, name="工作群", format="wecom",
                            url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                            events=["wish.posted", "wish.disputed", "wish.claimed"]))
    wid = kit.post_wish(title="楼道灯坏了 电话13812345678",
                        description="晚上看不见，我家老人摔过一次")["id"]
    kit.do(wid, "approve", kit.organiser)
    kit.do(wid, "claim", kit.volunteer)
    kit.do(wid, "fulfil", kit.volunteer)
    kit.do(wid, "dispute", kit.resident, reason="502 室门口还是黑的，打 13900001111")
    with reading(app) as session:
        rows = session.execute(sa.select(Event, Community).join(Delivery)
                               .join(Community, Community.id == Event.community_id)
                               .order_by(Event.id)).all()
        texts = [delivery.markdown(delivery.Message.of(e, c)) for e, c in rows]
        types = [e.type for e, _c in rows]
    assert types == ["wish.posted", "wish.claimed", "wish.disputed"]
    assert texts[0].startswith("【心愿】新心愿 · 远创樾府 3 栋 · 维修：楼道灯坏了 电话138****5678")
    assert kit.volunteer.display_name in texts[1]  # display names are fine
    for text in texts:
        for private in ("13812345678", "13900001111", "502", "摔过", "远创樾府 3 栋 502 室"):
            assert private not in text, (private, text)


def test_the_notifications_package_imports_no_page_and_domains_only_the_outbox():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "app"

    def imports(path: Path) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        return found

    for path in (root / "notifications").glob("*.py"):
        assert not {m for m in imports(path) if m.startswith("app.web")}, path
    for domain in ("wishes", "ledger", "store", "reports", "activities"):
        used = {m for m in imports(root / domain / "service.py")
                if m.startswith("app.notifications")}
        assert used == {"app.notifications", "app.notifications.outbox"}, (domain, used)
