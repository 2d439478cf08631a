"""Communities (the tenants), memberships with roles, volunteer profiles and teams."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.db import TimestampMixin, forget_memo, transaction_memo, utcnow
from app.extensions import db
from app.i18n import N_


class Role(enum.StrEnum):
    RESIDENT = "resident"
    VOLUNTEER = "volunteer"
    ORGANISER = "organiser"


ROLE_LABELS = {
    Role.RESIDENT: N_("居民"),
    Role.VOLUNTEER: N_("志愿者"),
    Role.ORGANISER: N_("社区工作人员"),
}


class Community(TimestampMixin, db.Model):
    """社区/村: owns its boards, teams, points rules, store and points accounts."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    street: Mapped[str] = mapped_column(sa.String(64), default="")
    district: Mapped[str] = mapped_column(sa.String(64), default="")


class Membership(TimestampMixin, db.Model):
    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("community_id", "user_id", name="uq_memberships_community_user"),
        sa.CheckConstraint("role IN ('resident', 'volunteer', 'organiser')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))

    user: Mapped[User] = relationship(lazy="joined")

    @classmethod
    def find(cls, community_id: int, user_id: int) -> Membership | None:
        """The user's membership of the community, if any: the one lookup every module uses.

        A request asks it several times (the route's access check, then the service's rules),
        so the answer is kept for the transaction, until a membership is added or deleted.
        """
        known = transaction_memo(db.session, _MEMBERSHIPS)
        key = (community_id, user_id)
        if key not in known:
            known[key] = db.session.scalar(_FIND_MEMBERSHIP, {"community": community_id,
                                                              "user": user_id})
        return known[key]


_MEMBERSHIPS = "xinyuan.memberships"
# Built once (most requests run it): composing a statement costs more than running it.
_FIND_MEMBERSHIP = sa.select(Membership).where(Membership.community_id == sa.bindparam("community"),
                                               Membership.user_id == sa.bindparam("user"))


@sa.event.listens_for(sa.orm.Session, "after_flush")
def _forget_changed_memberships(session, _context) -> None:
    if any(isinstance(o, Membership) for o in (*session.new, *session.deleted)):
        forget_memo(session, _MEMBERSHIPS)


class VolunteerProfile(db.Model):
    """Party member or not, in service (在职) or retired (退休), skills from a fixed list, tags."""

    __tablename__ = "volunteer_profiles"
    __table_args__ = (
        sa.CheckConstraint("status IS NULL OR status IN ('in_service', 'retired')", name="status"),
        sa.CheckConstraint("public_name IN ('full', 'masked')", name="public_name"),
    )

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    party_member: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str | None] = mapped_column(sa.String(16))
    skills: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # How the public notice page (公示) names them: "full" (the seeds publish champions' names)
    # or "masked" (王** — the family name, then one * per remaining character).
    public_name: Mapped[str] = mapped_column(sa.String(8), default="full", server_default="full")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Team(TimestampMixin, db.Model):
    """志愿服务队, e.g. "红色足印"老党员志愿服务队."""

    __tablename__ = "teams"
    __table_args__ = (
        sa.UniqueConstraint("community_id", "name", name="uq_teams_community_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    leader_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )

    leader: Mapped[User | None] = relationship(lazy="joined")
    members: Mapped[list[TeamMember]] = relationship(
        back_populates="team", cascade="all, delete-orphan", order_by="TeamMember.user_id",
        lazy="selectin",
    )


class TeamMember(db.Model):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    community_id: Mapped[int] = mapped_column(
        sa.ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

    team: Mapped[Team] = relationship(back_populates="members")
    user: Mapped[User] = relationship(lazy="joined")
