"""``modelyard secrets``: encryption keys and re-encryption of stored secrets."""

from __future__ import annotations

import typer
from cryptography.fernet import Fernet

from modelyard.cli.common import console, err_console, run_with_database, settings_from_env
from modelyard.db.secrets_rotation import rotate_secrets
from modelyard.security.encryption import (
    EncryptionKeyError,
    SecretDecryptionError,
    add_key_to_file,
)

app = typer.Typer(help="Encryption keys and stored secrets.", no_args_is_help=True)


@app.command("generate-key")
def generate_key() -> None:
    """Print a new Fernet key (put it first in MODELYARD_ENCRYPTION_KEYS)."""
    print(Fernet.generate_key().decode())


@app.command("rotate")
def rotate(
    new_key: bool = typer.Option(
        False, "--new-key", help="First put a new key in front of the key file's keys."
    ),
) -> None:
    """Re-encrypt every stored secret with the newest key."""
    settings = settings_from_env()
    if new_key:
        if settings.encryption_keys:
            err_console.print(
                "[red]Error:[/red] keys come from MODELYARD_ENCRYPTION_KEYS; put a new key "
                "(`modelyard secrets generate-key`) in front there and run without --new-key."
            )
            raise typer.Exit(1)
        add_key_to_file(settings.key_file)
        console.print(f"Added a new key to {settings.key_file}.")
    try:
        count = run_with_database(settings, rotate_secrets)
    except (EncryptionKeyError, SecretDecryptionError) as exc:
        err_console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"Re-encrypted {count} stored secret(s) with the newest key.")
