"""The community's webhooks: add, change and remove them, and read their deliveries.

The rules every write keeps (the API and the organiser's page alike):
- the URL is http(s) and its IP literal, if it is one, a public address (addresses.py; a
  name is checked again at every delivery, where it is resolved);
- a group robot (wecom, dingtalk) takes only organiser-facing event types (catalogue.GROUP_TYPES):
  a group chat is no place for one person's points or redemptions;
- quiet hours are both set or both unset.
The secret is never read back, nor written to the audit log; the robot's `key` /
`access_token` in its URL is a credential too, so it is masked wherever the URL is shown.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import current_app

from app import audit
from app.db import MAX_ID, utcnow
from app.errors import Conflict, ValidationFailed, register_messages
from app.extensions import db
from app.i18n import N_, gettext
from app.notifications import addresses
from app.notifications.catalogue import EVENT_TYPES, GROUP_TYPES
from app.notifications.models import Delivery, Webhook

FORMATS = ("json", "wecom", "dingtalk")
ROBOT_FORMATS = ("wecom", "dingtalk")
FORMAT_LABELS = {"json": N_("JSON（本社区自己的系统）"), "wecom": N_("企业微信群机器人"),
                 "dingtalk": N_("钉钉群机器人")}
STATUS_LABELS = {"pending": N_("待发送"), "delivered": N_("已送达"), "failed": N_("发送失败")}
# What a robot's address looks like (documented and shown as a hint; not required, so that a
# test receiver or a proxy in between can stand in for the robot).
ROBOT_URLS = {"wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
              "dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=…"}
MAX_PER_COMMUNITY = 20  # each one is a worker's round trip per event
# Query parameters that are the robot's credential: whoever has the URL may post to the group.
SECRET_PARAMS = ("key", "access_token", "token", "secret", "sign")
_SECRET_QUERY = re.compile(
    r"(?P<lead>(?:^|[&;])(?:" + "|".join(SECRET_PARAMS) + r")=)(?P<value>[^&;#]*)", re.IGNORECASE)
FIELDS = ("name", "url", "format", "events", "secret", "enabled", "quiet_start", "quiet_end")

register_messages({"webhook_limit_reached": N_("本社区最多可以设置 {limit} 个消息推送，请先删除不用的。")})


# --- reading ----------------------------------------------------------------------------------

def masked_url(url: str) -> str:
    """The URL with its key / access_token values shown as ab****yz."""
    def mask(found: re.Match) -> str:
        value = found.group("value")
        shown = f"{value[:2]}****{value[-2:]}" if len(value) >= 8 else "****" if value else ""
        return found.group("lead") + shown

    head, sep, query = url.partition("?")
    return head + sep + _SECRET_QUERY.sub(mask, query) if sep else url


def present(webhook: Webhook) -> dict:
    """A webhook as it is read back: no secret, its URL masked."""
    body = {name: getattr(webhook, name) for name in (
        "id", "community_id", "name", "format", "events", "enabled", "quiet_start",
        "quiet_end", "created_by_id", "created_at", "updated_at")}
    body["url"] = masked_url(webhook.url)
    body["has_secret"] = bool(webhook.secret)
    return body


def webhooks_query(community_id: int) -> sa.Select:
    return sa.select(Webhook).where(Webhook.community_id == community_id).order_by(Webhook.id)


def deliveries_query(webhook: Webhook) -> sa.Select:
    """The webhook's deliveries, the most recent first."""
    return (sa.select(Delivery).where(Delivery.webhook_id == webhook.id)
            .order_by(Delivery.id.desc()))


def delivery_of(webhook: Webhook, delivery_id: int) -> Delivery | None:
    """One delivery of this webhook (None if it is another's, or none)."""
    if not 0 < delivery_id <= MAX_ID:
        return None
    return db.session.scalar(sa.select(Delivery).where(
        Delivery.id == delivery_id, Delivery.webhook_id == webhook.id))


# --- writing ----------------------------------------------------------------------------------

def create(community_id: int, data: dict, actor_id: int | None) -> Webhook:
    """Add a webhook to the community (the data as WebhookCreateSchema loaded it)."""
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Webhook)
                              .where(Webhook.community_id == community_id))
    if count >= MAX_PER_COMMUNITY:
        raise Conflict("webhook_limit_reached", limit=MAX_PER_COMMUNITY)
    settings = {"name": "", "secret": None, "enabled": True, "quiet_start": None,
                "quiet_end": None, **data}
    _check(settings)
    webhook = Webhook(community_id=community_id, created_by_id=actor_id,
                      **{name: settings[name] for name in FIELDS})
    db.session.add(webhook)
    db.session.flush()
    audit.record(community_id, actor_id, "webhook.created", webhook_id=webhook.id,
                 **_audited(webhook))
    return webhook


def update(webhook: Webhook, changes: dict, actor_id: int | None) -> Webhook:
    """Change some of a webhook's settings; the result must keep every rule.

    A URL given back exactly as it was read (masked) leaves the stored one as it is, so a
    form that shows the masked URL may send it back unchanged.
    """
    changes = dict(changes)
    if changes.get("url") == masked_url(webhook.url):
        changes.pop("url")
    settings = {name: getattr(webhook, name) for name in FIELDS}
    settings.update(changes)
    _check(settings, check_url="url" in changes)
    changed = sorted(name for name in changes if getattr(webhook, name) != changes[name])
    for name in changed:
        setattr(webhook, name, changes[name])
    if changed:
        webhook.updated_at = utcnow()
        db.session.flush()
        audit.record(webhook.community_id, actor_id, "webhook.updated", webhook_id=webhook.id,
                     changed=changed, **_audited(webhook))
    return webhook


def delete(webhook: Webhook, actor_id: int | None) -> None:
    """Remove a webhook and its deliveries (pending ones are not sent)."""
    audit.record(webhook.community_id, actor_id, "webhook.deleted", webhook_id=webhook.id,
                 **_audited(webhook))
    db.session.execute(sa.delete(Delivery).where(Delivery.webhook_id == webhook.id))
    db.session.delete(webhook)
    db.session.flush()


def _audited(webhook: Webhook) -> dict:
    """What the audit log keeps of a webhook: never the secret, the URL masked."""
    return {"name": webhook.name, "url": masked_url(webhook.url), "format": webhook.format,
            "events": list(webhook.events), "enabled": webhook.enabled,
            "has_secret": bool(webhook.secret)}


def _check(settings: dict, *, check_url: bool = True) -> None:
    if check_url:
        check_url_allowed(settings["url"])
    if settings["format"] in ROBOT_FORMATS:
        personal = [t for t in settings["events"] if t not in GROUP_TYPES]
        if personal:
            raise ValidationFailed(
                "events", N_("群机器人只能推送发给社区工作人员的事件（群消息不带个人信息），"
                             "请去掉：{types}"),
                types="、".join(gettext(EVENT_TYPES[t].label) for t in personal))
    start, end = settings.get("quiet_start"), settings.get("quiet_end")
    if (start is None) != (end is None):
        field = "quiet_end" if end is None else "quiet_start"
        raise ValidationFailed(field, N_("免打扰时段要同时填写开始和结束时间，或者都不填。"))
    if start is not None and start == end:
        raise ValidationFailed("quiet_end", N_("免打扰的结束时间不能和开始时间相同。"))


def check_url_allowed(url: str) -> None:
    """422 on `url` unless it is http(s) and not an IP literal of a refused network."""
    try:
        _scheme, host, _port = addresses.split(url)
    except addresses.RefusedAddress:
        if not re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
            raise ValidationFailed("url", N_("请填写完整的网址，以 https:// 或 http:// 开头。")) from None
        if not url.lower().startswith(("http://", "https://")):
            raise ValidationFailed("url", N_("只能推送到 https:// 或 http:// 开头的网址。")) from None
        raise ValidationFailed("url", N_("这不是有效的网址，请检查后重新填写。")) from None
    try:
        addresses.check_at_creation(url, current_app.config["WEBHOOK_ALLOWED_NETWORKS"])
    except addresses.RefusedAddress:
        raise ValidationFailed("url", N_("不能推送到内网、本机或保留地址（{host}），请填写公网上的网址。"),
                               host=host) from None
