"""Print modelyard's package-level import graph, marking each import that climbs a layer.

The layers are the ones `make lint` checks (``[tool.importlinter]`` in pyproject.toml).
Run it on any checkout: ``PYTHONPATH=src .venv/bin/python tools/import_graph.py``.
"""

from __future__ import annotations

import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def layer_ranks() -> dict[str, int]:
    """Package name → layer index (0 is the top) from this checkout's pyproject.toml."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config.get("tool", {}).get("importlinter", {}).get("contracts", [])
    layers = next((c["layers"] for c in contracts if c.get("type") == "layers"), [])
    ranks: dict[str, int] = {}
    for index, layer in enumerate(layers):
        for name in layer.replace("|", ":").split(":"):
            ranks[name.strip()] = index
    return ranks


def package_edges(package: str = "modelyard") -> dict[str, set[str]]:
    """Top-level package → the top-level packages it imports directly."""
    graph = grimp.build_graph(package, cache_dir=None)
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        source = module.split(".")[1] if "." in module else "(root)"
        for imported in graph.find_modules_directly_imported_by(module):
            target = imported.split(".")[1] if "." in imported else "(root)"
            if target != source:
                edges[source].add(target)
    return edges


def main() -> int:
    ranks = layer_ranks()
    climbs = 0
    for source, targets in sorted(package_edges().items()):
        shown = []
        for target in sorted(targets):
            up = source in ranks and target in ranks and ranks[target] < ranks[source]
            climbs += up
            shown.append(f"{target}↑" if up else target)
        print(f"{source:>15} → {' '.join(shown)}")
    print(f"\n{climbs} import(s) climb a layer (marked ↑)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
