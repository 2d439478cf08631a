"""Sending the outbox's webhook deliveries: `flask outbox run`, a test message, a re-send.

At least once: a worker claims due deliveries with a lease in a short transaction (PostgreSQL:
`FOR UPDATE SKIP LOCKED`; SQLite: BEGIN IMMEDIATE serialises the claimers), sends with no
transaction open, and records the answer in another short transaction, only while the lease is
still its own. A worker that dies mid-send leaves a lease that runs out; another worker sends
the delivery again, and the event id in every payload lets the receiver drop the duplicate.

The connection is made here and nowhere else: the URL's host is resolved once, every address
is checked against the SSRF policy (app.notifications.addresses), and the socket is opened to a
checked address — so a name that now resolves to 10.0.0.1 (DNS rebinding) reaches nothing.
Redirects are never followed.

Deliveries of a disabled webhook are not claimed: they stay pending and go out (late) if the
webhook is enabled again; deleting the webhook deletes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import random
import signal
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from urllib.parse import quote_plus, urlsplit

import sqlalchemy as sa
from flask import current_app

from app.db import dialect_name, utcnow, write_transaction
from app.extensions import db
from app.localtime import SHANGHAI
from app.notifications import addresses
from app.notifications.catalogue import EVENT_TYPES
from app.notifications.models import Delivery, Event, Webhook
from app.notifications.outbox import mask_digits

# Hooks for the tests: a resolver `(host, port) -> [address, …]` and a connect function
# `((ip, port), timeout) -> socket`. None means the real ones (getaddrinfo, create_connection).
RESOLVE = None
CONNECT = None

ROBOT_FORMATS = ("wecom", "dingtalk")
# The robots' "too many messages" errcodes: retried later, never sooner than a minute.
RATE_LIMITED = {"wecom": {45009}, "dingtalk": {130101}}
RATE_LIMIT_WAIT = 60.0
PREFIX = "【心愿】"
RESPONSE_LIMIT = 2000
ERROR_LIMIT = 500
USER_AGENT = "Xinyuan-Webhook/1"

# Event data a payload may carry; free text among them has phone-like digits masked. A phone,
# an address, a description or a holder's id is never here (nor, mostly, in the data at all).
SAFE_FIELDS = ("title", "board", "category", "claimer", "user", "reporter", "amount",
               "quantity", "reward", "date", "time", "place", "level", "rating", "points")
UNMASKED = ("date", "time", "amount", "quantity", "level", "rating", "points")


# --- one HTTP POST, SSRF-safe -------------------------------------------------------------

@dataclass
class Answer:
    """What one POST came back with; `status` None when no HTTP answer came at all."""

    status: int | None
    body_text: str = ""
    duration_ms: int = 0
    error: str | None = None
    refused: bool = False  # the address policy refused the URL: no packet was sent
    retry_after: float = 0.0  # a 429's Retry-After, in seconds (at most an hour)


def _resolve(host: str, port: int) -> list[str]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in found))


def _connect(address: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


def post(url: str, body: bytes, headers: dict, *, timeout: float, allowlist,
         resolve=None, connect=None) -> Answer:
    """POST `body` to `url`, connecting only to addresses the policy allows; never redirect."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port = addresses.split(url)
        literal = addresses.literal(host)
        found = [str(literal)] if literal is not None else (
            resolve or RESOLVE or _resolve)(host, port)
        if not found:
            raise addresses.RefusedAddress(f"{host} resolves to no address")
        allowed = addresses.networks(allowlist)
        for address in found:
            if not addresses.address_allowed(address, allowed):
                raise addresses.RefusedAddress(
                    f"{host} resolves to {address}, which is not a public address")
    except addresses.RefusedAddress as refusal:
        return Answer(None, "", elapsed(), f"refused: {refusal}", refused=True)
    except (OSError, UnicodeError) as error:
        return Answer(None, "", elapsed(), f"cannot resolve {host}: {error}"[:ERROR_LIMIT])

    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    opener = connect or CONNECT or _connect
    connection = None
    try:
        sock = _open(found, port, timeout, opener)
        if scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            connection = http.client.HTTPSConnection(host, port, timeout=timeout)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        # The checked socket is the connection's: http.client never resolves the name again,
        # and the Host header (and TLS name) stay the URL's own host.
        connection.sock = sock
        connection.request("POST", target, body=body, headers={
            "User-Agent": USER_AGENT, **headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        text = response.read(RESPONSE_LIMIT * 4).decode("utf-8", "replace")[:RESPONSE_LIMIT]
        error = None
        if 300 <= response.status < 400:
            error = f"HTTP {response.status}: redirect to {response.getheader('Location')!s} " \
                    "not followed"
        return Answer(response.status, text, elapsed(), error,
                      retry_after=_seconds(response.getheader("Retry-After")))
    except TimeoutError:
        return Answer(None, "", elapsed(), f"timed out after {timeout:g} s")
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, "", elapsed(), f"{type(error).__name__}: {error}"[:ERROR_LIMIT])
    except ValueError as error:  # a path http.client will not send (control or non-ASCII)
        return Answer(None, "", elapsed(), f"refused: the URL cannot be sent: {error}"[
            :ERROR_LIMIT], refused=True)
    finally:
        if connection is not None:
            connection.close()


def _seconds(header: str | None) -> float:
    try:
        return min(max(float(header or 0), 0.0), 3600.0)
    except ValueError:
        return 0.0  # an HTTP date: the schedule decides


def _open(found: list[str], port: int, timeout: float, opener) -> socket.socket:
    """A socket to the first checked address that answers."""
    last: OSError | None = None
    for address in found:
        try:
            return opener((address, port), timeout)
        except OSError as error:
            last = error
    raise last or OSError("no address to connect to")


# --- what is sent: the three formats ------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A webhook as it was when its delivery was claimed (read outside any transaction)."""

    id: int
    url: str
    format: str
    secret: str | None = None
    quiet_start: str | None = None
    quiet_end: str | None = None

    @classmethod
    def of(cls, hook: Webhook) -> Target:
        return cls(hook.id, hook.url, hook.format, hook.secret, hook.quiet_start, hook.quiet_end)

    @property
    def robot(self) -> bool:
        return self.format in ROBOT_FORMATS


@dataclass(frozen=True)
class Message:
    """An outbox event with its community, as a payload needs them."""

    id: int | str
    type: str
    created_at: datetime
    community_id: int
    community_name: str
    community_code: str
    subject_type: str | None = None
    subject_id: int | None = None
    data: dict = field(default_factory=dict)

    @classmethod
    def of(cls, event: Event, community) -> Message:
        return cls(event.id, event.type, event.created_at, community.id, community.name,
                   community.code, event.subject_type, event.subject_id, dict(event.data or {}))


class _Blank(dict):
    def __missing__(self, key):
        return ""


def safe_data(data: dict) -> dict:
    """The event data a payload may carry, free text with phone-like digits masked."""
    out = {}
    for name in SAFE_FIELDS:
        value = data.get(name)
        if value is None or value == "":
            continue
        out[name] = mask_digits(value) if isinstance(value, str) and name not in UNMASKED \
            else value
    return out


def headline(message: Message) -> str:
    """The group line, always Chinese: 【心愿】新心愿 · 远创樾府3栋 · 维修：楼道灯坏了."""
    spec = EVENT_TYPES.get(message.type)
    label = spec.label if spec else message.type
    data = _Blank(safe_data(message.data))
    kind = message.type.split(".", 1)[0]
    if kind == "wish":
        parts = [label, data["board"], f"{data['category']}：{data['title']}"]
    elif kind == "report":
        parts = [label, f"{data['category']}：{data['title']}"]
    elif kind == "redemption":
        parts = [label, f"{data['reward']} × {data['quantity']}", data["user"]]
    elif kind == "activity":
        parts = [label, data["title"], f"{data['date']} {data['time']}".strip(), data["place"]]
    elif kind == "points":
        parts = [label, f"{data['amount']} 积分"]
    else:
        parts = [label]
    return PREFIX + " · ".join(part for part in parts if part and part != "：")


def sentence(message: Message) -> str:
    """The catalogue's line for the event, in Chinese, from the masked data (no request needed)."""
    spec = EVENT_TYPES.get(message.type)
    if spec is None:
        return ""
    # A reason (a dispute, a cancellation) is free text written by a resident or staff: it may
    # name a flat or a neighbour, so it stays out of group messages, as descriptions do.
    data = _Blank(safe_data(message.data))
    return spec.text.format_map(data).rstrip("：: ")


def markdown(message: Message) -> str:
    local = message.created_at.astimezone(SHANGHAI)
    lines = [headline(message)]
    said = sentence(message)
    if said:
        lines.append(f"> {said}")
    lines.append(f"> {message.community_name} · {local:%m-%d %H:%M}")
    return "\n".join(lines)


def json_payload(message: Message, text: str | None = None) -> dict:
    return {
        "id": message.id, "type": message.type,
        "created_at": message.created_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
        "community": {"id": message.community_id, "name": message.community_name,
                      "code": message.community_code},
        "object": {"type": message.subject_type, "id": message.subject_id,
                   **safe_data(message.data)},
        "text": text if text is not None else headline(message),
    }


def sign_json(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def sign_dingtalk(secret: str, timestamp_ms: int) -> str:
    """DingTalk's documented signature: base64(HMAC-SHA256(secret, "ts\\nsecret")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return quote_plus(base64.b64encode(digest.digest()).decode())


def _encode(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def build(target: Target, message: Message, delivery_id, *, text: str | None = None,
          now: float | None = None) -> tuple[str, bytes, dict]:
    """(url, body, headers) of one message to one webhook, signed at `now` (unix seconds)."""
    now = time.time() if now is None else now
    headers = {"Content-Type": "application/json"}
    if target.format == "wecom":
        content = text or markdown(message)
        return target.url, _encode({"msgtype": "markdown", "markdown": {"content": content}}), \
            headers
    if target.format == "dingtalk":
        content = text or markdown(message)
        title = content.split("\n", 1)[0][:64]
        url = target.url
        if target.secret:
            stamp = int(now * 1000)
            url += ("&" if urlsplit(url).query else "?") + \
                f"timestamp={stamp}&sign={sign_dingtalk(target.secret, stamp)}"
        return url, _encode({"msgtype": "markdown",
                             "markdown": {"title": title, "text": content}}), headers
    body = _encode(json_payload(message, text))
    stamp = int(now)
    headers.update({"X-Xinyuan-Event": message.type, "X-Xinyuan-Event-Id": str(message.id),
                    "X-Xinyuan-Delivery": str(delivery_id), "X-Xinyuan-Timestamp": str(stamp)})
    if target.secret:
        headers["X-Xinyuan-Signature"] = sign_json(target.secret, stamp, body)
    return target.url, body, headers


def send(target: Target, message: Message, delivery_id, *, text: str | None = None) -> Answer:
    url, body, headers = build(target, message, delivery_id, text=text)
    config = current_app.config
    return post(url, body, headers, timeout=float(config["WEBHOOK_TIMEOUT"]),
                allowlist=config.get("WEBHOOK_ALLOWED_NETWORKS") or ())


# --- what an answer means -----------------------------------------------------------------

DELIVERED, RETRY, FAILED = "delivered", "retry", "failed"


def judge(target_format: str, answer: Answer) -> tuple[str, str | None, float]:
    """(verdict, error, least seconds before a retry) of one answer."""
    if answer.refused:
        return FAILED, answer.error, 0.0  # a policy refusal does not change by waiting
    if answer.status is None:
        return RETRY, answer.error, 0.0
    status = answer.status
    if target_format in ROBOT_FORMATS and status == 200:
        try:
            document = json.loads(answer.body_text)
            errcode = int(document.get("errcode"))
        except (ValueError, TypeError, AttributeError):
            return FAILED, f"HTTP 200 without a robot's errcode: {answer.body_text[:200]}", 0.0
        if errcode == 0:
            return DELIVERED, None, 0.0
        said = f"errcode {errcode}: {document.get('errmsg', '')}"[:ERROR_LIMIT]
        if errcode in RATE_LIMITED[target_format]:
            return RETRY, said, RATE_LIMIT_WAIT
        return FAILED, said, 0.0
    if 200 <= status < 300 and target_format not in ROBOT_FORMATS:
        return DELIVERED, None, 0.0
    error = answer.error or f"HTTP {status}: {answer.body_text[:200]}"
    if status == 429 or status >= 500:
        return RETRY, error[:ERROR_LIMIT], answer.retry_after if status == 429 else 0.0
    return FAILED, error[:ERROR_LIMIT], 0.0  # 4xx, a redirect, an unexpected 2xx from a robot


# --- quiet hours --------------------------------------------------------------------------

def _clock(text: str | None) -> clock_time | None:
    try:
        hours, minutes = (text or "").split(":")
        return clock_time(int(hours), int(minutes))
    except ValueError:
        return None


def quiet_until(target: Target, now: datetime) -> datetime | None:
    """The end of the webhook's quiet hours if `now` is inside them (Asia/Shanghai), else None."""
    start, end = _clock(target.quiet_start), _clock(target.quiet_end)
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(SHANGHAI)
    at = local.time()
    inside = (start <= at < end) if start < end else (at >= start or at < end)
    if not inside:
        return None
    ends = datetime.combine(local.date(), end, SHANGHAI)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(UTC)


# --- the worker ---------------------------------------------------------------------------

@dataclass
class Job:
    delivery_id: int
    attempts: int
    target: Target
    message: Message


def _due(now: datetime):
    return sa.and_(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                   sa.or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))


def claim(owner: str, batch: int, *, delivery_id: int | None = None) -> list[Job]:
    """Lease up to `batch` due deliveries (oldest first) to `owner`, in one short transaction."""
    from app.communities.models import Community

    config = current_app.config
    with write_transaction(db.session) as session:
        now = utcnow()
        query = (sa.select(Delivery.id).join(Webhook, Webhook.id == Delivery.webhook_id)
                 .where(_due(now), Webhook.enabled.is_(True))
                 .order_by(Delivery.next_attempt_at, Delivery.id).limit(batch))
        if delivery_id is not None:
            query = query.where(Delivery.id == delivery_id)
        if dialect_name(session) == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Delivery)
        ids = list(session.scalars(query))
        if not ids:
            return []
        session.execute(sa.update(Delivery).where(Delivery.id.in_(ids)).values(
            lease_until=now + timedelta(seconds=config["WEBHOOK_LEASE_SECONDS"]),
            lease_owner=owner), execution_options={"synchronize_session": False})
        rows = session.execute(
            sa.select(Delivery, Webhook, Event, Community)
            .join(Webhook, Webhook.id == Delivery.webhook_id)
            .join(Event, Event.id == Delivery.event_id)
            .join(Community, Community.id == Event.community_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.next_attempt_at, Delivery.id)).all()
        return [Job(d.id, d.attempts, Target.of(w), Message.of(e, c)) for d, w, e, c in rows]


def _ours(job: Job, owner: str):
    return sa.and_(Delivery.id == job.delivery_id, Delivery.lease_owner == owner,
                   Delivery.status == "pending")


def hold(job: Job, owner: str, until: datetime) -> None:
    """Put a claimed delivery back until `until`, without counting an attempt."""
    with write_transaction(db.session) as session:
        session.execute(sa.update(Delivery).where(_ours(job, owner)).values(
            next_attempt_at=until, lease_until=None, lease_owner=None),
            execution_options={"synchronize_session": False})


def release(jobs: list[Job], owner: str) -> None:
    """Give claimed deliveries back at once (a stopping worker), as they were."""
    if not jobs:
        return
    with write_transaction(db.session) as session:
        session.execute(sa.update(Delivery).where(
            Delivery.id.in_([job.delivery_id for job in jobs]),
            Delivery.lease_owner == owner).values(lease_until=None, lease_owner=None),
            execution_options={"synchronize_session": False})


def reserve_robot(job: Job, owner: str) -> datetime | None:
    """Take the robot's next sending slot; None if taken, else the time it frees up."""
    spacing = float(current_app.config["WEBHOOK_ROBOT_SPACING"])
    with write_transaction(db.session) as session:
        now = utcnow()
        taken = session.execute(sa.update(Webhook).where(
            Webhook.id == job.target.id,
            sa.or_(Webhook.send_after.is_(None), Webhook.send_after <= now)).values(
            send_after=now + timedelta(seconds=spacing)),
            execution_options={"synchronize_session": False}).rowcount
        if taken:
            return None
        free_at = session.scalar(sa.select(Webhook.send_after).where(
            Webhook.id == job.target.id))
        return free_at or now


def renew(jobs: list[Job], owner: str) -> list[Job]:
    """Extend the lease of the jobs not yet sent; those no longer ours are dropped."""
    if not jobs:
        return jobs
    seconds = current_app.config["WEBHOOK_LEASE_SECONDS"]
    ids = [job.delivery_id for job in jobs]
    with write_transaction(db.session) as session:
        now = utcnow()
        session.execute(sa.update(Delivery).where(
            Delivery.id.in_(ids), Delivery.lease_owner == owner,
            Delivery.status == "pending").values(lease_until=now + timedelta(seconds=seconds)),
            execution_options={"synchronize_session": False})
        kept = set(session.scalars(sa.select(Delivery.id).where(
            Delivery.id.in_(ids), Delivery.lease_owner == owner)))
    return [job for job in jobs if job.delivery_id in kept]


def record(job: Job, owner: str, answer: Answer) -> str | None:
    """Write one attempt's outcome (if the lease is still ours): delivered, retrying or failed."""
    config = current_app.config
    schedule = [float(s) for s in config["WEBHOOK_RETRY_SCHEDULE"]]
    jitter = float(config["WEBHOOK_JITTER"])
    verdict, error, least = judge(job.target.format, answer)
    attempts = job.attempts + 1
    now = utcnow()
    values = {"attempts": attempts, "last_attempt_at": now, "response_code": answer.status,
              "duration_ms": answer.duration_ms, "error": error[:ERROR_LIMIT] if error else None,
              "lease_until": None, "lease_owner": None}
    if verdict == DELIVERED:
        values.update(status="delivered", delivered_at=now)
        outcome = "delivered"
    elif verdict == RETRY and attempts <= len(schedule):
        # Jitter spreads retries of many deliveries apart; it protects nothing.
        delay = schedule[attempts - 1] * (1 + random.uniform(-jitter, jitter))  # noqa: S311
        values.update(next_attempt_at=now + timedelta(seconds=max(delay, least)))
        outcome = "retrying"
    else:
        if verdict == RETRY:
            values["error"] = f"gave up after {attempts} attempts: {error}"[:ERROR_LIMIT]
        values["status"] = "failed"
        outcome = "failed"
    with write_transaction(db.session) as session:
        if dialect_name(session) == "postgresql":
            # Losing this record in a database crash only means sending once more (at least
            # once, deduplicated by event id); not waiting for the flush doubles throughput.
            session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
        changed = session.execute(sa.update(Delivery).where(_ours(job, owner)).values(**values),
                                  execution_options={"synchronize_session": False}).rowcount
    if not changed:
        current_app.logger.warning("delivery %s: lease lost before recording", job.delivery_id)
        return None
    return outcome


def process(job: Job, owner: str, *, respect_quiet: bool = True) -> str | None:
    """Send one claimed delivery (or hold it back) and record it; the count it adds to."""
    if job.target.robot:
        spec = EVENT_TYPES.get(job.message.type)
        until = quiet_until(job.target, utcnow()) if respect_quiet else None
        if until is not None and not (spec and spec.urgent):
            hold(job, owner, until)
            return "held"
        free_at = reserve_robot(job, owner)
        if free_at is not None:
            hold(job, owner, free_at)
            return "held"
    answer = send(job.target, job.message, job.delivery_id)
    return record(job, owner, answer)


class _Stop:
    """SIGTERM/SIGINT ask the worker to stop after the current send."""

    def __init__(self):
        self.event = threading.Event()
        self._previous = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._ask)

    def _ask(self, _signum, _frame) -> None:
        self.event.set()

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def asked(self) -> bool:
        return self.event.is_set()


def run(once: bool = False, batch: int = 50, idle: float = 1.0) -> dict:
    """Deliver due deliveries: until none is due (`once`), or until SIGTERM/SIGINT."""
    owner = str(uuid.uuid4())
    totals = {"delivered": 0, "retrying": 0, "failed": 0, "held": 0}
    stop = _Stop()
    if not once:
        stop.install()
    lease = float(current_app.config["WEBHOOK_LEASE_SECONDS"])
    try:
        while not stop.asked:
            jobs = claim(owner, batch)
            db.session.remove()
            if not jobs:
                if once:
                    break
                stop.event.wait(idle)
                continue
            claimed_at = time.monotonic()
            while jobs:
                if stop.asked:
                    release(jobs, owner)
                    break
                if time.monotonic() - claimed_at > lease / 2:
                    jobs = renew(jobs, owner)
                    claimed_at = time.monotonic()
                    if not jobs:
                        break
                outcome = process(jobs.pop(0), owner)
                if outcome:
                    totals[outcome] += 1
            db.session.remove()
    finally:
        stop.restore()
        db.session.remove()
    return totals


# --- what the webhooks API calls ----------------------------------------------------------

def send_test(webhook: Webhook) -> dict:
    """Send a test message to `webhook` now and say how it answered.

    Ends the caller's transaction first (nothing is held open during the network call).
    """
    from app.communities.models import Community

    target = Target.of(webhook)
    community = db.session.get(Community, webhook.community_id)
    now = utcnow()
    message = Message(f"test-{uuid.uuid4().hex[:12]}", "webhook.test", now, community.id,
                      community.name, community.code)
    text = f"{PREFIX}测试消息：{community.name}的心愿通知已接通，此后的新消息会发到这里。"
    db.session.commit()
    answer = send(target, message, message.id, text=text)
    verdict, error, _least = judge(target.format, answer)
    return {"ok": verdict == DELIVERED, "response_code": answer.status,
            "duration_ms": answer.duration_ms, "error": error, "response": answer.body_text}


def resend(delivery_id: int) -> Delivery:
    """Make a delivery pending and due now, then claim, send and record it at once.

    A delivery a worker is sending right now (its lease running) is left to that worker.
    Quiet hours do not apply (an organiser asked); the robot's spacing does.
    """
    owner = str(uuid.uuid4())
    with write_transaction(db.session) as session:
        now = utcnow()
        session.execute(sa.update(Delivery).where(
            Delivery.id == delivery_id,
            sa.or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)).values(
            status="pending", next_attempt_at=now, attempts=0, delivered_at=None,
            lease_until=None, lease_owner=None),
            execution_options={"synchronize_session": False})
    jobs = claim(owner, 1, delivery_id=delivery_id)
    for job in jobs:
        process(job, owner, respect_quiet=False)
    db.session.expire_all()
    return db.session.get(Delivery, delivery_id)
