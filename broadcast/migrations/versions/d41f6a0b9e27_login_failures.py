"""login failures, counted for the console's login throttle

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
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('client_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', broadcast.common.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failures_account_key'), ['account_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failures_client_key'), ['client_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failures_at'), ['at'], unique=False)


def downgrade() -> None:
    op.drop_table('login_failures')
