"""What every page blueprint shares: the login gate, CSRF on every POST, HTML error pages.

A page view reads like an API view: parse the form with the API's own schema (app/web/forms.py),
load the object with the same access check, call one service function, then redirect (POST →
303 → GET) or render. Errors a service raises (APIError) become a page in words that says what
to do next; on a form, the view catches them and shows the form again with what was typed.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import quote, urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from app.communities.models import Role
from app.errors import APIError, message_for
from app.i18n import N_, gettext
from app.web import session

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

TITLES = {
    401: N_("请先登录"),
    403: N_("没有权限"),
    404: N_("找不到这个页面"),
    405: N_("不支持的操作"),
    409: N_("暂时不能这样做"),
    410: N_("这个地址已不再使用"),
    413: N_("内容太多了"),
    422: N_("填写的内容有误"),
    429: N_("操作太频繁"),
    500: N_("服务器出错了"),
}
NEXT_STEPS = {
    403: N_("如果您认为应该可以操作，请联系社区工作人员。"),
    404: N_("请检查地址，或回到首页重新进入。"),
    409: N_("请刷新页面查看最新状态后再试。"),
    429: N_("请稍等片刻再试。"),
    500: N_("请稍后再试；如果一直这样，请联系社区工作人员。"),
}


def page_blueprint(name: str, import_name: str, **kwargs) -> Blueprint:
    """A blueprint of HTML pages: CSRF-checked POSTs, login cookies, error pages in words."""
    bp = Blueprint(name, import_name, **kwargs)
    bp.before_request(_check_csrf)
    bp.after_request(session.write_cookies)
    bp.register_error_handler(APIError, _api_error_page)
    bp.register_error_handler(HTTPException, _http_error_page)
    bp.register_error_handler(Exception, _unexpected_page)
    return bp


def _check_csrf():
    if request.method in SAFE:
        return None
    if not session.csrf_ok():
        # Refused before any work: nothing changes without the token the page itself set.
        return render("errors/page.html", 403, title=gettext("页面已过期"),
                      message=gettext("为了您的账号安全，这次提交没有生效。"),
                      next_step=gettext("请返回上一页，刷新后重新提交。"))
    return None


def page_arg(limit: int = 100_000) -> int:
    """`?page=` of a paged list: a whole number from 1; anything else is the first page."""
    value = request.args.get("page", "1")
    return min(int(value), limit) if value.isascii() and value.isdigit() and int(value) > 0 else 1


def render(template: str, status: int = 200, **context):
    return render_template(template, **context), status, {"Content-Type": "text/html; charset=utf-8"}


def see_other(endpoint: str | None = None, *, url: str | None = None, **values):
    """The redirect after a successful POST (303: the browser GETs the next page)."""
    return redirect(url or url_for(endpoint, **values), code=303)


def login_url(next_path: str | None = None) -> str:
    return "/login?next=" + quote(session.safe_next(next_path), safe="/")


def login_required(view):
    """Send a visitor without a (refreshable) login to /login, and back here afterwards."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if session.person() is None:
            return redirect(login_url(_here()), code=303)
        return view(*args, **kwargs)

    return wrapper


def _here() -> str | None:
    """Where to come back to: this page, or for a form post the page that held the form."""
    if request.method in SAFE:
        return request.full_path.rstrip("?")
    parts = urlsplit(request.referrer or "")
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def role_required(*roles: Role):
    """Pages for a role in the current community (the switcher's); others see a 403 page."""

    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            community, role = session.current_membership(session.person())
            if community is None or (roles and role not in roles):
                return render("errors/page.html", 403, title=gettext(TITLES[403]),
                              message=gettext("这个页面只对本社区的{roles}开放。").format(
                                  roles="、".join(gettext(ROLE_NAMES[r]) for r in roles)),
                              next_step=gettext(NEXT_STEPS[403]))
            g.community, g.role = community, role
            return view(*args, **kwargs)

        return wrapper

    return decorate


ROLE_NAMES = {Role.RESIDENT: N_("居民"), Role.VOLUNTEER: N_("志愿者"), Role.ORGANISER: N_("社区工作人员")}


def error_page(status: int, message: str, next_step: str | None = None):
    return render("errors/page.html", status, title=gettext(TITLES.get(status, TITLES[500])),
                  message=message, next_step=next_step or _next_step(status))


def _next_step(status: int) -> str | None:
    text = NEXT_STEPS.get(status)
    return gettext(text) if text else None


def _api_error_page(error: APIError):
    if error.status_code == 401:
        return redirect(login_url(_here()), code=303)
    return error_page(error.status_code, message_for(error.slug, **error.params))


def _unexpected_page(error: Exception):
    current_app.logger.exception("unhandled exception on a page", exc_info=error)
    return error_page(500, gettext("这次操作没有完成，您填写的内容没有丢失，可以返回上一页再试。"))


def _http_error_page(error: HTTPException):
    status = error.code or 500
    if status == 401:
        return redirect(login_url(_here()), code=303)
    return error_page(status, gettext(TITLES.get(status, TITLES[500])))
