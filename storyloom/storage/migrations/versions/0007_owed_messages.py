"""The outbox (every job outcome the chat side owes, until delivered); beats keyed by request

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01 14:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owed_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("done", sa.String(length=200), server_default="", nullable=False),
        sa.Column("started", sa.String(length=200), server_default="", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["render_jobs.id"],
            name=op.f("fk_owed_messages_job_id_render_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owed_messages")),
        sa.UniqueConstraint("job_id", name=op.f("uq_owed_messages_job_id")),
    )
    op.create_index("ix_owed_messages_state_next_try_at", "owed_messages", ["state", "next_try_at"])
    # outcomes reported before the outbox existed were delivered then: nothing is owed
    # a redelivered event or a repeated interaction adds its beat once
    with op.batch_alter_table("beats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_key", sa.String(length=100), nullable=True))
        batch_op.create_index("ix_beats_story_id_request_key", ["story_id", "request_key"])


def downgrade() -> None:
    with op.batch_alter_table("beats", schema=None) as batch_op:
        batch_op.drop_index("ix_beats_story_id_request_key")
        batch_op.drop_column("request_key")
    op.drop_index("ix_owed_messages_state_next_try_at", table_name="owed_messages")
    op.drop_table("owed_messages")
