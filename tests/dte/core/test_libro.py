"""The libros (dte/core/libro.py; the rules and their sources are in dte/core/CERTIFICATION.md):
the libro de compras of the example set's SET LIBRO DE COMPRAS, a libro de ventas, the libro de
guías of its SET GUIA DE DESPACHO. Each is valid against its official XSD, ISO-8859-1, and
signed so that python-xmlsec and the xmlsec1 command verify it. Expected amounts are worked out
by hand here, not by the code under test."""

import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree

from dte.core.certificate import Certificate, load_pkcs12
from dte.core.domain import Resolucion
from dte.core.libro import (
    AnuladoGuia,
    CaratulaLibro,
    DetalleGuia,
    DetalleLibro,
    FacturaDeGuia,
    LibroError,
    TipoEnvio,
    TipoLibro,
    TipoOperacion,
    build_libro_compra_venta,
    build_libro_guia,
)
from dte.core.schemas import XSD_DIR, SchemaKind, validate

KEYS = Path(__file__).resolve().parents[2] / "data" / "keys"
SHARED_SII = Path("/work/shared/sii")
SET_FILE = SHARED_SII / "samples" / "certification" / "SIISetDePruebas_ejemplo.txt"
NS = "http://www.sii.cl/SiiDte"
D = f"{{{NS}}}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
NOW = datetime(2026, 11, 23, 13, 45, 10, tzinfo=UTC)  # 10:45:10 in Santiago
EMISOR = "76086428-5"
PROVEEDOR = "96790240-3"
CLIENTE = "77879240-0"
RESOLUCION = Resolucion(date(2026, 1, 20), 0)  # certification: NroResol 0
DAY = date(2026, 11, 5)
FACTOR = Decimal("0.55")  # SET LIBRO DE COMPRAS: "EL FACTOR DE PROPORCIONALIDAD DEL IVA ES 0.55"


@pytest.fixture(scope="module")
def cert() -> Certificate:
    return load_pkcs12((KEYS / "firmante_12345678-5.p12").read_bytes(), "clave-de-prueba")


def caratula(cert: Certificate, operacion: TipoOperacion | None, **extra: object) -> CaratulaLibro:
    # The SII's set instructions: FolioNotificacion 1 for ventas, 2 for compras. For guías they
    # say nothing; LibreDTE's example used 1 (dte/core/CERTIFICATION.md, [OPEN]).
    folio = {TipoOperacion.VENTA: 1, TipoOperacion.COMPRA: 2, None: 1}[operacion]
    values: dict[str, object] = {
        "rut_emisor": EMISOR,
        "rut_envia": cert.require_rut(),
        "periodo": "2026-11",
        "resolucion": RESOLUCION,
        "tipo_operacion": operacion,
        "folio_notificacion": folio,
    }
    values.update(extra)
    return CaratulaLibro(**values)


# --- The example set's libro de compras -----------------------------------------------------

# SET LIBRO DE COMPRAS of SIISetDePruebas_ejemplo.txt, row by row: the document as the set
# names it, its folio, the observation, the exempt and the taxed (net) amounts.
SET_ROWS = [
    ("FACTURA", 118, "FACTURA DEL GIRO CON DERECHO A CREDITO", 0, 17452),
    ("FACTURA ELECTRONICA", 56, "FACTURA DEL GIRO CON DERECHO A CREDITO", 6120, 9033),
    ("FACTURA", 402, "FACTURA CON IVA USO COMUN", 0, 31270),
    ("NOTA DE CREDITO", 377, "NOTA DE CREDITO POR DESCUENTO A FACTURA 118", 0, 1984),
    ("FACTURA ELECTRONICA", 84, "ENTREGA GRATUITA DEL PROVEEDOR", 0, 12650),
    ("FACTURA DE COMPRA ELECTRONICA", 14, "COMPRA CON RETENCION TOTAL DEL IVA", 0, 8815),
    ("NOTA DE CREDITO", 190, "NOTA DE CREDITO POR DESCUENTO FACTURA ELECTRONICA 56", 0, 3307),
]
TIPOS = {
    "FACTURA": 30,
    "FACTURA ELECTRONICA": 33,
    "NOTA DE CREDITO": 60,
    "FACTURA DE COMPRA ELECTRONICA": 46,
}


def compras() -> list[DetalleLibro]:
    """The set's rows as purchases of the period; the paper ones (30, 60) carry a razón social."""
    rows = []
    for document, folio, observation, exento, afecto in SET_ROWS:
        tipo = TIPOS[document]
        rows.append(
            DetalleLibro(
                tipo_doc=tipo,
                folio=folio,
                fecha=DAY,
                rut=PROVEEDOR,
                razon_social="" if tipo in (33, 46) else "Comercial Ñandú & Cía. Ltda.",
                monto_exento=exento,
                monto_neto=afecto,
                iva_uso_comun="USO COMUN" in observation,
                cod_iva_no_recuperable=4 if "ENTREGA GRATUITA" in observation else None,
                retencion_total="RETENCION TOTAL" in observation,
            )
        )
    return rows


def test_the_rows_are_the_example_sets() -> None:
    if not SET_FILE.exists():
        pytest.skip(f"{SET_FILE} is not available")
    text = SET_FILE.read_bytes().decode("iso-8859-1")
    section = text.split("SET LIBRO DE COMPRAS")[1].split("OBSERVACIONES GENERALES")[0]
    flat = " ".join(section.split())
    for document, folio, observation, exento, afecto in SET_ROWS:
        amounts = f"{exento} {afecto}" if exento else f"{afecto}"
        assert f"{document} {folio} {observation} {amounts}" in flat
    assert "FACTOR DE PROPORCIONALIDAD DEL IVA ES 0.55" in " ".join(text.split())


# Worked out by hand: IVA = 19 % of the net, rounded half up.
#   30/118: 17452 × 0.19 = 3315.88 → 3316, recoverable;      total 17452 + 3316 = 20768
#   33/56:   9033 × 0.19 = 1716.27 → 1716;                   total 6120 + 9033 + 1716 = 16869
#   30/402: 31270 × 0.19 = 5941.30 → 5941, of common use:    MntIVA 0, IVAUsoComun 5941,
#           total 31270 + 5941 = 37211; credit 5941 × 0.55 = 3267.55 → 3268
#   60/377:  1984 × 0.19 = 376.96 → 377;                     total 2361
#   33/84:  12650 × 0.19 = 2403.50 → 2404, not recoverable (code 4, entrega gratuita):
#           MntIVA 0, IVANoRec 4/2404, total 12650 + 2404 = 15054
#   46/14:   8815 × 0.19 = 1674.85 → 1675, retained in full: MntIVA 1675, OtrosImp 15/19/1675,
#           total 8815 + 1675 − 1675 = 8815
#   60/190:  3307 × 0.19 = 628.33 → 628;                     total 3935
EXPECTED_COMPRAS = {
    (30, 118): {"MntNeto": "17452", "MntIVA": "3316", "MntTotal": "20768"},
    (33, 56): {"MntExe": "6120", "MntNeto": "9033", "MntIVA": "1716", "MntTotal": "16869"},
    (30, 402): {"MntNeto": "31270", "MntIVA": "0", "IVAUsoComun": "5941", "MntTotal": "37211"},
    (60, 377): {"MntNeto": "1984", "MntIVA": "377", "MntTotal": "2361"},
    (33, 84): {
        "MntNeto": "12650",
        "MntIVA": "0",
        "IVANoRec/CodIVANoRec": "4",
        "IVANoRec/MntIVANoRec": "2404",
        "MntTotal": "15054",
    },
    (46, 14): {
        "MntNeto": "8815",
        "MntIVA": "1675",
        "OtrosImp/CodImp": "15",
        "OtrosImp/TasaImp": "19",
        "OtrosImp/MntImp": "1675",
        "MntTotal": "8815",
    },
    (60, 190): {"MntNeto": "3307", "MntIVA": "628", "MntTotal": "3935"},
}
# Per TpoDoc, in ascending order: 30 = 118 + 402, 33 = 56 + 84, 46 = 14, 60 = 377 + 190.
EXPECTED_TOTALES_COMPRAS = [
    {
        "TpoDoc": "30",
        "TotDoc": "2",
        "TotMntExe": "0",
        "TotMntNeto": "48722",  # 17452 + 31270
        "TotMntIVA": "3316",  # the common-use IVA is not recoverable as such
        "TotOpIVAUsoComun": "1",
        "TotIVAUsoComun": "5941",
        "FctProp": "0.55",
        "TotCredIVAUsoComun": "3268",
        "TotMntTotal": "57979",  # 20768 + 37211
    },
    {
        "TpoDoc": "33",
        "TotDoc": "2",
        "TotMntExe": "6120",
        "TotMntNeto": "21683",  # 9033 + 12650
        "TotMntIVA": "1716",
        "TotIVANoRec/CodIVANoRec": "4",
        "TotIVANoRec/TotOpIVANoRec": "1",
        "TotIVANoRec/TotMntIVANoRec": "2404",
        "TotMntTotal": "31923",  # 16869 + 15054
    },
    {
        "TpoDoc": "46",
        "TotDoc": "1",
        "TotMntExe": "0",
        "TotMntNeto": "8815",
        "TotMntIVA": "1675",
        "TotOtrosImp/CodImp": "15",
        "TotOtrosImp/TotMntImp": "1675",
        "TotMntTotal": "8815",
    },
    {
        "TpoDoc": "60",
        "TotDoc": "2",
        "TotMntExe": "0",
        "TotMntNeto": "5291",  # 1984 + 3307
        "TotMntIVA": "1005",  # 377 + 628
        "TotMntTotal": "6296",  # 2361 + 3935
    },
]


@pytest.fixture(scope="module")
def libro_compras(cert: Certificate) -> bytes:
    return build_libro_compra_venta(
        caratula(cert, TipoOperacion.COMPRA),
        compras(),
        key=cert,
        timestamp=NOW,
        factor_proporcionalidad=FACTOR,
    )


def test_the_libro_de_compras_is_valid_and_iso_8859_1(libro_compras: bytes) -> None:
    assert validate(SchemaKind.LIBRO_CV, libro_compras) == []
    assert libro_compras.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>\n')
    assert "Comercial Ñandú &amp; Cía. Ltda.".encode("iso-8859-1") in libro_compras
    with pytest.raises(UnicodeDecodeError):
        libro_compras.decode("utf-8")


def test_the_libro_de_compras_caratula(libro_compras: bytes) -> None:
    root = etree.fromstring(libro_compras)
    assert root.tag == f"{D}LibroCompraVenta" and root.get("version") == "1.0"
    assert flat(root.find(f"{D}EnvioLibro/{D}Caratula")) == {
        "RutEmisorLibro": EMISOR,
        "RutEnvia": "12345678-5",
        "PeriodoTributario": "2026-11",
        "FchResol": "2026-01-20",
        "NroResol": "0",
        "TipoOperacion": "COMPRA",
        "TipoLibro": "ESPECIAL",
        "TipoEnvio": "TOTAL",
        "FolioNotificacion": "2",
    }
    assert root.findtext(f"{D}EnvioLibro/{D}TmstFirma") == "2026-11-23T10:45:10"


def test_each_purchase_row_carries_the_amounts_worked_out_by_hand(libro_compras: bytes) -> None:
    detalles = details(libro_compras)
    assert list(detalles) == [(TIPOS[row[0]], row[1]) for row in SET_ROWS]  # the set's order
    for identity, expected in EXPECTED_COMPRAS.items():
        row = detalles[identity]
        amounts = {k: v for k, v in row.items() if k not in ("TpoDoc", "NroDoc", "FchDoc")}
        amounts.pop("RUTDoc")
        amounts.pop("RznSoc", None)
        assert amounts.pop("TasaImp") == "19"
        assert amounts == expected, identity


def test_the_purchase_totals_per_tipo_doc(libro_compras: bytes) -> None:
    assert totales(libro_compras) == EXPECTED_TOTALES_COMPRAS
    root = etree.fromstring(libro_compras)
    names = [
        etree.QName(e).localname
        for e in root.find(f"{D}EnvioLibro/{D}ResumenPeriodo/{D}TotalesPeriodo")
    ]
    assert names == list(dict.fromkeys(k.split("/")[0] for k in EXPECTED_TOTALES_COMPRAS[0]))


def test_the_purchases_pass_the_sii_arithmetic_checks(libro_compras: bytes) -> None:
    """ "Nuevas validaciones IECV" 15 and 16: tasa × neto = recoverable + not recoverable + common
    use IVA, and MntTotal = neto + exento + those − retentions."""
    for row in details(libro_compras).values():
        neto, iva = int(row["MntNeto"]), int(row["MntIVA"])
        no_rec = int(row.get("IVANoRec/MntIVANoRec", 0))
        uso_comun = int(row.get("IVAUsoComun", 0))
        retenido = int(row.get("OtrosImp/MntImp", 0))
        exact = Decimal(neto) * Decimal(row["TasaImp"]) / 100
        assert abs(exact - (iva + no_rec + uso_comun)) <= Decimal("0.5")
        total = neto + int(row.get("MntExe", 0)) + iva + no_rec + uso_comun - retenido
        assert int(row["MntTotal"]) == total


def test_the_libro_de_compras_signature(
    libro_compras: bytes, cert: Certificate, tmp_path: Path
) -> None:
    check_signature(libro_compras, cert, tmp_path, "IEC_202611")


def test_a_libro_without_documents_is_its_caratula(cert: Certificate) -> None:
    data = build_libro_compra_venta(
        caratula(cert, TipoOperacion.COMPRA), [], key=cert, timestamp=NOW
    )
    assert validate(SchemaKind.LIBRO_CV, data) == []
    envio = etree.fromstring(data).find(f"{D}EnvioLibro")
    assert [etree.QName(e).localname for e in envio] == ["Caratula", "TmstFirma"]


def test_the_same_input_gives_the_same_bytes(cert: Certificate, libro_compras: bytes) -> None:
    again = build_libro_compra_venta(
        caratula(cert, TipoOperacion.COMPRA),
        compras(),
        key=cert,
        timestamp=NOW,
        factor_proporcionalidad=FACTOR,
    )
    assert again == libro_compras


# --- A libro de ventas ----------------------------------------------------------------------


def ventas() -> list[DetalleLibro]:
    annuls_2 = {"monto_exento": 20000, "monto_neto": 50000}
    return [
        DetalleLibro(33, 1, DAY, CLIENTE, "Distribuidora Ñuble S.A.", monto_neto=100000),
        DetalleLibro(33, 2, DAY, CLIENTE, **annuls_2),
        DetalleLibro(33, 3, anulado=True),  # a folio annulled before it reached the SII
        DetalleLibro(34, 1, DAY, CLIENTE, monto_exento=45000),
        # annuls factura 2 with its amounts; the nota de débito annuls that nota
        DetalleLibro(61, 1, DAY, CLIENTE, tipo_doc_ref=33, folio_doc_ref=2, **annuls_2),
        DetalleLibro(56, 1, DAY, CLIENTE, tipo_doc_ref=61, folio_doc_ref=1, **annuls_2),
        DetalleLibro(61, 2, DAY, CLIENTE),  # corrige texto: no amounts
    ]


@pytest.fixture(scope="module")
def libro_ventas(cert: Certificate) -> bytes:
    return build_libro_compra_venta(
        caratula(cert, TipoOperacion.VENTA), ventas(), key=cert, timestamp=NOW
    )


def test_the_libro_de_ventas(libro_ventas: bytes) -> None:
    assert validate(SchemaKind.LIBRO_CV, libro_ventas) == []
    assert "Distribuidora Ñuble S.A.".encode("iso-8859-1") in libro_ventas
    root = etree.fromstring(libro_ventas)
    assert root.findtext(f"{D}EnvioLibro/{D}Caratula/{D}TipoOperacion") == "VENTA"
    assert root.findtext(f"{D}EnvioLibro/{D}Caratula/{D}FolioNotificacion") == "1"
    rows = details(libro_ventas)
    # 100000 × 0.19 = 19000; 50000 × 0.19 = 9500, total 20000 + 50000 + 9500 = 79500
    assert pick(rows[(33, 1)], "MntNeto", "MntIVA", "MntTotal") == ["100000", "19000", "119000"]
    assert pick(rows[(33, 2)], "MntExe", "MntNeto", "MntIVA", "MntTotal") == [
        "20000",
        "50000",
        "9500",
        "79500",
    ]
    assert rows[(33, 3)] == {"TpoDoc": "33", "NroDoc": "3", "Anulado": "A"}
    assert pick(rows[(34, 1)], "MntExe", "MntNeto", "MntIVA", "MntTotal") == [
        "45000",
        "0",
        "0",
        "45000",
    ]
    assert pick(rows[(61, 1)], "TpoDocRef", "FolioDocRef", "MntTotal") == ["33", "2", "79500"]
    assert pick(rows[(56, 1)], "TpoDocRef", "FolioDocRef", "MntTotal") == ["61", "1", "79500"]
    assert pick(rows[(61, 2)], "MntNeto", "MntIVA", "MntTotal") == ["0", "0", "0"]
    assert totales(libro_ventas) == [
        # 33: three folios, one annulled (counted, not summed)
        {
            "TpoDoc": "33",
            "TotDoc": "3",
            "TotAnulado": "1",
            "TotMntExe": "20000",
            "TotMntNeto": "150000",
            "TotMntIVA": "28500",
            "TotMntTotal": "198500",
        },
        {
            "TpoDoc": "34",
            "TotDoc": "1",
            "TotMntExe": "45000",
            "TotMntNeto": "0",
            "TotMntIVA": "0",
            "TotMntTotal": "45000",
        },
        {
            "TpoDoc": "56",
            "TotDoc": "1",
            "TotMntExe": "20000",
            "TotMntNeto": "50000",
            "TotMntIVA": "9500",
            "TotMntTotal": "79500",
        },
        {
            "TpoDoc": "61",
            "TotDoc": "2",
            "TotMntExe": "20000",
            "TotMntNeto": "50000",
            "TotMntIVA": "9500",
            "TotMntTotal": "79500",
        },
    ]


def test_the_libro_de_ventas_signature(
    libro_ventas: bytes, cert: Certificate, tmp_path: Path
) -> None:
    check_signature(libro_ventas, cert, tmp_path, "IEV_202611")


def test_a_factura_de_compra_received_goes_to_the_libro_de_ventas_as_iva_retenido(
    cert: Certificate,
) -> None:
    """The seller's side of a 46: IVARetTotal, and MntTotal without the retained IVA."""
    rows = [DetalleLibro(46, 9, DAY, CLIENTE, monto_neto=10000, retencion_total=True)]
    data = build_libro_compra_venta(
        caratula(cert, TipoOperacion.VENTA), rows, key=cert, timestamp=NOW
    )
    assert validate(SchemaKind.LIBRO_CV, data) == []
    row = details(data)[(46, 9)]
    assert pick(row, "MntNeto", "MntIVA", "IVARetTotal", "MntTotal") == [
        "10000",
        "1900",
        "1900",
        "10000",
    ]
    assert "OtrosImp/CodImp" not in row
    assert totales(data)[0]["TotIVARetTotal"] == "1900"


# --- The example set's libro de guías -------------------------------------------------------

# SET GUIA DE DESPACHO: caso 1 moves goods between the company's own warehouses (traslado
# interno, receiver = emisor, no prices); caso 2 is a sale invoiced in the period; caso 3 a
# sale whose guía was annulled after it was sent to the SII (SET LIBRO DE GUIAS).
NETO_2 = 310 * 2687 + 158 * 1940  # 832970 + 306520 = 1139490
NETO_3 = 96 * 2214 + 387 * 4051  # 212544 + 1567737 = 1780281
FACTURA_2 = FacturaDeGuia(33, 7, date(2026, 11, 20))


def guias() -> list[DetalleGuia]:
    return [
        DetalleGuia(1, tipo_operacion=5, fecha=DAY, rut=EMISOR),
        DetalleGuia(
            2, tipo_operacion=1, fecha=DAY, rut=CLIENTE, monto_neto=NETO_2, factura=FACTURA_2
        ),
        DetalleGuia(
            3,
            tipo_operacion=1,
            fecha=DAY,
            rut=CLIENTE,
            monto_neto=NETO_3,
            anulado=AnuladoGuia.ANULADA,
        ),
    ]


@pytest.fixture(scope="module")
def libro_guias(cert: Certificate) -> bytes:
    return build_libro_guia(caratula(cert, None), guias(), key=cert, timestamp=NOW)


def test_the_libro_de_guias(libro_guias: bytes) -> None:
    assert validate(SchemaKind.LIBRO_GUIA, libro_guias) == []
    assert libro_guias.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>\n')
    root = etree.fromstring(libro_guias)
    assert root.tag == f"{D}LibroGuia"
    caratula_xml = flat(root.find(f"{D}EnvioLibro/{D}Caratula"))
    assert "TipoOperacion" not in caratula_xml
    assert caratula_xml["TipoLibro"] == "ESPECIAL" and caratula_xml["FolioNotificacion"] == "1"
    rows = {int(e.findtext(f"{D}Folio")): flat(e) for e in root.iterfind(f".//{D}Detalle")}
    assert rows[1] == {"Folio": "1", "TpoOper": "5", "FchDoc": "2026-11-05", "RUTDoc": EMISOR}
    # caso 2: 1139490 × 0.19 = 216503.1 → 216503; total 1355993
    assert rows[2] == {
        "Folio": "2",
        "TpoOper": "1",
        "FchDoc": "2026-11-05",
        "RUTDoc": CLIENTE,
        "MntNeto": "1139490",
        "TasaImp": "19",
        "IVA": "216503",
        "MntTotal": "1355993",
        "TpoDocRef": "33",
        "FolioDocRef": "7",
        "FchDocRef": "2026-11-20",
    }
    # caso 3: 1780281 × 0.19 = 338253.39 → 338253; total 2118534, annulled after sending
    assert pick(rows[3], "Anulado", "TpoOper", "IVA", "MntTotal") == ["2", "1", "338253", "2118534"]
    # The annulled guía is counted as such, not as a sale; the traslado interno by its type.
    assert flat(root.find(f"{D}EnvioLibro/{D}ResumenPeriodo")) == {
        "TotGuiaAnulada": "1",
        "TotGuiaVenta": "1",
        "TotMntGuiaVta": "1355993",
        "TotTraslado/TpoTraslado": "5",
        "TotTraslado/CantGuia": "1",
    }


def test_the_libro_de_guias_signature(
    libro_guias: bytes, cert: Certificate, tmp_path: Path
) -> None:
    check_signature(libro_guias, cert, tmp_path, "LGD_202611")


def test_folios_annulled_before_sending_and_goods_partly_received(cert: Certificate) -> None:
    rows = [
        DetalleGuia(4, anulado=AnuladoGuia.FOLIO_ANULADO),
        DetalleGuia(
            5,
            tipo_operacion=1,
            fecha=DAY,
            rut=CLIENTE,
            monto_neto=10000,
            anulado=AnuladoGuia.RECIBIDA_PARCIALMENTE,
            monto_modificado=5950,
        ),
        DetalleGuia(6, tipo_operacion=3, fecha=DAY, rut=CLIENTE, monto_neto=2000),
    ]
    data = build_libro_guia(caratula(cert, None), rows, key=cert, timestamp=NOW)
    assert validate(SchemaKind.LIBRO_GUIA, data) == []
    root = etree.fromstring(data)
    detalle = {int(e.findtext(f"{D}Folio")): flat(e) for e in root.iterfind(f".//{D}Detalle")}
    assert detalle[4] == {"Folio": "4", "Anulado": "1"}
    assert pick(detalle[5], "Anulado", "MntTotal", "MntModificado") == ["3", "11900", "5950"]
    # 2000 × 0.19 = 380: a valued consignación is totalled with its amount
    assert flat(root.find(f"{D}EnvioLibro/{D}ResumenPeriodo")) == {
        "TotFolAnulado": "1",
        "TotGuiaVenta": "1",
        "TotMntGuiaVta": "11900",
        "TotMntModificado": "5950",
        "TotTraslado/TpoTraslado": "3",
        "TotTraslado/CantGuia": "1",
        "TotTraslado/MntGuia": "2380",
    }


# --- What cannot be built -------------------------------------------------------------------


def _compra(**extra: object) -> Callable[[Certificate], bytes]:
    base: dict[str, object] = {"tipo_doc": 33, "folio": 1, "fecha": DAY, "rut": PROVEEDOR}
    base.update(extra)

    def build(cert: Certificate) -> bytes:
        return build_libro_compra_venta(
            caratula(cert, TipoOperacion.COMPRA),
            [DetalleLibro(**base)],
            key=cert,
            timestamp=NOW,
            factor_proporcionalidad=FACTOR if base.get("iva_uso_comun") else None,
        )

    return build


def _venta(**extra: object) -> Callable[[Certificate], bytes]:
    base: dict[str, object] = {"tipo_doc": 33, "folio": 1, "fecha": DAY, "rut": CLIENTE}
    base.update(extra)

    def build(cert: Certificate) -> bytes:
        return build_libro_compra_venta(
            caratula(cert, TipoOperacion.VENTA),
            [DetalleLibro(**base)],
            key=cert,
            timestamp=NOW,
        )

    return build


def _guia(**extra: object) -> Callable[[Certificate], bytes]:
    base: dict[str, object] = {"folio": 1, "tipo_operacion": 1, "fecha": DAY, "rut": CLIENTE}
    base.update(extra)

    def build(cert: Certificate) -> bytes:
        return build_libro_guia(
            caratula(cert, None),
            [DetalleGuia(**base)],
            key=cert,
            timestamp=NOW,
        )

    return build


def _with_caratula(
    operacion: TipoOperacion | None, **extra: object
) -> Callable[[Certificate], bytes]:
    def build(cert: Certificate) -> bytes:
        car = caratula(cert, operacion, **extra)
        if operacion is None:
            return build_libro_guia(car, [], key=cert, timestamp=NOW)
        return build_libro_compra_venta(car, [], key=cert, timestamp=NOW)

    return build


def _uso_comun_without_factor(cert: Certificate) -> bytes:
    rows = [DetalleLibro(33, 1, DAY, PROVEEDOR, monto_neto=1000, iva_uso_comun=True)]
    return build_libro_compra_venta(
        caratula(cert, TipoOperacion.COMPRA), rows, key=cert, timestamp=NOW
    )


def _factor_as_percentage(cert: Certificate) -> bytes:
    rows = [DetalleLibro(33, 1, DAY, PROVEEDOR, monto_neto=1000, iva_uso_comun=True)]
    return build_libro_compra_venta(
        caratula(cert, TipoOperacion.COMPRA),
        rows,
        key=cert,
        timestamp=NOW,
        factor_proporcionalidad=Decimal(55),
    )


def _duplicate(cert: Certificate) -> bytes:
    row = DetalleLibro(33, 1, DAY, PROVEEDOR, monto_neto=1000)
    return build_libro_compra_venta(
        caratula(cert, TipoOperacion.COMPRA), [row, row], key=cert, timestamp=NOW
    )


def _duplicate_sale(cert: Certificate) -> bytes:
    rows = [DetalleLibro(33, 1, anulado=True), DetalleLibro(33, 1, DAY, CLIENTE, monto_neto=1)]
    return build_libro_compra_venta(
        caratula(cert, TipoOperacion.VENTA), rows, key=cert, timestamp=NOW
    )


def _duplicate_guia(cert: Certificate) -> bytes:
    row = DetalleGuia(1, tipo_operacion=5, fecha=DAY)
    return build_libro_guia(caratula(cert, None), [row, row], key=cert, timestamp=NOW)


REFUSALS: list[tuple[str, Callable[[Certificate], bytes], str]] = [
    ("uso común without the factor", _uso_comun_without_factor, "factor_proporcionalidad"),
    ("factor as a percentage", _factor_as_percentage, "factor_proporcionalidad"),
    (
        "uso común in a libro de ventas",
        _venta(monto_neto=1000, iva_uso_comun=True),
        "iva_uso_comun",
    ),
    (
        "IVA no recuperable in ventas",
        _venta(monto_neto=1000, cod_iva_no_recuperable=4),
        "cod_iva_no_recuperable",
    ),
    (
        "unknown IVA no recuperable code",
        _compra(monto_neto=1000, cod_iva_no_recuperable=5),
        "cod_iva_no_recuperable",
    ),
    (
        "two IVA treatments",
        _compra(monto_neto=1000, iva_uso_comun=True, cod_iva_no_recuperable=4),
        "iva_uso_comun",
    ),
    ("a treatment without IVA", _compra(monto_exento=1000, cod_iva_no_recuperable=4), "monto_neto"),
    (
        "a factura that retains IVA",
        _compra(monto_neto=1000, retencion_total=True),
        "retencion_total",
    ),
    ("a bad check digit", _compra(rut="96790240-4"), "rut"),
    ("no RUT", _compra(rut=""), "rut"),
    ("no date", _compra(fecha=None), "fecha"),
    ("a paper factura without razón social", _compra(tipo_doc=30), "razon_social"),
    ("a boleta in the detail", _venta(tipo_doc=39), "tipo_doc"),
    ("a guía in the libro de compras", _compra(tipo_doc=52), "tipo_doc"),
    ("a float amount", _compra(monto_neto=1000.0), "monto_neto"),
    ("a negative amount", _compra(monto_exento=-1), "monto_exento"),
    ("a rate as float", _compra(monto_neto=1000, tasa_iva=19.0), "tasa_iva"),
    ("IVA without neto", _compra(monto_exento=1000, iva=190), "iva"),
    ("a factura exenta with neto", _compra(tipo_doc=34, monto_neto=1000), "monto_neto"),
    ("an annulled folio with data", _venta(anulado=True), "anulado"),
    (
        "TpoDocRef in compras",
        _compra(tipo_doc=61, tipo_doc_ref=33, folio_doc_ref=1),
        "tipo_doc_ref",
    ),
    ("TpoDocRef on a factura", _venta(tipo_doc_ref=33, folio_doc_ref=1), "tipo_doc_ref"),
    ("Emisor on a factura", _compra(nota_de_factura_compra=True), "nota_de_factura_compra"),
    ("a sale outside the period", _venta(fecha=date(2026, 10, 31)), "fecha"),
    ("a repeated document", _duplicate, "folio"),
    ("a sale's folio annulled and used", _duplicate_sale, "folio"),
    (
        "ESPECIAL without notificación",
        _with_caratula(TipoOperacion.COMPRA, folio_notificacion=None),
        "folio_notificacion",
    ),
    (
        "a PARCIAL envío",
        _with_caratula(TipoOperacion.VENTA, tipo_envio=TipoEnvio.PARCIAL),
        "tipo_envio",
    ),
    (
        "RECTIFICA without CodAutRec",
        _with_caratula(TipoOperacion.VENTA, tipo_libro=TipoLibro.RECTIFICA),
        "cod_aut_rec",
    ),
    ("a bad period", _with_caratula(TipoOperacion.VENTA, periodo="2026-13"), "periodo"),
    ("a bad RutEnvia", _with_caratula(TipoOperacion.VENTA, rut_envia="12345678-0"), "rut_envia"),
    (
        "NroResol too long",
        _with_caratula(TipoOperacion.VENTA, resolucion=Resolucion(DAY, 10**6)),
        "resolucion",
    ),
    ("a libro de guías MENSUAL", _with_caratula(None, tipo_libro=TipoLibro.MENSUAL), "tipo_libro"),
    (
        "a libro de guías with operación",
        lambda cert: build_libro_guia(
            caratula(cert, TipoOperacion.VENTA), [], key=cert, timestamp=NOW
        ),
        "tipo_operacion",
    ),
    (
        "a libro de compras without operación",
        lambda cert: build_libro_compra_venta(caratula(cert, None), [], key=cert, timestamp=NOW),
        "tipo_operacion",
    ),
    ("a guía de exportación", _guia(tipo_operacion=8), "tipo_operacion"),
    ("a guía de venta without RUT", _guia(rut=""), "rut"),
    ("a folio anulado with data", _guia(anulado=AnuladoGuia.FOLIO_ANULADO), "anulado"),
    ("MntModificado without Anulado 3", _guia(monto_modificado=100), "monto_modificado"),
    ("a guía invoiced by a guía", _guia(factura=FacturaDeGuia(52, 1, DAY)), "factura"),
    ("a repeated guía", _duplicate_guia, "folio"),
]


@pytest.mark.parametrize(
    ("build", "field"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_what_a_libro_refuses(
    build: Callable[[Certificate], bytes], field: str, cert: Certificate
) -> None:
    with pytest.raises(LibroError) as info:
        build(cert)
    assert info.value.field == field
    assert str(info.value)


# --- The schemas ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "LibroCV_v10.xsd",
        "LibroGuia_v10.xsd",
        "LceCoCertif_v10.xsd",
        "LceSiiTypes_v10.xsd",
        "LceCal_v10.xsd",
        "xmldsignature_v10.xsd",
    ],
)
def test_the_xsds_are_byte_identical_to_the_official_files(name: str) -> None:
    source = SHARED_SII / "xsd" / name
    if not source.exists():
        pytest.skip(f"{source} is not available")
    assert (XSD_DIR / name).read_bytes() == source.read_bytes()


def test_the_schema_rejects_a_broken_libro(libro_guias: bytes) -> None:
    broken = libro_guias.replace(b"<TotGuiaVenta>1</TotGuiaVenta>", b"")
    assert validate(SchemaKind.LIBRO_GUIA, broken) != []


# --- Helpers --------------------------------------------------------------------------------


def flat(element: etree._Element | None, prefix: str = "") -> dict[str, str]:
    """An element's leaves as {"Child/Grandchild": text}, in document order."""
    assert element is not None
    leaves: dict[str, str] = {}
    for child in element:
        name = prefix + etree.QName(child).localname
        if len(child):
            leaves.update(flat(child, name + "/"))
        else:
            leaves[name] = child.text or ""
    return leaves


def details(data: bytes) -> dict[tuple[int, int], dict[str, str]]:
    root = etree.fromstring(data)
    return {
        (int(e.findtext(f"{D}TpoDoc")), int(e.findtext(f"{D}NroDoc"))): flat(e)
        for e in root.iterfind(f"{D}EnvioLibro/{D}Detalle")
    }


def totales(data: bytes) -> list[dict[str, str]]:
    root = etree.fromstring(data)
    return [flat(e) for e in root.iterfind(f"{D}EnvioLibro/{D}ResumenPeriodo/{D}TotalesPeriodo")]


def pick(row: dict[str, str], *names: str) -> list[str]:
    return [row[name] for name in names]


def check_signature(data: bytes, cert: Certificate, tmp_path: Path, libro_id: str) -> None:
    """The Signature is the root's last child and references EnvioLibro; python-xmlsec and the
    xmlsec1 command, both with the certificate's own key, verify it; tampering breaks it."""
    root = etree.fromstring(data)
    signature = root[-1]
    assert signature.tag == f"{DS}Signature"
    assert root.find(f"{D}EnvioLibro").get("ID") == libro_id
    reference = signature.find(f"{DS}SignedInfo/{DS}Reference")
    assert reference.get("URI") == f"#{libro_id}"
    assert xmlsec_verifies(data, cert)
    tampered = re.sub(rb"<MntTotal>(\d)", rb"<MntTotal>9\1", data, count=1)
    if tampered == data:  # a libro without MntTotal: change the timestamp instead
        tampered = data.replace(b"<TmstFirma>2026", b"<TmstFirma>2027")
    assert not xmlsec_verifies(tampered, cert)
    if shutil.which("xmlsec1"):
        assert xmlsec1_verifies(data, cert, tmp_path)
        assert not xmlsec1_verifies(tampered, cert, tmp_path)


def cert_pem(cert: Certificate) -> bytes:
    return cert.certificate.public_bytes(serialization.Encoding.PEM)


def xmlsec_verifies(data: bytes, cert: Certificate) -> bool:
    root = etree.fromstring(data)
    xmlsec.tree.add_ids(root, ["ID"])
    ctx = xmlsec.SignatureContext()
    for transform in (xmlsec.constants.TransformInclC14N, xmlsec.constants.TransformRsaSha1):
        ctx.enable_reference_transform(transform)
        ctx.enable_signature_transform(transform)
    ctx.enable_reference_transform(xmlsec.constants.TransformSha1)
    ctx.key = xmlsec.Key.from_memory(cert_pem(cert), xmlsec.constants.KeyDataFormatCertPem)
    try:
        ctx.verify(root[-1])
    except xmlsec.VerificationError:
        return False
    return True


def xmlsec1_verifies(data: bytes, cert: Certificate, tmp_path: Path) -> bool:
    """The command-line verifier with the certificate's key only (`--enabled-key-data
    key-name` makes it ignore the KeyInfo), EnvioLibro's ID registered as an ID attribute."""
    document = tmp_path / "libro.xml"
    document.write_bytes(data)
    pem = tmp_path / "cert.pem"
    pem.write_bytes(cert_pem(cert))
    command = ["xmlsec1", "--verify", "--enabled-key-data", "key-name"]
    command += ["--pubkey-cert-pem", str(pem), "--id-attr:ID", f"{NS}:EnvioLibro", str(document)]
    result = subprocess.run(command, capture_output=True, check=False, timeout=30)
    return result.returncode == 0
