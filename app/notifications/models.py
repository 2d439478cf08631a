"""The outbox's events, each person's notifications, mutes, webhooks and their deliveries."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import utcnow
from app.extensions import db


class Event(db.Model):
    """Something that happened, written in the same transaction as the change itself.

    `data` is a snapshot of what the texts need (titles, names, amounts) — never a phone or an
    address — so that a notification is rendered when read and a group message built when sent.
    `key` makes time-driven events (reminders) happen once per object and threshold.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (sa.Index("ix_outbox_events_community_id_id", "community_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("communities.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(sa.String(40))
    subject_type: Mapped[str | None] = mapped_column(sa.String(20))
    subject_id: Mapped[int | None]
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(db.Model):
    """One event in one person's inbox."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "event_id", name="uq_notifications_user_event"),
        sa.Index("ix_notifications_user_id_id", "user_id", "id"),
        sa.Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("outbox_events.id", ondelete="CASCADE"), index=True)
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    event: Mapped[Event] = relationship(lazy="joined")


class NotificationMute(db.Model):
    """An event type this person chose not to hear about in the inbox."""

    __tablename__ = "notification_mutes"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    event_type: Mapped[str] = mapped_column(sa.String(40), primary_key=True)


class Webhook(db.Model):
    """Where a community's events go: its own system (json) or a group robot (wecom, dingtalk).

    `secret` signs json payloads and DingTalk calls; it is never answered back. `send_after`
    spaces the messages to one robot (about 20 a minute is all they take).
    """

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(40), default="")
    url: Mapped[str] = mapped_column(sa.String(2048))
    format: Mapped[str] = mapped_column(sa.String(10))
    events: Mapped[list] = mapped_column(sa.JSON, default=list)
    secret: Mapped[str | None] = mapped_column(sa.String(128))
    enabled: Mapped[bool] = mapped_column(default=True)
    quiet_start: Mapped[str | None] = mapped_column(sa.String(5))  # "22:00", Asia/Shanghai
    quiet_end: Mapped[str | None] = mapped_column(sa.String(5))  # "07:00"
    send_after: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(db.Model):
    """One event to one webhook: written with the event, then sent by `flask outbox run`.

    A worker claims a row by setting `lease_until` (and `lease_owner`) in a short transaction,
    sends outside any transaction, and records the answer; a crashed worker's lease runs out and
    another takes the row again (at least once; the event id lets the receiver deduplicate).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("outbox_events.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(sa.String(36))
    response_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    duration_ms: Mapped[int | None]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    webhook: Mapped[Webhook] = relationship(lazy="joined")
    event: Mapped[Event] = relationship(lazy="joined")
