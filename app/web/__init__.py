"""The phone pages (H5): Jinja templates, our own CSS and a little plain JS, no build step."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Flask, url_for
from markupsafe import Markup

STATIC = Path(__file__).resolve().parent.parent / "static"


def register_pages(app: Flask) -> None:
    """Register every page blueprint and what their templates share."""
    from app.web import (
        account,
        activities,
        dashboard,
        inbox,
        organiser,
        public,
        recovery,
        reports,
        resident,
        routes,
        store,
        volunteer,
        webhooks,
    )
    from app.web.session import csrf_token, person

    # Secure cookies whenever the public address is HTTPS (the pages' login and CSRF cookies).
    https = app.config["PUBLIC_BASE_URL"].startswith("https://")
    app.config["JWT_COOKIE_SECURE"] = https
    app.config["SESSION_COOKIE_SECURE"] = https  # the flash messages' cookie
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    for module in (account, routes, resident, volunteer, store, organiser, recovery, reports,
                   activities, dashboard, public, inbox, webhooks):
        app.register_blueprint(module.bp)
    app.jinja_env.globals.update(
        person=person,
        csrf_token=csrf_token,
        csrf_field=lambda: Markup('<input type="hidden" name="csrf_token" value="{}">').format(
            csrf_token()),
        asset=asset,
        html_lang=html_lang,
    )
    app.jinja_env.filters.update(local=local_time, local_date=local_day, hours=hours,
                                 rating_word=rating_word)
    register_page_errors(app)


def register_page_errors(app: Flask) -> None:
    """An address outside the API that matches nothing answers a page in words, not JSON."""
    from flask import request
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    from app.errors import handle_http_exception
    from app.web.pages import error_page

    def answer(error):
        # Browsers ask for text/html by name; API clients (and */*) get the JSON envelope.
        wants = request.accept_mimetypes.best_match(["application/json", "text/html"])
        if request.path.startswith("/api/") or wants != "text/html":
            return handle_http_exception(error)
        return error_page(error.code, _page_message(error.code))

    app.register_error_handler(NotFound, answer)
    app.register_error_handler(MethodNotAllowed, answer)


def _page_message(status: int) -> str:
    from app.i18n import gettext

    if status == 404:
        return gettext("这个地址没有对应的页面，可能输错了，或者页面已经不在了。")
    return gettext("这个地址不能这样打开。")


def local_time(moment, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An aware UTC moment as people here read it: Asia/Shanghai wall-clock time."""
    from app.localtime import SHANGHAI

    return moment.astimezone(SHANGHAI).strftime(fmt) if moment else ""


def rating_word(rating: str) -> str:
    """红, 黄 or 蓝 (in the page's language) for a 红黄蓝 rating slug."""
    from app.i18n import gettext
    from app.stats.models import RATING_LABELS

    return gettext(RATING_LABELS[rating])


def local_day(moment) -> str:
    return local_time(moment, "%Y-%m-%d")


def hours(value) -> str:
    """Service hours as people write them: 2, 1.5 (never 2.0)."""
    return f"{float(value or 0):g}"


def html_lang() -> str:
    from app.i18n import current_language

    return "en" if current_language() == "en" else "zh-CN"


def asset(path: str) -> str:
    """The URL of a static file with a content hash, so browsers may cache it for a year."""
    return url_for("static", filename=path, v=_digest(path))


@cache
def _digest(path: str) -> str:
    try:
        return hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"
