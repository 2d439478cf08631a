"""The Flask extensions, created unbound; `create_app` binds them."""

from flask_babel import Babel
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from app.db import Base
from app.schemas import ErrorSchema

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()


class XinyuanApi(Api):
    ERROR_SCHEMA = ErrorSchema  # document our envelope (with `error`), not flask-smorest's


api = XinyuanApi()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()
