"""Database: engine and sessions, ORM models, column types and Alembic migrations."""
