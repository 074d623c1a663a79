"""The ``modelyard`` command line (typer)."""

from modelyard.cli.main import app, main

__all__ = ["app", "main"]
