"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx


async def test_health_and_readiness(client: httpx.AsyncClient, backend: str) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == ("sqlite" if backend == "sqlite" else "postgresql")


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.delete("/v2/tokens/41")
    await client.delete("/v2/tokens/42")
    body = (await client.get("/metrics")).text
    assert 'modelyard_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in body
    assert (
        'modelyard_http_requests_total{method="DELETE",route="/v2/tokens/{token_id}",'
        'status="401"} 2.0' in body
    )
    assert "modelyard_http_request_duration_seconds_bucket" in body


def _gate(tmp_path: Path, report: object | None, status: int, *flags: str) -> tuple[int, str]:
    """Run ``tools/pip_audit_gate.py`` as ``make audit`` does, on a pip-audit JSON report."""
    path = tmp_path / "pip-audit.json"
    path.unlink(missing_ok=True)  # as make audit does first
    if report is not None:
        path.write_text(json.dumps(report))
    done = subprocess.run(
        [sys.executable, str(GATE), str(path), str(status), *flags],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


GATE = Path(__file__).resolve().parents[2] / "tools" / "pip_audit_gate.py"
SKIPPED = "Dependency not found on PyPI and could not be audited"


def test_audit_fails_loudly_when_pip_audit_could_check_nothing(tmp_path: Path) -> None:
    nothing = {
        "dependencies": [
            {"name": name, "skip_reason": f"{SKIPPED}: {name} (1.0)"} for name in ("a", "b", "c")
        ],
        "fixes": [],
    }
    code, output = _gate(tmp_path, nothing, 0)  # pip-audit itself exits 0 here
    assert code != 0
    assert "AUDIT FAILED" in output and "checked 0 of 3" in output and SKIPPED in output

    code, output = _gate(tmp_path, None, 1)  # no report at all (the service unreachable)
    assert code != 0 and "no readable report" in output

    assert _gate(tmp_path, {"dependencies": [], "fixes": []}, 0)[0] != 0

    # On an offline machine (make audit's default here) it passes, but says so loudly.
    code, output = _gate(tmp_path, nothing, 0, "--unchecked-ok")
    assert code == 0 and "checked nothing" in output and "AUDIT FAILED" not in output
    assert "!" * 78 in output and "checked 0 of 3" in output


def test_audit_fails_on_a_vulnerability_and_passes_a_clean_run(tmp_path: Path) -> None:
    clean = [{"name": f"pkg{n}", "version": "1.0", "vulns": []} for n in range(9)]
    local_build = {"name": "torch", "skip_reason": f"{SKIPPED}: torch (2.0+cpu)"}
    code, output = _gate(tmp_path, {"dependencies": [*clean, local_build], "fixes": []}, 0)
    assert code == 0, output
    assert "checked 9 of 10" in output and "torch" in output

    vulnerable = {"name": "jinja2", "version": "2.0", "vulns": [{"id": "PYSEC-2024-1"}]}
    code, output = _gate(tmp_path, {"dependencies": [*clean, vulnerable], "fixes": []}, 1)
    assert code == 1 and "VULNERABLE: jinja2 2.0: PYSEC-2024-1" in output
    vulnerable_run = {"dependencies": [*clean, vulnerable], "fixes": []}
    assert _gate(tmp_path, vulnerable_run, 1, "--unchecked-ok")[0] == 1  # never waived
