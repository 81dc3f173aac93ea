"""`make run PORT=…` serves the public links (the QR on every printed document, the e-mails'
verification link) on the port it serves, unless PUBLIC_BASE_URL says otherwise. The target runs
with a stand-in Python that records what runserver would get: nothing is installed or served."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/bin/sh
if [ "$2" = "runserver" ]; then
  printf 'PUBLIC_BASE_URL=%s\\nSII_SANDBOX_URL=%s\\nADDRESS=%s\\n' \
    "$PUBLIC_BASE_URL" "$SII_SANDBOX_URL" "$3" > "$RECORD"
fi
exit 0
"""


def run_target(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    stamp = tmp_path / "installed-stamp"
    stamp.touch()
    future = time.time() + 3600  # newer than pyproject.toml: make installs nothing
    os.utime(stamp, (future, future))
    record = tmp_path / "runserver.env"
    environment = {
        k: v for k, v in os.environ.items() if k not in ("PUBLIC_BASE_URL", "SII_SANDBOX_URL")
    }
    environment.update(env or {}, RECORD=str(record))
    command = ["make", "-C", str(ROOT), "--no-print-directory", "run"]
    subprocess.run(
        [*command, f"PY={fake}", f"STAMP={stamp}", *args],
        env=environment,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return dict(line.split("=", 1) for line in record.read_text().splitlines())


pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def test_port_reaches_the_public_links(tmp_path):
    got = run_target(tmp_path, "PORT=8123")
    assert got == {
        "PUBLIC_BASE_URL": "http://127.0.0.1:8123",
        "SII_SANDBOX_URL": "http://127.0.0.1:8123/_sii",
        "ADDRESS": "127.0.0.1:8123",
    }


def test_default_port_and_host(tmp_path):
    got = run_target(tmp_path, "HOST=0.0.0.0")
    assert got["PUBLIC_BASE_URL"] == "http://0.0.0.0:8000"


def test_an_explicit_public_base_url_wins(tmp_path):
    got = run_target(tmp_path, "PORT=8123", env={"PUBLIC_BASE_URL": "https://erp.example.cl"})
    assert got["PUBLIC_BASE_URL"] == "https://erp.example.cl"
    assert got["SII_SANDBOX_URL"] == "http://127.0.0.1:8123/_sii"


def test_settings_read_the_public_base_url():
    code = "from django.conf import settings; import django; django.setup(); "
    code += "print(settings.PUBLIC_BASE_URL)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ops.settings"}
    env["PUBLIC_BASE_URL"] = "http://127.0.0.1:8123/"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8123"
