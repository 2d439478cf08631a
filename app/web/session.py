"""Who is looking at a page: the cookie-held login, its silent refresh, and CSRF for forms.

Pages keep the same JWTs the API hands out, but in cookies (flask-jwt-extended's cookie mode:
HttpOnly, SameSite=Lax, Secure over HTTPS). The API never reads those cookies — it stays on the
Authorization header — so a cookie can only ever act through a page form, and every page form
carries a double-submit CSRF token (`csrf_token` field == `xy_csrf` cookie), login and register
included (the token exists before there is a JWT cookie).

An access cookie lives 15 minutes; when it has expired (or the browser dropped it), the page
rotates the refresh cookie without asking, so a form posted after a long pause still succeeds
and keeps what was typed. The rotation commits on its own, before the view runs: a view that
then fails must not roll back the successor pair the browser is about to receive.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import current_app, g, request
from flask_jwt_extended import (
    decode_token,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from app.auth import service as auth
from app.auth.models import User
from app.communities.models import Community, Membership
from app.db import write_transaction
from app.errors import APIError
from app.extensions import db

CSRF_COOKIE = "xy_csrf"
CSRF_FIELD = "csrf_token"
COMMUNITY_COOKIE = "community"
YEAR = 365 * 86400


# --- the signed-in person -----------------------------------------------------------------

def person() -> User | None:
    """The user whose cookies came with this request (refreshing them if needed), or None."""
    if "person" not in g:
        g.person = _from_access_cookie() or _from_refresh_cookie()
    return g.person


def _from_access_cookie() -> User | None:
    if current_app.config["JWT_ACCESS_COOKIE_NAME"] not in request.cookies:
        return None
    try:
        verify_jwt_in_request(locations=["cookies"])
    except (JWTExtendedException, PyJWTError):
        return None
    return g._jwt_extended_jwt_user["loaded_user"]


def _from_refresh_cookie() -> User | None:
    token = request.cookies.get(current_app.config["JWT_REFRESH_COOKIE_NAME"])
    if not token:
        return None
    try:
        payload = decode_token(token)
    except (JWTExtendedException, PyJWTError):
        return None
    if payload.get("type") != "refresh" or auth.is_token_revoked(payload):
        return None
    user = auth.load_user(payload)
    if user is None:
        return None
    try:
        with write_transaction(db.session):
            tokens = auth.rotate_refresh_token(user, payload)
    except APIError:  # reused after its grace period: the login is revoked, sign in again
        g.forget_login = True
        return None
    user = db.session.get(User, user.id)
    _act_as(user, decode_token(tokens["access_token"], allow_expired=True))
    g.new_tokens = tokens
    return user


def _act_as(user: User, access_payload: dict) -> None:
    # What verify_jwt_in_request would have stored, so `current_user`, `get_jwt()` and the
    # access checks in app/communities/access.py work in page views exactly as in API views.
    g._jwt_extended_jwt_user = {"loaded_user": user}
    g._jwt_extended_jwt_header = {"alg": current_app.config["JWT_ALGORITHM"], "typ": "JWT"}
    g._jwt_extended_jwt = access_payload
    g._jwt_extended_jwt_location = "cookies"


def sign_in(user: User) -> None:
    """Start a login for `user` in this browser (cookies are set on the response)."""
    tokens = auth.issue_tokens(user)
    _act_as(user, decode_token(tokens["access_token"], allow_expired=True))
    g.person = user
    g.new_tokens = tokens


def sign_out() -> None:
    """End this browser's login everywhere (the family is revoked) and drop its cookies."""
    for name in ("JWT_ACCESS_COOKIE_NAME", "JWT_REFRESH_COOKIE_NAME"):
        token = request.cookies.get(current_app.config[name])
        if not token:
            continue
        try:
            payload = decode_token(token, allow_expired=True)
        except (JWTExtendedException, PyJWTError):
            continue
        auth.logout(payload)
    g.forget_login = True
    g.person = None


def write_cookies(response):
    """after_request for page blueprints: new or forgotten login, CSRF cookie."""
    if g.get("forget_login"):
        unset_jwt_cookies(response)
    if g.get("new_tokens"):
        # Each cookie lives as long as its token: the access cookie goes after 15 minutes.
        config = current_app.config
        set_access_cookies(response, g.new_tokens["access_token"],
                           max_age=int(config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()))
        set_refresh_cookies(response, g.new_tokens["refresh_token"],
                            max_age=int(config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds()))
    if g.get("new_csrf"):
        response.set_cookie(CSRF_COOKIE, g.new_csrf, max_age=YEAR, httponly=True,
                            secure=secure_cookies(), samesite="Lax")
    # Pages show personal data: never stored by a shared cache.
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def secure_cookies() -> bool:
    return current_app.config["PUBLIC_BASE_URL"].startswith("https://")


# --- CSRF: double submit --------------------------------------------------------------------

def csrf_token() -> str:
    """The token every page form carries (Jinja global)."""
    token = request.cookies.get(CSRF_COOKIE) or g.get("new_csrf")
    if not token or len(token) > 64:
        token = g.new_csrf = secrets.token_urlsafe(24)
    return token


def csrf_ok() -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


# --- where to go after logging in -----------------------------------------------------------

def safe_next(target: str | None, default: str = "/") -> str:
    """A local path only: `next` can never send the person to another site."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target


# --- the community the person is looking at -------------------------------------------------

def memberships(user: User) -> list[tuple[Community, str]]:
    rows = db.session.execute(
        db.select(Community, Membership.role).join(Membership, Membership.community_id == Community.id)
        .where(Membership.user_id == user.id).order_by(Community.id)).all()
    return [(community, role) for community, role in rows]


def current_membership(user: User) -> tuple[Community, str] | tuple[None, None]:
    """The community picked with the switcher (a cookie), else the person's first one."""
    if "membership" in g:
        return g.membership
    found = memberships(user)
    wanted = request.cookies.get(COMMUNITY_COOKIE, "")
    chosen = next((m for m in found if str(m[0].id) == wanted), found[0] if found else None)
    if chosen is None and user.is_admin:
        community = db.session.scalar(db.select(Community).order_by(Community.id).limit(1))
        chosen = (community, "organiser") if community else None
    g.membership = chosen or (None, None)
    return g.membership
