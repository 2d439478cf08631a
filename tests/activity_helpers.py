"""Helpers shared by the volunteer-activity tests (issue 9). Not a test module."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.helpers import reading

API = "/api/v1"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def activity_body(**overrides) -> dict:
    """A valid activity starting in two days, two hours long, 10 places, level 2, 2.5 h."""
    start = now() + timedelta(days=2)
    body = {"title": "重阳节敬老院陪伴", "description": "陪老人聊天、读报。\n请带水杯。",
            "place": "管园村敬老院", "starts_at": iso(start),
            "ends_at": iso(start + timedelta(hours=2)), "capacity": 10, "level": 2,
            "hours": 2.5}
    body.update(overrides)
    return body


def publish(client, headers: dict, community_id: int, **overrides) -> dict:
    response = client.post(f"{API}/communities/{community_id}/activities", headers=headers,
                           json=activity_body(**overrides))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def set_times(app, activity_id: int, *, starts_in: timedelta, lasts: timedelta = timedelta(hours=2)):
    """Move an activity in time (negative `starts_in`: it started that long ago)."""
    from app.activities.models import Activity
    from app.db import write_transaction
    from app.extensions import db

    with app.app_context():
        with write_transaction(db.session):
            start = now() + starts_in
            db.session.execute(sa.update(Activity).where(Activity.id == activity_id)
                               .values(starts_at=start, ends_at=start + lasts))
        db.session.remove()


def activity_row(app, activity_id: int) -> dict:
    from app.activities.models import Activity

    with reading(app) as session:
        row = session.get(Activity, activity_id)
        return {c.name: getattr(row, c.name) for c in Activity.__table__.columns}


def signups(app, activity_id: int) -> dict[int, dict]:
    """user_id → the sign-up row's columns."""
    from app.activities.models import SignUp

    with reading(app) as session:
        rows = session.scalars(sa.select(SignUp).where(SignUp.activity_id == activity_id)).all()
        return {r.user_id: {c.name: getattr(r, c.name) for c in SignUp.__table__.columns}
                for r in rows}


def awards(app, activity_id: int) -> list[tuple[str, int]]:
    from app.ledger.models import Transfer

    with reading(app) as session:
        return [tuple(r) for r in session.execute(
            sa.select(Transfer.key, Transfer.amount).where(
                Transfer.key.like(f"activity:{activity_id}:%")).order_by(Transfer.key))]


def current_code(app, activity_id: int) -> str:
    from app.activities import service

    with app.app_context():
        return service._code_at(activity_id, service._step(now()))


def token_for(app, activity_id: int) -> str:
    from app.activities import service

    with app.app_context():
        return service.checkin_token(activity_id)


def volunteers(factory, community, count: int, prefix: str = "志愿者") -> list:
    return [factory.member(community, factory.user(f"{prefix}{i}"), "volunteer")
            for i in range(count)]
