"""stored Responses API answers; a route's policy for parameters a target cannot honour

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import modelyard.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_responses",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("created_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_stored_responses_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_responses")),
    )
    with op.batch_alter_table("stored_responses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stored_responses_user_id"), ["user_id"])
        batch_op.create_index(batch_op.f("ix_stored_responses_expires_at"), ["expires_at"])
    with op.batch_alter_table("gateway_routes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "unsupported_params",
                sa.String(length=10),
                nullable=False,
                server_default="error",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("gateway_routes", schema=None) as batch_op:
        batch_op.drop_column("unsupported_params")
    with op.batch_alter_table("stored_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_responses_expires_at"))
        batch_op.drop_index(batch_op.f("ix_stored_responses_user_id"))
    op.drop_table("stored_responses")
