"""The pages behind a board's QR code: the board (no login to look), its poster, posting a wish.

The board's page shows public summaries only (title, category, status, date): never a name,
phone or address. Posting needs a login (and comes back here after it) and goes through the
same schema and service call as `POST /api/v1/boards/<id>/wishes`.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, request, url_for
from flask_jwt_extended import current_user

from app.communities.models import Community
from app.db import paginate
from app.errors import APIError, message_for
from app.extensions import db
from app.i18n import gettext
from app.web.forms import FORM_TOKEN, claim_form, complete_form, new_form_token, parse
from app.web.labels import status_label
from app.web.pages import login_required, page_arg, page_blueprint, render, see_other
from app.wishes import service
from app.wishes.models import CATEGORIES, Board, Wish
from app.wishes.poster import render_poster
from app.wishes.schemas import WishCreateSchema

bp = page_blueprint("web", __name__)

PER_PAGE = 20
# What a resident types on the page; posting for someone else (on_behalf_of) is the organiser's page.
WISH_FIELDS = ["title", "description", "category", "contact_phone", "address"]


def _board(token: str) -> tuple[Board | None, Community | None, tuple | None]:
    """The board a QR token names and its community, or a friendly page saying why not."""
    board, replaced = service.board_by_token(token)
    if board is None:
        return None, None, render("board/missing.html", 404)
    community = db.session.get(Community, board.community_id)
    if replaced:
        return None, None, render("board/replaced.html", 410, board=board, community=community)
    return board, community, None


@bp.get("/b/<token>")
def board_page(token: str):
    """A board's mobile page: what it is, how it works, its public wishes, and the button to post."""
    board, community, refusal = _board(token)
    if refusal:
        return refusal
    if not board.enabled:
        return render("board/closed.html", board=board, community=community)
    listing = paginate(db.session, sa.select(Wish).where(
        Wish.board_id == board.id, Wish.status.in_(service.PUBLIC_STATES)).order_by(Wish.id.desc()),
        page_arg(), PER_PAGE)
    summaries = [{"title": w.title, "category": gettext(CATEGORIES[w.category]["label"]),
                  "status": w.status, "status_label": status_label(w.status), "date": w.created_at}
                 for w in listing["items"]]
    return render("board/board.html", board=board, community=community, wishes=summaries,
                  page=listing["page"], pages=max(1, -(-listing["total"] // PER_PAGE)))


@bp.get("/b/<token>/poster")
def board_poster_page(token: str):
    """The printable poster of a board, reachable from its public token (no personal data)."""
    board, replaced = service.board_by_token(token)
    if board is None or replaced:
        return render("board/missing.html", 404)
    return render_poster(board)


@bp.route("/b/<token>/wish", methods=["GET", "POST"])
@login_required
def post_wish(token: str):
    """Post a wish on this board (as the API does); a double tap makes one wish."""
    board, community, refusal = _board(token)
    if refusal:
        return refusal
    if request.method == "GET":
        return _wish_form(board, community)
    form_token = request.form.get(FORM_TOKEN)
    done = claim_form(form_token)
    if done:
        return see_other(url=done)
    data, form = parse(WishCreateSchema(), keep=WISH_FIELDS)
    if data is None:
        return _wish_form(board, community, form, 422)
    try:
        wish = service.post_wish(board, current_user, data)
    except APIError as error:  # the board was closed meanwhile
        db.session.rollback()
        return _wish_form(board, community, form, error.status_code,
                          refusal=message_for(error.slug, **error.params))
    url = url_for("resident.wish_page", wid=wish.id)
    complete_form(form_token, url)
    flash(gettext("心愿已提交！社区工作人员审核后，志愿者会来认领。办理进度就在这一页。"), "success")
    return see_other(url=url)


def _wish_form(board: Board, community: Community, form=None, status: int = 200, refusal=None):
    categories = [(code, gettext(info["label"])) for code, info in CATEGORIES.items()]
    return render("board/wish_form.html", status, board=board, community=community, form=form,
                  categories=categories, refusal=refusal,
                  form_token=request.form.get(FORM_TOKEN) or new_form_token())
