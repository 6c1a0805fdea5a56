"""Render jobs: attempts (redeliveries) and whether the result was posted

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 13:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # server defaults fill the rows that exist; jobs finished before this migration count
    # as posted, so a restarted bot does not post old results a second time
    with op.batch_alter_table("render_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("posted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute("UPDATE render_jobs SET posted = (status = 'done')")


def downgrade() -> None:
    with op.batch_alter_table("render_jobs", schema=None) as batch_op:
        batch_op.drop_column("posted")
        batch_op.drop_column("attempts")
