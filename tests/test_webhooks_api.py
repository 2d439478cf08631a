"""The webhooks management API (issue 11): organisers add, read, change and remove their
community's webhooks, try them with a test message and resend deliveries.

The secret is never answered back and the robot's key is masked on read; an address inside
the server's network (SSRF) is refused when the webhook is added; group robots take only
organiser-facing events. Other roles get 403, other communities 404, no token 401; bad input
is a 422 naming the field that writes nothing.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.helpers import API, assert_error, assert_field_error, reading, refuse_each
from tests.webhook_helpers import DINGTALK, SECRET, WECOM, Receiver


def hooks_url(cid: int) -> str:
    return f"{API}/communities/{cid}/webhooks"


def make(client, headers, cid, status: int = 201, **body):
    body = {"url": "https://hooks.example.org/xinyuan", "format": "json",
            "events": ["wish.posted", "points.awarded"], **body}
    response = client.post(hooks_url(cid), json=body, headers=headers)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def state(app) -> dict:
    """What a refused request must leave as it was: the webhooks and the audit log."""
    from app.audit import AuditEvent
    from app.notifications.models import Webhook

    with reading(app) as session:
        return {"webhooks": [dict(r) for r in session.execute(
                    sa.select(Webhook.__table__).order_by(Webhook.id)).mappings()],
                "audit": session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))}


def audit_rows(app, action: str) -> list[dict]:
    from app.audit import AuditEvent

    with reading(app) as session:
        return [{"community_id": e.community_id, "actor_id": e.actor_id, "details": e.details}
                for e in session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)
                                         .order_by(AuditEvent.id))]


# --- the happy path ---------------------------------------------------------------------------

def test_organiser_adds_reads_lists_changes_and_removes_a_webhook(app, client, world, org):
    cid = world.community.id
    hook = make(client, org, cid, name="居委会信息系统", secret=SECRET,
                quiet_start="22:00", quiet_end="07:00")
    assert hook["community_id"] == cid and hook["name"] == "居委会信息系统"
    assert hook["format"] == "json" and hook["events"] == ["wish.posted", "points.awarded"]
    assert hook["enabled"] is True and hook["has_secret"] is True and "secret" not in hook
    assert (hook["quiet_start"], hook["quiet_end"]) == ("22:00", "07:00")
    assert hook["created_at"].endswith("+08:00") and hook["created_by_id"] == world.organiser.id

    read = client.get(f"{API}/webhooks/{hook['id']}", headers=org)
    assert read.status_code == 200 and read.get_json() == hook
    second = make(client, org, cid, format="dingtalk", url=DINGTALK, events=["wish.posted"])
    listed = client.get(hooks_url(cid) + "?per_page=1", headers=org).get_json()
    assert (listed["total"], listed["page"], listed["per_page"]) == (2, 1, 1)
    assert [h["id"] for h in listed["items"]] == [hook["id"]]
    assert [h["id"] for h in client.get(hooks_url(cid), headers=org).get_json()["items"]] == [
        hook["id"], second["id"]]

    changed = client.patch(f"{API}/webhooks/{hook['id']}", headers=org,
                           json={"enabled": False, "events": ["report.filed"], "secret": None,
                                 "quiet_start": None, "quiet_end": None})
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert body["enabled"] is False and body["events"] == ["report.filed"]
    assert body["has_secret"] is False and body["quiet_start"] is None
    assert body["name"] == "居委会信息系统" and body["url"] == hook["url"]  # untouched

    assert client.patch(f"{API}/webhooks/{hook['id']}", headers=org,
                        json={"secret": "a-new-secret"}).get_json()["has_secret"] is True
    removed = client.delete(f"{API}/webhooks/{hook['id']}", headers=org)
    assert removed.status_code == 204 and removed.data == b""
    assert_error(client.get(f"{API}/webhooks/{hook['id']}", headers=org), 404, "not_found")
    assert client.get(hooks_url(cid), headers=org).get_json()["total"] == 1

    created = audit_rows(app, "webhook.created")
    assert [r["details"]["webhook_id"] for r in created] == [hook["id"], second["id"]]
    assert created[0]["actor_id"] == world.organiser.id and created[0]["community_id"] == cid
    updated = audit_rows(app, "webhook.updated")
    assert updated[0]["details"]["changed"] == ["enabled", "events", "quiet_end", "quiet_start",
                                                "secret"]
    assert updated[1]["details"]["changed"] == ["secret"]
    assert audit_rows(app, "webhook.deleted")[0]["details"]["webhook_id"] == hook["id"]
    every_detail = json.dumps([r["details"] for a in ("created", "updated", "deleted")
                               for r in audit_rows(app, f"webhook.{a}")], ensure_ascii=False)
    assert SECRET not in every_detail and "a-new-secret" not in every_detail
    assert "4f2c0b8e9d7a6c5b4a3f2e1d0c9b8a7f" not in every_detail  # the robot's token neither


def test_the_secret_is_never_answered_and_the_robot_key_is_masked(client, world, org):
    cid = world.community.id
    wecom = make(client, org, cid, format="wecom", url=WECOM, events=["wish.posted"],
                 secret=SECRET)
    ding = make(client, org, cid, format="dingtalk", url=DINGTALK, events=["wish.disputed"],
                secret=SECRET)
    assert wecom["url"] == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=69****aa"
    assert ding["url"] == "https://oapi.dingtalk.com/robot/send?access_token=4f****7f"
    answers = [
        client.get(hooks_url(cid), headers=org),
        client.get(f"{API}/webhooks/{wecom['id']}", headers=org),
        client.patch(f"{API}/webhooks/{ding['id']}", headers=org, json={"name": "钉钉工作群"}),
    ]
    for response in answers:
        text = response.get_data(as_text=True)
        assert response.status_code == 200, text
        assert SECRET not in text and "0ec2sifa5aaa" not in text and "4f2c0b8e9d7a" not in text
        assert '"secret"' not in text

    # The masked URL sent back (as a form that showed it would) keeps the real one.
    again = client.patch(f"{API}/webhooks/{wecom['id']}", headers=org,
                         json={"url": wecom["url"], "name": "居委会群"})
    assert again.status_code == 200 and again.get_json()["url"] == wecom["url"]
    from app.extensions import db
    from app.notifications.models import Webhook

    with client.application.app_context():
        assert db.session.get(Webhook, wecom["id"]).url == WECOM
        assert db.session.get(Webhook, wecom["id"]).secret == SECRET


def test_an_admin_may_manage_any_communitys_webhooks(client, world, factory):
    admin = factory.headers(world.admin)
    hook = make(client, admin, world.other.id)
    assert client.get(f"{API}/webhooks/{hook['id']}", headers=admin).status_code == 200


# --- who may not ------------------------------------------------------------------------------

def _calls(cid: int, wid: int, did: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("POST", hooks_url(cid), {"url": "https://x.example.org/", "format": "json",
                                  "events": ["wish.posted"]}),
        ("GET", hooks_url(cid), None),
        ("GET", f"{API}/webhooks/{wid}", None),
        ("PATCH", f"{API}/webhooks/{wid}", {"enabled": False}),
        ("DELETE", f"{API}/webhooks/{wid}", None),
        ("POST", f"{API}/webhooks/{wid}/test", None),
        ("GET", f"{API}/webhooks/{wid}/deliveries", None),
        ("POST", f"{API}/webhooks/{wid}/deliveries/{did}/resend", None),
    ]


@pytest.fixture
def posted(app, client, world, org, factory):
    """A webhook of the world's community with one delivery (a wish was posted)."""
    hook = make(client, org, world.community.id, events=["wish.posted"])
    board = client.post(f"{API}/communities/{world.community.id}/boards", headers=org,
                        json={"name": "3 栋", "location": "东门"}).get_json()
    wish = client.post(f"{API}/boards/{board['id']}/wishes", headers=factory.headers(world.resident),
                       json={"title": "帮忙换灯泡", "category": "repair", "description": "楼道灯坏了"})
    assert wish.status_code == 201, wish.get_json()
    deliveries = client.get(f"{API}/webhooks/{hook['id']}/deliveries", headers=org).get_json()
    assert deliveries["total"] == 1
    return hook, deliveries["items"][0]


@pytest.mark.parametrize("who, status", [
    ("volunteer", 403), ("resident", 403), ("other_organiser", 404), ("outsider", 404),
    ("other_volunteer", 404), (None, 401)])
def test_only_the_communitys_organisers_may(app, client, world, factory, posted, who, status):
    hook, delivery = posted
    before = state(app)
    headers = factory.headers(getattr(world, who)) if who else {}
    for method, url, body in _calls(world.community.id, hook["id"], delivery["id"]):
        response = client.open(url, method=method, json=body, headers=headers)
        assert_error(response, status, note=(who, method, url))
    assert state(app) == before


def test_ids_that_do_not_exist_are_404(client, world, org, posted):
    hook, _ = posted
    for method, url, body in _calls(world.community.id, 2**31 + 5, 2**40):
        if "/communities/" not in url:
            assert_error(client.open(url, method=method, json=body, headers=org), 404)
    assert_error(client.post(f"{API}/webhooks/{hook['id']}/deliveries/{2**40}/resend",
                             headers=org), 404)


def test_a_delivery_of_another_webhook_is_not_found(client, world, org, posted):
    _hook, delivery = posted
    other = make(client, org, world.community.id, events=["report.filed"])
    assert_error(client.post(f"{API}/webhooks/{other['id']}/deliveries/{delivery['id']}/resend",
                             headers=org), 404, "not_found")


# --- bad input --------------------------------------------------------------------------------

GOOD = {"url": "https://hooks.example.org/x", "format": "json", "events": ["wish.posted"]}


def _with(**changes) -> dict:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not ...}


BAD_CREATES = [
    (_with(url="not a url"), "url"),
    (_with(url="hooks.example.org/x"), "url"),
    (_with(url="ftp://hooks.example.org/x"), "url"),
    (_with(url="file:///etc/passwd"), "url"),
    (_with(url="javascript:alert(1)"), "url"),
    (_with(url="http://169.254.169.254/latest/meta-data/"), "url"),
    (_with(url="http://10.0.0.1/hook"), "url"),
    (_with(url="http://127.0.0.1:8080/hook"), "url"),
    (_with(url="http://[::1]/"), "url"),
    (_with(url="http://[::ffff:10.0.0.1]/"), "url"),
    (_with(url="http://0.0.0.0/"), "url"),
    (_with(url="http://192.168.1.1/"), "url"),
    (_with(url="http://user:pw@hooks.example.org/"), "url"),
    (_with(url="https://hooks.example.org/" + "a" * 2048), "url"),
    (_with(url=""), "url"),
    (_with(url=123), "url"),
    (_with(url=...), "url"),
    (_with(format="xml"), "format"),
    (_with(format=...), "format"),
    (_with(format=["json"]), "format"),
    (_with(events=["wish.exploded"]), "events"),
    (_with(events=[]), "events"),
    (_with(events="wish.posted"), "events"),
    (_with(events=["wish.posted", "wish.posted"]), "events"),
    (_with(events=[1]), "events"),
    (_with(events=...), "events"),
    (_with(format="wecom", url=WECOM, events=["wish.posted", "points.awarded"]), "events"),
    (_with(format="dingtalk", url=DINGTALK, events=["redemption.fulfilled"]), "events"),
    (_with(secret="x" * 10_000), "secret"),
    (_with(secret=""), "secret"),
    (_with(secret=42), "secret"),
    (_with(name="心" * 41), "name"),
    (_with(name=["心愿"]), "name"),
    (_with(name="工作群\u0000"), "name"),
    (_with(enabled="yes"), "enabled"),
    (_with(enabled=1), "enabled"),
    (_with(quiet_start="22:00"), "quiet_end"),
    (_with(quiet_end="07:00"), "quiet_start"),
    (_with(quiet_start="25:00", quiet_end="07:00"), "quiet_start"),
    (_with(quiet_start="22:00", quiet_end="7"), "quiet_end"),
    (_with(quiet_start="22:00", quiet_end="22:00"), "quiet_end"),
    (_with(community_id=2), "community_id"),
    (_with(has_secret=True), "has_secret"),
]


def test_bad_input_is_refused_naming_the_field_and_nothing_is_created(app, client, world, org):
    refuse_each(client, "POST", hooks_url(world.community.id), org, BAD_CREATES,
                lambda: state(app))


def test_refusals_say_what_to_do_in_words(client, world, org):
    url = hooks_url(world.community.id)
    metadata = client.post(url, headers=org, json=_with(url="http://169.254.169.254/"))
    assert "169.254.169.254" in assert_field_error(metadata, "url")["errors"]["url"][0]
    robot = client.post(url, headers=org, json=_with(format="wecom", url=WECOM,
                                                     events=["points.awarded"]))
    assert "积分到账" in assert_field_error(robot, "events")["errors"]["events"][0]


def test_refusals_are_in_english_when_asked(client, world, org):
    url = hooks_url(world.community.id)
    english = client.post(url, headers={**org, "Accept-Language": "en"},
                          json=_with(url="ftp://x.example.org/"))
    assert assert_field_error(english, "url")["errors"]["url"][0].isascii()


def test_an_allowlisted_network_and_a_name_that_does_not_resolve_are_accepted(
        app, client, world, org, monkeypatch):
    cid = world.community.id
    make(client, org, cid, url="https://no-such-host.invalid/hook")  # checked again when sent
    assert_field_error(client.post(hooks_url(cid), headers=org,
                                   json=_with(url="http://127.0.0.1:9/")), "url")
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", ["127.0.0.1/32"])
    assert make(client, org, cid, url="http://127.0.0.1:9/")["url"] == "http://127.0.0.1:9/"
    assert_field_error(client.post(hooks_url(cid), headers=org,
                                   json=_with(url="http://127.0.0.2:9/")), "url")


def test_a_change_must_keep_every_rule_and_a_refused_one_changes_nothing(app, client, world, org):
    hook = make(client, org, world.community.id, secret=SECRET)
    url = f"{API}/webhooks/{hook['id']}"
    cases = [
        ({"format": "wecom"}, "events"),  # its points.awarded may not go to a group
        ({"format": "dingtalk", "url": DINGTALK}, "events"),
        ({"url": "http://10.0.0.1/"}, "url"),
        ({"url": None}, "url"),
        ({"events": []}, "events"),
        ({"events": None}, "events"),
        ({"quiet_start": "22:00"}, "quiet_end"),
        ({"secret": "s" * 129}, "secret"),
        ({"enabled": None}, "enabled"),
        ({"name": None}, "name"),
        ({"id": 5}, "id"),
    ]
    refuse_each(client, "PATCH", url, org, cases, lambda: state(app))
    # Both given at once, the robot's events fit: accepted.
    fine = client.patch(url, headers=org, json={"format": "wecom", "url": WECOM,
                                                "events": ["wish.posted", "report.filed"]})
    assert fine.status_code == 200, fine.get_json()
    # Now a robot: adding a personal event is refused, as when it was added.
    refuse_each(client, "PATCH", url, org, [({"events": ["points.expiring"]}, "events")],
                lambda: state(app))


def test_a_community_has_at_most_twenty_webhooks(app, client, world, org, factory):
    from app.notifications.webhooks import MAX_PER_COMMUNITY

    for _ in range(MAX_PER_COMMUNITY):
        make(client, org, world.community.id)
    before = state(app)
    assert_error(client.post(hooks_url(world.community.id), headers=org, json=GOOD), 409,
                 "webhook_limit_reached")
    assert state(app) == before
    make(client, factory.headers(world.other_organiser), world.other.id)  # per community


def test_the_openapi_document_lists_the_event_types(client):
    from app.notifications.catalogue import TYPE_NAMES

    spec = client.get(f"{API}/openapi.json").get_json()
    schema = spec["components"]["schemas"]["WebhookCreate"]
    assert schema["properties"]["events"]["items"]["enum"] == list(TYPE_NAMES)
    assert set(schema["required"]) == {"url", "format", "events"}
    assert "secret" not in spec["components"]["schemas"]["Webhook"]["properties"]
    paths = spec["paths"]
    for path in ("/api/v1/communities/{cid}/webhooks", "/api/v1/webhooks/{wid}",
                 "/api/v1/webhooks/{wid}/test", "/api/v1/webhooks/{wid}/deliveries",
                 "/api/v1/webhooks/{wid}/deliveries/{did}/resend"):
        for operation in paths[path].values():
            if isinstance(operation, dict) and "responses" in operation:
                assert operation.get("summary") or operation.get("description"), path


# --- sending: a receiver on this machine ------------------------------------------------------

@pytest.fixture
def receiver(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", ["127.0.0.1/32"])
    found = Receiver()
    yield found
    found.stop()


def test_a_test_message_reaches_the_receiver_and_its_answer_is_shown(client, world, org,
                                                                      receiver):
    hook = make(client, org, world.community.id, url=receiver.url(), secret=SECRET)
    answer = client.post(f"{API}/webhooks/{hook['id']}/test", headers=org)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["ok"] is True and body["response_code"] == 200, body
    assert isinstance(body["duration_ms"], int) and body["error"] is None
    assert len(receiver.requests) == 1 and receiver.requests[0]["path"] == "/hook"
    assert SECRET.encode() not in receiver.requests[0]["body"]

    receiver.answer((500, '{"error":"down"}'))
    refused = client.post(f"{API}/webhooks/{hook['id']}/test", headers=org).get_json()
    assert refused["ok"] is False and refused["response_code"] == 500 and refused["error"]
    assert SECRET not in json.dumps(refused)


def test_a_refused_address_is_not_tried_by_the_test_message(app, client, world, org, receiver):
    hook = make(client, org, world.community.id, url=receiver.url())
    app.config["WEBHOOK_ALLOWED_NETWORKS"] = []  # the allowlist taken away after it was added
    answer = client.post(f"{API}/webhooks/{hook['id']}/test", headers=org).get_json()
    assert answer["ok"] is False and answer["error"] and receiver.requests == []


def test_deliveries_are_listed_recent_first_and_one_may_be_resent(app, client, world, org,
                                                                  factory, receiver):
    cid = world.community.id
    hook = make(client, org, cid, url=receiver.url(), events=["wish.posted"])
    board = client.post(f"{API}/communities/{cid}/boards", headers=org,
                        json={"name": "3 栋", "location": "东门"}).get_json()
    resident = factory.headers(world.resident)
    for title in ("帮忙换灯泡", "陪老人去医院"):
        assert client.post(f"{API}/boards/{board['id']}/wishes", headers=resident,
                           json={"title": title, "category": "repair",
                                 "description": "谢谢"}).status_code == 201
    listed = client.get(f"{API}/webhooks/{hook['id']}/deliveries", headers=org).get_json()
    assert listed["total"] == 2 and listed["items"][0]["id"] > listed["items"][1]["id"]
    first = listed["items"][0]
    assert set(first) == {"id", "event_id", "event_type", "status", "attempts", "response_code",
                          "duration_ms", "error", "next_attempt_at", "last_attempt_at",
                          "delivered_at", "created_at"}
    assert first["event_type"] == "wish.posted" and first["status"] == "pending"
    assert first["created_at"].endswith("+08:00")

    resent = client.post(f"{API}/webhooks/{hook['id']}/deliveries/{first['id']}/resend",
                         headers=org)
    assert resent.status_code == 200, resent.get_json()
    body = resent.get_json()
    assert body["id"] == first["id"] and body["status"] == "delivered", body
    assert body["response_code"] == 200 and body["attempts"] >= 1 and body["delivered_at"]
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0]["body"])  # json format: a JSON body

    page = client.get(f"{API}/webhooks/{hook['id']}/deliveries?per_page=1&page=2",
                      headers=org).get_json()
    assert page["total"] == 2 and [d["id"] for d in page["items"]] == [listed["items"][1]["id"]]
