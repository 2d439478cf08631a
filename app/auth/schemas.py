"""What clients send to and get from the auth endpoints."""

import re
import unicodedata

from marshmallow import fields, validate

from app.i18n import F_
from app.schemas import LocalDateTime, Phone, StrictSchema, Text

RESET_CODE_PATTERN = re.compile(r"[0-9]{8}", re.ASCII)


class Password(fields.String):
    """A password: any text, but valid Unicode (a lone surrogate cannot be encoded to hash)."""

    def _deserialize(self, value, attr, data, **kwargs):
        password = super()._deserialize(value, attr, data, **kwargs)
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("invalid") from None
        return password


class ResetCode(fields.String):
    """The 8-digit reset code as typed: full-width digits, spaces and dashes are forgiven."""

    default_error_messages = {"invalid": F_("Enter the 8-digit code the community staff gave you.")}

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).update(
            {"example": "40718263", "description": "the 8-digit code from the community staff"})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs)
        if len(code) <= 32:
            code = "".join(unicodedata.normalize("NFKC", code).split()).replace("-", "")
        if not RESET_CODE_PATTERN.fullmatch(code):
            raise self.make_error("invalid")
        return code


def new_password(**kwargs) -> Password:
    return Password(required=True, load_only=True, validate=validate.Length(min=8, max=128),
                    metadata={"format": "password"}, **kwargs)


class RegisterSchema(StrictSchema):
    phone = Phone(required=True)
    password = new_password()
    display_name = Text(required=True, max_length=32, metadata={"example": "王阿姨"})


class LoginSchema(StrictSchema):
    # The login form does not check the phone's shape: any wrong pair gets the same answer.
    phone = fields.String(required=True, validate=validate.Length(min=1, max=32))
    password = Password(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


class UserSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    phone = fields.String(dump_only=True)
    display_name = fields.String(dump_only=True)
    is_admin = fields.Boolean(dump_only=True)
    created_at = LocalDateTime(dump_only=True)


class TokenPairSchema(StrictSchema):
    access_token = fields.String(dump_only=True)
    refresh_token = fields.String(dump_only=True)
    token_type = fields.String(dump_only=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(dump_only=True, metadata={"description": "access token lifetime, s"})


class LoginResultSchema(TokenPairSchema):
    user = fields.Nested(UserSchema, dump_only=True)


class PasswordResetSchema(StrictSchema):
    phone = Phone(required=True)
    code = ResetCode(required=True)
    password = new_password()


class PasswordResetIssuedSchema(StrictSchema):
    code = fields.String(dump_only=True, metadata={
        "example": "40718263", "description": "tell it to the person; it is shown only this once"})
    expires_at = LocalDateTime(dump_only=True)
    user_id = fields.Integer(dump_only=True)
