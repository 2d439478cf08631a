"""`flask seed demo --weeks N` (issue 10 item 6): weeks of history lived through the services.

The clock is frozen on Thursday 5 November, so two weeks of history start on Monday
19 October and cross the end of October: that month is closed on the 1st by the nightly job.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from app.db import frozen_clock
from app.extensions import db
from app.localtime import SHANGHAI
from tests.helpers import reading

TODAY = datetime(2026, 11, 5, 15, 30, tzinfo=SHANGHAI)


def seed(app, *args: str) -> str:
    with frozen_clock(TODAY):
        result = app.test_cli_runner().invoke(args=["seed", "demo", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def row_counts(app) -> dict[str, int]:
    with reading(app) as session:
        tables = [t for t in sa.inspect(db.engine).get_table_names() if t != "alembic_version"]
        return {t: session.scalar(sa.select(sa.func.count()).select_from(sa.table(t)))
                for t in tables}


def grouped(session, column, *where) -> dict:
    return dict(session.execute(sa.select(column, sa.func.count()).where(*where)
                                .group_by(column)).all())


def test_two_weeks_of_history_every_state_frozen_weeks_and_a_closed_month(app):
    from app.activities.models import Activity, SignUp
    from app.ledger.models import LeaderboardSnapshot, Transfer
    from app.ledger.verify import verify
    from app.reports.models import Report
    from app.stats.models import BoardRating, ClosedMonth
    from app.store.models import Redemption
    from app.wishes.models import Wish, WishEvent
    from app.wishes.transitions import STATUSES

    output = seed(app, "--weeks", "2")
    assert "History: 2 weeks, 2026-10-19 to 2026-11-05" in output
    assert "Demo data ready" in output

    with reading(app) as session:
        states = grouped(session, Wish.status)
        assert set(states) == set(STATUSES), states
        assert 25 <= sum(states.values()) <= 60, states
        assert states["closed"] > sum(states.values()) / 2
        # Nothing happens after "now", and history begins on the Monday three weeks back.
        latest = session.scalar(sa.select(sa.func.max(WishEvent.created_at)))
        earliest = session.scalar(sa.select(sa.func.min(Wish.created_at)))
        assert latest <= TODAY
        assert earliest.astimezone(SHANGHAI).date() >= date(2026, 10, 19)

        actions = grouped(session, WishEvent.action)
        for action in ("approve", "reject", "cancel", "claim", "assign", "fulfil", "confirm",
                       "dispute", "auto_confirm", "lapse", "escalate"):
            assert actions.get(action), (action, actions)
        stars = grouped(session, Wish.rating, Wish.rating_auto.is_(False),
                        Wish.rating.is_not(None))
        assert stars.get(5, 0) + stars.get(4, 0) > 3 * sum(
            n for rating, n in stars.items() if rating < 4)

        kinds = grouped(session, Transfer.kind)
        for kind in ("earn_wish", "earn_report", "earn_activity", "adjustment", "redemption",
                     "refund"):
            assert kinds.get(kind), (kind, kinds)
        assert grouped(session, Report.status).get("resolved")
        assert grouped(session, Activity.status).get("completed")
        assert grouped(session, SignUp.status).get("attended")
        redemptions = grouped(session, Redemption.status)
        assert redemptions.get("fulfilled") and redemptions.get("cancelled"), redemptions

        weeks = set(session.scalars(sa.select(LeaderboardSnapshot.week_start).where(
            LeaderboardSnapshot.by == "volunteer")))
        assert weeks == {date(2026, 10, 19), date(2026, 10, 26)}
        assert set(session.scalars(sa.select(ClosedMonth.month))) == {date(2026, 10, 1)}
        colours = {r.board_name: r.rating for r in session.scalars(
            sa.select(BoardRating).where(BoardRating.month == date(2026, 10, 1)))}
        assert len(colours) == 3 and None not in colours.values(), colours
        assert len(set(colours.values())) >= 2, colours  # a mixed 红黄蓝 table

        assert all(report.ok for report in verify()), [r.violations for r in verify()]

    counts = row_counts(app)
    second = seed(app, "--weeks", "2")
    assert "History: skipped" in second
    assert row_counts(app) == counts

    verified = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert verified.exit_code == 0, verified.output


def test_weeks_zero_is_the_community_without_history(app):
    from app.ledger.models import LeaderboardSnapshot, Transfer
    from app.wishes.models import Board, Wish

    output = seed(app)
    assert "History" not in output
    assert seed(app, "--weeks", "0") == output
    with reading(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Board)) == 3
        for model in (Wish, Transfer, LeaderboardSnapshot):
            assert session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
