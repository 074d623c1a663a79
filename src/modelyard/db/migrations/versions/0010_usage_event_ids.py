"""usage records: a unique event id, so a replay of the usage journal inserts each once

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_usage_records_event_id", ["event_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_records_event_id")
        batch_op.drop_column("event_id")
