"""`flask ledger verify`, the append-only triggers and the balance CHECK (issue 3).

The data is corrupted behind the service's back with plain SQL (accounts are ordinary rows;
entries can still be INSERTed), and verify must notice each kind of damage.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.db import write_transaction
from app.extensions import db
from app.ledger import service
from app.ledger.models import Account, Entry, Transfer, TransferKind
from app.ledger.verify import verify
from tests.helpers import reading
from tests.ledger_helpers import assert_verified, ledger_rows


@pytest.fixture
def activity(app, world):
    """Some history in both communities: awards, a capped award, adjustments, redemptions,
    a refund. Returns the ids the corruptions aim at."""
    ids = {}
    with app.app_context(), write_transaction(db.session):
        for community, volunteer, organiser in (
                (world.community, world.volunteer, world.organiser),
                (world.other, world.other_volunteer, world.other_organiser)):
            cid = community.id
            service.setup_community(cid)
            issuance, store = service.issuance_account(cid), service.store_account(cid)
            mine = service.user_account(cid, volunteer.id)
            service.transfer(cid, issuance, mine, 150, TransferKind.EARN_WISH, "wish:1:award")
            service.transfer(cid, issuance, mine, 100, TransferKind.EARN_REPORT, "report:1:award")
            service.transfer(cid, issuance, mine, 60, TransferKind.EARN_ACTIVITY, "act:1:award")
            service.transfer(cid, mine, store, 30, TransferKind.REDEMPTION, "redemption:1")
            service.transfer(cid, store, mine, 30, TransferKind.REFUND, "redemption:1:refund")
            service.transfer(cid, mine, store, 12, TransferKind.REDEMPTION, "redemption:2")
            service.adjust(cid, volunteer.id, 9, "补录", organiser.id)
            ids[community.code] = {"issuance": issuance, "store": store, "user": mine}
        # The daily cap (200 by default) cut the third award of each volunteer to zero.
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer)
                                 .where(Transfer.amount == 0)) == 2
    assert_verified(app)
    return ids


def run_verify(app, *args: str):
    return app.test_cli_runner().invoke(args=["ledger", "verify", *args])


def corrupt(app, statement: str, **params) -> None:
    with app.app_context(), write_transaction(db.session):
        db.session.execute(sa.text(statement), params)


# --- a clean ledger -----------------------------------------------------------------------

def test_verify_passes_a_clean_ledger_with_one_line_per_community(app, world, activity):
    result = run_verify(app)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("guanyuan:") and lines[1].startswith("furong:")
    assert all("OK" in line and "FAILED" not in line for line in lines)
    with reading(app):
        counts = {code: db.session.scalar(sa.select(sa.func.count()).select_from(Entry)
                                          .where(Entry.community_id == cid))
                  for code, cid in (("guanyuan", world.community.id),
                                    ("furong", world.other.id))}
    assert f"{counts['guanyuan']} entries" in lines[0]
    assert f"{counts['furong']} entries" in lines[1]
    only = run_verify(app, "--community", "furong")
    assert only.exit_code == 0 and only.output.strip().splitlines() == [lines[1]]
    missing = run_verify(app, "--community", "nowhere")
    assert missing.exit_code != 0


def test_verify_passes_an_empty_database(app, world):
    result = run_verify(app)
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 2


# --- corrupted ledgers --------------------------------------------------------------------

def _bump(column: str, target: str):
    def apply(app, ids):
        corrupt(app, f"UPDATE points_accounts SET {column} = {column} + 7 WHERE id = :id",
                id=ids["guanyuan"][target])
    return apply


def _unbalanced_entry(app, ids):
    """One extra credit on an existing transfer: nothing sums to zero any more."""
    target = ids["guanyuan"]["user"]
    with app.app_context(), write_transaction(db.session):
        cid = db.session.get(Account, target).community_id
        transfer = db.session.scalar(sa.select(Transfer).where(
            Transfer.community_id == cid, Transfer.key == "wish:1:award"))
        balance = db.session.get(Account, target).balance
        db.session.execute(sa.insert(Entry).values(
            transfer_id=transfer.id, community_id=transfer.community_id, account_id=target,
            amount=5, balance_after=balance + 5, created_at=transfer.created_at))
        # Even with the stored balance "fixed up" to match, the books do not balance.
        db.session.execute(sa.update(Account).where(Account.id == target).values(
            balance=Account.balance + 5, entry_count=Account.entry_count + 1,
            earned_total=Account.earned_total + 5))


def _broken_chain(app, ids):
    """A balanced transfer whose entries carry a wrong balance_after."""
    user, issuance = ids["guanyuan"]["user"], ids["guanyuan"]["issuance"]
    with app.app_context(), write_transaction(db.session):
        cid = db.session.get(Account, user).community_id
        now = service.utcnow()
        transfer_id = db.session.execute(sa.insert(Transfer).values(
            community_id=cid, key="forged:1", kind="debit", source_id=user,
            destination_id=issuance, requested_amount=3, amount=3, memo="",
            created_at=now).returning(Transfer.id)).scalar_one()
        user_balance = db.session.get(Account, user).balance
        issuance_balance = db.session.get(Account, issuance).balance
        db.session.execute(sa.insert(Entry), [
            {"transfer_id": transfer_id, "community_id": cid, "account_id": user, "amount": -3,
             "balance_after": user_balance + 3, "created_at": now},  # should be balance - 3
            {"transfer_id": transfer_id, "community_id": cid, "account_id": issuance,
             "amount": 3, "balance_after": issuance_balance + 3, "created_at": now},
        ])
        for account_id, delta in ((user, -3), (issuance, 3)):
            db.session.execute(sa.update(Account).where(Account.id == account_id).values(
                balance=Account.balance + delta, entry_count=Account.entry_count + 1))


def _wrong_side(app, ids):
    """A balanced transfer whose entries land on accounts it does not name."""
    user, store, issuance = (ids["guanyuan"][k] for k in ("user", "store", "issuance"))
    with app.app_context(), write_transaction(db.session):
        cid = db.session.get(Account, user).community_id
        now = service.utcnow()
        transfer_id = db.session.execute(sa.insert(Transfer).values(
            community_id=cid, key="forged:2", kind="debit", source_id=user,
            destination_id=store, requested_amount=2, amount=2, memo="",
            created_at=now).returning(Transfer.id)).scalar_one()
        rows = []
        for account_id, amount in ((user, -2), (issuance, 2)):  # names store, posts issuance
            after = db.session.get(Account, account_id).balance + amount
            rows.append({"transfer_id": transfer_id, "community_id": cid,
                         "account_id": account_id, "amount": amount, "balance_after": after,
                         "created_at": now})
            db.session.execute(sa.update(Account).where(Account.id == account_id).values(
                balance=Account.balance + amount, entry_count=Account.entry_count + 1))
        db.session.execute(sa.insert(Entry), rows)


CORRUPTIONS = {
    "user balance": (_bump("balance", "user"), "stored balance"),
    "issuance balance": (_bump("balance", "issuance"), "stored balance"),
    "store balance": (_bump("balance", "store"), "stored balance"),
    "earned total": (_bump("earned_total", "user"), "earned/redeemed"),
    "redeemed total": (_bump("redeemed_total", "user"), "earned/redeemed"),
    "entry count": (_bump("entry_count", "user"), "entry_count"),
    "unbalanced entry": (_unbalanced_entry, "transfer"),
    "broken balance_after chain": (_broken_chain, "balance_after"),
    "entry on an account the transfer does not name": (_wrong_side, "does not name"),
}


@pytest.mark.corrupts_ledger
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_verify_finds_corruption_and_exits_non_zero(app, world, activity, name):
    damage, expected = CORRUPTIONS[name]
    damage(app, activity)
    result = run_verify(app)
    assert result.exit_code != 0, result.output
    lines = result.output.splitlines()
    [broken] = [line for line in lines if line.startswith("guanyuan:")]
    [fine] = [line for line in lines if line.startswith("furong:")]
    assert "FAILED" in broken and "OK" in fine
    assert expected in result.output, result.output
    # The service function tells the same story, and only about the damaged community.
    with reading(app):
        reports = {r.code: r for r in verify()}
    assert not reports["guanyuan"].ok and reports["furong"].ok
    assert run_verify(app, "--community", "furong").exit_code == 0
    assert run_verify(app, "--community", "guanyuan").exit_code != 0


@pytest.mark.corrupts_ledger
def test_unbalanced_entry_breaks_every_sum(app, world, activity):
    _unbalanced_entry(app, activity)
    with reading(app):
        [report] = verify("guanyuan")
    text = "\n".join(report.violations)
    assert "summing to 5" in text  # the transfer's entries
    assert "community's entries sum to 5" in text


# --- the database's own guards --------------------------------------------------------------

@pytest.mark.parametrize("table", ["ledger_entries", "ledger_transfers"])
def test_triggers_refuse_update_and_delete(app, world, activity, table):
    before = ledger_rows(app)
    column = "amount"
    for statement in (f"UPDATE {table} SET {column} = {column} + 1",
                      f"UPDATE {table} SET created_at = created_at",  # even a no-op change
                      f"DELETE FROM {table}",
                      f"DELETE FROM {table} WHERE id = (SELECT max(id) FROM {table})"):
        with pytest.raises(sa.exc.DBAPIError) as refused:
            corrupt(app, statement)
        assert "append-only" in str(refused.value), statement
    assert ledger_rows(app) == before
    assert_verified(app)


def test_orm_cannot_update_or_delete_an_entry(app, world, activity):
    before = ledger_rows(app)
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError), write_transaction(db.session):
            entry = db.session.scalar(sa.select(Entry).limit(1))
            entry.amount += 1
        with pytest.raises(sa.exc.DBAPIError), write_transaction(db.session):
            db.session.delete(db.session.scalar(sa.select(Transfer).limit(1)))
    assert ledger_rows(app) == before


def test_check_constraints_back_the_service(app, world, activity):
    before = ledger_rows(app)
    user = activity["guanyuan"]["user"]
    with pytest.raises(sa.exc.IntegrityError):  # a user balance below zero
        corrupt(app, "UPDATE points_accounts SET balance = -1 WHERE id = :id", id=user)
    with pytest.raises(sa.exc.IntegrityError), app.app_context(), \
            write_transaction(db.session):  # a zero entry
        transfer = db.session.scalar(sa.select(Transfer).limit(1))
        db.session.execute(sa.insert(Entry).values(
            transfer_id=transfer.id, community_id=transfer.community_id, account_id=user,
            amount=0, balance_after=0, created_at=transfer.created_at))
    assert ledger_rows(app) == before
    # System accounts are not bound by it: the issuance account is minus all it issued.
    with reading(app):
        issuance = db.session.get(Account, activity["guanyuan"]["issuance"])
        assert issuance.balance < 0


@pytest.mark.corrupts_ledger
def test_verify_reports_a_negative_user_balance(app, world, activity, database_kind):
    """The CHECK makes this impossible, so lift it inside one transaction (PostgreSQL's DDL is
    transactional; SQLite has a pragma), damage the row, verify, and roll it all back."""
    user = activity["guanyuan"]["user"]
    with app.app_context():
        try:
            if database_kind == "postgresql":
                db.session.execute(sa.text(
                    "ALTER TABLE points_accounts "
                    "DROP CONSTRAINT ck_points_accounts_user_balance_not_negative"))
            else:
                db.session.execute(sa.text("PRAGMA ignore_check_constraints = ON"))
            db.session.execute(sa.text("UPDATE points_accounts SET balance = -3 WHERE id = :id"),
                               {"id": user})
            [report] = verify("guanyuan")
        finally:
            db.session.rollback()
            if database_kind == "sqlite":
                db.session.execute(sa.text("PRAGMA ignore_check_constraints = OFF"))
                db.session.commit()
    assert f"account {user}: negative balance -3" in report.violations
    # All rolled back: the constraint guards again and the ledger is clean.
    with pytest.raises(sa.exc.IntegrityError):
        corrupt(app, "UPDATE points_accounts SET balance = -1 WHERE id = :id", id=user)
    assert_verified(app)
