"""Boards, QR codes, posters and the micro-wish lifecycle over HTTP."""

import hashlib

from flask import Response, request
from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from app import qr
from app.auth.decorators import login_required
from app.communities import access
from app.communities.models import Role
from app.db import paginate
from app.extensions import db
from app.schemas import PageQuery, page_schema
from app.wishes import service
from app.wishes.models import CATEGORIES, Board, ClaimLapse, Wish
from app.wishes.poster import render_poster
from app.wishes.schemas import (
    ApproveSchema,
    AssignSchema,
    BoardCreateSchema,
    BoardSchema,
    BoardUpdateSchema,
    CategorySchema,
    ClaimLapseSchema,
    ConfirmSchema,
    EmptySchema,
    FulfilSchema,
    LapseQuerySchema,
    OptionalReasonSchema,
    QRQuerySchema,
    ReasonSchema,
    WishCreateSchema,
    WishPageSchema,
    WishQuerySchema,
    WishSchema,
    WishSettingsSchema,
)

blp = Blueprint("wishes", __name__, url_prefix="/api/v1",
                description="Boards with QR codes, and micro-wishes from posting to points")

BoardPage = page_schema(BoardSchema, "BoardPage")
LapsePage = page_schema(ClaimLapseSchema, "ClaimLapsePage")


def _board_body(board: Board) -> dict:
    return {**{c: getattr(board, c) for c in (
        "id", "community_id", "name", "location", "grid_label", "auto_approve", "enabled",
        "token", "created_at")}, "public_url": service.public_url(board)}


@blp.route("/communities/<int:cid>/boards")
class Boards(MethodView):
    @login_required
    @blp.arguments(BoardCreateSchema)
    @blp.response(201, BoardSchema)
    def post(self, data, cid):
        """Create a board (心愿墙 / 帮办二维码) with a fresh public token (organiser)"""
        access.community(cid, Role.ORGANISER)
        return _board_body(service.create_board(cid, **data))

    @login_required
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, BoardPage)
    def get(self, query, cid):
        """List the community's boards (any member)"""
        access.community(cid)
        page = paginate(db.session, service.boards_query(cid), query["page"], query["per_page"])
        return {**page, "items": [_board_body(b) for b in page["items"]]}


@blp.route("/boards/<int:bid>")
class BoardDetail(MethodView):
    @login_required
    @blp.response(200, BoardSchema)
    def get(self, bid):
        """One board (any member of its community)"""
        return _board_body(access.load(Board, bid))

    @login_required
    @blp.arguments(BoardUpdateSchema)
    @blp.response(200, BoardSchema)
    def patch(self, changes, bid):
        """Rename, move, enable/disable or set auto-approve of a board (organiser)"""
        return _board_body(service.update_board(access.load(Board, bid, Role.ORGANISER), changes))


@blp.route("/boards/<int:bid>/rotate-token", methods=["POST"])
@login_required
@blp.response(200, BoardSchema)
def rotate_board_token(bid):
    """Replace the board's public token; the old QR then says it was replaced (organiser)"""
    return _board_body(service.rotate_token(access.load(Board, bid, Role.ORGANISER)))


def _image(content: bytes, mimetype: str) -> Response:
    response = Response(content, mimetype=mimetype)
    response.set_etag(hashlib.sha256(content).hexdigest()[:32])
    response.cache_control.private = True
    response.cache_control.max_age = 3600
    return response.make_conditional(request)


@blp.route("/boards/<int:bid>/qrcode.png", methods=["GET"])
@login_required
@blp.arguments(QRQuerySchema, location="query")
@blp.response(200, description="PNG of the board's public URL (error correction M)",
              content_type="image/png")
def board_qr_png(query, bid):
    """The board's QR code as PNG, `size` pixels square (any member)"""
    board = access.load(Board, bid)
    return _image(qr.png(service.public_url(board), query["size"]), "image/png")


@blp.route("/boards/<int:bid>/qrcode.svg", methods=["GET"])
@login_required
@blp.response(200, description="SVG of the board's public URL", content_type="image/svg+xml")
def board_qr_svg(bid):
    """The board's QR code as SVG (any member)"""
    board = access.load(Board, bid)
    return _image(qr.svg(service.public_url(board)), "image/svg+xml")


@blp.route("/boards/<int:bid>/poster", methods=["GET"])
@login_required
@blp.response(200, description="A4 printable HTML page", content_type="text/html")
def board_poster(bid):
    """A printable A4 poster in Chinese: names, the QR, how to post, the short URL (member)"""
    return Response(render_poster(access.load(Board, bid)), mimetype="text/html")


@blp.route("/wish-categories", methods=["GET"])
@blp.response(200, CategorySchema(many=True))
def wish_categories():
    """The fixed list of wish categories (codes and Chinese labels)"""
    return [{"code": code, "label": info["label"]} for code, info in CATEGORIES.items()]


@blp.route("/communities/<int:cid>/wish-settings")
class WishSettings(MethodView):
    @login_required
    @blp.response(200, WishSettingsSchema)
    def get(self, cid):
        """Deadlines and limits of the wish lifecycle in this community (any member)"""
        access.community(cid)
        return service.settings_for(cid)

    @login_required
    @blp.arguments(WishSettingsSchema)
    @blp.response(200, WishSettingsSchema)
    def patch(self, changes, cid):
        """Change claim limit, deadlines, auto-confirm rating, default level (organiser)"""
        access.community(cid, Role.ORGANISER)
        return service.update_settings(cid, changes)


@blp.route("/boards/<int:bid>/wishes", methods=["POST"])
@login_required
@blp.arguments(WishCreateSchema)
@blp.response(201, WishSchema)
@blp.alt_response(409, description="board_closed")
def post_wish(data, bid):
    """Post a micro-wish on a board; anyone logged in (joins the community as a resident)"""
    wish = service.post_wish(access.get(Board, bid), current_user, data)
    return {**service.present(wish, current_user), "timeline": service.timeline(wish, current_user)}


@blp.route("/wishes", methods=["GET"])
@login_required
@blp.arguments(WishQuerySchema, location="query")
@blp.response(200, WishPageSchema)
def list_wishes(query):
    """Wishes I may see, filtered; newest first, or by match with my skills (sort=match)"""
    return service.list_visible(current_user, query)


def _load_wish(wid: int) -> Wish:
    # Any member of the wish's community may look (personal data masked) and try actions:
    # the transition table answers 403 or 409. Others get 404.
    return access.load(Wish, wid)


@blp.route("/wishes/<int:wid>", methods=["GET"])
@login_required
@blp.response(200, WishSchema)
def get_wish(wid):
    """One wish with its timeline; contact details only for those who may see them"""
    wish = _load_wish(wid)
    body = {**service.present(wish, current_user), "timeline": service.timeline(wish, current_user)}
    if body["_reveal_to_claimer"]:
        service.log_reveal(wish.id, wish.community_id, current_user.id)
    return body


def _register_action(action: str, schema, summary: str, description: str) -> None:
    def view(data, wid):
        # Locked first (act() then finds it locked): one read of the wish, not two.
        access.require(service.lock(wid).community_id)
        wish = service.act(wid, action, current_user, **data)
        body = {**service.present(wish, current_user),
                "timeline": service.timeline(wish, current_user)}
        if body["_reveal_to_claimer"]:  # e.g. the answer to a claim shows the claimer whom to help
            service.record_reveal(wish.id, wish.community_id, current_user.id)
        return body

    view.__name__ = f"wish_{action}"
    view.__doc__ = f"{summary}\n\n{description}"
    decorated = blp.alt_response(
        409, description="invalid_transition (names the current state) or a rule refusal")(
        blp.response(200, WishSchema)(blp.arguments(schema)(view)))
    blp.route(f"/wishes/<int:wid>/{action}", methods=["POST"])(login_required(decorated))


for _action, _schema, _summary, _description in [
    ("approve", ApproveSchema, "Approve a pending wish with a level 1–5 (organiser)",
     "pending → open; the level sets the points (rules table)."),
    ("reject", ReasonSchema, "Reject a pending or open wish with a reason (organiser)",
     "pending/open → rejected."),
    ("cancel", OptionalReasonSchema, "Withdraw my pending or open wish",
     "pending/open → cancelled; by the owner, or an organiser for a resident (by proxy)."),
    ("claim", EmptySchema, "Claim an open wish (volunteer; not my own; claim limit applies)",
     "open → claimed (党员接单)."),
    ("assign", AssignSchema, "Dispatch an open wish to a volunteer of the community (organiser)",
     "open → claimed (社区派单)."),
    ("release", ReasonSchema, "Give a claimed wish back, with a reason (claimer or organiser)",
     "claimed → open."),
    ("extend", EmptySchema, "Extend my fulfil deadline once (claimer)",
     "claimed → claimed; adds the community's extension days."),
    ("fulfil", FulfilSchema, "Report a claimed wish done, with a note (claimer)",
     "claimed → fulfilled; the points show as pending until confirmed."),
    ("confirm", ConfirmSchema, "Confirm with a 1–5 rating; the claimer earns points (owner)",
     "fulfilled → closed; points = rule(level) × satisfaction factor(rating), posted once. "
     "An organiser may confirm for the resident (by proxy)."),
    ("dispute", ReasonSchema, "Say it is not done yet, with a reason (owner)",
     "fulfilled → claimed; a new fulfil deadline starts."),
]:
    _register_action(_action, _schema, _summary, _description)



@blp.route("/communities/<int:cid>/claim-lapses", methods=["GET"])
@login_required
@blp.arguments(LapseQuerySchema, location="query")
@blp.response(200, LapsePage)
def claim_lapses(query, cid):
    """Claims released because their fulfil deadline passed, newest first (organiser)"""
    access.community(cid, Role.ORGANISER)
    statement = db.select(ClaimLapse).where(ClaimLapse.community_id == cid)
    if query.get("user_id"):
        statement = statement.where(ClaimLapse.user_id == query["user_id"])
    return paginate(db.session, statement.order_by(ClaimLapse.id.desc()), query["page"],
                    query["per_page"])
