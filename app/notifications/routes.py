"""The inbox over HTTP: /me/notifications, marking read, and what each person mutes."""

from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from app.auth.decorators import login_required
from app.notifications import inbox
from app.notifications.schemas import (
    MarkReadResultSchema,
    MarkReadSchema,
    NotificationPageSchema,
    NotificationQuerySchema,
    NotificationSettingsSchema,
)

blp = Blueprint("notifications", __name__, url_prefix="/api/v1",
                description="The inbox: notifications of what happened to your wishes, points, "
                            "redemptions, reports and activities")


@blp.route("/me/notifications")
class MyNotifications(MethodView):
    @login_required
    @blp.arguments(NotificationQuerySchema, location="query")
    @blp.response(200, NotificationPageSchema)
    def get(self, query):
        """The caller's notifications, newest first, with `unread_count`

        Texts are rendered now, in the request's language (Chinese by default, English with
        `Accept-Language: en`). Page by `after` (keyset: the previous page's `next_after`) or
        by `page`.
        """
        return inbox.page(current_user.id, unread=query.get("unread"), after=query.get("after"),
                          page_number=query["page"], per_page=query["per_page"])


@blp.route("/me/notifications/read")
class MarkRead(MethodView):
    @login_required
    @blp.arguments(MarkReadSchema)
    @blp.response(200, MarkReadResultSchema)
    def post(self, data):
        """Mark notifications read: `{"ids": [...]}` or `{"all": true}`

        Ids that are not the caller's change nothing. Answers how many were marked and the
        unread count after.
        """
        marked = inbox.mark_read(current_user.id, data.get("ids"), bool(data.get("all")))
        return {"marked": marked, "unread_count": inbox.unread_count(current_user.id)}


@blp.route("/me/notifications/settings")
class MySettings(MethodView):
    @login_required
    @blp.response(200, NotificationSettingsSchema)
    def get(self):
        """The event types the caller muted, and every type with its label"""
        return inbox.settings(current_user.id)

    @login_required
    @blp.arguments(NotificationSettingsSchema)
    @blp.response(200, NotificationSettingsSchema)
    def put(self, data):
        """Replace the muted event types (muted ones no longer reach the caller's inbox)"""
        inbox.set_muted(current_user.id, data["muted"])
        return inbox.settings(current_user.id)
