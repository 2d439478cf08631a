"""The points store under concurrency, through real gunicorn worker processes (issue 5).

Each test starts 4 gunicorn workers on the test's database (SQLite in WAL mode shared by the
processes, or PostgreSQL with TEST_DATABASE_URL) and fires requests from a thread pool released
at one moment, so they land on different workers at once. Whatever the interleaving: no
oversold stock, no overdrawn balance, one redemption per Idempotency-Key, one outcome per
redemption, one refund; the ledger verifies clean and stock + redeemed quantity equals the
starting stock. Run with `pytest -s` to see the observed counts and timings.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.store_helpers import (
    API,
    assert_verified,
    balance,
    give_points,
    make_reward,
    redeemed_quantity,
    stock,
    transfers,
)

pytestmark = pytest.mark.live

POOL = 32
TIMEOUT = 120


def fire(calls) -> tuple[list, float, list[float]]:
    """Run every call from a pool of up to 32 threads, all gated to start at the same moment.

    Returns the responses in call order, the wall time and each call's own duration."""
    gate = threading.Event()

    def run(call):
        gate.wait()
        started = time.perf_counter()
        response = call()
        return response, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=min(POOL, len(calls))) as pool:
        futures = [pool.submit(run, call) for call in calls]
        time.sleep(0.3)  # let the pool's threads reach the gate
        started = time.perf_counter()
        gate.set()
        results = [future.result() for future in futures]
    wall = time.perf_counter() - started
    return [r for r, _ in results], wall, [d for _, d in results]


def outcome(response) -> str:
    """'201', '200', or '409 out_of_stock': the status and, for an error, its slug."""
    if response.status_code < 400:
        return str(response.status_code)
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return f"{response.status_code} {response.json()['error']}"


def report(database_kind: str, label: str, counts: Counter, wall: float,
           durations: list[float]) -> None:
    shown = ", ".join(f"{n} × {k}" for k, n in sorted(counts.items()))
    print(f"\n[store concurrency · {database_kind} · gunicorn 4 workers · {POOL} threads] "
          f"{label}: {sum(counts.values())} requests → {shown}; wall {wall:.2f} s, "
          f"per request median {statistics.median(durations) * 1000:.0f} ms, "
          f"max {max(durations) * 1000:.0f} ms")


def assert_server_healthy(server) -> None:
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert "database is locked" not in log, log[-4000:]
    assert "WORKER TIMEOUT" not in log, log[-4000:]


def assert_shelf_adds_up(app, reward_id: int, starting_stock: int) -> None:
    left, taken = stock(app, reward_id), redeemed_quantity(app, reward_id)
    assert left >= 0
    assert left + taken == starting_stock, (left, taken, starting_stock)


def post(server, path: str, headers: dict, body: dict | None = None):
    return requests.post(f"{server.url}{API}{path}", json={} if body is None else body,
                         headers=headers, timeout=TIMEOUT)


def test_stock_of_5_and_100_volunteers_at_once_sells_exactly_5(live_server, app, client, world,
                                                                factory, org, database_kind):
    cid = world.community.id
    reward = make_reward(client, org, cid, name="金龙鱼食用油 5L", cost=30, stock=5)
    volunteers = [factory.member(world.community, factory.user(f"志愿者{n}"), "volunteer")
                  for n in range(100)]
    give_points(app, cid, [v.id for v in volunteers], 40, world.organiser.id)
    headers = [factory.headers(v) for v in volunteers]
    server = live_server(workers=4)

    responses, wall, durations = fire([
        (lambda h=h: post(server, f"/rewards/{reward['id']}/redeem", h, {"quantity": 1}))
        for h in headers])
    counts = Counter(outcome(r) for r in responses)
    report(database_kind, "stock 5, 100 volunteers redeem", counts, wall, durations)

    assert counts == {"201": 5, "409 out_of_stock": 95}
    winners = {r.json()["user_id"] for r in responses if r.status_code == 201}
    assert len(winners) == 5
    assert len({r.json()["pickup_code"] for r in responses if r.status_code == 201}) == 5
    assert stock(app, reward["id"]) == 0
    for volunteer in volunteers:
        expected = 10 if volunteer.id in winners else 40
        assert balance(app, cid, volunteer.id) == expected, volunteer.id
    assert len(transfers(app, "redemption:%:debit")) == 5
    assert_shelf_adds_up(app, reward["id"], 5)
    assert_verified(app)
    assert_server_healthy(server)


def test_one_volunteer_with_points_for_3_firing_50_gets_exactly_3(live_server, app, client,
                                                                   world, factory, org,
                                                                   database_kind):
    cid = world.community.id
    reward = make_reward(client, org, cid, name="洗衣液", cost=10, stock=100)
    give_points(app, cid, [world.volunteer.id], 35, world.organiser.id)
    headers = factory.headers(world.volunteer)
    server = live_server(workers=4)

    responses, wall, durations = fire([
        lambda: post(server, f"/rewards/{reward['id']}/redeem", headers, {"quantity": 1})
        for _ in range(50)])
    counts = Counter(outcome(r) for r in responses)
    report(database_kind, "one volunteer, points for 3, 50 redeems", counts, wall, durations)

    assert counts == {"201": 3, "409 insufficient_points": 47}
    assert balance(app, cid, world.volunteer.id) == 5
    assert stock(app, reward["id"]) == 97
    assert len(transfers(app, "redemption:%:debit")) == 3
    assert_shelf_adds_up(app, reward["id"], 100)
    assert_verified(app)
    assert_server_healthy(server)


def test_the_same_idempotency_key_20_times_at_once_redeems_once(live_server, app, client, world,
                                                                factory, org, database_kind):
    cid = world.community.id
    reward = make_reward(client, org, cid, name="大米 10kg", cost=10, stock=10)
    give_points(app, cid, [world.volunteer.id], 100, world.organiser.id)
    headers = {**factory.headers(world.volunteer), "Idempotency-Key": "tap-tap-tap"}
    server = live_server(workers=4)

    responses, wall, durations = fire([
        lambda: post(server, f"/rewards/{reward['id']}/redeem", headers, {"quantity": 2})
        for _ in range(20)])
    counts = Counter(outcome(r) for r in responses)
    report(database_kind, "same Idempotency-Key ×20", counts, wall, durations)

    assert counts == {"201": 20}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert len({r.text for r in responses}) == 1
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert replayed.count("true") == 19 and replayed.count(None) == 1
    (rid,) = ids
    assert [t["key"] for t in transfers(app)] == [f"redemption:{rid}:debit"]
    assert balance(app, cid, world.volunteer.id) == 80
    assert stock(app, reward["id"]) == 8
    assert_shelf_adds_up(app, reward["id"], 10)

    # One key raced with two different bodies: one of them wins, the other is a conflict.
    other = {**headers, "Idempotency-Key": "two-bodies"}
    responses, wall, durations = fire([
        (lambda q=q: post(server, f"/rewards/{reward['id']}/redeem", other, {"quantity": q}))
        for q in [1, 2] * 10])
    counts = Counter(outcome(r) for r in responses)
    report(database_kind, "one key, two bodies ×10 each", counts, wall, durations)
    assert counts == {"201": 10, "409 idempotency_conflict": 10}
    won = {r.json()["quantity"] for r in responses if r.status_code == 201}
    assert len(won) == 1 and len({r.json()["id"] for r in responses
                                  if r.status_code == 201}) == 1
    (quantity,) = won
    assert balance(app, cid, world.volunteer.id) == 80 - 10 * quantity
    assert len(transfers(app, "redemption:%:debit")) == 2
    assert_shelf_adds_up(app, reward["id"], 10)
    assert_verified(app)
    assert_server_healthy(server)


def _redemptions(client, world, factory, org, app, count: int, starting_stock: int):
    cid = world.community.id
    reward = make_reward(client, org, cid, name="理发", kind="service", cost=10,
                         stock=starting_stock)
    give_points(app, cid, [world.volunteer.id], 10 * count, world.organiser.id)
    vol = factory.headers(world.volunteer)
    made = []
    for _ in range(count):
        response = client.post(f"{API}/rewards/{reward['id']}/redeem", json={"quantity": 1},
                               headers=vol)
        assert response.status_code == 201, response.get_data(as_text=True)
        made.append(response.get_json())
    return reward, vol, made


def test_cancel_racing_fulfil_exactly_one_wins(live_server, app, client, world, factory, org,
                                               database_kind):
    cid = world.community.id
    reward, vol, made = _redemptions(client, world, factory, org, app, 12, 20)
    server = live_server(workers=4)

    calls = []
    for r in made:
        calls.append(lambda r=r: ("cancel", r["id"], post(server, f"/redemptions/{r['id']}/cancel",
                                                           vol)))
        calls.append(lambda r=r: ("fulfil", r["id"], post(
            server, f"/redemptions/{r['id']}/fulfil", org, {"pickup_code": r["pickup_code"]})))
    results, wall, durations = fire(calls)
    counts = Counter(f"{action} {outcome(resp)}" for action, _rid, resp in results)
    report(database_kind, "cancel racing fulfil on 12 redemptions", counts, wall, durations)

    winners: dict[int, list[str]] = {r["id"]: [] for r in made}
    for action, rid, response in results:
        assert response.status_code in (200, 409), response.text
        if response.status_code == 200:
            winners[rid].append(action)
            assert response.json()["status"] == ("cancelled" if action == "cancel"
                                                 else "fulfilled")
        else:
            assert response.json()["error"] == "redemption_not_pending", response.text
    assert all(len(w) == 1 for w in winners.values()), winners
    cancelled = sorted(rid for rid, w in winners.items() if w == ["cancel"])
    fulfilled = len(made) - len(cancelled)
    refunds = transfers(app, "redemption:%:refund")
    assert sorted(int(t["key"].split(":")[1]) for t in refunds) == cancelled
    assert balance(app, cid, world.volunteer.id) == 10 * (len(made) - fulfilled)
    assert stock(app, reward["id"]) == 20 - fulfilled
    assert_shelf_adds_up(app, reward["id"], 20)
    assert_verified(app)
    assert_server_healthy(server)


def test_cancel_many_times_at_once_refunds_once(live_server, app, client, world, factory, org,
                                                database_kind):
    cid = world.community.id
    reward, vol, made = _redemptions(client, world, factory, org, app, 10, 10)
    assert balance(app, cid, world.volunteer.id) == 0 and stock(app, reward["id"]) == 0
    server = live_server(workers=4)

    calls = []
    for r in made:
        for headers in (vol, vol, org):
            calls.append(lambda r=r, h=headers: (r["id"], post(
                server, f"/redemptions/{r['id']}/cancel", h)))
    results, wall, durations = fire(calls)
    counts = Counter(outcome(resp) for _rid, resp in results)
    report(database_kind, "3 cancels at once on each of 10 redemptions", counts, wall, durations)

    assert counts == {"200": 10, "409 redemption_not_pending": 20}
    assert sorted(rid for rid, resp in results if resp.status_code == 200) == sorted(
        r["id"] for r in made)
    refunds = transfers(app, "redemption:%:refund")
    assert sorted(t["key"] for t in refunds) == sorted(
        f"redemption:{r['id']}:refund" for r in made)
    assert {t["amount"] for t in refunds} == {10}
    assert balance(app, cid, world.volunteer.id) == 100
    assert stock(app, reward["id"]) == 10
    assert_shelf_adds_up(app, reward["id"], 10)
    assert_verified(app)
    assert_server_healthy(server)


def test_first_look_at_a_member_card_from_many_devices_at_once(live_server, app, world, factory,
                                                               database_kind):
    headers = factory.headers(world.volunteer)
    server = live_server(workers=4)
    responses, wall, durations = fire([
        lambda: requests.get(f"{server.url}{API}/me/member-card", headers=headers,
                             timeout=TIMEOUT) for _ in range(16)])
    counts = Counter(outcome(r) for r in responses)
    report(database_kind, "first member-card view ×16", counts, wall, durations)
    assert counts == {"200": 16}
    assert len({r.json()["code"] for r in responses}) == 1
    assert_server_healthy(server)
