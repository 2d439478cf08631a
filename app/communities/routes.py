"""Communities, members, volunteer profiles and teams over HTTP."""

from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from app.auth import service as auth_service
from app.auth.decorators import admin_required, login_required
from app.auth.schemas import PasswordResetIssuedSchema
from app.communities import access, service
from app.communities.models import Role, Team
from app.communities.schemas import (
    CommunityCreateSchema,
    CommunitySchema,
    MemberCreateSchema,
    MemberQuerySchema,
    MemberSchema,
    MemberUpdateSchema,
    MeSchema,
    SkillSchema,
    TeamCreateSchema,
    TeamMemberAddSchema,
    TeamSchema,
    TeamUpdateSchema,
    VolunteerProfileSchema,
    VolunteerProfileUpdateSchema,
)
from app.db import paginate
from app.extensions import db
from app.schemas import PageQuery, page_schema

blp = Blueprint("communities", __name__, url_prefix="/api/v1",
                description="Communities, members, volunteer profiles and teams")

CommunityPage = page_schema(CommunitySchema, "CommunityPage")
MemberPage = page_schema(MemberSchema, "MemberPage")
TeamPage = page_schema(TeamSchema, "TeamPage")


@blp.route("/me")
class Me(MethodView):
    @login_required
    @blp.response(200, MeSchema)
    def get(self):
        """The logged-in user with memberships and volunteer profile"""
        return service.describe_user(current_user)


@blp.route("/me/volunteer-profile")
class MyVolunteerProfile(MethodView):
    @login_required
    @blp.arguments(VolunteerProfileUpdateSchema)
    @blp.response(200, VolunteerProfileSchema)
    def patch(self, changes):
        """Update my volunteer profile: party member, in service or retired, skills, tags, public name"""
        return service.update_profile(current_user, changes)


@blp.route("/skills")
class Skills(MethodView):
    @blp.response(200, SkillSchema(many=True))
    def get(self):
        """The fixed list of volunteer skills (codes and Chinese labels)"""
        return [{"code": code, "label": label} for code, label in service.SKILLS.items()]


@blp.route("/communities")
class Communities(MethodView):
    @admin_required
    @blp.arguments(CommunityCreateSchema)
    @blp.response(201, CommunitySchema)
    def post(self, data):
        """Create a community, optionally with its first organiser (platform admin)"""
        return service.create_community(**data)

    @login_required
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, CommunityPage)
    def get(self, query):
        """List the communities I belong to (all of them, for an admin)"""
        statement = service.communities_query(access.visible_community_ids())
        return paginate(db.session, statement, query["page"], query["per_page"])


@blp.route("/communities/<int:cid>")
class CommunityDetail(MethodView):
    @login_required
    @blp.response(200, CommunitySchema)
    def get(self, cid):
        """One community I belong to"""
        return access.community(cid)


@blp.route("/communities/<int:cid>/members")
class Members(MethodView):
    @login_required
    @blp.arguments(MemberCreateSchema)
    @blp.response(201, MemberSchema)
    def post(self, data, cid):
        """Add a registered user to the community with a role (organiser, admin)"""
        community = access.community(cid, Role.ORGANISER)
        return service.add_member(community, Role(data["role"]), phone=data.get("phone"),
                                  user_id=data.get("user_id"))

    @login_required
    @blp.arguments(MemberQuerySchema, location="query")
    @blp.response(200, MemberPage)
    def get(self, query, cid):
        """List members, optionally by role (organiser)"""
        community = access.community(cid, Role.ORGANISER)
        role = Role(query["role"]) if query.get("role") else None
        return paginate(db.session, service.members_query(community, role), query["page"],
                        query["per_page"])


@blp.route("/communities/<int:cid>/members/<int:uid>")
class MemberDetail(MethodView):
    @login_required
    @blp.arguments(MemberUpdateSchema)
    @blp.response(200, MemberSchema)
    def patch(self, data, cid, uid):
        """Change a member's role (organiser)"""
        community = access.community(cid, Role.ORGANISER)
        return service.change_role(community, uid, Role(data["role"]))

    @login_required
    @blp.response(204)
    def delete(self, cid, uid):
        """Remove a member from the community (organiser)"""
        community = access.community(cid, Role.ORGANISER)
        service.remove_member(community, uid)


@blp.route("/communities/<int:cid>/members/<int:uid>/password-reset")
class MemberPasswordReset(MethodView):
    @login_required
    @blp.response(201, PasswordResetIssuedSchema)
    @blp.alt_response(403, description="Not an organiser here, or reset_needs_admin: the member "
                      "is community staff or a platform admin, whose password an admin resets")
    def post(self, cid, uid):
        """Issue a member a one-time password reset code, valid 30 min (organiser); audited"""
        access.community(cid, Role.ORGANISER)
        code, reset = auth_service.issue_password_reset(cid, uid, current_user)
        return {"code": code, "expires_at": reset.expires_at, "user_id": reset.user_id}, \
            {"Cache-Control": "no-store"}


@blp.route("/communities/<int:cid>/teams")
class Teams(MethodView):
    @login_required
    @blp.arguments(TeamCreateSchema)
    @blp.response(201, TeamSchema)
    def post(self, data, cid):
        """Create a volunteer team (organiser)"""
        community = access.community(cid, Role.ORGANISER)
        return service.create_team(community, **data)

    @login_required
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, TeamPage)
    def get(self, query, cid):
        """List the community's volunteer teams (any member)"""
        community = access.community(cid)
        return paginate(db.session, service.teams_query(community), query["page"],
                        query["per_page"])


@blp.route("/teams/<int:tid>")
class TeamDetail(MethodView):
    @login_required
    @blp.response(200, TeamSchema)
    def get(self, tid):
        """One team with its members (any member of its community)"""
        return access.load(Team, tid)

    @login_required
    @blp.arguments(TeamUpdateSchema)
    @blp.response(200, TeamSchema)
    def patch(self, changes, tid):
        """Rename, describe or change the leader of a team (organiser)"""
        return service.update_team(access.load(Team, tid, Role.ORGANISER), changes)

    @login_required
    @blp.response(204)
    def delete(self, tid):
        """Disband a team (organiser)"""
        service.delete_team(access.load(Team, tid, Role.ORGANISER))


@blp.route("/teams/<int:tid>/members")
class TeamMembers(MethodView):
    @login_required
    @blp.arguments(TeamMemberAddSchema)
    @blp.response(201, TeamSchema)
    def post(self, data, tid):
        """Add a volunteer of the community to the team (organiser)"""
        return service.add_team_member(access.load(Team, tid, Role.ORGANISER), data["user_id"])


@blp.route("/teams/<int:tid>/members/<int:uid>")
class TeamMemberDetail(MethodView):
    @login_required
    @blp.response(204)
    def delete(self, tid, uid):
        """Remove a member from the team (organiser)"""
        service.remove_team_member(access.load(Team, tid, Role.ORGANISER), uid)
