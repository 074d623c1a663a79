"""Entry point: ``modelyard serve | setup | db | users | tokens | secrets | models |
quick-test``."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

import typer
import uvicorn

from modelyard.accounts.users import ensure_first_admin
from modelyard.api.http_protocol import HTTP_PROTOCOL
from modelyard.api.metrics_exposition import MULTIPROCESS_ENV
from modelyard.cli import (
    db_commands,
    finetune_commands,
    model_commands,
    secrets_commands,
    token_commands,
    training_commands,
    user_commands,
)
from modelyard.cli.common import console, require_migrated, run_with_database, settings_from_env
from modelyard.db.engine import Database
from modelyard.db.migrate import upgrade
from modelyard.providers.file_config import apply_config_file

app = typer.Typer(help="modelyard: a self-hosted LLM platform.", no_args_is_help=True)
app.add_typer(db_commands.app, name="db")
app.add_typer(user_commands.app, name="users")
app.add_typer(token_commands.app, name="tokens")
app.add_typer(training_commands.app, name="jobs")
app.command("train")(training_commands.train)
app.add_typer(secrets_commands.app, name="secrets")
app.add_typer(model_commands.app, name="models")
app.add_typer(finetune_commands.app, name="finetune")
app.command("quick-test")(model_commands.quick_test)


@app.command()
def setup() -> None:
    """Apply migrations and create the first admin account if there is none."""
    settings = settings_from_env()
    upgrade(settings)
    console.print(f"Database ready: {settings.sqlalchemy_url.split('@')[-1]}")

    async def first_admin(database: Database) -> None:
        async with database.sessions() as session:
            created = await ensure_first_admin(
                session, email=settings.admin_email, password=settings.admin_password
            )
        if created is None:
            console.print("Admin account exists already.")
            return
        user, generated = created
        console.print(f"Created admin account [bold]{user.email}[/bold].")
        if generated:
            console.print(
                f"Generated password (shown once, change it after signing in): "
                f"[bold]{generated}[/bold]",
                highlight=False,
                soft_wrap=True,
            )

    run_with_database(settings, first_admin)
    config_file = settings.config_file
    if config_file is not None:
        providers = run_with_database(
            settings, lambda database: apply_config_file(config_file, database)
        )
        console.print(f"Loaded {len(providers)} provider(s) from {config_file}.")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default MODELYARD_HOST)."),
    port: int | None = typer.Option(None, help="Port (default MODELYARD_PORT)."),
    workers: int | None = typer.Option(None, help="Worker processes (default 1)."),
) -> None:
    """Serve the API and the web app with uvicorn (on a migrated database)."""
    settings = settings_from_env()
    require_migrated(settings)
    trusted = settings.trusted_proxies
    count = workers or settings.workers
    with _worker_metrics(count):
        uvicorn.run(
            "modelyard.api.asgi:app_factory",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=count,
            log_config=None,
            http=HTTP_PROTOCOL,
            loop=settings.event_loop,
            # X-Forwarded-* only from MODELYARD_TRUSTED_PROXIES (uvicorn would trust
            # 127.0.0.1 by default); the app applies the same rule to the client address.
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or "",
        )


@contextlib.contextmanager
def _worker_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh directory for their shared metrics (prometheus_client's
    multiprocess mode; see :mod:`modelyard.api.metrics_exposition`), removed at the end.
    One set by the operator is used as it is (it must be emptied between runs)."""
    if workers < 2 or os.environ.get(MULTIPROCESS_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="modelyard-metrics-")
    os.environ[MULTIPROCESS_ENV] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    app()
