"""Command-line tasks: `flask users create-admin`, `flask seed demo`."""

from __future__ import annotations

import os

import click
import marshmallow as ma
from flask import Flask
from flask.cli import AppGroup

from app.db import write_transaction
from app.extensions import db
from app.schemas import PHONE_PATTERN, Text

users_cli = AppGroup("users", help="Manage user accounts.")
seed_cli = AppGroup("seed", help="Load data into the database.")


@users_cli.command("create-admin")
@click.option("--phone", required=True, help="11-digit mobile number of the admin.")
@click.option("--name", "display_name", required=True, help="Display name of the admin.")
def create_admin_command(phone: str, display_name: str) -> None:
    """Make a platform admin (password from $ADMIN_PASSWORD or a hidden prompt).

    Running it again for the same phone grants the admin role and leaves the password alone.
    """
    from app.auth.service import create_admin, find_user_by_phone

    if not PHONE_PATTERN.fullmatch(phone):
        raise click.BadParameter("must be an 11-digit mainland China mobile number", param_hint="--phone")
    try:  # the same rule as registration: 1–32 characters after trimming, no control characters
        display_name = Text(max_length=32).deserialize(display_name)
    except ma.ValidationError as error:
        raise click.BadParameter(" ".join(error.messages), param_hint="--name") from None
    password = None
    if find_user_by_phone(phone) is None:
        password = os.environ.get("ADMIN_PASSWORD") or _prompt_password()
        if not 8 <= len(password) <= 128:
            raise click.ClickException("the password must be 8 to 128 characters")
    with write_transaction(db.session):
        user, created = create_admin(phone, display_name, password)
    what = "created" if created else "is now an admin (password unchanged)"
    click.echo(f"admin {user.phone} ({user.display_name}) {what}")


def _prompt_password() -> str:
    # click's prompt rather than getpass itself: the input is hidden the same way, and click's
    # test runner can answer it (getpass would read the real terminal).
    first = click.prompt("Password for the new admin", hide_input=True)
    second = click.prompt("Repeat the password", hide_input=True)
    if first != second:
        raise click.ClickException("the two passwords differ")
    return first


@seed_cli.command("demo")
@click.option("--weeks", type=click.IntRange(0, 52), default=0, show_default=True,
              help="Also live this many weeks of history up to now (wishes, ratings, reports, "
                   "activities, redemptions, frozen weeks, closed months); skipped when the "
                   "community has a history already.")
def seed_demo_command(weeks: int) -> None:
    """Load a believable demo community (幸福街道 管园村); running it twice changes nothing."""
    from app.demo import seed_demo

    with write_transaction(db.session):
        logins = seed_demo(weeks)
    if logins["history"] is not None:
        _echo_history(logins["history"], weeks)
    click.echo("Demo data ready. Log in with any of these (password for all: "
               f"{logins['password']}):")
    for role, phone, name in logins["accounts"]:
        click.echo(f"  {role:<10} {phone}  {name}")
    click.echo("Boards (the URL each QR code encodes; poster at …/poster):")
    for board_id, name, url in logins["boards"]:
        click.echo(f"  #{board_id} {name}: {url}")
    _echo_try_it(logins)


def _echo_history(history: dict, weeks: int) -> None:
    if history["skipped"]:
        click.echo("History: skipped (the demo community has wishes or points already).")
        return
    states = ", ".join(f"{state} {n}" for state, n in history["wishes"].items())
    plural = "" if weeks == 1 else "s"
    click.echo(f"History: {weeks} week{plural}, {history['start']} to {history['end']}")
    click.echo(f"  wishes: {sum(history['wishes'].values())} ({states})")
    click.echo(f"  points issued: {history['points_issued']}; reports: {history['reports']}; "
               f"activities: {history['activities']}; redemptions: {history['redemptions']}")
    click.echo(f"  weeks frozen: {history['weeks_frozen']}; months closed: "
               f"{history['months_closed']}")


def _echo_try_it(logins: dict) -> None:
    """Print where a newcomer starts: the home page, one board page and one login per role."""
    from flask import current_app

    first = {}
    for role, phone, name in logins["accounts"]:
        first.setdefault(role, (phone, name))
    click.echo("Try it:")
    click.echo(f"  home page:  {current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/")
    if logins["boards"]:
        _board_id, name, url = logins["boards"][0]
        click.echo(f"  board page: {url}  ({name})")
    for role in ("organiser", "volunteer", "resident"):
        if role in first:
            phone, name = first[role]
            click.echo(f"  {role + ':':<11} {phone}  {name}")
    click.echo(f"  password:   {logins['password']}")


def register(app: Flask) -> None:
    from app.ledger.cli import register as register_ledger
    from app.notifications.cli import register as register_notifications
    from app.stats.cli import register as register_stats
    from app.store.cli import register as register_store
    from app.wishes.cli import register as register_wishes

    app.cli.add_command(users_cli)
    app.cli.add_command(seed_cli)
    register_ledger(app)
    register_wishes(app)
    register_store(app)
    register_stats(app)
    register_notifications(app)
