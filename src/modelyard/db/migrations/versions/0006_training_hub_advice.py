"""training jobs: the Hub push's outcome and the advice the job was started with

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 19:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hub_push", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("advice", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.drop_column("advice")
        batch_op.drop_column("hub_push")
