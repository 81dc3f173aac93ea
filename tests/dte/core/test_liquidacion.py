"""The liquidación-factura (43): the SII's worked example (dte/core/EXPORTS.md §6), built,
stamped, signed and enveloped, valid against DTE_v10.xsd and EnvioDTE_v10.xsd and verified."""

import shutil
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from dte.core import schemas
from dte.core.caf import official_sii_keys
from dte.core.certificate import load_pkcs12
from dte.core.domain import SIIDTE_NS, Receptor, Referencia, Resolucion
from dte.core.envelope import EnvelopeItem, build_envelope
from dte.core.issue import stamp_and_sign
from dte.core.liquidacion import (
    Comision,
    LineaLiquidada,
    Liquidacion,
    LiquidacionError,
    TipoMovim,
)
from dte.core.testmaterial import SANDBOX_IDK
from dte.core.verify import verify_xml
from tests.dte.core.test_golden import EMISOR, KEYS, caf_for, check_golden

NOW = datetime(2026, 11, 23, 13, 45, 10, tzinfo=UTC)
NS = {"d": SIIDTE_NS}
MANDANTE = Receptor(
    "96790240-3",
    "Viña Los Andes S.A.",
    "Producción de vinos",
    "Camino Real 1200",
    "Pirque",
    "Santiago",
)


def liquidacion(**extra) -> Liquidacion:
    data = {
        "folio": 7,
        "fecha_emision": date(2026, 11, 30),
        "emisor": EMISOR,
        "receptor": MANDANTE,
        "lineas": (
            LineaLiquidada("33", "Ventas con factura, noviembre", 1_500_000),
            LineaLiquidada("39", "Ventas con boleta, noviembre", 500_000),
        ),
        "comisiones": (Comision("Comisión 5 % sobre ventas", 100_000, tasa=Decimal(5)),),
        "referencias": (Referencia("33", "120", date(2026, 11, 12), None, "Venta por cuenta"),),
        **extra,
    }
    return Liquidacion(**data)


@pytest.fixture(scope="module")
def material():
    cert = load_pkcs12((KEYS / "firmante_12345678-5.p12").read_bytes(), "clave-de-prueba")
    sii = serialization.load_pem_private_key((KEYS / "sandbox_sii_key.pem").read_bytes(), None)
    return cert, {**official_sii_keys(), SANDBOX_IDK: sii.public_key()}


def test_the_sii_worked_example():
    t = liquidacion().totales
    assert (t.monto_neto, t.iva) == (2_000_000, 380_000)
    assert (t.comision_neto, t.comision_iva) == (100_000, 19_000)
    assert t.monto_total == 2_261_000


def test_a_negative_commission_and_other_charges():
    doc = liquidacion(
        comisiones=(
            Comision("Ajuste de comisión", -3_301),
            Comision("Flete", 10_000, movimiento=TipoMovim.OTROS_CARGOS),
        )
    )
    assert doc.totales.comision_iva == -627 + 1_900
    assert doc.totales.monto_total == 2_380_000 - (6_699 + 1_273)


def test_it_is_valid_signed_stamped_and_enveloped(material, tmp_path):
    cert, keys = material
    issued = stamp_and_sign(liquidacion(), caf=caf_for(43), signer=cert, now=NOW)
    data = issued.file_bytes()
    check_golden("DTE--76086428-5--43--7.xml", data)
    assert schemas.validate(schemas.SchemaKind.DTE, data) == []
    report = verify_xml(data, sii_keys=keys)
    assert report.ok, report.to_dict()
    xml = etree.fromstring(data)
    assert xml.find("d:Liquidacion", NS).get("ID") == "F7T43"
    assert xml.findtext(".//d:TED/d:DD/d:MNT", namespaces=NS) == "2261000"
    assert [e.text for e in xml.iterfind(".//d:Detalle/d:TpoDocLiq", NS)] == ["33", "39"]
    assert xml.findtext(".//d:Totales/d:Comisiones/d:ValComIVA", namespaces=NS) == "19000"
    envelope = build_envelope(
        [EnvelopeItem(43, issued.xml)],
        rut_emisor=EMISOR.rut,
        rut_envia=cert.rut,
        resolucion=Resolucion(date(2014, 8, 22), 80),
        timestamp=NOW,
        key=cert,
    )
    assert schemas.validate(schemas.SchemaKind.ENVIO_DTE, envelope) == []
    assert verify_xml(envelope, sii_keys=keys).ok
    assert report.documents[0].check("totals").detail == "Totales match the detail lines"
    if shutil.which("xmlsec1"):  # a second, independent verifier of the signature
        path = tmp_path / "dte.xml"
        path.write_bytes(data)
        command = ["xmlsec1", "--verify", "--id-attr:ID", "Liquidacion", "--insecure", str(path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        path.write_bytes(data.replace(b"<MntTotal>2261000<", b"<MntTotal>2261001<"))
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode != 0


@pytest.mark.parametrize(
    ("before", "after", "problem"),
    [
        (b"<MntTotal>2261000<", b"<MntTotal>2261001<", "MntTotal is 2261001"),
        (
            b"<ValComIVA>19000</ValComIVA></Comisiones>",
            b"<ValComIVA>18999</ValComIVA></Comisiones>",
            "ValComIVA 18999 is not 19 % of 100000",
        ),
        (b"<IVA>380000<", b"<IVA>380001<", "IVA is 380001"),
    ],
)
def test_the_verifier_checks_a_liquidacion_s_arithmetic(material, before, after, problem):
    cert, keys = material
    data = stamp_and_sign(liquidacion(), caf=caf_for(43), signer=cert, now=NOW).file_bytes()
    assert before in data
    report = verify_xml(data.replace(before, after), sii_keys=keys)
    totals = report.documents[0].check("totals")
    assert not totals.ok and problem in totals.detail, totals.detail


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"lineas": ()}, "lines"),
        ({"lineas": (LineaLiquidada("777", "x", 1),)}, "lines"),
        ({"receptor": Receptor("96790240-3", "Sin giro")}, "partner"),
        ({"tipo": 33}, "tipo_dte"),
    ],
)
def test_what_a_liquidacion_cannot_carry(extra, field):
    with pytest.raises(LiquidacionError) as info:
        liquidacion(**extra)
    assert info.value.field == field
