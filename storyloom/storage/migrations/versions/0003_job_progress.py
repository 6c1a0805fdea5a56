"""Render jobs: progress of a running job (percent and a short line), for status messages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 13:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: queued and finished-before-this-migration jobs have no progress to show
    with op.batch_alter_table("render_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress_percent", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("progress_text", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("render_jobs", schema=None) as batch_op:
        batch_op.drop_column("progress_text")
        batch_op.drop_column("progress_percent")
