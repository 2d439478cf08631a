"""Volunteer activities (志愿服务), their sign-ups and attendance, and check-in attempts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.db import utcnow
from app.extensions import db

PUBLISHED, CANCELLED, COMPLETED = "published", "cancelled", "completed"
STATUSES = (PUBLISHED, CANCELLED, COMPLETED)
# A sign-up: signed_up → cancelled (before the start) or → attended (checked in) → on
# completion, whoever is still only signed up is recorded absent.
SIGNED_UP, SIGNUP_CANCELLED, ATTENDED, ABSENT = "signed_up", "cancelled", "attended", "absent"
SIGNUP_STATUSES = (SIGNED_UP, SIGNUP_CANCELLED, ATTENDED, ABSENT)
# How someone was checked in: scanning the QR, typing the 6-digit code, or by an organiser.
CHECKIN_METHODS = ("qr", "code", "organiser")


class Activity(db.Model):
    __tablename__ = "activities"
    __table_args__ = (
        sa.Index("ix_activities_community_id_starts_at", "community_id", "starts_at"),
        sa.CheckConstraint("status IN ('published', 'cancelled', 'completed')", name="status"),
        sa.CheckConstraint("level BETWEEN 1 AND 5", name="level"),
        sa.CheckConstraint("half_hours BETWEEN 1 AND 48", name="half_hours"),
        sa.CheckConstraint("capacity >= 1", name="capacity_positive"),
        sa.CheckConstraint("signed_up >= 0 AND signed_up <= capacity", name="signed_up_within"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(sa.String(60))
    description: Mapped[str] = mapped_column(sa.String(2000), default="")
    place: Mapped[str] = mapped_column(sa.String(100))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    capacity: Mapped[int]
    level: Mapped[int]
    # Service hours in whole half-hours (1–48: 0.5 h to 24 h), so sums are exact.
    half_hours: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default=PUBLISHED)
    # Places taken (signed up or attended, walk-ins included): moved only by conditional UPDATEs.
    signed_up: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(200))

    @property
    def hours(self) -> float:
        return self.half_hours / 2


class SignUp(db.Model):
    __tablename__ = "activity_signups"
    __table_args__ = (
        sa.UniqueConstraint("activity_id", "user_id", name="uq_activity_signups_activity_user"),
        sa.Index("ix_activity_signups_user_id_status", "user_id", "status"),
        sa.CheckConstraint("status IN ('signed_up', 'cancelled', 'attended', 'absent')",
                           name="status"),
        sa.CheckConstraint("checkin_method IS NULL OR checkin_method IN ('qr', 'code', "
                           "'organiser')", name="checkin_method"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(sa.String(16), default=SIGNED_UP)
    walk_in: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]
    checked_in_at: Mapped[datetime | None]
    # The volunteer themself (by QR or code) or the organiser who marked them present.
    checked_in_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    checkin_method: Mapped[str | None] = mapped_column(sa.String(10))
    points_awarded: Mapped[int | None]
    points_capped: Mapped[int | None]
    # Service hours credited on completion, in half-hours (0 for the absent).
    half_hours_credited: Mapped[int | None]

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    activity: Mapped[Activity] = relationship(lazy="joined")

    @property
    def hours_credited(self) -> float | None:
        return None if self.half_hours_credited is None else self.half_hours_credited / 2


class CheckinAttempt(db.Model):
    """One check-in by code or QR: at most 5 a minute per person, counted across workers."""

    __tablename__ = "activity_checkin_attempts"
    __table_args__ = (
        sa.Index("ix_activity_checkin_attempts_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
