"""The audit log: who did what to whom in a community, for organisers to read."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_community_id_id", "community_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("communities.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(sa.String(40))
    subject_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def record(community_id: int, actor_id: int | None, action: str, *,
           subject_user_id: int | None = None, **details) -> AuditEvent:
    event = AuditEvent(community_id=community_id, actor_id=actor_id, action=action,
                       subject_user_id=subject_user_id, details=details)
    db.session.add(event)
    return event


def events_query(community_id: int) -> sa.Select:
    return (sa.select(AuditEvent).where(AuditEvent.community_id == community_id)
            .order_by(AuditEvent.id.desc()))
