"""Schema building blocks shared by every domain: strict input, local time, paging."""

from __future__ import annotations

import re
import unicodedata

import marshmallow as ma
from marshmallow import fields, validate

from app.db import MAX_ID
from app.localtime import SHANGHAI

# ASCII digits only: without re.ASCII, \d would also take full-width and other scripts' digits.
# Ids are 32-bit columns: a larger one would overflow the driver instead of matching nothing.
ID_RANGE = validate.Range(min=1, max=MAX_ID)
PHONE_PATTERN = re.compile(r"^1[3-9]\d{9}$", re.ASCII)


class StrictSchema(ma.Schema):
    """Input schema that refuses unknown fields, so no client can mass-assign `role` or `balance`."""

    class Meta:
        unknown = ma.RAISE


class LocalDateTime(fields.DateTime):
    """An ISO 8601 timestamp shown in Asia/Shanghai with its +08:00 offset."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(SHANGHAI).isoformat()


def _no_control_chars(value: str) -> bool:
    return not any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} and ch not in "\u200d"
                   for ch in value)


class Text(fields.String):
    """A single-line human text: trimmed, length-checked after trimming, no control characters.

    Length counts Unicode code points, so 32 Chinese characters fit in 32.
    """

    def __init__(self, *, min_length: int = 1, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.min_length, self.max_length = min_length, max_length
        self.metadata.setdefault("minLength", min_length)
        self.metadata.setdefault("maxLength", max_length)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not _no_control_chars(text):
            raise ma.ValidationError("Contains control characters.")
        validate.Length(min=self.min_length, max=self.max_length)(text)
        return text


class Phone(fields.String):
    """An 11-digit mainland China mobile number."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).update(
            {"example": "13800138000", "pattern": PHONE_PATTERN.pattern,
             "description": "11-digit Chinese mobile number"}
        )
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        phone = super()._deserialize(value, attr, data, **kwargs).strip()
        if not PHONE_PATTERN.fullmatch(phone):
            raise ma.ValidationError("Not a valid mainland China mobile number (11 digits, 1[3-9]…).")
        return phone


class StrictInteger(fields.Integer):
    """An integer that refuses strings ("5") and floats (5.0), within JSON's safe range."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        number = super()._deserialize(value, attr, data, **kwargs)
        if abs(number) > 2**53:
            raise ma.ValidationError("Number too large.")
        return number


class ErrorSchema(ma.Schema):
    """The envelope as documented in the OpenAPI spec (every error response refers to it)."""

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code",
                                                      "example": 409})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status phrase",
                                                       "example": "Conflict"})
    error = ma.fields.String(required=True, metadata={
        "description": "stable machine-readable slug to branch on", "example": "phone_registered"})
    message = ma.fields.String(required=True, metadata={
        "description": "human text: Chinese by default, English with Accept-Language: en",
        "example": "该手机号已注册，请直接登录。"})
    errors = ma.fields.Dict(metadata={
        "description": "per-field validation messages: {field: [message, ...]}"})


class PageQuery(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A `{items, page, per_page, total}` schema around `item_schema`."""
    return ma.Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema)),
            "page": fields.Integer(),
            "per_page": fields.Integer(),
            "total": fields.Integer(),
        },
        name=name,
    )


class StrictBoolean(fields.Boolean):
    """Only JSON true or false; "yes", 1 and "true" are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value
