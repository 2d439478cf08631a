"""Races through real gunicorn worker processes (SQLite in WAL mode, or PostgreSQL with
TEST_DATABASE_URL): volunteers racing for one wish, confirm racing `flask wishes tick` (run as
separate processes), and one volunteer claiming many wishes at once against the claim cap."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from app.db import utcnow
from tests.helpers import fire, reading
from tests.wish_helpers import (
    API,
    LIVE_TIMEOUT,
    Kit,
    assert_server_healthy,
    award_transfers,
    error_slug,
    set_wish_columns,
)

pytestmark = pytest.mark.live
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def claim_events(app, wid: int) -> list[int]:
    from app.wishes.models import WishEvent

    with reading(app) as session:
        return list(session.scalars(sa.select(WishEvent.actor_id).where(
            WishEvent.wish_id == wid, WishEvent.action == "claim")))


def test_volunteers_racing_for_one_wish_exactly_one_wins(kit, app, factory, live_server):
    volunteers = [factory.member(kit.community, factory.user(f"志愿者{n}"), "volunteer")
                  for n in range(10)]
    kit.settings(max_active_claims=50)
    wishes = [kit.make("open") for _ in range(10)]
    headers = [kit.h(v) for v in volunteers]
    server = live_server(workers=4)
    winners = []
    for round_no, wid in enumerate(wishes):
        racers = 2 if round_no < 3 else 10  # two volunteers, then ten

        def claim(i, wid=wid):
            return requests.post(f"{server.url}{API}/wishes/{wid}/claim", json={},
                                 headers=headers[i], timeout=LIVE_TIMEOUT)

        results = fire(racers, claim)
        statuses = Counter(r.status_code for r in results)
        assert statuses == {200: 1, 409: racers - 1}, [(r.status_code, r.text) for r in results]
        assert {error_slug(r) for r in results if r.status_code == 409} <= {"invalid_transition"}
        (won,) = [i for i, r in enumerate(results) if r.status_code == 200]
        body = results[won].json()
        assert body["status"] == "claimed" and body["claimer_id"] == volunteers[won].id
        wish = kit.wish(wid)
        assert wish["claimer_id"] == volunteers[won].id
        assert claim_events(app, wid) == [volunteers[won].id]  # one claim on the timeline
        winners.append(won)
    print(f"\nclaim races: winners by racer index {Counter(winners)}")
    assert_server_healthy(server)


def tick_process(database_url: str) -> subprocess.Popen:
    from tests.conftest import TEST_SECRET

    env = {**os.environ, "XINYUAN_ENV": "testing", "DATABASE_URL": database_url,
           "SECRET_KEY": TEST_SECRET, "JWT_SECRET_KEY": TEST_SECRET}
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "wishes", "tick"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@contextmanager
def holding_the_wishes(database_url: str, wishes: list[int]):
    """Hold the lock the tick and a confirm both need (SQLite: the database's write lock;
    PostgreSQL: the wishes' rows) so both sides queue on it and are let go at the same moment."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"),
                                     isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield lambda: 0  # SQLite cannot tell who waits; see idle() below
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            connection.execute(sa.text("SELECT id FROM wishes WHERE id = ANY(:ids) FOR UPDATE"),
                               {"ids": wishes})

            def waiting() -> int:
                with engine.connect() as probe:
                    return probe.scalar(sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"))
            try:
                yield waiting
            finally:
                transaction.rollback()
    finally:
        engine.dispose()


def idle(pid: int, polls: int = 4) -> bool:
    """True when a process sat asleep using no CPU over the next few tenths of a second: it is
    waiting (for the lock), not starting up or merely short of a CPU."""
    def sample() -> tuple[str, int] | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return fields[0], int(fields[11]) + int(fields[12])  # state, utime + stime

    first = sample()
    if first is None or first[0] != "S":
        return False
    for _ in range(polls):
        time.sleep(0.1)
        if sample() != first:
            return False
    return True


def test_confirm_racing_the_tick_awards_once(kit, app, database_url, live_server):
    count = 20
    table = kit.ok(kit.get(f"/communities/{kit.cid}/points-rules", kit.organiser))
    table["daily_earn_cap"] = None  # so every award is whole, whoever posts it
    kit.ok(kit.client.put(f"{API}/communities/{kit.cid}/points-rules", json=table,
                          headers=kit.h(kit.organiser)))
    kit.settings(max_active_claims=count, auto_confirm_rating=5)
    wishes = [kit.make("fulfilled", level=3) for _ in range(count)]
    for wid in wishes:
        set_wish_columns(app, wid, fulfilled_at=utcnow() - timedelta(days=8))
    server = live_server(workers=4)
    owner, organiser = kit.h(kit.resident), kit.h(kit.organiser)
    # Per wish: the resident confirms 4★ and an organiser 3★ for them, while two overlapping
    # ticks auto-confirm at 5★ — all queued behind one lock, then let go together. The ticks
    # walk the wishes oldest first and the confirms newest first, so the two meet in between.
    jobs = [job for wid in reversed(wishes) for job in ((wid, owner, 4), (wid, organiser, 3))]

    def confirm(i):
        wid, headers, rating = jobs[i]
        return requests.post(f"{server.url}{API}/wishes/{wid}/confirm",
                             json={"rating": rating}, headers=headers, timeout=LIVE_TIMEOUT)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        with holding_the_wishes(database_url, wishes) as waiting:
            ticks = [tick_process(database_url) for _ in range(2)]
            pending = [pool.submit(confirm, i) for i in range(len(jobs))]
            # Let the ticks start up (import, read what is due) and queue on the lock.
            started, deadline = time.monotonic(), time.monotonic() + 15
            while time.monotonic() < deadline and any(t.poll() is None for t in ticks):
                if waiting() >= 6:  # PostgreSQL: both ticks and all four workers wait
                    break
                if time.monotonic() - started > 1 and all(idle(t.pid) for t in ticks):
                    break
            queued = waiting()
        results = [f.result() for f in pending]
    outputs = [t.communicate(timeout=120)[0].decode() for t in ticks]
    assert [t.returncode for t in ticks] == [0, 0], outputs
    assert all("Traceback" not in o for o in outputs), outputs

    assert {r.status_code for r in results} <= {200, 409}, [r.text for r in results]
    assert {error_slug(r) for r in results if r.status_code == 409} <= {"invalid_transition"}
    confirmed = Counter(jobs[i][0] for i, r in enumerate(results) if r.status_code == 200)
    assert all(n == 1 for n in confirmed.values())

    level3 = kit.rule_points(3)
    by_tick = 0
    for wid in wishes:
        wish = kit.wish(wid)
        assert wish["status"] == "closed"
        closes = [e for e in wish["timeline"] if e["to_status"] == "closed"]
        assert len(closes) == 1, wish["timeline"]
        transfers = award_transfers(app, wid)
        assert len(transfers) == 1, transfers
        assert transfers[0]["amount"] == wish["points_awarded"] == level3 * kit.factor(
            wish["rating"]) // 100
        if closes[0]["action"] == "auto_confirm":
            by_tick += 1
            assert wid not in confirmed and wish["rating"] == 5
        else:
            assert confirmed[wid] == 1 and wish["rating"] in (3, 4)
    balance = kit.points(kit.volunteer)["balance"]
    assert balance == sum(t["amount"] for w in wishes for t in award_transfers(app, w))

    from app.extensions import db
    from app.ledger.verify import verify

    with app.app_context():
        reports = verify()
        db.session.remove()
    assert reports and all(r.ok for r in reports), [r.violations for r in reports]
    print(f"\nconfirm vs tick: {by_tick} auto-confirmed by the ticks, {count - by_tick} "
          f"confirmed over HTTP ({sum(confirmed.values())} of {len(jobs)} confirms won); "
          f"lock waiters seen {queued}; ticks said {[o.split()[1] for o in outputs]}")
    assert_server_healthy(server)


def test_one_volunteer_claiming_ten_wishes_at_once_gets_exactly_the_cap(kit, app, live_server):
    kit.settings(max_active_claims=3)
    wishes = [kit.make("open") for _ in range(10)]
    headers = kit.h(kit.volunteer)
    server = live_server(workers=4)

    def claim(i):
        return requests.post(f"{server.url}{API}/wishes/{wishes[i]}/claim", json={},
                             headers=headers, timeout=LIVE_TIMEOUT)

    results = fire(10, claim)
    statuses = Counter(r.status_code for r in results)
    assert statuses == {200: 3, 409: 7}, [(r.status_code, r.text) for r in results]
    assert {error_slug(r) for r in results if r.status_code == 409} == {"claim_limit_reached"}
    held = kit.ok(kit.get("/wishes?claimed_by_me=true&status=claimed", kit.volunteer))
    assert sorted(w["id"] for w in held["items"]) == sorted(
        wishes[i] for i, r in enumerate(results) if r.status_code == 200)
    for i, r in enumerate(results):
        if r.status_code == 409:
            assert kit.wish(wishes[i])["status"] == "open"
            assert claim_events(app, wishes[i]) == []
    assert_server_healthy(server)
