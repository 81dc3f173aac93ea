"""The set de pruebas reader and the plan it becomes (DOMAIN.md §16): the SII's example layout
and its variants (other spacing, other wording, encoding damage, missing sets, a line no one can
read), read by keywords and columns."""

from decimal import Decimal
from pathlib import Path

import pytest

from dte.core.certification.plan import Receiver, cod_ref_for, plan
from dte.core.certification.setfile import SetFileError, SetKind, document_type, parse
from erp.doctypes import CodRef

SAMPLE = Path("/work/shared/sii/samples/certification/SIISetDePruebas_ejemplo.txt")
RAW = SAMPLE.read_bytes() if SAMPLE.exists() else b""
pytestmark = pytest.mark.skipif(not RAW, reason="the shared set de pruebas is not available")
D = Decimal


def text() -> str:
    return RAW.decode("iso-8859-1")


def test_the_example_set_is_read_whole():
    result = parse(RAW)
    assert result.unreadable == ()
    kinds = [(s.kind, s.atencion, len(s.cases)) for s in result.sets]
    assert kinds == [
        (SetKind.BASICO, "5120001", 8),
        (SetKind.LIBRO_VENTAS, "5120002", 0),
        (SetKind.LIBRO_COMPRAS, "5120003", 0),
        (SetKind.GUIA_DESPACHO, "5120004", 3),
        (SetKind.LIBRO_GUIAS, "5120005", 0),
        (SetKind.EXPORTACION, "5120006", 3),
        (SetKind.EXPORTACION, "5120007", 3),
        (SetKind.FACTURA_COMPRA, "5120008", 3),
    ]
    assert [s.name for s in result.find(SetKind.EXPORTACION)] == [
        "SET_BASICO_DOCUMENTOS_DE_EXPORTACION_1",
        "SET_BASICO_DOCUMENTOS_DE_EXPORTACION_2",
    ]


def test_items_discounts_exempt_lines_and_global_discounts():
    result = parse(RAW)
    two = result.case("5120001-2")
    assert [(i.name, i.quantity, i.price, i.discount_pct) for i in two.items] == [
        ("Martillo AFECTO", D(612), D(4377), D(12)),
        ("ITEM 2 AFECTO", D(388), D(2915), D(30)),
    ]
    three = result.case("5120001-3")
    assert three.items[0].name == "Barniz & Co AFECTO"  # one space inside a name is kept
    assert [i.exempt for i in three.items] == [False, False, True]
    assert result.case("5120001-4").global_discount_pct == D(18)


def test_references_and_their_reasons():
    result = parse(RAW)
    expected = {
        "5120001-5": (33, "5120001-1", "CORRIGE GIRO DEL RECEPTOR"),
        "5120001-6": (33, "5120001-2", "DEVOLUCION DE MERCADERIAS"),
        "5120001-7": (33, "5120001-3", "ANULA FACTURA"),
        "5120001-8": (61, "5120001-5", "ANULA NOTA DE CREDITO ELECTRONICA"),
    }
    for caso, (tipo, target, razon) in expected.items():
        reference = result.case(caso).reference
        assert (reference.tipo, reference.caso, reference.razon) == (tipo, target, razon)
    returned = result.case("5120001-6").items
    assert [(i.name, i.quantity, i.price) for i in returned] == [
        ("Martillo AFECTO", D(201), None),
        ("ITEM 2 AFECTO", D(95), None),
    ]


def test_guias_traslado_and_despacho():
    result = parse(RAW)
    guias = result.find(SetKind.GUIA_DESPACHO)[0].cases
    assert [(c.ind_traslado, c.tipo_despacho) for c in guias] == [(5, None), (1, 2), (1, 1)]
    assert [i.price for i in guias[0].items] == [None, None, None]  # goods that only move
    assert result.find(SetKind.LIBRO_GUIAS)[0].guia_states == {2: "facturada", 3: "anulada"}


def test_the_purchase_book_rows_and_the_common_use_factor():
    book = parse(RAW).find(SetKind.LIBRO_COMPRAS)[0]
    assert book.factor == D("0.55")
    rows = [(r.tipo, r.folio, r.exento, r.afecto) for r in book.purchases]
    assert rows == [
        (30, 118, 0, 17452),
        (33, 56, 6120, 9033),
        (30, 402, 0, 31270),
        (60, 377, 0, 1984),
        (33, 84, 0, 12650),
        (46, 14, 0, 8815),
        (60, 190, 0, 3307),
    ]
    flags = [(r.uso_comun, r.entrega_gratuita, r.retencion_total) for r in book.purchases]
    assert flags[2] == (True, False, False)
    assert flags[4] == (False, True, False)
    assert flags[5] == (False, False, True)
    assert (book.purchases[3].referenced_tipo, book.purchases[3].referenced_folio) == (30, 118)
    assert (book.purchases[6].referenced_tipo, book.purchases[6].referenced_folio) == (33, 56)


def test_export_cases_and_their_customs_words():
    result = parse(RAW)
    first = result.case("5120006-1")
    assert first.export["MONEDA DE LA OPERACION"] == "DOLAR USA"
    assert first.export["TOTAL CLAUSULA DE VENTA"] == "1025.37"
    assert first.customs_references == ("MIC (MANIFIESTO INTERNACIONAL)",)
    assert (first.items[0].unit, first.items[0].quantity) == ("U", D(148))
    assert result.case("5120006-2").prices_from_reference
    service = result.case("5120007-1")
    assert service.items[0].line_value == D(45) and service.items[0].quantity is None
    assert service.line_surcharge_pct == D(8)
    boxes = result.case("5120007-2")
    assert boxes.commission_pct_of_clause == D(9)
    assert boxes.line_discounts == {1: D(4)}
    assert boxes.customs_references == ("DUS", "AWB")


# --- Variants -------------------------------------------------------------------------------


def _same_cases(result) -> list[tuple]:
    return [
        (c.caso, c.tipo, [(i.name, i.quantity, i.price, i.discount_pct) for i in c.items])
        for s in result.sets
        for c in s.cases
    ]


def test_other_spacing_reads_the_same():
    original = parse(RAW)
    # tabs become runs of spaces, CRLF becomes LF, trailing blanks appear
    respaced = text().replace("\r\n", "\n").replace("\t", "    ").replace("\n", "   \n")
    result = parse(respaced.encode("iso-8859-1"))
    assert _same_cases(result) == _same_cases(original)
    assert result.unreadable == ()
    assert (
        result.find(SetKind.LIBRO_COMPRAS)[0].purchases
        == original.find(SetKind.LIBRO_COMPRAS)[0].purchases
    )


def test_other_wording_of_headers_and_instructions():
    changed = (
        text()
        .replace("SET BASICO - NUMERO DE ATENCION: 5120001", "SET BASICO  N° ATENCION 5120001")
        .replace(
            "SET GUIA DE DESPACHO - NUMERO DE ATENCION:", "SET GUIA DE DESPACHO - NUMERO ATENCION"
        )
        .replace("ARME EL LIBRO DE VENTAS", "CONSTRUYA EL LIBRO DE VENTAS")
        .replace(
            "EL PRECIO UNITARIO DEL ITEM ES EL MISMO DE LA FACTURA",
            "PRECIO: EL MISMO DE LA FACTURA",
        )
    )
    result = parse(changed.encode("iso-8859-1"))
    assert result.sets[0].kind is SetKind.BASICO and result.sets[0].atencion == "5120001"
    assert result.find(SetKind.GUIA_DESPACHO)[0].atencion == "5120004"
    assert result.case("5120006-2").prices_from_reference
    assert result.unreadable == ()


def test_a_double_encoded_word_is_still_read():
    # UTF-8 bytes of a word written into the Latin-1 file (a word that went through two
    # encodings), and the replacement character some tools leave instead of a letter.
    twice = "ELECTRÓNICA".encode().decode("iso-8859-1")
    lost = "ATENCI\ufffdN".encode("utf-8").decode("iso-8859-1")
    assert lost == "ATENCIï¿½N"
    first_case = (
        "DOCUMENTO\tFACTURA ELECTRONICA\r\n\r\nITEM\t\t\tCANTIDAD\tPRECIO UNITARIO\r\nTornillo"
    )
    damaged = (
        text()
        .replace("SET BASICO - NUMERO DE ATENCION", f"SET BASICO - NUMERO DE {lost}")
        .replace(first_case, first_case.replace("ELECTRONICA", twice))
    )
    result = parse(damaged.encode("iso-8859-1"))
    assert result.sets[0].atencion == "5120001"
    assert result.case("5120001-1").tipo == 33
    assert result.unreadable == ()


def test_a_file_saved_as_utf8_reads_the_same():
    assert _same_cases(parse(text().encode("utf-8"))) == _same_cases(parse(RAW))


def test_missing_sets_are_simply_absent():
    only_basic = text().split("SET LIBRO DE VENTAS")[0]
    result = parse(only_basic.encode("iso-8859-1"))
    assert [s.kind for s in result.sets] == [SetKind.BASICO]
    assert len(plan(result).sets) == 1


def test_an_unreadable_line_is_reported_with_its_number():
    broken = (
        text()
        .replace(
            "Tuerca AFECTO\t\t     48\t\t   7420",
            "Tuerca AFECTO\t\t     48\t\t   7420\t\tXYZ!\t\t9",
        )
        .replace(
            "RAZON REFERENCIA\tANULA FACTURA", "RAZON REFERENCIA\tANULA FACTURA\r\nLLAME AL 600"
        )
    )
    result = parse(broken.encode("iso-8859-1"))
    reasons = {(u.text, u.reason.split(":")[0]) for u in result.unreadable}
    assert any(t.startswith("Tuerca AFECTO") for t, _ in reasons), result.unreadable
    assert any(t == "LLAME AL 600" for t, _ in reasons), result.unreadable
    line = next(u.line for u in result.unreadable if u.text == "LLAME AL 600")
    assert broken.replace("\r\n", "\n").split("\n")[line - 1] == "LLAME AL 600"
    assert [i.name for i in result.case("5120001-1").items] == ["Tornillo AFECTO"]


def test_a_case_with_an_unknown_document_is_a_problem_not_a_guess():
    changed = text().replace(
        "DOCUMENTO\tGUIA DE DESPACHO\r\nMOTIVO:\t\tVENTA\r\nTRASLADO POR: \tCLIENTE",
        "DOCUMENTO\tVALE DE CAJA\r\nMOTIVO:\t\tVENTA\r\nTRASLADO POR: \tCLIENTE",
    )
    result = parse(changed.encode("iso-8859-1"))
    assert result.case("5120004-3").tipo is None
    problems = plan(result).sets[1].problems
    assert problems and "5120004-3" in problems[0] and "VALE DE CAJA" in problems[0]


def test_not_a_set_at_all():
    with pytest.raises(SetFileError):
        parse(b"Estimado contribuyente:\r\nadjunto su factura.\r\n")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("FACTURA ELECTRONICA", 33),
        ("FACTURA  ELECTRONICA", 33),
        ("FACTURA NO AFECTA O EXENTA ELECTRONICA", 34),
        ("NOTA DE CREDITO DE EXPORTACION ELECTRONICA", 112),
        ("NOTA DE CREDITO ELECTRONICA", 61),
        ("GUIA DE DESPACHO", 52),
        ("FACTURA DE COMPRA ELECTRONICA", 46),
        ("LIQUIDACION FACTURA ELECTRONICA", 43),
    ],
)
def test_document_names(name, code):
    assert document_type(name, electronic=True) == code


def test_paper_names_in_the_purchase_book():
    assert document_type("FACTURA", electronic=False) == 30
    assert document_type("NOTA DE CREDITO", electronic=False) == 60


# --- The plan -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("razon", "code"),
    [
        ("CORRIGE GIRO DEL RECEPTOR", CodRef.CORRIGE_TEXTO),
        ("DEVOLUCION DE MERCADERIAS", CodRef.CORRIGE_MONTOS),
        ("ANULA FACTURA", CodRef.ANULA),
        ("ANULA NOTA DE CREDITO ELECTRONICA", CodRef.ANULA),
        ("MODIFICA MONTO", CodRef.CORRIGE_MONTOS),
        ("CORRIGE PRECIO UNITARIO", CodRef.CORRIGE_MONTOS),
    ],
)
def test_cod_ref_by_reason(razon, code):
    assert cod_ref_for(razon) is code


def test_the_plan_of_the_example():
    result = plan(parse(RAW))
    assert result.problems == ()
    names = [s.set.name for s in result.sets]
    assert names == [
        "SET_BASICO",
        "SET_GUIA_DE_DESPACHO",
        "SET_BASICO_DOCUMENTOS_DE_EXPORTACION_1",
        "SET_BASICO_DOCUMENTOS_DE_EXPORTACION_2",
        "SET_BASICO_CASO_GENERAL_DE_EMISOR_DE_FACTURA_DE_COMPRA",
    ]
    first = result.document("5120001-1")
    assert first.references[0].tipo_doc_ref == "SET"
    assert first.references[0].folio_ref == "5120001-1"
    assert first.references[0].razon_ref == "CASO 5120001-1"
    # A text correction: one line without amounts; the SET reference first, then the factura.
    giro = result.document("5120001-5")
    assert [(ln["name"], ln["unit_price"]) for ln in giro.lines] == [
        ("CORRIGE GIRO DEL RECEPTOR", D(0))
    ]
    assert [(r.tipo_doc_ref, r.cod_ref, r.ref_caso) for r in giro.references] == [
        ("SET", None, ""),
        ("33", 2, "5120001-1"),
    ]
    # A return: the returned quantities at the factura's prices and line discounts.
    returned = result.document("5120001-6")
    assert [(ln["quantity"], ln["unit_price"], ln["discount_pct"]) for ln in returned.lines] == [
        (D(201), D(4377), D(12)),
        (D(95), D(2915), D(30)),
    ]
    # An annulment copies the document it annuls; a nota de débito annuls the nota de crédito.
    assert result.document("5120001-7").lines == result.document("5120001-3").lines
    assert result.document("5120001-8").lines == giro.lines
    assert result.document("5120001-8").references[1].tipo_doc_ref == "61"


def test_the_plan_of_guias_and_exports():
    result = plan(parse(RAW))
    assert result.document("5120004-1").receiver == Receiver.ISSUER  # traslado interno
    assert result.document("5120004-1").header["ind_traslado"] == 5
    factura = result.document("5120006-1")
    assert factura.receiver == Receiver.FOREIGN and factura.country == "219"  # PERU
    aduana = factura.header["aduana"]
    assert (aduana["clausula_venta"], aduana["via_transporte"], aduana["tipo_bultos"]) == (
        5,
        4,
        75,
    )
    assert aduana["puerto_embarque"] == 902  # IQUIQUE
    assert aduana["puerto_desembarque"] == 251  # LIMA is not in the table: OTROS PUERTOS DE PERU
    assert (aduana["flete"], aduana["seguro"]) == ("121.44", "18.92")
    assert factura.header["forma_pago_exportacion"] == 11  # ACRED
    assert [r.tipo_doc_ref for r in factura.references] == ["SET", "810"]  # MIC/DTA
    nota = result.document("5120006-2")
    assert nota.lines[0]["unit_price"] == D(203) and nota.lines[0]["quantity"] == D(52)
    assert "flete" not in nota.header["aduana"]  # only an annulment gives them back
    hotel = result.document("5120007-3")
    assert hotel.header["ind_servicio"] == 4 and hotel.country == "563"  # ALEMANIA
    assert "813" in [r.tipo_doc_ref for r in hotel.references]  # the guest's passport
    commission = result.document("5120007-2")
    assert commission.header["global_surcharge_value"] == D("190.57")  # 9 % of 2117.40
    assert commission.lines[0]["discount_pct"] == D(4)


def test_a_nota_of_a_case_not_in_the_file_is_a_problem():
    cut = text().replace("CORRESPONDIENTE A CASO 5120001-3", "CORRESPONDIENTE A CASO 5120009-3")
    problems = plan(parse(cut.encode("iso-8859-1"))).sets[0].problems
    assert problems == (
        "Caso 5120001-7: se refiere al caso 5120009-3, que no está antes en el set",
    )


def test_the_exchange_rate_is_the_run_s():
    result = plan(parse(RAW), exchange_rates={"DOLAR USA": D("943.57")})
    assert result.document("5120006-1").header["tipo_cambio"] == D("943.57")
    problems = result.problems
    assert any("falta el tipo de cambio de EURO" in p for p in problems)


# --- The boleta set -------------------------------------------------------------------------

BOLETAS = Path(__file__).resolve().parents[2] / "data" / "certification" / "SetBoletas_ejemplo.txt"


def boletas() -> str:
    return BOLETAS.read_bytes().decode("iso-8859-1")


def _boleta_items(result) -> list[tuple]:
    return [
        (c.caso, c.tipo, [(i.name, i.quantity, i.price, i.unit, i.exempt) for i in c.items])
        for s in result.sets
        for c in s.cases
    ]


BOLETA_ITEMS = [
    (
        "1",
        39,
        [
            ("Lavado de tapiz", D(1), D(24990), "", False),
            ("Aspirado interior", D(1), D(7490), "", False),
        ],
    ),
    ("2", 39, [("Bolsa de papel", D(23), D(90), "", False)]),
    (
        "3",
        39,
        [
            ("Empanada de pino", D(3), D(2300), "", False),
            ("Bebida de piña", D(3), D(1290), "", False),
        ],
    ),
    (
        "4",
        39,
        [("item afecto 1", D(6), D(2490), "", False), ("item exento 2", D(3), D(1500), "", True)],
    ),
    ("5", 39, [("Harina", D("3.5"), D(1150), "Kg", False)]),
]


def test_the_boleta_set_is_read_whole():
    result = parse(BOLETAS.read_bytes())
    assert result.unreadable == () and result.preamble == ()
    (boleta_set,) = result.sets
    assert boleta_set.kind is SetKind.BOLETA
    assert boleta_set.title == "SET DE PRUEBA DE BOLETA ELECTRONICA DE VENTAS Y SERVICIOS"
    assert boleta_set.atencion == ""  # the boleta set has no número de atención
    assert boleta_set.name == "SET_DE_PRUEBA_DE_BOLETA_ELECTRONICA_DE_VENTAS_Y_SERVICIOS"
    assert [(c.caso, c.number, c.document) for c in boleta_set.cases] == [
        (str(n), n, "BOLETA ELECTRONICA DE VENTAS Y SERVICIOS") for n in range(1, 6)
    ]
    assert _boleta_items(result) == BOLETA_ITEMS
    assert all(c.problems == () for c in boleta_set.cases)
    assert result.case("4").observations == (
        "El item 1 es un servicio afecto. El item 2 es un servicio exento.",
    )
    assert result.case("5").observations == ("Se debe informar en el XML Unidad de medida en Kg.",)
    # the general observations after the last case are the set's instructions
    assert boleta_set.instructions[0] == "OBSERVACIONES GENERALES"
    assert "<RazonRef>CASO-1</RazonRef>" in boleta_set.instructions


def test_the_boleta_set_in_other_spacing_and_wording():
    changed = (
        boletas()
        .replace("\r\n", "\n")
        .replace("\t", "    ")
        .replace("CASO-3", "CASO 3")
        .replace("24990", "24.990")  # thousands separators in a price with IVA
        .replace("SII SET DE PRUEBA DE BOLETA", "SET DE PRUEBAS DE BOLETA")
    )
    result = parse(changed.encode("iso-8859-1"))
    assert result.unreadable == ()
    assert result.sets[0].kind is SetKind.BOLETA
    assert _boleta_items(result) == BOLETA_ITEMS
    assert _boleta_items(parse(boletas().encode("utf-8"))) == BOLETA_ITEMS


def test_an_exempt_boleta_set_is_read_as_boletas_41():
    exenta = boletas().replace(
        "BOLETA ELECTRONICA DE VENTAS Y SERVICIOS", "BOLETA NO AFECTA O EXENTA ELECTRONICA"
    )
    result = parse(exenta.encode("iso-8859-1"))
    assert {c.tipo for c in result.sets[0].cases} == {41}
    document = plan(result).document("1")
    assert document.tipo == 41 and all(line["is_exempt"] for line in document.lines)


def test_what_the_boleta_set_s_reader_cannot_apply_is_listed():
    changed = (
        boletas()
        .replace("Unidad de medida en Kg.", "Unidad de medida en Kg. Entregue a domicilio.")
        .replace("El item 2 es un servicio exento", "El item 3 es un servicio exento")
        .replace("Bolsa de papel\t\t\t\t23\t\t\t90", "Bolsa de papel\t\t\t\t23\t\t\tnoventa")
    )
    result = parse(changed.encode("iso-8859-1"))
    reasons = {u.text: u.reason for u in result.unreadable}
    assert "ítem" in reasons["Bolsa de papel\t\t\t\t23\t\t\tnoventa"]
    observation = next(t for t in reasons if t.startswith("OBSERVACION"))
    assert "Entregue a domicilio" in reasons[observation] and "caso 5" in reasons[observation]
    assert result.case("5").items[0].unit == "Kg"  # the sentence it knows is still applied
    assert result.case("4").problems == (
        "la observación nombra un ítem que el caso no trae: «El item 3 es un servicio exento»",
    )
    assert result.case("4").items[1].exempt  # "exento" in its name
    problems = plan(result).problems
    assert problems == (
        "Caso 2: el caso no trae ítems",
        "Caso 4: la observación nombra un ítem que el caso no trae: "
        "«El item 3 es un servicio exento»",
    )


def test_the_plan_of_the_boleta_set():
    result = plan(parse(BOLETAS.read_bytes()))
    assert result.problems == ()
    (planned,) = result.sets
    assert planned.set.kind is SetKind.BOLETA and planned.sendable
    for caso, tipo, items in BOLETA_ITEMS:
        document = result.document(caso)
        assert document.tipo == tipo
        # the set's prices, IVA included, are the lines' unit prices (a boleta's are gross)
        assert [
            (ln["name"], ln["quantity"], ln["unit_price"], ln["unit"], ln["is_exempt"])
            for ln in document.lines
        ] == items
        assert document.receiver == Receiver.ANONYMOUS  # 66.666.666-6: no partner
        # one reference: the SET mark with the case, named as the set heads it
        assert [
            (r.tipo_doc_ref, r.folio_ref, r.razon_ref, r.cod_ref, r.ref_caso)
            for r in document.references
        ] == [("SET", caso, f"CASO-{caso}", None, "")]
        assert document.header == {} and document.assumptions == ()


def test_boletas_belong_to_the_boleta_set_and_only_boletas_to_it():
    in_basic = text().replace(
        "DOCUMENTO\tFACTURA ELECTRONICA\r\n\r\nITEM\t\t\tCANTIDAD\tPRECIO UNITARIO\r\nTornillo",
        "DOCUMENTO\tBOLETA ELECTRONICA\r\n\r\nITEM\t\t\tCANTIDAD\tPRECIO UNITARIO\r\nTornillo",
    )
    problems = plan(parse(in_basic.encode("iso-8859-1"))).problems
    assert "Caso 5120001-1: las boletas se certifican con su propio set" in problems[0]
    nota = boletas().replace(
        "CASO-2\r\n=========\r\n",
        "CASO-2\r\n=========\r\nDOCUMENTO\tNOTA DE CREDITO ELECTRONICA\r\n",
    )
    problems = plan(parse(nota.encode("iso-8859-1"))).problems
    assert problems == (
        "Caso 2: el set de boletas trae un caso que no es boleta: «NOTA DE CREDITO ELECTRONICA»",
    )
