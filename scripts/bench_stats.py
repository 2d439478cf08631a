#!/usr/bin/env python
"""Time a month's statistics of one community on a big and a small database, in one run.

    .venv/bin/python scripts/seed_scale.py                    # bench_big: 500 000 wishes in 50
    .venv/bin/python scripts/seed_scale.py --small --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_small
    .venv/bin/python scripts/bench_stats.py                   # both, --repeat 200
    .venv/bin/python scripts/bench_stats.py --explain         # + EXPLAIN ANALYZE of each query

It starts one gunicorn (2 sync workers, as in production) on each database, mints an organiser
of the community a token, sends --warmup requests to each, then --repeat requests to each,
alternating big and small so both see the same machine, of

    GET /api/v1/communities/{cid}/stats?from=<month start>&to=<month end>

(the last complete Asia/Shanghai month before the history's end by default), one keep-alive
connection per server. It prints p50 and p99 (ms) of each and the ratio of the p50s, PASS when
big ≤ 1.3 × small (issue 10's target). With --explain it also captures the SQL that
app/stats/service.community_stats sends and prints EXPLAIN (ANALYZE, BUFFERS) of each query on
both databases, slowest first. Read-only: it changes nothing but a refresh-token row.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BIG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_big"
SMALL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_small"
SECRET = "bench-secret-" + "b" * 40
TARGET = 1.3


def app_for(url: str):
    from app import create_app

    return create_app({"TESTING": True, "ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url,
                       "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET,
                       "JWT_ACCESS_TOKEN_EXPIRES": timedelta(hours=2),
                       "RATELIMIT_STORAGE_URI": "memory://"})


def organiser_of(app, code: str) -> tuple[int, int]:
    """(community id, an organiser's user id) of the community with this code."""
    from app.communities.models import Community, Membership
    from app.extensions import db

    with app.app_context():
        row = db.session.execute(
            sa.select(Community.id, Membership.user_id)
            .join(Membership, Membership.community_id == Community.id)
            .where(Community.code == code, Membership.role == "organiser")
            .order_by(Membership.user_id).limit(1)).first()
        db.session.remove()
    if row is None:
        sys.exit(f"no community {code!r} with an organiser: seed it with scripts/seed_scale.py")
    return row[0], row[1]


def mint_token(app, user_id: int) -> str:
    from app.auth.models import User
    from app.auth.service import issue_tokens
    from app.db import write_transaction
    from app.extensions import db

    with app.test_request_context():
        with write_transaction(db.session):
            tokens = issue_tokens(db.session.get(User, user_id))
        db.session.remove()
    return tokens["access_token"]


def history_end(app) -> date:
    """The Asia/Shanghai day of the newest wish (the seeder's `now`)."""
    from app.extensions import db
    from app.localtime import local_date
    from app.wishes.models import Wish

    with app.app_context():
        newest = db.session.scalar(sa.select(sa.func.max(Wish.created_at)))
        db.session.remove()
    return local_date(newest)


def last_full_month(day: date) -> tuple[date, date]:
    last = day.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn on 127.0.0.1 (a free port) against `url`; waits for /readyz."""

    def __init__(self, url: str, workers: int, log: Path, *extra: str):
        import requests

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "XINYUAN_ENV": "testing", "DATABASE_URL": url,
               "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET,
               "RATELIMIT_STORAGE_URI": "memory://"}
        command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "sync",
                   "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", *extra,
                   "wsgi:app"]
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

    def worker_pids(self) -> list[int]:
        import psutil

        return [c.pid for c in psutil.Process(self.process.pid).children()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def percentile(samples: list[float], p: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


# --- the query plans --------------------------------------------------------------------

def explain(app, cid: int, first: date, last: date) -> list[tuple[float, str, list[str]]]:
    """(execution ms, SQL, plan lines) of each query community_stats sends, slowest first."""
    from sqlalchemy import event

    from app.extensions import db
    from app.stats import service

    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    found = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            service.community_stats([cid], first, last)
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
        connection = db.session.connection()
        for statement, parameters in captured:
            lines = [r[0] for r in connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()]
            ms = next((float(ln.split(":")[1].split()[0]) for ln in lines
                       if ln.startswith("Execution Time")), 0.0)
            found.append((ms, statement, lines))
        db.session.rollback()
        db.session.remove()
    return sorted(found, key=lambda f: -f[0])


# --- the run ----------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", default=BIG, help=f"the big database (default {BIG})")
    parser.add_argument("--small", default=SMALL, help=f"the small database (default {SMALL})")
    parser.add_argument("--community", default="scale002",
                        help="community code, the same in both (default scale002: an ordinary "
                             "one; scale001 is the export benchmark's 1M-entry community)")
    parser.add_argument("--month", default=None,
                        help="YYYY-MM (default: the last full month before the history's end)")
    parser.add_argument("--repeat", type=int, default=200, help="timed requests each (200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests each first (20)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN ANALYZE of the stats queries on both databases")
    parser.add_argument("--logdir", type=Path, default=Path("/tmp"),
                        help="where the gunicorn logs go (/tmp)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import requests

    args = parse_args(argv)
    sides = {}
    for name, url in (("big", args.big), ("small", args.small)):
        app = app_for(url)
        cid, organiser = organiser_of(app, args.community)
        sides[name] = {"url": url, "app": app, "cid": cid, "token": mint_token(app, organiser),
                       "end": history_end(app), "samples": []}
    if args.month:
        year, month = map(int, args.month.split("-"))
        first = date(year, month, 1)
        last = last_full_month((first + timedelta(days=32)).replace(day=1))[1]
    else:
        first, last = last_full_month(min(s["end"] for s in sides.values()))
    print(f"GET /api/v1/communities/{{cid}}/stats?from={first}&to={last} — community "
          f"{args.community}, {args.workers} sync workers each, {args.warmup} warm-up + "
          f"{args.repeat} timed requests each, alternating", flush=True)

    servers = []
    try:
        for name, side in sides.items():
            side["server"] = Server(side["url"], args.workers,
                                    args.logdir / f"bench-stats-{name}.log")
            servers.append(side["server"])
            side["http"] = requests.Session()
            side["http"].headers["Authorization"] = f"Bearer {side['token']}"
            side["target"] = (f"{side['server'].base}/api/v1/communities/{side['cid']}/stats"
                              f"?from={first}&to={last}")
        for side in sides.values():
            with side["app"].app_context():
                from app.extensions import db

                counts = db.session.execute(sa.text(
                    "SELECT (SELECT count(*) FROM wishes), (SELECT count(*) FROM communities), "
                    "(SELECT count(*) FROM wishes WHERE community_id = :c), "
                    "(SELECT count(*) FROM ledger_entries)"), {"c": side["cid"]}).one()
                db.session.remove()
            side["counts"] = counts
        for i in range(args.warmup + args.repeat):
            for name, side in sides.items():
                t0 = time.perf_counter()
                response = side["http"].get(side["target"], timeout=60)
                ms = (time.perf_counter() - t0) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
                if i == 0:
                    side["body"] = response.json()
                if i >= args.warmup:
                    side["samples"].append(ms)
    finally:
        for server in servers:
            server.stop()

    print(f"{'database':<8} {'wishes':>9} {'communities':>11} {'its wishes':>10} "
          f"{'ledger entries':>14} {'posted':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, side in sides.items():
        total, communities, own, entries = side["counts"]
        samples = side["samples"]
        side["p50"] = percentile(samples, 50)
        print(f"{name:<8} {total:>9,} {communities:>11} {own:>10,} {entries:>14,} "
              f"{side['body']['wishes']['posted']:>6} {side['p50']:>8.1f} "
              f"{percentile(samples, 99):>8.1f} {statistics.fmean(samples):>8.1f}")
    ratio = sides["big"]["p50"] / sides["small"]["p50"]
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"p50 big / small = {ratio:.2f} (target ≤ {TARGET}): {verdict}", flush=True)

    if args.explain:
        for name, side in sides.items():
            print(f"\n--- EXPLAIN ANALYZE on {name} (slowest first) ---")
            for ms, statement, lines in explain(side["app"], side["cid"], first, last):
                print(f"\n[{ms:.2f} ms] " + " ".join(statement.split())[:300])
                print("\n".join("    " + ln for ln in lines))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
