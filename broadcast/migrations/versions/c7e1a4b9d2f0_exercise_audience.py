"""exercise audience: subscribers marked as testers, incidents whose exercise is widened

Revision ID: c7e1a4b9d2f0
Revises: c7e1f04a2b9d
Create Date: 2026-12-07 08:45:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c7e1a4b9d2f0'
down_revision: str | None = 'c7e1f04a2b9d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('subscribers') as batch:
        batch.add_column(sa.Column('tester', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('incidents') as batch:
        batch.add_column(
            sa.Column('exercise_widened', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('incidents') as batch:
        batch.drop_column('exercise_widened')
    with op.batch_alter_table('subscribers') as batch:
        batch.drop_column('tester')
