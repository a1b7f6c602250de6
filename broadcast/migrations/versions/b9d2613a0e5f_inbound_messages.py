"""inbound messages (stored before they are acknowledged) and the question each one made

Revision ID: b9d2613a0e5f
Revises: d41f6a0b9e27
Create Date: 2026-11-29 23:45:33.589210
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import broadcast.common

revision: str = 'b9d2613a0e5f'
down_revision: str | None = 'd41f6a0b9e27'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inbound_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('received_at', broadcast.common.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', broadcast.common.UTCDateTime(timezone=True), nullable=True),
    sa.Column('handled_at', broadcast.common.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'key', name='uq_inbound_messages_channel_key')
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_messages_pending', ['handled_at', 'claimed_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_messages_received_at'), ['received_at'], unique=False)

    with op.batch_alter_table('questions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inbound_key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
        batch_op.create_unique_constraint('uq_questions_channel_inbound_key', ['channel', 'inbound_key'])



def downgrade() -> None:
    with op.batch_alter_table('questions', schema=None) as batch_op:
        batch_op.drop_constraint('uq_questions_channel_inbound_key', type_='unique')
        batch_op.drop_column('inbound_key')

    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_received_at'))
        batch_op.drop_index('ix_inbound_messages_pending')

    op.drop_table('inbound_messages')
