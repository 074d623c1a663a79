"""trained models have owners and a visibility; chat messages record a cut answer; a
route may share its cached answers across users

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:00:00.000000

Models trained before this revision lie in ``models/<name>``; each succeeded job's model
gets a record owned by the job's user (private), pointing at that folder.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import modelyard.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trained_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("visibility", sa.String(length=20), nullable=False),
        sa.Column("task", sa.String(length=20), nullable=False),
        sa.Column("base_model", sa.String(length=300), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("created_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_trained_models_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["training_jobs.id"],
            name=op.f("fk_trained_models_job_id_training_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trained_models")),
        sa.UniqueConstraint("owner_id", "name", name="uq_trained_models_owner_name"),
    )
    with op.batch_alter_table("trained_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trained_models_owner_id"), ["owner_id"])
        batch_op.create_index(batch_op.f("ix_trained_models_name"), ["name"])
    op.execute(
        "INSERT INTO trained_models "
        "(owner_id, name, visibility, task, base_model, job_id, path, created_at, updated_at) "
        "SELECT user_id, output_name, 'private', task, base_model, id, "
        "'models/' || output_name, COALESCE(finished_at, updated_at), updated_at "
        "FROM training_jobs j WHERE state = 'succeeded' AND id = ("
        "SELECT MAX(k.id) FROM training_jobs k WHERE k.state = 'succeeded' "
        "AND k.output_name = j.output_name)"
    )
    # Trained models were listed in the shared catalog; they are listed per caller now.
    op.execute(
        "DELETE FROM llm_models WHERE provider_kind = 'local' "
        "AND model_id IN (SELECT name FROM trained_models)"
    )
    with op.batch_alter_table("conversation_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=20), nullable=True))
    with op.batch_alter_table("gateway_routes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cache_shared", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("gateway_routes", schema=None) as batch_op:
        batch_op.drop_column("cache_shared")
    with op.batch_alter_table("conversation_messages", schema=None) as batch_op:
        batch_op.drop_column("status")
    with op.batch_alter_table("trained_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trained_models_name"))
        batch_op.drop_index(batch_op.f("ix_trained_models_owner_id"))
    op.drop_table("trained_models")
