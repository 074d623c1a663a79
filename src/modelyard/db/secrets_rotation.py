"""Re-encryption of every stored secret with the newest key (``modelyard secrets rotate``).

Every column of type :class:`~modelyard.db.types.EncryptedString` in every table is found
from the metadata, so tables added later are covered without changes here. The whole
rotation runs in one transaction: either every secret is re-encrypted or none is.
"""

from __future__ import annotations

from sqlalchemy import Column, String, Table, select, type_coerce, update

from modelyard.db import models  # noqa: F401  (registers the tables)
from modelyard.db.base import Base
from modelyard.db.engine import Database
from modelyard.db.types import EncryptedString, keyring_of

__all__ = ["encrypted_columns", "rotate_secrets"]


def encrypted_columns() -> list[tuple[Table, Column[str]]]:
    """Every (table, column) that holds an encrypted secret."""
    return [
        (table, column)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedString)
    ]


async def rotate_secrets(database: Database) -> int:
    """Re-encrypt every stored secret with the newest key; returns how many were rewritten."""
    keyring = keyring_of(database.engine.sync_engine.dialect)
    rewritten = 0
    async with database.engine.begin() as connection:
        for table, column in encrypted_columns():
            primary_key = next(iter(table.primary_key.columns))
            raw = type_coerce(column, String)
            rows = await connection.execute(select(primary_key, raw).where(column.isnot(None)))
            for key, ciphertext in rows.all():
                await connection.execute(
                    update(table)
                    .where(primary_key == key)
                    .values({column.name: type_coerce(keyring.rotate(ciphertext), String)})
                )
                rewritten += 1
    return rewritten
