"""`flask ledger verify`, `flask leaderboard rebuild-totals`, `flask leaderboard freeze` and
`flask points expire`."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from app.communities.models import Community
from app.db import write_transaction
from app.extensions import db
from app.ledger import leaderboard, totals
from app.ledger import service as ledger
from app.ledger.verify import verify

ledger_cli = AppGroup("ledger", help="Check the points ledger.")
leaderboard_cli = AppGroup("leaderboard", help="Leaderboards and weekly champions.")
points_cli = AppGroup("points", help="Points expiry (积分过期).")


@ledger_cli.command("verify")
@click.option("--community", "code", default=None, help="Only the community with this code.")
def verify_command(code: str | None) -> None:
    """Check balances against entries, zero-sum transfers, no negative balances, balance_after."""
    reports = verify(code)
    if code and not reports:
        raise click.ClickException(f"no community with code {code!r}")
    for report in reports:
        click.echo(report.summary())
        for violation in report.violations:
            click.echo(f"  - {violation}")
    if any(not r.ok for r in reports):
        sys.exit(1)


@leaderboard_cli.command("rebuild-totals")
@click.option("--community", "code", default=None, help="Only the community with this code.")
def rebuild_totals_command(code: str | None) -> None:
    """Recompute the leaderboards' totals from the entries (after a bulk import, say)."""
    query = sa.select(Community.id, Community.code).order_by(Community.id)
    if code:
        query = query.where(Community.code == code)
    communities = db.session.execute(query).all()
    if code and not communities:
        raise click.ClickException(f"no community with code {code!r}")
    for community_id, community_code in communities:
        with write_transaction(db.session):
            totals.rebuild(community_id)
        click.echo(f"{community_code}: leaderboard totals rebuilt")


@leaderboard_cli.command("freeze")
@click.option("--week", "week_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Freeze the week containing this day (default: every closed week not yet "
                   "frozen, up to last week).")
def freeze_command(week_of) -> None:
    """Store closed weeks' rankings (safe to run from cron, any number of times)."""
    today = leaderboard.local_today()
    total = 0
    community_ids = db.session.scalars(sa.select(Community.id).order_by(Community.id)).all()
    for community_id in community_ids:
        with write_transaction(db.session):
            if week_of is not None:
                start = leaderboard.week_start(week_of.date())
                if start + timedelta(days=7) > today:
                    raise click.ClickException("that week has not ended yet (Asia/Shanghai)")
                weeks = [start]
            else:
                weeks = leaderboard.weeks_to_freeze(community_id, today)
            total += sum(leaderboard.freeze_week(community_id, w) for w in weeks)
    click.echo(f"froze {total} community-weeks")


@points_cli.command("expire")
def expire_command() -> None:
    """Post the expiry of every point past its date (daily from cron; safe to repeat).

    One short write transaction per account, so it runs beside live traffic: a redemption
    waits at most for one account's expiries, and one that comes first posts them itself.
    """
    total = accounts = 0
    community_ids = db.session.scalars(sa.select(Community.id).order_by(Community.id)).all()
    for community_id in community_ids:
        with write_transaction(db.session):
            user_ids = ledger.accounts_with_due_expiries(community_id)
        for user_id in user_ids:
            with write_transaction(db.session):
                points = ledger.expire_due(community_id, user_id)
            accounts += points > 0
            total += points
    click.echo(f"expired {total} points in {accounts} accounts")


def register(app) -> None:
    app.cli.add_command(ledger_cli)
    app.cli.add_command(leaderboard_cli)
    app.cli.add_command(points_cli)
