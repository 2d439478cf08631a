"""The Flask extensions, created unbound; `create_app` binds them."""

import threading
import time
from collections import OrderedDict

from flask_babel import Babel
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config as jwt_config
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from app.db import Base
from app.schemas import ErrorSchema

db = SQLAlchemy(model_class=Base)
migrate = Migrate()


class VerifiedTokens(JWTManager):
    """flask-jwt-extended, with each token's signature verified once per worker.

    The library decodes a token three times a request (its claims unverified, its header,
    then verified), and PyJWT checks every character in Python: about a millisecond here,
    more than the database's share of a points read. What verification proves about a token
    (its signature, algorithm, type and claims) cannot change, so the verified claims are kept
    per (secret, token), a few thousand at most; what time changes — expiry and not-before —
    is checked again on every request (an expired or not-yet-valid token takes the library's
    own path, so its errors are the library's), and revocation is still asked of the database
    every request (app.auth.service.token_holder).
    """

    CAPACITY = 4096

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._verified: OrderedDict = OrderedDict()
        self._lock = threading.Lock()  # gthread workers share the cache between threads

    def _decode_jwt_from_config(self, encoded_token: str, csrf_value=None,
                                allow_expired: bool = False) -> dict:
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        key = (jwt_config.decode_key, encoded_token)
        with self._lock:
            claims = self._verified.get(key)
            if claims is not None:
                self._verified.move_to_end(key)
        now, leeway = time.time(), jwt_config.leeway
        if claims is None or not (claims.get("nbf", 0) - leeway <= now
                                  < claims.get("exp", float("inf")) + leeway):
            claims = super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
            with self._lock:
                self._verified[key] = claims
                while len(self._verified) > self.CAPACITY:
                    self._verified.popitem(last=False)
        return dict(claims)


jwt = VerifiedTokens()


class XinyuanApi(Api):
    ERROR_SCHEMA = ErrorSchema  # document our envelope (with `error`), not flask-smorest's


api = XinyuanApi()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()
