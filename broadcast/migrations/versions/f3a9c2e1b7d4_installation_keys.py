"""installation keys: the secret made once that keys hashes and signs cookies

Revision ID: f3a9c2e1b7d4
Revises: b9d2613a0e5f
Create Date: 2026-11-29 23:55:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'f3a9c2e1b7d4'
down_revision: str | None = 'b9d2613a0e5f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('installation_keys',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('installation_keys')
