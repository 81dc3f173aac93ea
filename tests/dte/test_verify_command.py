"""manage.py verify needs no database: it runs as a separate process against a database that was
never migrated, or does not exist at all, and answers any failure with one line on stderr.

The sandbox's CAF key (IDK 900) is the only one kept in the database: without one, a CAF of
IDK 900 is reported as not verifiable, with the reason; the SII's own keys are files."""

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from dte.core.caf import parse_caf
from dte.core.certificate import load_pkcs12
from dte.core.domain import Documento, Emisor, Linea, Receptor
from dte.core.issue import stamp_and_sign
from erp.doctypes import TipoDte

ROOT = Path(__file__).resolve().parents[2]
KEYS = ROOT / "tests" / "data" / "keys"
NC_SAMPLE = ROOT.parent / "shared" / "sii" / "samples" / "dte" / "DTE--96670340-7--61--110616.xml"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sandbox_dte(tmp_path_factory) -> Path:
    """A factura signed with the test CAF of tests/data/keys (IDK 900, the sandbox's key)."""
    caf = parse_caf((KEYS / "caf_76086428-5_33_1-1000.xml").read_bytes())
    cert = load_pkcs12((KEYS / "firmante_12345678-5.p12").read_bytes(), "clave-de-prueba")
    doc = Documento(
        TipoDte.FACTURA,
        7,
        date(2026, 11, 23),
        Emisor(
            "76086428-5",
            "Empresa Demo Facturación SpA",
            "Desarrollo de software",
            (620200,),
            "Av. Providencia 1208",
            "Providencia",
            "Santiago",
        ),
        Receptor(
            "96790240-3",
            "Distribuidora Los Andes S.A.",
            "Mayorista",
            "Av. Apoquindo 4501",
            "Las Condes",
            "Santiago",
        ),
        (Linea("Servicio de consultoría", Decimal(12), Decimal(45000), unidad="HR"),),
        forma_pago=1,
    )
    issued = stamp_and_sign(doc, caf=caf, signer=cert, now=NOW)
    path = tmp_path_factory.mktemp("dte") / "DTE--76086428-5--33--7.xml"
    path.write_bytes(issued.file_bytes())
    return path


def verify(*files: Path | str, database: Path, var_dir: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "VAR_DIR": str(var_dir),
        "SII_ENV": "sandbox",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "verify", *map(str, files)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line_each(stderr: str, count: int) -> list[str]:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr
    assert len(lines) == count, stderr
    return lines


def test_an_official_dte_verifies_without_any_database(tmp_path):
    database = tmp_path / "nowhere" / "db.sqlite3"  # not even its directory exists
    result = verify(NC_SAMPLE, database=database, var_dir=tmp_path / "var")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True
    assert result.stderr == ""
    assert not database.parent.exists()


def test_a_sandbox_caf_without_a_database_is_not_verifiable_with_the_reason(tmp_path, sandbox_dte):
    database = tmp_path / "db.sqlite3"
    result = verify(sandbox_dte, database=database, var_dir=tmp_path / "var")
    assert result.returncode == 1
    (line,) = _one_line_each(result.stderr, 1)
    assert line.startswith(f"{sandbox_dte}: no verifica:")
    assert "IDK 900" in line and "no existe" in line
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["documents"][0]["checks"]}
    assert not checks["caf"]["ok"] and "no se puede verificar" in checks["caf"]["detail"]
    # everything else verifies: only the CAF's signature could not be checked
    assert all(c["ok"] for name, c in checks.items() if name != "caf")
    assert not database.exists()  # verify never creates a database


def test_an_unmigrated_database_and_bad_files_each_get_one_line(tmp_path, sandbox_dte):
    database = tmp_path / "db.sqlite3"
    sqlite3.connect(database).close()  # an empty, never migrated database
    garbage = tmp_path / "garbage.xml"
    garbage.write_bytes(b"\x00\xffno es XML")
    not_a_dte = tmp_path / "other.xml"
    not_a_dte.write_text("<Factura><Folio>1</Folio></Factura>")
    missing = tmp_path / "missing.xml"
    result = verify(
        NC_SAMPLE, sandbox_dte, missing, garbage, not_a_dte, database=database, var_dir=tmp_path
    )
    assert result.returncode == 1
    lines = _one_line_each(result.stderr, 4)
    assert lines[0].startswith(f"{sandbox_dte}: ") and "IDK 900" in lines[0]
    assert "manage.py migrate" in lines[0]
    assert lines[1] == f"{missing}: no se puede leer el archivo: No such file or directory"
    assert lines[2].startswith(f"{garbage}: no verifica: xml: ")
    assert lines[3].startswith(f"{not_a_dte}: no verifica: schema: unknown root element")
    reports = json.loads(result.stdout)
    assert [r["ok"] for r in reports] == [True, False, False, False, False]
    assert reports[2] == {"file": str(missing), "ok": False, "error": lines[1].split(": ", 1)[1]}
    with sqlite3.connect(database) as conn:  # read, never written: no table was created
        assert conn.execute("select count(*) from sqlite_master").fetchone() == (0,)


def test_a_sandbox_caf_verifies_with_the_sandbox_key_in_the_database(sandbox, sandbox_dte, capsys):
    call_command("verify", str(sandbox_dte))
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    caf = next(c for c in report["documents"][0]["checks"] if c["name"] == "caf")
    assert caf["detail"] == "FRMA verified with the SII key IDK 900"


def test_a_migrated_database_without_the_sandbox_key_says_so(db, sandbox_dte, capsys):
    with pytest.raises(SystemExit) as info:
        call_command("verify", str(sandbox_dte))
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "no tiene la clave del SII de pruebas" in err and len(err.strip().splitlines()) == 1
    from dte.models import SandboxAuthority

    assert not SandboxAuthority.objects.exists()  # never created by verify
