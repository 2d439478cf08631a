"""One error envelope for every failure.

Every error body is `{"code", "status", "error", "message", "errors"?}`: `error` is a stable slug
clients may branch on, `message` is human text in the request's language. Domain code raises
`APIError` subclasses; Flask/werkzeug/webargs/flask-limiter errors are translated here; anything
unexpected becomes a 500 whose body carries no trace (the trace goes to the log).
"""

from __future__ import annotations

import contextlib
import re
import time
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from app.i18n import current_language, pick

# slug -> message in each language. Messages tell the person what to do next where they can.
MESSAGES: dict[str, dict[str, str]] = {
    "bad_request": {"zh": "请求格式有误。", "en": "The request is malformed."},
    "invalid_json": {
        "zh": "请求体不是有效的 JSON，请检查格式后重试。",
        "en": "The request body is not valid JSON; check its syntax and try again.",
    },
    "unauthorized": {
        "zh": "请先登录（缺少或无效的访问令牌）。",
        "en": "Please log in: the access token is missing or invalid.",
    },
    "token_expired": {
        "zh": "登录已过期，请刷新令牌或重新登录。",
        "en": "Your session has expired; refresh the token or log in again.",
    },
    "token_revoked": {
        "zh": "该令牌已失效，请重新登录。",
        "en": "This token has been revoked; please log in again.",
    },
    "token_reused": {
        "zh": "刷新令牌已被使用过，为保护账号安全，该登录已全部注销，请重新登录。",
        "en": "This refresh token was already used; for safety the whole login was revoked. "
        "Please log in again.",
    },
    "wrong_token_type": {
        "zh": "令牌类型不正确：此处需要{expected}令牌。",
        "en": "Wrong token type: this endpoint needs a {expected} token.",
    },
    "invalid_credentials": {
        "zh": "手机号或密码不正确。",
        "en": "The phone number or password is incorrect.",
    },
    "forbidden": {"zh": "您没有权限执行此操作。", "en": "You are not allowed to do this."},
    "role_required": {
        "zh": "此操作需要本社区的{roles}身份。",
        "en": "This needs the role {roles} in this community.",
    },
    "admin_required": {
        "zh": "此操作仅限平台管理员。",
        "en": "Only a platform administrator can do this.",
    },
    "not_found": {
        "zh": "找不到该资源，请检查地址是否正确。",
        "en": "Not found; check the address.",
    },
    "method_not_allowed": {
        "zh": "此地址不支持 {method} 请求。",
        "en": "This address does not accept {method} requests.",
    },
    "conflict": {"zh": "操作与当前状态冲突。", "en": "The request conflicts with the current state."},
    "payload_too_large": {
        "zh": "请求体过大（上限 1 MiB），请精简内容后重试。",
        "en": "The request body is too large (limit 1 MiB); shorten it and try again.",
    },
    "unsupported_media_type": {
        "zh": "请以 application/json 格式提交。",
        "en": "Send the body as application/json.",
    },
    "validation_error": {
        "zh": "提交的内容有误，请按 errors 中各字段的提示修改后重试。",
        "en": "Some fields are invalid; fix each one as described in errors and try again.",
    },
    "rate_limited": {
        "zh": "操作过于频繁，请 {retry_after} 秒后再试。",
        "en": "Too many attempts; try again in {retry_after} seconds.",
    },
    "internal_error": {
        "zh": "服务器出错了，请稍后再试；如持续出现请联系社区工作人员。",
        "en": "Something went wrong on our side; try again later, and tell the community "
        "staff if it keeps happening.",
    },
    "service_unavailable": {
        "zh": "服务暂时不可用，请稍后再试。",
        "en": "The service is temporarily unavailable; try again later.",
    },
}

HTTP_SLUGS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def register_messages(messages: dict[str, dict[str, str]]) -> None:
    """Let a domain add its own slugs; a slug may be defined once only."""
    for slug, texts in messages.items():
        if slug in MESSAGES and MESSAGES[slug] != texts:
            raise ValueError(f"error slug {slug!r} is defined twice with different texts")
        MESSAGES[slug] = texts


def message_for(slug: str, **params) -> str:
    texts = MESSAGES.get(slug)
    if texts is None:
        return slug
    return pick(texts, **params)


class APIError(Exception):
    """A failure the client can act on: HTTP status, stable slug, translated message."""

    status_code = 400
    slug = "bad_request"

    def __init__(self, slug: str | None = None, status: int | None = None, *,
                 errors: dict | None = None, headers: dict | None = None, **params):
        self.slug = slug or self.slug
        self.status_code = status or self.status_code
        self.errors = errors
        self.headers = headers or {}
        self.params = params
        super().__init__(self.slug)


class NotFound(APIError):
    status_code, slug = 404, "not_found"


class Forbidden(APIError):
    status_code, slug = 403, "forbidden"


class Conflict(APIError):
    status_code, slug = 409, "conflict"


class Unauthorized(APIError):
    status_code, slug = 401, "unauthorized"


class ValidationFailed(APIError):
    """A 422 raised by a service for a rule a schema cannot express (e.g. a member's role)."""

    status_code, slug = 422, "validation_error"

    def __init__(self, field: str, message: dict[str, str] | str, **kwargs):
        text = pick(message) if isinstance(message, dict) else message
        super().__init__(errors={field: [text]}, **kwargs)


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


def envelope(status: int, slug: str, message: str, errors: dict | None = None):
    body = {
        "code": status,
        "status": HTTPStatus(status).phrase,
        "error": slug,
        "message": message,
    }
    if errors:
        body["errors"] = errors
    return jsonify(body), status


# marshmallow's messages, in Chinese. Matched by pattern so numbers in them survive.
_FIELD_MESSAGES_ZH: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^Missing data for required field\.$"), "必填项，请填写。"),
    (re.compile(r"^Unknown field\.$"), "不允许提交此字段。"),
    (re.compile(r"^Field may not be null\.$"), "不能为空值。"),
    (re.compile(r"^Not a valid integer\.$"), "必须是整数。"),
    (re.compile(r"^Not a valid string\.$"), "必须是文本。"),
    (re.compile(r"^Not a valid boolean\.$"), "必须是 true 或 false。"),
    (re.compile(r"^Not a valid list\.$"), "必须是列表。"),
    (re.compile(r"^Not a valid number\.$"), "必须是数字。"),
    (re.compile(r"^Not a valid datetime\.$"), "必须是 ISO 8601 格式的时间。"),
    (re.compile(r"^Invalid input type\.$"), "格式不正确。"),
    (re.compile(r"^Invalid input\.$"), "格式不正确。"),
    (re.compile(r"^Invalid value\.$"), "取值不正确。"),
    (re.compile(r"^Not a valid mapping type\.$"), "必须是 JSON 对象。"),
    (re.compile(r"^Invalid type\.$"), "类型不正确。"),
    (re.compile(r"^Number too large\.$"), "数值过大。"),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), r"长度不能少于 \1 个字符。"),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), r"长度不能超过 \1 个字符。"),
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"), r"长度必须在 \1 到 \2 个字符之间。"),
    (re.compile(r"^Length must be (\d+)\.$"), r"长度必须为 \1。"),
    (re.compile(r"^Must be greater than or equal to (-?\d+) and less than or equal to (-?\d+)\.$"),
     r"必须在 \1 到 \2 之间。"),
    (re.compile(r"^Must be greater than or equal to (-?\d+)\.$"), r"不能小于 \1。"),
    (re.compile(r"^Must be less than or equal to (-?\d+)\.$"), r"不能大于 \1。"),
    (re.compile(r"^Must be one of: (.*)\.$"), r"必须是以下之一：\1。"),
    (re.compile(r"^String does not match expected pattern\.$"), "格式不正确。"),
    # Our own schemas' messages (app/schemas.py, app/communities/schemas.py).
    (re.compile(r"^Not a valid mainland China mobile number.*$"),
     "不是有效的中国大陆手机号（11 位数字，以 13–19 开头）。"),
    (re.compile(r"^Contains control characters\.$"), "不能包含控制字符。"),
    (re.compile(r"^after pages the newest-first order; with sort=match use page\.$"),
     "after 只能用于按最新排序的翻页；sort=match 时请用 page 翻页。"),
    (re.compile(r"^Contains a NUL character or an invalid Unicode surrogate\.$"),
     "包含无法保存的字符（NUL 或无效的 Unicode 代理字符），请删除后重试。"),
    (re.compile(r"^2–32 lowercase letters, digits or '-'\.$"),
     "须为 2–32 个小写字母、数字或“-”。"),
    (re.compile(r"^Give exactly one of phone or user_id\.$"), "phone 和 user_id 须且只能填写一个。"),
]


def _translate_field_message(text: str) -> str:
    for pattern, replacement in _FIELD_MESSAGES_ZH:
        if pattern.match(text):
            return pattern.sub(replacement, text)
    return text


def _localise_field_errors(errors):
    """Translate marshmallow's English field messages when the request wants Chinese."""
    if current_language() == "en":
        return errors
    if isinstance(errors, dict):
        return {key: _localise_field_errors(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_localise_field_errors(value) for value in errors]
    if isinstance(errors, str):
        return _translate_field_message(errors)
    return errors


def _flatten_locations(messages: dict) -> dict:
    """webargs nests errors by location ({"json": {...}, "query": {...}}); clients want fields."""
    flat: dict = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def handle_api_error(error: APIError):
    response, status = envelope(
        error.status_code,
        error.slug,
        message_for(error.slug, **error.params),
        _localise_field_errors(error.errors) if error.errors else None,
    )
    for name, value in error.headers.items():
        response.headers[name] = value
    return response, status


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    slug = HTTP_SLUGS.get(status, "bad_request" if status < 500 else "internal_error")
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    params: dict = {}
    errors = None
    if status == 400 and messages and "json" in messages:
        slug = "invalid_json"  # webargs reports a body that is not JSON this way
    elif status == 422 and isinstance(messages, dict):
        errors = _localise_field_errors(_flatten_locations(messages))
    if status == 405:
        from flask import request

        params["method"] = request.method
    headers = dict(data.get("headers") or {})
    if status == 429:
        retry_after = _retry_after(error)
        params["retry_after"] = retry_after
        headers.setdefault("Retry-After", str(retry_after))
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    response, status = envelope(status, slug, message_for(slug, **params), errors)
    for name, value in headers.items():
        response.headers[name] = value
    return response, status


def _retry_after(error) -> int:
    # The seconds left in the breached window (what flask-limiter puts in Retry-After), not
    # the window's full length: a client refused late in the window need not wait it all.
    from app.extensions import limiter

    with contextlib.suppress(Exception):  # storage unreachable: fall back to the window length
        current = limiter.current_limit
        if current is not None and current.breached:
            return max(1, int(current.reset_at - time.time()))
    limit = getattr(error, "limit", None)
    seconds = 60
    if limit is not None:
        try:
            seconds = int(limit.limit.get_expiry())
        except Exception:
            seconds = 60
    return max(1, seconds)


def handle_unexpected(error: Exception):
    current_app.logger.exception("unhandled exception", exc_info=error)
    return envelope(500, "internal_error", message_for("internal_error"))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(APIError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)


__all__ = [
    "APIError",
    "Conflict",
    "Forbidden",
    "NotFound",
    "Unauthorized",
    "ValidationFailed",
    "current_language",
    "message_for",
    "register_error_handlers",
    "register_messages",
]
