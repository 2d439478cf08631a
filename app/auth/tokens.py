"""Wiring flask-jwt-extended to our users, our revocation records and our error envelope."""

from flask import Flask

from app.auth import service
from app.errors import Unauthorized, handle_api_error
from app.extensions import jwt


def _refuse(slug: str, **params):
    return handle_api_error(Unauthorized(slug, **params))


def init_tokens(app: Flask) -> None:
    # Each request asks afresh whether its token's login stands (the answer is then kept
    # for the rest of the request: app.auth.service.token_holder).
    app.before_request(service.forget_token_holders)
    jwt.token_in_blocklist_loader(lambda _header, payload: service.is_token_revoked(payload))
    jwt.user_lookup_loader(lambda _header, payload: service.load_user(payload))
    jwt.expired_token_loader(lambda _header, _payload: _refuse("token_expired"))
    jwt.revoked_token_loader(lambda _header, _payload: _refuse("token_revoked"))
    jwt.invalid_token_loader(lambda _reason: _refuse("unauthorized"))
    jwt.unauthorized_loader(lambda _reason: _refuse("unauthorized"))
    jwt.user_lookup_error_loader(lambda _header, _payload: _refuse("token_revoked"))
    jwt.needs_fresh_token_loader(lambda _header, _payload: _refuse("unauthorized"))
