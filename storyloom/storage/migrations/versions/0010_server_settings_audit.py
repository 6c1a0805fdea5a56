"""Server settings for moderators, the audit trail, and each job's image-safety level

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-01 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("render_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("safety", sa.String(length=8), server_default="block", nullable=False)
        )
    op.create_table(
        "server_settings",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_server_settings")),
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    op.create_index("ix_audit_entries_workspace_id_id", "audit_entries", ["workspace_id", "id"])
    op.create_index("ix_audit_entries_story_id", "audit_entries", ["story_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_story_id", table_name="audit_entries")
    op.drop_index("ix_audit_entries_workspace_id_id", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("server_settings")
    with op.batch_alter_table("render_jobs", schema=None) as batch_op:
        batch_op.drop_column("safety")
