"""Register, log in, refresh, log out."""

from flask import current_app
from flask.views import MethodView
from flask_jwt_extended import current_user, get_jwt
from flask_smorest import Blueprint

from app.auth import service
from app.auth.decorators import login_required
from app.auth.schemas import (
    LoginResultSchema,
    LoginSchema,
    RegisterSchema,
    TokenPairSchema,
    UserSchema,
)
from app.extensions import limiter

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and tokens")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _register_limit() -> str:
    return current_app.config["REGISTER_RATE_LIMIT"]


@blp.route("/register")
class Register(MethodView):
    decorators = [limiter.limit(_register_limit)]

    @blp.arguments(RegisterSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="The phone number is already registered")
    @blp.alt_response(429, description="Too many attempts from this address")
    def post(self, data):
        """Register with a mobile number, a password and a display name"""
        return service.register(**data)


@blp.route("/login")
class Login(MethodView):
    decorators = [limiter.limit(_login_limit)]

    @blp.arguments(LoginSchema)
    @blp.response(200, LoginResultSchema)
    @blp.alt_response(401, description="Wrong phone or password (never says which)")
    @blp.alt_response(429, description="Too many attempts from this address")
    def post(self, data):
        """Log in: returns an access token (15 min) and a refresh token (30 days)"""
        user, tokens = service.login(data["phone"], data["password"])
        return {**tokens, "user": user}


@blp.route("/refresh")
class Refresh(MethodView):
    @login_required(refresh=True)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, description="Refresh token invalid, expired, revoked or already used")
    def post(self):
        """Rotate a refresh token (send it as the Bearer token); each one works once"""
        return service.rotate_refresh_token(current_user, get_jwt())


@blp.route("/logout")
class Logout(MethodView):
    @login_required
    @blp.response(204)
    def post(self):
        """Log out: revoke this login's tokens for every worker and instance"""
        service.logout(get_jwt())
