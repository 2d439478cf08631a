"""Helpers shared by the points-ledger tests (issue 3). Not a test module.

The multiprocessing worker lives here (not in a test module) so a 'spawn' child can import it.
"""

from __future__ import annotations

import random
from datetime import datetime

import sqlalchemy as sa

from tests.helpers import reading

API = "/api/v1"


# --- responses ----------------------------------------------------------------------------

# --- database state -----------------------------------------------------------------------

def ledger_rows(app) -> dict:
    """Counts and balances that a refused request must leave exactly as they were."""
    from app.audit import AuditEvent
    from app.extensions import db
    from app.ledger.models import Account, Entry, LeaderboardSnapshot, Transfer

    with reading(app):
        def count(model):
            return db.session.scalar(sa.select(sa.func.count()).select_from(model))

        return {
            "transfers": count(Transfer),
            "entries": count(Entry),
            "audit_events": count(AuditEvent),
            "snapshots": count(LeaderboardSnapshot),
            "balances": sorted(db.session.execute(
                sa.select(Account.id, Account.balance, Account.earned_total,
                          Account.redeemed_total, Account.entry_count)).all()),
        }


def user_balance(app, community_id: int, user_id: int) -> int | None:
    from app.extensions import db
    from app.ledger.models import Account

    with reading(app):
        return db.session.scalar(sa.select(Account.balance).where(
            Account.community_id == community_id, Account.key == f"user:{user_id}"))


def assert_verified(app, code: str | None = None) -> list:
    """`app.ledger.verify.verify()` finds nothing wrong; returns its reports."""
    from app.ledger.verify import verify

    with reading(app):
        reports = verify(code)
        problems = {r.code: r.violations for r in reports if r.violations}
    assert reports, "verify() checked no community"
    assert not problems, problems
    return reports


def set_clock(monkeypatch, when: datetime) -> None:
    """Make the ledger service post (and cap) as if it were `when` (an aware datetime)."""
    assert when.tzinfo is not None
    monkeypatch.setattr("app.ledger.service.utcnow", lambda: when)


# --- HTTP ---------------------------------------------------------------------------------

def adjust(client, headers: dict, community_id: int, user_id: int, amount, reason="测试调整",
           key: str | None = None):
    body = {"user_id": user_id, "amount": amount, "reason": reason}
    extra = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"{API}/communities/{community_id}/adjustments", json=body,
                       headers={**headers, **extra})


# --- a worker process for the multiprocessing test ----------------------------------------

def ledger_worker(database_url: str, config: dict, community_id: int, user_ids: list[int],
                  actor_id: int, worker: int, rounds: int, seed: int) -> dict:
    """Run in a spawned process: its own app on the shared database, posting in a loop.

    Every operation runs in its own write transaction. Returns what this process saw commit,
    so the parent can check the database against it.
    """
    from app import create_app
    from app.db import write_transaction
    from app.errors import Conflict
    from app.extensions import db
    from app.ledger import service
    from app.ledger.models import TransferKind

    app = create_app({**config, "SQLALCHEMY_DATABASE_URI": database_url})
    rng = random.Random(seed)
    net = {uid: 0 for uid in user_ids}
    outcome = {"created": 0, "replayed": 0, "insufficient": 0, "capped": 0, "redemptions": [],
               "errors": []}
    with app.app_context():
        issuance = service.issuance_account(community_id)
        store = service.store_account(community_id)
        db.session.commit()
        accounts = {}
        for uid in user_ids:
            with write_transaction(db.session):
                accounts[uid] = service.user_account(community_id, uid)
        for n in range(rounds):
            uid = rng.choice(user_ids)
            roll = rng.random()
            try:
                with write_transaction(db.session):
                    if roll < 0.3:
                        amount = rng.randint(1, 6)
                        posting = service.transfer(
                            community_id, issuance, accounts[uid], amount,
                            TransferKind.EARN_REPORT, f"report:{worker}:{n}:award")
                        delta = posting.transfer.amount
                        outcome["capped"] += posting.capped
                    elif roll < 0.5:
                        amount = rng.choice([-3, -1, 2, 4])
                        posting = service.adjust(community_id, uid, amount, "多进程", actor_id,
                                                 client_key=f"w{worker}-{n}")
                        delta = amount
                    elif roll < 0.85:
                        amount = rng.randint(1, 5)
                        posting = service.transfer(
                            community_id, accounts[uid], store, amount,
                            TransferKind.REDEMPTION, f"redemption:{worker}-{n}")
                        delta = -amount
                        outcome["redemptions"].append((uid, worker, n, amount))
                    else:
                        if not outcome["redemptions"]:
                            continue
                        ruid, rworker, rn, amount = rng.choice(outcome["redemptions"])
                        uid = ruid
                        posting = service.transfer(
                            community_id, store, accounts[uid], amount, TransferKind.REFUND,
                            f"redemption:{rworker}-{rn}:refund")
                        delta = amount if posting.created else 0
                if posting.created:
                    outcome["created"] += 1
                    net[uid] += delta
                else:
                    outcome["replayed"] += 1
            except Conflict as error:
                if error.slug != "insufficient_points":
                    outcome["errors"].append(error.slug)
                else:
                    outcome["insufficient"] += 1
            except Exception as error:  # reported to the parent, which fails the test
                outcome["errors"].append(repr(error))
        db.session.remove()
        db.engine.dispose()
    outcome["net"] = net
    return outcome
