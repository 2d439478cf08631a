"""Statements per hot request: the issue 12 budgets, counted with a SQLAlchemy listener.

Each request runs once to warm up (first-use lookups such as creating system accounts), then
again, counted. A budget is what the request must do, not what it happens to do: raising one
needs a reason.
"""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa

from app.extensions import db
from tests.store_helpers import give_points, make_reward
from tests.wish_helpers import API, Kit


@contextlib.contextmanager
def counting(app):
    statements: list[str] = []

    def listen(_conn, _cursor, statement, _params, _context, _many):
        # SQLite's BEGIN is a statement of ours (app/db.py); PostgreSQL's driver sends its
        # own without a cursor: neither counts, so both databases count the same work.
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def _count(app, send) -> tuple[int, list[str]]:
    with counting(app) as statements:
        response = send()
    assert response.status_code < 300, response.get_data(as_text=True)
    return len(statements), statements


def _report(name, n, statements, budget):
    listing = "\n".join(f"  {i + 1}. {s[:160]}" for i, s in enumerate(statements))
    print(f"\n{name}: {n} statements (budget {budget})\n{listing}")
    assert n <= budget, f"{name}: {n} statements, budget {budget}:\n{listing}"


def test_points_read(kit, app, world):
    give_points(app, kit.cid, [world.volunteer.id], 50, world.organiser.id)
    path = f"/me/points?community_id={kit.cid}"
    kit.get(path, world.volunteer)
    n, statements = _count(app, lambda: kit.get(path, world.volunteer))
    # token, membership, account, pending points, service hours, the policy (expiry)
    _report("GET /me/points", n, statements, 6)


def test_ledger_page(kit, app, world):
    give_points(app, kit.cid, [world.volunteer.id], 50, world.organiser.id)
    path = f"/me/ledger?community_id={kit.cid}"
    kit.get(path, world.volunteer)
    n, statements = _count(app, lambda: kit.get(path, world.volunteer))
    _report("GET /me/ledger", n, statements, 4)  # token, membership, account, the page


def test_wish_list(kit, app, world):
    kit.make("open")
    path = f"/wishes?community_id={kit.cid}&per_page=20"
    kit.get(path, world.volunteer)
    n, statements = _count(app, lambda: kit.get(path, world.volunteer))
    _report("GET /wishes", n, statements, 4)  # token, count, the page, the viewer's role


def test_leaderboard(kit, app, world):
    give_points(app, kit.cid, [world.volunteer.id], 50, world.organiser.id)
    path = f"/communities/{kit.cid}/leaderboard?period=week"
    kit.get(path, world.volunteer)
    n, statements = _count(app, lambda: kit.get(path, world.volunteer))
    _report("GET /leaderboard", n, statements, 3)  # token, membership, the top rows


def test_claim(kit, app, world, database_kind):
    first, second = kit.make("open"), kit.make("open")
    kit.do(first, "claim", world.volunteer)
    n, statements = _count(app, lambda: kit.act(second, "claim", world.volunteer))
    # The token and user; the wish locked; membership; the volunteer's claims serialised
    # (membership row locked); wish settings; their active claims counted; the timeline
    # entry; the wish's update; the outbox (PostgreSQL 1, SQLite 3); the timeline read back
    # and the board's name for the answer; the claimer's contact reveal logged.
    _report("POST /wishes/{id}/claim", n, statements, 11 if database_kind == "postgresql" else 13)


def test_redeem(kit, app, client, factory, world, database_kind):
    org = factory.headers(world.organiser)
    reward = make_reward(client, org, kit.cid, stock=10)
    give_points(app, kit.cid, [world.volunteer.id], 500, world.organiser.id)
    vol = factory.headers(world.volunteer)

    def redeem():
        return client.post(f"{API}/rewards/{reward['id']}/redeem", json={"quantity": 1},
                           headers=vol)
    redeem()
    n, statements = _count(app, redeem)
    # The token and user; the reward's stock taken (UPDATE … RETURNING); membership; the
    # redemption; the points policy (expiry); the two accounts locked; the transfer; both
    # balances; the two entries; the lots (PostgreSQL: one statement, SQLite: two); the
    # outbox event with its notifications and webhook deliveries (PostgreSQL: one statement,
    # SQLite: three).
    budget = 11 if database_kind == "postgresql" else 14
    _report("POST /rewards/{id}/redeem", n, statements, budget)
