"""Home, signing in and out, language and community: the pages every person starts from."""

from __future__ import annotations

from flask import current_app, flash, g, request

from app.auth import service as auth
from app.auth.schemas import LoginSchema, RegisterSchema
from app.errors import APIError, message_for
from app.extensions import limiter
from app.i18n import gettext
from app.reports import service as reports
from app.web import session
from app.web.forms import parse
from app.web.pages import page_blueprint, render, see_other

bp = page_blueprint("account", __name__)


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _register_limit() -> str:
    return current_app.config["REGISTER_RATE_LIMIT"]


@bp.get("/")
def home():
    """What the signed-in person can do here, by their role in the current community."""
    user = session.person()
    if user is None:
        return render("account/home.html", user=None)
    community, role = session.current_membership(user)
    may_report = role in ("volunteer", "organiser") or (
        community is not None and reports.settings_for(community.id)["residents_may_report"])
    return render("account/home.html", user=user, community=community, role=role,
                  memberships=session.memberships(user), may_report=may_report)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    target = session.safe_next(request.values.get("next"))
    if request.method == "GET":
        if session.person() is not None:
            return see_other(url=target)
        return render("account/login.html", form=None, next=target)
    data, form = parse(LoginSchema())
    if data is not None:
        try:
            user = auth.authenticate(data["phone"], data["password"])
        except APIError as error:
            form.error("phone", message_for(error.slug, **error.params))
        else:
            session.sign_in(user)
            return see_other(url=target)
    form.values.pop("password", None)
    return render("account/login.html", 422, form=form, next=target)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_register_limit, methods=["POST"])
def register():
    target = session.safe_next(request.values.get("next"))
    if request.method == "GET":
        return render("account/register.html", form=None, next=target)
    data, form = parse(RegisterSchema())
    if data is not None:
        try:
            user = auth.register(**data)
        except APIError as error:
            form.error("phone", message_for(error.slug, **error.params))
        else:
            session.sign_in(user)
            flash(gettext("注册成功，已为您登录。"), "success")
            return see_other(url=target)
    form.values.pop("password", None)
    return render("account/register.html", 422, form=form, next=target)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "GET":
        return render("account/logout.html")
    session.sign_out()
    flash(gettext("您已安全退出。"), "success")
    return see_other("account.home")


@bp.get("/lang/<code>")
def language(code: str):
    """The 中文 / English link: a `lang` cookie that wins over the browser's languages."""
    response = see_other(url=session.safe_next(request.args.get("next")))
    if code in ("zh", "en"):
        response.set_cookie("lang", code, max_age=session.YEAR, samesite="Lax",
                            secure=session.secure_cookies(), httponly=True)
    return response


@bp.post("/community")
def switch_community():
    """The community switcher for a person in several communities (remembered in a cookie)."""
    user = session.person()
    response = see_other(url=session.safe_next(request.form.get("next")))
    wanted = request.form.get("community_id", "")
    if user is not None and any(str(c.id) == wanted for c, _role in session.memberships(user)):
        response.set_cookie(session.COMMUNITY_COOKIE, wanted, max_age=session.YEAR,
                            samesite="Lax", secure=session.secure_cookies(), httponly=True)
    g.pop("membership", None)
    return response
