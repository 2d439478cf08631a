"""The printable A4 poster of a board, shared by the API route and the public page."""

from flask import render_template

from app import qr
from app.communities.models import Community
from app.extensions import db
from app.wishes.models import Board
from app.wishes.service import public_url


def render_poster(board: Board) -> str:
    """The poster's HTML: names, the QR of the board's public URL, three steps, the URL in text."""
    url = public_url(board)
    community = db.session.get(Community, board.community_id)
    return render_template("poster.html", board=board, community=community, url=url,
                           qr_svg=qr.svg_inline(url))
