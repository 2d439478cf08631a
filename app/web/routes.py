"""The public mobile pages behind the QR codes: no login to look, no personal data shown."""

import sqlalchemy as sa
from flask import Blueprint, render_template

from app.communities.models import Community
from app.extensions import db
from app.wishes import service
from app.wishes.models import CATEGORIES, Wish
from app.wishes.routes import render_poster

bp = Blueprint("web", __name__)


def _page(template: str, status: int = 200, **context):
    return render_template(template, **context), status, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/b/<token>")
def board_page(token: str):
    """A board's mobile page: what it is, recent wishes (public fields), and how to post."""
    board, replaced = service.board_by_token(token)
    if board is None:
        return _page("board_missing.html", 404)
    community = db.session.get(Community, board.community_id)
    if replaced:
        return _page("board_replaced.html", 410, board=board, community=community)
    if not board.enabled:
        return _page("board_closed.html", 200, board=board, community=community)
    recent = db.session.scalars(
        sa.select(Wish).where(Wish.board_id == board.id, Wish.status.in_(service.PUBLIC_STATES))
        .order_by(Wish.id.desc()).limit(10)).all()
    return _page("board.html", board=board, community=community, wishes=recent,
                 categories=CATEGORIES, labels=service.lifecycle.STATUS_LABELS)


@bp.get("/b/<token>/poster")
def board_poster_page(token: str):
    """The printable poster of a board, reachable from its public token (no personal data)."""
    board, replaced = service.board_by_token(token)
    if board is None or replaced:
        return _page("board_missing.html", 404)
    return render_poster(board)
