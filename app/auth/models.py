"""Users and the records that make token revocation visible to every worker and instance."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TimestampMixin, utcnow
from app.extensions import db


class User(TimestampMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(11), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(32))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    def __repr__(self) -> str:
        return f"<User {self.id} {self.display_name}>"


class TokenFamily(db.Model):
    """One login: every access and refresh token issued from it shares the family id.

    Logging out, or replaying a used refresh token, revokes the family; the check is one
    primary-key read per request, against the database every worker shares.
    """

    __tablename__ = "token_families"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(20))


class RefreshToken(db.Model):
    """A refresh token handed out, and the access token issued beside it.

    `used_at` is set once, by a conditional update, on rotation, and `successor_jti` then names
    the pair that rotation issued. A row holds no bearer token: its pair is re-encoded from the
    ids and times stored here (see `service.encode_pair`), so the same successor can be answered
    again to a second tab within the grace window.
    """

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    family_id: Mapped[str] = mapped_column(
        sa.ForeignKey("token_families.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # Null on rows issued before migration 0005; such a pair cannot be re-encoded.
    access_jti: Mapped[str | None] = mapped_column(sa.String(36))
    # Unique: a token has at most one predecessor, so one rotation made exactly one successor.
    successor_jti: Mapped[str | None] = mapped_column(
        sa.ForeignKey("refresh_tokens.jti", ondelete="SET NULL"), unique=True
    )


class PasswordReset(db.Model):
    """A one-time code an organiser issued so a member who forgot the password can set a new one.

    Only the code's keyed hash is stored. A code works once, until `expires_at`, and not after
    a newer code for the same person (`superseded_at`), and for MAX_RESET_ATTEMPTS tries.
    """

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The issuing organiser's community: its audit log records the code.
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    issued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    superseded_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)  # tries so far, the right one included
