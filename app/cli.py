"""Command-line tasks: `flask users create-admin`, `flask seed demo`."""

from __future__ import annotations

import getpass
import os

import click
from flask import Flask
from flask.cli import AppGroup

from app.db import write_transaction
from app.extensions import db
from app.schemas import PHONE_PATTERN

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

    if not PHONE_PATTERN.match(phone):
        raise click.BadParameter("must be an 11-digit mainland China mobile number", param_hint="--phone")
    password = None
    if find_user_by_phone(phone) is None:
        password = os.environ.get("ADMIN_PASSWORD") or _prompt_password()
        if not 8 <= len(password) <= 128:
            raise click.ClickException("the password must be 8 to 128 characters")
    with write_transaction(db.session):
        user, created = create_admin(phone, display_name.strip()[:32], password)
    what = "created" if created else "is now an admin (password unchanged)"
    click.echo(f"admin {user.phone} ({user.display_name}) {what}")


def _prompt_password() -> str:
    first = getpass.getpass("Password for the new admin: ")
    second = getpass.getpass("Repeat the password: ")
    if first != second:
        raise click.ClickException("the two passwords differ")
    return first


@seed_cli.command("demo")
def seed_demo_command() -> None:
    """Load a believable demo community (幸福街道 管园村); running it twice changes nothing."""
    from app.demo import seed_demo

    with write_transaction(db.session):
        logins = seed_demo()
    click.echo("Demo data ready. Log in with any of these (password for all: "
               f"{logins['password']}):")
    for role, phone, name in logins["accounts"]:
        click.echo(f"  {role:<10} {phone}  {name}")


def register(app: Flask) -> None:
    from app.ledger.cli import register as register_ledger

    app.cli.add_command(users_cli)
    app.cli.add_command(seed_cli)
    register_ledger(app)
