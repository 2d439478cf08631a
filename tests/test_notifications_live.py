"""The outbox under real gunicorn workers: racing requests write events only for what
committed, and the inbox answers over HTTP (issue 11)."""

from __future__ import annotations

from collections import Counter

import pytest
import requests
import sqlalchemy as sa

from tests.helpers import fire, reading
from tests.wish_helpers import LIVE_TIMEOUT, Kit

API = "/api/v1"


@pytest.fixture
def kit(app, client, factory, world):
    return Kit(app, client, factory, world)


def _events(app, event_type: str, wid: int) -> int:
    from app.notifications.models import Event

    with reading(app) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Event).where(
            Event.type == event_type, Event.subject_id == wid))


def test_racing_claims_over_live_workers_write_one_event_and_one_notification(
        kit, app, factory, live_server):
    volunteers = [factory.member(kit.community, factory.user(f"志愿者{n}"), "volunteer")
                  for n in range(8)]
    kit.settings(max_active_claims=50)
    wishes = [kit.make("open") for _ in range(4)]
    headers = [kit.h(v) for v in volunteers]
    server = live_server(workers=4)
    for wid in wishes:
        def claim(i, wid=wid):
            return requests.post(f"{server.url}{API}/wishes/{wid}/claim", json={},
                                 headers=headers[i], timeout=LIVE_TIMEOUT)

        results = fire(len(volunteers), claim)
        assert Counter(r.status_code for r in results) == {200: 1, 409: len(volunteers) - 1}
        # The 409s rolled back: no event of theirs survives; the winner's did.
        assert _events(app, "wish.claimed", wid) == 1

    owner = requests.get(f"{server.url}{API}/me/notifications", params={"per_page": 100},
                         headers=kit.h(kit.resident), timeout=LIVE_TIMEOUT).json()
    claimed = [n for n in owner["items"] if n["type"] == "wish.claimed"]
    assert sorted(n["object"]["id"] for n in claimed) == sorted(wishes)
    assert owner["unread_count"] == owner["total"]

    # Marking read from two workers at once: each notification is marked once.
    ids = [n["id"] for n in owner["items"]]

    def mark(i):
        return requests.post(f"{server.url}{API}/me/notifications/read",
                             json={"ids": ids} if i % 2 else {"all": True},
                             headers=kit.h(kit.resident), timeout=LIVE_TIMEOUT)

    answers = fire(6, mark)
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(a.json()["marked"] for a in answers) == len(ids)
    after = requests.get(f"{server.url}{API}/me/notifications", headers=kit.h(kit.resident),
                         timeout=LIVE_TIMEOUT).json()
    assert after["unread_count"] == 0
    english = requests.get(f"{server.url}{API}/me/notifications", timeout=LIVE_TIMEOUT,
                           headers={**kit.h(kit.resident), "Accept-Language": "en"}).json()
    assert english["items"][0]["text"] != after["items"][0]["text"]
