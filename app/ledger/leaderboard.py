"""Leaderboards of points *earned* (never the spendable balance) and frozen weekly champions.

Periods are Asia/Shanghai calendar periods: the week starts Monday 00:00, the month on the 1st.
Ties break deterministically: the earlier achiever first (the one whose last counted entry came
first), then the lower id. A closed week's ranking is stored by `freeze_week`; reading that week
afterwards returns the stored ranking, whatever adjustments land later.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from app.auth.models import User
from app.communities.models import Team
from app.db import insert_unless_present, utcnow
from app.extensions import db
from app.ledger import totals
from app.ledger.models import (
    Entry,
    LeaderboardSnapshot,
    LeaderboardTotal,
)
from app.localtime import SHANGHAI, local_date


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def local_today(now: datetime | None = None) -> date:
    return local_date(now or utcnow())


def period_bounds(period: str, on: date) -> tuple[date | None, date | None]:
    """Local [start, end) dates of the period containing `on` (None, None for all time)."""
    if period == "week":
        start = week_start(on)
        return start, start + timedelta(days=7)
    if period == "month":
        start = on.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
        return start, following
    return None, None


def _top(by: str, named, name) -> sa.Select:
    total = LeaderboardTotal
    return (sa.select(total.subject_id, name, total.points, total.wishes_fulfilled,
                      Entry.created_at)
            .join(named, named.id == total.subject_id)
            .join(Entry, Entry.id == total.last_entry_id)
            .where(total.community_id == sa.bindparam("community"),
                   total.period == sa.bindparam("period"),
                   total.period_start == sa.bindparam("start", type_=sa.Date),
                   total.source == sa.bindparam("source"), total.by == by, total.points > 0)
            .order_by(total.points.desc(), total.last_entry_id, total.subject_id)
            .limit(sa.bindparam("limit", type_=sa.Integer)))


# The rankings, built once (composing a statement costs more than running this one).
_TOP = {"volunteer": _top("volunteer", User, User.display_name),
        "team": _top("team", Team, Team.name)}


def live_ranking(community_id: int, period: str, start: date | None, by: str, limit: int,
                 source: str | None = None) -> list[dict]:
    """The top `limit` of a period from its pre-aggregated totals (app/ledger/totals.py): one
    index range scan, whatever the history's length, and as fresh as the last commit."""
    rows = db.session.execute(_TOP[by], {
        "community": community_id, "period": period, "start": start or totals.ALL_TIME,
        "source": source or totals.ALL_SOURCES, "limit": limit}).all()
    id_key = "user_id" if by == "volunteer" else "team_id"
    return [{"rank": position, id_key: subject_id, "display_name": name, "points": int(points),
             "wishes_fulfilled": int(wishes), "last_earned_at": last}
            for position, (subject_id, name, points, wishes, last) in enumerate(rows, start=1)]


def leaderboard(community_id: int, period: str, by: str, limit: int,
                on: date | None = None, source: str | None = None) -> dict:
    """The ranking of a period; a closed week's is the frozen one (of all sources)."""
    today = local_today()
    on = on or today
    start, end = period_bounds(period, on)
    frozen = None
    if period == "week" and end <= today and source is None:
        frozen = db.session.get(LeaderboardSnapshot, (community_id, start, by))
    items = (frozen.ranking[:limit] if frozen
             else _jsonable(live_ranking(community_id, period, start, by, limit, source)))
    return {
        "period": period,
        "by": by,
        "source": source,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "frozen": frozen is not None,
        "frozen_at": frozen.frozen_at if frozen else None,
        "champion": items[0] if items else None,
        "items": items,
    }


def standing(community_id: int, period: str, by: str, subject_ids, source: str | None = None,
             on: date | None = None) -> tuple[list[dict], int]:
    """These volunteers' (or teams') rows in a live ranking, each with its rank, and how many
    are ranked: their own rows and two counts of one index range, not the whole ranking."""
    start, _end = period_bounds(period, on or local_today())
    total = LeaderboardTotal
    ranked = (total.community_id == community_id, total.period == period,
              total.period_start == (start or totals.ALL_TIME),
              total.source == (source or totals.ALL_SOURCES), total.by == by, total.points > 0)
    named, name, id_key = ((User, User.display_name, "user_id") if by == "volunteer"
                           else (Team, Team.name, "team_id"))
    ahead = sa.orm.aliased(total)
    before = (sa.select(sa.func.count()).where(
        ahead.community_id == total.community_id, ahead.period == total.period,
        ahead.period_start == total.period_start, ahead.source == total.source,
        ahead.by == total.by, ahead.points > 0,
        sa.tuple_(-ahead.points, ahead.last_entry_id, ahead.subject_id)
        < sa.tuple_(-total.points, total.last_entry_id, total.subject_id))
        .scalar_subquery())
    ids = sorted(set(subject_ids))
    rows = db.session.execute(
        sa.select(before, total.subject_id, name, total.points, total.wishes_fulfilled,
                  Entry.created_at)
        .join(named, named.id == total.subject_id)
        .join(Entry, Entry.id == total.last_entry_id)
        .where(*ranked, total.subject_id.in_(ids))
        .order_by(total.points.desc(), total.last_entry_id, total.subject_id)).all() if ids else []
    count = db.session.scalar(sa.select(sa.func.count()).select_from(total).where(*ranked))
    own = [{"rank": int(ahead_of) + 1, id_key: subject_id, "display_name": display_name,
            "points": int(points), "wishes_fulfilled": int(wishes), "last_earned_at": last}
           for ahead_of, subject_id, display_name, points, wishes, last in rows]
    return _jsonable(own), int(count or 0)


def _jsonable(ranking: list[dict]) -> list[dict]:
    out = []
    for row in ranking:
        row = dict(row)
        if isinstance(row.get("last_earned_at"), datetime):
            row["last_earned_at"] = row["last_earned_at"].astimezone(SHANGHAI).isoformat()
        out.append(row)
    return out


def freeze_week(community_id: int, start: date) -> bool:
    """Store the ranking of the week starting `start` (a Monday) unless already stored."""
    created = False
    for by in ("volunteer", "team"):
        if db.session.get(LeaderboardSnapshot, (community_id, start, by)) is not None:
            continue
        ranking = _jsonable(live_ranking(community_id, "week", start, by, limit=100))
        # Cron on another server may store the same week at the same moment: the first one
        # stays, and this run neither fails nor overwrites it.
        statement = insert_unless_present(db.session, LeaderboardSnapshot, {
            "community_id": community_id, "week_start": start, "by": by, "ranking": ranking,
            "frozen_at": utcnow()}, ["community_id", "week_start", "by"])
        # (RETURNING, not rowcount: the driver may report -1 for an insert.)
        if db.session.execute(statement.returning(LeaderboardSnapshot.by)).first() is not None:
            created = True
    return created


def weeks_to_freeze(community_id: int, today: date | None = None) -> list[date]:
    """Closed weeks not frozen yet, from the week of the community's first entry to last week.

    Every closed week is considered, not only those after the newest snapshot, so a week frozen
    by hand (`--week`) never hides an older one that cron missed.
    """
    last_closed = week_start(today or local_today()) - timedelta(days=7)
    first_entry = db.session.scalar(sa.select(sa.func.min(Entry.created_at)).where(
        Entry.community_id == community_id))
    first = last_closed
    if first_entry is not None:
        if first_entry.tzinfo is None:
            first_entry = first_entry.replace(tzinfo=UTC)
        first = min(first, week_start(local_date(first_entry)))
    frozen = set(db.session.execute(
        sa.select(LeaderboardSnapshot.week_start, LeaderboardSnapshot.by)
        .where(LeaderboardSnapshot.community_id == community_id)).all())
    weeks = []
    while first <= last_closed:
        if (first, "volunteer") not in frozen or (first, "team") not in frozen:
            weeks.append(first)
        first += timedelta(days=7)
    return weeks
