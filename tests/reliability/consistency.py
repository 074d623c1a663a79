"""Is a database consistent after a crash? Migrations at head and matching the models, no
row pointing at a missing parent, and (SQLite) the file's own integrity check."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, and_, func, select, text

from modelyard.cli.common import run_with_database
from modelyard.config import Settings
from modelyard.db.base import Base
from modelyard.db.engine import Database
from modelyard.db.migrate import alembic_config

__all__ = ["consistency_problems"]


def _orphans(connection: Connection) -> list[str]:
    """``child.column → parent`` for every foreign key with rows whose parent is missing."""
    found = []
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_keys:
            parent = key.column.table.alias("parent")
            column = key.parent
            statement = (
                select(func.count())
                .select_from(table.outerjoin(parent, column == parent.c[key.column.name]))
                .where(and_(column.is_not(None), parent.c[key.column.name].is_(None)))
            )
            missing = connection.scalar(statement)
            if missing:
                found.append(f"{table.name}.{column.name} → {key.column.table.name}: {missing}")
    return found


def _schema(connection: Connection, head: str | None) -> list[str]:
    found = []
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    current = context.get_current_revision()
    if current != head:
        found.append(f"migrations at {current}, head is {head}")
    differences = compare_metadata(context, Base.metadata)
    if differences:
        found.append(f"the schema differs from the models: {differences}")
    if connection.dialect.name == "sqlite":
        integrity = [row[0] for row in connection.execute(text("PRAGMA integrity_check"))]
        if integrity != ["ok"]:
            found.append(f"sqlite integrity_check: {integrity}")
        broken = list(connection.execute(text("PRAGMA foreign_key_check")))
        if broken:
            found.append(f"sqlite foreign_key_check: {broken}")
    return found + _orphans(connection)


def consistency_problems(settings: Settings) -> list[str]:
    """What is inconsistent in ``settings``'s database (empty: nothing)."""
    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()

    async def check(database: Database) -> list[str]:
        async with database.engine.connect() as connection:
            return await connection.run_sync(_schema, head)

    return run_with_database(settings, check)
