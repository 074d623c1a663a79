"""The test tree's own shape: folders mirror the package, and a test module imports no
other test module (shared helpers live in modules whose names do not start with test_)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
PACKAGE = TESTS.parent / "src" / "modelyard"

#: Folders that test no single package, and why.
CROSS_CUTTING = {
    "core": "the top-level modules (config, errors, ttl_cache) and this layout",
    "fakes": "fake upstream servers speaking the providers' wire formats",
    "plugins": "installable plugin packages the provider-plugin tests load",
    "reliability": "the whole service under faults, as processes",
}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_test_module_imports_another() -> None:
    offenders = {
        str(path.relative_to(TESTS)): sorted(
            name
            for name in _imported_modules(path)
            if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
        )
        for path in TESTS.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_every_test_sits_in_a_folder_named_after_a_package() -> None:
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    top_level = sorted(path.name for path in TESTS.glob("test_*.py"))
    assert top_level == [], "move these into the folder of the package they test"
    folders = {path.parent.relative_to(TESTS).parts[0] for path in TESTS.rglob("test_*.py")}
    assert folders - packages - CROSS_CUTTING.keys() == set()
