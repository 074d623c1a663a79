"""The factory uvicorn imports in each worker process: logging first, then the app."""

from __future__ import annotations

from fastapi import FastAPI

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.logs import configure_logging

__all__ = ["app_factory"]


def app_factory() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
