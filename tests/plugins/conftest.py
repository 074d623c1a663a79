"""Fixtures for provider-plugin tests: a plugin package pip-installed into a folder of its
own (offline, no build isolation), and the gateway's SDK client."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.providers.kinds import reload_kinds
from tests.gateway.conftest import add_provider as add_provider
from tests.gateway.conftest import asgi_http as asgi_http
from tests.gateway.conftest import sdk as sdk
from tests.gateway.conftest import user_token as user_token

#: The plugin packages of this folder, each a project of its own.
ECHO_PLUGIN = Path(__file__).parent / "modelyard_echo"


def pip_install(project: Path, target: Path, build: Path) -> None:
    """``pip install`` ``project`` into ``target``, built from a copy (the source folder
    stays clean) with the setuptools already installed: no index is asked."""
    shutil.copytree(project, build)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(build),
        ],
        check=True,
        timeout=120,
    )


@pytest.fixture(scope="module", autouse=True)
def echo_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``modelyard-echo`` plugin, installed and on ``sys.path`` for this module's tests;
    the provider kinds are read again on the way in and out."""
    root = tmp_path_factory.mktemp("echo-plugin")
    target = root / "site-packages"
    pip_install(ECHO_PLUGIN, target, root / "build")
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    reload_kinds()
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("modelyard_echo", None)
    importlib.invalidate_caches()
    reload_kinds()
