"""A server's character library, and a character's reference picture (its file name)

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-01 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sa.String(length=80), nullable=True))
    op.create_table(
        "library_characters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("style", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("identity_prompts", sa.Text(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("reference", sa.String(length=80), nullable=True),
        sa.Column("sheet", sa.String(length=80), nullable=True),
        sa.Column("saved_by", sa.String(length=64), nullable=False),
        sa.Column("saved_by_name", sa.String(length=200), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_characters")),
        sa.UniqueConstraint(
            "workspace_id", "name_key", name=op.f("uq_library_characters_workspace_id_name_key")
        ),
    )


def downgrade() -> None:
    op.drop_table("library_characters")
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.drop_column("reference")
