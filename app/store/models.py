"""The points store (爱心超市): rewards, redemptions with pickup codes, member cards."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.db import utcnow
from app.extensions import db

REWARD_KINDS = {"goods": "实物", "service": "服务", "honour": "荣誉"}
AWAITING_PICKUP, FULFILLED, CANCELLED, EXPIRED = "awaiting_pickup", "fulfilled", "cancelled", "expired"
REDEMPTION_STATUSES = (AWAITING_PICKUP, FULFILLED, CANCELLED, EXPIRED)


class Reward(db.Model):
    __tablename__ = "rewards"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('goods', 'service', 'honour')", name="kind"),
        sa.CheckConstraint("cost >= 1", name="cost_positive"),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        sa.CheckConstraint("(kind = 'honour') = (stock IS NULL)", name="stock_iff_not_honour"),
        sa.CheckConstraint("per_user_monthly_limit IS NULL OR per_user_monthly_limit >= 1",
                           name="limit_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    kind: Mapped[str] = mapped_column(sa.String(10))
    cost: Mapped[int]
    stock: Mapped[int | None]  # goods and service slots; honours have none
    per_user_monthly_limit: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    image_url: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Redemption(db.Model):
    __tablename__ = "redemptions"
    __table_args__ = (
        sa.Index("ix_redemptions_community_id_status", "community_id", "status"),
        sa.Index("ix_redemptions_user_id_reward_id", "user_id", "reward_id"),
        sa.CheckConstraint("quantity BETWEEN 1 AND 10", name="quantity"),
        sa.CheckConstraint(
            "status IN ('awaiting_pickup', 'fulfilled', 'cancelled', 'expired')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    reward_id: Mapped[int] = mapped_column(sa.ForeignKey("rewards.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    # The reward as it was when redeemed: changing a cost never changes past redemptions.
    reward_name: Mapped[str] = mapped_column(sa.String(64))
    reward_kind: Mapped[str] = mapped_column(sa.String(10))
    unit_cost: Mapped[int]
    quantity: Mapped[int]
    cost_total: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16))
    pickup_code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    wrong_code_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    at_counter: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    fulfilled_at: Mapped[datetime | None]
    fulfilled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    cancelled_at: Mapped[datetime | None]
    cancelled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(200))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class MemberCard(db.Model):
    """A volunteer's member code, shown as a QR at the store counter; rotatable."""

    __tablename__ = "member_cards"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    rotated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoreSettings(db.Model):
    __tablename__ = "store_settings"

    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    redemption_expiry_days: Mapped[int] = mapped_column(default=30)
