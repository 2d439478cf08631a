"""The ledger under real concurrency (issue 3): gunicorn worker processes and spawned processes.

Runs on SQLite (WAL, BEGIN IMMEDIATE) and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from app.audit import AuditEvent
from app.db import write_transaction
from app.extensions import db
from app.ledger import service
from app.ledger.models import Account, Entry, PointsPolicy, Transfer
from app.localtime import SHANGHAI
from tests.conftest import base_config
from tests.helpers import reading
from tests.ledger_helpers import API, adjust, assert_verified, ledger_rows, ledger_worker, user_balance

pytestmark = pytest.mark.live
THREADS = 32
DAILY_CAP = 25


def post_all(url: str, headers: dict, bodies: list[dict]) -> tuple[list, float]:
    """POST every body at once from a pool of threads; (status, json) of each, and seconds."""
    session_headers = {**headers, "Content-Type": "application/json"}

    def one(body):
        response = requests.post(url, json=body, headers=session_headers, timeout=60)
        return response.status_code, response.json()

    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(one, bodies))
    return answers, time.monotonic() - started


def test_200_simultaneous_debits_against_10_points(live_server, world, factory, client, app,
                                                   database_kind):
    cid, uid = world.community.id, world.volunteer.id
    org = factory.headers(world.organiser)
    assert adjust(client, org, cid, uid, 10, "初始积分").status_code == 201
    server = live_server(workers=4)
    url = f"{server.url}{API}/communities/{cid}/adjustments"
    body = {"user_id": uid, "amount": -1, "reason": "并发扣减"}

    answers, seconds = post_all(url, org, [body] * 200)

    statuses = Counter(status for status, _ in answers)
    print(f"\n[{database_kind}] 200 debits of 1 against 10: {dict(statuses)} in {seconds:.2f}s")
    assert statuses == {201: 10, 409: 190}, answers[:5]
    refusals = {payload["error"] for status, payload in answers if status == 409}
    assert refusals == {"insufficient_points"}
    # Each success saw its own balance: 9, 8, ... 0, never the same twice.
    assert sorted(p["balance_after"] for s, p in answers if s == 201) == list(range(10))
    assert user_balance(app, cid, uid) == 0
    with reading(app):
        account = db.session.execute(
            sa.select(Account.id, Account.entry_count, Account.earned_total)
            .where(Account.community_id == cid, Account.key == f"user:{uid}")).one()
        entries = db.session.scalar(sa.select(sa.func.count()).select_from(Entry)
                                    .where(Entry.account_id == account.id))
        transfers = db.session.scalar(sa.select(sa.func.count()).select_from(Transfer)
                                      .where(Transfer.community_id == cid))
        audits = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == "points.adjusted"))
    assert (entries, transfers, audits, account.entry_count) == (11, 11, 11, 11)
    assert account.earned_total == 0
    assert_verified(app)
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output


def test_50_simultaneous_adjustments_with_one_key_post_once(live_server, world, factory, app,
                                                            database_kind):
    """Then, on the same server, credits and debits racing on another account."""
    cid, uid = world.community.id, world.resident.id  # no account yet: created in the race
    org = factory.headers(world.organiser)
    server = live_server(workers=4)
    url = f"{server.url}{API}/communities/{cid}/adjustments"
    body = {"user_id": uid, "amount": 5, "reason": "周末清扫"}

    answers, seconds = post_all(url, {**org, "Idempotency-Key": "bulk-2025-w11"}, [body] * 50)

    statuses = Counter(status for status, _ in answers)
    print(f"\n[{database_kind}] 50 adjustments with one key: {dict(statuses)} in {seconds:.2f}s")
    assert set(statuses) <= {200, 201}, answers[:5]
    assert len({payload["id"] for _, payload in answers}) == 1
    assert [payload["replayed"] for _, payload in answers].count(False) == 1
    assert {(p["amount"], p["balance_after"]) for _, p in answers} == {(5, 5)}
    with reading(app):
        keys = db.session.scalars(sa.select(Transfer.key).where(Transfer.community_id == cid)).all()
        accounts = db.session.scalar(sa.select(sa.func.count()).select_from(Account)
                                     .where(Account.key == f"user:{uid}"))
        audits = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    assert len(keys) == 1 and keys[0].endswith("bulk-2025-w11")
    assert (accounts, audits) == (1, 1)
    assert user_balance(app, cid, uid) == 5
    assert_verified(app)

    # 60 credits of +1 and 60 debits of -1, interleaved, against the volunteer's empty account.
    vid = world.volunteer.id
    bodies = [{"user_id": vid, "amount": 1 if n % 2 else -1, "reason": f"第{n}次"}
              for n in range(120)]
    before = ledger_rows(app)["transfers"]

    answers, seconds = post_all(url, org, bodies)

    credits = [(s, p) for (s, p), b in zip(answers, bodies, strict=True) if b["amount"] == 1]
    debits = [(s, p) for (s, p), b in zip(answers, bodies, strict=True) if b["amount"] == -1]
    print(f"[{database_kind}] racing credits {dict(Counter(s for s, _ in credits))}, debits "
          f"{dict(Counter(s for s, _ in debits))} in {seconds:.2f}s")
    assert {s for s, _ in credits} == {201}
    assert {s for s, _ in debits} <= {201, 409}
    assert {p["error"] for s, p in debits if s == 409} <= {"insufficient_points"}
    succeeded = sum(1 for s, _ in debits if s == 201)
    assert user_balance(app, cid, vid) == 60 - succeeded
    assert ledger_rows(app)["transfers"] == before + 60 + succeeded
    assert all(p["balance_after"] >= 0 for s, p in answers if s == 201)
    assert_verified(app)


def test_processes_posting_at_once_keep_every_invariant(app, world, database_url,
                                                        database_kind):
    """Four spawned processes, each with its own app on this database, post in loops: awards
    under a small daily cap, adjustments, redemptions and (repeated) refunds."""
    cid = world.community.id
    users = [world.volunteer.id, world.resident.id, world.organiser.id]
    with app.app_context(), write_transaction(db.session):
        service.setup_community(cid)
        db.session.get(PointsPolicy, cid).daily_earn_cap = DAILY_CAP
    config = base_config(database_url)
    context = multiprocessing.get_context("spawn")
    started = time.monotonic()
    with context.Pool(4) as pool:
        outcomes = pool.starmap(ledger_worker, [
            (database_url, config, cid, users, world.organiser.id, worker, 60, 1000 + worker)
            for worker in range(4)])
    seconds = time.monotonic() - started
    totals = Counter()
    for outcome in outcomes:
        totals.update({k: outcome[k] for k in ("created", "replayed", "insufficient", "capped")})
    print(f"\n[{database_kind}] 4 processes × 60 operations: {dict(totals)} in {seconds:.2f}s")
    assert [o["errors"] for o in outcomes] == [[]] * 4
    assert totals["created"] > 0
    expected = Counter()
    for outcome in outcomes:
        expected.update(outcome["net"])
    for uid in users:
        assert user_balance(app, cid, uid) == expected[uid], uid
    assert ledger_rows(app)["transfers"] == totals["created"]
    assert_verified(app)
    # The cap held under the race: no one earned more than it on any day in Shanghai.
    with reading(app):
        earned = db.session.execute(
            sa.select(Account.user_id, Transfer.amount, Transfer.requested_amount,
                      Transfer.created_at)
            .join(Account, Account.id == Transfer.destination_id)
            .where(Transfer.community_id == cid, Transfer.kind == "earn_report")).all()
    per_day = Counter()
    for uid, amount, _requested, created_at in earned:
        per_day[uid, created_at.astimezone(SHANGHAI).date()] += amount
    assert per_day and max(per_day.values()) <= DAILY_CAP, per_day
    assert totals["capped"] == sum(requested - amount for _, amount, requested, _ in earned)
    assert totals["capped"] > 0
