"""learning: corrections, vote reasons, prompt variants and prompts kept for training exports

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "correction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("user", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("wrong_kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("right_kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("correction", schema=None) as batch_op:
        batch_op.create_index(
            "ix_correction_scope", ["platform", "tenant", "status", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_correction_task_id"), ["task_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_correction_created_at"), ["created_at"], unique=False)
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("variant", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("prompt", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tokens", sa.Integer(), nullable=True))
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("comment", sa.Text(), nullable=True))
    with op.batch_alter_table("chatsetting", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("training_opt_out", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("chatsetting", schema=None) as batch_op:
        batch_op.drop_column("training_opt_out")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("comment")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("tokens")
        batch_op.drop_column("prompt")
        batch_op.drop_column("variant")
    with op.batch_alter_table("correction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_correction_created_at"))
        batch_op.drop_index(batch_op.f("ix_correction_task_id"))
        batch_op.drop_index("ix_correction_scope")
    op.drop_table("correction")
