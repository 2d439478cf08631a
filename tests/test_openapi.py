"""The OpenAPI document is valid and complete, and the migrations build exactly the models."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from openapi_spec_validator import validate

from app.extensions import db

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Operations anyone may call without a token.
PUBLIC = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/reset"),  # with an organiser's one-time code instead of a token
    ("get", "/api/v1/skills"),
    ("get", "/api/v1/wish-categories"),  # reference data, like the skills
}
REQUIRED_PATHS = {
    "/api/v1/auth/register": {"post"},
    "/api/v1/auth/login": {"post"},
    "/api/v1/auth/refresh": {"post"},
    "/api/v1/auth/logout": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/me/volunteer-profile": {"patch"},
    "/api/v1/communities": {"get", "post"},
    "/api/v1/communities/{cid}": {"get"},
    "/api/v1/communities/{cid}/members": {"get", "post"},
    "/api/v1/communities/{cid}/members/{uid}": {"patch", "delete"},
    "/api/v1/communities/{cid}/teams": {"get", "post"},
    "/api/v1/teams/{tid}": {"get", "patch", "delete"},
    "/api/v1/teams/{tid}/members": {"post"},
    "/api/v1/teams/{tid}/members/{uid}": {"delete"},
}


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def test_spec_is_valid_openapi(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Xinyuan 心愿 API"


def test_spec_documents_the_contract_paths(spec):
    missing = {
        f"{method.upper()} {path}"
        for path, methods in REQUIRED_PATHS.items()
        for method in methods
        if method not in spec["paths"].get(path, {})
    }
    assert not missing, sorted(missing)


def test_every_operation_is_under_api_v1_with_a_summary(spec):
    ops = list(operations(spec))
    assert len(ops) >= sum(len(m) for m in REQUIRED_PATHS.values())
    bad = [f"{m.upper()} {p}" for m, p, op in ops
           if not p.startswith("/api/v1/") or not (op.get("summary") or "").strip()]
    assert not bad, bad


def test_protected_operations_declare_bearer_auth(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    missing = [f"{m.upper()} {p}" for m, p, op in operations(spec)
               if (m, p) not in PUBLIC and {"bearerAuth": []} not in op.get("security", [])]
    assert not missing, missing
    # ... and the public ones do not claim to need a token.
    for method, path in PUBLIC:
        assert not spec["paths"].get(path, {}).get(method, {}).get("security"), (method, path)


def test_public_operations_really_are_public_and_the_others_really_are_not(spec, client):
    """The `security` declarations match what the server does with no token."""
    for method, path, _op in operations(spec):
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        response = client.open(concrete, method=method.upper(), json={} if method != "get" else None)
        if (method, path) in PUBLIC:
            assert response.status_code != 401, (method, path)
        else:
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.get_json()["error"] == "unauthorized"


def _view_for(app, rule, method: str):
    view = app.view_functions[rule.endpoint]
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return getattr(view_class, method.lower(), None)
    return view


def _takes_json(view) -> bool:
    while view is not None:
        params = getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
        if any(p.get("in") == "json" for p in params):
            return True
        view = getattr(view, "__wrapped__", None)
    return False


def test_operations_with_a_json_body_document_it(app, spec):
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            view = _view_for(app, rule, method)
            if not _takes_json(view):
                continue
            checked += 1
            operation = spec["paths"].get(path, {}).get(method.lower())
            assert operation is not None, f"{method} {path} reads JSON but is not documented"
            body = operation.get("requestBody")
            assert body, f"{method} {path} reads JSON but documents no requestBody"
            schema = body["content"]["application/json"]["schema"]
            assert "$ref" in schema or schema.get("properties"), (method, path, schema)
    assert checked >= 9  # register, login, profile, communities, members x2, teams x2, team members
    # Conversely, every documented body is JSON with a schema.
    for method, path, operation in operations(spec):
        if "requestBody" in operation:
            assert operation["requestBody"]["content"]["application/json"]["schema"], (method, path)


def test_every_operation_has_a_success_response(spec):
    bad = [f"{m.upper()} {p}" for m, p, op in operations(spec)
           if not any(str(code).startswith("2") for code in op.get("responses", {}))]
    assert not bad, bad


def test_documented_error_schema_matches_real_error_bodies(spec, client, world, factory):
    """Every error body validates against the spec's error schema (so clients can trust it)."""
    from openapi_schema_validator import OAS30Validator

    schema = spec["components"]["schemas"]["Error"]
    assert "error" in schema["properties"]
    validator = OAS30Validator(schema)
    headers = factory.headers(world.volunteer)
    responses = [
        client.get("/api/v1/nope"),
        client.delete("/api/v1/auth/login"),
        client.post("/api/v1/auth/register", data=b"{", content_type="application/json"),
        client.post("/api/v1/auth/register", json={"phone": "1", "x": 1}),
        client.get("/api/v1/me"),
        client.post("/api/v1/communities", json={"name": "x", "code": "xx"}, headers=headers),
        client.get(f"/api/v1/communities/{world.other.id}", headers=headers),
    ]
    for response in responses:
        assert response.status_code >= 400
        errors = sorted(validator.iter_errors(response.get_json()), key=str)
        assert not errors, (response.status_code, response.get_json(), [e.message for e in errors])


def test_docs_page_is_served(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert "text/html" in response.content_type
    assert "Xinyuan 心愿 API" in response.get_data(as_text=True)


# --- migrations ----------------------------------------------------------------------------

def _schema_differences(connection) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from app.db import UNCOMPARED_INDEXES

    context = MigrationContext.configure(connection, opts={
        "compare_type": True,
        "include_object": lambda _o, name, type_, _r, _c: not (
            type_ == "index" and name in UNCOMPARED_INDEXES)})
    return compare_metadata(context, db.metadata)


def test_indexes_with_desc_columns_are_as_the_models_say(app):
    """What Alembic cannot compare: the leaderboard's ranking index, points descending."""
    with app.app_context(), db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            definition = connection.scalar(sa.text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_leaderboard_totals_rank'"))
        else:
            definition = connection.scalar(sa.text(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_leaderboard_totals_rank'"))
    assert definition is not None
    columns = definition[definition.index("(") + 1:definition.rindex(")")]
    assert [c.strip().replace('"', "").lower() for c in columns.split(",")] == [
        "community_id", "period", "period_start", "source", "by", "points desc",
        "last_entry_id", "subject_id"]


def test_migrations_match_the_models(app):
    """Everything the models declare is what the migrations built (no missing migration)."""
    with app.app_context(), db.engine.connect() as connection:
        differences = _schema_differences(connection)
    assert differences == [], "the models and the migrations differ; write a migration:\n" + \
        "\n".join(map(str, differences))


def _assert_private(app) -> None:
    """Never downgrade a database other tests use: on PostgreSQL we must be in our schema."""
    with app.app_context(), db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            schema = connection.scalar(sa.text("SELECT current_schema()"))
            assert schema.startswith("scratch_"), schema
        else:
            assert connection.scalar(sa.text(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'")) == 0


def _user_objects(connection) -> dict:
    """Tables, and on PostgreSQL also sequences, types and functions, left in the schema."""
    inspector = sa.inspect(connection)
    found = {"tables": sorted(set(inspector.get_table_names()) - {"alembic_version"})}
    if connection.dialect.name == "postgresql":
        found["sequences"] = sorted(inspector.get_sequence_names())
        found["enums"] = sorted(e["name"] for e in inspector.get_enums())
        found["functions"] = sorted(connection.scalars(sa.text(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema()")))
    else:
        found["triggers"] = sorted(connection.scalars(sa.text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")))
        found["indexes"] = sorted(connection.scalars(sa.text(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")))
    return found


def test_downgrade_to_base_and_upgrade_again(make_app, scratch_database_url):
    from flask_migrate import downgrade, upgrade

    app = make_app(SQLALCHEMY_DATABASE_URI=scratch_database_url)
    _assert_private(app)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            built = _user_objects(connection)
            assert "users" in built["tables"]
            assert _schema_differences(connection) == []

        downgrade(revision="base")
        with db.engine.connect() as connection:
            left = _user_objects(connection)
        assert all(not names for names in left.values()), f"downgrade left behind: {left}"

        upgrade()
        with db.engine.connect() as connection:
            assert _user_objects(connection) == built
            assert _schema_differences(connection) == []
            version = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
        db.session.remove()
        db.engine.dispose()
    assert version


def test_flask_db_cli_upgrade_and_downgrade(make_app, scratch_database_url):
    """The same through the `flask db` command line, as an operator runs it."""
    app = make_app(SQLALCHEMY_DATABASE_URI=scratch_database_url)
    _assert_private(app)
    runner = app.test_cli_runner()
    for args in (["db", "upgrade"], ["db", "downgrade", "base"], ["db", "upgrade"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output, result.exception)
    result = runner.invoke(args=["db", "current"])
    assert result.exit_code == 0, (result.output, result.exception)
    with app.app_context():
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(
            app.extensions["migrate"].migrate.get_config()).get_current_head()
        with db.engine.connect() as connection:
            current = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
        db.engine.dispose()
    assert current == head


# --- property-based: generated requests for every operation --------------------------------

def _problem(case, response) -> str | None:
    """What is wrong with this response, if anything (a 5xx, or an error not in the envelope)."""
    import json

    status = response.status_code
    where = (f"{case.method} {case.formatted_path} query={case.query!r} "
             f"body={str(case.body)[:200]} -> {status}")
    if status >= 500 and status != 503:
        return f"{where}: server error"
    if status < 400:
        return None
    content_type = ";".join(response.headers.get("content-type", response.headers.get(
        "Content-Type", [""])))
    if not content_type.startswith("application/json"):
        return f"{where}: error with Content-Type {content_type!r}"
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"{where}: error body is not JSON {response.content[:300]!r}"
    if not isinstance(body, dict) or not {"code", "status", "error", "message"} <= set(body) \
            or body["code"] != status or not set(body) <= {"code", "status", "error", "message",
                                                         "errors"}:
        return f"{where}: not the error envelope {body!r}"
    if any(marker in response.content for marker in (b"Traceback", b"<html", b'File "')):
        return f"{where}: leaks internals {body!r}"
    return None


def test_generated_requests_never_500_and_errors_are_envelopes(app, world, factory):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    from app.communities.models import Team

    with app.app_context():
        team = Team(community_id=world.community.id, name="红色足印", description="")
        db.session.add(team)
        db.session.commit()
        team_id = team.id
    real_ids = {"cid": world.community.id, "tid": team_id, "uid": world.volunteer.id}

    auth = factory.headers(world.organiser)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    problems: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        params = {p.name for p in operation.path_parameters}
        for mode, fixed in ((GenerationMode.POSITIVE, {k: v for k, v in real_ids.items()
                                                       if k in params}),
                            (GenerationMode.NEGATIVE, {})):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)

            @settings(max_examples=10, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case):
                nonlocal calls
                calls += 1
                response = case.call(headers=auth)
                if case.path == "/api/v1/auth/logout" and response.status_code == 204:
                    auth.update(factory.headers(world.organiser))  # that one is revoked now
                problem = _problem(case, response)
                if problem and problem not in problems:
                    problems.append(problem)

            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, no body): positive mode covers it.
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert calls > 100
    assert not problems, "\n".join(problems[:30])
