"""Pages: the organiser's message pushes (消息推送) — the community's webhooks to its own
system or to a WeCom / DingTalk group robot, a test message, and the recent deliveries.

The same schemas, access checks and service functions as the API (app/notifications/
webhook_routes.py): a volunteer or a resident gets a 403 page, another community's webhook a
404 page. The secret is never put back into a page; the robot's key is shown masked.
"""

from __future__ import annotations

import marshmallow as ma
from flask import flash, g, request
from flask_jwt_extended import current_user

from app.communities import access
from app.communities.models import Role
from app.db import paginate
from app.errors import APIError, NotFound, message_for
from app.extensions import db
from app.i18n import N_, gettext
from app.notifications import webhooks as service
from app.notifications.catalogue import EVENT_TYPES, GROUP_TYPES
from app.notifications.models import Webhook
from app.notifications.webhook_schemas import WebhookCreateSchema, WebhookUpdateSchema
from app.web.forms import Form, localise_field_errors, typed
from app.web.pages import page_arg, page_blueprint, render, role_required, see_other

# Not "webhooks": that name is the API blueprint's (one name per blueprint in an app).
bp = page_blueprint("organiser_webhooks", __name__, url_prefix="/organiser")

ORGANISER = Role.ORGANISER
DELIVERIES_PER_PAGE = 20
LABELS = {"name": N_("名称"), "url": N_("接收地址"), "format": N_("推送到哪里"),
          "events": N_("推送哪些事件"), "secret": N_("密钥"), "quiet_start": N_("免打扰开始"),
          "quiet_end": N_("免打扰结束"), "enabled": N_("启用")}
INSTEAD = {"url": N_("请填写接收消息的网址（群机器人的 Webhook 地址）。"),
           "events": N_("请至少选择一种要推送的事件。"),
           "format": N_("请选择推送到哪里：本社区的系统、企业微信群或钉钉群。")}


def _choices() -> dict:
    return {
        "formats": [(f, gettext(service.FORMAT_LABELS[f])) for f in service.FORMATS],
        "events": [{"type": t, "label": gettext(spec.label), "group": t in GROUP_TYPES}
                   for t, spec in EVENT_TYPES.items()],
        "labels": {name: gettext(text) for name, text in LABELS.items()},
        "robot_urls": service.ROBOT_URLS,
    }


def _ours(wid: int) -> Webhook:
    """A webhook of the current community, loaded with the organiser check; else 404."""
    webhook = access.load(Webhook, wid, ORGANISER)
    if webhook.community_id != g.community.id:
        raise NotFound()
    return webhook


def _shown(webhook: Webhook) -> dict:
    body = service.present(webhook)
    body["format_label"] = gettext(service.FORMAT_LABELS[webhook.format])
    body["event_labels"] = [gettext(EVENT_TYPES[t].label) for t in webhook.events
                            if t in EVENT_TYPES]
    body["title"] = webhook.name or body["format_label"]
    return body


def _read(editing: bool) -> tuple[dict | None, Form]:
    """The add / change form through the API's schema: checkboxes, blanks and the secret as
    the schema wants them. What was typed comes back, except the secret."""
    values = typed()
    values.pop("secret", None)
    values.pop("clear_secret", None)
    values["events"] = request.form.getlist("events")
    values["enabled"] = "enabled" in request.form
    given: dict = {"name": values.get("name", ""), "events": values["events"],
                   "enabled": values["enabled"]}
    for name in ("url", "format"):
        if values.get(name, "").strip():
            given[name] = values[name]
    secret = request.form.get("secret", "")
    if secret.strip():
        given["secret"] = secret
    elif editing and "clear_secret" in request.form:
        given["secret"] = None
    for name in ("quiet_start", "quiet_end"):
        if values.get(name, "").strip():
            given[name] = values[name].strip()
        elif editing:
            given[name] = None
    form = Form(values=values)
    if editing:
        for name in ("url", "format"):
            if name not in given:
                form.error(name, gettext(INSTEAD[name]))
    schema = WebhookUpdateSchema() if editing else WebhookCreateSchema()
    try:
        data = schema.load(given)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_": error.messages}
        for name, texts in localise_field_errors(messages).items():
            if (name in INSTEAD and name not in given) or (name == "events" and not values["events"]):
                form.errors[name] = [gettext(INSTEAD[name])]
                continue
            for text in _flat(texts):
                form.error(name, text)
        return None, form
    return (data if form.ok else None), form


def _flat(texts) -> list[str]:
    """A list field's errors come per item ({0: [...]}); the page shows them as one list."""
    if isinstance(texts, dict):
        return [text for value in texts.values() for text in _flat(value)]
    if isinstance(texts, list):
        return [text for value in texts for text in _flat(value)]
    return [str(texts)]


def _refused(form: Form, error: APIError) -> None:
    if error.status_code == 422 and error.errors:
        for name, texts in error.errors.items():
            for text in _flat(texts):
                form.error(name, text)
    else:
        form.error("_", message_for(error.slug, **error.params))


# --- the list, and adding one -----------------------------------------------------------------

@bp.get("/webhooks")
@role_required(ORGANISER)
def webhooks():
    return _list_page()


def _list_page(status: int = 200, form: Form | None = None):
    hooks = db.session.scalars(service.webhooks_query(g.community.id)).all()
    return render("organiser/webhooks.html", status, hooks=[_shown(h) for h in hooks],
                  form=form or Form(values={"format": "wecom", "enabled": True, "events": []}),
                  limit=service.MAX_PER_COMMUNITY, **_choices())


@bp.post("/webhooks")
@role_required(ORGANISER)
def add_webhook():
    data, form = _read(editing=False)
    if data is not None:
        try:
            webhook = service.create(g.community.id, data, current_user.id)
        except APIError as error:
            db.session.rollback()
            _refused(form, error)
        else:
            flash(gettext("已添加“{name}”。可以先发一条测试消息，看看群里是否收到。").format(
                name=webhook.name or gettext(service.FORMAT_LABELS[webhook.format])), "success")
            return see_other("organiser_webhooks.webhook", wid=webhook.id)
    return _list_page(422, form)


# --- one webhook: change, test, remove, its deliveries ----------------------------------------

@bp.get("/webhooks/<int:wid>")
@role_required(ORGANISER)
def webhook(wid: int):
    return _detail_page(_ours(wid))


def _values(webhook: Webhook) -> dict:
    shown = service.present(webhook)
    return {"name": webhook.name, "url": shown["url"], "format": webhook.format,
            "events": list(webhook.events), "enabled": webhook.enabled,
            "quiet_start": webhook.quiet_start or "", "quiet_end": webhook.quiet_end or ""}


def _detail_page(webhook: Webhook, status: int = 200, form: Form | None = None,
                 test: dict | None = None):
    page = paginate(db.session, service.deliveries_query(webhook), page_arg(),
                    DELIVERIES_PER_PAGE)
    deliveries = [{"row": d, "event_label": gettext(EVENT_TYPES[d.event.type].label)
                   if d.event.type in EVENT_TYPES else d.event.type,
                   "status_label": gettext(service.STATUS_LABELS.get(d.status, d.status))}
                  for d in page["items"]]
    return render("organiser/webhook.html", status, hook=_shown(webhook),
                  form=form or Form(values=_values(webhook)), test=test, page=page,
                  deliveries=deliveries, **_choices())


@bp.post("/webhooks/<int:wid>")
@role_required(ORGANISER)
def change_webhook(wid: int):
    webhook = _ours(wid)
    data, form = _read(editing=True)
    if data is not None:
        try:
            service.update(webhook, data, current_user.id)
        except APIError as error:
            db.session.rollback()
            _refused(form, error)
        else:
            flash(gettext("已保存修改。"), "success")
            return see_other("organiser_webhooks.webhook", wid=wid)
    return _detail_page(_ours(wid), 422, form)


@bp.post("/webhooks/<int:wid>/delete")
@role_required(ORGANISER)
def delete_webhook(wid: int):
    webhook = _ours(wid)
    title = _shown(webhook)["title"]
    service.delete(webhook, current_user.id)
    flash(gettext("已删除“{name}”，不会再向它推送消息。").format(name=title), "success")
    return see_other("organiser_webhooks.webhooks")


@bp.post("/webhooks/<int:wid>/test")
@role_required(ORGANISER)
def test_webhook(wid: int):
    """Send a test message and show the receiver's answer on the page (nothing to redirect
    to: the answer is this request's result, not a stored change)."""
    from app.notifications import delivery

    webhook = _ours(wid)
    return _detail_page(webhook, test=delivery.send_test(webhook))


@bp.post("/webhooks/<int:wid>/deliveries/<int:did>/resend")
@role_required(ORGANISER)
def resend(wid: int, did: int):
    from app.notifications import delivery

    webhook = _ours(wid)
    if service.delivery_of(webhook, did) is None:
        raise NotFound()
    again = delivery.resend(did)
    if again.status == "delivered":
        flash(gettext("已重新发送，对方已收到（状态码 {code}）。").format(code=again.response_code),
              "success")
    else:
        flash(gettext("已重新发送，但没有成功：{error}").format(
            error=again.error or gettext("对方没有回应")), "error")
    return see_other("organiser_webhooks.webhook", wid=wid)
