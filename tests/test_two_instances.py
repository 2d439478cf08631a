"""Two instances stay one service (issue 12, must-have 7).

Two gunicorn instances (2 workers each, separate process trees on different ports, as two
machines behind one load balancer would be) share one PostgreSQL database and one Redis, and
nothing else: a logout through one is refused by the other, the login rate limit is one budget
across both, and the last item of a reward raced through both has exactly one winner.

(tests/test_auth.py checks the same revocation and Redis limit with two apps in one process,
and two one-worker servers for the limit; here every check goes through real instances.)

PostgreSQL only: SQLite is one machine's file, so two instances of it are one host's workers,
which tests/test_live_auth.py and tests/test_store_concurrency.py cover. Needs TEST_REDIS_URL
(CI sets redis://127.0.0.1:6379/15); with XINYUAN_REQUIRE_POSTGRES=1 a missing Redis fails.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import requests

from tests.conftest import PASSWORD, REQUIRE_PG
from tests.helpers import bearer, fire, fresh_limit_window
from tests.store_helpers import API, assert_verified, balance, give_points, make_reward, stock

pytestmark = pytest.mark.live

REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()
TIMEOUT = 60


@pytest.fixture
def redis_url(database_kind):
    if database_kind != "postgresql":
        pytest.skip("two instances share PostgreSQL: set TEST_DATABASE_URL to a PostgreSQL URL")
    import redis

    problem = None
    if not REDIS_URL:
        problem = "TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/15)"
    else:
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as error:
            problem = f"Redis at {REDIS_URL} is unreachable: {error}"
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"XINYUAN_REQUIRE_POSTGRES=1 and {problem}")
        pytest.skip(problem)
    return REDIS_URL


@pytest.fixture
def login_window(redis_url):
    """A login limit of 5 per <window> seconds, the window unused by any other test, so that
    no earlier run's counters (Redis outlives the test) count; its keys removed around it."""
    with fresh_limit_window(redis_url, 1000, 800) as found:
        yield found


@pytest.fixture
def two_instances(live_server, redis_url):
    """Start instances A and B with 2 workers each on the test's database and one Redis."""

    def start(**env):
        env = {"RATELIMIT_STORAGE_URI": redis_url, **env}
        return live_server(workers=2, **env), live_server(workers=2, **env)

    return start


def login(server, phone: str, password: str = PASSWORD):
    return requests.post(f"{server.url}/api/v1/auth/login",
                         json={"phone": phone, "password": password}, timeout=TIMEOUT)


def error_of(response) -> str | None:
    if response.status_code < 400:
        return None
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return response.json()["error"]


def assert_healthy(*servers) -> None:
    for server in servers:
        log = server.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-4000:]
        assert "WORKER TIMEOUT" not in log, log[-4000:]


def test_a_logout_through_one_instance_is_refused_by_the_other(two_instances, factory):
    user = factory.user("王建国")
    a, b = two_instances()
    assert a.url != b.url and a.process.pid != b.process.pid
    tokens = login(a, user.phone).json()  # the user the test wrote, seen by both
    other = login(b, user.phone).json()  # a second login, through B
    me = "/api/v1/me"
    # Each of the four workers serves the token first, so none answers from a cache.
    for server in (a, b):
        answers = fire(8, lambda _i, s=server: requests.get(
            f"{s.url}{me}", headers=bearer(tokens["access_token"]), timeout=TIMEOUT))
        assert {r.status_code for r in answers} == {200}

    response = requests.post(f"{b.url}/api/v1/auth/logout",
                             headers=bearer(tokens["access_token"]), timeout=TIMEOUT)
    assert response.status_code == 204, response.text

    for server in (a, b):
        answers = fire(8, lambda _i, s=server: requests.get(
            f"{s.url}{me}", headers=bearer(tokens["access_token"]), timeout=TIMEOUT))
        assert [(r.status_code, error_of(r)) for r in answers] == [(401, "token_revoked")] * 8
    refresh = requests.post(f"{a.url}/api/v1/auth/refresh",
                            headers=bearer(tokens["refresh_token"]), timeout=TIMEOUT)
    assert refresh.status_code == 401 and error_of(refresh) in {"token_revoked", "token_reused"}
    # The other login lives on, on both.
    for server in (a, b):
        assert requests.get(f"{server.url}{me}", headers=bearer(other["access_token"]),
                            timeout=TIMEOUT).status_code == 200
    assert_healthy(a, b)


def test_the_login_rate_limit_counts_across_both_instances(two_instances, factory,
                                                           login_window):
    window, connection, pattern = login_window
    user = factory.user("王建国")
    a, b = two_instances(LOGIN_RATE_LIMIT=f"5 per {window} second")
    servers = [a, b]
    # Alternating A, B, A, B, A: five attempts, each instance seeing fewer than five.
    statuses = [login(servers[n % 2], user.phone, "wrong password").status_code
                for n in range(5)]
    assert statuses == [401] * 5
    assert any(connection.scan_iter(match=pattern)), "the limiter wrote nothing to Redis"
    # The sixth is refused whichever instance it reaches, the right password included.
    for server in (b, a):
        response = login(server, user.phone)
        assert response.status_code == 429, response.text
        assert error_of(response) == "rate_limited"
        assert 0 < int(response.headers["Retry-After"]) <= window
    assert_healthy(a, b)


def test_the_last_item_raced_through_both_instances_has_one_winner(two_instances, app, client,
                                                                   world, factory, org):
    cid = world.community.id
    reward = make_reward(client, org, cid, name="金龙鱼食用油 5L", cost=30, stock=1)
    volunteers = [factory.member(world.community, factory.user(f"志愿者{n}"), "volunteer")
                  for n in range(24)]
    give_points(app, cid, [v.id for v in volunteers], 40, world.organiser.id)
    headers = [factory.headers(v) for v in volunteers]
    a, b = two_instances()
    servers = [a, b]

    responses = fire(len(volunteers), lambda i: requests.post(
        f"{servers[i % 2].url}{API}/rewards/{reward['id']}/redeem", json={"quantity": 1},
        headers=headers[i], timeout=TIMEOUT))
    outcomes = Counter(
        "201" if r.status_code == 201 else f"{r.status_code} {error_of(r)}" for r in responses)

    assert outcomes == {"201": 1, "409 out_of_stock": 23}, outcomes
    (winner,) = [r.json()["user_id"] for r in responses if r.status_code == 201]
    assert stock(app, reward["id"]) == 0
    for volunteer in volunteers:
        assert balance(app, cid, volunteer.id) == (10 if volunteer.id == winner else 40)
    assert_verified(app)
    assert_healthy(a, b)
