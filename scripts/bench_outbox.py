#!/usr/bin/env python
"""Time webhook delivery: N outbox events through one `flask outbox run` worker, then two.

    .venv/bin/python scripts/bench_outbox.py                      # PostgreSQL `bench_outbox`, 2 000
    .venv/bin/python scripts/bench_outbox.py --events 5000 --workers 1,2,4
    .venv/bin/python scripts/bench_outbox.py --sqlite              # /tmp/bench_outbox.sqlite3

It WIPES the database (PostgreSQL: DROP SCHEMA public CASCADE, creating the database if it is
missing; SQLite: deletes the file), builds the schema with the real migrations, and makes a
community with one json webhook (signed) pointing at a fast local receiver (127.0.0.1, a thread
of this process, allowlisted for the workers). For each worker count it seeds N events through
`outbox.emit` (so each has its delivery row), starts that many `flask outbox run --once`
processes at the same moment, and waits for them to exit. It prints, per worker count:

    wall      from starting the processes to the last one exiting (includes Python start-up)
    window    from the receiver's first request to its last (the delivering itself)
    ev/s      N / window

and checks every event arrived exactly once and every delivery row is `delivered`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_outbox"
SQLITE_URL = "sqlite:////tmp/bench_outbox.sqlite3"
SECRET = "bench-secret-" + "b" * 40
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
PROTECTED = re.compile(r"^(test.*|postgres|template\d*)$", re.IGNORECASE)


def check_target(url_text: str, wipe: bool) -> sa.URL:
    """Refuse databases that must not be wiped."""
    url = make_url(url_text)
    backend = url.get_backend_name()
    if backend == "postgresql":
        name = url.database or ""
        if url.host not in LOCAL_HOSTS:
            sys.exit(f"refusing: {url.host!r} is not a local PostgreSQL (127.0.0.1 only)")
        if PROTECTED.match(name):
            sys.exit(f"refusing: database {name!r} is protected (test*, postgres, template*)")
        if "bench" not in name.lower() and not wipe:
            sys.exit(f"refusing: {name!r} does not look like a benchmark database; pass --wipe")
    elif backend == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:":
            sys.exit("give an SQLite file, e.g. sqlite:////tmp/bench_outbox.sqlite3")
        if "bench" not in Path(path).name.lower() and not wipe:
            sys.exit(f"refusing: {path} does not look like a benchmark file; pass --wipe")
    else:
        sys.exit(f"unsupported database {backend!r}")
    return url


def fresh_schema(url: sa.URL) -> None:
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
    else:
        admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                               {"n": url.database}):
                conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
        admin.dispose()
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()


def app_for(url_text: str):
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url_text, "SECRET_KEY": SECRET,
                       "JWT_SECRET_KEY": SECRET})


class Receiver:
    """Answers 204 at once and counts the event ids it was sent."""

    def __init__(self):
        self.seen: Counter = Counter()
        self.first = self.last = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.monotonic()
                with receiver.lock:
                    receiver.seen[self.headers.get("X-Xinyuan-Event-Id")] += 1
                    receiver.first = receiver.first or now
                    receiver.last = now
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.seen.clear()
            self.first = self.last = None


def seed(app, community_id: int, events: int) -> set[str]:
    from app.db import write_transaction
    from app.extensions import db
    from app.notifications import outbox
    from app.notifications.models import Delivery, Event

    data = {"title": "楼道灯坏了", "board": "远创樾府3栋", "category": "维修", "level": 2}
    with app.app_context():
        with write_transaction(db.session) as session:
            session.execute(sa.delete(Delivery))
            session.execute(sa.delete(Event))
        with write_transaction(db.session):
            ids = {str(outbox.emit("wish.posted", community_id, subject=("wish", n),
                                   data=data).id) for n in range(events)}
        db.session.remove()
    return ids


def setup(app, receiver_port: int) -> int:
    from app.communities.models import Community
    from app.db import write_transaction
    from app.extensions import db
    from app.notifications.models import Webhook

    with app.app_context():
        with write_transaction(db.session) as session:
            community = Community(name="远创樾府", code="bench", street="", district="")
            session.add(community)
            session.flush()
            session.add(Webhook(community_id=community.id, name="bench", format="json",
                                url=f"http://127.0.0.1:{receiver_port}/hook", secret=SECRET,
                                events=["wish.posted"]))
            session.flush()
            community_id = community.id
        db.session.remove()
    return community_id


def delivered(app) -> tuple[int, int]:
    from app.extensions import db
    from app.notifications.models import Delivery

    with app.app_context():
        counts = dict(db.session.execute(sa.select(Delivery.status, sa.func.count())
                                         .group_by(Delivery.status)).all())
        db.session.remove()
    return counts.get("delivered", 0), sum(counts.values())


def run_workers(url_text: str, count: int, batch: int) -> tuple[float, list[str]]:
    environment = {**os.environ, "XINYUAN_ENV": "production", "DATABASE_URL": url_text,
                   "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET,
                   "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32"}
    started = time.monotonic()
    processes = [subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "outbox", "run", "--once",
         "--batch", str(batch)], cwd=ROOT, env=environment, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE) for _ in range(count)]
    outputs = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode != 0:
            sys.exit(f"a worker failed:\n{err.decode()[-3000:]}")
        outputs.append(out.decode().strip())
    return time.monotonic() - started, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None,
                        help=f"default {DEFAULT_URL}; --sqlite for {SQLITE_URL}")
    parser.add_argument("--sqlite", action="store_true", help=f"use {SQLITE_URL}")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--workers", default="1,2", help="worker counts to time, e.g. 1,2,4")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--wipe", action="store_true",
                        help="allow wiping a database whose name lacks 'bench'")
    args = parser.parse_args()
    url_text = args.database_url or (SQLITE_URL if args.sqlite else DEFAULT_URL)
    url = check_target(url_text, args.wipe)
    print(f"database: {url.render_as_string(hide_password=True)}  events: {args.events}  "
          f"batch: {args.batch}")

    fresh_schema(url)
    app = app_for(url_text)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
    receiver = Receiver()
    community_id = setup(app, receiver.port)

    print(f"{'workers':>7} {'wall s':>8} {'window s':>9} {'ev/s':>8}  per worker")
    for count in [int(n) for n in args.workers.split(",")]:
        expected = seed(app, community_id, args.events)
        receiver.reset()
        wall, outputs = run_workers(url_text, count, args.batch)
        done, total = delivered(app)
        missing = expected - set(receiver.seen)
        duplicates = sum(n - 1 for n in receiver.seen.values() if n > 1)
        if missing or duplicates or done != total:
            sys.exit(f"wrong: {len(missing)} missing, {duplicates} duplicates, "
                     f"{done}/{total} delivered")
        window = (receiver.last - receiver.first) if receiver.first else float("nan")
        share = " | ".join(re.sub(r" (retrying|failed|held)=0", "", o) for o in outputs)
        print(f"{count:>7} {wall:>8.2f} {window:>9.2f} {args.events / window:>8.0f}  {share}")


if __name__ == "__main__":
    main()
