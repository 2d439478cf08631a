#!/usr/bin/env python
"""Seed a points ledger of N entries and time the points views through the real HTTP stack.

    .venv/bin/python scripts/bench_ledger.py                      # PostgreSQL `bench`, 1 000 and 1 000 000
    .venv/bin/python scripts/bench_ledger.py --sizes 1000 --repeat 50
    .venv/bin/python scripts/bench_ledger.py --database-url sqlite:////tmp/bench.sqlite3

For each size N it WIPES the database (PostgreSQL: DROP SCHEMA public CASCADE; SQLite: deletes the
file), builds the schema with the real migrations, creates a community, a volunteer and the
community's system accounts, then bulk-inserts N transfers of 1 point issuance → volunteer and
their 2N entries in server-side SQL (generate_series / a recursive CTE): balance_after running
sums, stored balance, totals and entry_count set to match, and proves it with
app.ledger.verify.verify(). The volunteer's own history is then N entries long.

It then starts gunicorn on 127.0.0.1 (a free port) against that database, mints the volunteer a
token, and times sequential requests over one keep-alive connection:

    GET /readyz                                      the framework + one `SELECT 1` floor
    GET /api/v1/me/points?community_id=C             stored balance: one row by key
    GET /api/v1/me/ledger?community_id=C&per_page=20 newest page
    GET /api/v1/me/ledger?…&after=<middle id>        keyset page in the middle of the history
    GET /api/v1/me/ledger?…&page=<middle page>       OFFSET page in the middle, or the deepest
                                                     the API serves (OFFSET ≤ 10 000), for contrast

and prints p50/p95/p99/mean per endpoint and size, plus EXPLAIN (ANALYZE) of the keyset query
the service really runs (captured from SQLAlchemy), which must be an index range scan.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
SECRET = "bench-secret-" + "b" * 40
PER_PAGE = 20
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Databases this script refuses to wipe, whatever flag is given.
PROTECTED = re.compile(r"^(test.*|postgres|template\d*)$", re.IGNORECASE)


# --- safety -------------------------------------------------------------------------------

def check_target(url_text: str, explicit: bool, wipe: bool) -> sa.URL:
    """Refuse databases that must not be wiped; say exactly what will be wiped."""
    url = make_url(url_text)
    backend = url.get_backend_name()
    if backend == "postgresql":
        name = url.database or ""
        if url.host not in LOCAL_HOSTS:
            sys.exit(f"refusing: {url.host!r} is not a local PostgreSQL (127.0.0.1 only)")
        if PROTECTED.match(name):
            sys.exit(f"refusing: database {name!r} is protected (test*, postgres, template*)")
        if "bench" not in name.lower() and not wipe:
            sys.exit(f"refusing: database {name!r} does not look like a benchmark database; "
                     "pass --wipe if you really want its schema `public` dropped")
    elif backend == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:":
            sys.exit("give an SQLite file, e.g. sqlite:////tmp/bench.sqlite3")
        if "bench" not in Path(path).name.lower() and not wipe:
            sys.exit(f"refusing: {path} does not look like a benchmark file; pass --wipe")
        if Path(path).resolve().is_relative_to(ROOT / "instance") and not wipe:
            sys.exit(f"refusing: {path} is in the project's instance/ folder")
    else:
        sys.exit(f"unsupported database {backend!r}: PostgreSQL or SQLite")
    if not explicit:
        print(f"(no --database-url given: using the default {url.render_as_string()})")
    return url


def describe_what_is_wiped(url: sa.URL) -> None:
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        state = f"{path.stat().st_size / 1e6:.1f} MB" if path.exists() else "does not exist yet"
        print(f"WILL WIPE: SQLite file {path} ({state}) and its -wal/-shm files")
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT c.relname, c.reltuples::bigint FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname")).all()
    finally:
        engine.dispose()
    tables = ", ".join(f"{name} (~{max(n, 0)} rows)" for name, n in rows) or "no tables"
    print(f"WILL WIPE: schema public of database {url.database!r} on {url.host}:{url.port or 5432}"
          f" — {len(rows)} tables: {tables}")


# --- schema and seed ----------------------------------------------------------------------

def app_config(url: str) -> dict:
    from datetime import timedelta

    return {
        "TESTING": True,
        "ENV_NAME": "testing",
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": SECRET,
        "JWT_SECRET_KEY": SECRET,
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(hours=2),
        "RATELIMIT_STORAGE_URI": "memory://",
    }


def reset_schema(url: sa.URL) -> None:
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            with suppress(FileNotFoundError):
                Path(url.database + suffix).unlink()
    else:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        finally:
            engine.dispose()
    app = create_app(app_config(url.render_as_string(hide_password=False)))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@dataclass
class World:
    community_id: int
    user_id: int
    volunteer_account: int
    issuance_account: int
    size: int

    @property
    def middle_entry_id(self) -> int:
        """The volunteer's entry of transfer N/2 (volunteer entries have even ids: 2, 4, …)."""
        return 2 * max(1, self.size // 2)


def create_world(app, size: int) -> World:
    from app.auth.models import User
    from app.communities.models import Community, Membership
    from app.db import write_transaction
    from app.extensions import db
    from app.ledger import service

    with app.app_context(), write_transaction(db.session):
        user = User(phone="13900000001", display_name="基准志愿者",
                    password_hash="!bench-no-login", is_admin=False)
        community = Community(name="基准社区", code="bench", street="", district="")
        db.session.add_all([user, community])
        db.session.flush()
        db.session.add(Membership(community_id=community.id, user_id=user.id, role="volunteer"))
        service.setup_community(community.id)  # issuance + store accounts, rules, policy
        world = World(community.id, user.id, service.user_account(community.id, user.id),
                      service.issuance_account(community.id), size)
    return world


PG_SEED = [
    """
    INSERT INTO ledger_transfers (id, community_id, key, kind, source_id, destination_id,
                                  requested_amount, amount, memo, actor_id, created_at)
    SELECT g, :cid, 'bench:activity:' || g, 'earn_activity', :iss, :vol, 1, 1, 'bench', NULL,
           now() - (:n - g) * interval '1 minute'
    FROM generate_series(1, :n) AS g
    """,
    """
    INSERT INTO ledger_entries (id, transfer_id, community_id, account_id, amount, balance_after,
                                created_at)
    SELECT 2 * g - 1 + side, g, :cid,
           CASE side WHEN 0 THEN :iss ELSE :vol END,
           CASE side WHEN 0 THEN -1 ELSE 1 END,
           CASE side WHEN 0 THEN -g ELSE g END,
           now() - (:n - g) * interval '1 minute'
    FROM generate_series(1, :n) AS g CROSS JOIN (VALUES (0), (1)) AS sides(side)
    ORDER BY 1
    """,
    # Each earning is a lot, as transfer() leaves it (check 7: the lots hold the balance).
    """
    INSERT INTO points_lots (id, community_id, account_id, transfer_id, earned_at, earned_on,
                             amount, remaining, expired)
    SELECT id, community_id, destination_id, id, created_at,
           (created_at AT TIME ZONE 'Asia/Shanghai')::date, amount, amount, 0
    FROM ledger_transfers WHERE community_id = :cid
    """,
    "SELECT setval(pg_get_serial_sequence('ledger_transfers', 'id'), :n)",
    "SELECT setval(pg_get_serial_sequence('ledger_entries', 'id'), 2 * :n)",
    "SELECT setval(pg_get_serial_sequence('points_lots', 'id'), :n)",
]

SQLITE_SEED = [
    """
    INSERT INTO ledger_transfers (id, community_id, key, kind, source_id, destination_id,
                                  requested_amount, amount, memo, actor_id, created_at)
    WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n)
    SELECT g, :cid, 'bench:activity:' || g, 'earn_activity', :iss, :vol, 1, 1, 'bench', NULL,
           strftime('%Y-%m-%d %H:%M:%S', :t0, '+' || g || ' minutes') || '.000000'
    FROM s
    """,
    """
    INSERT INTO ledger_entries (id, transfer_id, community_id, account_id, amount, balance_after,
                                created_at)
    WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n)
    SELECT 2 * g - 1 + side, g, :cid,
           CASE side WHEN 0 THEN :iss ELSE :vol END,
           CASE side WHEN 0 THEN -1 ELSE 1 END,
           CASE side WHEN 0 THEN -g ELSE g END,
           strftime('%Y-%m-%d %H:%M:%S', :t0, '+' || g || ' minutes') || '.000000'
    FROM s CROSS JOIN (SELECT 0 AS side UNION ALL SELECT 1) AS sides
    ORDER BY 1
    """,
    """
    INSERT INTO points_lots (id, community_id, account_id, transfer_id, earned_at, earned_on,
                             amount, remaining, expired)
    SELECT id, community_id, destination_id, id, created_at, date(created_at, '+8 hours'),
           amount, amount, 0
    FROM ledger_transfers WHERE community_id = :cid
    """,
]

# transfer() moves earned_total (and the source's column) on both sides for earning kinds, so
# the issuance's are -N.
ACCOUNT_TOTALS = """
    UPDATE points_accounts SET balance = :b, earned_total = :b, earned_activity = :b,
                               entry_count = :n WHERE id = :id
"""


def bulk_seed(url: sa.URL, world: World) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy.orm import Session

    from app.ledger import totals

    n = world.size
    params = {"n": n, "cid": world.community_id, "iss": world.issuance_account,
              "vol": world.volunteer_account}
    postgres = url.get_backend_name() == "postgresql"
    if not postgres:
        start = datetime.now(UTC) - timedelta(minutes=n + 1)
        params["t0"] = start.strftime("%Y-%m-%d %H:%M:%S")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in PG_SEED if postgres else SQLITE_SEED:
                started = time.perf_counter()
                conn.execute(sa.text(statement), params)
                what = " ".join(statement.split()[:3])[:40]
                print(f"  {what:<40} {time.perf_counter() - started:7.1f} s", flush=True)
            conn.execute(sa.text(ACCOUNT_TOTALS), {"b": n, "n": n, "id": world.volunteer_account})
            conn.execute(sa.text(ACCOUNT_TOTALS),
                         {"b": -n, "n": n, "id": world.issuance_account})
            # The rows went in without transfer(), so the leaderboards' pre-aggregates were not
            # kept: recompute them from the entries, or `ledger verify` (check 8) fails.
            started = time.perf_counter()
            totals.rebuild(world.community_id, session=Session(bind=conn))
            print(f"  {'leaderboard totals rebuilt':<40} {time.perf_counter() - started:7.1f} s",
                  flush=True)
        # What autovacuum would do after a load this size: fresh statistics, visibility map.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if postgres:
                conn.execute(sa.text(
                    "VACUUM (ANALYZE) ledger_entries, ledger_transfers, points_accounts"))
            else:
                conn.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()


def run_verify(app) -> tuple[bool, list[str]]:
    from app.extensions import db
    from app.ledger.verify import verify

    with app.app_context():
        reports = verify()
        lines = [r.summary() for r in reports]
        lines += [f"  - {v}" for r in reports for v in r.violations[:10]]
        db.session.rollback()
        return all(r.ok for r in reports), lines


def mint_token(app, user_id: int) -> str:
    from app.auth.models import User
    from app.auth.service import issue_tokens
    from app.db import write_transaction
    from app.extensions import db

    with app.test_request_context(), write_transaction(db.session):
        tokens = issue_tokens(db.session.get(User, user_id))
    return tokens["access_token"]


# --- the query plan -----------------------------------------------------------------------

def explain_ledger_query(app, url: sa.URL, world: World, *, after: int | None, page: int) -> list[str]:
    """Run service.ledger_page, capture the entries query it sends, and EXPLAIN it."""
    from sqlalchemy import event

    from app.extensions import db
    from app.ledger import service

    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM ledger_entries" in statement:
            captured.append((statement, parameters))

    with app.test_request_context():
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            service.ledger_page(world.community_id, world.user_id, after=after, page=page,
                                per_page=PER_PAGE)
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
        if not captured:
            return ["(no ledger_entries query captured)"]
        statement, parameters = captured[-1]
        prefix = ("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if url.get_backend_name() == "postgresql"
                  else "EXPLAIN QUERY PLAN ")
        rows = db.session.connection().exec_driver_sql(prefix + statement, parameters).all()
        db.session.rollback()
    if url.get_backend_name() == "postgresql":
        return [row[0] for row in rows]
    return [str(row[-1]) for row in rows]


def plan_summary(lines: list[str]) -> str:
    """How ledger_entries is read (which index, rows read and filtered out), and the time."""
    scan = next((ln.strip() for ln in lines
                 if re.search(r"(Scan|SCAN|SEARCH)\b.*\bledger_entries\b", ln)), "?")
    scan = re.sub(r"^->\s*", "", scan)
    rows = re.search(r"rows=(\d+)", scan)
    scan = re.sub(r"\s*\(actual.*", "", scan)
    at = lines.index(next(ln for ln in lines if scan in ln)) if scan != "?" else 0
    details = []
    for ln in lines[at + 1:at + 6]:
        text = ln.strip()
        if text.startswith(("Index Cond", "Filter", "Rows Removed by Filter")):
            details.append(text)
        elif text.startswith("->"):
            break
    if rows:
        details.insert(0, f"{rows.group(1)} rows out")
    timing = next((ln.strip() for ln in lines if ln.strip().startswith("Execution Time")), "")
    sequential = "Seq Scan" in scan or scan.startswith("SCAN ledger_entries")
    verdict = "SEQUENTIAL SCAN" if sequential else "index range scan"
    extra = f" ({'; '.join(details)})" if details else ""
    return f"{verdict}: {scan}{extra}" + (f"; {timing}" if timing else "")


# --- the server and the timing ------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, url: str, workers: int, worker_class: str, log: Path):
        import requests

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "XINYUAN_ENV": "testing", "DATABASE_URL": url,
               "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET, "JWT_ACCESS_SECONDS": "7200",
               "RATELIMIT_STORAGE_URI": "memory://"}
        command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", worker_class,
                   "-b", f"127.0.0.1:{self.port}", "--timeout", "120",
                   "--graceful-timeout", "5", "wsgi:app"]
        if worker_class == "gthread":
            command[5:5] = ["--threads", "2", "--keep-alive", "30"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"),
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{log.read_text()[-3000:]}")
            with suppress(requests.RequestException):
                if requests.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not become ready:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


@dataclass
class Stats:
    samples: list[float] = field(default_factory=list)  # milliseconds

    def summary(self) -> dict:
        cuts = statistics.quantiles(self.samples, n=100, method="inclusive")
        return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98],
                "mean": statistics.fmean(self.samples), "n": len(self.samples)}


OFFSET_NAME = "GET /me/ledger ?page=<middle, at most the deepest allowed> (OFFSET)"


def offset_page_for(n: int) -> int:
    """The middle page, or the deepest page the API still serves by OFFSET (deeper pages are
    refused with 422 and must use ?after=)."""
    from app.ledger.service import MAX_OFFSET

    return max(1, min((n // 2) // PER_PAGE, MAX_OFFSET // PER_PAGE + 1))


def endpoints(world: World, offset_repeat: int) -> dict[str, tuple[str, object]]:
    """name → (path, check of the JSON body) — every answer is checked, not only timed."""
    cid, n = world.community_id, world.size
    ledger = f"/api/v1/me/ledger?community_id={cid}&per_page={PER_PAGE}"
    middle_page = offset_page_for(n)

    def points_ok(body):
        return body["balance"] == n and body["earned_total"] == n

    def first_ok(body):
        return body["items"][0]["id"] == 2 * n and body["total"] == n

    def keyset_ok(body):
        return body["items"][0]["id"] == world.middle_entry_id - 2 and len(body["items"]) == min(
            PER_PAGE, world.middle_entry_id // 2 - 1)

    def offset_ok(body):
        return body["items"][0]["balance_after"] == n - (middle_page - 1) * PER_PAGE

    targets = {
        "GET /readyz (floor)": ("/readyz", lambda body: body["status"] == "ok"),
        "GET /me/points": (f"/api/v1/me/points?community_id={cid}", points_ok),
        "GET /me/ledger first page": (ledger, first_ok),
        "GET /me/ledger ?after=<middle>": (f"{ledger}&after={world.middle_entry_id}", keyset_ok),
    }
    if offset_repeat:
        targets[OFFSET_NAME] = (f"{ledger}&page={middle_page}", offset_ok)
    return targets


def measure(server: Server, token: str, world: World, args) -> dict:
    """Sequential GETs over one keep-alive connection, round-robin over the endpoints so that
    drift in the machine's load hits them alike. The OFFSET page costs seconds at 1M entries, so
    it gets only --offset-repeat timed rounds (after 2 warm-up ones)."""
    import requests

    targets = endpoints(world, args.offset_repeat)
    budget = {name: (args.warmup, args.repeat) for name in targets}
    if OFFSET_NAME in budget:
        budget[OFFSET_NAME] = (min(2, args.warmup), min(args.repeat, args.offset_repeat))
    stats = {name: Stats() for name in targets}
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {token}"
        for i in range(args.warmup + args.repeat):
            for name, (path, check) in targets.items():
                warmup, repeat = budget[name]
                if i >= warmup + repeat:
                    continue
                started = time.perf_counter()
                response = http.get(server.base + path, timeout=120)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200 or not check(response.json()):
                    raise RuntimeError(f"{name}: unexpected answer {response.status_code} "
                                       f"{response.text[:300]}\n--- gunicorn log (tail) ---\n"
                                       f"{server.log.read_text(errors='replace')[-4000:]}")
                if i >= warmup:
                    stats[name].samples.append(elapsed)
    return {name: s.summary() for name, s in stats.items()}


# --- one size, and the report -------------------------------------------------------------

def bench_size(url: sa.URL, size: int, args, logdir: Path) -> dict:
    from app import create_app
    from app.extensions import db

    url_text = url.render_as_string(hide_password=False)
    print(f"\n=== {size:,} transfers: the volunteer's ledger holds {size:,} entries "
          f"({2 * size:,} entries in all) ===", flush=True)
    started = time.perf_counter()
    reset_schema(url)
    print(f"schema rebuilt by migrations in {time.perf_counter() - started:.1f} s", flush=True)

    app = create_app(app_config(url_text))
    try:
        world = create_world(app, size)
        started = time.perf_counter()
        bulk_seed(url, world)
        seed_seconds = time.perf_counter() - started
        print(f"seeded {size:,} transfers / {2 * size:,} entries in {seed_seconds:.1f} s "
              "(incl. VACUUM ANALYZE or ANALYZE)", flush=True)

        started = time.perf_counter()
        ok, lines = run_verify(app)
        verify_seconds = time.perf_counter() - started
        print(f"ledger verify ({verify_seconds:.1f} s): " + "\n".join(lines), flush=True)
        if not ok:
            raise SystemExit("the seeded ledger does not verify; not measuring")

        keyset_plan = explain_ledger_query(app, url, world, after=world.middle_entry_id, page=1)
        first_plan = explain_ledger_query(app, url, world, after=None, page=1)
        offset_page = offset_page_for(size)
        offset_plan = explain_ledger_query(app, url, world, after=None, page=offset_page)
        print(f"EXPLAIN of the keyset query (?after={world.middle_entry_id}):")
        print("\n".join("    " + ln for ln in keyset_plan))
        print("  → " + plan_summary(keyset_plan))
        print("EXPLAIN of the first page: " + plan_summary(first_plan))
        print(f"EXPLAIN of the OFFSET page (?page={offset_page}, OFFSET "
              f"{(offset_page - 1) * PER_PAGE}): " + plan_summary(offset_plan))

        token = mint_token(app, world.user_id)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    server = None
    try:
        server = Server(url_text, args.workers, args.worker_class, logdir / f"gunicorn-{size}.log")
        print(f"gunicorn ({args.workers} × {args.worker_class}) on {server.base}; "
              f"{args.warmup} warm-up + {args.repeat} timed rounds", flush=True)
        load_before = os.getloadavg()[0]
        results = measure(server, token, world, args)
        load_after = os.getloadavg()[0]
    finally:
        if server is not None:
            server.stop()
    print(f"1-minute load average {load_before:.2f} before, {load_after:.2f} after "
          f"({os.cpu_count()} CPUs)")
    for name, s in results.items():
        print(f"  {name:<46} p50 {s['p50']:8.2f}  p95 {s['p95']:8.2f}  p99 {s['p99']:8.2f}  "
              f"mean {s['mean']:8.2f} ms  (n={s['n']})")
    return {"size": size, "seed_seconds": seed_seconds, "verify_seconds": verify_seconds,
            "verify": lines, "keyset_plan": keyset_plan,
            "keyset_plan_summary": plan_summary(keyset_plan),
            "first_page_plan_summary": plan_summary(first_plan),
            "offset": (offset_page - 1) * PER_PAGE,
            "offset_plan_summary": plan_summary(offset_plan),
            "load_average": [load_before, load_after], "latency_ms": results}


def print_table(runs: list[dict], backend: str) -> None:
    sizes = [r["size"] for r in runs]
    names = list(runs[0]["latency_ms"])
    width = max(len(n) for n in names) + 2
    print(f"\n=== {backend}: latency in ms (p50 / p95 / p99 / mean), sequential, keep-alive ===")
    header = "".join(f"{f'{s:,} entries':>34}" for s in sizes)
    print(f"{'':<{width}}{header}")
    print(f"{'':<{width}}" + f"{'p50':>10}{'p95':>8}{'p99':>8}{'mean':>8}" * len(sizes))
    for name in names:
        cells = ""
        for run in runs:
            s = run["latency_ms"][name]
            cells += f"{s['p50']:>10.2f}{s['p95']:>8.2f}{s['p99']:>8.2f}{s['mean']:>8.2f}"
        print(f"{name:<{width}}{cells}")
    print(f"{'seed / verify (s)':<{width}}" + "".join(
        f"{r['seed_seconds']:>26.1f}{r['verify_seconds']:>8.1f}" for r in runs))
    print(f"{'1-min load avg before/after':<{width}}" + "".join(
        f"{r['load_average'][0]:>26.2f}{r['load_average'][1]:>8.2f}" for r in runs))
    for run in runs:
        print(f"@ {run['size']:,}: keyset plan: {run['keyset_plan_summary']}")
        print(f"@ {run['size']:,}: OFFSET {run['offset']:,} plan: {run['offset_plan_summary']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None,
                        help=f"SQLAlchemy URL of a database to WIPE (default {DEFAULT_URL})")
    parser.add_argument("--sizes", default="1000,1000000",
                        help="comma-separated history lengths (default 1000,1000000)")
    parser.add_argument("--repeat", type=int, default=200, help="timed rounds (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first (default 20)")
    parser.add_argument("--offset-repeat", type=int, default=20,
                        help="timed rounds of the (slow) OFFSET page; 0 skips it (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"],
                        help="gthread keeps the connection alive; sync closes it (default gthread)")
    parser.add_argument("--wipe", action="store_true",
                        help="allow wiping a database whose name does not contain 'bench'")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes whole numbers, e.g. 1000,1000000")
    if not args.sizes or any(not 100 <= s <= 50_000_000 for s in args.sizes):
        parser.error("each size must be between 100 and 50 000 000")
    if not 2 <= args.repeat <= 100_000 or not 0 <= args.warmup <= 10_000:
        parser.error("--repeat must be 2…100000 and --warmup 0…10000")
    if args.offset_repeat != 0 and not 2 <= args.offset_repeat <= 100_000:
        parser.error("--offset-repeat must be 0 (skip) or 2…100000")
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be 1…64")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = check_target(args.database_url or DEFAULT_URL, args.database_url is not None, args.wipe)
    describe_what_is_wiped(url)
    backend = url.get_backend_name()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as logdir:
        for size in args.sizes:
            runs.append(bench_size(url, size, args, Path(logdir)))
    print_table(runs, "PostgreSQL" if backend == "postgresql" else "SQLite")
    if args.json:
        args.json.write_text(json.dumps({"database": backend, "repeat": args.repeat,
                                         "workers": args.workers,
                                         "worker_class": args.worker_class, "runs": runs},
                                        indent=2, ensure_ascii=False))
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
