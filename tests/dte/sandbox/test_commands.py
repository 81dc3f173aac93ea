"""`manage.py sandbox_caf`: CAFs signed by the sandbox's own key, written out or loaded."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from dte.core.caf import parse_caf, verify_caf_signature
from dte.core.testmaterial import SANDBOX_IDK
from dte.models import Caf
from tests.dte.sandbox.material import sandbox_key

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


def sandbox_caf(*args: str) -> str:
    out = StringIO()
    call_command("sandbox_caf", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_caf_parses_and_verifies_with_the_sandbox_key(sandbox, company):
    text = sandbox_caf("--company", "76.086.428-5", "--type", "33", "--from", "1", "--to", "500")
    caf = parse_caf(text.encode("iso-8859-1"))
    assert (caf.rut_emisor, caf.tipo_dte, caf.folio_desde, caf.folio_hasta) == (
        "76086428-5",
        33,
        1,
        500,
    )
    assert caf.idk == SANDBOX_IDK
    assert caf.razon_social == company.razon_social
    assert verify_caf_signature(caf, sandbox_key().public_key())


def test_a_company_unknown_here_gets_a_test_name(sandbox):
    text = sandbox_caf("--company", "77879240-0", "--type", "39", "--from", "10", "--to", "20")
    caf = parse_caf(text.encode("iso-8859-1"))
    assert caf.razon_social == "CONTRIBUYENTE DE PRUEBA"
    assert caf.tipo_dte == 39


def test_out_writes_the_file(sandbox, company, tmp_path):
    path = tmp_path / "caf.xml"
    assert sandbox_caf("--company", "76086428-5", "--type", "61", "--from", "1", "--to", "9",
                       "--out", str(path)) == ""  # fmt: skip
    assert parse_caf(path.read_bytes()).folio_hasta == 9


def test_load_uploads_it_to_the_company(sandbox, company):
    sandbox_caf("--company", "76086428-5", "--type", "33", "--from", "1", "--to", "50", "--load")
    caf = Caf.objects.get(company=company, tipo_dte=33)
    assert (caf.folio_desde, caf.folio_hasta, caf.idk, caf.is_test) == (1, 50, SANDBOX_IDK, True)


@pytest.mark.parametrize(
    ("company_rut", "tipo", "desde", "hasta", "flags", "message"),
    [
        ("77879240-0", "33", "1", "10", ["--load"], "no existe"),
        ("76086428-6", "33", "1", "10", [], "RUT"),
        ("76086428-5", "99", "1", "10", [], "Tipo"),
        ("76086428-5", "33", "10", "5", [], "Rango"),
    ],
)
def test_bad_input_is_a_clear_error(
    sandbox, company, company_rut, tipo, desde, hasta, flags, message
):
    args = ["--company", company_rut, "--type", tipo, "--from", desde, "--to", hasta, *flags]
    with pytest.raises(CommandError, match=message):
        sandbox_caf(*args)


def test_overlapping_load_is_a_clear_error(sandbox, company):
    sandbox_caf("--company", "76086428-5", "--type", "33", "--from", "1", "--to", "50", "--load")
    with pytest.raises(CommandError, match="superpone"):
        sandbox_caf(
            "--company", "76086428-5", "--type", "33", "--from", "40", "--to", "60", "--load"
        )


@pytest.mark.parametrize(
    "args",
    [
        ["--company", "1-2", "--type", "33", "--from", "1", "--to", "2"],
        ["--company", "76086428-5", "--type", "7", "--from", "1", "--to", "2"],
        ["--company", "76086428-5", "--type", "33", "--from", "5", "--to", "2"],
    ],
)
def test_from_the_command_line_bad_input_exits_non_zero_with_one_line(args):
    # These fail before any database access, so the real command can run in a subprocess.
    result = subprocess.run(
        [sys.executable, "manage.py", "sandbox_caf", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("CommandError: ")
