"""`flask outbox run` (the delivery worker) and `flask notifications remind` (daily, cron)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

outbox_cli = AppGroup("outbox", help="Deliver the outbox's webhook events.")
notifications_cli = AppGroup("notifications", help="Time-driven notifications.")


@outbox_cli.command("run")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (for cron).")
@click.option("--batch", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="Deliveries claimed at a time.")
@click.option("--idle", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
              help="Seconds to wait when nothing is due.")
def outbox_run_command(once: bool, batch: int, idle: float) -> None:
    """Send pending webhook deliveries: at least once, with backoff; several workers may run."""
    from app.notifications import delivery

    totals = delivery.run(once=once, batch=batch, idle=idle)
    click.echo(" ".join(f"{name}={count}" for name, count in totals.items()))


@notifications_cli.command("remind")
def remind_command() -> None:
    """Tell people of points expiring within 7 days, redemptions expiring in 3 days and
    activities starting tomorrow; running it twice tells nobody twice."""
    from app.notifications import reminders

    counts = reminders.remind()
    click.echo(" ".join(f"{name}={count}" for name, count in counts.items()))


def register(app: Flask) -> None:
    app.cli.add_command(outbox_cli)
    app.cli.add_command(notifications_cli)
