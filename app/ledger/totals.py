"""The leaderboards' pre-aggregates: points earned per period, kept as the points move.

A ranking summed over the entries grows with the history (at 1 000 000 entries a week's
board took most of a second); `leaderboard_totals` holds, per community, period (week, month,
all time), source (wish, report, activity, adjustment, or all of them) and volunteer or team,
the points earned so far, so a board is its top rows of one index. `transfer()` calls
`record()` in the same transaction as the entries, under the accounts' locks, so a board
reflects a transfer the moment it commits. `rebuild()` recomputes a community's rows from its
entries (seeding, the migration), and `differences()` is what `flask ledger verify` checks.

A team's row is the sum of its *current* members' rows that are above zero (a member whose
period nets a loss adds nothing, and takes nothing away): kept incrementally as members
earn, and recounted from the members' rows when membership changes or a member drops to zero.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from app.communities.models import TeamMember
from app.communities.service import TEAM_CHANGES
from app.db import dialect_insert, dialect_name, greatest
from app.extensions import db
from app.ledger.models import (
    SOURCES,
    Account,
    AccountKind,
    Entry,
    LeaderboardTotal,
    Transfer,
    TransferKind,
)
from app.localtime import local_date

ALL_TIME = date(1970, 1, 1)  # the period_start of the "all" period
ALL_SOURCES = "all"
SOURCE_OF_KIND = {kind.value: source for source, kind in SOURCES.items()}
KEY = ["community_id", "period", "period_start", "source", "by", "subject_id"]
COLUMNS = [*KEY, "points", "wishes_fulfilled", "last_entry_id"]

T = LeaderboardTotal


def period_starts(day: date) -> dict[str, date]:
    """The first day of each period containing the Asia/Shanghai day `day`."""
    return {"week": day - timedelta(days=day.weekday()), "month": day.replace(day=1),
            "all": ALL_TIME}


def _add_up(statement):
    """ON CONFLICT: add the new row's points and wishes to the stored row."""
    new = statement.excluded
    return statement.on_conflict_do_update(index_elements=KEY, set_={
        "points": T.points + new.points,
        "wishes_fulfilled": T.wishes_fulfilled + new.wishes_fulfilled,
        "last_entry_id": greatest(dialect_name(db.session), T.last_entry_id,
                                  new.last_entry_id)})


def record(community_id: int, user_id: int, kind: str, amount: int, entry_id: int,
           created_at: datetime) -> None:
    """Count one entry of a user's account (`amount` signed) in the user's and teams' rows.

    Called by transfer() only, for earnings and adjustments, with both accounts locked; every
    such transfer of a community also locks its issuance account, so two never interleave.
    """
    starts = period_starts(local_date(created_at))
    wish = 1 if kind == TransferKind.EARN_WISH.value and amount > 0 else 0
    rows = [{"community_id": community_id, "period": period, "period_start": start,
             "source": source, "by": "volunteer", "subject_id": user_id, "points": amount,
             "wishes_fulfilled": wish, "last_entry_id": entry_id}
            for period, start in starts.items()
            for source in (SOURCE_OF_KIND[kind], ALL_SOURCES)]
    statement = _add_up(dialect_insert(dialect_name(db.session))(T).values(rows))
    after = db.session.execute(statement.returning(
        T.period, T.period_start, T.source, T.points, T.wishes_fulfilled)).all()
    teams = db.session.scalars(sa.select(TeamMember.team_id).where(
        TeamMember.community_id == community_id, TeamMember.user_id == user_id)).all()
    if not teams:
        return
    increments, recount = [], []
    for period, start, source, points, wishes in after:
        before_points, before_wishes = points - amount, wishes - wish
        if points > 0:
            # Counted now: add what the member adds beyond what they counted for before.
            counted_points, counted_wishes = ((before_points, before_wishes)
                                              if before_points > 0 else (0, 0))
            increments += [{"community_id": community_id, "period": period,
                            "period_start": start, "source": source, "by": "team",
                            "subject_id": team_id, "points": points - counted_points,
                            "wishes_fulfilled": wishes - counted_wishes,
                            "last_entry_id": entry_id} for team_id in teams]
        elif before_points > 0:
            recount.append((period, start, source))  # no longer counted: sum the others
    if increments:
        db.session.execute(_add_up(dialect_insert(dialect_name(db.session))(T).values(increments)))
    if recount:
        recount_teams(community_id, teams, recount)


def recount_teams(community_id: int, team_ids, keys: list[tuple] | None = None) -> None:
    """Recompute teams' rows from their current members' rows (all periods, or `keys`:
    (period, period_start, source) triples). Membership changes call it."""
    team_ids = list(team_ids)
    if not team_ids:
        return
    member = sa.orm.aliased(T)
    match = sa.true() if keys is None else sa.or_(*(
        sa.and_(member.period == p, member.period_start == s, member.source == src)
        for p, s, src in keys))
    stored = sa.true() if keys is None else sa.or_(*(
        sa.and_(T.period == p, T.period_start == s, T.source == src) for p, s, src in keys))
    db.session.execute(sa.delete(T).where(
        T.community_id == community_id, T.by == "team", T.subject_id.in_(team_ids), stored))
    db.session.execute(sa.insert(T).from_select(
        ["community_id", "period", "period_start", "source", "by", "subject_id", "points",
         "wishes_fulfilled", "last_entry_id"],
        _team_sums(community_id, member, TeamMember.team_id.in_(team_ids), match)))


def _labelled(*columns) -> sa.Select:
    """A SELECT of the table's columns in order, named as the table names them."""
    return sa.select(*(column.label(name) for column, name in zip(columns, COLUMNS, strict=True)))


def _team_sums(community_id: int, member, *conditions) -> sa.Select:
    """Teams' rows as the sums of their current members' rows above zero."""
    return (_labelled(_sql(community_id), member.period, member.period_start,
                      member.source, _sql("team"), TeamMember.team_id,
                      sa.func.sum(member.points), sa.func.sum(member.wishes_fulfilled),
                      sa.func.max(member.last_entry_id))
            .select_from(TeamMember)
            .join(member, sa.and_(member.community_id == TeamMember.community_id,
                                  member.by == "volunteer",
                                  member.subject_id == TeamMember.user_id))
            .where(TeamMember.community_id == community_id, member.points > 0, *conditions)
            .group_by(TeamMember.team_id, member.period, member.period_start, member.source))


# --- from the entries: rebuilding and verifying -------------------------------------------

def _local_starts(dialect: str) -> dict[str, sa.ColumnElement]:
    """SQL for the first day of each period of an entry's Asia/Shanghai day (UTC+8 all year)."""
    # Constants are inlined, not bound: PostgreSQL matches a grouped expression to the selected
    # one only when they are written identically, and two bound parameters are not.
    at = Entry.created_at
    if dialect == "postgresql":
        local = sa.func.timezone(_sql("Asia/Shanghai"), at)
        return {"week": sa.cast(sa.func.date_trunc(_sql("week"), local), sa.Date),
                "month": sa.cast(sa.func.date_trunc(_sql("month"), local), sa.Date),
                "all": sa.cast(_sql(ALL_TIME.isoformat()), sa.Date)}
    return {"week": sa.func.date(at, _sql("+8 hours"), _sql("-6 days"), _sql("weekday 1")),
            "month": sa.func.date(at, _sql("+8 hours"), _sql("start of month")),
            "all": _sql(ALL_TIME.isoformat())}


def _sql(constant: str | int):
    """A constant of ours written into the SQL (never user input)."""
    if isinstance(constant, int):
        return sa.literal_column(str(int(constant)), sa.BigInteger)
    if "'" in constant:
        raise ValueError(constant)
    return sa.literal_column(f"'{constant}'", sa.String)


def expected_volunteer_rows(community_id: int, dialect: str) -> sa.CompoundSelect:
    """Every volunteer row, summed from the community's counted entries of user accounts."""
    source = sa.case(*((Transfer.kind == _sql(kind), _sql(name))
                       for kind, name in SOURCE_OF_KIND.items()))
    wish = sa.case((sa.and_(Transfer.kind == _sql(TransferKind.EARN_WISH.value),
                            Entry.amount > 0), 1), else_=0)
    selects = []
    for period, start in _local_starts(dialect).items():
        for by_source in (True, False):
            source_column = source if by_source else _sql(ALL_SOURCES)
            grouped = [start] if period != "all" else []
            selects.append(
                _labelled(_sql(community_id), _sql(period), start, source_column,
                          _sql("volunteer"), Account.user_id, sa.func.sum(Entry.amount),
                          sa.func.sum(wish), sa.func.max(Entry.id))
                .select_from(Entry)
                .join(Account, Account.id == Entry.account_id)
                .join(Transfer, Transfer.id == Entry.transfer_id)
                .where(Entry.community_id == community_id,
                       Transfer.community_id == community_id,  # (else every transfer is read)
                       Account.kind == AccountKind.USER.value,
                       Transfer.kind.in_(list(SOURCE_OF_KIND)))
                .group_by(Account.user_id, *grouped, *([source] if by_source else [])))
    return sa.union_all(*selects)


def _stored(community_id: int, by: str) -> sa.Select:
    return sa.select(*(getattr(T, c) for c in COLUMNS)).where(
        T.community_id == community_id, T.by == by)


def rebuild(community_id: int, session=None) -> None:
    """Recompute all of a community's rows from its entries and current teams (`session`:
    another than the app's, e.g. a migration's)."""
    session = session or db.session
    session.execute(sa.delete(T).where(T.community_id == community_id))
    session.execute(sa.insert(T).from_select(
        COLUMNS, expected_volunteer_rows(community_id, dialect_name(session))))
    session.execute(sa.insert(T).from_select(COLUMNS, _team_sums(community_id, T)))


def differences(community_id: int, limit: int = 20) -> list[str]:
    """What the stored rows and the entries disagree on (empty: they agree)."""
    problems = []
    checks = [("volunteer", expected_volunteer_rows(community_id, dialect_name(db.session))),
              ("team", _team_sums(community_id, sa.orm.aliased(T)))]
    for by, expected in checks:
        expected = expected.subquery()
        expected_rows = sa.select(*expected.c)
        for label, first, second in (("missing or wrong", expected_rows, _stored(community_id, by)),
                                     ("stored but not in the entries", _stored(community_id, by),
                                      expected_rows)):
            for row in db.session.execute(sa.except_(first, second).limit(limit)):
                _cid, period, start, source, _by, subject, points, wishes, last = row
                problems.append(f"leaderboard total ({label}): {by} {subject} {period} "
                                f"{start} {source}: {points} points, {wishes} wishes, "
                                f"last entry {last}")
    return problems


TEAM_CHANGES.append(recount_teams)  # members joined or left: their teams' rows are recounted
