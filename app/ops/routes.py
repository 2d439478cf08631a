"""Health checks, the favicon, and the offline API docs page and its assets."""

from pathlib import Path

import sqlalchemy as sa
import swagger_ui_bundle
from flask import Blueprint, current_app, jsonify, render_template, send_from_directory, url_for

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


@bp.get("/api/v1/docs")
def docs():
    """Swagger UI on our own page: its start-up is a static script, so the strict CSP holds."""
    return render_template(
        "docs.html",
        title=current_app.config["API_TITLE"],
        spec_url=url_for("api-docs.openapi_json"),
        assets=current_app.config["OPENAPI_SWAGGER_UI_URL"],
    )


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico by themselves; answer the SVG mark instead of a 404."""
    return send_from_directory(current_app.static_folder, "favicon.svg",
                               mimetype="image/svg+xml", max_age=86400)
