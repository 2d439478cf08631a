#!/usr/bin/env python
"""CPU per request of the hot reads, in-process (the Flask test client, no server, no wrk).

    .venv/bin/python scripts/bench_inprocess.py --database-url sqlite:////tmp/bench_demo.sqlite3
    TREE=/tmp/old .venv/bin/python scripts/bench_inprocess.py …   # another checkout's app, same data

It builds the schema and the demo community with two weeks of history (`flask db upgrade`,
`flask seed demo --weeks 2`) when the database has none, logs in as the demo volunteer, and
times each request `-n` times after a warm-up: wall and process CPU per request. `TREE` names
another checkout whose `app` package to measure (e.g. `git worktree add /tmp/old <commit>`),
so two versions can be timed back to back on the same data; the CPU figure is the steadier one
on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("TREE") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

ENDPOINTS = ("points", "ledger", "leaderboard", "readyz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/bench_demo.sqlite3")
    parser.add_argument("-n", type=int, default=400, help="timed requests of each (400)")
    parser.add_argument("--only", default=",".join(ENDPOINTS))
    args = parser.parse_args()

    import sqlalchemy as sa
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "RATELIMIT_ENABLED": False})
    with app.app_context():
        if not sa.inspect(db.engine).has_table("communities"):
            upgrade()  # (an older TREE measures a database this checkout built, as it is)
        seeded = db.session.scalar(sa.text("SELECT count(*) FROM communities"))
        db.session.remove()
    if not seeded:
        result = app.test_cli_runner().invoke(args=["seed", "demo", "--weeks", "2"])
        assert result.exit_code == 0, result.output
    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={
        "phone": "13800000011", "password": app.config["DEMO_PASSWORD"]})
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    with app.app_context():
        cid = db.session.scalar(sa.text("SELECT min(id) FROM communities"))
        db.session.remove()
    paths = {"points": f"/api/v1/me/points?community_id={cid}",
             "ledger": f"/api/v1/me/ledger?community_id={cid}",
             "leaderboard": f"/api/v1/communities/{cid}/leaderboard?period=week",
             "readyz": "/readyz"}
    print(f"app from {ROOT}, {args.database_url}, {args.n} requests each")
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        path = paths[name]
        for _ in range(30):
            assert client.get(path, headers=headers).status_code == 200, name
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.n):
            client.get(path, headers=headers)
        print(f"{name:12} {1000 * (time.perf_counter() - wall) / args.n:6.2f} ms wall "
              f"{1000 * (time.process_time() - cpu) / args.n:6.2f} ms CPU per request")


if __name__ == "__main__":
    main()
