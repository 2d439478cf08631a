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
from app.communities.models import Team, TeamMember
from app.db import insert_unless_present, utcnow
from app.extensions import db
from app.ledger.models import (
    EARNING_KINDS,
    SOURCES,
    Account,
    AccountKind,
    Entry,
    LeaderboardSnapshot,
    Transfer,
    TransferKind,
)
from app.localtime import SHANGHAI, local_date, midnight_utc

# Adjustments count (signed): they correct what was earned.
COUNTED_KINDS = [k.value for k in EARNING_KINDS] + [TransferKind.ADJUSTMENT.value]


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


def counted_kinds(source: str | None) -> list[str]:
    """The transfer kinds a ranking counts: one source's (wish, report, …) or all of them."""
    return [SOURCES[source].value] if source else COUNTED_KINDS


def _volunteer_rows(community_id: int, start: date | None, end: date | None,
                    source: str | None = None) -> list[dict]:
    points = sa.func.sum(Entry.amount)
    wishes = sa.func.sum(sa.case(
        (sa.and_(Transfer.kind == TransferKind.EARN_WISH.value, Entry.amount > 0), 1), else_=0))
    statement = (
        sa.select(Account.user_id, points.label("points"), wishes.label("wishes_fulfilled"),
                  sa.func.max(Entry.id).label("last_entry_id"),
                  sa.func.max(Entry.created_at).label("last_earned_at"))
        .select_from(Entry)
        .join(Account, Account.id == Entry.account_id)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .where(Entry.community_id == community_id, Account.kind == AccountKind.USER.value,
               Transfer.kind.in_(counted_kinds(source)))
        .group_by(Account.user_id)
        .having(points > 0)
    )
    if start is not None:
        statement = statement.where(Entry.created_at >= midnight_utc(start),
                                    Entry.created_at < midnight_utc(end))
    # PostgreSQL's SUM of a bigint is a numeric (a Decimal here), which the frozen snapshot's
    # JSON column cannot store: points and counts are whole numbers, so make them ints.
    return [{**r, "points": int(r["points"]), "wishes_fulfilled": int(r["wishes_fulfilled"])}
            for r in db.session.execute(statement).mappings()]


def _rank(rows: list[dict], id_key: str, limit: int) -> list[dict]:
    rows.sort(key=lambda r: (-r["points"], r["last_entry_id"], r[id_key]))
    ranked = []
    for position, row in enumerate(rows[:limit], start=1):
        row = dict(row)
        row.pop("last_entry_id")
        last = row.get("last_earned_at")
        if isinstance(last, datetime) and last.tzinfo is None:
            row["last_earned_at"] = last.replace(tzinfo=UTC)
        ranked.append({"rank": position, **row})
    return ranked


def live_ranking(community_id: int, start: date | None, end: date | None, by: str,
                 limit: int, source: str | None = None) -> list[dict]:
    rows = _volunteer_rows(community_id, start, end, source)
    if by == "team":
        return _rank(_team_rows(community_id, rows), "team_id", limit)
    names = dict(db.session.execute(
        sa.select(User.id, User.display_name).where(User.id.in_([r["user_id"] for r in rows]))
    ).all()) if rows else {}
    for row in rows:
        row["display_name"] = names.get(row["user_id"], "")
    return _rank(rows, "user_id", limit)


def _team_rows(community_id: int, volunteer_rows: list[dict]) -> list[dict]:
    by_user = {r["user_id"]: r for r in volunteer_rows}
    teams: dict[int, dict] = {}
    members = db.session.execute(
        sa.select(Team.id, Team.name, TeamMember.user_id)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(Team.community_id == community_id)
    ).all()
    for team_id, name, user_id in members:
        row = by_user.get(user_id)
        if row is None:
            continue
        team = teams.setdefault(team_id, {"team_id": team_id, "display_name": name, "points": 0,
                                          "wishes_fulfilled": 0, "last_entry_id": 0,
                                          "last_earned_at": None})
        team["points"] += row["points"]
        team["wishes_fulfilled"] += row["wishes_fulfilled"]
        if row["last_entry_id"] > team["last_entry_id"]:
            team["last_entry_id"] = row["last_entry_id"]
            team["last_earned_at"] = row["last_earned_at"]
    return [t for t in teams.values() if t["points"] > 0]


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
             else _jsonable(live_ranking(community_id, start, end, by, limit, source)))
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
        ranking = _jsonable(live_ranking(community_id, start, start + timedelta(days=7), by,
                                         limit=100))
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
