"""What clients send to and get from the auth endpoints."""

from marshmallow import fields, validate

from app.schemas import LocalDateTime, Phone, StrictSchema, Text


class Password(fields.String):
    """A password: any text, but valid Unicode (a lone surrogate cannot be encoded to hash)."""

    def _deserialize(self, value, attr, data, **kwargs):
        password = super()._deserialize(value, attr, data, **kwargs)
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("invalid") from None
        return password


class RegisterSchema(StrictSchema):
    phone = Phone(required=True)
    password = Password(
        required=True, load_only=True, validate=validate.Length(min=8, max=128),
        metadata={"format": "password"},
    )
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
