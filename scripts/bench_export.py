#!/usr/bin/env python
"""Stream a ledger CSV of a million rows and watch the worker's memory.

    .venv/bin/python scripts/seed_scale.py --ledger-rows 1000000   # bench_big, scale001 ≥ 1M
    .venv/bin/python scripts/bench_export.py                       # the whole history of scale001
    .venv/bin/python scripts/bench_export.py --from 2026-06-01 --to 2026-06-30

It starts gunicorn with ONE sync worker on the database (so the worker measured is the one that
serves), mints an organiser of the community a token, makes one small request (a one-day export,
so the export code is imported and warm) and samples the worker's resident set size (psutil) at
rest: the idle RSS. It then streams

    GET /api/v1/communities/{cid}/exports/ledger.csv?from=&to=

reading it in 64 KiB pieces while a thread samples the worker's RSS every 20 ms, and prints the
rows, seconds, rows/s, idle RSS, peak RSS and peak − idle, PASS when that is within 50 MB
(issue 10: the export is streamed from a server-side cursor, constant memory whatever the row
count). It also checks the file: UTF-8 BOM, chunked transfer encoding, and a row count equal to
the community's ledger entries in the range (Asia/Shanghai days, both included). Read-only but
for the audit-log row and a refresh-token row.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import threading
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stats import BIG, Server, app_for, mint_token, organiser_of

LIMIT_MB = 50
MB = 1024 * 1024


class Sampler(threading.Thread):
    """The peak RSS of one process, sampled every `every` seconds until stopped."""

    def __init__(self, pid: int, every: float = 0.02):
        import psutil

        super().__init__(daemon=True)
        self.process, self.every = psutil.Process(pid), every
        self.peak = self.process.memory_info().rss
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.samples += 1
            time.sleep(self.every)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def ledger_counts(app, cid: int, first: date, last: date) -> tuple[int, int, date, date]:
    """(entries, transfers) of the community in [first, last], and its first and last day."""
    from app.extensions import db
    from app.ledger.models import Entry, Transfer
    from app.localtime import local_date
    from app.stats.service import utc_range

    with app.app_context():
        low, high = utc_range(first, last)
        entries = db.session.scalar(sa.select(sa.func.count()).select_from(Entry).where(
            Entry.community_id == cid, Entry.created_at >= low, Entry.created_at < high))
        transfers = db.session.scalar(sa.select(sa.func.count()).select_from(Transfer).where(
            Transfer.community_id == cid, Transfer.created_at >= low, Transfer.created_at < high))
        oldest, newest = db.session.execute(sa.select(
            sa.func.min(Entry.created_at), sa.func.max(Entry.created_at))
            .where(Entry.community_id == cid)).one()
        db.session.remove()
    return entries, transfers, local_date(oldest), local_date(newest)


def fetch(http, url: str, sampler: Sampler | None = None) -> dict:
    """Stream `url`, counting lines; the header row, bytes, seconds and transfer encoding."""
    started = time.perf_counter()
    with http.get(url, stream=True, timeout=(10, 600)) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:500]}")
        if sampler:
            sampler.start()
        size = lines = 0
        head = b""
        for piece in response.iter_content(64 * 1024):
            size += len(piece)
            lines += piece.count(b"\n")
            if len(head) < 4096:
                head += piece[:4096]
        seconds = time.perf_counter() - started
        peak = sampler.stop() if sampler else None
        tail_newline = head.endswith(b"\n") if size <= 4096 else True
    text = head.decode("utf-8", errors="replace")
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    return {"rows": lines - 1 + (0 if tail_newline else 1), "bytes": size, "seconds": seconds,
            "bom": head.startswith(b"\xef\xbb\xbf"), "header": header, "peak": peak,
            "chunked": response.headers.get("Transfer-Encoding", "") == "chunked",
            "type": response.headers.get("Content-Type", "")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=BIG, help=f"database (default {BIG})")
    parser.add_argument("--community", default="scale001",
                        help="community code (default scale001, the 1M-entry one)")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, default=None,
                        help="first day, YYYY-MM-DD (default: the ledger's first day)")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, default=None,
                        help="last day, YYYY-MM-DD (default: the ledger's last day)")
    parser.add_argument("--timeout", type=int, default=None,
                        help="gunicorn --timeout for the one sync worker (default: what "
                             "gunicorn.conf.py sets, as in production)")
    parser.add_argument("--logdir", type=Path, default=Path("/tmp"),
                        help="where the gunicorn log goes (/tmp)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import psutil
    import requests

    args = parse_args(argv)
    app = app_for(args.database_url)
    cid, organiser = organiser_of(app, args.community)
    _e, _t, oldest, newest = ledger_counts(app, cid, date(2000, 1, 1), date(2000, 1, 1))
    first, last = args.first or oldest, args.last or newest
    entries, transfers, _o, _n = ledger_counts(app, cid, first, last)
    token = mint_token(app, organiser)
    path = f"/api/v1/communities/{cid}/exports/ledger.csv"
    print(f"GET {path}?from={first}&to={last} — community {args.community}: {entries:,} ledger "
          f"entries ({transfers:,} transfers) in range; gunicorn 1 sync worker, "
          f"--timeout {args.timeout or 'from gunicorn.conf.py'}", flush=True)

    extra = ("--timeout", str(args.timeout)) if args.timeout else ()
    server = Server(args.database_url, 1, args.logdir / "bench-export.log", *extra)
    try:
        (worker,) = server.worker_pids()
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {token}"
            small = fetch(http, f"{server.base}{path}?from={last}&to={last}")
            time.sleep(1.0)
            idle = psutil.Process(worker).memory_info().rss
            sampler = Sampler(worker)
            try:
                big = fetch(http, f"{server.base}{path}?from={first}&to={last}", sampler)
            except requests.RequestException as error:  # a cut stream: never a short 200
                sampler.done.set()
                print(f"FAIL  the stream was cut: {type(error).__name__}: {error} (see "
                      f"{server.log}; a sync worker is killed after --timeout)", flush=True)
                return 1
            after = psutil.Process(worker).memory_info().rss
    finally:
        server.stop()

    growth = big["peak"] - idle
    print(f"warm-up (one day, {last}): {small['rows']:,} rows; header {small['header']}")
    print(f"rows {big['rows']:,}  seconds {big['seconds']:.1f}  rows/s "
          f"{big['rows'] / big['seconds']:,.0f}  bytes {big['bytes'] / MB:,.1f} MB")
    print(f"idle RSS {idle / MB:.1f} MB  peak RSS {big['peak'] / MB:.1f} MB  "
          f"peak − idle {growth / MB:.1f} MB  (after: {after / MB:.1f} MB)")
    checks = {
        f"peak − idle ≤ {LIMIT_MB} MB": growth <= LIMIT_MB * MB,
        f"rows = ledger entries in range ({entries:,})": big["rows"] == entries,
        "UTF-8 BOM": big["bom"],
        "chunked transfer encoding": big["chunked"],
        "text/csv": big["type"].startswith("text/csv"),
    }
    if big["rows"] == transfers and transfers != entries:
        print(f"  note: the rows equal the transfers in range ({transfers:,}), not the entries")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    verdict = all(checks.values())
    print("PASS" if verdict else "FAIL", flush=True)
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
