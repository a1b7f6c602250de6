"""rws feed sources (location, quantity, reference), their current forecast run, and the memory
of expected-peak rules

Revision ID: b7e2c9d4a1f6
Revises: d8b4f2a61c93
Create Date: 2026-12-08 01:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import broadcast.common

revision: str = 'b7e2c9d4a1f6'
down_revision: str | None = 'd8b4f2a61c93'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('feed_sources') as batch_op:
        batch_op.add_column(
            sa.Column('location', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
        )
        batch_op.add_column(
            sa.Column('quantity', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True)
        )
        batch_op.add_column(
            sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True)
        )
    with op.batch_alter_table('feed_rule_states') as batch_op:
        batch_op.add_column(
            sa.Column('run_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column('peak_value', sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column('peak_at', broadcast.common.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        'feed_forecasts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('run_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('issued_at', broadcast.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column('peak_value', sa.Float(), nullable=False),
        sa.Column('peak_at', broadcast.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column('points', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['source_id'], ['feed_sources.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('source_id'),
    )


def downgrade() -> None:
    op.drop_table('feed_forecasts')
    with op.batch_alter_table('feed_rule_states') as batch_op:
        batch_op.drop_column('peak_at')
        batch_op.drop_column('peak_value')
        batch_op.drop_column('run_hash')
    with op.batch_alter_table('feed_sources') as batch_op:
        batch_op.drop_column('reference')
        batch_op.drop_column('quantity')
        batch_op.drop_column('location')
