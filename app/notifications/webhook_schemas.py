"""Schemas of the webhooks endpoints: what an organiser may set, and what is read back.

The secret is write-only (`has_secret` is read instead), and the robot's `key` /
`access_token` in the URL is masked on read (`webhooks.masked_url`).
"""

import re

import marshmallow as ma
from marshmallow import fields, validate

from app.i18n import F_
from app.notifications.catalogue import GROUP_TYPES, TYPE_NAMES
from app.notifications.webhooks import FORMATS
from app.schemas import LocalDateTime, PageQuery, StrictBoolean, StrictSchema, Text

CLOCK = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$", re.ASCII)
MAX_URL = 2048
MAX_SECRET = 128

URL_DOC = ("where events are POSTed: http(s) and a public address (private, loopback and "
           "link-local ones are refused unless the server allowlists them). A WeCom (企业微信) "
           "group robot's looks like https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…, a "
           "DingTalk (钉钉) one like https://oapi.dingtalk.com/robot/send?access_token=…; read "
           "back with the key / access_token masked (ab****yz)")
FORMAT_DOC = ("json: our signed JSON event (X-Xinyuan-Signature, HMAC-SHA256 with the secret); "
              "wecom: a WeCom group robot's markdown message; dingtalk: a DingTalk group robot's "
              "markdown message (signed with the secret when its 加签 security setting is on)")
EVENTS_DOC = ("the event types to send, each once; group robots (wecom, dingtalk) may only take "
              "the organiser-facing ones: " + ", ".join(GROUP_TYPES))
SECRET_DOC = ("write-only: signs json payloads, and DingTalk calls (its 加签 secret, SEC…); "
              "null clears it")
QUIET_DOC = ("HH:MM, Asia/Shanghai: from quiet_start to quiet_end (across midnight if end < start) "
             "group messages wait, except urgent ones; give both or neither")

EVENT_TYPE = fields.String(validate=validate.OneOf(TYPE_NAMES),
                           metadata={"description": "an event type (dotted slug)",
                                     "enum": list(TYPE_NAMES)})


def _clock(**kwargs) -> fields.String:
    return fields.String(validate=validate.Regexp(CLOCK, error=F_("Not a time of day (HH:MM).")),
                         metadata={"description": QUIET_DOC, "example": "22:00",
                                   "pattern": CLOCK.pattern}, **kwargs)


def _unique(events: list) -> None:
    if len(set(events)) != len(events):
        raise ma.ValidationError(F_("Each event type may be given once."))


class WebhookUpdateSchema(StrictSchema):
    """Every field optional; `secret`, `quiet_start` and `quiet_end` may be null (cleared)."""

    name = Text(min_length=0, max_length=40, metadata={
        "description": "what the organisers call it (\"居委会工作群\")"})
    url = Text(max_length=MAX_URL, metadata={"description": URL_DOC})
    format = fields.String(validate=validate.OneOf(FORMATS),
                           metadata={"description": FORMAT_DOC, "enum": list(FORMATS)})
    events = fields.List(EVENT_TYPE, validate=[validate.Length(min=1, max=len(TYPE_NAMES)), _unique],
                         metadata={"description": EVENTS_DOC})
    secret = Text(max_length=MAX_SECRET, allow_none=True, load_only=True,
                  metadata={"description": SECRET_DOC})
    enabled = StrictBoolean(metadata={"description": "false: nothing is sent (events are not "
                                                     "queued for it meanwhile)"})
    quiet_start = _clock(allow_none=True)
    quiet_end = _clock(allow_none=True)


class WebhookCreateSchema(WebhookUpdateSchema):
    url = Text(max_length=MAX_URL, required=True, metadata={"description": URL_DOC})
    format = fields.String(required=True, validate=validate.OneOf(FORMATS),
                           metadata={"description": FORMAT_DOC, "enum": list(FORMATS)})
    events = fields.List(EVENT_TYPE, required=True,
                         validate=[validate.Length(min=1, max=len(TYPE_NAMES)), _unique],
                         metadata={"description": EVENTS_DOC})
    enabled = StrictBoolean(load_default=True, metadata={"description": "default true"})
    # Quiet hours both or neither: the service checks it (for a change, against what is stored).


class WebhookSchema(ma.Schema):
    id = fields.Integer()
    community_id = fields.Integer()
    name = fields.String()
    url = fields.String(metadata={"description": "the URL, its key / access_token masked"})
    format = fields.String(metadata={"enum": list(FORMATS)})
    events = fields.List(fields.String(metadata={"enum": list(TYPE_NAMES)}))
    has_secret = fields.Boolean(metadata={"description": "a secret is set (it is never shown)"})
    enabled = fields.Boolean()
    quiet_start = fields.String(allow_none=True, metadata={"example": "22:00"})
    quiet_end = fields.String(allow_none=True, metadata={"example": "07:00"})
    created_by_id = fields.Integer(allow_none=True)
    created_at = LocalDateTime()
    updated_at = LocalDateTime()


class DeliverySchema(ma.Schema):
    id = fields.Integer()
    event_id = fields.Integer()
    event_type = fields.String(attribute="event.type", metadata={"enum": list(TYPE_NAMES)})
    status = fields.String(metadata={"enum": ["pending", "delivered", "failed"],
                                     "description": "pending (waiting or retrying), delivered, "
                                                    "failed (given up after the last retry)"})
    attempts = fields.Integer()
    response_code = fields.Integer(allow_none=True, metadata={
        "description": "the receiver's HTTP status of the last attempt"})
    duration_ms = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "why the last attempt failed"})
    next_attempt_at = LocalDateTime(allow_none=True)
    last_attempt_at = LocalDateTime(allow_none=True)
    delivered_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()


class TestResultSchema(ma.Schema):
    ok = fields.Boolean(metadata={"description": "the receiver accepted the test message"})
    response_code = fields.Integer(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "why it was not accepted"})
    response = fields.String(allow_none=True, metadata={
        "description": "the start of the receiver's answer (a robot's errcode / errmsg)"})


class WebhookQuerySchema(PageQuery):
    pass
