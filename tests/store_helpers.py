"""Helpers shared by the points-store tests (issue 5). Not a test module."""

from __future__ import annotations

import re
from contextlib import contextmanager

import sqlalchemy as sa

from tests.helpers import reading

API = "/api/v1"
# What a pickup code may be made of: no 0/O, 1/I (nor L), so it can be read aloud and typed.
PICKUP_CODE = re.compile(r"^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8,}$")
REWARD = {"name": "金龙鱼食用油 5L", "kind": "goods", "cost": 10, "stock": 5}


# --- responses ----------------------------------------------------------------------------

def created(response) -> dict:
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def ok(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# --- database -----------------------------------------------------------------------------

@contextmanager
def writing(app):
    """An app context with one write transaction (BEGIN IMMEDIATE on SQLite), committed."""
    from app.db import write_transaction
    from app.extensions import db

    with app.app_context():
        with write_transaction(db.session):
            yield db.session
        db.session.remove()


def give_points(app, community_id: int, user_ids, amount: int, actor_id: int) -> None:
    """Credit each user `amount` points through the ledger's adjustment (one transaction)."""
    from app.ledger.service import adjust

    with writing(app):
        for user_id in user_ids:
            adjust(community_id, user_id, amount, "测试发放积分", actor_id)


def balance(app, community_id: int, user_id: int) -> int:
    from app.ledger.models import Account

    with reading(app) as session:
        found = session.scalar(sa.select(Account.balance).where(
            Account.community_id == community_id, Account.key == f"user:{user_id}"))
    return 0 if found is None else found


def stock(app, reward_id: int) -> int | None:
    from app.store.models import Reward

    with reading(app) as session:
        return session.scalar(sa.select(Reward.stock).where(Reward.id == reward_id))


def redemption_row(app, redemption_id: int) -> dict:
    from app.store.models import Redemption

    with reading(app) as session:
        row = session.get(Redemption, redemption_id)
        return {c.name: getattr(row, c.name) for c in Redemption.__table__.columns}


def transfers(app, key_like: str = "redemption:%") -> list[dict]:
    """Ledger transfers whose key matches (SQL LIKE), oldest first."""
    from app.ledger.models import Transfer

    with reading(app) as session:
        rows = session.execute(sa.select(Transfer.key, Transfer.kind, Transfer.amount,
                                         Transfer.source_id, Transfer.destination_id)
                               .where(Transfer.key.like(key_like))
                               .order_by(Transfer.id)).mappings().all()
        return [dict(r) for r in rows]


def store_state(app) -> dict:
    """Everything a refused request must leave exactly as it was."""
    from app.idempotency import IdempotencyRecord
    from app.ledger.models import Account, Entry, Transfer
    from app.store.models import MemberCard, Redemption, Reward, StoreSettings

    with reading(app) as session:
        def count(model):
            return session.scalar(sa.select(sa.func.count()).select_from(model))

        return {
            "rewards": [tuple(r) for r in session.execute(sa.select(
                Reward.id, Reward.name, Reward.description, Reward.kind, Reward.cost,
                Reward.stock, Reward.per_user_monthly_limit, Reward.active, Reward.image_url)
                .order_by(Reward.id))],
            "redemptions": [tuple(r) for r in session.execute(sa.select(
                Redemption.id, Redemption.status, Redemption.quantity, Redemption.cost_total,
                Redemption.wrong_code_attempts, Redemption.locked_until)
                .order_by(Redemption.id))],
            "transfers": count(Transfer),
            "entries": count(Entry),
            "accounts": sorted(tuple(r) for r in session.execute(sa.select(
                Account.id, Account.balance, Account.earned_total, Account.redeemed_total,
                Account.entry_count))),
            "idempotency_records": count(IdempotencyRecord),
            "member_cards": count(MemberCard),
            "settings": count(StoreSettings),
        }


def redeemed_quantity(app, reward_id: int) -> int:
    """Quantity of a reward taken by live redemptions (awaiting pickup or handed over)."""
    from app.store.models import AWAITING_PICKUP, FULFILLED, Redemption

    with reading(app) as session:
        return session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Redemption.quantity), 0))
                              .where(Redemption.reward_id == reward_id,
                                     Redemption.status.in_([AWAITING_PICKUP, FULFILLED])))


def assert_verified(app) -> list:
    """`app.ledger.verify.verify()` finds nothing wrong in any community."""
    from app.ledger.verify import verify

    with reading(app):
        reports = verify()
        problems = {r.code: r.violations for r in reports if r.violations}
    assert reports, "verify() checked no community"
    assert not problems, problems
    return reports


# --- HTTP ---------------------------------------------------------------------------------

def make_reward(client, headers: dict, community_id: int, **fields) -> dict:
    body = {**REWARD, **fields}
    if body.get("kind") == "honour" and "stock" not in fields:
        body.pop("stock")
    return created(client.post(f"{API}/communities/{community_id}/rewards", json=body,
                               headers=headers))


def redeem(client, headers: dict, reward_id: int, quantity=1, *, key: str | None = None,
           **extra):
    body = {"quantity": quantity, **extra}
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post(f"{API}/rewards/{reward_id}/redeem", json=body, headers=headers)


def decode_qr(png: bytes) -> list[str]:
    import io

    import zxingcpp
    from PIL import Image

    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]
