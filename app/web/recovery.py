"""Pages: setting a new password with the one-time code an organiser gave (找回密码, `/reset`)."""

from __future__ import annotations

from flask import current_app, flash, request

from app.auth import service as auth
from app.auth.schemas import PasswordResetSchema
from app.errors import APIError, message_for
from app.extensions import limiter
from app.i18n import gettext
from app.web.forms import parse
from app.web.pages import page_blueprint, render, see_other

bp = page_blueprint("recovery", __name__)


def _reset_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(_reset_limit, methods=["POST"])
def reset():
    """Phone, reset code and a new password → the password is set, every login ends."""
    if request.method == "GET":
        return render("recovery/reset.html", form=None)
    data, form = parse(PasswordResetSchema())
    if data is not None:
        try:
            auth.reset_password(data["phone"], data["code"], data["password"])
        except APIError as error:
            form.error("code", message_for(error.slug, **error.params))
        else:
            flash(gettext("新密码已设置好，请用新密码登录。"), "success")
            return see_other(url="/login")
    form.values.pop("password", None)
    return render("recovery/reset.html", 422, form=form)
