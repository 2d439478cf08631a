"""Problem reports (随手拍), their timeline, and each community's report settings."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.db import utcnow
from app.extensions import db
from app.i18n import N_

# Stable slugs for clients, Chinese labels (gettext msgids) for people.
CATEGORIES: dict[str, str] = {
    "manhole": N_("井盖破损"),
    "fire_lane": N_("消防通道堵塞"),
    "clutter": N_("乱堆乱放"),
    "sanitation": N_("环境卫生"),
    "facility": N_("设施损坏"),
    "other": N_("其他"),
}


class ReportSettings(db.Model):
    """Per-community switches of the report flow."""

    __tablename__ = "report_settings"

    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True
    )
    residents_may_report: Mapped[bool] = mapped_column(default=False)


class Report(db.Model):
    __tablename__ = "reports"
    __table_args__ = (
        sa.Index("ix_reports_community_id_status", "community_id", "status"),
        sa.Index("ix_reports_reporter_id_created_at", "reporter_id", "created_at"),
        sa.Index("ix_reports_community_id_created_at", "community_id", "created_at"),  # stats
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'in_progress', 'resolved', 'rejected', "
            "'duplicate')", name="status"),
        sa.CheckConstraint("level IS NULL OR level BETWEEN 1 AND 5", name="level"),
        sa.CheckConstraint("duplicate_of IS NULL OR duplicate_of <> id", name="not_own_duplicate"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    reporter_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    category: Mapped[str] = mapped_column(sa.String(20))
    description: Mapped[str] = mapped_column(sa.String(1000))
    location: Mapped[str] = mapped_column(sa.String(200))
    # The location as compared for near-identical reports: trimmed, whitespace collapsed.
    location_key: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    level: Mapped[int | None]
    points_awarded: Mapped[int | None]
    points_capped: Mapped[int | None]
    assigned_to: Mapped[str | None] = mapped_column(sa.String(100))
    resolution_note: Mapped[str | None] = mapped_column(sa.String(500))
    reject_reason: Mapped[str | None] = mapped_column(sa.String(200))
    duplicate_of: Mapped[int | None] = mapped_column(
        sa.ForeignKey("reports.id", ondelete="SET NULL"))
    possible_duplicate_of: Mapped[int | None] = mapped_column(
        sa.ForeignKey("reports.id", ondelete="SET NULL"))
    # The stored, re-encoded photo (app/storage.py key), if any.
    photo_key: Mapped[str | None] = mapped_column(sa.String(120))
    photo_type: Mapped[str | None] = mapped_column(sa.String(20))
    photo_bytes: Mapped[int | None]
    photo_width: Mapped[int | None]
    photo_height: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]

    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id], lazy="joined")


class ReportEvent(db.Model):
    """One step of a report's timeline: who moved it from what to what, when, and why."""

    __tablename__ = "report_events"
    __table_args__ = (sa.Index("ix_report_events_report_id_id", "report_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("reports.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(sa.String(20))
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="joined")
