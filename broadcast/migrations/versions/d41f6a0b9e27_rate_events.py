"""rate events: failed console logins and questions from the public site, counted per key

Revision ID: d41f6a0b9e27
Revises: 5b3e8d21c7fa
Create Date: 2026-11-23 15:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import broadcast.common

revision: str = 'd41f6a0b9e27'
down_revision: str | None = '5b3e8d21c7fa'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rate_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', broadcast.common.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rate_events', schema=None) as batch_op:
        batch_op.create_index('ix_rate_events_kind_key_at', ['kind', 'key', 'at'], unique=False)


def downgrade() -> None:
    op.drop_table('rate_events')
