"""deploy/bin/backup then deploy/bin/restore into a fresh PostgreSQL database: the same rows,
the same media files; and restore refuses a database that is not empty."""

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _url(database: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{database}"))


def _psql(url: str, sql: str) -> str:
    result = subprocess.run(
        ["psql", url, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def _counts(url: str) -> dict[str, str]:
    tables = _psql(
        url,
        "select table_name from information_schema.tables where table_schema = 'public' order by 1",
    ).split()
    return {t: _psql(url, f'select count(*) from "{t}"') for t in tables}


def test_backup_then_restore_gives_the_same_rows(issuer, tmp_path):
    from tests.factories import PartnerFactory

    PartnerFactory.create_batch(5, company=issuer)
    source = _url(connection.settings_dict["NAME"])
    media = tmp_path / "var" / "media" / "logos"
    media.mkdir(parents=True)
    (media / "logo.png").write_bytes(b"\x89PNG demo")
    env = {**os.environ, "DATABASE_URL": source, "VAR_DIR": str(tmp_path / "var")}
    made = subprocess.run(
        [str(ROOT / "deploy/bin/backup"), str(tmp_path / "backups")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    backup = Path(made.stdout.strip())
    assert sorted(p.name for p in backup.iterdir()) == ["SHA256SUMS", "db.dump", "media.tar.gz"]

    target_name = f"{connection.settings_dict['NAME']}_restored"
    admin = _url("postgres")
    _psql(admin, f'drop database if exists "{target_name}"')
    _psql(admin, f'create database "{target_name}"')
    try:
        target = _url(target_name)
        restored_var = tmp_path / "restored"
        env = {**os.environ, "DATABASE_URL": target, "VAR_DIR": str(restored_var)}
        done = subprocess.run(
            [str(ROOT / "deploy/bin/restore"), str(backup)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        before, after = _counts(source), _counts(target)
        assert after == before and int(after["erp_partner"]) == 5
        assert (restored_var / "media/logos/logo.png").read_bytes() == b"\x89PNG demo"

        again = subprocess.run(
            [str(ROOT / "deploy/bin/restore"), str(backup)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert again.returncode == 1 and "not empty" in again.stderr
    finally:
        _psql(admin, f'drop database if exists "{target_name}"')


def test_restore_refuses_a_tampered_backup(tmp_path):
    (tmp_path / "db.dump").write_bytes(b"x")
    (tmp_path / "media.tar.gz").write_bytes(b"y")
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  db.dump\n")
    result = subprocess.run(
        [str(ROOT / "deploy/bin/restore"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none"},
    )
    assert result.returncode == 1 and "checksums" in result.stderr
