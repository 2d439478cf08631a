"""activities: volunteer activities, sign-ups, attendance and service hours

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 05:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('activities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=60), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('place', sa.String(length=100), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('half_hours', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('signed_up', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=200), nullable=True),
    sa.CheckConstraint("status IN ('published', 'cancelled', 'completed')", name=op.f('ck_activities_status')),
    sa.CheckConstraint('level BETWEEN 1 AND 5', name=op.f('ck_activities_level')),
    sa.CheckConstraint('half_hours BETWEEN 1 AND 48', name=op.f('ck_activities_half_hours')),
    sa.CheckConstraint('capacity >= 1', name=op.f('ck_activities_capacity_positive')),
    sa.CheckConstraint('signed_up >= 0 AND signed_up <= capacity', name=op.f('ck_activities_signed_up_within')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_activities_ends_after_start')),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_activities_community_id_communities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_activities_created_by_id_users')),
    sa.ForeignKeyConstraint(['completed_by_id'], ['users.id'], name=op.f('fk_activities_completed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activities_community_id'), ['community_id'], unique=False)
        batch_op.create_index('ix_activities_community_id_starts_at', ['community_id', 'starts_at'], unique=False)

    op.create_table('activity_signups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('walk_in', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_in_by_id', sa.Integer(), nullable=True),
    sa.Column('checkin_method', sa.String(length=10), nullable=True),
    sa.Column('points_awarded', sa.Integer(), nullable=True),
    sa.Column('points_capped', sa.Integer(), nullable=True),
    sa.Column('half_hours_credited', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('signed_up', 'cancelled', 'attended', 'absent')", name=op.f('ck_activity_signups_status')),
    sa.CheckConstraint("checkin_method IS NULL OR checkin_method IN ('qr', 'code', 'organiser')", name=op.f('ck_activity_signups_checkin_method')),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_activity_signups_community_id_communities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_activity_signups_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_activity_signups_user_id_users')),
    sa.ForeignKeyConstraint(['checked_in_by_id'], ['users.id'], name=op.f('fk_activity_signups_checked_in_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_signups')),
    sa.UniqueConstraint('activity_id', 'user_id', name='uq_activity_signups_activity_user')
    )
    with op.batch_alter_table('activity_signups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_signups_community_id'), ['community_id'], unique=False)
        batch_op.create_index('ix_activity_signups_user_id_status', ['user_id', 'status'], unique=False)

    op.create_table('activity_checkin_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_activity_checkin_attempts_community_id_communities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_activity_checkin_attempts_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_activity_checkin_attempts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_checkin_attempts'))
    )
    with op.batch_alter_table('activity_checkin_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_checkin_attempts_community_id'), ['community_id'], unique=False)
        batch_op.create_index('ix_activity_checkin_attempts_user_id_created_at', ['user_id', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('activity_checkin_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_checkin_attempts_user_id_created_at')
        batch_op.drop_index(batch_op.f('ix_activity_checkin_attempts_community_id'))
    op.drop_table('activity_checkin_attempts')
    with op.batch_alter_table('activity_signups', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_signups_user_id_status')
        batch_op.drop_index(batch_op.f('ix_activity_signups_community_id'))
    op.drop_table('activity_signups')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_community_id_starts_at')
        batch_op.drop_index(batch_op.f('ix_activities_community_id'))
    op.drop_table('activities')
