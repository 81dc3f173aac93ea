"""f29.rcv: the SII's RCV CSV downloads, from the files in tests/data/rcv (company 76086428-5)."""

import random
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest

from f29.rcv import SANTIAGO, RcvFile, RcvFileError, RcvRow, RejectedRow, parse_rcv

DATA = Path(__file__).resolve().parent.parent / "data" / "rcv"
COMPANY = "76086428-5"


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse(content: bytes, kind: str = "compras", estado: str | None = None) -> RcvFile:
    return parse_rcv(content, kind=kind, contribuyente_rut=COMPANY, estado=estado)


def by_line(result: RcvFile) -> dict[int, RcvRow]:
    return {row.line: row for row in result.rows}


def at(day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(2026, 10, day, hour, minute, second, tzinfo=SANTIAGO)


def set_field(content: bytes, line: int, column: str, value: str) -> bytes:
    """The file with one cell changed; `line` counts the header as 1."""
    lines = content.decode().split("\n")
    header = lines[0].split(";")
    cells = lines[line - 1].split(";")
    cells[header.index(column)] = value
    lines[line - 1] = ";".join(cells)
    return "\n".join(lines).encode()


def expect_file_error(content: bytes, *fragments: str, **kwargs) -> str:
    with pytest.raises(RcvFileError) as info:
        parse(content, **kwargs)
    message = info.value.message
    assert message == str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


REGISTRO = read("compras_registro_2026-10.csv")
VENTAS = read("ventas_2026-10.csv")

FACTURA_LOS_ANDES = RcvRow(
    line=2,
    kind="compras",
    estado="registro",
    tipo=33,
    folio=10452,
    rut="76354771-K",
    razon_social="DISTRIBUIDORA LOS ANDES SPA",
    fecha=date(2026, 10, 1),
    fecha_recepcion=at(1, 9, 14, 22),
    fecha_reclamo=None,
    tipo_compra="Del Giro",
    monto_exento=0,
    monto_neto=1000000,
    monto_iva=190000,
    monto_iva_no_recuperable=0,
    codigo_iva_no_rec="",
    monto_neto_activo_fijo=0,
    iva_activo_fijo=0,
    iva_uso_comun=0,
    otros_impuestos=0,
    monto_total=1190000,
)


# --- compras: registro ------------------------------------------------------------------------


def test_registro_reads_every_document_once():
    result = parse(REGISTRO)
    assert (result.kind, result.estado, result.rejected) == ("compras", "registro", ())
    # 14 lines: the header, 11 documents, 2 "otros impuestos" continuation rows (lines 12, 13).
    assert sorted(by_line(result)) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14]
    assert [row.tipo for row in result.rows] == [33, 33, 34, 61, 56, 914, 33, 33, 33, 33, 33]
    assert len({row.key for row in result.rows}) == 11


def test_registro_factura_every_field():
    assert by_line(parse(REGISTRO))[2] == FACTURA_LOS_ANDES
    assert FACTURA_LOS_ANDES.key == (33, 10452, "76354771-K")


def test_registro_document_with_otros_impuestos_every_field():
    # Licores 24 on the main row, vinos 25 and bebidas 27 on two continuation rows.
    assert by_line(parse(REGISTRO))[11] == RcvRow(
        line=11,
        kind="compras",
        estado="registro",
        tipo=33,
        folio=55021,
        rut="76402118-5",
        razon_social="COMERCIAL VINOS DEL MAULE LIMITADA",
        fecha=date(2026, 10, 22),
        fecha_recepcion=at(22, 11, 45, 19),
        fecha_reclamo=None,
        tipo_compra="Del Giro",
        monto_exento=0,
        monto_neto=1000000,
        monto_iva=190000,
        monto_iva_no_recuperable=0,
        codigo_iva_no_rec="",
        monto_neto_activo_fijo=0,
        iva_activo_fijo=0,
        iva_uso_comun=0,
        otros_impuestos=126000 + 82000 + 20000,
        monto_total=1418000,
    )


def test_registro_each_kind_of_purchase():
    rows = by_line(parse(REGISTRO))
    exenta, nota_credito, nota_debito, din = rows[4], rows[5], rows[6], rows[7]
    assert (exenta.tipo, exenta.monto_exento, exenta.monto_neto, exenta.monto_iva) == (
        34,
        350000,
        0,
        0,
    )
    assert (nota_credito.tipo, nota_credito.folio, nota_credito.monto_total) == (61, 2210, 119000)
    assert (nota_debito.tipo, nota_debito.monto_iva, nota_debito.monto_total) == (56, 3800, 23800)
    assert (din.tipo, din.rut, din.razon_social, din.monto_iva) == (
        914,
        "60805000-0",
        "SERVICIO NACIONAL DE ADUANAS",
        475000,
    )

    activo_fijo = rows[8]
    assert activo_fijo.tipo_compra == "Activo Fijo"
    assert (activo_fijo.monto_neto_activo_fijo, activo_fijo.iva_activo_fijo) == (8000000, 1520000)
    assert (activo_fijo.monto_neto, activo_fijo.monto_iva) == (8000000, 1520000)

    no_recuperable = rows[9]
    assert no_recuperable.tipo_compra == "IVA no Recuperable"
    assert no_recuperable.monto_iva == 0
    assert no_recuperable.monto_iva_no_recuperable == 22800
    assert no_recuperable.codigo_iva_no_rec == "9"
    assert no_recuperable.monto_total == 142800

    uso_comun = rows[10]
    assert uso_comun.tipo_compra == "IVA Uso Común"
    assert (uso_comun.monto_iva, uso_comun.iva_uso_comun, uso_comun.monto_total) == (
        0,
        57000,
        357000,
    )


def test_names_are_stripped_and_their_whitespace_collapsed():
    rows = by_line(parse(REGISTRO))
    # In the file: "SERVICIOS  INFORMATICOS   DEL SUR LIMITADA  ".
    assert rows[3].razon_social == "SERVICIOS INFORMATICOS DEL SUR LIMITADA"
    assert rows[3].razon_social == rows[6].razon_social
    ventas = by_line(parse(VENTAS, kind="ventas"))
    assert ventas[3].razon_social == "CONSTRUCTORA BIO BIO S.A."


def test_same_tipo_and_folio_from_two_suppliers_are_two_documents():
    # cl-sii groups compras rows by tipo and folio only; both facturas 10452 must survive intact.
    rows = by_line(parse(REGISTRO))
    assert rows[2] == FACTURA_LOS_ANDES
    assert (rows[14].key, rows[14].razon_social, rows[14].monto_total) == (
        (33, 10452, "77891034-9"),
        "FERRETERIA EL CASTAÑO LIMITADA",
        100000,
    )
    assert rows[14].otros_impuestos == 0


def test_the_order_of_continuation_rows_does_not_matter():
    lines = REGISTRO.decode().split("\n")
    lines[10], lines[11] = lines[11], lines[10]  # a continuation row before its main row
    rows = by_line(parse("\n".join(lines).encode()))
    assert rows[12].folio == 55021
    assert rows[12].otros_impuestos == 228000


# --- compras: the other states ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "estado", "count"),
    [
        ("compras_registro_2026-10.csv", "registro", 11),
        ("compras_pendiente_2026-10.csv", "pendiente", 3),
        ("compras_no_incluir_2026-10.csv", "no_incluir", 2),
        ("compras_reclamado_2026-10.csv", "reclamado", 2),
    ],
)
def test_estado_detected_from_the_header(name, estado, count):
    result = parse(read(name))
    assert result.estado == estado
    assert len(result.rows) == count
    assert result.rejected == ()
    assert {row.estado for row in result.rows} == {estado}


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("registro", "compras_registro_2026-10.csv"),
        ("Pendiente", "compras_pendiente_2026-10.csv"),
        ("pendientes", "compras_pendiente_2026-10.csv"),
        ("no_incluir", "compras_no_incluir_2026-10.csv"),
        ("no-incluir", "compras_no_incluir_2026-10.csv"),
        ("no incluir", "compras_no_incluir_2026-10.csv"),
        ("reclamado", "compras_reclamado_2026-10.csv"),
    ],
)
def test_estado_given_in_any_spelling(spelling, name):
    assert parse(read(name), estado=spelling).rows == parse(read(name)).rows


def test_estado_given_does_not_match_the_file():
    expect_file_error(
        read("compras_pendiente_2026-10.csv"),
        "Registro de Compras (Pendientes)",
        "no del Registro de Compras (Registro)",
        estado="registro",
    )


def test_pendiente_rows():
    rows = by_line(parse(read("compras_pendiente_2026-10.csv")))
    assert rows[2].razon_social == "IMPRENTA LA ARAUCANIA LIMITADA"
    assert (rows[2].key, rows[2].monto_neto, rows[2].monto_iva) == (
        (33, 2290, "77215640-5"),
        210000,
        39900,
    )
    assert (rows[4].tipo, rows[4].monto_exento, rows[4].monto_total) == (34, 180000, 180000)
    assert all(row.fecha_reclamo is None for row in rows.values())


def test_reclamado_rows_carry_the_reclamo_date():
    rows = by_line(parse(read("compras_reclamado_2026-10.csv")))
    assert rows[2].key == (33, 500213, "79563200-K")
    assert rows[2].fecha_reclamo == at(10, 12, 30, 5)
    assert rows[2].fecha_recepcion == at(6, 14, 12, 40)
    # The SII writes "null" for some notas de crédito.
    assert (rows[3].tipo, rows[3].fecha_reclamo) == (61, None)


def test_no_incluir_rows():
    rows = by_line(parse(read("compras_no_incluir_2026-10.csv")))
    assert [row.tipo_compra for row in rows.values()] == ["No Corresp. Incluir"] * 2
    assert (rows[3].tipo, rows[3].monto_total) == (39, 30000)


# --- ventas -----------------------------------------------------------------------------------


def test_ventas_factura_with_reclamo_every_field():
    result = parse(VENTAS, kind="ventas")
    assert (result.kind, result.estado, result.rejected) == ("ventas", "registro", ())
    assert by_line(result)[3] == RcvRow(
        line=3,
        kind="ventas",
        estado="registro",
        tipo=33,
        folio=1502,
        rut="93711000-6",
        razon_social="CONSTRUCTORA BIO BIO S.A.",
        fecha=date(2026, 10, 6),
        fecha_recepcion=at(6, 12, 10, 55),
        fecha_reclamo=at(9, 17, 44, 21),
        tipo_compra="",
        monto_exento=0,
        monto_neto=500000,
        monto_iva=95000,
        monto_iva_no_recuperable=0,
        codigo_iva_no_rec="",
        monto_neto_activo_fijo=0,
        iva_activo_fijo=0,
        iva_uso_comun=0,
        otros_impuestos=0,
        monto_total=595000,
    )


def test_ventas_documents():
    rows = by_line(parse(VENTAS, kind="ventas"))
    assert [(row.tipo, row.folio) for row in rows.values()] == [
        (33, 1501),
        (33, 1502),
        (34, 88),
        (61, 301),
        (56, 45),
        (33, 1503),
    ]
    assert (rows[4].monto_exento, rows[4].monto_total) == (750000, 750000)
    assert (rows[5].monto_neto, rows[5].monto_iva, rows[5].monto_total) == (200000, 38000, 238000)
    assert rows[2].fecha_reclamo is None
    # Code 27 on the main row, 271 on the continuation row (line 8).
    assert (rows[7].otros_impuestos, rows[7].monto_total) == (20000 + 40000, 536000)


def test_ventas_estado_may_only_be_registro():
    assert parse(VENTAS, kind="ventas", estado="registro").rows == parse(VENTAS, "ventas").rows
    with pytest.raises(ValueError, match="no tiene estados"):
        parse(VENTAS, kind="ventas", estado="pendiente")


# --- encodings and layout ---------------------------------------------------------------------


def test_latin1_file_reads_like_the_utf8_one():
    latin1 = read("compras_registro_2026-10_latin1.csv")
    with pytest.raises(UnicodeDecodeError):
        latin1.decode("utf-8")
    assert parse(latin1) == parse(REGISTRO)
    rows = by_line(parse(latin1))
    assert rows[14].razon_social == "FERRETERIA EL CASTAÑO LIMITADA"
    assert rows[10].tipo_compra == "IVA Uso Común"


def test_windows_1252_file():
    content = REGISTRO.decode().replace("ENERGIA AUSTRAL", "ENERGÍA “AUSTRAL”").encode("cp1252")
    assert by_line(parse(content))[10].razon_social == "ENERGÍA “AUSTRAL” S.A."


def test_bom_and_windows_line_endings():
    content = b"\xef\xbb\xbf" + REGISTRO.replace(b"\n", b"\r\n")
    assert parse(content) == parse(REGISTRO)


def test_header_with_blanks_and_a_trailing_semicolon():
    header, rest = REGISTRO.split(b"\n", 1)
    loose = b";".join(b"  " + name + b" " for name in header.split(b";")) + b";;"
    assert parse(loose + b"\n" + rest) == parse(REGISTRO)


def test_header_names_ignore_case_and_accents():
    content = REGISTRO.replace(b"Razon Social", "Razón social".encode(), 1)
    assert parse(content) == parse(REGISTRO)


def test_blank_lines_are_skipped_and_line_numbers_kept():
    header, rest = REGISTRO.split(b"\n", 1)
    content = header + b"\n\n" + b";" * 27 + b"\n" + rest + b"\n\n"
    rows = by_line(parse(content))
    assert rows[4] == replace(FACTURA_LOS_ANDES, line=4)
    assert max(rows) == 16


def test_header_only_is_an_empty_register():
    header = REGISTRO.split(b"\n", 1)[0]
    assert parse(header + b"\n") == RcvFile("compras", "registro", (), ())
    assert parse(header) == RcvFile("compras", "registro", (), ())


# --- unusable files ---------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"   \r\n\n", b"\xef\xbb\xbf"])
def test_empty_file(content):
    assert expect_file_error(content) == "El archivo está vacío."


def test_binary_junk():
    expect_file_error(read("basura_binaria.csv"), "no es un archivo de texto")


def test_excel_and_pdf_files():
    expect_file_error(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "planilla Excel")
    expect_file_error(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "es un PDF")


def test_comma_separated_file():
    expect_file_error(REGISTRO.replace(b";", b","), "separado por comas", "punto y coma")


def test_text_that_is_not_csv():
    expect_file_error(b"Hola, esto no es un RCV\n", "punto y coma")


def test_ventas_file_imported_as_compras():
    message = expect_file_error(VENTAS)
    assert message == (
        "Este archivo es un Registro de Ventas del SII y se está importando como Registro de "
        "Compras; súbalo como ventas."
    )


def test_compras_file_imported_as_ventas():
    expect_file_error(REGISTRO, "es un Registro de Compras", "súbalo como compras", kind="ventas")


def test_missing_and_unknown_columns_are_named():
    message = expect_file_error(read("compras_encabezado_incorrecto.csv"))
    assert message == (
        "El encabezado no corresponde al Registro de Compras (Registro) del SII: faltan las "
        "columnas «Monto Neto», «Codigo IVA No Rec.»; columnas desconocidas «Monto Netto», "
        "«Observaciones»."
    )


def test_columns_out_of_order():
    content = REGISTRO.replace(b"Monto Exento;Monto Neto", b"Monto Neto;Monto Exento", 1)
    expect_file_error(content, "orden", "columna 10", "«Monto Exento»")


def test_repeated_column():
    content = REGISTRO.replace(b"Tabacos Puros", b"Tabacos Cigarrillos", 1)
    expect_file_error(content, "faltan las columnas «Tabacos Puros»", "repetidas")


def test_a_header_that_is_not_the_rcv():
    content = b"Fecha;Glosa;Debe;Haber;Saldo\n01/10/2026;Venta;100;0;100\n"
    expect_file_error(content, "no es el encabezado de un Registro de Compras", "Nro;Tipo Doc")


def test_truncated_or_random_input_never_raises_anything_else():
    samples = [REGISTRO[:cut] for cut in range(0, len(REGISTRO), 41)]
    rng = random.Random(29)
    samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(30)]
    samples += [REGISTRO[:800] + bytes(rng.randrange(256) for _ in range(60)) + REGISTRO[860:]]
    for sample in samples:
        try:
            result = parse(sample)
        except RcvFileError as exc:
            assert exc.message
        else:
            assert isinstance(result, RcvFile)


# --- rejected rows ----------------------------------------------------------------------------


def test_bad_rut_and_bad_date_rows_are_rejected_and_the_others_kept():
    result = parse(read("compras_registro_filas_malas.csv"))
    assert result.rejected == (
        RejectedRow(3, "RUT Proveedor: dígito verificador incorrecto «76354771-5»", 33, 10461),
        RejectedRow(4, "Fecha Docto: fecha inválida «31/09/2026»", 33, 1210),
    )
    assert [(row.line, row.folio) for row in result.rows] == [(2, 10460), (5, 1211)]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("Tipo Doc", "999", "Tipo Doc: tipo de documento desconocido «999»"),
        ("Monto Neto", "1.000.000", "Monto Neto: monto inválido «1.000.000»"),
        (
            "Monto IVA Recuperable",
            "diecinueve",
            "Monto IVA Recuperable: monto inválido «diecinueve»",
        ),
        ("Tipo Compra", "Regalo", "Tipo Compra: tipo de compra desconocido «Regalo»"),
        ("Fecha Recepcion", "01/10/2026", "Fecha Recepcion: fecha y hora inválida «01/10/2026»"),
        ("Fecha Docto", "2026-10-01", "Fecha Docto: fecha inválida «2026-10-01»"),
        ("Razon Social", "   ", "Razon Social: falta el valor"),
        ("Monto Total", "", "Monto Total: falta el valor"),
        ("RUT Proveedor", "ABC", "RUT Proveedor: RUT inválido «ABC»"),
        (
            "RUT Proveedor",
            "76.354.771-5",
            "RUT Proveedor: dígito verificador incorrecto «76.354.771-5»",
        ),
        ("Folio", "10452A", "Folio: número inválido «10452A»"),
        ("Folio", "0", "Folio: fuera de rango «0»"),
        ("Razon Social", "X" * 101, "Razon Social: tiene 101 caracteres (máximo 100)"),
        ("Valor Otro Impuesto", "12,5", "Valor Otro Impuesto: monto inválido «12,5»"),
        ("Tasa Otro Impuesto", "diez", "Tasa Otro Impuesto: tasa inválida «diez»"),
    ],
)
def test_row_problems_name_the_column(column, value, reason):
    result = parse(set_field(REGISTRO, 2, column, value))
    assert len(result.rejected) == 1
    rejected = result.rejected[0]
    assert (rejected.line, rejected.reason) == (2, reason)
    assert len(result.rows) == 10
    assert 2 not in by_line(result)


def test_several_problems_in_one_row_are_all_reported():
    content = set_field(REGISTRO, 3, "Fecha Docto", "31/02/2026")
    content = set_field(content, 3, "Monto Neto", "abc")
    content = set_field(content, 3, "RUT Proveedor", "76981123-1")
    (rejected,) = parse(content).rejected
    assert rejected == RejectedRow(
        3,
        "RUT Proveedor: dígito verificador incorrecto «76981123-1»; "
        "Fecha Docto: fecha inválida «31/02/2026»; Monto Neto: monto inválido «abc»",
        33,
        88123,
    )


def test_problem_in_a_continuation_row_rejects_its_document():
    (rejected,) = parse(set_field(REGISTRO, 13, "Valor Otro Impuesto", "veinte mil")).rejected
    assert rejected == RejectedRow(
        11, "Valor Otro Impuesto: monto inválido «veinte mil»", 33, 55021
    )


def test_ventas_incomplete_reference():
    content = set_field(VENTAS, 5, "Folio Docto. Referencia", "")
    (rejected,) = parse(content, kind="ventas").rejected
    assert (rejected.line, rejected.tipo, rejected.folio) == (5, 61, 301)
    assert rejected.reason.startswith("Tipo Docto. Referencia / Folio Docto. Referencia:")


def test_ventas_bad_cliente_rut():
    (rejected,) = parse(set_field(VENTAS, 2, "Rut cliente", "96790240-4"), kind="ventas").rejected
    assert rejected == RejectedRow(
        2, "Rut cliente: dígito verificador incorrecto «96790240-4»", 33, 1501
    )


def test_duplicate_document():
    lines = REGISTRO.decode().split("\n")
    content = "\n".join([*lines[:3], lines[1].replace("1;", "99;", 1), *lines[3:]]).encode()
    result = parse(content)
    assert result.rejected == (
        RejectedRow(
            4,
            "Documento repetido (tipo 33, folio 10452, RUT Proveedor 76354771-K): ya aparece en "
            "la línea 2.",
            33,
            10452,
        ),
    )
    assert by_line(result)[2] == FACTURA_LOS_ANDES


def test_continuation_row_without_its_document():
    lines = REGISTRO.decode().split("\n")
    content = "\n".join([*lines[:10], *lines[11:]]).encode()  # drop the main row of folio 55021
    result = parse(content)
    assert [(r.line, r.folio) for r in result.rejected] == [(11, 55021), (12, 55021)]
    assert all("sin la fila del documento" in r.reason for r in result.rejected)
    assert len(result.rows) == 10


def test_row_with_missing_columns():
    lines = REGISTRO.decode().split("\n")
    lines[2] = ";".join(lines[2].split(";")[:20])
    (rejected,) = parse("\n".join(lines).encode()).rejected
    assert rejected.line == 3
    assert rejected.reason.startswith("La fila tiene 20 columnas y el encabezado 27")


def test_row_with_a_semicolon_inside_a_value():
    # Every later value moves one column to the right; the trailing empty columns absorb it.
    content = REGISTRO.replace(b"ENERGIA AUSTRAL S.A.", b"ENERGIA; AUSTRAL S.A.")
    (rejected,) = parse(content).rejected
    assert (rejected.line, rejected.tipo, rejected.folio) == (10, 33, None)
    assert rejected.reason.startswith("Folio: número inválido «AUSTRAL S.A.»; Fecha Docto:")
    assert len(parse(content).rows) == 10


def test_quoted_value_with_a_semicolon_is_fine():
    content = REGISTRO.replace(b"ENERGIA AUSTRAL S.A.", b'"ENERGIA; AUSTRAL S.A."')
    assert by_line(parse(content))[10].razon_social == "ENERGIA; AUSTRAL S.A."


def test_quote_left_open_does_not_swallow_the_next_lines():
    content = REGISTRO.replace(b"0;;;;0;24;126000;31.5;", b'0;;;;0;24;126000;31.5;"')
    result = parse(content)
    assert result.rejected == (
        RejectedRow(11, "La línea no se puede leer como CSV (¿comillas sin cerrar?)."),
        RejectedRow(
            12, "Fila de «otros impuestos» sin la fila del documento al que pertenece.", 33, 55021
        ),
        RejectedRow(
            13, "Fila de «otros impuestos» sin la fila del documento al que pertenece.", 33, 55021
        ),
    )
    assert sorted(by_line(result)) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 14]


# --- arguments --------------------------------------------------------------------------------


def test_contribuyente_rut_is_validated():
    with pytest.raises(ValueError, match="dígito verificador"):
        parse_rcv(REGISTRO, kind="compras", contribuyente_rut="76086428-4")
    with pytest.raises(ValueError):
        parse_rcv(REGISTRO, kind="compras", contribuyente_rut="")
    # Any usual spelling of a valid RUT is fine.
    assert parse_rcv(REGISTRO, kind="compras", contribuyente_rut="76.086.428-5").rows


@pytest.mark.parametrize("kind", ["boletas", "COMPRAS", "", None])
def test_unknown_kind(kind):
    with pytest.raises(ValueError, match="compras"):
        parse_rcv(REGISTRO, kind=kind, contribuyente_rut=COMPANY)


def test_unknown_estado():
    with pytest.raises(ValueError, match="Estado desconocido"):
        parse(REGISTRO, estado="aceptado")


def test_results_are_frozen():
    row = parse(REGISTRO).rows[0]
    with pytest.raises(AttributeError):
        row.folio = 1
