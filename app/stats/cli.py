"""`flask stats close-month`: store each ended month's 红黄蓝 board ratings (cron, safe to repeat)."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from app.db import write_transaction
from app.extensions import db

stats_cli = AppGroup("stats", help="Statistics and 红黄蓝 ratings.")


@stats_cli.command("close-month")
@click.option("--month", help="YYYY-MM: close this month only (it must have ended).")
@click.option("--community", "code", help="Only the community with this code.")
def close_month_command(month: str | None, code: str | None) -> None:
    """Store the ratings of every ended month not yet closed (each community, oldest first).

    Run it from cron shortly after midnight on the 1st. Running it again stores nothing new, and
    a stored month never changes afterwards.
    """
    from app.communities.models import Community
    from app.errors import APIError
    from app.stats import ratings, service

    statement = sa.select(Community.id, Community.code).order_by(Community.id)
    if code:
        statement = statement.where(Community.code == code)
    communities = db.session.execute(statement).all()
    if code and not communities:
        raise click.BadParameter(f"no community has the code {code!r}", param_hint="--community")
    wanted = None
    if month:
        try:
            wanted = service.parse_month(month)
        except APIError:
            raise click.BadParameter("use YYYY-MM, e.g. 2026-11", param_hint="--month") from None
        if wanted >= service.today().replace(day=1):
            raise click.BadParameter("that month has not ended yet", param_hint="--month")
    closed = 0
    for community_id, community_code in communities:
        months = [wanted] if wanted else ratings.months_to_close(community_id)
        for each in months:
            with write_transaction(db.session):
                if ratings.close_month(community_id, each):
                    closed += 1
                    click.echo(f"{community_code} {each:%Y-%m}: ratings stored")
    click.echo(f"{closed} month(s) closed")


def register(app: Flask) -> None:
    app.cli.add_command(stats_cli)
