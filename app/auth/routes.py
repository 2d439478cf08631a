"""Register, log in, refresh, log out, reset a forgotten password."""

from flask import current_app
from flask.views import MethodView
from flask_jwt_extended import current_user, get_jwt
from flask_smorest import Blueprint

from app.auth import service
from app.auth.decorators import login_required
from app.auth.schemas import (
    LoginResultSchema,
    LoginSchema,
    PasswordResetSchema,
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


@blp.route("/reset")
class ResetPassword(MethodView):
    decorators = [limiter.limit(_login_limit)]

    @blp.arguments(PasswordResetSchema)
    @blp.response(204)
    @blp.alt_response(400, description="invalid_reset_code: unknown phone, or a wrong, used, "
                      "superseded, expired or locked code (never says which)")
    @blp.alt_response(429, description="Too many attempts from this address")
    def post(self, data):
        """Set a new password with the one-time code an organiser issued; logs out everywhere"""
        service.reset_password(data["phone"], data["code"], data["password"])
