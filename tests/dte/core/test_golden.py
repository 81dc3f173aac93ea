"""Golden files: fixed keys (tests/data/keys) and a fixed `now` give byte-identical DTEs and
envelopes. Regenerate with `REGENERATE_GOLDEN=1 pytest tests/dte/core/test_golden.py` only
after a deliberate change, and review the diff."""

import os
import shutil
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from dte.core.caf import official_sii_keys, parse_caf
from dte.core.certificate import load_pkcs12
from dte.core.domain import Documento, Emisor, Linea, Receptor, Referencia, Resolucion
from dte.core.envelope import EnvelopeItem, build_envelope
from dte.core.issue import stamp_and_sign
from dte.core.testmaterial import SANDBOX_IDK
from dte.core.verify import verify_xml
from erp.doctypes import TipoDte
from erp.totals import GlobalAdjustment, Movement, ValueType

DATA = Path(__file__).resolve().parents[2] / "data"
KEYS, GOLDEN = DATA / "keys", DATA / "golden"
NOW = datetime(2026, 11, 23, 13, 45, 10, tzinfo=UTC)  # 10:45:10 in Santiago
EMISOR = Emisor(
    "76086428-5",
    "Empresa Demo Facturación SpA",
    "Desarrollo de software",
    (620200, 631200),
    "Av. Providencia 1208, of. 1603",
    "Providencia",
    "Santiago",
)
RECEPTOR = Receptor(
    "96790240-3",
    "Distribuidora Los Andes & Cía. S.A.",
    "Venta al por mayor",
    "Av. Apoquindo 4501",
    "Las Condes",
    "Santiago",
)


def documento(tipo: int, folio: int) -> Documento:
    tipo_dte = TipoDte(tipo)
    lines = (
        Linea("Consultoría «ñandú» — marzo", Decimal(12), Decimal(45000), unidad="HR"),
        Linea("Licencia anual", Decimal(1), Decimal(120000), Decimal(10), codigo="SOFT-LIC"),
        Linea("Curso exento", Decimal(1), Decimal(80000), exento=True),
    )
    if tipo_dte.exempt_only:
        lines = (Linea("Curso de capacitación", Decimal(4), Decimal(80000)),)
    refs = ()
    if tipo_dte.is_note:
        refs = (Referencia("33", "1", date(2026, 11, 2), 3, "Corrige montos"),)
    return Documento(
        tipo=tipo_dte,
        folio=folio,
        fecha_emision=date(2026, 11, 23),
        emisor=EMISOR,
        receptor=RECEPTOR,
        lineas=lines,
        referencias=refs,
        ajustes=(GlobalAdjustment(Movement.DISCOUNT, ValueType.PERCENT, Decimal(5)),),
        forma_pago=1,
    )


@pytest.fixture(scope="module")
def material():
    cert = load_pkcs12((KEYS / "firmante_12345678-5.p12").read_bytes(), "clave-de-prueba")
    sii = serialization.load_pem_private_key((KEYS / "sandbox_sii_key.pem").read_bytes(), None)
    keys = {**official_sii_keys(), SANDBOX_IDK: sii.public_key()}
    return cert, keys


def caf_for(tipo: int):
    return parse_caf((KEYS / f"caf_76086428-5_{tipo}_1-1000.xml").read_bytes())


def check_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("REGENERATE_GOLDEN") == "1":
        path.write_bytes(data)
    assert path.exists(), f"missing golden file {name}: run with REGENERATE_GOLDEN=1"
    assert data == path.read_bytes(), f"{name} changed"


@pytest.mark.parametrize("tipo", [33, 34, 39, 41, 46, 52, 56, 61])
def test_dte_is_deterministic_and_verifies(material, tipo):
    cert, keys = material
    issued = stamp_and_sign(documento(tipo, 7), caf=caf_for(tipo), signer=cert, now=NOW)
    check_golden(f"DTE--76086428-5--{tipo}--7.xml", issued.file_bytes())
    report = verify_xml(issued.file_bytes(), sii_keys=keys)
    assert report.ok, report.to_dict()


@pytest.mark.parametrize("tipos", [(33, 34, 46, 52, 56, 61), (39, 41)])
def test_envelope_is_deterministic_and_verifies(material, tipos):
    cert, keys = material
    items = [
        EnvelopeItem(
            TipoDte(t), stamp_and_sign(documento(t, 7), caf=caf_for(t), signer=cert, now=NOW).xml
        )
        for t in tipos
    ]
    envelope = build_envelope(
        items,
        rut_emisor=EMISOR.rut,
        rut_envia=cert.rut,
        resolucion=Resolucion(date(2014, 8, 22), 80),
        timestamp=NOW,
        key=cert,
    )
    kind = "EnvioBOLETA" if tipos == (39, 41) else "EnvioDTE"
    check_golden(f"{kind}--76086428-5--golden.xml", envelope)
    report = verify_xml(envelope, sii_keys=keys)
    assert report.ok, report.to_dict()
    assert len(report.documents) == len(tipos)


def test_ted_fields_and_timestamps(material):
    cert, _ = material
    issued = stamp_and_sign(documento(33, 7), caf=caf_for(33), signer=cert, now=NOW)
    text = issued.file_bytes().decode("iso-8859-1")
    assert "<RSR>Distribuidora Los Andes &amp; Cía. S.A.</RSR>" in text
    assert "<IT1>Consultoría «ñandú» - marzo</IT1>" in text  # em dash made Latin-1
    assert "<TSTED>2026-11-23T10:45:10</TSTED>" in text  # America/Santiago, no offset
    assert "<TmstFirma>2026-11-23T10:45:10</TmstFirma>" in text
    assert issued.ted.dd in text  # the signed DD bytes are the document's bytes


@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 (Debian) not installed")
@pytest.mark.parametrize("tipo", [33, 39])
def test_xmlsec1_command_verifies_the_golden_dte(tipo, tmp_path):
    """A second, independent verifier: the xmlsec1 command-line tool (key from the
    certificate in KeyInfo; --insecure skips the CA chain, which a test certificate lacks)."""
    dte = GOLDEN / f"DTE--76086428-5--{tipo}--7.xml"
    command = ["xmlsec1", "--verify", "--id-attr:ID", "Documento", "--insecure", str(dte)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 1/1" in result.stderr
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(dte.read_bytes().replace(b"<MntTotal>", b"<MntTotal>1", 1))
    result = subprocess.run(
        [*command[:-1], str(tampered)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "SignedInfo References (ok/all): 0/1" in result.stderr
