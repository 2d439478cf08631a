"""`flask wishes tick`: the deadlines of the wish lifecycle, safe to run from cron every minute."""

import click
from flask.cli import AppGroup

from app.db import utcnow, write_transaction
from app.extensions import db
from app.wishes import service

wishes_cli = AppGroup("wishes", help="Micro-wish deadlines.")


@wishes_cli.command("tick")
def tick_command() -> None:
    """Auto-confirm old fulfilled wishes, release lapsed claims, flag unclaimed wishes.

    Idempotent: each wish is re-read under a lock in its own transaction and changed only if the
    deadline still applies, so overlapping runs (or a resident confirming meanwhile) do no harm.
    """
    now = utcnow()
    for label, due, step in (("auto-confirmed", service.due_auto_confirm, service.auto_confirm),
                             ("released (lapsed)", service.due_lapses, service.lapse),
                             ("flagged for dispatch", service.due_escalations, service.escalate)):
        done = 0
        for wish_id in due(now):
            with write_transaction(db.session):
                done += bool(step(wish_id, now))
        click.echo(f"{label}: {done}")


def register(app) -> None:
    app.cli.add_command(wishes_cli)
