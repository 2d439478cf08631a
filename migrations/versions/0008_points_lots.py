"""points lots: FIFO lots of earned points, their uses, expiry account and policy

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:30:00

"""
from datetime import UTC
from zoneinfo import ZoneInfo

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

KINDS_BEFORE = "kind IN ('user', 'issuance', 'store')"
KINDS_AFTER = "kind IN ('user', 'issuance', 'store', 'expiry')"
# Account column → the transfer kind whose points it counts.
SOURCE_COLUMNS = {'earned_wish': 'earn_wish', 'earned_report': 'earn_report',
                  'earned_activity': 'earn_activity', 'adjusted': 'adjustment'}


def upgrade():
    with op.batch_alter_table('points_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expiry_months', sa.Integer(), nullable=True))
    _replace_kind_check(KINDS_AFTER)
    with op.batch_alter_table('points_accounts', schema=None) as batch_op:
        for column in SOURCE_COLUMNS:
            batch_op.add_column(sa.Column(column, sa.BigInteger(), server_default='0',
                                          nullable=False))
    _count_earnings_by_source()

    op.create_table('points_lots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('transfer_id', sa.Integer(), nullable=False),
    sa.Column('earned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('earned_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('expired', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('expired >= 0', name=op.f('ck_points_lots_expired_not_negative')),
    sa.CheckConstraint('remaining >= 0 AND remaining <= amount', name=op.f('ck_points_lots_remaining_in_amount')),
    sa.ForeignKeyConstraint(['account_id'], ['points_accounts.id'], name=op.f('fk_points_lots_account_id_points_accounts')),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_points_lots_community_id_communities'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['transfer_id'], ['ledger_transfers.id'], name=op.f('fk_points_lots_transfer_id_ledger_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_points_lots'))
    )
    with op.batch_alter_table('points_lots', schema=None) as batch_op:
        batch_op.create_index('ix_points_lots_account_id', ['account_id'], unique=False)
        batch_op.create_index('ix_points_lots_open', ['account_id', 'earned_on', 'id'], unique=False, postgresql_where=sa.text('remaining > 0'), sqlite_where=sa.text('remaining > 0'))
        batch_op.create_index(batch_op.f('ix_points_lots_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_points_lots_transfer_id'), ['transfer_id'], unique=False)

    op.create_table('points_lot_uses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transfer_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_points_lot_uses_amount_not_zero')),
    sa.ForeignKeyConstraint(['lot_id'], ['points_lots.id'], name=op.f('fk_points_lot_uses_lot_id_points_lots')),
    sa.ForeignKeyConstraint(['transfer_id'], ['ledger_transfers.id'], name=op.f('fk_points_lot_uses_transfer_id_ledger_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_points_lot_uses'))
    )
    with op.batch_alter_table('points_lot_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_points_lot_uses_lot_id'), ['lot_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_points_lot_uses_transfer_id'), ['transfer_id'], unique=False)

    _open_lots_for_existing_balances()


def downgrade():
    with op.batch_alter_table('points_lot_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_points_lot_uses_transfer_id'))
        batch_op.drop_index(batch_op.f('ix_points_lot_uses_lot_id'))
    op.drop_table('points_lot_uses')
    with op.batch_alter_table('points_lots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_points_lots_transfer_id'))
        batch_op.drop_index(batch_op.f('ix_points_lots_community_id'))
        batch_op.drop_index('ix_points_lots_open', postgresql_where=sa.text('remaining > 0'), sqlite_where=sa.text('remaining > 0'))
        batch_op.drop_index('ix_points_lots_account_id')
    op.drop_table('points_lots')
    with op.batch_alter_table('points_accounts', schema=None) as batch_op:
        for column in reversed(list(SOURCE_COLUMNS)):
            batch_op.drop_column(column)
    # Refuses (the CHECK fails) while expiry accounts exist: expired points cannot be undone.
    _replace_kind_check(KINDS_BEFORE)
    with op.batch_alter_table('points_policies', schema=None) as batch_op:
        batch_op.drop_column('expiry_months')


def _replace_kind_check(condition: str) -> None:
    # On SQLite this copies the table (env.py turns foreign keys off for it).
    with op.batch_alter_table('points_accounts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_points_accounts_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_points_accounts_kind'), condition)


def _count_earnings_by_source() -> None:
    """Fill the new per-source totals from the entries already posted."""
    for column, kind in SOURCE_COLUMNS.items():
        op.execute(sa.text(
            f"UPDATE points_accounts SET {column} = COALESCE((SELECT SUM(e.amount) "
            f"FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id "
            f"WHERE e.account_id = points_accounts.id AND t.kind = :kind), 0)"
        ).bindparams(kind=kind))


def _open_lots_for_existing_balances() -> None:
    """Lots for the points accounts already hold, as first in, first out leaves them.

    Spending took the oldest points first, so what an account holds is its newest credits:
    walk them back from the newest until they cover the balance. (The history of what each
    debit took is not rebuilt: a lot opened here holds just what is left of its credit.)
    """
    bind = op.get_bind()
    shanghai = ZoneInfo("Asia/Shanghai")
    lots = sa.table('points_lots', *(sa.column(c) for c in (
        'community_id', 'account_id', 'transfer_id', 'earned_at', 'earned_on', 'amount',
        'remaining', 'expired')))
    accounts = bind.execute(sa.text(
        "SELECT id, community_id, balance FROM points_accounts "
        "WHERE kind = 'user' AND balance > 0 ORDER BY id")).all()
    for account_id, community_id, balance in accounts:
        rows, left = [], int(balance)
        credits = bind.execute(sa.text(
            "SELECT transfer_id, amount, created_at FROM ledger_entries "
            "WHERE account_id = :a AND amount > 0 ORDER BY id DESC").columns(
                sa.column('transfer_id', sa.Integer), sa.column('amount', sa.BigInteger),
                sa.column('created_at', sa.DateTime(timezone=True))), {"a": account_id})
        for transfer_id, amount, created_at in credits:
            take = min(left, int(amount))
            if created_at.tzinfo is None:
                created_at = created_at.replace(tzinfo=UTC)
            rows.append({'community_id': community_id, 'account_id': account_id,
                         'transfer_id': transfer_id, 'earned_at': created_at,
                         'earned_on': created_at.astimezone(shanghai).date(),
                         'amount': take, 'remaining': take, 'expired': 0})
            left -= take
            if left == 0:
                break
        if left:
            raise RuntimeError(f"points account {account_id}: its credits do not cover its "
                               f"balance; run `flask ledger verify` first")
        if rows:
            bind.execute(lots.insert(), rows[::-1])
