"""Decorators that require a logged-in user, and document that in the OpenAPI spec."""

from __future__ import annotations

from functools import wraps

from flask_jwt_extended import current_user, jwt_required
from flask_smorest import Blueprint

from app.errors import Forbidden

SECURITY = [{"bearerAuth": []}]

def login_required(func=None, *, refresh: bool = False):
    """Require a valid, unrevoked access token (or refresh token with refresh=True)."""

    def decorate(view):
        # Headers only: the pages' cookies must never authorise an API call (the API has no
        # CSRF check; a cross-site form could otherwise act with them).
        guarded = jwt_required(refresh=refresh, locations=["headers"])(view)
        documented = Blueprint.doc(security=SECURITY)(guarded)
        return documented

    return decorate(func) if func is not None else decorate


def admin_required(view):
    """Require a platform admin."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            raise Forbidden("admin_required")
        return view(*args, **kwargs)

    return login_required(wrapper)
