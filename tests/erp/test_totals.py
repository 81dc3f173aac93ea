"""Worked examples of DOMAIN.md §8 (and §5 for boletas), checked by hand and, where possible,
against documents the SII accepted."""

from decimal import Decimal as D
from pathlib import Path

import pytest
from lxml import etree

from erp.doctypes import TipoDte
from erp.totals import (
    GlobalAdjustment,
    LineInput,
    Movement,
    TotalsError,
    ValueType,
    compute_totals,
)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "sii" / "samples" / "dte"


def test_two_affected_lines():
    t = compute_totals(
        [LineInput(D(10), D(1000)), LineInput(D(3), D(2500))], tipo_dte=TipoDte.FACTURA
    )
    assert [a.amount for a in t.lines] == [10000, 7500]
    assert (t.monto_neto, t.monto_exento, t.tasa_iva, t.iva, t.monto_total) == (
        17500,
        0,
        19,
        3325,
        20825,
    )


def test_line_discount_is_rounded_on_its_own():
    # 3 × 1.990,5 = 5.971,5 -> MontoItem before discount 5.972; 10 % of 5.971,5 = 597,15 -> 597
    t = compute_totals([LineInput(D(3), D("1990.5"), D(10))], tipo_dte=TipoDte.FACTURA)
    line = t.lines[0]
    assert (line.gross, line.discount, line.amount) == (5972, 597, 5375)
    assert t.iva == 1021  # 5375 × 0,19 = 1021,25
    assert t.monto_total == 6396


def test_iva_rounds_half_up():
    t = compute_totals([LineInput(D(1), D(150))], tipo_dte=TipoDte.FACTURA)
    assert t.iva == 29  # 28,5 -> 29 (banker's rounding would say 28)


def test_fractional_quantity():
    t = compute_totals([LineInput(D("2.5"), D("1333"))], tipo_dte=TipoDte.FACTURA)
    assert t.lines[0].amount == 3333  # 3.332,5 -> 3.333


def test_exempt_line_and_global_discount_on_affected_only():
    t = compute_totals(
        [LineInput(D(1), D(100000)), LineInput(D(1), D(50000), exempt=True)],
        tipo_dte=TipoDte.FACTURA,
        adjustments=[GlobalAdjustment(Movement.DISCOUNT, ValueType.PERCENT, D(10))],
    )
    assert t.adjustments[0].amount == 10000
    assert (t.monto_neto, t.monto_exento, t.iva, t.monto_total) == (90000, 50000, 17100, 157100)


def test_global_amount_surcharge_and_discount_on_exempt():
    t = compute_totals(
        [LineInput(D(2), D(20000)), LineInput(D(1), D(30000), exempt=True)],
        tipo_dte=TipoDte.FACTURA,
        adjustments=[
            GlobalAdjustment(Movement.SURCHARGE, ValueType.AMOUNT, D(5000)),
            GlobalAdjustment(Movement.DISCOUNT, ValueType.PERCENT, D("12.5"), exempt=True),
        ],
    )
    assert [a.amount for a in t.adjustments] == [5000, 3750]
    assert (t.monto_neto, t.monto_exento, t.iva, t.monto_total) == (45000, 26250, 8550, 79800)


def test_exempt_only_type_treats_every_line_as_exempt():
    t = compute_totals(
        [LineInput(D(4), D(80000)), LineInput(D(1), D(999))], tipo_dte=TipoDte.FACTURA_EXENTA
    )
    assert (t.monto_neto, t.monto_exento, t.tasa_iva, t.iva, t.monto_total) == (
        0,
        320999,
        0,
        0,
        320999,
    )
    assert all(a.exempt for a in t.lines)


def test_boleta_prices_include_iva():
    t = compute_totals([LineInput(D(3), D(1190))], tipo_dte=TipoDte.BOLETA)
    assert (t.monto_neto, t.iva, t.monto_total) == (3000, 570, 3570)
    t = compute_totals([LineInput(D(2), D(4290))], tipo_dte=TipoDte.BOLETA)
    assert (t.monto_neto, t.iva, t.monto_total) == (7210, 1370, 8580)  # 8580 / 1,19 = 7210,08


def test_factura_de_compra_retains_the_iva():
    t = compute_totals([LineInput(D(1), D(100000))], tipo_dte=TipoDte.FACTURA_COMPRA)
    assert (t.monto_neto, t.iva, t.iva_retenido, t.monto_total) == (100000, 19000, 19000, 100000)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (LineInput(D(-1), D(1000)), "quantity"),
        (LineInput(D(0), D(1000)), "quantity"),
        (LineInput(D(1), D(-5)), "unit_price"),
        (LineInput(D(1), D(100), D(101)), "discount_pct"),
    ],
)
def test_impossible_lines_are_refused(line, field):
    with pytest.raises(TotalsError) as info:
        compute_totals([line], tipo_dte=TipoDte.FACTURA)
    assert info.value.field == field


def test_amounts_beyond_18_digits_are_refused():
    with pytest.raises(TotalsError, match="18 dígitos"):
        compute_totals([LineInput(D(10**12), D(10**12))], tipo_dte=TipoDte.FACTURA)


def test_global_discount_cannot_exceed_the_subtotal():
    with pytest.raises(TotalsError, match="superan"):
        compute_totals(
            [LineInput(D(1), D(1000))],
            tipo_dte=TipoDte.FACTURA,
            adjustments=[GlobalAdjustment(Movement.DISCOUNT, ValueType.AMOUNT, D(1001))],
        )


def _text(node, path: str) -> str | None:
    # `{*}` matches with or without the SiiDte namespace (the real NC sample has none).
    return node.findtext("/".join(f"{{*}}{part}" for part in path.split("/")))


@pytest.mark.parametrize(
    "sample",
    ["EnvioDTE_F60T33_ejemplo_oficial_SII.xml", "DTE--96670340-7--61--110616.xml"],
)
def test_totals_of_sii_accepted_documents(sample):
    documento = next(etree.parse(str(SAMPLES / sample)).getroot().iter("{*}Documento"))
    detalle = documento.findall("{*}Detalle")
    lines = [
        LineInput(D(_text(d, "QtyItem")), D(_text(d, "PrcItem")), exempt=_text(d, "IndExe") == "1")
        for d in detalle
    ]
    tipo = TipoDte(int(_text(documento, "Encabezado/IdDoc/TipoDTE")))
    t = compute_totals(lines, tipo_dte=tipo)
    assert [a.amount for a in t.lines] == [int(_text(d, "MontoItem")) for d in detalle]
    assert t.monto_neto == int(_text(documento, "Encabezado/Totales/MntNeto"))
    assert t.iva == int(_text(documento, "Encabezado/Totales/IVA"))
    assert t.monto_total == int(_text(documento, "Encabezado/Totales/MntTotal"))
