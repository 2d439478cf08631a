"""Races on reports through real gunicorn worker processes (SQLite in WAL mode, or PostgreSQL
with TEST_DATABASE_URL): accepts racing each other and racing reject/duplicate → one decision,
one award, and `flask ledger verify` clean."""

from __future__ import annotations

from collections import Counter

import pytest
import requests
import sqlalchemy as sa

from tests.helpers import fire, reading
from tests.ledger_helpers import assert_verified
from tests.report_helpers import API, FIELDS, balance
from tests.wish_helpers import LIVE_TIMEOUT, assert_server_healthy, error_slug

pytestmark = pytest.mark.live

LEVEL_POINTS = {1: 5, 2: 10, 3: 15, 4: 20, 5: 30}  # the default rules table for reports


def award_keys(app) -> list[str]:
    from app.ledger.models import Transfer

    with reading(app) as session:
        return list(session.scalars(sa.select(Transfer.key).order_by(Transfer.id)))


def decisions(app, rid: int) -> list[str]:
    from app.reports.models import ReportEvent

    with reading(app) as session:
        return list(session.scalars(sa.select(ReportEvent.action).where(
            ReportEvent.report_id == rid, ReportEvent.action != "file")))


def test_racing_decisions_on_a_report_award_once(app, client, factory, world, live_server,
                                                 tmp_path):
    cid = world.community.id
    second = factory.member(world.community, factory.user("张主任"), "organiser")
    organisers = [factory.headers(world.organiser), factory.headers(second)]
    volunteer = factory.headers(world.volunteer)
    rounds = 6
    ids = []
    for n in range(rounds):
        response = client.post(f"{API}/communities/{cid}/reports", headers=volunteer,
                               json={**FIELDS, "location": f"{n} 号楼"})
        assert response.status_code == 201
        ids.append(response.json["id"])
    server = live_server(workers=4, UPLOAD_DIR=str(tmp_path / "uploads"))

    expected_balance = 0
    for n, rid in enumerate(ids):
        racers = 2 if n < 3 else 8
        # Rounds 0–2: two accepts. Later rounds: accepts racing rejects and duplicates too.
        plans = [("accept", {"level": 1 + i % 5}) for i in range(racers)]
        if n >= 3:
            plans[1] = ("reject", {"reason": "无效"})
            plans[2] = ("duplicate", {"of": ids[0]})

        def decide(i, rid=rid, plans=plans):
            action, body = plans[i]
            return requests.post(f"{server.url}{API}/reports/{rid}/{action}", json=body,
                                 headers=organisers[i % 2], timeout=LIVE_TIMEOUT)

        results = fire(racers, decide)
        statuses = Counter(r.status_code for r in results)
        assert statuses == {200: 1, 409: racers - 1}, [(r.status_code, r.text) for r in results]
        assert {error_slug(r) for r in results if r.status_code == 409} == {
            "report_invalid_transition"}
        (won,) = [i for i, r in enumerate(results) if r.status_code == 200]
        action, body = plans[won]
        state = results[won].json()
        assert decisions(app, rid) == [action]
        # Every loser was told the state the winner left it in.
        for r in results:
            if r.status_code == 409:
                assert r.json()["errors"]["status"] == [state["status"]]
        if action == "accept":
            expected_balance += LEVEL_POINTS[body["level"]]
            assert state["points_awarded"] == LEVEL_POINTS[body["level"]]
        assert balance(app, cid, world.volunteer.id) == expected_balance
    keys = award_keys(app)
    assert len(keys) == len(set(keys)) and all(k.startswith("report:") for k in keys)
    assert_verified(app)
    assert_server_healthy(server)


def test_a_slow_upload_does_not_hold_up_other_writers(app, factory, world, live_server,
                                                      tmp_path):
    """A phone sending its photo slowly: while its body trickles in, other requests that
    write still go through at once (on SQLite no write lock is held while a body is read)."""
    import threading
    import time

    from tests.report_helpers import jpeg

    cid = world.community.id
    volunteer = factory.headers(world.volunteer)
    organiser = factory.headers(world.organiser)
    server = live_server(workers=2, UPLOAD_DIR=str(tmp_path / "uploads"))
    boundary = "xinyuanboundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             for k, v in FIELDS.items()]
    head = ("".join(parts) + f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; '
            'filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n').encode()
    photo = jpeg(800, 600)
    tail = photo + f"\r\n--{boundary}--\r\n".encode()
    arrived = threading.Event()

    def trickle():
        yield head + tail[:100]
        arrived.set()
        time.sleep(4)
        yield tail[100:]

    slow: dict = {}

    def upload():
        slow["response"] = requests.post(
            f"{server.url}{API}/communities/{cid}/reports", data=trickle(), timeout=LIVE_TIMEOUT,
            headers={**volunteer, "Content-Type": f"multipart/form-data; boundary={boundary}"})

    thread = threading.Thread(target=upload)
    thread.start()
    assert arrived.wait(10)
    time.sleep(0.5)  # the slow request is now inside the view, reading its body
    started = time.monotonic()
    quick = requests.put(f"{server.url}{API}/communities/{cid}/report-settings",
                         json={"residents_may_report": True}, headers=organiser,
                         timeout=LIVE_TIMEOUT)
    waited = time.monotonic() - started
    thread.join(30)
    assert quick.status_code == 200, quick.text
    assert waited < 2, f"a writer waited {waited:.1f} s behind a slow upload"
    assert slow["response"].status_code == 201, slow["response"].text
    assert slow["response"].json()["has_photo"] is True
    assert_server_healthy(server)
