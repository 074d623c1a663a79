"""``make bench``: run every benchmark and write ``bench-results/report.md``."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench import (
    deployment,
    gateway,
    http_clients,
    local,
    reliability,
    training,
    training_quality,
    usage,
)

PACKAGES = (
    "modelyard",
    "fastapi",
    "starlette",
    "uvicorn",
    "aiohttp",
    "orjson",
    "sqlalchemy",
    "torch",
    "transformers",
    "sentence-transformers",
)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    cores = os.cpu_count()
    versions = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    return (
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n- machine: {cpu}, {cores} cores, "
        f"Python {platform.python_version()}\n- versions: {versions}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--output", type=Path, default=Path("bench-results/report.md"))
    parser.add_argument(
        "--training-data",
        type=Path,
        help="Also compare the training defaults on this CSV of text,label rows "
        "(bench/training_quality.py: about 8 minutes on 2 cores for 4,000 rows).",
    )
    args = parser.parse_args()
    sections = [
        gateway.report(gateway.run(quick=args.quick)),
        deployment.section(quick=args.quick),
        http_clients.report(http_clients.run(quick=args.quick)),
        usage.report(usage.run(quick=args.quick)),
        training.report(training.run(quick=args.quick)),
        local.report(local.run(quick=args.quick)),
        reliability.report(reliability.run(quick=args.quick)),
    ]
    if args.training_data:
        sections.append(training_quality.report(training_quality.run(args.training_data)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = "# modelyard benchmark report\n\n" + machine() + "\n" + "\n".join(sections)
    args.output.write_text(text)
    print(text)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
