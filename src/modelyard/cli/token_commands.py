"""``modelyard tokens``: personal API tokens for scripts and operators."""

from __future__ import annotations

import typer

from modelyard.accounts.api_tokens import create_api_token
from modelyard.accounts.users import get_user_by_email
from modelyard.cli.common import err_console, run_with_database, settings_from_env
from modelyard.db.engine import Database

app = typer.Typer(help="Personal API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="E-mail of the account the token acts for."),
    name: str = typer.Option("cli", help="A name to recognise the token by."),
) -> None:
    """Create a token and print it once (only its digest is stored)."""

    async def work(database: Database) -> str | None:
        async with database.sessions() as session:
            account = await get_user_by_email(session, email=user)
            if account is None:
                return None
            _record, token = await create_api_token(session, user=account, name=name)
            return token

    token = run_with_database(settings_from_env(), work)
    if token is None:
        err_console.print(
            f"[red]Error:[/red] no account with the e-mail {user}; "
            "create it with `modelyard users create`."
        )
        raise typer.Exit(1)
    err_console.print("New API token (shown once; store it now):")
    print(token)
