"""Per-community rating thresholds and the stored (frozen) monthly board ratings."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.extensions import db
from app.i18n import N_

RED, YELLOW, BLUE = "red", "yellow", "blue"
RATINGS = (RED, YELLOW, BLUE)
RATING_LABELS = {RED: N_("红"), YELLOW: N_("黄"), BLUE: N_("蓝")}  # msgids: gettext to show

# The documented defaults (README, "红黄蓝"): 红 needs every metric at or past its upper
# threshold, 蓝 is any metric past its lower one. Time to claim counts the other way: fewer
# hours are better, so its "upper" threshold is the smaller number.
DEFAULT_THRESHOLDS = {
    "completion_rate_red": 0.9, "completion_rate_blue": 0.6,
    "satisfaction_red": 4.5, "satisfaction_blue": 3.5,
    "claim_hours_red": 24.0, "claim_hours_blue": 72.0,
}


class RatingThresholds(db.Model):
    """One community's 红黄蓝 thresholds; a community without a row uses the defaults."""

    __tablename__ = "rating_thresholds"
    __table_args__ = (
        sa.CheckConstraint("completion_rate_blue <= completion_rate_red", name="completion_order"),
        sa.CheckConstraint("satisfaction_blue <= satisfaction_red", name="satisfaction_order"),
        sa.CheckConstraint("claim_hours_red <= claim_hours_blue", name="claim_hours_order"),
    )

    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    completion_rate_red: Mapped[float] = mapped_column(sa.Float)
    completion_rate_blue: Mapped[float] = mapped_column(sa.Float)
    satisfaction_red: Mapped[float] = mapped_column(sa.Float)
    satisfaction_blue: Mapped[float] = mapped_column(sa.Float)
    claim_hours_red: Mapped[float] = mapped_column(sa.Float)
    claim_hours_blue: Mapped[float] = mapped_column(sa.Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BoardRating(db.Model):
    """A closed month's rating of one board, stored by `flask stats close-month`; never changed.

    The figures it was computed from are kept beside it, so the notice board and the dashboard
    show what the rating was decided on even after an old wish is corrected.
    """

    __tablename__ = "board_ratings"
    __table_args__ = (
        sa.Index("ix_board_ratings_community_id_month", "community_id", "month"),
        sa.CheckConstraint("rating IS NULL OR rating IN ('red', 'yellow', 'blue')",
                           name="rating"),
    )

    board_id: Mapped[int] = mapped_column(
        sa.ForeignKey("boards.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)  # the 1st of the month
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE")
    )
    board_name: Mapped[str] = mapped_column(sa.String(64))
    rating: Mapped[str | None] = mapped_column(sa.String(8))
    wishes: Mapped[int]
    completion_rate: Mapped[float | None] = mapped_column(sa.Float)
    satisfaction: Mapped[float | None] = mapped_column(sa.Float)
    claim_seconds_median: Mapped[float | None] = mapped_column(sa.Float)
    thresholds: Mapped[dict] = mapped_column(sa.JSON)
    frozen_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClosedMonth(db.Model):
    """A month whose ratings are stored for a community (so a board without wishes, whose
    stored rating is NULL, is still known to be closed)."""

    __tablename__ = "closed_months"

    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)
