"""provider fine-tuning: training files, commands and job events

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import modelyard.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "finetune_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("provider_kind", sa.String(length=40), nullable=False),
        sa.Column("provider_name", sa.String(length=100), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("num_examples", sa.Integer(), nullable=False),
        sa.Column("remote_id", sa.String(length=200), nullable=False),
        sa.Column("remote_status", sa.String(length=40), nullable=True),
        sa.Column("status_detail", sa.Text(), nullable=True),
        sa.Column("created_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_finetune_files_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_finetune_files_provider_id_providers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finetune_files")),
    )
    with op.batch_alter_table("finetune_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_finetune_files_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "finetune_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("command_type", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("provider_kind", sa.String(length=40), nullable=True),
        sa.Column("provider_name", sa.String(length=100), nullable=True),
        sa.Column("training_file_id", sa.Integer(), nullable=True),
        sa.Column("validation_file_id", sa.Integer(), nullable=True),
        sa.Column("job_command_id", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=True),
        sa.Column("remote_job_id", sa.String(length=200), nullable=True),
        sa.Column("job_status", sa.String(length=30), nullable=True),
        sa.Column("fine_tuned_model", sa.String(length=200), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error_status", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_param", sa.String(length=100), nullable=True),
        sa.Column("sync_error", sa.Text(), nullable=True),
        sa.Column("ran_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("synced_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_finetune_commands_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["job_command_id"],
            ["finetune_commands.id"],
            name=op.f("fk_finetune_commands_job_command_id_finetune_commands"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_finetune_commands_provider_id_providers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["training_file_id"],
            ["finetune_files.id"],
            name=op.f("fk_finetune_commands_training_file_id_finetune_files"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["validation_file_id"],
            ["finetune_files.id"],
            name=op.f("fk_finetune_commands_validation_file_id_finetune_files"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finetune_commands")),
    )
    with op.batch_alter_table("finetune_commands", schema=None) as batch_op:
        batch_op.create_index(
            "ix_finetune_commands_state_job_status", ["state", "job_status"], unique=False
        )
        batch_op.create_index(
            "ix_finetune_commands_job_command_id", ["job_command_id"], unique=False
        )

    op.create_table(
        "finetune_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("command_id", sa.Integer(), nullable=False),
        sa.Column("remote_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["command_id"],
            ["finetune_commands.id"],
            name=op.f("fk_finetune_events_command_id_finetune_commands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finetune_events")),
        sa.UniqueConstraint("command_id", "remote_id", name="uq_finetune_events_command_remote"),
    )
    with op.batch_alter_table("finetune_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_finetune_events_command_id_id", ["command_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("finetune_events", schema=None) as batch_op:
        batch_op.drop_index("ix_finetune_events_command_id_id")

    op.drop_table("finetune_events")
    with op.batch_alter_table("finetune_commands", schema=None) as batch_op:
        batch_op.drop_index("ix_finetune_commands_job_command_id")
        batch_op.drop_index("ix_finetune_commands_state_job_status")

    op.drop_table("finetune_commands")
    with op.batch_alter_table("finetune_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finetune_files_provider_id"))

    op.drop_table("finetune_files")
