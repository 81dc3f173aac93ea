"""The SII's boleta set end to end: read from its file (tests/data/certification/, the layout of
the SII's "set de prueba de boleta electrónica"), every case issued as a boleta with the
certification CAFs, the five in one EnvioBOLETA, XSD-valid and signed, each naming its case as
that set asks (CodRef SET, RazonRef CASO-n, nothing else), the totals of each case as computed
by hand here, and every boleta accepted by the sandbox's boletas REST API."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from lxml import etree

from dte import services
from dte.core import schemas
from dte.core.domain import SIIDTE_NS
from dte.core.verify import verify_xml
from dte.models import CertificationRun, CertificationStatus, Dte, DteEvent, Envelope
from dte.sandbox.models import Channel, ReceivedDocument, ReceivedEnvelope
from tests.dte.sii.test_flow import run_outbox

SET_FILE = Path(__file__).resolve().parents[2] / "data" / "certification" / "SetBoletas_ejemplo.txt"
pytestmark = pytest.mark.django_db(transaction=True)
NS = {"d": SIIDTE_NS}

# Each case's MntNeto, MntExe, IVA, MntTotal by hand. The set's prices include IVA: the taxed
# lines add up to a gross amount, MntNeto = round(gross / 1.19), IVA = gross − MntNeto; exempt
# lines go to MntExe; MntTotal = gross + exempt.
EXPECTED = {
    # 24.990 + 7.490 = 32.480; 32.480 / 1,19 = 27.294,12 → 27.294; IVA 5.186
    "1": (27_294, 0, 5_186, 32_480),
    # 23 × 90 = 2.070; / 1,19 = 1.739,496 → 1.739; IVA 331
    "2": (1_739, 0, 331, 2_070),
    # 3 × 2.300 + 3 × 1.290 = 10.770; / 1,19 = 9.050,42 → 9.050; IVA 1.720
    "3": (9_050, 0, 1_720, 10_770),
    # taxed 6 × 2.490 = 14.940; / 1,19 = 12.554,62 → 12.555; IVA 2.385; exempt 3 × 1.500 = 4.500
    "4": (12_555, 4_500, 2_385, 19_440),
    # 3,5 Kg × 1.150 = 4.025; / 1,19 = 3.382,35 → 3.382; IVA 643
    "5": (3_382, 0, 643, 4_025),
}
# What each boleta's lines say: name, QtyItem, UnmdItem, PrcItem (with IVA), IndExe.
LINES = {
    "1": [
        ("Lavado de tapiz", "1", None, "24990", None),
        ("Aspirado interior", "1", None, "7490", None),
    ],
    "2": [("Bolsa de papel", "23", None, "90", None)],
    "3": [
        ("Empanada de pino", "3", None, "2300", None),
        ("Bebida de piña", "3", None, "1290", None),
    ],
    "4": [("item afecto 1", "6", None, "2490", None), ("item exento 2", "3", None, "1500", "1")],
    "5": [("Harina", "3.5", "Kg", "1150", None)],
}


def _amount(totales, tag: str) -> int:
    return int(totales.findtext(f"d:{tag}", default="0", namespaces=NS))


def test_the_boleta_set_from_its_file_to_the_sii_s_acceptance(sii, issuer, tmp_path, capsys):
    call_command(
        "certification",
        "--company",
        issuer.rut,
        "--set",
        str(SET_FILE),
        "--out",
        str(tmp_path),
        "--json",
    )
    out = json.loads(capsys.readouterr().out)
    assert [(s["name"], s["atencion"]) for s in out["sets"]] == [
        ("SET_DE_PRUEBA_DE_BOLETA_ELECTRONICA_DE_VENTAS_Y_SERVICIOS", "")
    ]
    assert out["libros"] == []  # the boleta set asks for none
    entry = out["sets"][0]
    cases = {c["caso"]: c for c in entry["cases"]}
    assert set(cases) == set(EXPECTED)
    for caso, (neto, exento, iva, total) in EXPECTED.items():
        got = cases[caso]
        assert got["tipo_dte"] == 39 and got["folio"], caso
        assert (got["mnt_neto"], got["mnt_exe"], got["iva"], got["mnt_total"]) == (
            neto,
            exento,
            iva,
            total,
        ), caso

    # One EnvioBOLETA with the five boletas, valid against EnvioBOLETA_v11.xsd, signed.
    assert entry["envelope"] == f"EnvioBOLETA--{issuer.rut}--{entry['name']}.xml"
    data = (tmp_path / entry["envelope"]).read_bytes()
    root = etree.fromstring(data)
    assert etree.QName(root).localname == "EnvioBOLETA"
    assert schemas.validate(schemas.SchemaKind.ENVIO_BOLETA, data) == []
    report = verify_xml(data, sii_keys=services.sii_keys())
    assert report.ok, report.to_dict()
    assert len(report.documents) == len(EXPECTED)
    assert root.findtext(".//d:SubTotDTE/d:TpoDTE", namespaces=NS) == "39"
    assert root.findtext(".//d:SubTotDTE/d:NroDTE", namespaces=NS) == "5"

    by_folio = {c["folio"]: caso for caso, c in cases.items()}
    seen = set()
    for documento in root.iterfind(".//d:Documento", NS):
        folio = int(documento.findtext("d:Encabezado/d:IdDoc/d:Folio", namespaces=NS))
        caso = by_folio[folio]
        seen.add(caso)
        encabezado = documento.find("d:Encabezado", NS)
        assert encabezado.findtext("d:IdDoc/d:TipoDTE", namespaces=NS) == "39"
        assert encabezado.findtext("d:Receptor/d:RUTRecep", namespaces=NS) == "66666666-6"
        totales = encabezado.find("d:Totales", NS)
        neto, exento, iva, total = EXPECTED[caso]
        assert (
            _amount(totales, "MntNeto"),
            _amount(totales, "MntExe"),
            _amount(totales, "IVA"),
            _amount(totales, "MntTotal"),
        ) == (neto, exento, iva, total), caso
        lines = [
            (
                d.findtext("d:NmbItem", namespaces=NS),
                d.findtext("d:QtyItem", namespaces=NS),
                d.findtext("d:UnmdItem", namespaces=NS),
                d.findtext("d:PrcItem", namespaces=NS),
                d.findtext("d:IndExe", namespaces=NS),
            )
            for d in documento.iterfind("d:Detalle", NS)
        ]
        assert lines == LINES[caso], caso
        # The boleta set's reference, and nothing else: no TpoDocRef, FolioRef or FchRef.
        references = documento.findall("d:Referencia", NS)
        assert len(references) == 1, caso
        children = [(etree.QName(c).localname, c.text) for c in references[0]]
        assert children == [
            ("NroLinRef", "1"),
            ("CodRef", "SET"),
            ("RazonRef", f"CASO-{caso}"),
        ], caso
    assert seen == set(EXPECTED)

    # The SII's verdict: the envelope goes up through the boletas REST API and every boleta in
    # it is accepted.
    run_outbox()
    envelope = Envelope.objects.get()
    assert envelope.kind == Envelope.Kind.ENVIO_BOLETA
    assert envelope.status == "processed", envelope.status
    received = ReceivedEnvelope.objects.get(track_id=int(envelope.track_id))
    assert received.channel == Channel.BOLETA
    assert received.stats == [
        {"tipo": 39, "informados": 5, "aceptados": 5, "rechazados": 0, "reparos": 0}
    ]
    assert ReceivedDocument.objects.filter(tipo_dte=39).count() == len(EXPECTED)
    statuses = set(Dte.objects.values_list("status", flat=True))
    assert statuses == {"accepted"}, list(DteEvent.objects.values_list("message", flat=True))
    run = CertificationRun.objects.get()
    assert run.status == CertificationStatus.ISSUED and run.percent == 100
    assert run.sets.get().envelope_id == envelope.pk
