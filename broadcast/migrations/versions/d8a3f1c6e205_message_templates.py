"""message templates: officers' versions of the template library, edited in the console

Revision ID: d8a3f1c6e205
Revises: d5a8e3c1f7b2
Create Date: 2026-12-07 16:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import broadcast.common

revision: str = 'd8a3f1c6e205'
down_revision: str | None = 'd5a8e3c1f7b2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'message_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('severity', sa.String(length=20), nullable=False),
        sa.Column('title', sa.JSON(), nullable=False),
        sa.Column('body', sa.JSON(), nullable=False),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.Column('updated_by', sa.String(length=120), nullable=False),
        sa.Column('updated_at', broadcast.common.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('message_templates') as batch:
        batch.create_index(batch.f('ix_message_templates_key'), ['key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('message_templates') as batch:
        batch.drop_index(batch.f('ix_message_templates_key'))
    op.drop_table('message_templates')
