"""Gateway overhead: the same requests sent to a fast fake upstream directly and through
one modelyard worker, side by side in one run (issue: gateway API and adapters).

Targets: added latency at concurrency 1 ≤ 1 ms p50 and ≤ 5 ms p99 (non-streaming),
time to first chunk added ≤ 2 ms; one worker ≥ 1,000 requests/s and ≥ 500 streams/s
(16 chunks each) at 16 to 64 concurrent clients.

``/v1/responses`` (translated to chat) is measured in the same run and compared with the
chat figures: without ``store`` (the translation alone) and, at 16 clients, with it (one
row written per answer).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.processes import background, free_port, load
from bench.wrk import available, wrk_load

MODEL = "openai_compatible/bench-model"
#: Three-target priority lists (routing issue): first target healthy / in cooldown.
HEALTHY_FIRST = "route-healthy-first"
COOLING_FIRST = "route-cooling-first"


def _config(upstream_port: int, failing_port: int) -> str:
    healthy = "{provider: openai_compatible, model: bench-model}"
    failing = "{provider: groq, model: bench-model}"
    spare = "{provider: openai, model: bench-model}"
    return (
        "providers:\n"
        "  - name: bench upstream\n    kind: openai_compatible\n"
        f"    base_url: http://127.0.0.1:{upstream_port}/v1\n"
        "  - name: always rate limited\n    kind: groq\n    api_key: ${BENCH_GROQ_KEY}\n"
        f"    base_url: http://127.0.0.1:{failing_port}/v1\n"
        "  - name: spare\n    kind: openai\n    api_key: ${BENCH_OPENAI_KEY}\n"
        f"    base_url: http://127.0.0.1:{upstream_port}/v1\n"
        "routes:\n"
        f"  {HEALTHY_FIRST}:\n    targets: [{healthy}, {failing}, {spare}]\n"
        f"  {COOLING_FIRST}:\n    targets: [{failing}, {healthy}, {spare}]\n"
    )


def _env(data_dir: Path, port: int, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update(
        MODELYARD_DATA_DIR=str(data_dir),
        MODELYARD_PORT=str(port),
        MODELYARD_CONFIG=str(config),
        MODELYARD_LOG_LEVEL="WARNING",
        MODELYARD_NEW_PASSWORD="bench-password-1",
        BENCH_GROQ_KEY="gsk_bench0000000000",
        BENCH_OPENAI_KEY="sk-bench-0000000000000000",
    )
    return env


def _modelyard(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def bench_token(env: dict[str, str], email: str = "bench@example.com") -> str:
    """Set the data directory of ``env`` up, create the user ``email`` and return a new
    API token of theirs."""
    _modelyard(env, "setup")
    _modelyard(env, "users", "create", email)
    return _modelyard(env, "tokens", "create", "--user", email).strip()


def _responses(url: str, token: str, scale: float) -> dict[str, dict[str, Any]]:
    """``/v1/responses`` at the chat rows' settings (``store`` off unless named)."""
    n, heavy = int(3000 * scale) or 50, int(8000 * scale) or 100
    unstored = {"store": False}

    def measure(**kwargs: Any) -> dict[str, Any]:
        return load(url, token=token, model=MODEL, **kwargs)

    measure(requests=200, concurrency=1, extra=unstored)  # warm-up
    return {
        "latency": measure(requests=n, concurrency=1, extra=unstored),
        "streaming": measure(requests=n // 2, concurrency=1, stream=True, extra=unstored),
        "throughput": measure(requests=heavy, concurrency=16, extra=unstored),
        "streams": measure(requests=heavy // 2, concurrency=16, stream=True, extra=unstored),
        "stored": measure(requests=heavy, concurrency=16),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Measure and return the figures (``quick`` for a smoke run)."""
    scale = 0.1 if quick else 1.0
    wrk = available() and not quick
    upstream_port, failing_port, app_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        config = data / "modelyard.yaml"
        config.write_text(_config(upstream_port, failing_port))
        env = _env(data, app_port, config)
        token = bench_token(env)
        direct = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
        gateway = f"http://127.0.0.1:{app_port}/v1/chat/completions"
        upstream_cmd = [sys.executable, "-m", "bench.upstream", str(upstream_port)]
        failing_cmd = [sys.executable, "-m", "bench.upstream", str(failing_port), "429"]
        app_cmd = [sys.executable, "-m", "modelyard", "serve", "--workers", "1"]
        with (
            background(upstream_cmd, ready_url=f"http://127.0.0.1:{upstream_port}/v1/models"),
            background(failing_cmd, ready_url=f"http://127.0.0.1:{failing_port}/v1/models"),
            background(app_cmd, env=env, ready_url=f"http://127.0.0.1:{app_port}/healthz"),
        ):

            def both(**kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
                load(gateway, token=token, model=MODEL, **{**kwargs, "requests": 200})  # warm-up
                return (
                    load(direct, **kwargs),
                    load(gateway, token=token, model=MODEL, **kwargs),
                )

            n = int(3000 * scale) or 50
            latency = both(requests=n, concurrency=1)
            streaming = both(requests=n // 2, concurrency=1, stream=True)
            metrics_url = f"http://127.0.0.1:{app_port}/metrics"
            before = _runtime(metrics_url)
            throughput = {
                c: both(requests=int(8000 * scale) or 100, concurrency=c) for c in (16, 64)
            }
            runtime = _runtime_delta(before, _runtime(metrics_url))
            one_wrk = _wrk(gateway, token) if wrk else None
            streams = {
                c: both(requests=int(4000 * scale) or 100, concurrency=c, stream=True)
                for c in (16, 64)
            }
            routed = {
                name: load(gateway, token=token, model=name, requests=n, concurrency=1)
                for name in (HEALTHY_FIRST, COOLING_FIRST)
            }
            responses = _responses(f"http://127.0.0.1:{app_port}/v1/responses", token, scale)
            routed_load = {
                name: load(
                    gateway,
                    token=token,
                    model=name,
                    requests=int(8000 * scale) or 100,
                    concurrency=64,
                )
                for name in (HEALTHY_FIRST, COOLING_FIRST)
            }
            two_workers = _two_workers(env, data, token, int(8000 * scale) or 100, wrk=wrk)
    return {
        "two_workers": two_workers,
        "wrk": None if one_wrk is None else {"one": one_wrk, "two": two_workers.pop("wrk")},
        "responses": responses,
        "routed": routed,
        "routed_load": routed_load,
        "latency": latency,
        "streaming": streaming,
        "throughput": throughput,
        "streams": streams,
        "runtime": runtime,
    }


def _two_workers(
    env: dict[str, str], data: Path, token: str, requests: int, *, wrk: bool
) -> dict[str, Any]:
    """Chat requests at 64 clients against ``serve --workers 2`` on the same database (the
    upstreams still up), beside the one worker's figure; with ``wrk``, its figure too."""
    port = free_port()
    two = {**env, "MODELYARD_PORT": str(port)}
    app_cmd = [sys.executable, "-m", "modelyard", "serve", "--workers", "2"]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with background(app_cmd, env=two, ready_url=f"http://127.0.0.1:{port}/healthz"):
        load(url, token=token, model=MODEL, requests=400, concurrency=64)  # warm both up
        figures = load(url, token=token, model=MODEL, requests=requests, concurrency=64)
        if wrk:
            figures["wrk"] = _wrk(url, token)
        return figures


def _wrk(url: str, token: str) -> dict[str, Any]:
    """``wrk``'s figures for chat requests at 64 connections, after a second's warm-up."""
    wrk_load(url, token=token, model=MODEL, concurrency=64, seconds=1)
    return wrk_load(url, token=token, model=MODEL, concurrency=64)


#: The runtime probes' counters (``modelyard.runtime_probes``) the bench reads.
RUNTIME_METRICS = {
    "gen2_collections": 'modelyard_gc_collections_total{generation="2"}',
    "gen2_pause_s": 'modelyard_gc_pause_seconds_total{generation="2"}',
    "gen0_collections": 'modelyard_gc_collections_total{generation="0"}',
    "gen0_pause_s": 'modelyard_gc_pause_seconds_total{generation="0"}',
    "gen1_collections": 'modelyard_gc_collections_total{generation="1"}',
    "gen1_pause_s": 'modelyard_gc_pause_seconds_total{generation="1"}',
    "lag_s": "modelyard_event_loop_lag_seconds_total",
    "lag_samples": "modelyard_event_loop_lag_samples_total",
    "lag_max_s": "modelyard_event_loop_lag_max_seconds",
    "frozen": "modelyard_gc_frozen_objects",
}


def _runtime(metrics_url: str) -> dict[str, float]:
    """The worker's GC and loop-lag figures now, and when they were read."""
    body = httpx.get(metrics_url, timeout=10).text
    values = {"at": time.perf_counter()}
    for key, name in RUNTIME_METRICS.items():
        found = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
        values[key] = float(found.group(1)) if found else float("nan")
    return values


def _runtime_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the load between the two readings cost in collections and loop lag."""
    wall = after["at"] - before["at"]
    samples = after["lag_samples"] - before["lag_samples"]
    return {
        "wall_s": wall,
        "gen2_collections": after["gen2_collections"] - before["gen2_collections"],
        "gen2_pause_s": after["gen2_pause_s"] - before["gen2_pause_s"],
        "young_collections": sum(
            after[key] - before[key] for key in ("gen0_collections", "gen1_collections")
        ),
        "young_pause_s": sum(after[key] - before[key] for key in ("gen0_pause_s", "gen1_pause_s")),
        "lag_mean_ms": (after["lag_s"] - before["lag_s"]) / samples * 1000 if samples else 0.0,
        "lag_max_ms": after["lag_max_s"] * 1000,
        "frozen": after["frozen"],
    }


def report(figures: dict[str, Any]) -> str:
    """The Markdown section for the figures."""
    direct, via = figures["latency"]
    s_direct, s_via = figures["streaming"]
    lines = [
        "## Gateway overhead (one worker, fake OpenAI upstream on 127.0.0.1)",
        "",
        "| measure | direct | through modelyard | added | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| p50 latency, concurrency 1 | {direct['p50_ms']:.2f} ms | {via['p50_ms']:.2f} ms | "
        f"{via['p50_ms'] - direct['p50_ms']:.2f} ms | ≤ 1 ms |",
        f"| p99 latency, concurrency 1 | {direct['p99_ms']:.2f} ms | {via['p99_ms']:.2f} ms | "
        f"{via['p99_ms'] - direct['p99_ms']:.2f} ms | ≤ 5 ms |",
        f"| time to first chunk p50 | {s_direct['ttfc_p50_ms']:.2f} ms | "
        f"{s_via['ttfc_p50_ms']:.2f} ms | {s_via['ttfc_p50_ms'] - s_direct['ttfc_p50_ms']:.2f} ms"
        " | ≤ 2 ms |",
        "",
        "| load | direct req/s | modelyard req/s | ratio | p50 | p99 | p99 / p50 | errors "
        "| target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, key, target in (
        ("non-streaming", "throughput", "≥ 2,500/s, p99 ≤ 3x p50"),
        ("streams (16 chunks)", "streams", "≥ 1,500/s, p99 ≤ 3x p50"),
    ):
        for concurrency, (d, v) in figures[key].items():
            lines.append(
                f"| {name}, {concurrency} clients | {d['rps']:.0f} | {v['rps']:.0f} | "
                f"{v['rps'] / d['rps']:.2f} | {v['p50_ms']:.1f} ms | {v['p99_ms']:.1f} ms | "
                f"{v['p99_ms'] / v['p50_ms']:.1f} | {v['errors']} | {target} |"
            )
    one = figures["throughput"][64][1]
    two = figures["two_workers"]
    lines.append(
        f"| non-streaming, 64 clients, `--workers 2` | - | {two['rps']:.0f} | "
        f"{two['rps'] / one['rps']:.2f}x one worker | {two['p50_ms']:.1f} ms | "
        f"{two['p99_ms']:.1f} ms | {two['p99_ms'] / two['p50_ms']:.1f} | {two['errors']} "
        "| ≥ 1.7x one worker |"
    )
    if figures["wrk"] is not None:
        one, two = figures["wrk"]["one"], figures["wrk"]["two"]
        for label, v in (("", one), (", `--workers 2`", two)):
            ratio = f"{two['rps'] / one['rps']:.2f}x one worker" if label else "-"
            lines.append(
                f"| non-streaming, 64 clients{label}, from `wrk` | - | {v['rps']:.0f} | {ratio} | "
                f"{v['p50_ms']:.1f} ms | {v['p99_ms']:.1f} ms | {v['p99_ms'] / v['p50_ms']:.1f} | "
                f"{v['errors']} | {'≥ 1.7x one worker' if label else '≥ 2,500/s'} |"
            )
    lines += [
        "",
        "| three-target priority list | p50 | p99 | added p50 vs direct | req/s at 64 clients |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, label in (
        (HEALTHY_FIRST, "first target healthy"),
        (COOLING_FIRST, "first target in cooldown"),
    ):
        r, heavy = figures["routed"][name], figures["routed_load"][name]
        lines.append(
            f"| {label} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | "
            f"{r['p50_ms'] - direct['p50_ms']:.2f} ms | {heavy['rps']:.0f} |"
        )
    runtime = figures["runtime"]
    share = runtime["gen2_pause_s"] / runtime["wall_s"] * 100 if runtime["wall_s"] else 0.0
    lines += [
        "",
        "During the non-streaming loads (16 and 64 clients): "
        f"{runtime['gen2_collections']:.0f} generation-2 collections, "
        f"{runtime['gen2_pause_s'] * 1000:.0f} ms in all ({share:.1f}% of "
        f"{runtime['wall_s']:.1f} s; target ≤ 2%), {runtime['young_collections']:.0f} "
        f"generation-0 and 1 collections ({runtime['young_pause_s'] * 1000:.0f} ms), "
        f"{runtime['frozen']:,.0f} objects frozen "
        f"at start-up; event-loop lag {runtime['lag_mean_ms']:.2f} ms on average, "
        f"{runtime['lag_max_ms']:.0f} ms at worst since start.",
    ]
    return "\n".join([*lines, *_responses_report(figures)]) + "\n"


def _responses_report(figures: dict[str, Any]) -> list[str]:
    """The ``/v1/responses`` rows, each beside the chat figure of the same run."""
    responses = figures["responses"]
    chat_c1, chat_stream = figures["latency"][1], figures["streaming"][1]
    chat_rps, chat_streams = figures["throughput"][16][1], figures["streams"][16][1]
    rows = (  # label, chat figure, responses run, its figure's key, unit
        ("p50 latency, concurrency 1", chat_c1["p50_ms"], "latency", "p50_ms", "ms"),
        ("p99 latency, concurrency 1", chat_c1["p99_ms"], "latency", "p99_ms", "ms"),
        ("time to first chunk p50", chat_stream["ttfc_p50_ms"], "streaming", "ttfc_p50_ms", "ms"),
        ("non-streaming, 16 clients", chat_rps["rps"], "throughput", "rps", "/s"),
        ("streams, 16 clients", chat_streams["rps"], "streams", "rps", "/s"),
        ("non-streaming + store, 16 clients", chat_rps["rps"], "stored", "rps", "/s"),
    )
    lines = [
        "",
        "| /v1/responses vs /v1/chat/completions (same run) | chat | responses | ratio | errors |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, chat, run_name, key, unit in rows:
        value = responses[run_name][key]
        shown = f"{chat:.2f} ms | {value:.2f} ms" if unit == "ms" else f"{chat:.0f} | {value:.0f}"
        errors = responses[run_name]["errors"]
        lines.append(f"| {label} | {shown} | {value / chat:.2f} | {errors} |")
    return lines
