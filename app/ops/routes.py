"""Health checks and the offline API docs assets."""

from pathlib import Path

import sqlalchemy as sa
import swagger_ui_bundle
from flask import Blueprint, jsonify, send_from_directory

from app.errors import APIError
from app.extensions import db

bp = Blueprint("ops", __name__)

SWAGGER_UI_DIR = Path(swagger_ui_bundle.swagger_ui_path)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """The database answers."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        db.session.rollback()
        raise APIError("service_unavailable", 503) from error
    return jsonify(status="ok", database="ok")


@bp.get("/api/v1/docs/assets/<path:filename>")
def docs_asset(filename: str):
    """Swagger UI's scripts and styles, from the swagger-ui-bundle package, not a CDN."""
    return send_from_directory(SWAGGER_UI_DIR, filename, max_age=86400)
