"""scripts/bench: the floor app answers like ours (so it cannot silently do less), and the
driver reads wrk's output and judges the targets right.

One tiny community is seeded through the services into an SQLite file (scripts/bench.py's
seed()), then every benchmarked request goes to our app and to the floor app (Flask test
clients, the same database): the same status, the same JSON keys (items, champion, timeline
included), the same refusals (a revoked login, a reward out of stock).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench  # noqa: E402
import floor_app  # noqa: E402


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    from bench_ledger import reset_schema
    from sqlalchemy.engine import make_url

    from app import create_app
    from app.extensions import db

    url = f"sqlite:///{tmp_path_factory.mktemp('bench') / 'bench_api.sqlite3'}"
    reset_schema(make_url(url))
    ours = create_app(bench.app_config(url))
    world = bench.seed(ours, volunteers=3, residents=1, wishes=12, history=2)
    floor = floor_app.create_app(url, bench.SECRET)
    yield ours, floor, world
    with ours.app_context():
        db.session.remove()
        db.engine.dispose()


def send(app, line: str, token: str | None = None):
    method, path, name, value, body = line.split("\t")
    client = app.test_client()
    headers = {}
    if name == "Cookie":
        client.set_cookie("xy_access", token or value.partition("=")[2])
    elif name:
        headers[name] = f"Bearer {token}" if token else value
    return client.open(path, method=method, headers=headers, data=body or None,
                       content_type="application/json" if body else None)


def shape(value):
    """The keys of a JSON answer, nested through the first item of every list."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


@pytest.mark.parametrize("name", [e.name for e in bench.ENDPOINTS])
def test_floor_answers_like_ours(seeded, name):
    ours, floor, world = seeded
    endpoint = bench.BY_NAME[name]
    # Two different open wishes, so that both claims succeed.
    wish_ids = bench.open_wish_ids(ours, world.community_id)[:2]
    ours_line, floor_line = (bench.request_lines(endpoint, world, [wish_id])[0]
                             for wish_id in wish_ids)
    mine, theirs = send(ours, ours_line), send(floor, floor_line)
    assert (mine.status_code, theirs.status_code) == (
        (201, 201) if name == "redeem" else (200, 200)), (mine.data[:300], theirs.data[:300])
    if endpoint.api:
        assert shape(theirs.get_json()) == shape(mine.get_json())
        same = {"points": lambda b: (b["balance"], b["earned_total"], b["by_source"]),
                "ledger": lambda b: (b["total"], [(i["id"], i["balance_after"], i["reference"])
                                                  for i in b["items"]]),
                "leaderboard": lambda b: [(i["user_id"], i["points"], i["rank"])
                                          for i in b["items"]],
                "wishes": lambda b: (b["total"], [i["id"] for i in b["items"]])}.get(name)
        if same:  # the floor computes the same answer, not only its shape
            assert same(theirs.get_json()) == same(mine.get_json())
    else:
        assert mine.mimetype == theirs.mimetype == "text/html"
        assert "1号楼心愿墙" in theirs.get_data(as_text=True) or name == "points_page"


def test_both_refuse_a_revoked_login(seeded):
    from app.auth import service as auth
    from app.auth.models import User
    from app.db import write_transaction
    from app.extensions import db

    ours, floor, world = seeded
    with ours.test_request_context():
        with write_transaction(db.session):
            user = db.session.get(User, world.volunteers[0][0])
            tokens = auth.issue_tokens(user)
        family = auth.decode_token(tokens["access_token"])["fam"]
        with write_transaction(db.session):
            auth.revoke_family(family, "logout")
        db.session.remove()
    line = bench.request_lines(bench.BY_NAME["points"], world, [])[0]
    mine = send(ours, line, token=tokens["access_token"])
    theirs = send(floor, line, token=tokens["access_token"])
    assert (mine.status_code, theirs.status_code) == (401, 401)


def test_both_say_out_of_stock(seeded):
    ours, floor, world = seeded
    redeem = f"POST\t/api/v1/rewards/{world.scarce_reward_id}/redeem\tAuthorization\t" \
             f"Bearer {world.volunteers[1][1]}\t{{\"quantity\": 1}}"
    answers = [send(app, redeem).status_code for app in (ours, floor) * 3]  # stock is 5
    assert answers == [201] * 5 + [409]
    assert send(floor, redeem).get_json()["error"] == send(ours, redeem).get_json()["error"] \
        == "out_of_stock"


WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:40000
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    80.12ms   20.00ms 300.00ms   70.00%
  1200 requests in 3.00s, 1.20MB read
Requests/sec:    400.00
BENCH_JSON {"requests": 1200, "duration_us": 3000000, "bytes": 1200000, "errors": {"connect": 0, \
"read": 0, "write": 0, "status": 30, "timeout": 0}, "latency_us": {"p50": 75000, "p90": 110000, \
"p99": 250000, "mean": 80120.0, "max": 300000}, "wrapped": 0, "statuses": {"200": 1170, \
"409:out_of_stock": 20, "500": 10}}
"""


def result(rps: float, p99_ms: float, non_2xx: dict | None = None) -> dict:
    return {"ok_rps": rps, "p99_ms": p99_ms, "non_2xx": non_2xx or {}, "socket_errors": {}}


def test_parse_wrk_reads_the_lua_summary():
    parsed = bench.parse_wrk(WRK_OUTPUT)
    assert parsed["requests"] == 1200 and parsed["rps"] == pytest.approx(400)
    assert parsed["ok_rps"] == pytest.approx(390)  # 2xx only
    assert (parsed["p50_ms"], parsed["p99_ms"]) == (75, 250)
    assert parsed["non_2xx"] == {"409:out_of_stock": 20, "500": 10}
    with pytest.raises(ValueError):
        bench.parse_wrk("Requests/sec: 400")


def test_targets():
    points, redeem = bench.BY_NAME["points"], bench.BY_NAME["redeem"]
    floor = result(1000, 40)
    assert bench.verdict(points, result(710, 59), floor)["pass"]
    assert not bench.verdict(points, result(690, 40), floor)["checks"]["throughput"]
    assert not bench.verdict(points, result(900, 61), floor)["checks"]["p99"]
    assert bench.verdict(redeem, result(500, 400), floor)["pass"]  # writes: no p99 target
    assert not bench.verdict(redeem, result(490, 40), floor)["pass"]
    expected = result(800, 40, {"409:out_of_stock": 3})
    assert bench.verdict(redeem, expected, floor)["pass"]
    assert not bench.verdict(points, expected, floor)["checks"]["answers"]
    assert not bench.verdict(redeem, result(800, 40, {"500": 1}), floor)["pass"]
    assert not bench.verdict(redeem, result(800, 40), result(1000, 40, {"422": 1}))["pass"]


def test_statements_are_counted_for_every_endpoint(seeded):
    ours, _floor, world = seeded
    counts = bench.count_statements(ours, world)
    assert set(counts) == set(bench.BY_NAME)
    assert all(n >= 1 for n in counts.values()), counts


def test_leaderboard_is_held_against_the_floors_points_read():
    rows = [{"endpoint": "points", "connections": 32, "ours": result(500, 9),
             "floor": result(1000, 9)},
            {"endpoint": "leaderboard", "connections": 32, "ours": result(610, 9),
             "floor": result(50, 9)},
            {"endpoint": "leaderboard", "connections": 4, "ours": result(590, 9),
             "floor": result(50, 9)},
            {"endpoint": "points", "connections": 4, "ours": result(500, 9),
             "floor": result(1000, 9)}]
    assert bench.leaderboard_against_points(rows) == [
        "leaderboard (ours) ÷ points read (floor) at 32: 0.61 PASS (≥0.6)",
        "leaderboard (ours) ÷ points read (floor) at 4: 0.59 FAIL (≥0.6)"]
