"""One error envelope for every failure.

Every error body is `{"code", "status", "error", "message", "errors"?}`: `error` is a stable slug
clients may branch on, `message` is human text in the request's language. Domain code raises
`APIError` subclasses; Flask/werkzeug/webargs/flask-limiter errors are translated here; anything
unexpected becomes a 500 whose body carries no trace (the trace goes to the log).
"""

from __future__ import annotations

import contextlib
import time
from http import HTTPStatus

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from app.extensions import limiter
from app.i18n import F_, N_, current_language, translate, translate_field_message

# slug -> message, its Chinese text being its gettext msgid (the English is in
# app/translations/en/LC_MESSAGES/messages.po). Messages tell the person what to do next.
MESSAGES: dict[str, str] = {
    "bad_request": N_("请求格式有误。"),
    "invalid_json": N_("请求体不是有效的 JSON，请检查格式后重试。"),
    "unauthorized": N_("请先登录（缺少或无效的访问令牌）。"),
    "token_expired": N_("登录已过期，请刷新令牌或重新登录。"),
    "token_revoked": N_("该令牌已失效，请重新登录。"),
    "token_reused": N_("刷新令牌已被使用过，为保护账号安全，该登录已全部注销，请重新登录。"),
    "wrong_token_type": N_("令牌类型不正确：此处需要{expected}令牌。"),
    "invalid_credentials": N_("手机号或密码不正确。"),
    "forbidden": N_("您没有权限执行此操作。"),
    "role_required": N_("此操作需要本社区的{roles}身份。"),
    "admin_required": N_("此操作仅限平台管理员。"),
    "not_found": N_("找不到该资源，请检查地址是否正确。"),
    "method_not_allowed": N_("此地址不支持 {method} 请求。"),
    "conflict": N_("操作与当前状态冲突。"),
    "payload_too_large": N_("请求体过大（上限 1 MiB），请精简内容后重试。"),
    "unsupported_media_type": N_("请以 application/json 格式提交。"),
    "validation_error": N_("提交的内容有误，请按 errors 中各字段的提示修改后重试。"),
    "rate_limited": N_("操作过于频繁，请 {retry_after} 秒后再试。"),
    "internal_error": N_("服务器出错了，请稍后再试；如持续出现请联系社区工作人员。"),
    "service_unavailable": N_("服务暂时不可用，请稍后再试。"),
}

HTTP_SLUGS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",  # (the messages: app/ops/server.py, which answers gunicorn's refusals)
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "service_unavailable",
}


def register_messages(messages: dict[str, str]) -> None:
    """Let a domain add its own slugs (slug -> `N_("中文")`); a slug may be defined once only."""
    for slug, text in messages.items():
        if slug in MESSAGES and MESSAGES[slug] != text:
            raise ValueError(f"error slug {slug!r} is defined twice with different texts")
        MESSAGES[slug] = text


def message_for(slug: str, **params) -> str:
    """The slug's message in the request's language, its `{name}` placeholders filled."""
    text = MESSAGES.get(slug)
    if text is None:
        return slug
    return translate(text, **params)


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

    def __init__(self, field: str, message: str, *, status: int | None = None,
                 headers: dict | None = None, **params):
        """`message` is a Chinese msgid marked `N_`; `params` fill its `{name}` placeholders."""
        super().__init__(status=status, headers=headers, errors={field: [translate(message, **params)]},
                         **params)


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


# The English messages of the schema layer that we show in Chinese: msgids of the "fields" domain
# (app/i18n.py). A schema may mark its own with F_ where it defines them.
FIELD_MESSAGES: tuple[str, ...] = (
    F_("Missing data for required field."),
    F_("Unknown field."),
    F_("Field may not be null."),
    F_("Not a valid integer."),
    F_("Not a valid string."),
    F_("Not a valid boolean."),
    F_("Not a valid list."),
    F_("Not a valid number."),
    F_("Not a valid datetime."),
    F_("Invalid input type."),
    F_("Invalid input."),
    F_("Invalid value."),
    F_("Not a valid mapping type."),
    F_("Invalid type."),
    F_("Number too large."),
    F_("Shorter than minimum length {min}."),
    F_("Longer than maximum length {max}."),
    F_("Length must be between {min} and {max}."),
    F_("Length must be {equal}."),
    F_("Must be greater than or equal to {min} and less than or equal to {max}."),
    F_("Must be greater than or equal to {min}."),
    F_("Must be less than or equal to {max}."),
    F_("Must be one of: {choices}."),
    F_("String does not match expected pattern."),
    # Our own schemas' messages (app/schemas.py, app/body.py, app/*/schemas.py), marked here.
    F_("Not a valid mainland China mobile number (11 digits, 1[3-9]…)."),
    F_("Contains control characters."),
    F_("after pages the newest-first order; with sort=match use page."),
    F_("Contains a NUL character or an invalid Unicode surrogate."),
    F_("2–32 lowercase letters, digits or '-'."),
    F_("Give exactly one of phone or user_id."),
)


def _localise_field_errors(errors):
    """Translate the schema layer's English field messages into the request's language."""
    if current_language() == "en":
        return errors  # already English
    if isinstance(errors, dict):
        return {key: _localise_field_errors(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_localise_field_errors(value) for value in errors]
    if isinstance(errors, str):
        return translate_field_message(errors)
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
