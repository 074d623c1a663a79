"""``modelyard db``: migrations."""

from __future__ import annotations

import typer
from alembic import command

from modelyard.cli.common import console, settings_from_env
from modelyard.db.migrate import alembic_config, downgrade, upgrade

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    upgrade(settings_from_env(), revision)
    console.print(f"Database upgraded to {revision}.")


@app.command("downgrade")
def downgrade_command(revision: str = typer.Argument(..., help="e.g. -1 or base")) -> None:
    """Revert migrations down to REVISION."""
    downgrade(settings_from_env(), revision)
    console.print(f"Database downgraded to {revision}.")


@app.command("current")
def current_command() -> None:
    """Show the database's current revision."""
    command.current(alembic_config(settings_from_env()), verbose=False)
