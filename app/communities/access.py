"""The one way every view says "this needs role R in the community of this object".

    community = access.community(cid, Role.ORGANISER)
    team = access.load(Team, tid, Role.ORGANISER)

A caller who is not a member of the object's community gets 404, exactly as if the object did
not exist, so ids of other communities reveal nothing. A member whose role is not enough gets 403.
Platform admins pass every check. Any model with a `community_id` column works with `load`.
"""

from __future__ import annotations

from typing import TypeVar

import sqlalchemy as sa
from flask_jwt_extended import current_user

from app.communities.models import ROLE_LABELS, Community, Membership, Role
from app.db import MAX_ID
from app.errors import Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.i18n import N_, gettext

T = TypeVar("T")


def require(community_id: int, *roles: Role) -> Membership | None:
    """Check the current user holds one of `roles` (any role if none given) in the community.

    Returns the membership (None for an admin who is not a member).
    """
    if not 0 < community_id <= MAX_ID:
        raise NotFound()
    member = Membership.find(community_id, current_user.id)
    if member is None:
        if current_user.is_admin and db.session.get(Community, community_id) is not None:
            return None
        raise NotFound()
    if roles and Role(member.role) not in roles and not current_user.is_admin:
        raise Forbidden("role_required", roles="/".join(gettext(ROLE_LABELS[r]) for r in roles))
    return member


def community(community_id: int, *roles: Role) -> Community:
    """Load a community the current user may see with one of `roles`."""
    require(community_id, *roles)
    found = db.session.get(Community, community_id)
    if found is None:
        raise NotFound()
    return found


def get(model: type[T], object_id: int) -> T:
    """Load by id or answer 404 (ids beyond the column's range included)."""
    found = db.session.get(model, object_id) if 0 < object_id <= MAX_ID else None
    if found is None:
        raise NotFound()
    return found


def load(model: type[T], object_id: int, *roles: Role) -> T:
    """Load an object of a community and check the current user's role there."""
    found = get(model, object_id)
    require(found.community_id, *roles)
    return found


def require_member(community_id: int, user_id: int, field: str, *roles: Role) -> Membership:
    """A request field naming a person must name a member of the community (with one of
    `roles`, if given); otherwise the field is invalid (422)."""
    member = Membership.find(community_id, user_id)
    if member is None or (roles and Role(member.role) not in roles):
        wanted = roles or tuple(Role)
        either = " " + gettext("或") + " "
        raise ValidationFailed(field, N_("必须是本社区的{roles}。"),
                               roles=either.join(gettext(ROLE_LABELS[r]) for r in wanted))
    return member


def role_of(community_id: int, user) -> str | None:
    """The user's role in the community (a platform admin counts as its organiser), or None."""
    if user.is_admin:
        return Role.ORGANISER.value
    member = Membership.find(community_id, user.id)
    return member.role if member else None


def is_organiser(community_id: int) -> bool:
    return role_of(community_id, current_user) == Role.ORGANISER


def visible_community_ids() -> sa.Select | None:
    """The ids of communities the current user belongs to (None: all, for an admin)."""
    if current_user.is_admin:
        return None
    return sa.select(Membership.community_id).where(Membership.user_id == current_user.id)


def my_community_ids() -> list[int]:
    return list(db.session.scalars(
        sa.select(Membership.community_id).where(Membership.user_id == current_user.id)
        .order_by(Membership.community_id)))


def organised_community_ids() -> sa.Select:
    return sa.select(Membership.community_id).where(
        Membership.user_id == current_user.id, Membership.role == Role.ORGANISER.value)
