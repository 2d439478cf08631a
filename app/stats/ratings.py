"""红黄蓝 ratings of each board (grid) per month, and the closing of a month.

红 (红旗网格, the best): every metric at or past its upper threshold — 办结率 and average
satisfaction at or above, median time to claim at or below. 蓝 (needs attention): any metric past
its lower threshold. 黄 otherwise. A metric that cannot be computed (no ratings given yet, no
claim) cannot earn 红 and does not make 蓝. A board with no wishes posted that month has no
colour (None).

The month's figures are those of its cohort (the wishes posted in it, see stats.service). Until a
month is closed its ratings are computed live; `flask stats close-month` stores each closed
month's ratings once, with the figures and thresholds they were decided on, and a stored rating
never changes afterwards — not when an old wish is corrected, nor when thresholds change.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

import sqlalchemy as sa

from app import audit
from app.db import change_community_settings, community_settings, insert_unless_present, utcnow
from app.errors import ValidationFailed
from app.extensions import db
from app.i18n import N_
from app.localtime import local_date
from app.stats import service as stats
from app.stats.models import (
    BLUE,
    DEFAULT_THRESHOLDS,
    RED,
    YELLOW,
    BoardRating,
    ClosedMonth,
    RatingThresholds,
)
from app.wishes.models import Board, Wish


def thresholds_for(community_id: int) -> dict:
    return community_settings(db.session, RatingThresholds, community_id, DEFAULT_THRESHOLDS)


# Each pair: the 红 threshold must be at least as demanding as the 蓝 one.
ORDER = (("completion_rate_red", "completion_rate_blue", 1),
         ("satisfaction_red", "satisfaction_blue", 1),
         ("claim_hours_red", "claim_hours_blue", -1))


def change_thresholds(community_id: int, changes: dict, actor_id: int) -> dict:
    """Change some thresholds (the others stay); the 红 one of each pair must stay at least as
    demanding as its 蓝 one, else 422 naming the field."""
    before = thresholds_for(community_id)
    merged = {**before, **changes}
    for red, blue, direction in ORDER:
        if (merged[red] - merged[blue]) * direction < 0:
            field = red if red in changes else blue
            raise ValidationFailed(field, N_("红色门槛必须不低于蓝色门槛（用时则不高于）：{red} 与 {blue}。"),
                                   red=red, blue=blue)
    if not changes:
        return before
    change_community_settings(db.session, RatingThresholds, community_id, DEFAULT_THRESHOLDS,
                              changes)
    found = db.session.get(RatingThresholds, community_id)
    found.updated_at = utcnow()
    after = thresholds_for(community_id)
    audit.record(community_id, actor_id, "stats.thresholds_updated", before=before, after=after)
    return after


def rate(wishes: dict, thresholds: dict) -> str | None:
    """The colour of one board's month from its wishes block (see the module docstring)."""
    if wishes["posted"] == 0:
        return None
    completion = wishes["completion_rate"]
    satisfaction = wishes["satisfaction"]["average"]
    claim = wishes["time_to_claim_seconds"]["median"]
    claim_hours = None if claim is None else claim / 3600
    if ((completion is not None and completion < thresholds["completion_rate_blue"])
            or (satisfaction is not None and satisfaction < thresholds["satisfaction_blue"])
            or (claim_hours is not None and claim_hours > thresholds["claim_hours_blue"])):
        return BLUE
    if (completion is not None and completion >= thresholds["completion_rate_red"]
            and satisfaction is not None and satisfaction >= thresholds["satisfaction_red"]
            and claim_hours is not None and claim_hours <= thresholds["claim_hours_red"]):
        return RED
    return YELLOW


def _live(community_id: int, month: date) -> list[dict]:
    thresholds = thresholds_for(community_id)
    rows = []
    for board in stats.board_stats(community_id, *stats.month_bounds(month)):
        wishes = board["wishes"]
        rows.append({
            "board_id": board["board_id"], "board_name": board["board_name"],
            "grid_label": board["grid_label"], "month": month.strftime("%Y-%m"),
            "rating": rate(wishes, thresholds), "frozen": False, "frozen_at": None,
            "wishes": wishes["posted"], "completion_rate": wishes["completion_rate"],
            "satisfaction": wishes["satisfaction"]["average"],
            "claim_seconds_median": wishes["time_to_claim_seconds"]["median"],
            "thresholds": thresholds,
        })
    return rows


def is_closed(community_id: int, month: date) -> bool:
    return db.session.get(ClosedMonth, (community_id, month.replace(day=1))) is not None


def month_ratings(community_id: int, month: date) -> list[dict]:
    """Each board's rating of the month: the stored one once the month is closed."""
    month = month.replace(day=1)
    if not is_closed(community_id, month):
        return _live(community_id, month)
    grids = dict(db.session.execute(sa.select(Board.id, Board.grid_label).where(
        Board.community_id == community_id)).all())
    stored = db.session.scalars(sa.select(BoardRating).where(
        BoardRating.community_id == community_id, BoardRating.month == month)
        .order_by(BoardRating.board_id)).all()
    return [{"board_id": r.board_id, "board_name": r.board_name,
             "grid_label": grids.get(r.board_id), "month": month.strftime("%Y-%m"),
             "rating": r.rating, "frozen": True, "frozen_at": r.frozen_at, "wishes": r.wishes,
             "completion_rate": r.completion_rate, "satisfaction": r.satisfaction,
             "claim_seconds_median": r.claim_seconds_median, "thresholds": r.thresholds}
            for r in stored]


def close_month(community_id: int, month: date) -> bool:
    """Store the month's ratings of every board, once; False when it was closed already.

    Safe to run from cron on several servers at once: the first one's rows stay (the inserts
    do nothing on conflict) and this run neither fails nor overwrites them.
    """
    month = month.replace(day=1)
    if month >= stats.today().replace(day=1):
        raise ValueError("only a month that has ended can be closed")
    if is_closed(community_id, month):
        return False
    now = utcnow()
    for row in _live(community_id, month):
        db.session.execute(insert_unless_present(db.session, BoardRating, {
            "board_id": row["board_id"], "month": month, "community_id": community_id,
            "board_name": row["board_name"], "rating": row["rating"], "wishes": row["wishes"],
            "completion_rate": row["completion_rate"], "satisfaction": row["satisfaction"],
            "claim_seconds_median": row["claim_seconds_median"],
            "thresholds": row["thresholds"], "frozen_at": now}, ["board_id", "month"]))
    created = db.session.execute(insert_unless_present(db.session, ClosedMonth, {
        "community_id": community_id, "month": month, "closed_at": now},
        ["community_id", "month"]).returning(ClosedMonth.month)).first()
    return created is not None


def months_to_close(community_id: int, today: date | None = None) -> list[date]:
    """Ended months not closed yet, from the month of the community's first wish to last month."""
    last = stats.previous_month((today or stats.today()).replace(day=1))
    first_wish = db.session.scalar(sa.select(sa.func.min(Wish.created_at)).where(
        Wish.community_id == community_id))
    if first_wish is None:
        return []
    if first_wish.tzinfo is None:
        first_wish = first_wish.replace(tzinfo=UTC)
    month = local_date(first_wish).replace(day=1)
    closed = set(db.session.scalars(sa.select(ClosedMonth.month).where(
        ClosedMonth.community_id == community_id)))
    months = []
    while month <= last:
        if month not in closed:
            months.append(month)
        month = stats.month_bounds(month)[1] + timedelta(days=1)
    return months
