"""Receiving an uploaded file: streamed to a staging path, removed again on any failure."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from fastapi import UploadFile

__all__ = ["CHUNK", "save_upload"]

#: Bytes read from the request at a time.
CHUNK = 1 << 20


async def save_upload(file: UploadFile, staged: Path) -> Path:
    """Write ``file`` to ``staged`` chunk by chunk (nothing is left behind on failure)."""
    try:
        with staged.open("wb") as out:
            while chunk := await file.read(CHUNK):
                out.write(chunk)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staged)
        raise
    return staged
