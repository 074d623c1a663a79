"""Fetch one split of a Hub dataset to a Parquet file, in a process of its own
(``python -m modelyard.training.hub_fetch``), through the ``datasets`` library.

The parent (:mod:`modelyard.training.hub_datasets`) gives it the repository, the split, the
output path and the size cap on standard input, with the user's token (never in its
arguments or environment), and an environment with no token of the server's, a fresh
``HF_HOME`` and cache, and ``HF_ENDPOINT`` set to the Hub it should use (the ``datasets``
library reads the endpoint only from there). It prints one JSON line:

* ``{"outcome": "fetched", "rows": N}``;
* ``{"outcome": "not_found", "detail": "…"}`` — no such repository, or no such split;
* ``{"outcome": "unauthorized"}`` — private or gated, and the token (or its absence) fails;
* ``{"outcome": "too_large", "size": BYTES}`` — the data files exceed the cap;
* ``{"outcome": "failed", "detail": "…"}`` — the Hub unreachable, unreadable data.

Access is checked first with the Hub's dataset info (which tells the three refusals
apart; the ``datasets`` library reports all of them as "not found"), and the size from
its file metadata, before anything is downloaded.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx

__all__ = ["DATA_SUFFIXES", "fetch", "main"]

#: The files the ``datasets`` library may read a split from (their sizes are capped).
DATA_SUFFIXES = (".parquet", ".csv", ".json", ".jsonl", ".txt", ".arrow", ".tsv", ".gz", ".zst")


def _access(repo_id: str, token: str | bool, max_bytes: int) -> dict[str, Any] | None:
    """A refusal (``not_found``, ``unauthorized``, ``too_large``), or ``None`` to go on."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        RepositoryNotFoundError,
    )

    try:
        info = HfApi().dataset_info(repo_id, token=token, files_metadata=True)
    except GatedRepoError:
        return {"outcome": "unauthorized"}
    except HFValidationError:
        return {"outcome": "not_found", "detail": " (not a valid Hub id)"}
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (401, 403):
            return {"outcome": "unauthorized"}
        if isinstance(exc, RepositoryNotFoundError) or status == 404:
            return {"outcome": "not_found", "detail": ""}
        return {"outcome": "failed", "detail": f"the Hub answered {status}"}
    size = sum(
        int(sibling.size or 0)
        for sibling in info.siblings or ()
        if sibling.rfilename.lower().endswith(DATA_SUFFIXES)
    )
    if size > max_bytes:
        return {"outcome": "too_large", "size": size}
    return None


def _splits(message: str) -> str:
    found = re.search(r"\[([^\]]*)\]", message)
    return f"; it has {found.group(1).replace(chr(39), '')}" if found else ""


def fetch(request: dict[str, Any]) -> dict[str, Any]:
    """Fetch the split ``request`` names (see the module docstring); never raises."""
    repo_id, split = str(request["repo_id"]), str(request["split"])
    token: str | bool = request.get("token") or False  # False: no stored or implicit token
    try:
        refused = _access(repo_id, token, int(request["max_bytes"]))
        if refused is not None:
            return refused
        import datasets  # type: ignore[import-untyped]

        datasets.disable_progress_bars()
        try:
            data = datasets.load_dataset(
                repo_id, split=split, token=token, cache_dir=request["cache_dir"]
            )
        except ValueError as exc:
            if "split" in str(exc).lower():
                return {
                    "outcome": "not_found",
                    "detail": f" (no split {split!r}{_splits(str(exc))})",
                }
            raise
        data.to_parquet(str(request["out"]))
        return {"outcome": "fetched", "rows": len(data)}
    except (ConnectionError, httpx.TransportError) as exc:
        return {
            "outcome": "failed",
            "detail": f"the Hub could not be reached ({type(exc).__name__})",
        }
    except Exception as exc:  # a damaged file, a format datasets cannot read, ...
        detail = str(exc).replace(token, "***") if isinstance(token, str) else str(exc)
        return {"outcome": "failed", "detail": f"{type(exc).__name__}: {detail}"[:500]}


def main() -> int:
    request = json.loads(sys.stdin.readline())
    Path(request["out"]).parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(fetch(request)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
