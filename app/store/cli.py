"""`flask redemptions expire`: refund redemptions nobody picked up in time."""

import click
from flask.cli import AppGroup

from app.db import utcnow, write_transaction
from app.extensions import db
from app.store import service

redemptions_cli = AppGroup("redemptions", help="The points store's redemptions.")


@redemptions_cli.command("expire")
def expire_command() -> None:
    """Cancel and refund redemptions awaiting pickup for longer than the community allows.

    Idempotent and cron-safe: each redemption is re-read under a lock in its own transaction,
    and the refund's ledger key (`redemption:<id>:refund`) posts at most once.
    """
    now = utcnow()
    done = 0
    for redemption_id in service.due_expiry(now):
        with write_transaction(db.session):
            done += bool(service.expire(redemption_id, now))
    click.echo(f"expired and refunded: {done}")


def register(app) -> None:
    app.cli.add_command(redemptions_cli)
