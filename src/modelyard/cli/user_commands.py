"""``modelyard users``: create and list accounts."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy import select

from modelyard.accounts.errors import AccountError
from modelyard.accounts.users import create_user
from modelyard.cli.common import console, err_console, run_with_database, settings_from_env
from modelyard.db.engine import Database
from modelyard.db.models import User

app = typer.Typer(help="User accounts.", no_args_is_help=True)


@app.command("create")
def create(
    email: str = typer.Argument(..., help="The account's e-mail address."),
    staff: bool = typer.Option(False, "--staff", help="Give the account staff rights."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="MODELYARD_NEW_PASSWORD"
    ),
) -> None:
    """Create an account (asks for the password unless MODELYARD_NEW_PASSWORD is set)."""

    async def work(database: Database) -> User:
        async with database.sessions() as session:
            return await create_user(session, email=email, password=password, is_staff=staff)

    try:
        user = run_with_database(settings_from_env(), work)
    except AccountError as exc:
        err_console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"Created {'staff ' if staff else ''}account {user.email} (id {user.id}).")


@app.command("list")
def list_users() -> None:
    """List every account."""

    async def work(database: Database) -> list[User]:
        async with database.sessions() as session:
            return list((await session.execute(select(User).order_by(User.id))).scalars())

    table = Table("id", "email", "staff", "active", "created")
    for user in run_with_database(settings_from_env(), work):
        table.add_row(
            str(user.id),
            user.email,
            "yes" if user.is_staff else "",
            "yes" if user.is_active else "no",
            user.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
