"""Communities, members and their roles, volunteer profiles, teams."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from app.auth.models import User
from app.auth.service import find_user_by_phone
from app.communities import access
from app.communities.models import Community, Membership, Role, Team, TeamMember, VolunteerProfile
from app.db import utcnow
from app.errors import Conflict, NotFound, register_messages
from app.extensions import db
from app.i18n import N_

# The fixed list of volunteer skills: stable codes for clients, Chinese labels for people.
SKILLS: dict[str, str] = {
    "repair": "水电维修",
    "housekeeping": "家政",
    "caregiving": "陪护",
    "legal": "法律咨询",
    "errands": "跑腿代购",
    "medical": "医疗护理",
    "counselling": "心理疏导",
    "digital": "手机电脑",
    "tutoring": "学业辅导",
    "haircut": "理发",
    "driving": "驾驶接送",
    "culture": "文艺宣传",
}

register_messages({
    "community_code_taken": N_("社区编码已被使用，请换一个。"),
    "user_not_registered": N_("该手机号尚未注册，请先请对方注册后再添加。"),
    "already_member": N_("此人已是本社区成员，如需调整请修改其角色。"),
    "last_organiser": N_("社区至少需要一名工作人员，请先任命另一名工作人员。"),
    "team_name_taken": N_("本社区已有同名队伍，请换一个名称。"),
    "already_in_team": N_("此人已在队伍中。"),
})


# --- communities --------------------------------------------------------------------------

def create_community(name: str, code: str, street: str = "", district: str = "",
                     organiser_phone: str | None = None) -> Community:
    if db.session.scalar(sa.select(Community.id).where(Community.code == code)) is not None:
        raise Conflict("community_code_taken")
    community = Community(name=name, code=code, street=street, district=district)
    db.session.add(community)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise Conflict("community_code_taken") from None
    if organiser_phone:
        add_member(community, Role.ORGANISER, phone=organiser_phone)
    return community


def communities_query(visible_ids: sa.Select | None) -> sa.Select:
    query = sa.select(Community).order_by(Community.id)
    if visible_ids is not None:
        query = query.where(Community.id.in_(visible_ids))
    return query


def _lock_community(community: Community) -> None:
    """Serialise role changes within one community (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    serialises every writer), so two organisers cannot demote each other to none."""
    db.session.execute(
        sa.select(Community.id).where(Community.id == community.id).with_for_update()
    )


# --- members ------------------------------------------------------------------------------

def _find_user(phone: str | None, user_id: int | None) -> User:
    user = find_user_by_phone(phone) if phone else db.session.get(User, user_id)
    if user is None:
        field = "phone" if phone else "user_id"
        raise NotFound("user_not_registered", errors={field: ["not registered"]})
    return user


def add_member(community: Community, role: Role, *, phone: str | None = None,
               user_id: int | None = None) -> Membership:
    user = _find_user(phone, user_id)
    if Membership.find(community.id, user.id) is not None:
        raise Conflict("already_member")
    member = Membership(community_id=community.id, user_id=user.id, role=Role(role).value,
                        user=user)
    db.session.add(member)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise Conflict("already_member") from None
    return member


def members_query(community: Community, role: Role | None) -> sa.Select:
    query = sa.select(Membership).where(Membership.community_id == community.id)
    if role is not None:
        query = query.where(Membership.role == role.value)
    return query.order_by(Membership.id)


def get_member(community: Community, user_id: int) -> Membership:
    member = Membership.find(community.id, user_id)
    if member is None:
        raise NotFound()
    return member


def _organiser_count(community: Community) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).where(
            Membership.community_id == community.id, Membership.role == Role.ORGANISER.value
        )
    )


def change_role(community: Community, user_id: int, role: Role) -> Membership:
    _lock_community(community)
    member = get_member(community, user_id)
    if (member.role == Role.ORGANISER and role != Role.ORGANISER
            and _organiser_count(community) <= 1):
        raise Conflict("last_organiser")
    member.role = Role(role).value
    if role == Role.RESIDENT:
        _leave_teams(community, user_id)
    db.session.flush()
    return member


def remove_member(community: Community, user_id: int) -> None:
    _lock_community(community)
    member = get_member(community, user_id)
    if member.role == Role.ORGANISER and _organiser_count(community) <= 1:
        raise Conflict("last_organiser")
    _leave_teams(community, user_id)
    db.session.delete(member)
    db.session.flush()


def _leave_teams(community: Community, user_id: int) -> None:
    teams = list(db.session.scalars(sa.select(TeamMember.team_id).where(
        TeamMember.community_id == community.id, TeamMember.user_id == user_id)))
    db.session.execute(
        sa.delete(TeamMember).where(
            TeamMember.community_id == community.id, TeamMember.user_id == user_id
        )
    )
    db.session.execute(
        sa.update(Team)
        .where(Team.community_id == community.id, Team.leader_id == user_id)
        .values(leader_id=None)
    )
    db.session.expire_all()
    teams_changed(community.id, teams)


# --- volunteer profiles -------------------------------------------------------------------

# Causes that record volunteer service hours (志愿时长: activities) register a function
# (community_id, or None for every community, user_id) -> hours here; the ledger re-exports it
# (`ledger.SERVICE_HOURS`) for `/me/points`, the profile shows the total of every community.
SERVICE_HOURS: list[Callable[[int | None, int], float]] = []


def service_hours(community_id: int | None, user_id: int) -> float:
    """Total service hours of a volunteer, in one community or (None) in all of them."""
    return float(sum(source(community_id, user_id) for source in SERVICE_HOURS))


def describe_user(user: User) -> dict:
    """A user as `GET /me` shows them: with memberships and volunteer profile."""
    memberships = db.session.scalars(
        sa.select(Membership).where(Membership.user_id == user.id)
        .order_by(Membership.community_id)).all()
    return {"id": user.id, "phone": user.phone, "display_name": user.display_name,
            "is_admin": user.is_admin, "created_at": user.created_at,
            "memberships": memberships, "volunteer_profile": profile_of(user)}


def profile_of(user: User) -> VolunteerProfile | None:
    return db.session.get(VolunteerProfile, user.id)


def update_profile(user: User, changes: dict) -> VolunteerProfile:
    profile = profile_of(user)
    if profile is None:
        profile = VolunteerProfile(user_id=user.id, party_member=False, skills=[], tags=[])
        db.session.add(profile)
    for key, value in changes.items():
        setattr(profile, key, value)
    profile.updated_at = utcnow()
    db.session.flush()
    return profile


# --- teams --------------------------------------------------------------------------------

# Whatever sums over a team's current members (the leaderboards' team totals) registers a
# function (community_id, team_ids) here, called after members join or leave; the ledger
# registers its own, so this module imports no ledger.
TEAM_CHANGES: list[Callable[[int, list[int]], None]] = []


def teams_changed(community_id: int, team_ids: list[int]) -> None:
    """Members joined or left these teams (already flushed)."""
    for listener in TEAM_CHANGES:
        listener(community_id, team_ids)


def _require_team_eligible(community: Community, user_id: int, field: str) -> None:
    access.require_member(community.id, user_id, field, Role.VOLUNTEER, Role.ORGANISER)


def create_team(community: Community, name: str, description: str = "",
                leader_id: int | None = None) -> Team:
    if leader_id is not None:
        _require_team_eligible(community, leader_id, "leader_id")
    _ensure_team_name_free(community, name)
    team = Team(community_id=community.id, name=name, description=description,
                leader_id=leader_id)
    db.session.add(team)
    db.session.flush()
    if leader_id is not None:
        team.members.append(TeamMember(user_id=leader_id, community_id=community.id))
        db.session.flush()
        teams_changed(community.id, [team.id])
    return team


def _ensure_team_name_free(community: Community, name: str, except_id: int | None = None) -> None:
    query = sa.select(Team.id).where(Team.community_id == community.id, Team.name == name)
    if except_id is not None:
        query = query.where(Team.id != except_id)
    if db.session.scalar(query) is not None:
        raise Conflict("team_name_taken")


def teams_query(community: Community) -> sa.Select:
    return sa.select(Team).where(Team.community_id == community.id).order_by(Team.id)


def update_team(team: Team, changes: dict) -> Team:
    community = db.session.get(Community, team.community_id)
    if "name" in changes:
        _ensure_team_name_free(community, changes["name"], except_id=team.id)
    if changes.get("leader_id") is not None:
        _require_team_eligible(community, changes["leader_id"], "leader_id")
        if all(m.user_id != changes["leader_id"] for m in team.members):
            team.members.append(TeamMember(user_id=changes["leader_id"],
                                           community_id=team.community_id))
    for key, value in changes.items():
        setattr(team, key, value)
    db.session.flush()
    db.session.expire(team, ["leader"])  # leader_id may have changed; reload the relationship
    teams_changed(team.community_id, [team.id])  # (a new leader joins it)
    return team


def delete_team(team: Team) -> None:
    community_id, team_id = team.community_id, team.id
    db.session.delete(team)
    db.session.flush()
    teams_changed(community_id, [team_id])


def add_team_member(team: Team, user_id: int) -> Team:
    community = db.session.get(Community, team.community_id)
    _require_team_eligible(community, user_id, "user_id")
    if any(m.user_id == user_id for m in team.members):
        raise Conflict("already_in_team")
    team.members.append(TeamMember(user_id=user_id, community_id=team.community_id))
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise Conflict("already_in_team") from None
    teams_changed(team.community_id, [team.id])
    return team


def remove_team_member(team: Team, user_id: int) -> None:
    member = next((m for m in team.members if m.user_id == user_id), None)
    if member is None:
        raise NotFound()
    team.members.remove(member)
    if team.leader_id == user_id:
        team.leader_id = None
    db.session.flush()
    teams_changed(team.community_id, [team.id])
