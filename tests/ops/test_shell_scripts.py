"""The production scripts in deploy/bin/: every one is executable and has a shebang, and every
shell script among them (picked by its shebang, so a new one is covered without editing this
file) passes shellcheck at its strictest severity. The real shellcheck runs (tests/ops/tools.py
finds or installs it), and a known mistake proves it does."""

import os
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.ops import tools

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "deploy" / "bin"
# The shells shellcheck understands; a script run by any other interpreter is not its business.
SHELLS = {"sh", "bash", "dash", "ksh"}


def interpreter(path: Path) -> str | None:
    """The program a shebang runs ("bash" for `#!/usr/bin/env bash` or `#!/bin/bash -e`)."""
    with path.open("rb") as handle:
        first = handle.readline().decode("utf-8", "replace")
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    if words and Path(words[0]).name == "env":
        # env's own options (-S, -i, …) and VAR=value assignments come before the program.
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    return Path(words[0]).name if words else None


def bin_files() -> list[Path]:
    return sorted(p for p in BIN.iterdir() if p.is_file())


def shell_scripts() -> list[Path]:
    return [p for p in bin_files() if interpreter(p) in SHELLS]


def run_shellcheck(path: Path) -> subprocess.CompletedProcess:
    # --norc: no ~/.shellcheckrc or repository rc file can relax the check.
    # -x with SCRIPTDIR: a `source`d file (with a `# shellcheck source=` directive when its path
    # is computed) is followed, relative to the script, rather than reported as SC1091.
    command = [
        *tools.shellcheck(),
        "--norc",
        "--severity=style",
        "--external-sources",
        "--source-path=SCRIPTDIR",
        "--color=never",
        str(path),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_deploy_bin_has_shell_scripts():
    """So the parametrized test below cannot pass by having nothing to check."""
    names = [p.name for p in shell_scripts()]
    assert {"backup", "restore"} <= set(names), names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: p.name)
def test_shellcheck_passes(script):
    result = run_shellcheck(script)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_catches_an_unquoted_argument(tmp_path):
    broken = tmp_path / "clean-cache"
    broken.write_text("#!/usr/bin/env bash\nset -euo pipefail\nrm -rf $1/cache\n")
    assert interpreter(broken) == "bash"
    result = run_shellcheck(broken)
    assert result.returncode != 0 and "SC2086" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("shebang", "expected"),
    [
        ("#!/usr/bin/env bash", "bash"),
        ("#!/bin/sh -e", "sh"),
        ("#!/usr/bin/env -S bash -eu", "bash"),
        ("#!/usr/bin/env python3", "python3"),
        ("# no shebang", None),
    ],
)
def test_interpreter_reads_the_shebang(tmp_path, shebang, expected):
    script = tmp_path / "script"
    script.write_text(f"{shebang}\necho hi\n")
    assert interpreter(script) == expected


def test_every_deploy_bin_file_is_executable_with_a_shebang():
    files = bin_files()
    assert files
    for path in files:
        assert path.stat().st_mode & stat.S_IXUSR, f"{path.name} is not executable (chmod +x)"
        assert interpreter(path), f"{path.name} has no shebang (#!/usr/bin/env …)"


@pytest.mark.parametrize("name", ["backup", "restore"])
def test_help_prints_the_header_comment_and_nothing_else(name):
    script = BIN / name
    lines = script.read_text().splitlines()[1:]
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line.removeprefix("#").removeprefix(" "))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # help needs none
    for flag in ("-h", "--help"):
        result = subprocess.run(
            [str(script), flag], capture_output=True, text=True, timeout=30, env=env
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == header


@pytest.mark.parametrize("requirement", [tools.SHELLCHECK, tools.HADOLINT, tools.COMPOSE])
def test_tool_ranges_match_the_dev_dependencies(requirement):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert requirement in project["project"]["optional-dependencies"]["dev"]
