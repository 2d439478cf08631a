"""Pages for volunteers: wishes to claim, my points with the cause of every line, the leaderboard."""

from __future__ import annotations

from datetime import date, timedelta

import marshmallow as ma
import sqlalchemy as sa
from flask import g, request
from flask_jwt_extended import current_user

from app.communities.models import Role, TeamMember, VolunteerProfile
from app.errors import _localise_field_errors as localise_field_errors
from app.extensions import db
from app.i18n import N_, gettext
from app.ledger import leaderboard
from app.ledger import service as ledger
from app.ledger.schemas import LeaderboardQuerySchema, LedgerQuerySchema
from app.store import service as store
from app.store.models import AWAITING_PICKUP, Redemption
from app.web import causes
from app.web.pages import error_page, page_blueprint, render, role_required
from app.wishes import service as wishes
from app.wishes import transitions as lifecycle
from app.wishes.models import CATEGORIES, Wish
from app.wishes.schemas import WishQuerySchema

bp = page_blueprint("volunteer", __name__)

PER_PAGE = 20
MEMBERS = (Role.RESIDENT, Role.VOLUNTEER, Role.ORGANISER)
PERIODS = ("week", "month", "all")
SOURCE_LABELS = (("wish", N_("帮居民实现心愿")), ("report", N_("随手拍反映问题")),
                 ("activity", N_("参加志愿活动")), ("adjustment", N_("社区调整")))
SOURCE_TABS = (("wish", N_("心愿")), ("report", N_("随手拍")), ("activity", N_("志愿活动")))
ARG_LABELS = {"category": N_("分类"), "page": N_("页码"), "after": N_("翻页位置"),
              "period": N_("时间段"), "source": N_("积分来源")}
RANK_ROWS = 10  # the top of each ranking shown; the person's own row is added below it


def _args(schema: ma.Schema, names: tuple[str, ...]):
    """Load the query string's `names` with an API schema: (data, None) or (None, error page)."""
    given = {k: v for k, v in request.args.items() if k in names and v.strip() != ""}
    try:
        return schema.load(given), None
    except ma.ValidationError as error:
        words = "；".join(
            f"{gettext(ARG_LABELS.get(name, name))}：{text}"
            for name, texts in localise_field_errors(error.messages).items()
            for text in (texts if isinstance(texts, list) else [str(texts)]))
        return None, error_page(422, words, gettext("请回到上一页重新选择。"))


@bp.get("/volunteer/wishes")
@role_required(Role.VOLUNTEER, Role.ORGANISER)
def wishes_to_claim():
    """Open wishes of the current community, those matching my skills first; mine held now."""
    query, refused = _args(WishQuerySchema(), ("category", "page"))
    if refused:
        return refused
    query.update(community_id=g.community.id, status=lifecycle.OPEN, sort="match",
                 per_page=PER_PAGE)
    page = wishes.list_visible(current_user, query)
    held = db.session.scalars(
        wishes.visible_query(current_user, {"community_id": g.community.id, "claimed_by_me": True})
        .where(Wish.status.in_([lifecycle.CLAIMED, lifecycle.FULFILLED]))).all()
    return render("volunteer/wishes.html", page=page, held=held, category=query.get("category"),
                  categories=[(code, gettext(info["label"])) for code, info in CATEGORIES.items()],
                  matching=_matching_categories(current_user.id),
                  status_labels=lifecycle.STATUS_LABELS, pages=_pages(page))


def _matching_categories(user_id: int) -> set[str]:
    profile = db.session.get(VolunteerProfile, user_id)
    skills = set(profile.skills if profile else [])
    return {code for code, info in CATEGORIES.items() if skills & set(info["skills"])}


def _pages(page: dict) -> dict:
    last = max(1, -(-page["total"] // page["per_page"]))
    return {"number": page["page"], "last": last,
            "previous": page["page"] - 1 if page["page"] > 1 else None,
            "next": page["page"] + 1 if page["page"] < last else None}


@bp.get("/me/points")
@role_required(*MEMBERS)
def my_points():
    """我的积分: balance, pending, totals, what expires next, the history with causes."""
    query, refused = _args(LedgerQuerySchema(), ("after",))
    if refused:
        return refused
    cid = g.community.id
    history = ledger.ledger_page(cid, current_user.id, after=query.get("after"), page=1,
                                 per_page=PER_PAGE)
    lines = list(zip(history["items"], causes.describe(history["items"], current_user),
                     strict=True))
    return render("volunteer/points.html", summary=ledger.points_summary(cid, current_user.id),
                  sources=SOURCE_LABELS, lines=lines, history=history, after=query.get("after"),
                  expiring=_next_expiring(cid, current_user.id),
                  week=_own_rank(cid, "week", "volunteer"))


def _next_expiring(community_id: int, user_id: int) -> dict | None:
    """The redemption awaiting pickup that lapses first (its points then come back)."""
    oldest = db.session.scalar(
        sa.select(Redemption).where(Redemption.community_id == community_id,
                                    Redemption.user_id == user_id,
                                    Redemption.status == AWAITING_PICKUP)
        .order_by(Redemption.created_at, Redemption.id).limit(1))
    if oldest is None:
        return None
    return {"redemption": oldest,
            "due_at": oldest.created_at + timedelta(days=store.expiry_days(community_id))}


def _own_rank(community_id: int, period: str, by: str, source: str | None = None) -> dict:
    """The top rows of a ranking, and the person's own row (or their teams') wherever it is."""
    board = leaderboard.leaderboard(community_id, period, by, limit=RANK_ROWS, source=source)
    if by == "team":
        mine = set(db.session.scalars(sa.select(TeamMember.team_id).where(
            TeamMember.community_id == community_id, TeamMember.user_id == current_user.id)))
    else:
        mine = {current_user.id}
    # The person's own rows, wherever they rank: read for them (with their ranks), not found
    # by reading the whole ranking (10 000 volunteers' rows, every page view).
    own, count = leaderboard.standing(community_id, period, by, mine, source=source)
    last_day = (date.fromisoformat(board["end"]) - timedelta(days=1)).isoformat() if board["end"] else None
    return {**board, "last_day": last_day, "top": board["items"][:RANK_ROWS], "own": own,
            "own_below": [row for row in own if row["rank"] > RANK_ROWS], "count": count}


@bp.get("/leaderboard")
@role_required(*MEMBERS)
def ranking():
    """积分排行榜: this week, month or all time, by volunteer and by team, with my own rank;
    of all points earned, or of one source (wishes, reports, activities)."""
    query, refused = _args(LeaderboardQuerySchema(), ("period", "source"))
    if refused:
        return refused
    period, source = query["period"], query.get("source")
    return render("volunteer/leaderboard.html", period=period, periods=PERIODS,
                  source=source, sources=SOURCE_TABS,
                  volunteers=_own_rank(g.community.id, period, "volunteer", source),
                  teams=_own_rank(g.community.id, period, "team", source))
