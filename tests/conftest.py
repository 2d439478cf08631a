"""Test fixtures: a fresh isolated database per test, on SQLite or on PostgreSQL.

The schema is built once per session by running the real migrations (`flask db upgrade`);
each test then gets a copy (SQLite: a copied file) or an emptied database (PostgreSQL:
DELETE with triggers off and sequences restarted), so every test starts from zero and tests that start real
gunicorn workers see the same committed data the test wrote.

Set TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run the
whole suite on PostgreSQL. XINYUAN_REQUIRE_POSTGRES=1 turns "skipped: no PostgreSQL" into a
failure, which is how CI proves the PostgreSQL tests ran.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
REQUIRE_PG = os.environ.get("XINYUAN_REQUIRE_POSTGRES") == "1"
PASSWORD = "correct horse 马"
TEST_SECRET = "test-secret-" + "x" * 40
# Report photos written by tests go here, never into the checkout's instance/uploads.
UPLOAD_DIR = os.environ.get("XINYUAN_TEST_UPLOAD_DIR") or tempfile.mkdtemp(prefix="xinyuan-uploads-")
os.environ["XINYUAN_TEST_UPLOAD_DIR"] = UPLOAD_DIR  # the same folder for gunicorn children

if REQUIRE_PG and not PG_URL:
    raise RuntimeError("XINYUAN_REQUIRE_POSTGRES=1 needs TEST_DATABASE_URL")


def base_config(url: str) -> dict:
    return {
        "TESTING": True,
        "ENV_NAME": "testing",
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": TEST_SECRET,
        "JWT_SECRET_KEY": TEST_SECRET,
        "LOGIN_RATE_LIMIT": "10000 per minute",
        "REGISTER_RATE_LIMIT": "10000 per minute",
        "RATELIMIT_STORAGE_URI": "memory://",
        "UPLOAD_DIR": UPLOAD_DIR,
    }


def _upgrade(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(base_config(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_kind() -> str:
    return "postgresql" if PG_URL else "sqlite"


@pytest.fixture(scope="session")
def _template(tmp_path_factory):
    """Build the schema once, by migrations, and hand out what a test needs to get a copy."""
    if PG_URL:
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
        _upgrade(PG_URL)
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            tables = [r[0] for r in conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"))]
        engine.dispose()
        return {"kind": "postgresql", "url": PG_URL, "tables": tables}
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    _upgrade(f"sqlite:///{path}")
    return {"kind": "sqlite", "path": path}


@pytest.fixture(scope="session")
def _shared_app(_template, tmp_path_factory):
    """One app for the whole session (building one costs ~0.3 s); each test empties its
    database instead. Tests that need other settings build their own with `make_app`."""
    if _template["kind"] == "postgresql":
        app = create_app(base_config(PG_URL))
        yield app, None
    else:
        path = tmp_path_factory.mktemp("db") / "xinyuan.sqlite3"
        app = create_app(base_config(f"sqlite:///{path}"))
        yield app, path
    with app.app_context():
        db.engine.dispose()


def _empty_postgres(tables: list[str]) -> None:
    """Delete every row and restart the id sequences.

    DELETE with triggers off (session_replication_role = replica: no foreign-key checks and no
    append-only triggers) takes ~10 ms here where TRUNCATE … CASCADE takes ~100× longer.
    """
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text("; ".join(f'DELETE FROM "{t}"' for t in tables)))
        conn.execute(sa.text(
            "SELECT setval(c.oid::regclass, 1, false) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = 'public'"))
    engine.dispose()


def _reset(app, template, path) -> str:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if template["kind"] == "postgresql":
        _empty_postgres(template["tables"])
        return PG_URL
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template["path"], path)
    return f"sqlite:///{path}"


@pytest.fixture
def database_url(_template, _shared_app) -> str:
    """The URL of a database holding the full schema and no rows, private to this test."""
    app, path = _shared_app
    return _reset(app, _template, path)


@pytest.fixture
def scratch_database_url(tmp_path, database_kind):
    """An empty database of the kind under test, private to this test.

    On PostgreSQL: a schema of its own in the test database, first on the search path (cheaper
    than CREATE DATABASE, and the migrations name no schema).
    """
    if database_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
        return
    base = sa.engine.make_url(PG_URL)
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _ledger_verifies_after_the_test(request):
    """`flask ledger verify` stays clean after every test that used a database (issue 9): a
    test that corrupts the ledger on purpose says so with @pytest.mark.corrupts_ledger."""
    if "database_url" not in request.fixturenames or request.node.get_closest_marker(
            "corrupts_ledger"):
        yield
        return
    shared, _path = request.getfixturevalue("_shared_app")
    request.getfixturevalue("database_url")
    yield
    from app.ledger.models import Transfer
    from app.ledger.verify import verify

    with shared.app_context():
        try:
            if db.session.scalar(sa.select(Transfer.id).limit(1)) is None:
                return
            problems = {r.code: r.violations for r in verify() if r.violations}
        finally:
            db.session.remove()
    assert not problems, f"flask ledger verify after the test: {problems}"


@pytest.fixture
def uploads(app, tmp_path):
    """Report photos of this test in a folder of its own (the folder, as a Path)."""
    before = app.config["UPLOAD_DIR"]
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    yield tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = before


@pytest.fixture
def make_app(database_url):
    """Build more app instances on the same database (e.g. two 'servers' sharing it)."""
    apps = []

    def build(**overrides):
        app = create_app({**base_config(database_url), **overrides})
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(_shared_app, database_url):
    shared, _path = _shared_app
    yield shared
    with shared.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def password_hash() -> str:
    from app.auth.passwords import hash_password

    return hash_password(PASSWORD)


class Factory:
    """Makes rows directly (fast) and tokens without a login round-trip."""

    def __init__(self, app, password_hash: str):
        self.app = app
        self.password_hash = password_hash
        self._phones = iter(range(13700000000, 13799999999))

    def user(self, name: str = "测试用户", *, phone: str | None = None, admin: bool = False):
        from app.auth.models import User

        with self.app.app_context():
            user = User(phone=phone or str(next(self._phones)), display_name=name,
                        password_hash=self.password_hash, is_admin=admin)
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    def community(self, code: str = "guanyuan", name: str = "管园村", organiser=None):
        from app.communities.models import Community, Membership

        with self.app.app_context():
            community = Community(name=name, code=code, street="幸福街道", district="镜湖区")
            db.session.add(community)
            db.session.flush()
            if organiser is not None:
                db.session.add(Membership(community_id=community.id, user_id=organiser.id,
                                          role="organiser"))
            db.session.commit()
            db.session.refresh(community)
            db.session.expunge(community)
            return community

    def member(self, community, user, role: str):
        from app.communities.models import Membership

        with self.app.app_context():
            db.session.add(Membership(community_id=community.id, user_id=user.id, role=role))
            db.session.commit()
        return user

    def tokens(self, user) -> dict:
        from app.auth.models import User
        from app.auth.service import issue_tokens

        with self.app.test_request_context():
            tokens = issue_tokens(db.session.get(User, user.id))
            db.session.commit()
            return tokens

    def headers(self, user, **extra) -> dict:
        return {"Authorization": f"Bearer {self.tokens(user)['access_token']}", **extra}


@pytest.fixture
def factory(app, password_hash) -> Factory:
    return Factory(app, password_hash)


@pytest.fixture
def world(factory):
    """Two communities with an organiser, a volunteer and a resident each, and an admin."""
    w = type("World", (), {})()
    w.admin = factory.user("平台管理员", admin=True)
    w.organiser = factory.user("李书记")
    w.community = factory.community("guanyuan", "管园村", organiser=w.organiser)
    w.volunteer = factory.member(w.community, factory.user("王建国"), "volunteer")
    w.resident = factory.member(w.community, factory.user("王女士"), "resident")
    w.other_organiser = factory.user("外社区书记")
    w.other = factory.community("furong", "芙蓉社区", organiser=w.other_organiser)
    w.other_volunteer = factory.member(w.other, factory.user("外社区志愿者"), "volunteer")
    w.outsider = factory.user("路人")
    return w


@pytest.fixture
def org(factory, world) -> dict:
    """Authorization headers of the world's organiser."""
    return factory.headers(world.organiser)


@pytest.fixture
def vol(factory, world) -> dict:
    """Authorization headers of the world's volunteer."""
    return factory.headers(world.volunteer)


# --- real worker processes ----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, url: str, process: subprocess.Popen, log: Path):
        self.url, self.process, self.log = url, process, log

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_gunicorn(database_url: str, folder: Path, workers: int = 4, **env) -> LiveServer:
    """gunicorn with real worker processes on `database_url`, its log in `folder`; waits for
    /readyz (the test's extra environment wins over the defaults)."""
    import requests

    port = _free_port()
    log = folder / f"gunicorn-{port}.log"
    environment = {
        **os.environ,
        "XINYUAN_ENV": "testing",
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "JWT_SECRET_KEY": TEST_SECRET,
        "RATELIMIT_STORAGE_URI": "memory://",
        "UPLOAD_DIR": UPLOAD_DIR,
        # QR codes, posters and links name the server the test really talks to.
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **{k: str(v) for k, v in env.items()},
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--timeout", "120", "--graceful-timeout", "5", "wsgi:app"],
        cwd=ROOT, env=environment, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"gunicorn did not become ready:\n{log.read_text()[-3000:]}")


@pytest.fixture
def live_server(database_url, tmp_path, app):
    """Start gunicorn with real worker processes on this test's database.

    Call it with the number of workers and extra environment; it waits for /readyz.
    """
    servers: list[LiveServer] = []

    def start(workers: int = 4, **env) -> LiveServer:
        server = start_gunicorn(database_url, tmp_path, workers, **env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def pg_url():
    """PostgreSQL for the tests that need it specifically; skipped (with the reason) without."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("XINYUAN_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
        pytest.skip("PostgreSQL not configured: set TEST_DATABASE_URL to run this test")
    return PG_URL


# --- the browser: Debian's chromium through Playwright (helpers in tests/browser.py) ---------

@pytest.fixture(scope="session")
def chromium():
    """One headless chromium for the session; skipped with the reason where it is missing."""
    from tests.browser import chromium_session

    yield from chromium_session()


@pytest.fixture
def phone_page(chromium):
    """Open phones: `page = phone_page(server.url, size=SMALL_PHONE, javascript=False)`.

    At teardown the test fails if any page asked another host for anything, or logged a CSP
    violation, a console error or an uncaught error (`phone_page.watch(page).check_console =
    False` allows the last two).
    """
    from tests.browser import PhonePages

    phones = PhonePages(chromium)
    yield phones
    problems = phones.close()
    if problems:
        pytest.fail("the browser saw:\n" + "\n".join(f"- {p}" for p in problems), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Under XINYUAN_REQUIRE_BROWSER=1 a browser test that skipped, for whatever reason, fails."""
    report = yield
    if (os.environ.get("XINYUAN_REQUIRE_BROWSER") == "1" and report.skipped
            and not hasattr(report, "wasxfail") and item.get_closest_marker("browser")):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"XINYUAN_REQUIRE_BROWSER=1 but this browser test was skipped: {reason}"
    return report


@pytest.fixture
def demo(app, live_server):
    """The demo community (flask seed demo) behind two real gunicorn workers: (server, seeded)."""
    from app.demo import seed_demo
    from tests.live_pages import PASSWORD

    with app.app_context():
        seeded = seed_demo()
        db.session.commit()
    server = live_server(workers=2, DEMO_PASSWORD=PASSWORD)
    return server, seeded
