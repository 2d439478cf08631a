#!/usr/bin/env python
"""Time the hot queries on a full and a small database: the SQL the app sends, 1 k vs full size.

    .venv/bin/python scripts/bench_queries.py                 # bench_big against bench_small
    .venv/bin/python scripts/bench_queries.py --big URL --small URL -n 100
    .venv/bin/python scripts/bench_queries.py --big sqlite:////tmp/bench_big.sqlite3 \\
        --small sqlite:////tmp/bench_small.sqlite3

Both databases as scripts/seed_scale.py makes them (full size, and `--small`). In each, the app's
own functions run in a request context, as the views call them, and a `before_cursor_execute`
listener captures every statement they send:

    balance        ledger.service.points_summary            GET /me/points
    ledger first   ledger.service.ledger_page(page=1)       GET /me/ledger?per_page=20
    ledger deep    ledger.service.ledger_page(after=…)      GET /me/ledger?after=<id>
    wishes open    wishes.service.list_visible              GET /wishes?status=open&board_id=
    wishes closed  (the same, status=closed)
    week board …   ledger.leaderboard.leaderboard           GET /communities/{cid}/leaderboard
                   (period=week; by=volunteer and team; without and with source=wish)
    month stats    stats.service.community_stats            GET /communities/{cid}/stats

The same kind of subject in both: the leaderboard in the first community (scale001: 10 000
volunteers and 1 000 000 entries in the full database, 10 and ~1 000 in the small one); the
ledger of the user account with the most entries, its deep page at the same depth in both;
the wishes of the busiest board of scale002, read by its first organiser, 20 a page; scale002's
last full month. Each case runs N times, alternating the two databases (so background load
falls on both alike): the call's time (what the view pays beyond JWT and JSON) and the time of
its captured SELECTs re-sent through the driver (the database's share). It prints median and
p95 in ms, full ÷ small of the medians against ≤ 1.3, and `EXPLAIN (ANALYZE, BUFFERS)` of every
statement (SQLite: `EXPLAIN QUERY PLAN`), flagging a sequential scan of a big table as FAIL.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from seed_scale import app_config  # noqa: E402  (the seeder's config: same secrets, testing)

DEFAULT_BIG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_big"
DEFAULT_SMALL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_small"
TARGET = 1.3
PER_PAGE = 20
WARMUP = 3
# A sequential scan of one of these is a plan that grows with the history.
BIG_TABLES = ("ledger_entries", "ledger_transfers", "wishes", "points_lots",
              "leaderboard_totals", "redemptions")


@dataclass
class Subjects:
    """Who and what is measured in one database."""

    board_cid: int
    stats_cid: int
    organiser_id: int
    board_id: int
    user_id: int
    user_cid: int
    account_id: int
    entries: int
    month: tuple[date, date]
    after: int | None = None  # the deep page's keyset (set once both databases are known)


@dataclass
class Side:
    label: str
    url: str
    app: object
    subjects: Subjects
    backend: str
    calls: dict[str, list[float]] = field(default_factory=dict)
    sql: dict[str, list[float]] = field(default_factory=dict)
    statements: dict[str, list[tuple[str, object]]] = field(default_factory=dict)


def last_full_month(day: date) -> tuple[date, date]:
    last = day.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def find_subjects(app, board_code: str, stats_code: str) -> Subjects:
    from app.extensions import db
    from app.ledger.models import Entry
    from app.localtime import local_date

    with app.app_context():
        s = db.session
        community = {code: s.scalar(sa.text("SELECT id FROM communities WHERE code = :c"),
                                    {"c": code}) for code in (board_code, stats_code)}
        if None in community.values():
            raise SystemExit(f"no community {board_code} / {stats_code}: seed with "
                             "scripts/seed_scale.py first")
        stats_cid = community[stats_code]
        organiser = s.scalar(sa.text(
            "SELECT user_id FROM memberships WHERE community_id = :c AND role = 'organiser' "
            "ORDER BY id LIMIT 1"), {"c": stats_cid})
        board = s.scalar(sa.text(
            "SELECT board_id FROM wishes WHERE community_id = :c GROUP BY board_id "
            "ORDER BY count(*) DESC, board_id LIMIT 1"), {"c": stats_cid})
        account = s.execute(sa.text(
            "SELECT a.id, a.community_id, a.user_id, a.entry_count FROM points_accounts a "
            "JOIN memberships m ON m.community_id = a.community_id AND m.user_id = a.user_id "
            "WHERE a.kind = 'user' AND m.role = 'volunteer' "
            "ORDER BY a.entry_count DESC, a.id LIMIT 1")).one()
        newest = s.scalar(sa.select(sa.func.max(Entry.created_at))
                          .where(Entry.community_id == stats_cid))
        if newest.tzinfo is None:  # SQLite hands back naive UTC
            newest = newest.replace(tzinfo=UTC)
        db.session.remove()
    return Subjects(community[board_code], stats_cid, organiser, board, account.user_id,
                    account.community_id, account.id, account.entry_count,
                    last_full_month(local_date(newest)))


def keyset_at(app, account_id: int, depth: int) -> int:
    """The id of the account's `depth`-th newest entry: `after=` it opens the page below."""
    from app.extensions import db

    with app.app_context():
        after = db.session.scalar(sa.text(
            "SELECT id FROM ledger_entries WHERE account_id = :a ORDER BY id DESC "
            "LIMIT 1 OFFSET :d"), {"a": account_id, "d": depth - 1})
        db.session.remove()
    return after


def cases(side: Side) -> dict[str, Callable[[], object]]:
    """The hot queries, each as the view calls it."""
    from app.auth.models import User
    from app.extensions import db
    from app.ledger import leaderboard, service
    from app.stats import service as stats

    sub = side.subjects

    def wishes(status: str):
        from app.wishes import service as wishes_service

        def call():
            viewer = db.session.get(User, sub.organiser_id)  # the login's user, loaded once
            return wishes_service.list_visible(viewer, {
                "board_id": sub.board_id, "status": status, "page": 1, "per_page": PER_PAGE})
        return call

    def board(by: str, source: str | None):
        return lambda: leaderboard.leaderboard(sub.board_cid, "week", by, 10, source=source)

    return {
        "balance": lambda: service.points_summary(sub.user_cid, sub.user_id),
        "ledger first page": lambda: service.ledger_page(
            sub.user_cid, sub.user_id, after=None, page=1, per_page=PER_PAGE),
        "ledger deep page": lambda: service.ledger_page(
            sub.user_cid, sub.user_id, after=sub.after, page=1, per_page=PER_PAGE),
        "wishes open": wishes("open"),
        "wishes closed": wishes("closed"),
        "week volunteers": board("volunteer", None),
        "week teams": board("team", None),
        "week volunteers wish": board("volunteer", "wish"),
        "week teams wish": board("team", "wish"),
        "month stats": lambda: stats.community_stats([sub.stats_cid], *sub.month),
    }


def captured_run(side: Side, name: str, call) -> tuple[float, list[tuple[str, object]]]:
    """Run `call` once as a request would (its own session); its seconds and statements."""
    from app.extensions import db

    seen: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        seen.append((statement, parameters))

    with side.app.test_request_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", capture)
        try:
            started = time.perf_counter()
            call()
            seconds = time.perf_counter() - started
        finally:
            event.remove(engine, "before_cursor_execute", capture)
            db.session.rollback()
            db.session.remove()
    return seconds, seen


def timed_sql(side: Side, statements: list[tuple[str, object]]) -> float:
    """The captured SELECTs re-sent through the driver, back to back: the database's share."""
    from app.extensions import db

    with side.app.app_context():
        conn = db.session.connection()
        started = time.perf_counter()
        for statement, parameters in statements:
            conn.exec_driver_sql(statement, parameters).all()
        seconds = time.perf_counter() - started
        db.session.rollback()
        db.session.remove()
    return seconds


def selects(statements):
    return [(s, p) for s, p in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def measure(sides: list[Side], n: int, only: list[str] | None) -> list[str]:
    names = list(cases(sides[0]))
    if only:
        names = [name for name in names if any(o in name for o in only)]
    calls = {side.label: cases(side) for side in sides}
    for name in names:
        for side in sides:
            for _ in range(WARMUP):
                _seconds, seen = captured_run(side, name, calls[side.label][name])
            side.statements[name] = seen
            side.calls[name], side.sql[name] = [], []
        for _ in range(n):
            for side in sides:
                seconds, _seen = captured_run(side, name, calls[side.label][name])
                side.calls[name].append(seconds * 1000)
                side.sql[name].append(timed_sql(side, selects(side.statements[name])) * 1000)
        print(f"  measured {name}", file=sys.stderr, flush=True)
    return names


# --- plans ----------------------------------------------------------------------------------

SCAN = re.compile(r"(Seq Scan|Parallel Seq Scan|Index Only Scan|Index Scan Backward|Index Scan|"
                  r"Bitmap Index Scan|Bitmap Heap Scan)(?: using (\S+))? on (\S+)")


def explain(side: Side, statement: str, parameters) -> list[str]:
    from app.extensions import db

    prefix = ("EXPLAIN (ANALYZE, BUFFERS) " if side.backend == "postgresql"
              else "EXPLAIN QUERY PLAN ")
    with side.app.app_context():
        rows = db.session.connection().exec_driver_sql(prefix + statement, parameters).all()
        db.session.rollback()
        db.session.remove()
    if side.backend == "postgresql":
        return [row[0] for row in rows]
    return [str(row[-1]) for row in rows]


def summarise(backend: str, plan: list[str]) -> tuple[str, bool]:
    """One line for a plan (its scans, buffers, time) and whether it fails (a big seq scan)."""
    if backend != "postgresql":
        scans, bad = [], False
        for line in plan:
            if "TEMP B-TREE" in line:  # a sort of every row found (no index in that order)
                scans.append(line.strip())
            m = re.match(r"(SCAN|SEARCH) (\w+)(.*)", line.strip())
            if not m:
                continue
            how = m.group(3).strip()
            scans.append(f"{m.group(1)} {m.group(2)} {how}".strip())
            if m.group(1) == "SCAN" and m.group(2) in BIG_TABLES and "INDEX" not in how:
                bad = True
        return "; ".join(scans) or "(no table read)", bad
    scans, bad = [], False
    for line in plan:
        m = SCAN.search(line)
        if m:
            kind, index, table = m.groups()
            scans.append(f"{kind} {index + ' ' if index else ''}on {table}")
            if "Seq Scan" in kind and table in BIG_TABLES:
                bad = True
    buffers = next((re.sub(r"\s+", " ", ln.strip()) for ln in plan
                    if ln.strip().startswith("Buffers:")), "")
    executed = next((ln.strip() for ln in plan if ln.startswith("Execution Time")), "")
    return f"{'; '.join(dict.fromkeys(scans)) or '(no table read)'} | {buffers} | {executed}", bad


# --- out --------------------------------------------------------------------------------------

def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def print_subjects(sides: list[Side], depth: int) -> None:
    print("\nsubjects")
    for side in sides:
        s = side.subjects
        print(f"  {side.label:<5} {side.url}")
        print(f"        leaderboard community id {s.board_cid}; stats/wishes community id "
              f"{s.stats_cid}, board {s.board_id}, organiser {s.organiser_id}, month "
              f"{s.month[0]}…{s.month[1]}")
        print(f"        ledger: user {s.user_id} in community {s.user_cid}, "
              f"{s.entries:,} entries; deep page after entry {s.after} (the {depth}th newest)")


def print_timings(sides: list[Side], names: list[str], n: int) -> bool:
    small, big = sides
    ok = True
    print(f"\ntimings, {n} runs each, alternating the databases (ms; call = the app's function, "
          "sql = its SELECTs re-sent)")
    print(f"{'query':<22}{'stmts':>6}  {'small med':>9} {'p95':>7}  {'full med':>9} {'p95':>7}  "
          f"{'ratio':>5}       {'sql small':>9} {'sql full':>9} {'ratio':>6}")
    for name in names:
        sm, bg = statistics.median(small.calls[name]), statistics.median(big.calls[name])
        qs, qb = statistics.median(small.sql[name]), statistics.median(big.sql[name])
        ratio, sql_ratio = bg / sm, qb / qs if qs else float("nan")
        passed = ratio <= TARGET
        ok &= passed
        counts = f"{len(small.statements[name])}/{len(big.statements[name])}"
        print(f"{name:<22}{counts:>6}  {sm:>9.2f} {p95(small.calls[name]):>7.2f}  {bg:>9.2f} "
              f"{p95(big.calls[name]):>7.2f}  {ratio:>5.2f} {'PASS' if passed else 'FAIL'}  "
              f"{qs:>9.2f} {qb:>9.2f} {sql_ratio:>6.2f} "
              f"{'PASS' if sql_ratio <= TARGET else 'FAIL'}")
    return ok


def print_plans(sides: list[Side], names: list[str], full: bool) -> bool:
    ok = True
    how = ("EXPLAIN (ANALYZE, BUFFERS)" if sides[0].backend == "postgresql"
           else "EXPLAIN QUERY PLAN")
    print(f"\nplans ({how}; FAIL: a sequential scan of {', '.join(BIG_TABLES)})")
    for name in names:
        print(f"\n== {name}")
        for side in sides:
            for i, (statement, parameters) in enumerate(selects(side.statements[name]), 1):
                plan = explain(side, statement, parameters)
                line, bad = summarise(side.backend, plan)
                ok &= not bad
                print(f"  {side.label:<5} #{i} {'FAIL' if bad else 'ok  '} {line}")
                if full and side.label == "full":
                    sql = re.sub(r"\s+", " ", statement)
                    print(f"        SQL: {sql[:600]}{' …' if len(sql) > 600 else ''}")
                    print(f"        params: {parameters}")
                    print("\n".join(f"        {row}" for row in plan))
    return ok


def open_side(label: str, url: str, board_code: str, stats_code: str) -> Side:
    from app import create_app

    app = create_app(app_config(url))
    return Side(label, url, app, find_subjects(app, board_code, stats_code),
                make_url(url).get_backend_name())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", default=DEFAULT_BIG, help=f"the full database ({DEFAULT_BIG})")
    parser.add_argument("--small", default=DEFAULT_SMALL,
                        help=f"the 1 k database ({DEFAULT_SMALL})")
    parser.add_argument("-n", type=int, default=50, help="timed runs of each query (50)")
    parser.add_argument("--leaderboard-community", default="scale001",
                        help="code of the leaderboard's community (scale001)")
    parser.add_argument("--community", default="scale002",
                        help="code of the community of the wish list and stats (scale002)")
    parser.add_argument("--depth", type=int, default=None,
                        help="the deep page starts below this many entries (default: half the "
                             "smaller of the two ledgers, at most 400)")
    parser.add_argument("--only", action="append", default=None,
                        help="measure only the queries whose name contains this (repeatable)")
    parser.add_argument("--brief", action="store_true",
                        help="plans as one line each, without the full EXPLAIN text")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sides = [open_side("small", args.small, args.leaderboard_community, args.community),
             open_side("full", args.big, args.leaderboard_community, args.community)]
    if sides[0].backend != sides[1].backend:
        raise SystemExit("compare two databases of the same kind")
    depth = args.depth or min(400, min(s.subjects.entries for s in sides) // 2)
    for side in sides:
        side.subjects.after = keyset_at(side.app, side.subjects.account_id, depth)
    print_subjects(sides, depth)
    names = measure(sides, args.n, args.only)
    timings_ok = print_timings(sides, names, args.n)
    plans_ok = print_plans(sides, names, full=not args.brief)
    print(f"\nratio full ÷ small ≤ {TARGET}: {'PASS' if timings_ok else 'FAIL'}; "
          f"no sequential scan of a big table: {'PASS' if plans_ok else 'FAIL'}")
    return 0 if timings_ok and plans_ok else 1


if __name__ == "__main__":
    sys.exit(main())
