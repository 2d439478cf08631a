"""Webhooks over HTTP: /communities/{cid}/webhooks, /webhooks/{id}, its test and deliveries.

Organisers of the community only: a member with another role gets 403, anyone else 404.
"""

from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from app.auth.decorators import login_required
from app.communities import access
from app.communities.models import Role
from app.db import paginate
from app.errors import NotFound
from app.extensions import db
from app.notifications import webhooks
from app.notifications.models import Webhook
from app.notifications.webhook_schemas import (
    DeliverySchema,
    TestResultSchema,
    WebhookCreateSchema,
    WebhookQuerySchema,
    WebhookSchema,
    WebhookUpdateSchema,
)
from app.schemas import page_schema

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1",
                description="Webhooks: the community's events to its own system (json) or to "
                            "its WeChat Work (企业微信) and DingTalk (钉钉) group robots")

WebhookPage = page_schema(WebhookSchema, "WebhookPage")
DeliveryPage = page_schema(DeliverySchema, "DeliveryPage")
ORGANISER = Role.ORGANISER


def _sender():
    # Imported when used: the sender brings the HTTP client, which reading settings never needs.
    from app.notifications import delivery

    return delivery


@blp.route("/communities/<int:cid>/webhooks")
class CommunityWebhooks(MethodView):
    @login_required
    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookSchema)
    @blp.alt_response(409, description="webhook_limit_reached")
    def post(self, data, cid):
        """Add a webhook: events to the community's own system (json) or a group robot (organiser)

        The URL must be http(s); an IP literal must be a public address. Group robots (wecom,
        dingtalk) take only organiser-facing event types, since a group message is seen by
        the whole group. The secret is never read back (`has_secret`).
        """
        access.community(cid, ORGANISER)
        return webhooks.present(webhooks.create(cid, data, current_user.id))

    @login_required
    @blp.arguments(WebhookQuerySchema, location="query")
    @blp.response(200, WebhookPage)
    def get(self, query, cid):
        """The community's webhooks, oldest first, URLs' keys masked (organiser)"""
        access.community(cid, ORGANISER)
        page = paginate(db.session, webhooks.webhooks_query(cid), query["page"], query["per_page"])
        return {**page, "items": [webhooks.present(w) for w in page["items"]]}


@blp.route("/webhooks/<int:wid>")
class WebhookDetail(MethodView):
    @login_required
    @blp.response(200, WebhookSchema)
    def get(self, wid):
        """One webhook, without its secret and with its URL's key masked (organiser)"""
        return webhooks.present(access.load(Webhook, wid, ORGANISER))

    @login_required
    @blp.arguments(WebhookUpdateSchema)
    @blp.response(200, WebhookSchema)
    def patch(self, changes, wid):
        """Change a webhook: only the fields given; `secret: null` clears the secret (organiser)

        The same rules as when adding it hold for the result. A `url` sent back exactly as it
        was read (masked) keeps the stored URL.
        """
        webhook = access.load(Webhook, wid, ORGANISER)
        return webhooks.present(webhooks.update(webhook, changes, current_user.id))

    @login_required
    @blp.response(204)
    def delete(self, wid):
        """Remove a webhook; its pending deliveries are not sent (organiser)"""
        webhooks.delete(access.load(Webhook, wid, ORGANISER), current_user.id)


@blp.route("/webhooks/<int:wid>/test", methods=["POST"])
@login_required
@blp.response(200, TestResultSchema)
def test_webhook(wid):
    """Send a test message now and answer what the receiver said (organiser)

    A way to try a webhook before relying on it. `ok` is false when the receiver refused the
    message (a robot that answers HTTP 200 with a non-zero errcode refused it too).
    """
    return _sender().send_test(access.load(Webhook, wid, ORGANISER))


@blp.route("/webhooks/<int:wid>/deliveries", methods=["GET"])
@login_required
@blp.arguments(WebhookQuerySchema, location="query")
@blp.response(200, DeliveryPage)
def webhook_deliveries(query, wid):
    """The webhook's deliveries, the most recent first: status, attempts, answer (organiser)"""
    webhook = access.load(Webhook, wid, ORGANISER)
    return paginate(db.session, webhooks.deliveries_query(webhook), query["page"],
                    query["per_page"])


@blp.route("/webhooks/<int:wid>/deliveries/<int:did>/resend", methods=["POST"])
@login_required
@blp.response(200, DeliverySchema)
def resend_delivery(wid, did):
    """Send one delivery again now and answer it as it now is (organiser)"""
    webhook = access.load(Webhook, wid, ORGANISER)
    if webhooks.delivery_of(webhook, did) is None:
        raise NotFound()
    return _sender().resend(did)
