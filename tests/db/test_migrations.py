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
