"""Panel re-rolls, status messages that outlive the bot, job artifacts in the database, and
one job per chat request (an idempotency key)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("beats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variant", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("render_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_ref", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("result_files", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("request_key", sa.String(length=100), nullable=True))
        batch_op.create_index(
            "ix_render_jobs_story_id_request_key", ["story_id", "request_key"], unique=False
        )
    # `posted` now means "its outcome was reported", for every ended job: jobs that failed
    # or were cancelled before this migration were reported by the bot that ran then
    op.execute("UPDATE render_jobs SET posted = true WHERE status IN ('failed', 'cancelled')")
    op.create_table(
        "job_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["render_jobs.id"],
            name=op.f("fk_job_artifacts_job_id_render_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_artifacts")),
        sa.UniqueConstraint("job_id", "name", name=op.f("uq_job_artifacts_job_id_name")),
    )


def downgrade() -> None:
    op.drop_table("job_artifacts")
    with op.batch_alter_table("render_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_render_jobs_story_id_request_key")
        batch_op.drop_column("request_key")
        batch_op.drop_column("result_files")
        batch_op.drop_column("status_ref")
    with op.batch_alter_table("beats", schema=None) as batch_op:
        batch_op.drop_column("variant")
