"""`flask notifications remind`: the time-driven events, once a day from cron.

Each reminder is an outbox event with a unique key per object and threshold
(`points.expiring:<account>:<day>`, `redemption.expiring:<id>`, `activity.reminder:<id>`), so a
second run the same day — or two at once — tells nobody twice. Each community is one short
write transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.db import utcnow, write_transaction
from app.extensions import db
from app.localtime import local_date, midnight_utc
from app.notifications import outbox

POINTS_DAYS = 7  # points expiring within a week
REDEMPTION_DAYS = 3  # a redemption not picked up, expiring within three days


def remind(now: datetime | None = None) -> dict:
    now = now or utcnow()
    counts = {"points_expiring": 0, "redemptions_expiring": 0, "activities_tomorrow": 0}
    for community_id in _communities():
        with write_transaction(db.session):
            counts["points_expiring"] += _points(community_id, now)
            counts["redemptions_expiring"] += _redemptions(community_id, now)
            counts["activities_tomorrow"] += _activities(community_id, now)
    return counts


def _communities() -> list[int]:
    from app.communities.models import Community

    return list(db.session.scalars(sa.select(Community.id).order_by(Community.id)))


def _points(community_id: int, now: datetime) -> int:
    from app.ledger import service as ledger
    from app.ledger.models import Account, PointsLot

    if ledger.policy_for(community_id)["expiry_months"] is None:
        return 0
    today = local_date(now)
    holders = db.session.execute(
        sa.select(Account.id, Account.user_id).where(
            Account.community_id == community_id, Account.user_id.is_not(None),
            Account.id.in_(sa.select(PointsLot.account_id).where(
                PointsLot.community_id == community_id, PointsLot.remaining > 0)))
        .order_by(Account.id)).all()
    told = 0
    for account_id, user_id in holders:
        soon = ledger.expiring(community_id, account_id, today)
        if soon and soon["on"] <= today + timedelta(days=POINTS_DAYS):
            told += outbox.points_expiring(community_id, user_id, account_id, soon["points"],
                                           soon["on"]) is not None
    return told


def _redemptions(community_id: int, now: datetime) -> int:
    from app.store import service as store
    from app.store.models import AWAITING_PICKUP, Redemption

    days = timedelta(days=store.expiry_days(community_id))
    # Expiring (created + days) between now and three days from now.
    waiting = db.session.scalars(sa.select(Redemption).where(
        Redemption.community_id == community_id, Redemption.status == AWAITING_PICKUP,
        Redemption.created_at > now - days,
        Redemption.created_at <= now - days + timedelta(days=REDEMPTION_DAYS))
        .order_by(Redemption.id)).all()
    told = 0
    for redemption in waiting:
        told += outbox.redemption_changed(
            redemption, "redemption.expiring", None,
            expires_on=local_date(redemption.created_at + days)) is not None
    return told


def _activities(community_id: int, now: datetime) -> int:
    from app.activities.models import PUBLISHED, SIGNED_UP, Activity, SignUp

    tomorrow = local_date(now) + timedelta(days=1)
    starting = db.session.scalars(sa.select(Activity).where(
        Activity.community_id == community_id, Activity.status == PUBLISHED,
        Activity.starts_at >= midnight_utc(tomorrow),
        Activity.starts_at < midnight_utc(tomorrow + timedelta(days=1)))
        .order_by(Activity.id)).all()
    told = 0
    for activity in starting:
        people = list(db.session.scalars(sa.select(SignUp.user_id).where(
            SignUp.activity_id == activity.id, SignUp.status == SIGNED_UP)))
        if people:
            told += outbox.activity_changed(activity, "activity.reminder", None, people,
                                            key=f"activity.reminder:{activity.id}") is not None
    return told
