"""The SII's set de pruebas end to end (issue 17): read from its file, every case issued with the
certification CAFs, each set in its own EnvioDTE, XSD-valid, signed (checked by python-xmlsec
and by xmlsec1), the totals of each case as computed by hand here, and the sandbox's verdict."""

import copy
import io
import json
import shutil
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from lxml import etree
from pypdf import PdfReader

from dte import certification, services
from dte.core import schemas
from dte.core.domain import SIIDTE_NS
from dte.core.verify import verify_libro, verify_xml
from dte.models import (
    CertificationLibro,
    CertificationRun,
    CertificationStatus,
    Dte,
    DteEvent,
    Envelope,
)
from erp.errors import DomainError
from tests.dte.sii.test_flow import run_outbox

SAMPLE = Path("/work/shared/sii/samples/certification/SIISetDePruebas_ejemplo.txt")
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not SAMPLE.exists(), reason="the shared set de pruebas is not available"),
]
NS = {"d": SIIDTE_NS}
RATES = ["DOLAR USA=950", "EURO=1030"]

# Each case's MntNeto, MntExe, IVA, MntTotal, computed by hand from the set (IVA 19 %, half up):
EXPECTED = {
    # 215 × 1.290 + 48 × 7.420 = 633.510; IVA 120.366,9 → 120.367
    "5120001-1": (633_510, 0, 120_367, 753_877),
    # 612 × 4.377 = 2.678.724 − 12 % (321.446,88 → 321.447) = 2.357.277;
    # 388 × 2.915 = 1.131.020 − 30 % (339.306) = 791.714; IVA of 3.148.991 = 598.308,29
    "5120001-2": (3_148_991, 0, 598_308, 3_747_299),
    # 91 × 5.544 + 140 × 3.310 = 967.904 taxed, 41.870 exempt; IVA 183.901,76
    "5120001-3": (967_904, 41_870, 183_902, 1_193_676),
    # 302 × 6.218 + 257 × 3.905 = 2.881.421 − 18 % (518.655,78 → 518.656) = 2.362.765;
    # exempt 3 × 5.120 = 15.360; IVA 448.925,35
    "5120001-4": (2_362_765, 15_360, 448_925, 2_827_050),
    "5120001-5": (0, 0, 0, 0),  # corrige giro: no amounts
    # returned 201 × 4.377 = 879.777 − 12 % (105.573,24) = 774.204;
    # 95 × 2.915 = 276.925 − 30 % (83.077,5 → 83.078) = 193.847; IVA of 968.051 = 183.929,69
    "5120001-6": (968_051, 0, 183_930, 1_151_981),
    "5120001-7": (967_904, 41_870, 183_902, 1_193_676),  # annuls case 3
    "5120001-8": (0, 0, 0, 0),  # annuls case 5
    "5120004-1": (0, 0, 0, 0),  # traslado interno: no prices
    # 310 × 2.687 + 158 × 1.940 = 1.139.490; IVA 216.503,1
    "5120004-2": (1_139_490, 0, 216_503, 1_355_993),
    # 96 × 2.214 + 387 × 4.051 = 1.780.281; IVA 338.253,39
    "5120004-3": (1_780_281, 0, 338_253, 2_118_534),
    # 388 × 4.120 + 41 × 1.875 = 1.675.435; the buyer retains the whole IVA (318.332,65)
    "5120008-1": (1_675_435, 0, 318_333, 1_675_435),
    # 122 × 4.120 + 15 × 1.875 = 530.765; IVA 100.845,35
    "5120008-2": (530_765, 0, 100_845, 631_610),
    "5120008-3": (530_765, 0, 100_845, 631_610),  # annuls case 2
}
# Exports: MntExe = MntTotal in the currency.
EXPECTED_EXPORTS = {
    # 148 × 203 = 30.044 USD, + freight 121,44 + insurance 18,92 as surcharges
    "5120006-1": Decimal("30184.36"),
    "5120006-2": Decimal("10556.00"),  # 52 × 203 returned, no freight
    "5120006-3": Decimal("10556.00"),  # annuls the nota de crédito
    "5120007-1": Decimal("48.60"),  # 45 EUR + 8 % (3,60)
    # 355 × 142 = 50.410 − 4 % (2.016,4 → a whole DescuentoMonto 2.016) = 48.394;
    # 210 × 88 = 18.480; + commissions 9 % of 2.117,40 = 190,57, freight 488,10, insurance 150,25
    "5120007-2": Decimal("67702.92"),
    "5120007-3": Decimal("126.00"),  # lodging
}


def _xmlsec1(data: bytes, tmp_path: Path) -> bool:
    """The xmlsec1 command on the envelope's own signature (SetDTE) and on each DTE taken out
    of it as the standalone document it was signed as (namespaces of the envelope dropped)."""
    envelope = tmp_path / "xmlsec1-envelope.xml"
    envelope.write_bytes(data)
    command = ["xmlsec1", "--verify", "--insecure", "--id-attr:ID", f"{SIIDTE_NS}:SetDTE"]
    command += ["--node-xpath", "/*/*[local-name()='Signature']", str(envelope)]
    if subprocess.run(command, capture_output=True, timeout=60, check=False).returncode:
        return False
    for n, dte in enumerate(etree.fromstring(data).iterfind(".//d:DTE", NS)):
        alone = copy.deepcopy(dte)
        etree.cleanup_namespaces(alone)
        path = tmp_path / f"xmlsec1-dte-{n}.xml"
        path.write_bytes(etree.tostring(alone, encoding="ISO-8859-1", xml_declaration=True))
        command = ["xmlsec1", "--verify", "--insecure", "--id-attr:ID", "Documento"]
        command += ["--id-attr:ID", "Exportaciones", str(path)]
        if subprocess.run(command, capture_output=True, timeout=60, check=False).returncode:
            return False
    return True


def test_the_example_set_from_its_file_to_the_sii_s_acceptance(sii, issuer, tmp_path, capsys):
    call_command(
        "certification",
        "--company",
        issuer.rut,
        "--set",
        str(SAMPLE),
        "--out",
        str(tmp_path),
        "--json",
        *[arg for rate in RATES for arg in ("--rate", rate)],
    )
    out = json.loads(capsys.readouterr().out)
    names = [(s["name"], s["atencion"]) for s in out["sets"]]
    assert names == [
        ("SET_BASICO", "5120001"),
        ("SET_GUIA_DE_DESPACHO", "5120004"),
        ("SET_BASICO_DOCUMENTOS_DE_EXPORTACION_1", "5120006"),
        ("SET_BASICO_DOCUMENTOS_DE_EXPORTACION_2", "5120007"),
        ("SET_BASICO_CASO_GENERAL_DE_EMISOR_DE_FACTURA_DE_COMPRA", "5120008"),
    ]
    cases = {c["caso"]: c for s in out["sets"] for c in s["cases"]}
    for caso, (neto, exento, iva, total) in EXPECTED.items():
        got = cases[caso]
        assert (got["mnt_neto"], got["mnt_exe"], got["iva"], got["mnt_total"]) == (
            neto,
            exento,
            iva,
            total,
        ), caso
    for caso, total in EXPECTED_EXPORTS.items():
        assert Decimal(cases[caso]["mnt_total"]) == total, caso
    assert len(cases) == len(EXPECTED) + len(EXPECTED_EXPORTS)

    keys = services.sii_keys()
    for entry in out["sets"]:
        path = tmp_path / entry["envelope"]
        assert path.name == f"EnvioDTE--{issuer.rut}--{entry['name']}--{entry['atencion']}.xml"
        data = path.read_bytes()
        assert schemas.validate(schemas.SchemaKind.ENVIO_DTE, data) == []
        report = verify_xml(data, sii_keys=keys)
        assert report.ok, report.to_dict()
        assert len(report.documents) == len(entry["cases"])
        if shutil.which("xmlsec1"):
            assert _xmlsec1(data, tmp_path), path.name
        # every document: first the SET reference, then (a nota) the document it modifies
        root = etree.fromstring(data)
        for dte in root.iterfind(".//d:DTE", NS):
            refs = dte.findall(".//d:Referencia", NS)
            assert refs[0].findtext("d:TpoDocRef", namespaces=NS) == "SET"
            caso = refs[0].findtext("d:FolioRef", namespaces=NS)
            assert refs[0].findtext("d:RazonRef", namespaces=NS) == f"CASO {caso}"

    basico = etree.fromstring((tmp_path / out["sets"][0]["envelope"]).read_bytes())
    nota = basico.findall(".//d:DTE", NS)[5]  # case 6: a return of case 2's goods
    second = nota.findall(".//d:Referencia", NS)[1]
    assert second.findtext("d:TpoDocRef", namespaces=NS) == "33"
    assert second.findtext("d:FolioRef", namespaces=NS) == str(cases["5120001-2"]["folio"])
    assert second.findtext("d:CodRef", namespaces=NS) == "3"

    # The muestras impresas: every document, and a cedible copy where one applies.
    samples = tmp_path / f"MuestrasImpresas--{issuer.rut}--{CertificationRun.objects.get().pk}.zip"
    with zipfile.ZipFile(samples) as archive:
        names = archive.namelist()
        cedible = sorted(
            (n for n in names if n.endswith("--cedible.pdf")), key=lambda n: n.split("/")[1]
        )
        assert len(names) - len(cedible) == len(cases)
        # facturas 33 (cases 1–4), the guías that are sales (2, 3), the factura de compra
        assert [n.split("/")[1].split("--")[0] for n in cedible] == [
            "5120001-1",
            "5120001-2",
            "5120001-3",
            "5120001-4",
            "5120004-2",
            "5120004-3",
            "5120008-1",
        ]
        first = archive.read(cedible[0])
        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(first)).pages)
        assert "CEDIBLE" in text and "FACTURA ELECTRÓNICA" in text

    # The libros: ventas from the set básico, compras from the set's rows, guías with the
    # invoiced and the annulled guía; each XSD-valid and signed, written into DIR.
    period = f"{timezone.localdate():%Y-%m}"
    libros = {entry["kind"]: entry for entry in out["libros"]}
    assert set(libros) == {"VENTA", "COMPRA", "GUIAS"}
    for kind, schema in (("VENTA", "LIBRO_CV"), ("COMPRA", "LIBRO_CV"), ("GUIAS", "LIBRO_GUIA")):
        path = tmp_path / f"Libro--{issuer.rut}--{kind}--{period}.xml"
        assert libros[kind]["file"] == path.name
        data = path.read_bytes()
        assert schemas.validate(getattr(schemas.SchemaKind, schema), data) == []
        report = verify_libro(data)
        assert all(check.ok for check in report.checks), report.to_dict()
        if shutil.which("xmlsec1"):
            command = ["xmlsec1", "--verify", "--insecure", "--id-attr:ID", "EnvioLibro", str(path)]
            assert subprocess.run(command, capture_output=True, timeout=60).returncode == 0
    ventas = etree.fromstring((tmp_path / f"Libro--{issuer.rut}--VENTA--{period}.xml").read_bytes())
    assert len(ventas.findall(".//d:Detalle", NS)) == 8  # the set básico's eight documents
    neto_33 = ventas.find(".//d:TotalesPeriodo[d:TpoDoc='33']/d:TotMntNeto", NS).text
    assert int(neto_33) == sum(EXPECTED[f"5120001-{n}"][0] for n in (1, 2, 3, 4))
    compras = etree.fromstring(
        (tmp_path / f"Libro--{issuer.rut}--COMPRA--{period}.xml").read_bytes()
    )
    assert compras.findtext(".//d:FctProp", namespaces=NS) == "0.55"
    guias = etree.fromstring((tmp_path / f"Libro--{issuer.rut}--GUIAS--{period}.xml").read_bytes())
    detail = {d.findtext("d:Folio", namespaces=NS): d for d in guias.iterfind(".//d:Detalle", NS)}
    invoiced = detail[str(cases["5120004-2"]["folio"])]
    assert invoiced.findtext("d:TpoDocRef", namespaces=NS) == "33"
    assert detail[str(cases["5120004-3"]["folio"])].findtext("d:Anulado", namespaces=NS) == "2"

    run_outbox()
    assert set(CertificationLibro.objects.values_list("status", flat=True)) == {"accepted"}
    assert set(Envelope.objects.values_list("status", flat=True)) == {"processed"}
    statuses = set(Dte.objects.values_list("status", flat=True))
    assert statuses == {"accepted"}, list(DteEvent.objects.values_list("message", flat=True))
    run = CertificationRun.objects.get()
    assert run.status == CertificationStatus.ISSUED and run.percent == 100


def test_a_set_with_problems_is_not_issued(issuer, tmp_path, capsys):
    broken = SAMPLE.read_bytes().replace(
        b"GUIA DE DESPACHO\r\nMOTIVO:\t\tVENTA\r\nTRASLADO POR: \tCLIENTE",
        b"VALE DE CAJA\r\nMOTIVO:\t\tVENTA\r\nTRASLADO POR: \tCLIENTE",
    )
    path = tmp_path / "set.txt"
    path.write_bytes(broken)
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "certification", "--company", issuer.rut, "--set", str(path), "--out", str(tmp_path)
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "problema: Caso 5120004-3" in err and "VALE DE CAJA" in err
    assert not Envelope.objects.exists()
    run = CertificationRun.objects.get()
    with pytest.raises(DomainError):
        certification.certification_start(run=run, actor=None)


def test_what_is_not_a_set_de_pruebas(issuer, tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "factura.txt"
    path.write_bytes(b"Hola, adjunto la factura.\r\n")
    with pytest.raises(CommandError, match="no se encontró ningún"):
        call_command(
            "certification", "--company", issuer.rut, "--set", str(path), "--out", str(tmp_path)
        )
    with pytest.raises(DomainError) as info:
        certification.certification_read(
            company=issuer,
            actor=None,
            data=SAMPLE.read_bytes(),
            filename="x",
            exchange_rates={"SESTERCIO": 1},
        )
    assert "exchange_rates" in info.value.fields
