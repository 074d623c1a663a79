"""Migrations: they match the models, and go down and up again cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect

from modelyard.config import Settings
from modelyard.db.base import Base
from modelyard.db.engine import Database
from modelyard.db.migrate import downgrade, upgrade


async def test_models_and_migrations_agree(database: Database) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    upgrade(settings)
    engine = create_engine(f"sqlite:///{tmp_path / 'modelyard.db'}")
    assert {"users", "api_tokens", "web_sessions"} <= set(inspect(engine).get_table_names())
    downgrade(settings, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(settings)
    assert "users" in inspect(engine).get_table_names()
    engine.dispose()


def test_0011_chains_existing_messages_and_shows_the_last(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    upgrade(settings, "0010")
    engine = create_engine(f"sqlite:///{tmp_path / 'modelyard.db'}")
    now = "2026-12-02 10:00:00"
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO users (id, email, password_hash, is_active, is_staff, has_subscription,"
            f" created_at, updated_at) VALUES (1, 'a@example.com', 'x', 1, 0, 0, '{now}', '{now}')"
        )
        for conversation in (1, 2):
            connection.exec_driver_sql(
                "INSERT INTO conversations (id, user_id, title, created_at, updated_at)"
                f" VALUES ({conversation}, 1, 't', '{now}', '{now}')"
            )
        for message_id, conversation in ((1, 1), (2, 2), (3, 1), (4, 1)):
            connection.exec_driver_sql(
                "INSERT INTO conversation_messages (id, conversation_id, created_at, role,"
                " content, input_tokens, output_tokens, cost_usd)"
                f" VALUES ({message_id}, {conversation}, '{now}', 'user', 'q', 0, 0, 0)"
            )
    upgrade(settings)
    with engine.connect() as connection:
        parents = dict(
            connection.exec_driver_sql("SELECT id, parent_id FROM conversation_messages").all()
        )
        shown = dict(
            connection.exec_driver_sql("SELECT id, current_message_id FROM conversations").all()
        )
    engine.dispose()
    assert parents == {1: None, 2: None, 3: 1, 4: 3}
    assert shown == {1: 4, 2: 2}
