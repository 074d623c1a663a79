"""the chat app: conversation settings, pin, archive, share link, message versions,
attachments; users' custom instructions; settings an admin changes in the app

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import modelyard.db.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("custom_instructions", sa.Text(), nullable=True))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("system_prompt", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("temperature", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("max_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("archived_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("share_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("current_message_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_conversations_share_id"), ["share_id"])
    with op.batch_alter_table("conversation_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_conversation_messages_parent_id"), ["parent_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_conversation_messages_parent_id_conversation_messages"),
            "conversation_messages",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )
    _link_existing_messages()
    op.create_table(
        "message_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("token_estimate", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_message_attachments_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["conversation_messages.id"],
            name=op.f("fk_message_attachments_message_id_conversation_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_attachments")),
    )
    with op.batch_alter_table("message_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_attachments_user_id"), ["user_id"])
        batch_op.create_index(batch_op.f("ix_message_attachments_message_id"), ["message_id"])
    op.create_table(
        "app_settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", modelyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_app_settings_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_app_settings")),
    )


def _link_existing_messages() -> None:
    """Chain each conversation's messages in order, the last one shown."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, conversation_id FROM conversation_messages ORDER BY conversation_id, id"
        )
    ).all()
    previous: dict[int, int] = {}
    for message_id, conversation_id in rows:
        parent = previous.get(conversation_id)
        if parent is not None:
            bind.execute(
                sa.text("UPDATE conversation_messages SET parent_id = :p WHERE id = :i"),
                {"p": parent, "i": message_id},
            )
        previous[conversation_id] = message_id
    for conversation_id, last in previous.items():
        bind.execute(
            sa.text("UPDATE conversations SET current_message_id = :m WHERE id = :c"),
            {"m": last, "c": conversation_id},
        )


def downgrade() -> None:
    op.drop_table("app_settings")
    with op.batch_alter_table("message_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_attachments_message_id"))
        batch_op.drop_index(batch_op.f("ix_message_attachments_user_id"))
    op.drop_table("message_attachments")
    with op.batch_alter_table("conversation_messages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_conversation_messages_parent_id_conversation_messages"),
            type_="foreignkey",
        )
        batch_op.drop_index(batch_op.f("ix_conversation_messages_parent_id"))
        batch_op.drop_column("parent_id")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_conversations_share_id"), type_="unique")
        for column in (
            "current_message_id",
            "share_id",
            "archived_at",
            "pinned",
            "max_tokens",
            "temperature",
            "system_prompt",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("custom_instructions")
