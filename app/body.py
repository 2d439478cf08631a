"""Checks every API request body passes before any view reads it."""

from __future__ import annotations

import json

from flask import current_app, request

from app.errors import APIError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Endpoints that take a file upload (report photos): their multipart bodies may be up to
# MAX_UPLOAD_BYTES (plus room for the form's other fields); every other request keeps
# MAX_CONTENT_LENGTH (1 MiB). gunicorn sets no body limit of its own.
UPLOAD_ENDPOINTS: set[str] = set()
UPLOAD_OVERHEAD = 64 * 1024


def takes_uploads(*endpoints: str) -> None:
    """Let these endpoints (blueprint.view names) accept bodies up to MAX_UPLOAD_BYTES."""
    UPLOAD_ENDPOINTS.update(endpoints)


def _raise_upload_limit() -> None:
    """Before anything reads the body: a larger limit for upload endpoints, and a body
    announced as too large is refused from its Content-Length, without reading it."""
    if (request.endpoint not in UPLOAD_ENDPOINTS or request.method not in BODY_METHODS
            or request.mimetype != "multipart/form-data"):
        return
    limit = current_app.config["MAX_UPLOAD_BYTES"] + UPLOAD_OVERHEAD
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise APIError("photo_too_large", 413,
                       limit=current_app.config["MAX_UPLOAD_BYTES"] // (1024 * 1024))


def _bad_text(value) -> str | None:
    """The path of the first string holding NUL or a lone surrogate (no database stores them)."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
            return ""
        return None
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found = _bad_text(key) if isinstance(key, str) else None
        if found is not None:
            return str(key)
        found = _bad_text(item)
        if found is not None:
            return f"{key}.{found}".rstrip(".")
    return None


def check_json_body() -> None:
    """Refuse API bodies that are not JSON, cannot be decoded, or carry unstorable text.

    Another content type would otherwise read as "every field missing"; decoding here also
    turns input the JSON decoder cannot take (nesting too deep: RecursionError) into a 400.
    """
    _raise_upload_limit()
    if request.method not in BODY_METHODS or not request.path.startswith("/api/"):
        return
    if not request.content_length and "chunked" not in request.headers.get(
            "Transfer-Encoding", "").lower():
        return
    if request.mimetype == "multipart/form-data":
        if request.endpoint in UPLOAD_ENDPOINTS:
            return  # uploads, for the endpoints that take files (their view reads the form)
        raise APIError("unsupported_media_type", 415)
    if not request.is_json:
        raise APIError("unsupported_media_type", 415)
    try:
        document = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):
        raise APIError("invalid_json", 400) from None
    path = _bad_text(document)
    if path is not None:
        # Named by its top-level field, as marshmallow names every other field error.
        field = path.split(".", 1)[0] or "_body"
        raise APIError("validation_error", 422, errors={field: [
            "Contains a NUL character or an invalid Unicode surrogate."]})
