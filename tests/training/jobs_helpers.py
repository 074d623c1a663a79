"""Waiting on jobs in tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


async def wait_for(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    job_id: int,
    states: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
    *,
    timeout: float = 120.0,
    until: Any = None,
) -> dict[str, Any]:
    """Poll the job until it reaches one of ``states`` (or ``until(job)`` holds)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(f"/v2/training/jobs/{job_id}", headers=auth)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if (until is not None and until(job)) or (until is None and job["state"] in states):
            return job
        if job["state"] in ("succeeded", "failed", "cancelled") and until is not None:
            raise AssertionError(f"job finished before the condition held: {job}")
        assert time.monotonic() < deadline, f"timed out waiting for job {job_id}: {job}"
        await asyncio.sleep(0.1)


async def train_timed(
    http: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], *, timeout: float
) -> tuple[dict[str, Any], float]:
    """Create the job ``body`` describes and wait for its end: the job, and the seconds
    from the request to its end (what a user waits)."""
    started = time.monotonic()
    created = await http.post("/v2/training/jobs", headers=auth, json=body)
    assert created.status_code == 201, created.text
    job = await wait_for(http, auth, created.json()["id"], timeout=timeout)
    return job, time.monotonic() - started
