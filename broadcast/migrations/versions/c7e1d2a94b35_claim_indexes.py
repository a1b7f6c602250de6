"""claim indexes: the backlog by due time (id included) and a partial index for direct messages

Claiming (broadcast/delivery/queue.py) walks ``ix_delivery_due`` in its order and stops after a
batch; the bot's answers have an index of their own holding only direct messages.

Revision ID: c7e1d2a94b35
Revises: c7e1a4b9d2f0
Create Date: 2026-12-07 09:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c7e1d2a94b35'
down_revision: str | None = 'c7e1a4b9d2f0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIRECT = sa.text("direct_message_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_due')
        batch_op.create_index(
            'ix_delivery_due', ['channel', 'state', 'next_attempt_at', 'id'], unique=False
        )
        batch_op.create_index(
            'ix_delivery_direct_due',
            ['channel', 'state', 'next_attempt_at', 'id'],
            unique=False,
            sqlite_where=DIRECT,
            postgresql_where=DIRECT,
        )


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_direct_due')
        batch_op.drop_index('ix_delivery_due')
        batch_op.create_index(
            'ix_delivery_due', ['channel', 'state', 'next_attempt_at'], unique=False
        )
