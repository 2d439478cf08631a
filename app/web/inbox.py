"""消息: the signed-in person's inbox as phone pages, what they mute, and the masthead's bell.

The pages call the same service as GET/POST /api/v1/me/notifications (app/notifications/inbox.py):
the lines are rendered when read, in the page's language. Opening a notification is a form post
(marking read writes, and a GET must not), answered by a 303 to the page it is about — a local
path only, so a notification can never send anyone to another site.
"""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask import flash, g, request, url_for
from flask_jwt_extended import current_user

from app.extensions import db
from app.i18n import N_, gettext
from app.notifications import inbox
from app.notifications.models import Notification
from app.notifications.schemas import NotificationQuerySchema, NotificationSettingsSchema
from app.web import session
from app.web.pages import error_page, login_required, page_blueprint, render, see_other

bp = page_blueprint("inbox", __name__)

PER_PAGE = 20
BADGE_CAP = 99  # the bell shows "99+" beyond this: a count nobody reads one by one

SETTINGS_REFUSED = N_("保存没有成功：勾选的消息里有一项不是可选的消息类型。您原来的设置没有改变，"
                      "请在下面重新勾选后再保存。")


@bp.app_template_global()
def unread_notifications() -> int:
    """The bell's count: the signed-in person's unread notifications (0 signed out), once a request."""
    if "unread_notifications" not in g:
        user = session.person()
        try:
            g.unread_notifications = inbox.unread_count(user.id) if user else 0
        except sa.exc.SQLAlchemyError:
            # The error page of a failed transaction must still render (the request rolls back
            # after it): no count rather than no page.
            g.unread_notifications = 0
    return g.unread_notifications


@bp.app_template_filter()
def badge_count(count: int) -> str:
    return f"{BADGE_CAP}+" if count > BADGE_CAP else str(count)


@bp.get("/me/notifications")
@login_required
def notifications():
    """Newest first, 20 at a time; 更多 continues after the last one shown (keyset)."""
    try:
        query = NotificationQuerySchema().load(
            {k: v for k, v in request.args.items() if k == "after" and v.strip()})
    except ma.ValidationError:
        return error_page(422, gettext("翻页位置不对。"), gettext("请回到消息列表的第一页重新翻。"))
    listing = inbox.page(current_user.id, after=query.get("after"), per_page=PER_PAGE)
    return render("account/inbox.html", listing=listing, continued=bool(query.get("after")))


@bp.post("/me/notifications/read")
@login_required
def mark_all_read():
    marked = inbox.mark_read(current_user.id, everything=True)
    flash(gettext("已把 {n} 条消息标为已读。").format(n=marked) if marked
          else gettext("没有未读的消息。"), "success")
    return see_other("inbox.notifications")


@bp.post("/me/notifications/<int:nid>/open")
@login_required
def open_notification(nid: int):
    """Mark one of the caller's own notifications read and go to its page (others' are 404)."""
    note = db.session.get(Notification, nid)
    if note is None or note.user_id != current_user.id:
        return error_page(404, gettext("找不到这条消息。"), gettext("请回到消息列表重新打开。"))
    inbox.mark_read(current_user.id, [note.id])
    target = inbox.present(note)["link"]
    return see_other(url=session.safe_next(target, url_for("inbox.notifications")))


@bp.get("/me/notifications/settings")
@login_required
def settings():
    return render("account/notification_settings.html", settings=inbox.settings(current_user.id))


@bp.post("/me/notifications/settings")
@login_required
def save_settings():
    """Replace the muted types with those ticked; a type we do not know changes nothing."""
    try:
        data = NotificationSettingsSchema().load({"muted": request.form.getlist("muted")})
    except ma.ValidationError:
        return render("account/notification_settings.html", 422,
                      settings=inbox.settings(current_user.id), refused=gettext(SETTINGS_REFUSED))
    muted = inbox.set_muted(current_user.id, data["muted"])
    flash(gettext("已保存。勾选的 {n} 类消息不会再放进您的消息箱。").format(n=len(muted)) if muted
          else gettext("已保存。所有类型的消息都会放进您的消息箱。"), "success")
    return see_other("inbox.settings")
