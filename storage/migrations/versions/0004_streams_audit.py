"""streams and audit: partial task text, live stream state of deliveries, the audit log,
and a task status wide enough for ``awaiting_approval``

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sa.String(length=16),
            type_=sa.String(length=24),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("partial", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("partial_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stream_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
        batch_op.add_column(sa.Column("stream_state", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("streamed", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(
            sa.Column("stream_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    op.create_table(
        "auditentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.create_index("ix_audit_time", ["at"], unique=False)
        batch_op.create_index("ix_audit_scope", ["platform", "tenant", "at"], unique=False)
        batch_op.create_index("ix_audit_actor", ["actor", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_actor")
        batch_op.drop_index("ix_audit_scope")
        batch_op.drop_index("ix_audit_time")
    op.drop_table("auditentry")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("stream_since")
        batch_op.drop_column("streamed")
        batch_op.drop_column("stream_state")
        batch_op.drop_column("stream_id")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("partial_at")
        batch_op.drop_column("partial")
        batch_op.alter_column(
            "status",
            existing_type=sa.String(length=24),
            type_=sa.String(length=16),
            existing_nullable=False,
        )
