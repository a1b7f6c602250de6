"""early receipts remember a provider's retry-after

Revision ID: 5b3e8d21c7fa
Revises: 89e20c69c516
Create Date: 2026-11-23 14:50:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5b3e8d21c7fa'
down_revision: str | None = '89e20c69c516'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('early_receipts') as batch:
        batch.add_column(sa.Column('retry_after', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('early_receipts') as batch:
        batch.drop_column('retry_after')
