"""Helpers of the statistics and ratings tests (issue 10). Not a test module.

Every wish is lived through the API at the moment the test sets (`app.db.frozen_clock`), so its
timestamps are exactly those written in the test.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.db import frozen_clock
from app.localtime import SHANGHAI

HOUR = 3600


def local(text: str) -> datetime:
    """'2026-10-05 10:00' in Asia/Shanghai, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def live(kit, posted: str, steps: list[tuple[float, str, object, dict]], *, board=None,
         owner=None) -> int:
    """Post a wish at `posted` (local time) and take each (hours after posting, action, actor,
    payload) step at its moment."""
    start = local(posted)
    with frozen_clock(start):
        wid = kit.post_wish(owner or kit.resident, board=board)["id"]
    for hours, action, actor, payload in steps:
        with frozen_clock(start + timedelta(hours=hours)):
            kit.do(wid, action, actor, **payload)
    return wid


def stats(kit, path: str = "/", user=None, **query) -> dict:
    response = kit.client.get(f"/api/v1/communities/{kit.cid}{path}stats", query_string=query,
                              headers=kit.h(user or kit.organiser))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def closed_path(kit, claim_h: float, close_h: float, rating: int = 5, claimer=None):
    claimer = claimer or kit.volunteer
    return [(0, "approve", kit.organiser, {"level": 1}), (claim_h, "claim", claimer, {}),
            (close_h - 0.5, "fulfil", claimer, {}),
            (close_h, "confirm", kit.resident, {"rating": rating})]
