"""duty shifts, officers' chats with the bot, promise reminders

Revision ID: d5a8e3c1f7b2
Revises: c7e1d2a94b35
Create Date: 2026-12-07 16:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import broadcast.common

revision: str = 'd5a8e3c1f7b2'
down_revision: str | None = 'c7e1d2a94b35'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('duty_shifts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('started_at', broadcast.common.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['officer_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('duty_shifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duty_shifts_officer_id'), ['officer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duty_shifts_started_at'), ['started_at'], unique=False)

    op.create_table('officer_chats',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('code_expires_at', broadcast.common.UTCDateTime(timezone=True), nullable=True),
    sa.Column('linked_at', broadcast.common.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('user_id')
    )
    with op.batch_alter_table('officer_chats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_officer_chats_code_hash'), ['code_hash'], unique=False)

    op.create_table('promise_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('due', broadcast.common.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', broadcast.common.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'due', name='uq_promise_reminders_promise')
    )
    with op.batch_alter_table('promise_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promise_reminders_incident_id'), ['incident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('promise_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promise_reminders_incident_id'))
    op.drop_table('promise_reminders')
    with op.batch_alter_table('officer_chats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_officer_chats_code_hash'))
    op.drop_table('officer_chats')
    with op.batch_alter_table('duty_shifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duty_shifts_started_at'))
        batch_op.drop_index(batch_op.f('ix_duty_shifts_officer_id'))
    op.drop_table('duty_shifts')
