"""The public notice page (公示栏) of a community, and its QR poster: read-only, no login.

Both answers are the same for every visitor (in a language), so shared caches may keep them a
minute: the views never look at who is asking, and the pages carry no form, no CSRF token, no
login state — nothing that would set a cookie. What they show is app/stats/public.py's choice.
"""

from __future__ import annotations

from flask import current_app, url_for

from app import qr
from app.i18n import gettext
from app.stats import public
from app.web.pages import error_page, page_blueprint, render

bp = page_blueprint("public_pages", __name__)

CACHE = "public, max-age=60"


def _cached(answer):
    body, status, headers = answer
    headers = {**headers, "Cache-Control": CACHE}
    response = current_app.make_response((body, status, headers))
    # The language comes from the `lang` cookie or Accept-Language: a cache keeps one per.
    response.vary.update(("Accept-Language", "Cookie"))
    return response


def _not_found():
    return error_page(404, gettext("没有这个社区的公示栏，请检查地址或重新扫描二维码。"))


def notice_url(code: str) -> str:
    """The address the poster's QR opens: on our public host, not the one the request used."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for(
        "public_pages.notice", code=code)


@bp.get("/p/<code>")
def notice(code: str):
    community = public.community_by_code(code)
    if community is None:
        return _not_found()
    return _cached(render("public/notice.html", community=community,
                          poster_url=url_for("public_pages.poster", code=code),
                          **public.notice(community)))


@bp.get("/p/<code>/poster")
def poster(code: str):
    community = public.community_by_code(code)
    if community is None:
        return _not_found()
    url = notice_url(code)
    return _cached(render("public/poster.html", community=community, url=url,
                          qr_svg=qr.svg_inline(url)))
