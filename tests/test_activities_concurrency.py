"""Volunteer activities under concurrency, through real gunicorn workers (issue 9).

One server (4 workers) on the test's database (SQLite in WAL mode shared by the processes, or
PostgreSQL with TEST_DATABASE_URL); requests fired from threads released at one moment:
- capacity 10, 30 volunteers signing up at once → exactly 10 places taken;
- one volunteer tapping "sign up" 10 times at once → one sign-up, one place;
- 20 check-in tries by one person at once → at most 5 get past the rate limit (it is counted
  in the database, so it holds across workers);
- 8 completions of the same activity at once → one completes, each attendee is awarded once,
  and the ledger verifies clean.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import requests

from tests.activity_helpers import API, activity_row, awards, publish, set_times, signups, volunteers
from tests.ledger_helpers import assert_verified
from tests.test_store_concurrency import assert_server_healthy, fire, outcome

pytestmark = pytest.mark.live
TIMEOUT = 120


def post(server, path: str, headers: dict, body: dict | None = None):
    return requests.post(f"{server.url}{API}{path}", json=body, headers=headers, timeout=TIMEOUT)


def test_capacity_race_rate_limit_and_completion_race(live_server, app, client, world, factory,
                                                      org, database_kind):
    cid = world.community.id
    aid = publish(client, org, cid, capacity=10, level=3)["id"]
    twice = publish(client, org, cid, capacity=10)["id"]
    people = volunteers(factory, world.community, 30)
    headers = [factory.headers(p) for p in people]
    server = live_server(workers=4)

    responses, wall, _ = fire([(lambda h=h: post(server, f"/activities/{aid}/signup", h))
                               for h in headers])
    counts = Counter(outcome(r) for r in responses)
    print(f"\n[activities · {database_kind}] 30 sign-ups for 10 places: {dict(counts)} "
          f"in {wall:.2f} s")
    assert counts == {"200": 10, "409 activity_full": 20}
    rows = signups(app, aid)
    assert len(rows) == 10 and all(r["status"] == "signed_up" for r in rows.values())
    assert activity_row(app, aid)["signed_up"] == 10

    responses, _, _ = fire([lambda: post(server, f"/activities/{twice}/signup", headers[0])
                            for _ in range(10)])
    assert Counter(outcome(r) for r in responses) == {"200": 10}
    assert activity_row(app, twice)["signed_up"] == 1 and len(signups(app, twice)) == 1

    set_times(app, aid, starts_in=timedelta(minutes=-10))
    winner = next(p for p in people if p.id in rows)
    winner_headers = headers[people.index(winner)]
    responses, _, _ = fire([(lambda: post(server, f"/activities/{aid}/checkin", winner_headers,
                                          {"code": "000000"})) for _ in range(20)])
    limited = Counter(outcome(r) for r in responses)
    assert limited["429 rate_limited"] >= 15, limited
    assert set(limited) <= {"409 checkin_code_invalid", "429 rate_limited", "200"}, limited

    attendees = sorted(rows)[:7]  # 7 of the 10 are marked present; 3 stay absent
    for user_id in attendees:
        assert post(server, f"/activities/{aid}/checkin", org, {"user_id": user_id}).status_code == 200
    responses, _, _ = fire([lambda: post(server, f"/activities/{aid}/complete", org)
                            for _ in range(8)])
    done = Counter(outcome(r) for r in responses)
    assert done == {"200": 1, "409 activity_invalid_transition": 7}, done
    assert awards(app, aid) == sorted((f"activity:{aid}:{u}", 30) for u in attendees)
    after = signups(app, aid)
    assert sorted(u for u, r in after.items() if r["status"] == "attended") == attendees
    assert sum(r["status"] == "absent" for r in after.values()) == 3
    assert_verified(app)
    assert_server_healthy(server)
