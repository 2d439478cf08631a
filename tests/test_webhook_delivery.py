"""Webhook delivery (issue 11): the three formats, signatures, retries, SSRF, quiet hours, spacing.

Deliveries go to a real HTTP receiver on 127.0.0.1 (allowlisted). The resolver is injected
(test names map to addresses) and so is a guarding connect function that records every call
and refuses anything but the receiver: no test sends a packet to a private or link-local
address, and the SSRF tests prove the refused ones never reached connect at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus

import pytest
import sqlalchemy as sa

from app.db import frozen_clock, utcnow, write_transaction
from app.extensions import db
from app.localtime import SHANGHAI
from app.notifications import delivery, outbox
from app.notifications.models import Delivery, Webhook
from tests.helpers import reading
from tests.webhook_helpers import HEADLINE, PHONE, WISH, Receiver, add_hook


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


NAMES = {"receiver.test": ["127.0.0.1"], "rebind.test": ["10.0.0.1"],
         "metadata.test": ["169.254.169.254"], "mixed.test": ["93.184.216.34", "10.0.0.1"],
         "public.test": ["93.184.216.34"]}


@pytest.fixture
def net(monkeypatch, receiver):
    """Inject the resolver and the guarding connect; `net.calls` lists every connect asked."""
    calls: list[tuple] = []

    def resolve(host, port):
        if host not in NAMES:
            raise socket.gaierror(f"unknown test name {host}")
        return NAMES[host]

    def connect(address, timeout):
        calls.append(address)
        if address != ("127.0.0.1", receiver.port):
            raise AssertionError(f"a test asked to connect to {address}")
        return socket.create_connection(address, timeout=timeout)

    monkeypatch.setattr(delivery, "RESOLVE", resolve)
    monkeypatch.setattr(delivery, "CONNECT", connect)
    return type("Net", (), {"calls": calls, "resolve": staticmethod(resolve),
                            "connect": staticmethod(connect)})


@pytest.fixture
def hooks(app, monkeypatch, net, world):
    """The world's community with settings small enough to test with."""
    for key, value in {"WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.1/32"],
                       "WEBHOOK_RETRY_SCHEDULE": [0.0, 0.0, 0.0, 0.0], "WEBHOOK_JITTER": 0.0,
                       "WEBHOOK_TIMEOUT": 2.0, "WEBHOOK_ROBOT_SPACING": 0.0}.items():
        monkeypatch.setitem(app.config, key, value)
    return world


# --- helpers ------------------------------------------------------------------------------

def emit(app, community_id: int, event_type: str = "wish.posted", data=None,
         subject=("wish", 41)) -> int:
    with app.app_context():
        with write_transaction(db.session):
            event_id = outbox.emit(event_type, community_id, subject=subject,
                                   data=dict(WISH if data is None else data))
        db.session.remove()
    return event_id


def deliver(app, batch: int = 10) -> dict:
    with app.app_context():
        return delivery.run(once=True, batch=batch, idle=0.05)


def rows(app, **where) -> list[Delivery]:
    with reading(app) as session:
        found = session.scalars(sa.select(Delivery).filter_by(**where).order_by(Delivery.id))
        result = found.unique().all()
        for row in result:
            session.expunge(row)
        return result


def one(app) -> Delivery:
    found = rows(app)
    assert len(found) == 1, found
    return found[0]


# --- the json format ----------------------------------------------------------------------

def test_a_json_delivery_is_signed_and_carries_no_personal_data(app, hooks, receiver):
    cid = hooks.community.id
    add_hook(app, cid, receiver.url(), secret="s3cret-签名")
    event_id = emit(app, cid)

    before = int(time.time())
    assert deliver(app) == {"delivered": 1, "retrying": 0, "failed": 0, "held": 0}

    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    row = one(app)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Xinyuan-Event"] == "wish.posted"
    assert headers["X-Xinyuan-Event-Id"] == str(event_id)
    assert headers["X-Xinyuan-Delivery"] == str(row.id)
    stamp = int(headers["X-Xinyuan-Timestamp"])
    assert before - 1 <= stamp <= time.time() + 1
    expected = hmac.new("s3cret-签名".encode(), f"{stamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Xinyuan-Signature"] == f"sha256={expected}"
    # a receiver that checks the signature over another body, or another time, refuses
    assert not hmac.compare_digest(headers["X-Xinyuan-Signature"], "sha256=" + hmac.new(
        "s3cret-签名".encode(), f"{stamp + 1}.".encode() + body, hashlib.sha256).hexdigest())

    document = json.loads(body)
    assert document["id"] == event_id and document["type"] == "wish.posted"
    assert document["created_at"].endswith("+08:00")
    assert document["community"] == {"id": cid, "name": hooks.community.name,
                                     "code": hooks.community.code}
    assert document["object"]["type"] == "wish" and document["object"]["id"] == 41
    assert document["object"]["title"] == "楼道灯坏了 请联系138****5678"
    assert document["object"]["board"] == "远创樾府3栋"
    assert document["object"]["claimer"] == "王建国"
    assert document["text"] == HEADLINE
    text = body.decode()
    for secret_thing in (PHONE, "家里只有两位老人", "502室", "holder_id", "description"):
        assert secret_thing not in text

    assert row.status == "delivered" and row.attempts == 1 and row.response_code == 200
    assert row.error is None and row.duration_ms is not None and row.delivered_at is not None
    assert row.lease_owner is None and row.lease_until is None


def test_a_json_webhook_without_a_secret_sends_no_signature(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    deliver(app)
    [request] = receiver.requests
    assert "X-Xinyuan-Signature" not in request["headers"]
    assert request["headers"]["X-Xinyuan-Event-Id"]


def test_a_name_is_resolved_once_and_the_host_header_stays_the_names(app, hooks, receiver, net):
    add_hook(app, hooks.community.id, receiver.url(host="receiver.test"))
    emit(app, hooks.community.id)
    assert deliver(app)["delivered"] == 1
    assert net.calls == [("127.0.0.1", receiver.port)]
    assert receiver.requests[0]["headers"]["Host"] == f"receiver.test:{receiver.port}"


# --- the group robots ---------------------------------------------------------------------

def test_a_wecom_robot_gets_its_markdown_body_at_the_url_as_given(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url("/cgi-bin/webhook/send") + "?key=abc-123",
             "wecom", secret="ignored")
    emit(app, hooks.community.id)
    assert deliver(app)["delivered"] == 1

    [request] = receiver.requests
    assert request["path"] == "/cgi-bin/webhook/send" and request["raw_query"] == "key=abc-123"
    document = json.loads(request["body"])
    assert set(document) == {"msgtype", "markdown"} and document["msgtype"] == "markdown"
    content = document["markdown"]["content"]
    assert content.startswith(HEADLINE + "\n")
    assert "新心愿待审核" in content and hooks.community.name in content
    for secret_thing in (PHONE, "家里只有两位老人", "502室", "holder_id"):
        assert secret_thing not in content
    assert "X-Xinyuan-Signature" not in request["headers"]


def test_a_dingtalk_robot_is_signed_with_timestamp_and_sign(app, hooks, receiver):
    secret = "SEC0123456789abcdef"
    add_hook(app, hooks.community.id, receiver.url("/robot/send") + "?access_token=tok",
             "dingtalk", secret=secret)
    emit(app, hooks.community.id)
    before = int(time.time() * 1000)
    assert deliver(app)["delivered"] == 1

    [request] = receiver.requests
    query = request["query"]
    assert query["access_token"] == ["tok"]
    stamp = int(query["timestamp"][0])
    assert before - 1000 <= stamp <= time.time() * 1000 + 1000
    # DingTalk's documented algorithm, written out again here
    digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(digest).decode()]
    raw_sign = request["raw_query"].split("sign=", 1)[1]
    assert unquote_plus(raw_sign) == base64.b64encode(digest).decode()
    document = json.loads(request["body"])
    assert document["msgtype"] == "markdown"
    assert document["markdown"]["title"] == HEADLINE
    assert document["markdown"]["text"].startswith(HEADLINE)
    assert PHONE not in request["body"].decode()


def test_a_dingtalk_robot_without_a_secret_gets_no_sign(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url("/robot/send") + "?access_token=tok",
             "dingtalk")
    emit(app, hooks.community.id)
    deliver(app)
    assert set(receiver.requests[0]["query"]) == {"access_token"}


def test_a_wish_posted_through_the_api_reaches_the_group_robot(app, client, hooks, org,
                                                             factory, receiver):
    cid = hooks.community.id
    add_hook(app, cid, receiver.url(), "wecom")
    board = client.post(f"/api/v1/communities/{cid}/boards", headers=org,
                        json={"name": "远创樾府3栋"})
    assert board.status_code == 201, board.get_data(as_text=True)
    wish = client.post(f"/api/v1/boards/{board.get_json()['id']}/wishes",
                       headers=factory.headers(hooks.resident),
                       json={"title": "楼道灯坏了", "category": "repair",
                             "description": "三楼的灯一直不亮，老人晚上看不见。",
                             "contact_phone": PHONE, "address": "远创樾府3栋502室"})
    assert wish.status_code == 201, wish.get_data(as_text=True)

    assert deliver(app)["delivered"] == 1
    content = json.loads(receiver.requests[0]["body"])["markdown"]["content"]
    assert content.startswith("【心愿】新心愿 · 远创樾府3栋 · 维修：楼道灯坏了\n")
    for secret_thing in (PHONE, "502", "三楼的灯", hooks.resident.display_name):
        assert secret_thing not in content


@pytest.mark.parametrize("event_type, data, line", [
    ("report.filed", {"title": "5栋东侧", "category": "井盖破损", "reporter": "王女士"},
     "【心愿】新随手拍 · 井盖破损：5栋东侧"),
    ("redemption.created", {"reward": "大米 5kg", "quantity": 2, "user": "王女士",
                            "amount": 400, "holder_id": 3},
     "【心愿】新兑换 · 大米 5kg × 2 · 王女士"),
    ("activity.reminder", {"title": "义诊", "date": "2026-03-12", "time": "09:30",
                           "place": "蜂巢驿站"},
     "【心愿】活动提醒 · 义诊 · 2026-03-12 09:30 · 蜂巢驿站"),
])
def test_other_events_have_an_equivalent_group_line(app, hooks, receiver, event_type, data,
                                                    line):
    add_hook(app, hooks.community.id, receiver.url(), "wecom", events=[event_type])
    emit(app, hooks.community.id, event_type, data, subject=("thing", 1))
    assert deliver(app)["delivered"] == 1
    content = json.loads(receiver.requests[0]["body"])["markdown"]["content"]
    assert content.split("\n")[0] == line
    assert "holder_id" not in content


# --- answers, retries and giving up -------------------------------------------------------

def test_three_failures_then_success_is_delivered_on_the_fourth_attempt(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    event_id = emit(app, hooks.community.id)
    receiver.answer((500, "boom"), (500, "boom"), (502, "bad gateway"))
    totals = deliver(app)
    assert totals["delivered"] == 1 and totals["retrying"] == 3
    row = one(app)
    assert row.status == "delivered" and row.attempts == 4 and row.error is None
    assert [r["headers"]["X-Xinyuan-Event-Id"] for r in receiver.requests] == [str(event_id)] * 4
    assert {r["headers"]["X-Xinyuan-Delivery"] for r in receiver.requests} == {str(row.id)}


def test_a_retry_waits_for_the_schedule_with_jitter(app, hooks, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [100.0, 1000.0])
    monkeypatch.setitem(app.config, "WEBHOOK_JITTER", 0.2)
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    receiver.answer((503, "busy"))
    start = utcnow()
    assert deliver(app)["retrying"] == 1
    row = one(app)
    assert row.status == "pending" and row.attempts == 1 and row.response_code == 503
    assert "HTTP 503" in row.error
    wait = (row.next_attempt_at - start).total_seconds()
    assert 80 <= wait <= 121
    # not due yet: a second run sends nothing
    assert deliver(app)["retrying"] == 0 and len(receiver.requests) == 1


def test_a_404_stops_the_retries(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    receiver.answer((404, "no such hook"))
    assert deliver(app) == {"delivered": 0, "retrying": 0, "failed": 1, "held": 0}
    row = one(app)
    assert row.status == "failed" and row.attempts == 1 and row.response_code == 404
    assert "404" in row.error and len(receiver.requests) == 1


def test_a_429_is_retried_no_sooner_than_its_retry_after(app, hooks, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [30.0, 30.0])
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    receiver.answer((429, "slow down", {"Retry-After": "120"}))
    start = utcnow()
    assert deliver(app)["retrying"] == 1
    row = one(app)
    assert row.status == "pending" and row.attempts == 1 and "HTTP 429" in row.error
    assert (row.next_attempt_at - start).total_seconds() >= 120


@pytest.mark.parametrize("fmt, answer", [
    ("json", (429, "slow down")),
    ("wecom", (200, '{"errcode":45009,"errmsg":"api freq out of limit"}')),
    ("dingtalk", (200, '{"errcode":130101,"errmsg":"send too fast"}')),
])
def test_rate_limits_are_retried_a_minute_later_or_more(app, hooks, receiver, monkeypatch, fmt,
                                                       answer):
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [30.0])
    add_hook(app, hooks.community.id, receiver.url(), fmt)
    emit(app, hooks.community.id)
    receiver.answer(answer)
    start = utcnow()
    assert deliver(app)["retrying"] == 1
    row = one(app)
    assert row.status == "pending" and row.attempts == 1 and row.error
    wait = (row.next_attempt_at - start).total_seconds()
    assert wait >= (60 if fmt != "json" else 30)


@pytest.mark.parametrize("fmt, body", [
    ("wecom", '{"errcode":93000,"errmsg":"invalid webhook url"}'),
    ("dingtalk", '{"errcode":310000,"errmsg":"sign not match"}'),
    ("wecom", "<html>not a robot</html>"),
])
def test_a_robots_other_errcodes_are_permanent_failures(app, hooks, receiver, fmt, body):
    add_hook(app, hooks.community.id, receiver.url(), fmt)
    emit(app, hooks.community.id)
    receiver.answer((200, body))
    assert deliver(app)["failed"] == 1
    row = one(app)
    assert row.status == "failed" and row.attempts == 1 and row.response_code == 200
    assert len(receiver.requests) == 1


def test_a_timeout_is_retried(app, hooks, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 0.5)
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [60.0])
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    receiver.answer((200, "{}", {"delay": 1.5}))
    started = time.monotonic()
    assert deliver(app)["retrying"] == 1
    assert time.monotonic() - started < 1.4
    row = one(app)
    assert row.status == "pending" and row.attempts == 1 and row.response_code is None
    assert "timed out" in row.error and 400 <= row.duration_ms < 1400


def test_a_connection_refused_is_retried(app, hooks, receiver, monkeypatch):
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        closed_port = spare.getsockname()[1]
    calls = []

    def loopback_only(address, timeout):
        calls.append(address)
        assert address == ("127.0.0.1", closed_port)
        return socket.create_connection(address, timeout=timeout)

    monkeypatch.setattr(delivery, "CONNECT", loopback_only)
    add_hook(app, hooks.community.id, f"http://127.0.0.1:{closed_port}/hook")
    emit(app, hooks.community.id)
    # a schedule of four zeros: tried five times, then given up
    assert deliver(app) == {"delivered": 0, "retrying": 4, "failed": 1, "held": 0}
    row = one(app)
    assert row.attempts == 5 and len(calls) == 5
    assert row.error.startswith("gave up after 5 attempts: ConnectionRefusedError")


def test_redirects_are_not_followed(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    receiver.answer((302, "", {"Location": receiver.url("/elsewhere")}))
    assert deliver(app)["failed"] == 1
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    row = one(app)
    assert row.response_code == 302 and "not followed" in row.error


def test_after_the_last_try_the_failure_is_recorded(app, hooks, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [0.0, 0.0])
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    receiver.answer(*[(500, "still broken")] * 10)
    assert deliver(app) == {"delivered": 0, "retrying": 2, "failed": 1, "held": 0}
    row = one(app)
    assert row.status == "failed" and row.attempts == 3 and row.response_code == 500
    assert row.error.startswith("gave up after 3 attempts: HTTP 500")
    assert len(receiver.requests) == 3
    assert deliver(app)["failed"] == 0 and len(receiver.requests) == 3


# --- SSRF ---------------------------------------------------------------------------------

REFUSED_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://127.0.0.1:{port}/hook",  # the receiver itself, with the allowlist emptied
    "http://[::1]:{port}/hook",
    "http://rebind.test:{port}/hook",  # a name that resolves to 10.0.0.1
    "http://metadata.test/hook",
    "http://mixed.test/hook",  # one public and one private address: refused
    "http://[::ffff:10.0.0.1]/hook",
    "ftp://public.test/hook",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_refused_addresses_are_never_connected_to(app, hooks, receiver, net, monkeypatch, url):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", [])
    add_hook(app, hooks.community.id, url.format(port=receiver.port))
    emit(app, hooks.community.id)
    assert deliver(app)["failed"] == 1
    row = one(app)
    assert row.status == "failed" and row.attempts == 1 and row.response_code is None
    assert row.error.startswith("refused")
    assert net.calls == [] and receiver.requests == []


@pytest.mark.parametrize("url", [u for u in REFUSED_URLS if "127.0.0.1" not in u])
def test_post_refuses_before_connecting_even_with_the_receiver_allowlisted(net, receiver, url):
    answer = delivery.post(url.format(port=receiver.port), b"{}", {}, timeout=1,
                           allowlist=["127.0.0.1/32"], resolve=net.resolve,
                           connect=net.connect)
    assert answer.refused and answer.status is None and answer.error.startswith("refused")
    assert net.calls == []


def test_a_url_http_client_cannot_send_fails_without_a_crash(net, receiver):
    answer = delivery.post(receiver.url("/路径"), b"{}", {}, timeout=1,
                           allowlist=["127.0.0.1/32"])
    assert answer.refused and answer.status is None and receiver.requests == []


def test_an_allowlisted_receiver_is_reached_and_others_stay_refused(net, receiver):
    answer = delivery.post(receiver.url(), b"{}", {"Content-Type": "application/json"},
                           timeout=1, allowlist=["127.0.0.1/32"])
    assert answer.status == 200 and answer.error is None and not answer.refused
    assert net.calls == [("127.0.0.1", receiver.port)]
    refused = delivery.post(receiver.url(), b"{}", {}, timeout=1, allowlist=[])
    assert refused.refused and net.calls == [("127.0.0.1", receiver.port)]


# --- quiet hours and spacing --------------------------------------------------------------

LATE_EVENING = datetime(2026, 3, 10, 23, 30, tzinfo=SHANGHAI)


def test_quiet_hours_hold_a_non_urgent_robot_message_until_morning(app, hooks, receiver):
    cid = hooks.community.id
    add_hook(app, cid, receiver.url(), "wecom", quiet_start="22:00", quiet_end="07:00")
    json_hook = add_hook(app, cid, receiver.url("/json"))
    with frozen_clock(LATE_EVENING):
        emit(app, cid)
        totals = deliver(app)
    assert totals == {"delivered": 1, "retrying": 0, "failed": 0, "held": 1}
    assert [r["path"] for r in receiver.requests] == ["/json"]  # our own system is not held
    [held] = [r for r in rows(app) if r.webhook_id != json_hook]
    assert held.status == "pending" and held.attempts == 0 and held.lease_owner is None
    assert held.next_attempt_at == datetime(2026, 3, 11, 7, 0, tzinfo=SHANGHAI)

    with frozen_clock(datetime(2026, 3, 11, 6, 59, tzinfo=SHANGHAI)):
        assert deliver(app)["delivered"] == 0
    with frozen_clock(datetime(2026, 3, 11, 7, 0, 5, tzinfo=SHANGHAI)):
        assert deliver(app)["delivered"] == 1
    assert len(receiver.requests) == 2


def test_an_urgent_event_goes_out_in_quiet_hours(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url(), "dingtalk", quiet_start="22:00",
             quiet_end="07:00")
    with frozen_clock(datetime(2026, 3, 11, 2, 0, tzinfo=SHANGHAI)):
        emit(app, hooks.community.id, "wish.escalated")
        assert deliver(app)["delivered"] == 1


@pytest.mark.parametrize("start, end, moment, quiet", [
    ("22:00", "07:00", (23, 30), True), ("22:00", "07:00", (6, 59), True),
    ("22:00", "07:00", (7, 0), False), ("22:00", "07:00", (12, 0), False),
    ("12:00", "14:00", (13, 0), True), ("12:00", "14:00", (14, 30), False),
    ("08:00", "08:00", (8, 0), False), (None, "07:00", (23, 0), False),
])
def test_quiet_hours_may_wrap_midnight(start, end, moment, quiet):
    target = delivery.Target(1, "http://x", "wecom", quiet_start=start, quiet_end=end)
    now = datetime(2026, 3, 10, *moment, tzinfo=SHANGHAI)
    until = delivery.quiet_until(target, now)
    assert (until is not None) == quiet
    if quiet:
        assert until > now and until - now <= timedelta(hours=24)
        assert until.astimezone(SHANGHAI).strftime("%H:%M") == end


def test_messages_to_one_robot_are_spaced(app, hooks, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ROBOT_SPACING", 30.0)
    cid = hooks.community.id
    robot = add_hook(app, cid, receiver.url("/one"), "wecom")
    add_hook(app, cid, receiver.url("/two"), "dingtalk")
    for _ in range(3):
        emit(app, cid)
    totals = deliver(app)
    # each robot takes one now; the other two messages of each wait for their slot
    assert totals == {"delivered": 2, "retrying": 0, "failed": 0, "held": 4}
    assert sorted(r["path"] for r in receiver.requests) == ["/one", "/two"]
    with reading(app) as session:
        send_after = session.get(Webhook, robot).send_after
    held = [r for r in rows(app, webhook_id=robot) if r.status == "pending"]
    assert len(held) == 2
    for row in held:
        assert row.attempts == 0 and row.next_attempt_at == send_after
    assert (send_after - utcnow()).total_seconds() > 25
    # when the slot comes, the oldest waiting message goes next
    with frozen_clock(send_after + timedelta(seconds=1)):
        assert deliver(app)["delivered"] == 2
    assert rows(app, webhook_id=robot)[1].status == "delivered"


# --- which deliveries are taken -----------------------------------------------------------

def test_a_disabled_webhooks_deliveries_stay_pending(app, hooks, receiver):
    hook = add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    with app.app_context(), write_transaction(db.session) as session:
        session.execute(sa.update(Webhook).where(Webhook.id == hook).values(enabled=False))
    assert deliver(app)["delivered"] == 0
    assert one(app).status == "pending" and one(app).attempts == 0 and not receiver.requests
    with app.app_context(), write_transaction(db.session) as session:
        session.execute(sa.update(Webhook).where(Webhook.id == hook).values(enabled=True))
    assert deliver(app)["delivered"] == 1


def test_a_leased_delivery_is_left_to_its_worker_until_the_lease_runs_out(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    with app.app_context(), write_transaction(db.session) as session:
        session.execute(sa.update(Delivery).values(
            lease_owner="another-worker", lease_until=utcnow() + timedelta(seconds=30)))
    assert deliver(app)["delivered"] == 0 and not receiver.requests
    with frozen_clock(utcnow() + timedelta(seconds=31)):
        assert deliver(app)["delivered"] == 1
    assert one(app).status == "delivered"


def test_a_lease_lost_mid_batch_is_not_recorded_over(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    with app.app_context():
        [job] = delivery.claim("me", 10)
        with write_transaction(db.session) as session:  # the lease ran out; another took it
            session.execute(sa.update(Delivery).values(lease_owner="someone-else"))
        assert delivery.renew([job], "me") == []
        assert delivery.record(job, "me", delivery.Answer(200)) is None
        db.session.remove()
    row = one(app)
    assert row.status == "pending" and row.attempts == 0 and row.lease_owner == "someone-else"


def test_the_long_running_worker_stops_on_sigterm(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    timer.start()
    try:
        with app.app_context():
            totals = delivery.run(once=False, batch=10, idle=0.1)
    finally:
        timer.cancel()
    assert totals["delivered"] == 1
    assert signal.getsignal(signal.SIGTERM) is before


# --- what the webhooks API calls ----------------------------------------------------------

def test_send_test_sends_a_signed_json_test_event_at_once(app, hooks, receiver):
    hook_id = add_hook(app, hooks.community.id, receiver.url(), secret="k")
    with app.app_context():
        result = delivery.send_test(db.session.get(Webhook, hook_id))
    assert result == {"ok": True, "response_code": 200, "duration_ms": result["duration_ms"],
                      "error": None, "response": Receiver.OK[1]}
    [request] = receiver.requests
    headers = request["headers"]
    assert headers["X-Xinyuan-Event"] == "webhook.test"
    expected = hmac.new(b"k", f"{headers['X-Xinyuan-Timestamp']}.".encode() + request["body"],
                        hashlib.sha256).hexdigest()
    assert headers["X-Xinyuan-Signature"] == f"sha256={expected}"
    document = json.loads(request["body"])
    assert document["type"] == "webhook.test" and document["text"].startswith("【心愿】测试消息：")
    assert rows(app) == []  # a test message is no delivery


@pytest.mark.parametrize("fmt", ["wecom", "dingtalk"])
def test_send_test_to_a_robot_says_how_it_answered(app, hooks, receiver, fmt):
    hook_id = add_hook(app, hooks.community.id, receiver.url(), fmt)
    receiver.answer((200, '{"errcode":93000,"errmsg":"invalid webhook url"}'))
    with app.app_context():
        hook = db.session.get(Webhook, hook_id)
        failed = delivery.send_test(hook)
        worked = delivery.send_test(hook)
    assert failed["ok"] is False and failed["response_code"] == 200
    assert "93000" in failed["error"] and "invalid webhook url" in failed["response"]
    assert worked["ok"] is True and worked["error"] is None
    body = json.loads(receiver.requests[1]["body"])["markdown"]
    assert (body.get("content") or body.get("text")).startswith("【心愿】测试消息：")


def test_send_test_to_a_refused_address_sends_nothing(app, hooks, receiver, net):
    hook_id = add_hook(app, hooks.community.id, "http://rebind.test/hook", "wecom")
    with app.app_context():
        result = delivery.send_test(db.session.get(Webhook, hook_id))
    assert result["ok"] is False and result["response_code"] is None
    assert result["error"].startswith("refused") and net.calls == []


def test_resend_sends_a_failed_delivery_again_at_once(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    receiver.answer((404, "not yet"))
    assert deliver(app)["failed"] == 1
    delivery_id = one(app).id
    with app.app_context():
        row = delivery.resend(delivery_id)
        assert row.status == "delivered" and row.attempts == 1 and row.error is None
        assert row.response_code == 200
        db.session.remove()
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["headers"]["X-Xinyuan-Event-Id"] == \
        receiver.requests[1]["headers"]["X-Xinyuan-Event-Id"]


def test_resend_records_a_new_failure_from_a_fresh_count(app, hooks, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", [600.0])
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    receiver.answer((500, "a"), (500, "b"))
    assert deliver(app)["retrying"] == 1
    with app.app_context():
        row = delivery.resend(one(app).id)
        assert (row.status, row.attempts, row.response_code) == ("pending", 1, 500)
        assert row.next_attempt_at > utcnow() + timedelta(seconds=400)
        db.session.remove()


def test_resend_leaves_a_delivery_being_sent_to_its_worker(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    with app.app_context():
        [job] = delivery.claim("worker-a", 10)
        row = delivery.resend(job.delivery_id)
        assert row.lease_owner == "worker-a" and row.attempts == 0
        db.session.remove()
    assert receiver.requests == []


def test_delivery_times_are_aware_utc(app, hooks, receiver):
    add_hook(app, hooks.community.id, receiver.url())
    emit(app, hooks.community.id)
    deliver(app)
    row = one(app)
    assert row.delivered_at.tzinfo is not None
    assert row.delivered_at.astimezone(UTC) <= utcnow()
