"""Statistics of one community, of its boards and teams, or of a street's or district's
communities — all computed by SQL aggregates, never by loading rows into Python.

Periods are Asia/Shanghai calendar days, both ends included. Wish figures are a *cohort*: the
wishes posted in the period, in the state they are in now, so 办结率 = closed ÷ (posted −
cancelled − rejected) of that cohort (None when the denominator is 0). Flows (points moved,
activities held) count what happened in the period.

Percentiles have percentile_cont semantics (linear interpolation between the two nearest ranks)
on both databases: PostgreSQL's own `percentile_cont … WITHIN GROUP`, and on SQLite, which has
no percentile function, the same arithmetic over `row_number()` / `count()` window functions.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.activities.models import ATTENDED, COMPLETED, Activity, SignUp
from app.communities.models import Community, Membership, Role, Team, TeamMember
from app.db import dialect_name, utcnow
from app.errors import ValidationFailed
from app.extensions import db
from app.i18n import N_
from app.ledger.leaderboard import period_bounds, week_start
from app.ledger.models import EARNING_KINDS, Account, AccountKind, Transfer, TransferKind
from app.localtime import local_date, midnight_utc
from app.reports import transitions as report_lifecycle
from app.reports.models import Report
from app.wishes import transitions as wish_lifecycle
from app.wishes.models import Board, Wish

PERCENTILES = (0.5, 0.9)
RATINGS = ("1", "2", "3", "4", "5")
EARNING = [k.value for k in EARNING_KINDS]


# --- periods --------------------------------------------------------------------------------

def today() -> date:
    return local_date(utcnow())


def utc_range(start: date, end: date) -> tuple[datetime, datetime]:
    """[00:00 of `start`, 00:00 of the day after `end`) in Asia/Shanghai, as UTC."""
    return midnight_utc(start), midnight_utc(end + timedelta(days=1))


def period(query: dict) -> tuple:
    """The [from, to] of a query, defaulting to this month so far (to before from → 422)."""
    today_ = today()
    start = query.get("from_") or today_.replace(day=1)
    end = query.get("to") or max(today_, start)
    if end < start:  # only `from` was given, and it is in the future
        end = start
    return start, end


def month_bounds(month: date) -> tuple[date, date]:
    """The first and last day (inclusive) of the month containing `month`."""
    first, following = period_bounds("month", month)
    return first, following - timedelta(days=1)


def parse_month(text: str | None, field: str = "month") -> date:
    """'YYYY-MM' → the 1st of that month; None → the current month (Asia/Shanghai)."""
    if text is None:
        return today().replace(day=1)
    try:
        year, month = text.split("-")
        if len(year) != 4 or len(month) != 2 or not text.isascii():  # not "２０２６-11"
            raise ValueError
        return date(int(year), int(month), 1)
    except ValueError:
        raise ValidationFailed(field, N_("请用 YYYY-MM 格式填写月份，例如 2026-11。")) from None


def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


# --- SQL building blocks --------------------------------------------------------------------

def _seconds(later, earlier):
    """Seconds from `earlier` to `later`, as a float SQL expression on either database."""
    if dialect_name(db.session) == "postgresql":
        return sa.extract("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


def _count_if(condition):
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _grouped(statement, group):
    """Add the grouping column (or a constant 0 when there is none) to a statement."""
    if group is None:
        return statement.add_columns(sa.literal(0).label("g")), None
    return statement.add_columns(group.label("g")).group_by(group), group


def _percentiles(cohort: sa.Select, value, group) -> dict:
    """{group: {0.5: x, 0.9: y}} of `value` over the cohort's rows where it is known.

    `cohort` is a select of wishes (already filtered); `value` a column expression on it.
    """
    rows_with_value = cohort.where(value.is_not(None))
    if dialect_name(db.session) == "postgresql":
        columns = [sa.func.percentile_cont(p).within_group(value).label(f"p{int(p * 100)}")
                   for p in PERCENTILES]
        statement, _ = _grouped(rows_with_value.with_only_columns(*columns), group)
        return {row.g: {p: _float(getattr(row, f"p{int(p * 100)}")) for p in PERCENTILES}
                for row in db.session.execute(statement)}
    # SQLite: rank each value within its group, then interpolate between ranks floor(p·(n−1))
    # and floor(p·(n−1)) + 1 (0-based), exactly as percentile_cont does.
    partition = [group] if group is not None else []
    ranked = rows_with_value.with_only_columns(
        value.label("v"),
        (sa.func.row_number().over(partition_by=partition, order_by=value) - 1).label("r"),
        sa.func.count().over(partition_by=partition).label("n"),
        (group if group is not None else sa.literal(0)).label("g"),
    ).subquery()
    columns = []
    for p in PERCENTILES:
        position = p * (ranked.c.n - 1)
        low = sa.cast(position, sa.Integer)
        low_value = sa.func.max(sa.case((ranked.c.r == low, ranked.c.v)))
        high_value = sa.func.max(sa.case((ranked.c.r == low + 1, ranked.c.v)))
        fraction = sa.func.max(position - low)
        columns.append((low_value + fraction * (sa.func.coalesce(high_value, low_value)
                                                - low_value)).label(f"p{int(p * 100)}"))
    statement = sa.select(ranked.c.g, *columns).group_by(ranked.c.g)
    return {row.g: {p: _float(getattr(row, f"p{int(p * 100)}")) for p in PERCENTILES}
            for row in db.session.execute(statement)}


def _float(value) -> float | None:
    return None if value is None else round(float(value), 3)


def _cohort(community_ids: list[int], start: date, end: date) -> sa.Select:
    low, high = utc_range(start, end)
    return sa.select(Wish.id).where(Wish.community_id.in_(community_ids),
                                    Wish.created_at >= low, Wish.created_at < high)


def _wish_blocks(cohort: sa.Select, group=None) -> dict:
    """The wishes block of each group of the cohort: {group: block}."""
    status = Wish.status
    people_rated = sa.and_(Wish.rating.is_not(None), Wish.rating_auto.is_(False))
    columns = [sa.func.count().label("posted")]
    columns += [_count_if(status == s).label(s) for s in wish_lifecycle.STATUSES]
    columns += [_count_if(sa.and_(people_rated, Wish.rating == int(r))).label(f"r{r}")
                for r in RATINGS]
    columns.append(sa.func.avg(sa.case((people_rated, Wish.rating))).label("rating_avg"))
    statement, group = _grouped(cohort.with_only_columns(*columns), group)
    blocks = {}
    for row in db.session.execute(statement):
        block = {"posted": int(row.posted)}
        block.update({s: int(getattr(row, s)) for s in wish_lifecycle.STATUSES})
        distribution = {r: int(getattr(row, f"r{r}")) for r in RATINGS}
        block["completion_rate"] = completion_rate(block)
        block["satisfaction"] = {"average": _float(row.rating_avg),
                                 "count": sum(distribution.values()),
                                 "distribution": distribution}
        blocks[row.g] = block
    claim = _percentiles(cohort, _seconds(Wish.claimed_at, Wish.created_at), group)
    close = _percentiles(cohort.where(Wish.status == wish_lifecycle.CLOSED),
                         _seconds(Wish.closed_at, Wish.created_at), group)
    for key, block in blocks.items():
        block["time_to_claim_seconds"] = _timing(claim.get(key))
        block["time_to_close_seconds"] = _timing(close.get(key))
    return blocks


def _timing(found: dict | None) -> dict:
    found = found or {}
    return {"median": found.get(0.5), "p90": found.get(0.9)}


def completion_rate(block: dict) -> float | None:
    """办结率: closed ÷ (posted − cancelled − rejected); None, not 0, when nothing is left."""
    base = block["posted"] - block["cancelled"] - block["rejected"]
    return round(block["closed"] / base, 4) if base > 0 else None


def empty_wishes() -> dict:
    block = {"posted": 0, **{s: 0 for s in wish_lifecycle.STATUSES}, "completion_rate": None,
             "satisfaction": {"average": None, "count": 0,
                              "distribution": {r: 0 for r in RATINGS}}}
    block["time_to_claim_seconds"] = _timing(None)
    block["time_to_close_seconds"] = _timing(None)
    return block


def _points(community_ids: list[int], start: date, end: date) -> dict:
    low, high = utc_range(start, end)
    destination = aliased(Account)
    signed = sa.case((destination.kind == AccountKind.USER.value, Transfer.amount),
                     else_=-Transfer.amount)
    rows = db.session.execute(
        sa.select(Transfer.kind, sa.func.sum(Transfer.amount), sa.func.sum(signed))
        .join(destination, destination.id == Transfer.destination_id)
        # A transfer stays inside its community: naming the accounts' community too lets the
        # database read only its accounts, not every account of the district.
        .where(Transfer.community_id.in_(community_ids),
               destination.community_id.in_(community_ids), Transfer.created_at >= low,
               Transfer.created_at < high)
        .group_by(Transfer.kind)).all()
    totals = {kind: (int(total or 0), int(signed_total or 0))
              for kind, total, signed_total in rows}
    return {
        "issued": sum(totals.get(k, (0, 0))[0] for k in EARNING),
        "redeemed": totals.get(TransferKind.REDEMPTION.value, (0, 0))[0],
        "refunded": totals.get(TransferKind.REFUND.value, (0, 0))[0],
        # Adjustments are signed: to a volunteer +, taken back −.
        "adjusted": totals.get(TransferKind.ADJUSTMENT.value, (0, 0))[1],
        "expired": totals.get(TransferKind.EXPIRY.value, (0, 0))[0],
    }


def _active_volunteers(community_ids: list[int], start: date, end: date) -> sa.Select:
    """The volunteers active in the period: earned points, claimed or fulfilled a wish (a
    resident earning points for a report is not a volunteer)."""
    low, high = utc_range(start, end)
    earned = (sa.select(Account.user_id.label("user_id"), Account.community_id.label("cid"))
              .join(Transfer, Transfer.destination_id == Account.id)
              .where(Transfer.community_id.in_(community_ids),
                     Account.community_id.in_(community_ids), Transfer.kind.in_(EARNING),
                     Transfer.amount > 0, Transfer.created_at >= low, Transfer.created_at < high))
    in_period = sa.or_(sa.and_(Wish.claimed_at >= low, Wish.claimed_at < high),
                       sa.and_(Wish.fulfilled_at >= low, Wish.fulfilled_at < high))
    helped = (sa.select(Wish.claimer_id.label("user_id"), Wish.community_id.label("cid"))
              .where(Wish.community_id.in_(community_ids), Wish.claimer_id.is_not(None),
                     in_period))
    either = sa.union(earned, helped).subquery()
    return (sa.select(either.c.user_id, either.c.cid)
            .join(Membership, sa.and_(Membership.user_id == either.c.user_id,
                                      Membership.community_id == either.c.cid))
            .where(Membership.community_id.in_(community_ids),
                   Membership.role == Role.VOLUNTEER.value))


def _reports(community_ids: list[int], start: date, end: date, group=None) -> dict:
    low, high = utc_range(start, end)
    statement, _ = _grouped(sa.select(
        sa.func.count().label("received"),
        _count_if(Report.accepted_at.is_not(None)).label("accepted"),
        _count_if(Report.status == report_lifecycle.RESOLVED).label("resolved"),
        _count_if(Report.status == report_lifecycle.REJECTED).label("rejected"),
    ).where(Report.community_id.in_(community_ids), Report.created_at >= low,
            Report.created_at < high), group)
    return {row.g: {"received": int(row.received), "accepted": int(row.accepted),
                    "resolved": int(row.resolved), "rejected": int(row.rejected)}
            for row in db.session.execute(statement)}


def _activities(community_ids: list[int], start: date, end: date, group=None) -> dict:
    """Activities completed that started in the period: held, attendances, service hours."""
    low, high = utc_range(start, end)
    # Attendances joined per activity (the sign-ups' (activity, user) index), not summed over
    # every sign-up of the database first.
    statement, _ = _grouped(sa.select(
        sa.func.count(sa.distinct(Activity.id)).label("held"),
        sa.func.count(SignUp.id).label("attendances"),
        sa.func.coalesce(sa.func.sum(SignUp.half_hours_credited), 0).label("half_hours"),
    ).select_from(Activity)
        .outerjoin(SignUp, sa.and_(SignUp.activity_id == Activity.id, SignUp.status == ATTENDED))
        .where(Activity.community_id.in_(community_ids), Activity.status == COMPLETED,
               Activity.starts_at >= low, Activity.starts_at < high), group)
    return {row.g: {"held": int(row.held), "attendances": int(row.attendances),
                    "service_hours": int(row.half_hours) / 2}
            for row in db.session.execute(statement)}


def _empty_reports() -> dict:
    return {"received": 0, "accepted": 0, "resolved": 0, "rejected": 0}


def _empty_activities() -> dict:
    return {"held": 0, "attendances": 0, "service_hours": 0.0}


# --- what the API answers ---------------------------------------------------------------------

def community_stats(community_ids: list[int], start: date, end: date) -> dict:
    """The figures of one community — or of several, recomputed over all their rows (a
    street's median is the median of its wishes, not an average of medians)."""
    active = _active_volunteers(community_ids, start, end).subquery()
    return {
        "from": start.isoformat(), "to": end.isoformat(),
        "wishes": _wish_blocks(_cohort(community_ids, start, end)).get(0, empty_wishes()),
        "volunteers": {"active": int(db.session.scalar(
            sa.select(sa.func.count(sa.distinct(active.c.user_id)))) or 0)},
        "points": _points(community_ids, start, end),
        "reports": _reports(community_ids, start, end).get(0, _empty_reports()),
        "activities": _activities(community_ids, start, end).get(0, _empty_activities()),
    }


def by_community(community_ids: list[int], start: date, end: date) -> list[dict]:
    """One row per community of a street or district, its wishes, reports and activities."""
    communities = db.session.execute(
        sa.select(Community.id, Community.name, Community.code)
        .where(Community.id.in_(community_ids)).order_by(Community.id)).all()
    wishes = _wish_blocks(_cohort(community_ids, start, end), Wish.community_id)
    reports = _reports(community_ids, start, end, Report.community_id)
    activities = _activities(community_ids, start, end, Activity.community_id)
    active = _active_volunteers(community_ids, start, end).subquery()
    active_counts = dict(db.session.execute(
        sa.select(active.c.cid, sa.func.count(sa.distinct(active.c.user_id)))
        .group_by(active.c.cid)).all())
    return [{"community_id": cid, "name": name, "code": code,
             "wishes": wishes.get(cid, empty_wishes()),
             "volunteers": {"active": int(active_counts.get(cid, 0))},
             "reports": reports.get(cid, _empty_reports()),
             "activities": activities.get(cid, _empty_activities())}
            for cid, name, code in communities]


def board_stats(community_id: int, start: date, end: date) -> list[dict]:
    """Every board of the community (disabled ones too) with its cohort's wishes block."""
    blocks = _wish_blocks(_cohort([community_id], start, end), Wish.board_id)
    boards = db.session.execute(
        sa.select(Board.id, Board.name, Board.grid_label)
        .where(Board.community_id == community_id).order_by(Board.id)).all()
    return [{"board_id": bid, "board_name": name, "grid_label": grid,
             "wishes": blocks.get(bid, empty_wishes())} for bid, name, grid in boards]


def team_stats(community_id: int, start: date, end: date) -> list[dict]:
    """Every team: the cohort's wishes its members hold or did, points they earned in the
    period, how many of them were active, and their service hours from activities."""
    low, high = utc_range(start, end)
    cohort = _cohort([community_id], start, end).join(
        TeamMember, sa.and_(TeamMember.user_id == Wish.claimer_id,
                            TeamMember.community_id == community_id))
    blocks = _wish_blocks(cohort, TeamMember.team_id)
    members = dict(db.session.execute(
        sa.select(TeamMember.team_id, sa.func.count())
        .where(TeamMember.community_id == community_id).group_by(TeamMember.team_id)).all())
    earned = dict(db.session.execute(
        sa.select(TeamMember.team_id, sa.func.sum(Transfer.amount))
        .join(Account, Account.user_id == TeamMember.user_id)
        .join(Transfer, Transfer.destination_id == Account.id)
        .where(TeamMember.community_id == community_id, Account.community_id == community_id,
               Transfer.kind.in_(EARNING), Transfer.created_at >= low,
               Transfer.created_at < high)
        .group_by(TeamMember.team_id)).all())
    active = _active_volunteers([community_id], start, end).subquery()
    active_counts = dict(db.session.execute(
        sa.select(TeamMember.team_id, sa.func.count(sa.distinct(active.c.user_id)))
        .join(active, active.c.user_id == TeamMember.user_id)
        .where(TeamMember.community_id == community_id).group_by(TeamMember.team_id)).all())
    hours = dict(db.session.execute(
        sa.select(TeamMember.team_id, sa.func.sum(SignUp.half_hours_credited))
        .join(SignUp, SignUp.user_id == TeamMember.user_id)
        .join(Activity, Activity.id == SignUp.activity_id)
        .where(TeamMember.community_id == community_id, SignUp.community_id == community_id,
               SignUp.status == ATTENDED, Activity.status == COMPLETED,
               Activity.starts_at >= low, Activity.starts_at < high)
        .group_by(TeamMember.team_id)).all())
    teams = db.session.execute(sa.select(Team.id, Team.name).where(
        Team.community_id == community_id).order_by(Team.id)).all()
    return [{"team_id": tid, "team_name": name, "members": int(members.get(tid, 0)),
             "wishes": blocks.get(tid, empty_wishes()),
             "points_earned": int(earned.get(tid) or 0),
             "active_volunteers": int(active_counts.get(tid, 0)),
             "service_hours": int(hours.get(tid) or 0) / 2} for tid, name in teams]


def communities_of(street: str | None, district: str | None) -> list[int]:
    statement = sa.select(Community.id).order_by(Community.id)
    if street:
        statement = statement.where(Community.street == street)
    if district:
        statement = statement.where(Community.district == district)
    return list(db.session.scalars(statement))


# --- series for the dashboard -----------------------------------------------------------------

def _bucket(column, bounds: list[datetime]):
    """Which period a moment falls in: 0 before bounds[1], 1 before bounds[2], …"""
    return sa.case(*[(column < bound, i) for i, bound in enumerate(bounds[1:-1])],
                   else_=len(bounds) - 2)


def _series(community_id: int, starts: list[date], end: date) -> list[dict]:
    """The trend figures of consecutive periods (the i-th from starts[i] to the day before the
    next start; the last to `end`), three grouped queries whatever the number of periods."""
    bounds = [midnight_utc(start) for start in starts] + [midnight_utc(end + timedelta(days=1))]
    low, high = bounds[0], bounds[-1]
    wish_period = _bucket(Wish.created_at, bounds)
    wishes = {row.g: row for row in db.session.execute(
        sa.select(wish_period.label("g"), sa.func.count().label("posted"),
                  _count_if(Wish.status == wish_lifecycle.CLOSED).label("closed"),
                  _count_if(Wish.status == wish_lifecycle.CANCELLED).label("cancelled"),
                  _count_if(Wish.status == wish_lifecycle.REJECTED).label("rejected"))
        .where(Wish.community_id == community_id, Wish.created_at >= low,
               Wish.created_at < high).group_by(wish_period))}
    transfer_period = _bucket(Transfer.created_at, bounds)
    points: dict[int, dict[str, int]] = {}
    for g, kind, total in db.session.execute(
            sa.select(transfer_period, Transfer.kind, sa.func.sum(Transfer.amount))
            .where(Transfer.community_id == community_id,
                   Transfer.kind.in_([*EARNING, TransferKind.REDEMPTION.value]),
                   Transfer.created_at >= low, Transfer.created_at < high)
            .group_by(transfer_period, Transfer.kind)):
        points.setdefault(g, {})[kind] = int(total or 0)
    activity_period = _bucket(Activity.starts_at, bounds)
    hours = dict(db.session.execute(
        sa.select(activity_period, sa.func.sum(SignUp.half_hours_credited))
        .join(SignUp, sa.and_(SignUp.activity_id == Activity.id, SignUp.status == ATTENDED))
        .where(Activity.community_id == community_id, Activity.status == COMPLETED,
               Activity.starts_at >= low, Activity.starts_at < high)
        .group_by(activity_period)).all())
    series = []
    for i in range(len(starts)):
        found = wishes.get(i)
        block = ({"posted": int(found.posted), "closed": int(found.closed),
                  "cancelled": int(found.cancelled), "rejected": int(found.rejected)}
                 if found else {"posted": 0, "closed": 0, "cancelled": 0, "rejected": 0})
        kinds = points.get(i, {})
        series.append({"posted": block["posted"], "closed": block["closed"],
                       "completion_rate": completion_rate(block),
                       "points_issued": sum(kinds.get(k, 0) for k in EARNING),
                       "points_redeemed": kinds.get(TransferKind.REDEMPTION.value, 0),
                       "service_hours": int(hours.get(i) or 0) / 2})
    return series


def weekly_series(community_id: int, weeks: int, today_: date | None = None) -> list[dict]:
    """One point per Asia/Shanghai week (Monday first), oldest first, ending this week."""
    current = week_start(today_ or today())
    starts = [current - timedelta(days=7 * back) for back in range(weeks - 1, -1, -1)]
    return [{"week_start": start, **point} for start, point in
            zip(starts, _series(community_id, starts, current + timedelta(days=6)), strict=True)]


def monthly_series(community_id: int, months: int, today_: date | None = None) -> list[dict]:
    """One point per calendar month, oldest first, ending this month."""
    month = (today_ or today()).replace(day=1)
    starts = [month]
    for _ in range(months - 1):
        starts.insert(0, previous_month(starts[0]))
    return [{"month": start, **point} for start, point in
            zip(starts, _series(community_id, starts, month_bounds(month)[1]), strict=True)]
