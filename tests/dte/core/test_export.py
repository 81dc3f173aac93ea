"""A factura de exportación (110) and its notas (111, 112), built, stamped, signed, enveloped and
validated against DTE_v10.xsd / EnvioDTE_v10.xsd, verified by python-xmlsec and by xmlsec1, its
TED checked against its CAF (dte/core/EXPORTS.md)."""

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
from dte.core.domain import SIIDTE_NS, Emisor, Linea, Receptor, Referencia, Resolucion
from dte.core.envelope import EnvelopeItem, build_envelope
from dte.core.export import Aduana, Bulto, Exportacion, ExportError
from dte.core.issue import stamp_and_sign
from dte.core.testmaterial import SANDBOX_IDK
from dte.core.verify import verify_xml
from erp.totals import GlobalAdjustment, Movement, ValueType
from tests.dte.core.test_golden import KEYS, caf_for, check_golden

NOW = datetime(2026, 11, 23, 13, 45, 10, tzinfo=UTC)
NS = {"d": SIIDTE_NS}
EMISOR = Emisor(
    "76086428-5",
    "Empresa Demo Facturación SpA",
    "Exportación de frutas",
    (12210,),
    "Av. Providencia 1208",
    "Providencia",
    "Santiago",
)
BUYER = Receptor(
    "55555555-5",
    "Pacific Fresh Imports LLC",
    direccion="1200 Harbor Blvd",
    ciudad="Los Angeles",
    num_id="US-EIN 12-3456789",
    nacionalidad="225",
)
ADUANA = Aduana(
    modalidad_venta=1,
    clausula_venta=5,  # FOB
    total_clausula=Decimal("30276.00"),
    via_transporte=1,
    nombre_transporte="MSC ANTONELLA",
    puerto_embarque=906,  # San Antonio
    puerto_desembarque=221,
    peso_bruto=Decimal("25400.50"),
    unidad_peso_bruto=6,
    total_bultos=1,
    bultos=(Bulto(codigo=75, cantidad=1, marcas="PFI-2026", id_container="MSCU1234567"),),
    flete=Decimal("1850.5"),
    seguro=Decimal("120"),
    pais_receptor=225,
    pais_destino=225,
)


def exportacion(tipo: int = 110, folio: int = 7, **extra) -> Exportacion:
    data = {
        "tipo": tipo,
        "folio": folio,
        "fecha_emision": date(2026, 11, 23),
        "emisor": EMISOR,
        "receptor": BUYER,
        "lineas": (
            Linea("Uva de mesa Red Globe", Decimal(1200), Decimal("18.45"), unidad="U"),
            Linea("Cereza Lapins", Decimal("402.5"), Decimal("31.10"), Decimal(5), unidad="U"),
        ),
        "moneda": "DOLAR USA",
        "tipo_cambio": Decimal("943.57"),
        "aduana": ADUANA,
        "ajustes": (
            GlobalAdjustment(Movement.SURCHARGE, ValueType.AMOUNT, Decimal("1850.50")),
            GlobalAdjustment(Movement.SURCHARGE, ValueType.AMOUNT, Decimal("120")),
        ),
        "forma_pago_exportacion": 1,
        **extra,
    }
    return Exportacion(**data)


@pytest.fixture(scope="module")
def material():
    cert = load_pkcs12((KEYS / "firmante_12345678-5.p12").read_bytes(), "clave-de-prueba")
    sii = serialization.load_pem_private_key((KEYS / "sandbox_sii_key.pem").read_bytes(), None)
    keys = {**official_sii_keys(), SANDBOX_IDK: sii.public_key()}
    return cert, keys, {tipo: caf_for(tipo) for tipo in (110, 111, 112)}


def test_the_amounts_are_in_dollars_and_in_pesos():
    doc = exportacion()
    t = doc.totales
    # 1.200 × 18,45 = 22.140,00; 402,5 × 31,10 = 12.517,75 − 5 % (625,89 → 626) = 11.891,75
    assert [line.amount for line in t.lines] == [Decimal("22140.00"), Decimal("11891.75")]
    assert t.lines[1].discount == 626
    assert t.monto_total == t.monto_exento == Decimal("36002.25")  # + freight and insurance
    assert t.monto_total_pesos == 33_970_643  # 36.002,25 × 943,57
    assert doc.ted_mnt == "36002.25"


@pytest.mark.parametrize("tipo", [110, 111, 112])
def test_each_export_type_is_valid_signed_and_stamped(material, tipo):
    cert, keys, cafs = material
    refs = ()
    if tipo != 110:
        refs = (Referencia("110", "7", date(2026, 11, 23), 3, "Corrige montos"),)
    issued = stamp_and_sign(
        exportacion(tipo, referencias=refs), caf=cafs[tipo], signer=cert, now=NOW
    )
    data = issued.file_bytes()
    check_golden(f"DTE--76086428-5--{tipo}--7.xml", data)  # fixed keys and time: byte-identical
    assert schemas.validate(schemas.SchemaKind.DTE, data) == []
    report = verify_xml(data, sii_keys=keys)
    assert report.ok, report.to_dict()
    xml = etree.fromstring(data)
    root = xml.find("d:Exportaciones", NS)
    assert root is not None and root.get("ID") == f"F7T{tipo}"
    assert xml.findtext(".//d:TED/d:DD/d:MNT", namespaces=NS) == "36002.25"
    assert xml.findtext(".//d:TED/d:DD/d:RR", namespaces=NS) == "55555555-5"
    assert xml.findtext(".//d:Totales/d:TpoMoneda", namespaces=NS) == "DOLAR USA"
    assert xml.findtext(".//d:OtraMoneda/d:MntTotOtrMnda", namespaces=NS) == "33970643"
    assert xml.findtext(".//d:Receptor/d:Extranjero/d:Nacionalidad", namespaces=NS) == "225"
    assert xml.findtext(".//d:Aduana/d:CodPtoEmbarque", namespaces=NS) == "906"
    assert [e.text for e in xml.iterfind(".//d:DscRcgGlobal/d:IndExeDR", NS)] == ["1", "1"]


def test_the_envelope_carries_the_three(material, tmp_path):
    cert, keys, cafs = material
    issued = [
        stamp_and_sign(exportacion(tipo), caf=cafs[tipo], signer=cert, now=NOW)
        for tipo in (110, 111, 112)
    ]
    items = [EnvelopeItem(i.documento.tipo, i.xml) for i in issued]
    envelope = build_envelope(
        items,
        rut_emisor=EMISOR.rut,
        rut_envia=cert.rut,
        resolucion=Resolucion(date(2014, 8, 22), 80),
        timestamp=NOW,
        key=cert,
    )
    check_golden("EnvioDTE--76086428-5--exportaciones-golden.xml", envelope)
    assert schemas.validate(schemas.SchemaKind.ENVIO_DTE, envelope) == []
    report = verify_xml(envelope, sii_keys=keys)
    assert report.ok, report.to_dict()
    assert len(report.documents) == 3
    if shutil.which("xmlsec1"):
        path = tmp_path / "dte.xml"
        path.write_bytes(issued[0].file_bytes())
        command = ["xmlsec1", "--verify", "--id-attr:ID", "Exportaciones", "--insecure", str(path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"tipo": 33}, "tipo_dte"),
        ({"receptor": Receptor("96790240-3", "Local")}, "partner"),
        ({"moneda": "PESO CL"}, "moneda"),
        ({"moneda": "DRACMA"}, "moneda"),
        ({"ind_servicio": 1}, "ind_servicio"),
        ({"aduana": Aduana(puerto_embarque=99999)}, "puerto_embarque"),
    ],
)
def test_what_an_export_cannot_carry(extra, field):
    with pytest.raises(ExportError) as info:
        exportacion(**extra)
    assert info.value.field == field


def test_the_verifier_checks_an_exports_amounts(material):
    cert, keys, cafs = material
    issued = stamp_and_sign(exportacion(), caf=cafs[110], signer=cert, now=NOW)
    report = verify_xml(issued.file_bytes(), sii_keys=keys)
    totals = report.documents[0].check("totals")
    assert totals.ok and totals.detail == "Totales match the detail lines"
    # Amounts changed after signing break the signature; the totals check reads them anyway.
    tampered = issued.file_bytes().replace(b"<MntTotal>36002.25<", b"<MntTotal>36102.25<")
    totals = verify_xml(tampered, sii_keys=keys).documents[0].check("totals")
    assert not totals.ok and "MntTotal 36102.25" in totals.detail
