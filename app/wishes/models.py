"""Boards (心愿墙 / 帮办二维码), micro-wishes (微心愿), their timeline and deadlines."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.db import utcnow
from app.extensions import db

# Categories are a fixed list: stable codes for clients, Chinese labels for people, and the
# volunteer skills that match each (for sorting open wishes by match).
CATEGORIES: dict[str, dict] = {
    "life_help": {"label": "生活帮扶", "skills": ("housekeeping", "caregiving")},
    "repair": {"label": "维修", "skills": ("repair",)},
    "errands": {"label": "跑腿代购", "skills": ("errands", "driving")},
    "companionship": {"label": "陪伴探访", "skills": ("caregiving", "counselling")},
    "policy": {"label": "政策咨询", "skills": ("legal",)},
    "digital": {"label": "手机电脑", "skills": ("digital", "tutoring")},
    "other": {"label": "其他", "skills": ()},
}


class Board(db.Model):
    __tablename__ = "boards"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(64))
    location: Mapped[str] = mapped_column(sa.String(128), default="")
    grid_label: Mapped[str | None] = mapped_column(sa.String(32))
    auto_approve: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    # At least 128 random bits, URL-safe; the QR encodes PUBLIC_BASE_URL/b/<token>.
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RetiredBoardToken(db.Model):
    """A token replaced by rotation: its QR now shows "this code has been replaced"."""

    __tablename__ = "retired_board_tokens"

    token: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    board_id: Mapped[int] = mapped_column(sa.ForeignKey("boards.id", ondelete="CASCADE"),
                                          index=True)
    retired_at: Mapped[datetime] = mapped_column(default=utcnow)


class WishSettings(db.Model):
    """Per-community deadlines and limits of the wish lifecycle."""

    __tablename__ = "wish_settings"

    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    max_active_claims: Mapped[int] = mapped_column(default=3)
    fulfil_days: Mapped[int] = mapped_column(default=3)
    extension_days: Mapped[int] = mapped_column(default=3)
    auto_confirm_days: Mapped[int] = mapped_column(default=7)
    auto_confirm_rating: Mapped[int] = mapped_column(default=5)
    escalate_hours: Mapped[int] = mapped_column(default=24)
    default_level: Mapped[int] = mapped_column(default=1)


class Wish(db.Model):
    __tablename__ = "wishes"
    __table_args__ = (
        sa.Index("ix_wishes_community_id_status", "community_id", "status"),
        sa.Index("ix_wishes_claimer_id_status", "claimer_id", "status"),
        sa.Index("ix_wishes_community_id_created_at", "community_id", "created_at"),
        # Who was active in a period (claimed or fulfilled then): statistics, per community.
        sa.Index("ix_wishes_community_id_claimed_at", "community_id", "claimed_at"),
        sa.Index("ix_wishes_community_id_fulfilled_at", "community_id", "fulfilled_at"),
        # A board's list by status, newest first (GET /wishes?board_id=&status=): one range
        # of the board's wishes in that state, not the board's whole history.
        sa.Index("ix_wishes_community_board_status_id", "community_id", "board_id", "status",
                 "id"),
        sa.CheckConstraint(
            "status IN ('pending', 'open', 'claimed', 'fulfilled', 'closed', 'rejected', "
            "'cancelled')", name="status"),
        sa.CheckConstraint("level IS NULL OR level BETWEEN 1 AND 5", name="level"),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        sa.CheckConstraint("owner_id IS NOT NULL OR proxy_name IS NOT NULL", name="has_owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    board_id: Mapped[int] = mapped_column(sa.ForeignKey("boards.id"), index=True)
    # The resident the wish belongs to; NULL when an organiser posted for someone without an
    # account, whose name and phone are then kept in proxy_name / proxy_phone.
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    proxy_name: Mapped[str | None] = mapped_column(sa.String(32))
    proxy_phone: Mapped[str | None] = mapped_column(sa.String(11))
    posted_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))

    title: Mapped[str] = mapped_column(sa.String(60))
    description: Mapped[str] = mapped_column(sa.String(2000), default="")
    category: Mapped[str] = mapped_column(sa.String(20))
    contact_phone: Mapped[str | None] = mapped_column(sa.String(11))
    address: Mapped[str | None] = mapped_column(sa.String(200))

    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    level: Mapped[int | None]
    opened_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    claimer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None]
    fulfil_due_at: Mapped[datetime | None]
    fulfil_extended: Mapped[bool] = mapped_column(default=False)
    fulfilled_at: Mapped[datetime | None]
    fulfil_note: Mapped[str | None] = mapped_column(sa.String(500))
    rating: Mapped[int | None]
    # True when the system confirmed it (auto_confirm) with the default rating: such a rating is
    # no one's judgement, so average satisfaction leaves it out.
    rating_auto: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    comment: Mapped[str | None] = mapped_column(sa.String(500))
    closed_at: Mapped[datetime | None]
    points_awarded: Mapped[int | None]
    points_capped: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(sa.String(200))  # of rejection or cancellation
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id], lazy="joined")
    claimer: Mapped[User | None] = relationship(foreign_keys=[claimer_id], lazy="joined")
    board: Mapped[Board] = relationship(lazy="joined")


class WishEvent(db.Model):
    """One step of a wish's timeline: who moved it from what to what, when, and why."""

    __tablename__ = "wish_events"
    __table_args__ = (sa.Index("ix_wish_events_wish_id_id", "wish_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wish_id: Mapped[int] = mapped_column(sa.ForeignKey("wishes.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # NULL: the system
    action: Mapped[str] = mapped_column(sa.String(20))
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    by_proxy: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="joined")


class ContactReveal(db.Model):
    """A volunteer was shown a wish's contact phone and address."""

    __tablename__ = "contact_reveals"

    id: Mapped[int] = mapped_column(primary_key=True)
    wish_id: Mapped[int] = mapped_column(sa.ForeignKey("wishes.id", ondelete="CASCADE"),
                                         index=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    viewer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClaimLapse(db.Model):
    """A claim released because its fulfil deadline passed: on the volunteer's record."""

    __tablename__ = "claim_lapses"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    wish_id: Mapped[int] = mapped_column(sa.ForeignKey("wishes.id", ondelete="CASCADE"))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
