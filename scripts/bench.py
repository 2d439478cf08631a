#!/usr/bin/env python
"""Load our app and the floor app with wrk, endpoint by endpoint, in one run; print the ratios.

    scripts/bench                              PostgreSQL (database bench_api, WIPED)
    scripts/bench --sqlite                     SQLite (/tmp/bench_api.sqlite3, WIPED)
    scripts/bench --only points,redeem --duration 3 --connections 32
    scripts/bench --profile redeem             py-spy flamegraph and top functions of ours

It wipes the bench database, builds the schema with the real migrations, and seeds one
community through the app's own services: an organiser, volunteers with points (organiser
adjustments, 20+ ledger entries each), residents, an auto-approving board, thousands of open
wishes, a well-stocked reward and one with little stock. It mints an access token for every
volunteer (requests cycle through them, so concurrent requests are different users), counts the
SQL statements of one request of each endpoint in-process, then starts our app (wsgi:app) and
the floor app (scripts/floor_app.py: only the essential work, raw SQL, the same database) under
gunicorn with the project's gunicorn.conf.py and the same workers, and drives each endpoint with
wrk at each connection count, ours then the floor's, alternating. The table shows req/s, p50,
p99 and non-2xx of both, ours ÷ floor, and the targets of issue 12 as PASS/FAIL: reads ≥ 0.7 of
the floor and read p99 ≤ 1.5 × the floor's, writes ≥ 0.5, no non-2xx but the expected 409s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
for path in (ROOT, SCRIPTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_api"
DEFAULT_SQLITE = "sqlite:////tmp/bench_api.sqlite3"
SECRET = "bench-api-secret-" + "c" * 40
PASSWORD = "bench-pass-2026"
LUA = SCRIPTS / "bench_lua" / "requests.lua"
READ_TARGET, WRITE_TARGET, P99_TARGET = 0.7, 0.5, 1.5
LEADERBOARD_TARGET = 0.6  # the leaderboard against the floor's points read


@dataclass(frozen=True)
class Endpoint:
    name: str
    label: str
    write: bool = False
    expected_409: frozenset = frozenset()  # error slugs a 409 may carry here
    api: bool = True  # counted in "statements per request" through the API


ENDPOINTS = [
    Endpoint("points", "GET /api/v1/me/points"),
    Endpoint("ledger", "GET /api/v1/me/ledger"),
    Endpoint("wishes", "GET /api/v1/wishes?per_page=20"),
    Endpoint("leaderboard", "GET /communities/{cid}/leaderboard?period=week"),
    Endpoint("board", "GET /b/<token> (page)", api=False),
    Endpoint("points_page", "GET /me/points (page, cookie)", api=False),
    # Claims run through open wishes; when a thread has claimed all of its share it starts
    # again and those wishes are taken (409 invalid_transition).
    Endpoint("claim", "POST /api/v1/wishes/{id}/claim", write=True,
             expected_409=frozenset({"invalid_transition", "already_claimed"})),
    # Every 20th redemption asks for the reward with little stock: 409 once it is gone.
    Endpoint("redeem", "POST /api/v1/rewards/{id}/redeem", write=True,
             expected_409=frozenset({"out_of_stock"})),
]
BY_NAME = {e.name: e for e in ENDPOINTS}


# --- the community ------------------------------------------------------------------------

@dataclass
class World:
    community_id: int
    board_token: str
    reward_id: int
    scarce_reward_id: int
    organiser_id: int
    volunteers: list[tuple[int, str]] = field(default_factory=list)  # (user id, access token)
    seconds: float = 0.0


def app_config(url: str) -> dict:
    """Production-like settings for the in-process seeding and statement counts."""
    from datetime import timedelta

    return {"ENV_NAME": "production", "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET,
            "JWT_SECRET_KEY": SECRET, "JWT_ACCESS_TOKEN_EXPIRES": timedelta(hours=4),
            "RATELIMIT_STORAGE_URI": "memory://", "RATELIMIT_ENABLED": False,
            "PUBLIC_BASE_URL": "http://127.0.0.1:5000"}


@contextmanager
def cheap_password_hashing():
    """argon2id with small parameters while seeding: hundreds of registrations in seconds,
    not a minute. Each stored hash carries its own parameters, so those logins still verify."""
    from argon2 import PasswordHasher

    from app.auth import passwords

    saved = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        yield
    finally:
        passwords._hasher = saved


WISH_TEXTS = [("帮忙打扫卫生", "家里老人行动不便，想请志愿者帮忙打扫一下屋子。", "life_help"),
              ("水龙头漏水", "厨房水龙头一直滴水，想请会修的志愿者帮忙看看。", "repair"),
              ("代买药品", "腿脚不方便，想请人帮忙去药店买常用药。", "errands"),
              ("陪老人聊聊天", "子女在外地，老人想有人陪着说说话。", "companionship"),
              ("教我用手机挂号", "想学会用手机在医院公众号上挂号。", "digital")]


def seed(app, volunteers: int, residents: int, wishes: int, history: int) -> World:
    """One community lived through the services (see the module doc)."""
    from app.auth import service as auth
    from app.communities import service as communities
    from app.communities.models import Role
    from app.db import write_transaction
    from app.extensions import db
    from app.ledger import service as ledger
    from app.store import service as store
    from app.wishes import service as wishes_service

    started = time.perf_counter()
    rng = random.Random(12)
    with app.test_request_context(), cheap_password_hashing():
        with write_transaction(db.session):
            organiser = auth.register("13800000000", PASSWORD, "基准社工")
            community = communities.create_community("基准社区", "bench", "幸福街道", "镜湖区")
            ledger.setup_community(community.id)
            communities.add_member(community, Role.ORGANISER, user_id=organiser.id)
            cid, organiser_id = community.id, organiser.id
            # Volunteers may hold many claims here: the claim run is about speed, not the cap.
            wishes_service.update_settings(cid, {"max_active_claims": 100_000})
            board = wishes_service.create_board(cid, "1号楼心愿墙", "1号楼大厅",
                                                auto_approve=True)
            token = board.token
            reward = store.create_reward(cid, {
                "name": "纸巾一包", "description": "爱心超市", "kind": "goods", "cost": 1,
                "stock": 10_000_000, "per_user_monthly_limit": None, "active": True})
            scarce = store.create_reward(cid, {
                "name": "大米 5kg", "description": "限量", "kind": "goods", "cost": 1,
                "stock": 5, "per_user_monthly_limit": None, "active": True})
            reward_id, scarce_id = reward.id, scarce.id
        volunteer_ids, resident_ids = [], []
        for batch in range(0, volunteers + residents, 50):
            with write_transaction(db.session):
                for n in range(batch, min(batch + 50, volunteers + residents)):
                    volunteer = n < volunteers
                    user = auth.register(f"139{n:08d}", PASSWORD,
                                         f"{'志愿者' if volunteer else '居民'}{n:03d}")
                    communities.add_member(community,
                                           Role.VOLUNTEER if volunteer else Role.RESIDENT,
                                           user_id=user.id)
                    (volunteer_ids if volunteer else resident_ids).append(user.id)
        print(f"  {volunteers} volunteers and {residents} residents registered "
              f"({time.perf_counter() - started:.1f} s)", flush=True)
        for batch in range(0, len(volunteer_ids), 20):
            with write_transaction(db.session):
                for user_id in volunteer_ids[batch:batch + 20]:
                    for _ in range(history):
                        ledger.adjust(cid, user_id, rng.randint(5, 40), "志愿服务积分",
                                      organiser_id)
        print(f"  {history} adjustments each ({time.perf_counter() - started:.1f} s)", flush=True)
        from app.auth.models import User
        from app.wishes.models import Board

        for batch in range(0, wishes, 200):
            with write_transaction(db.session):
                board_row = db.session.get(Board, board.id)
                for n in range(batch, min(batch + 200, wishes)):
                    title, description, category = WISH_TEXTS[n % len(WISH_TEXTS)]
                    author = db.session.get(User, resident_ids[n % len(resident_ids)])
                    wishes_service.post_wish(board_row, author, {
                        "title": title, "description": description, "category": category,
                        "contact_phone": f"137{n:08d}", "address": f"1号楼{n % 30 + 1}01室"})
        print(f"  {wishes} wishes posted ({time.perf_counter() - started:.1f} s)", flush=True)
        world = World(cid, token, reward_id, scarce_id, organiser_id)
        with write_transaction(db.session):
            # Logging in once proves the seeded password works; the rest get tokens directly.
            first = db.session.get(User, volunteer_ids[0])
            _, tokens = auth.login(first.phone, PASSWORD)
            world.volunteers.append((first.id, tokens["access_token"]))
            for user_id in volunteer_ids[1:]:
                tokens = auth.issue_tokens(db.session.get(User, user_id))
                world.volunteers.append((user_id, tokens["access_token"]))
        db.session.remove()
    analyse(app)
    world.seconds = time.perf_counter() - started
    return world


def analyse(app) -> None:
    """Fresh planner statistics, as autovacuum would have them after the load."""
    from app.extensions import db

    with app.app_context():
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        db.engine.dispose()


def open_wish_ids(app, community_id: int, reopen: bool = False) -> list[int]:
    """The community's open wishes, for the claim runs. With `reopen`, the wishes earlier runs
    claimed are put back first (claims move no points, so the ledger is untouched): each run
    gets as many wishes as the first, however fast the app it measures."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.wishes.models import Wish

    with app.app_context():
        if reopen:
            claimed = sa.select(Wish.id).where(Wish.community_id == community_id,
                                               Wish.status == "claimed")
            db.session.execute(sa.update(Wish).where(Wish.id.in_(claimed)).values(
                status="open", claimer_id=None, claimed_at=None, fulfil_due_at=None))
            db.session.commit()
        ids = db.session.scalars(sa.select(Wish.id).where(
            Wish.community_id == community_id, Wish.status == "open").order_by(Wish.id)).all()
        db.session.remove()
    return list(ids)


# --- a seed kept for the next run (--reuse-seed) ------------------------------------------

def seed_key(args) -> str:
    """What a kept seed must match: the migrations (the schema) and the seed's shape."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "migrations").rglob("*.py")):
        digest.update(path.read_bytes())
    digest.update(json.dumps([args.volunteers, args.residents, args.wishes,
                              args.history]).encode())
    return digest.hexdigest()[:16]


def _kept(url) -> tuple[str, Path]:
    """The kept copy (a database or a file) and its description, beside the bench database."""
    name = Path(url.database).name
    meta = Path(tempfile.gettempdir()) / f"bench-seed-{name}.json"
    if url.get_backend_name() == "postgresql":
        return f"{url.database}_seed", meta
    return f"{url.database}.seed", meta


def _admin(url):
    import sqlalchemy as sa

    return sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")


def _sqlite_copy(source: str, target: str) -> None:
    import sqlite3

    for suffix in ("", "-wal", "-shm", "-journal"):
        with suppress(FileNotFoundError):
            Path(target + suffix).unlink()
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def keep_seed(url, key: str, world: World) -> None:
    copy, meta = _kept(url)
    if url.get_backend_name() == "postgresql":
        engine = _admin(url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{copy}" TEMPLATE "{url.database}"')
        finally:
            engine.dispose()
    else:
        _sqlite_copy(url.database, copy)
    meta.write_text(json.dumps({"key": key, "copy": copy, "world": {
        **{k: v for k, v in world.__dict__.items() if k != "volunteers"},
        "volunteer_ids": [uid for uid, _ in world.volunteers]}}))
    print(f"seed kept as {copy} (--reuse-seed starts from it while the migrations and the "
          "seed's shape stay the same)", flush=True)


def restore_seed(url, key: str) -> tuple[World, list[int]] | None:
    copy, meta = _kept(url)
    try:
        kept = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if kept.get("key") != key:
        print("the kept seed is of other migrations or another shape: seeding afresh")
        return None
    if url.get_backend_name() == "postgresql":
        engine = _admin(url)
        try:
            with engine.connect() as conn:
                import sqlalchemy as sa

                if conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                               {"n": copy}) is None:
                    return None
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{url.database}" TEMPLATE "{copy}"')
        finally:
            engine.dispose()
    else:
        if not Path(copy).exists():
            return None
        _sqlite_copy(copy, url.database)
    data = dict(kept["world"])
    ids = data.pop("volunteer_ids")
    return World(**data), ids


def existing_world(app, code: str, volunteers: int) -> tuple[World, list[int]]:
    """A community already in the database (e.g. seed_scale's scale001, 10 000 volunteers and
    1 000 000 entries): its first board, any reward, and its first volunteers, unchanged."""
    import sqlalchemy as sa

    from app.communities.models import Community, Membership, Role
    from app.extensions import db
    from app.store.models import Reward
    from app.wishes.models import Board

    with app.app_context():
        community = db.session.scalar(sa.select(Community).where(Community.code == code))
        if community is None:
            raise SystemExit(f"no community with code {code!r} in this database")
        cid = community.id
        token = db.session.scalar(sa.select(Board.token).where(Board.community_id == cid)
                                  .order_by(Board.id).limit(1)) or ""
        reward = db.session.scalar(sa.select(Reward.id).where(Reward.community_id == cid)
                                   .order_by(Reward.id).limit(1)) or 0
        organiser = db.session.scalar(sa.select(Membership.user_id).where(
            Membership.community_id == cid, Membership.role == Role.ORGANISER.value).limit(1))
        ids = list(db.session.scalars(sa.select(Membership.user_id).where(
            Membership.community_id == cid, Membership.role == Role.VOLUNTEER.value)
            .order_by(Membership.user_id).limit(volunteers)))
        db.session.remove()
    return World(cid, token, reward, reward, organiser or 0), ids


def mint_tokens(app, user_ids: list[int]) -> list[tuple[int, str]]:
    """A fresh login (token family) and access token for each volunteer."""
    from app.auth import service as auth
    from app.auth.models import User
    from app.db import write_transaction
    from app.extensions import db

    minted = []
    with app.test_request_context():
        with write_transaction(db.session):
            for user_id in user_ids:
                tokens = auth.issue_tokens(db.session.get(User, user_id))
                minted.append((user_id, tokens["access_token"]))
        db.session.remove()
        db.engine.dispose()
    return minted


# --- requests -----------------------------------------------------------------------------

def request_lines(endpoint: Endpoint, world: World, wish_ids: list[int]) -> list[str]:
    """The requests wrk replays: METHOD, path, header name, header value, body (tab-separated)."""
    cid, tokens = world.community_id, [t for _, t in world.volunteers]

    def bearer(i: int) -> tuple[str, str]:
        return "Authorization", f"Bearer {tokens[i % len(tokens)]}"

    lines = []
    if endpoint.name == "claim":
        for i, wish_id in enumerate(wish_ids):
            lines.append(("POST", f"/api/v1/wishes/{wish_id}/claim", *bearer(i), "{}"))
    elif endpoint.name == "redeem":
        for i in range(len(tokens) * 4):
            rid = world.scarce_reward_id if i % 20 == 19 else world.reward_id
            lines.append(("POST", f"/api/v1/rewards/{rid}/redeem", *bearer(i),
                          '{"quantity": 1}'))
    elif endpoint.name == "board":
        lines.append(("GET", f"/b/{world.board_token}", "", "", ""))
    elif endpoint.name == "points_page":
        for token in tokens:
            lines.append(("GET", "/me/points", "Cookie", f"xy_access={token}", ""))
    else:
        path = {"points": f"/api/v1/me/points?community_id={cid}",
                "ledger": f"/api/v1/me/ledger?community_id={cid}&per_page=20",
                "wishes": f"/api/v1/wishes?community_id={cid}&per_page=20",
                "leaderboard": f"/api/v1/communities/{cid}/leaderboard?period=week"
                }[endpoint.name]
        lines = [("GET", path, *bearer(i), "") for i in range(len(tokens))]
    return ["\t".join(parts) for parts in lines]


def count_statements(app, world: World) -> dict[str, int]:
    """SQL statements of one request of each endpoint, in-process (test client, our app).

    Each request is sent twice (claims: to two wishes) and the second one counted, so that
    what a worker does once (caches filled on first use) does not count as per request."""
    from sqlalchemy import event

    from app.extensions import db

    wish_ids = open_wish_ids(app, world.community_id)
    counts: dict[str, int] = {}
    client = app.test_client()
    token = world.volunteers[-1][1]
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many):
        seen.append(statement)

    for endpoint in ENDPOINTS:
        for wish_id in wish_ids[-2:]:
            line = request_lines(endpoint, world, [wish_id])[0]
            method, path, name, _value, body = line.split("\t")
            headers = {name: f"Bearer {token}"} if name == "Authorization" else {}
            if name == "Cookie":
                # The test client keeps its own cookie jar (a Cookie header would be replaced).
                client.set_cookie("xy_access", token)
            seen.clear()
            event.listen(engine, "before_cursor_execute", count)
            try:
                response = client.open(path, method=method, headers=headers,
                                       data=body or None,
                                       content_type="application/json" if body else None)
            finally:
                event.remove(engine, "before_cursor_execute", count)
            if response.status_code >= 300:
                raise SystemExit(f"{endpoint.label}: our app answered {response.status_code} "
                                 f"in-process: {response.get_data(as_text=True)[:300]}")
            counts[endpoint.name] = len(seen)
        client.delete_cookie("xy_access")
    return counts


# --- servers ------------------------------------------------------------------------------

class Server:
    """gunicorn with the project's gunicorn.conf.py and the bench's workers, on a free port."""

    def __init__(self, name: str, target: str, url: str, workers: int, log: Path,
                 extra: list[str] | None = None, wrapper: list[str] | None = None):
        from bench_ledger import free_port

        self.name, self.port, self.log = name, free_port(), log
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "XINYUAN_ENV": "production", "DATABASE_URL": url,
               "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET, "JWT_ACCESS_SECONDS": "14400",
               "RATELIMIT_STORAGE_URI": "memory://", "PUBLIC_BASE_URL": self.base,
               "FLOOR_DATABASE_URL": url, "FLOOR_SECRET": SECRET}
        command = [*(wrapper or []), sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                   # Sync workers, as the issue measured: gunicorn.conf.py picks its sync
                   # worker class for one thread (it ships gthread, 2 threads, by default).
                   "--workers", str(workers), "--threads", "1",
                   "--bind", f"127.0.0.1:{self.port}", *(extra or []), target]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready()

    def wait_ready(self) -> None:
        from urllib.request import urlopen

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn exited early:\n{self.tail()}")
            with suppress(OSError), urlopen(f"{self.base}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name}: gunicorn did not become ready:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


# --- wrk ----------------------------------------------------------------------------------

def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk", flush=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False,
                       stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit("wrk is needed: sudo apt-get install -y wrk (Debian/Ubuntu package `wrk`)")


def parse_wrk(output: str) -> dict:
    """The BENCH_JSON line the lua script's done() prints, with req/s and milliseconds."""
    match = re.search(r"^BENCH_JSON (\{.*\})\s*$", output, re.MULTILINE)
    if match is None:
        raise ValueError(f"no BENCH_JSON line in wrk's output:\n{output[-2000:]}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    statuses = raw["statuses"]
    ok = sum(n for key, n in statuses.items() if key.startswith("2"))
    socket = {k: v for k, v in raw["errors"].items() if k != "status" and v}
    return {"requests": raw["requests"], "seconds": seconds,
            "rps": raw["requests"] / seconds if seconds else 0.0,
            "ok_rps": ok / seconds if seconds else 0.0,
            "p50_ms": raw["latency_us"]["p50"] / 1000, "p90_ms": raw["latency_us"]["p90"] / 1000,
            "p99_ms": raw["latency_us"]["p99"] / 1000,
            "mean_ms": raw["latency_us"]["mean"] / 1000,
            "max_ms": raw["latency_us"]["max"] / 1000,
            "statuses": statuses, "socket_errors": socket, "wrapped": raw["wrapped"],
            "non_2xx": {k: v for k, v in statuses.items() if not k.startswith("2")}}


def drain(base: str, limit: float = 30.0) -> None:
    """Wait until the server has answered what wrk left queued when it stopped (gunicorn goes
    on serving the accepted connections): their work must not run into the next measurement
    (nor their claims take wishes the next run was given)."""
    from urllib.request import urlopen

    deadline, quick = time.monotonic() + limit, 0
    while quick < 2 and time.monotonic() < deadline:
        started = time.monotonic()
        with suppress(OSError), urlopen(f"{base}/readyz", timeout=limit) as answer:
            answer.read()
        quick = quick + 1 if time.monotonic() - started < 0.1 else 0
    time.sleep(0.2)


def run_wrk(wrk: str, base: str, lines_file: Path, connections: int, duration: float,
            threads: int) -> dict:
    threads = min(threads, connections)
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s",
               "-s", str(LUA), base, "--", str(lines_file), str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60,
                          cwd=ROOT)
    drain(base)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    return parse_wrk(done.stdout)


# --- the verdict --------------------------------------------------------------------------

def unexpected(endpoint: Endpoint, result: dict) -> dict[str, int]:
    """Non-2xx answers (and socket errors) other than the endpoint's expected 409s."""
    found = {}
    for key, n in result["non_2xx"].items():
        status, _, slug = key.partition(":")
        if status == "409" and slug in endpoint.expected_409:
            continue
        found[key] = n
    found.update({f"socket {k}": v for k, v in result["socket_errors"].items()})
    return found


def verdict(endpoint: Endpoint, ours: dict, floor: dict) -> dict:
    """The targets of issue 12 for one endpoint at one connection count."""
    ratio = ours["ok_rps"] / floor["ok_rps"] if floor["ok_rps"] else 0.0
    need = WRITE_TARGET if endpoint.write else READ_TARGET
    checks = {"throughput": ratio >= need}
    p99_ratio = ours["p99_ms"] / floor["p99_ms"] if floor["p99_ms"] else float("inf")
    if not endpoint.write:
        checks["p99"] = p99_ratio <= P99_TARGET
    checks["answers"] = not unexpected(endpoint, ours) and not unexpected(endpoint, floor)
    return {"ratio": ratio, "need": need, "p99_ratio": p99_ratio, "checks": checks,
            "pass": all(checks.values()), "unexpected_ours": unexpected(endpoint, ours),
            "unexpected_floor": unexpected(endpoint, floor)}


def describe_statuses(result: dict) -> str:
    parts = [f"{k}×{v}" for k, v in sorted(result["non_2xx"].items())]
    parts += [f"{k}×{v}" for k, v in sorted(result["socket_errors"].items())]
    return " ".join(parts) or "-"


def format_table(rows: list[dict]) -> str:
    head = (f"{'endpoint':<47}{'conn':>5} │{'ours r/s':>9}{'p50':>8}{'p99':>8}  {'non-2xx':<22}"
            f"│{'floor r/s':>10}{'p50':>8}{'p99':>8}  {'non-2xx':<18}│{'ratio':>6}"
            f"{'p99×':>6}  result")
    out = [head, "─" * len(head)]
    for row in rows:
        o, f, v = row["ours"], row["floor"], row["verdict"]
        failed = [name for name, ok in v["checks"].items() if not ok]
        result = "PASS" if v["pass"] else "FAIL (" + ", ".join(failed) + ")"
        out.append(
            f"{row['label'][:46]:<47}{row['connections']:>5} │{o['ok_rps']:>9.1f}"
            f"{o['p50_ms']:>8.1f}{o['p99_ms']:>8.1f}  {describe_statuses(o)[:21]:<22}│"
            f"{f['ok_rps']:>10.1f}{f['p50_ms']:>8.1f}{f['p99_ms']:>8.1f}  "
            f"{describe_statuses(f)[:17]:<18}│{v['ratio']:>6.2f}{v['p99_ratio']:>6.2f}  "
            f"{result} (≥{v['need']:.1f})")
    out.append("req/s counts 2xx answers only; p50/p99 in ms; ratio = ours ÷ floor req/s; "
               f"p99× = ours ÷ floor p99 (reads: ≤ {P99_TARGET}); expected 409s are not failures")
    return "\n".join(out)


def leaderboard_against_points(rows: list[dict]) -> list[str]:
    """Issue 12's leaderboard target: ours at least 0.6 of the floor's points read."""
    found = {(r["endpoint"], r["connections"]): r for r in rows}
    lines = []
    for (name, connections), row in found.items():
        points = found.get(("points", connections))
        if name != "leaderboard" or points is None or not points["floor"]["ok_rps"]:
            continue
        ratio = row["ours"]["ok_rps"] / points["floor"]["ok_rps"]
        lines.append(f"leaderboard (ours) ÷ points read (floor) at {connections}: {ratio:.2f} "
                     f"{'PASS' if ratio >= LEADERBOARD_TARGET else 'FAIL'} "
                     f"(≥{LEADERBOARD_TARGET})")
    return lines


# --- profiling ----------------------------------------------------------------------------

def ensure_py_spy() -> str:
    found = ROOT / ".venv" / "bin" / "py-spy"
    if not found.exists() and not shutil.which("py-spy"):
        print("installing py-spy into .venv (pip install py-spy)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    return str(found) if found.exists() else shutil.which("py-spy")


def top_functions(collapsed: str, limit: int = 25) -> list[tuple[str, float, float]]:
    """(function, self %, total %) from py-spy's raw (collapsed stack) output."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + n
    ranked = sorted(total, key=lambda f: -own.get(f, 0))[:limit]
    return [(f, 100 * own.get(f, 0) / samples, 100 * total[f] / samples) for f in ranked
            if samples]


def profile(args, url: str, world: World, app, wrk: str, logdir: Path) -> None:
    endpoint = BY_NAME[args.profile]
    spy = ensure_py_spy()
    lines_file = logdir / f"{endpoint.name}.tsv"
    lines_file.write_text("\n".join(request_lines(
        endpoint, world, open_wish_ids(app, world.community_id))) + "\n")
    server = Server("ours", "wsgi:app", url, args.workers, logdir / "ours.log")
    stem = Path(tempfile.gettempdir()) / f"bench-profile-{endpoint.name}"
    try:
        for fmt, suffix in (("flamegraph", ".svg"), ("raw", ".txt")):
            spy_command = [spy, "record", "--pid", str(server.process.pid), "--subprocesses",
                           "--rate", "200", "--format", fmt, "--output", f"{stem}{suffix}",
                           "--duration", str(int(args.duration) + 2)]
            recorder = subprocess.Popen(spy_command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
            time.sleep(1)
            result = run_wrk(wrk, server.base, lines_file, args.connections[0], args.duration,
                             args.threads)
            _, error = recorder.communicate(timeout=args.duration + 60)
            if recorder.returncode != 0:
                sys.exit(f"py-spy failed: {error[-1500:]}")
            print(f"{endpoint.label} @ {args.connections[0]} under py-spy ({fmt}): "
                  f"{result['ok_rps']:.1f} req/s, p99 {result['p99_ms']:.1f} ms")
    finally:
        server.stop()
    print(f"flamegraph: {stem}.svg\ncollapsed stacks: {stem}.txt\ntop functions (self %, total %):")
    for function, own, total in top_functions(Path(f"{stem}.txt").read_text()):
        print(f"  {own:5.1f} {total:5.1f}  {function[:140]}")


# --- the run ------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", action="store_true", help=f"run on SQLite ({DEFAULT_SQLITE})")
    parser.add_argument("--database-url", help=f"a database to WIPE (default {DEFAULT_PG}); "
                        "its name must contain 'bench'")
    parser.add_argument("--duration", type=float, default=8, help="seconds per wrk run (8)")
    parser.add_argument("--connections", default="32,4", help="wrk -c values (32,4)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--only", help="endpoints to run, comma-separated: "
                        + ",".join(e.name for e in ENDPOINTS))
    parser.add_argument("--volunteers", type=int, default=300)
    parser.add_argument("--residents", type=int, default=30)
    parser.add_argument("--wishes", type=int, default=4000)
    parser.add_argument("--history", type=int, default=22, help="adjustments per volunteer (22)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--logs", type=Path, help="keep the gunicorn logs and wrk request "
                        "files in this folder (default: a temporary one, removed)")
    parser.add_argument("--reuse-seed", action="store_true",
                        help="keep a copy of the seeded database and start from it next time "
                             "(same migrations and seed flags), instead of minutes of seeding")
    parser.add_argument("--existing", metavar="CODE", default=None,
                        help="measure a community already in --database-url (seed_scale's "
                             "scale001, say): nothing is wiped or seeded; reads only "
                             "(points, ledger, leaderboard by default); it only adds logins for its tokens")
    parser.add_argument("--profile", metavar="ENDPOINT", choices=list(BY_NAME),
                        help="instead of comparing: run ours under py-spy on one endpoint "
                             "(flamegraph and top functions in /tmp)")
    args = parser.parse_args(argv)
    try:
        args.connections = [int(c) for c in args.connections.split(",") if c.strip()]
    except ValueError:
        parser.error("--connections takes whole numbers, e.g. 32,4")
    if not args.connections or any(not 1 <= c <= 1000 for c in args.connections):
        parser.error("each connection count must be 1…1000")
    names = [n.strip() for n in (args.only or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown endpoint(s) {', '.join(unknown)}; choose from "
                     + ", ".join(BY_NAME))
    if args.existing and not names:
        names = ["points", "ledger", "leaderboard"]
    if args.existing and any(BY_NAME[n].write for n in names if n in BY_NAME):
        parser.error("--existing measures reads only: it changes nothing but the logins it makes")
    args.endpoints = [BY_NAME[n] for n in names] if names else list(ENDPOINTS)
    if not 0.5 <= args.duration <= 600:
        parser.error("--duration must be 0.5…600 seconds")
    if args.volunteers < 2 or args.residents < 1 or args.wishes < 10 or args.history < 1:
        parser.error("need at least 2 volunteers, 1 resident, 10 wishes, 1 adjustment each")
    return args


def target_url(args) -> str:
    from bench_ledger import check_target

    explicit = args.database_url is not None
    url = args.database_url or (DEFAULT_SQLITE if args.sqlite else DEFAULT_PG)
    if args.sqlite and explicit and not url.startswith("sqlite"):
        sys.exit("--sqlite with a non-SQLite --database-url")
    parsed = check_target(url, explicit, wipe=False)
    name = parsed.database or ""
    if "bench" not in Path(name).name.lower():
        sys.exit(f"refusing: {name!r} does not contain 'bench'")
    if parsed.get_backend_name() == "postgresql":
        ensure_database(parsed)
    return parsed.render_as_string(hide_password=False)


def ensure_database(url) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                           {"n": url.database}) is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    url = target_url(args)
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    from bench_ledger import reset_schema
    from sqlalchemy.engine import make_url

    from app import create_app
    from app.extensions import db

    wiped = "" if args.existing else " (wiped)"
    print(f"=== {backend}: {make_url(url).render_as_string()}{wiped} ===", flush=True)
    key = seed_key(args)
    restored = restore_seed(make_url(url), key) if args.reuse_seed else None
    app = None
    if args.existing:
        app = create_app(app_config(url))
        world, ids = existing_world(app, args.existing, args.volunteers)
        world.volunteers = mint_tokens(app, ids)
        print(f"community {args.existing} as it is: {len(ids)} volunteers, fresh tokens",
              flush=True)
    elif restored:
        world, ids = restored
        app = create_app(app_config(url))
        world.volunteers = mint_tokens(app, ids)
        print(f"started from the kept seed ({_kept(make_url(url))[0]}): community "
              f"{world.community_id}, {len(ids)} volunteers, fresh tokens", flush=True)
    else:
        started = time.perf_counter()
        reset_schema(make_url(url))
        print(f"schema built by migrations in {time.perf_counter() - started:.1f} s", flush=True)
        app = create_app(app_config(url))
        world = seed(app, args.volunteers, args.residents, args.wishes, args.history)
        print(f"seeded in {world.seconds:.1f} s: community {world.community_id}, "
              f"{len(world.volunteers)} volunteer tokens, {args.wishes} open wishes", flush=True)
        if args.reuse_seed:
            keep_seed(make_url(url), key, world)

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        logdir = args.logs or Path(tmp)
        logdir.mkdir(parents=True, exist_ok=True)
        if args.profile:
            profile(args, url, world, app, wrk, logdir)
            return 0
        statements = count_statements(app, world)
        with app.app_context():
            db.engine.dispose()
        print("statements per request (ours, one request in-process): " + ", ".join(
            f"{name} {n}" for name, n in statements.items()), flush=True)
        ours = Server("ours", "wsgi:app", url, args.workers, logdir / "ours.log")
        floor = Server("floor", "floor_app:create_app()", url, args.workers,
                       logdir / "floor.log", extra=["--pythonpath", str(SCRIPTS)])
        print(f"ours on {ours.base}, floor on {floor.base}: gunicorn -c gunicorn.conf.py "
              f"--workers {args.workers} --threads 1 (sync); wrk -t{args.threads} "
              f"-d{args.duration:g}s; rate limits as configured (not disabled)", flush=True)
        load_before = os.getloadavg()[0]
        rows = []
        try:
            for endpoint in args.endpoints:
                for connections in args.connections:
                    results = {}
                    for server in (ours, floor):
                        wish_ids = (open_wish_ids(app, world.community_id, reopen=True)
                                    if endpoint.name == "claim" else [])
                        lines_file = logdir / f"{endpoint.name}-{server.name}.tsv"
                        lines_file.write_text(
                            "\n".join(request_lines(endpoint, world, wish_ids)) + "\n")
                        results[server.name] = run_wrk(wrk, server.base, lines_file,
                                                       connections, args.duration, args.threads)
                    row = {"endpoint": endpoint.name, "label": endpoint.label,
                           "write": endpoint.write, "connections": connections, **results,
                           "verdict": verdict(endpoint, results["ours"], results["floor"])}
                    rows.append(row)
                    print(format_table([row]).splitlines()[2], flush=True)
        finally:
            ours.stop()
            floor.stop()
            with app.app_context():
                db.engine.dispose()
    load_after = os.getloadavg()[0]
    print(f"\n=== {backend}: ours vs floor, same run (1-min load {load_before:.2f} → "
          f"{load_after:.2f}, {os.cpu_count()} CPUs; measured while other work ran) ===")
    print(format_table(rows))
    print("statements per request (ours): " + ", ".join(
        f"{name} {n}" for name, n in statements.items()))
    for line in leaderboard_against_points(rows):
        print(line)
    passed = sum(r["verdict"]["pass"] for r in rows)
    print(f"{passed} of {len(rows)} PASS")
    if args.json:
        args.json.write_text(json.dumps({
            "database": backend, "duration": args.duration, "workers": args.workers,
            "threads": args.threads, "statements": statements, "load": [load_before, load_after],
            "rows": rows}, indent=2, ensure_ascii=False))
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
