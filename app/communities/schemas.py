"""Schemas for communities, members, volunteer profiles and teams."""

import re

import marshmallow as ma
from marshmallow import fields, validate

from app.communities.models import Role
from app.communities.service import SKILLS, service_hours
from app.schemas import (
    ID_RANGE,
    LocalDateTime,
    PageQuery,
    Phone,
    StrictBoolean,
    StrictInteger,
    StrictSchema,
    Text,
)

ROLES = [r.value for r in Role]
CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")


class FullMatch(validate.Regexp):
    """A Regexp that must match the whole value: `$` alone would also accept a trailing newline."""

    def __call__(self, value):
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value




class CommunityCreateSchema(StrictSchema):
    name = Text(required=True, max_length=64, metadata={"example": "管园村"})
    code = fields.String(
        required=True,
        validate=FullMatch(CODE_PATTERN, error="2–32 lowercase letters, digits or '-'."),
        metadata={"example": "guanyuan", "description": "unique short code used in public URLs"},
    )
    street = Text(load_default="", min_length=0, max_length=64, metadata={"example": "幸福街道"})
    district = Text(load_default="", min_length=0, max_length=64, metadata={"example": "镜湖区"})
    organiser_phone = Phone(
        load_default=None,
        metadata={"description": "optional: a registered user made the first organiser"},
    )


class CommunitySchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    code = fields.String(dump_only=True)
    street = fields.String(dump_only=True)
    district = fields.String(dump_only=True)
    created_at = LocalDateTime(dump_only=True)


class MemberCreateSchema(StrictSchema):
    phone = Phone(metadata={"description": "a registered user's phone (or give user_id)"})
    user_id = StrictInteger(validate=ID_RANGE)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))

    @ma.validates_schema
    def one_identity(self, data, **_kwargs):
        if ("phone" in data) == ("user_id" in data):
            raise ma.ValidationError("Give exactly one of phone or user_id.", "phone")


class MemberUpdateSchema(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class MemberQuerySchema(PageQuery):
    role = fields.String(validate=validate.OneOf(ROLES))


class MemberSchema(StrictSchema):
    user_id = fields.Integer(dump_only=True)
    community_id = fields.Integer(dump_only=True)
    role = fields.String(dump_only=True)
    display_name = fields.String(dump_only=True, attribute="user.display_name")
    phone = fields.String(dump_only=True, attribute="user.phone")
    created_at = LocalDateTime(dump_only=True)


PUBLIC_NAMES = ("full", "masked")
PUBLIC_NAME_DESCRIPTION = (
    "how the public notice page /p/<community code> names me: full (the display name, the "
    "default) or masked (王** — the first character, then one * per remaining character)")


class VolunteerProfileUpdateSchema(StrictSchema):
    party_member = StrictBoolean()
    status = fields.String(
        allow_none=True, validate=validate.OneOf(["in_service", "retired"]),
        metadata={"description": "in_service 在职 or retired 退休"},
    )
    skills = fields.List(
        fields.String(validate=validate.OneOf(list(SKILLS))),
        validate=validate.Length(max=len(SKILLS)),
        metadata={"description": "codes from GET /api/v1/skills"},
    )
    tags = fields.List(Text(max_length=16), validate=validate.Length(max=10),
                       metadata={"description": "free tags, at most 10 of 1–16 characters"})
    public_name = fields.String(validate=validate.OneOf(PUBLIC_NAMES), metadata={
        "description": PUBLIC_NAME_DESCRIPTION})

    @ma.post_load
    def dedupe(self, data, **_kwargs):
        for key in ("skills", "tags"):
            if key in data:
                data[key] = list(dict.fromkeys(data[key]))
        return data


class VolunteerProfileSchema(StrictSchema):
    party_member = fields.Boolean(dump_only=True)
    status = fields.String(dump_only=True, allow_none=True)
    skills = fields.List(fields.String(), dump_only=True)
    skill_labels = fields.Method("_labels", dump_only=True)
    tags = fields.List(fields.String(), dump_only=True)
    public_name = fields.String(dump_only=True, metadata={
        "enum": list(PUBLIC_NAMES), "description": PUBLIC_NAME_DESCRIPTION})
    service_hours = fields.Method("_service_hours", dump_only=True, metadata={
        "type": "number", "description": "志愿时长: hours of completed activities, every community"})
    updated_at = LocalDateTime(dump_only=True)

    def _labels(self, profile):
        return [SKILLS[s] for s in profile.skills if s in SKILLS]

    def _service_hours(self, profile) -> float:
        return service_hours(None, profile.user_id)


class SkillSchema(StrictSchema):
    code = fields.String(dump_only=True)
    label = fields.String(dump_only=True)


class MembershipBriefSchema(StrictSchema):
    community_id = fields.Integer(dump_only=True)
    role = fields.String(dump_only=True)


class MeSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    phone = fields.String(dump_only=True)
    display_name = fields.String(dump_only=True)
    is_admin = fields.Boolean(dump_only=True)
    created_at = LocalDateTime(dump_only=True)
    memberships = fields.List(fields.Nested(MembershipBriefSchema), dump_only=True)
    volunteer_profile = fields.Nested(VolunteerProfileSchema, allow_none=True, dump_only=True)


class TeamCreateSchema(StrictSchema):
    name = Text(required=True, max_length=64, metadata={"example": "“红色足印”老党员志愿服务队"})
    description = Text(load_default="", min_length=0, max_length=500)
    leader_id = StrictInteger(load_default=None, allow_none=True, validate=ID_RANGE)


class TeamUpdateSchema(StrictSchema):
    name = Text(max_length=64)
    description = Text(min_length=0, max_length=500)
    leader_id = StrictInteger(allow_none=True, validate=ID_RANGE)


class TeamMemberAddSchema(StrictSchema):
    user_id = StrictInteger(required=True, validate=ID_RANGE)


class TeamMemberSchema(StrictSchema):
    user_id = fields.Integer(dump_only=True)
    display_name = fields.String(dump_only=True, attribute="user.display_name")
    joined_at = LocalDateTime(dump_only=True)


class TeamSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    community_id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    leader_id = fields.Integer(dump_only=True, allow_none=True)
    leader_name = fields.Function(
        lambda team: team.leader.display_name if team.leader else None, dump_only=True,
        allow_none=True, metadata={"type": "string"},
    )
    members = fields.List(fields.Nested(TeamMemberSchema), dump_only=True)
    created_at = LocalDateTime(dump_only=True)
