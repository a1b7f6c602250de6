"""pinned instructions: "Wat moet u nu doen", one versioned short text per incident

Every pin, change or clear is a new row (a clear has an empty body); rows are never edited, so
the public page can say that the instruction changed and show the previous version.

Revision ID: d8b4f2a61c93
Revises: d8a3f1c6e205
Create Date: 2026-12-07 16:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import broadcast.common

revision: str = 'd8b4f2a61c93'
down_revision: str | None = 'd8a3f1c6e205'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'instructions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('body', sa.JSON(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('created_at', broadcast.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id']),
        sa.ForeignKeyConstraint(['author_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incident_id', 'version', name='uq_instruction_version'),
    )
    with op.batch_alter_table('instructions') as batch_op:
        batch_op.create_index(
            batch_op.f('ix_instructions_incident_id'), ['incident_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('instructions') as batch_op:
        batch_op.drop_index(batch_op.f('ix_instructions_incident_id'))
    op.drop_table('instructions')
