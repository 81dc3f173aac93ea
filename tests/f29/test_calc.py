"""f29.calc: the F29 boxes from a period's aggregates, checked against hand arithmetic."""

from dataclasses import FrozenInstanceError
from decimal import Decimal

import pytest

from f29.calc import (
    BOX_CODES,
    LABELS,
    PURCHASE_NOTAS_CREDITO,
    SALES_NOTAS_CREDITO,
    Box,
    F29Input,
    PurchaseAggregate,
    SalesAggregate,
    TrailPart,
    compute,
)


def sale(tipo, count, neto=0, exento=0, iva=0, iva_retenido=0, total=None):
    if total is None:
        total = neto + exento + iva - iva_retenido
    return SalesAggregate(tipo, count, neto, exento, iva, iva_retenido, total)


def purchase(tipo, fixed_asset, count, neto=0, exento=0, recup=0, no_recup=0, uso=0, total=None):
    if total is None:
        total = neto + exento + recup + no_recup + uso
    return PurchaseAggregate(tipo, fixed_asset, count, neto, exento, recup, no_recup, uso, total)


# A full month. Sales (issued DTEs accepted by the SII):
MONTH_SALES = (
    sale(33, 12, neto=1_000_000, exento=50_000, iva=190_000),  # afectas with an exempt part
    sale(39, 40, neto=420_168, iva=79_832),  # boletas: 500.000 gross
    sale(34, 3, exento=300_000),  # facturas exentas
    sale(41, 5, exento=24_932),  # boletas exentas
    sale(61, 2, neto=100_000, exento=10_000, iva=19_000),  # notas de crédito
    sale(56, 1, neto=20_000, iva=3_800),  # nota de débito
    sale(110, 2, exento=800_000),  # facturas de exportación
    sale(112, 1, exento=50_000),  # nota de crédito de exportación
    sale(46, 2, neto=200_000, iva=38_000, iva_retenido=38_000),  # facturas de compra emitidas
    sale(52, 4, neto=90_000, iva=17_100),  # guías: feed no box
    # A liquidación factura we issued as comisionista (the SII's worked example): its débito
    # is only its commission's IVA, its PPM income only its commission.
    SalesAggregate(43, 1, 2_000_000, 0, 380_000, 0, 2_261_000, 100_000, 0, 19_000),
)
# Purchases in the register:
MONTH_PURCHASES = (
    purchase(33, False, 8, neto=600_000, exento=20_000, recup=95_000, no_recup=4_999, uso=14_001),
    purchase(46, False, 2, neto=200_000, recup=38_000),  # our facturas de compra: credit too
    purchase(33, True, 1, neto=200_000, recup=38_000),  # a fixed asset
    purchase(61, False, 1, neto=50_000, recup=7_000, uso=2_500),  # NC received, common use
    purchase(61, True, 1, neto=10_000, recup=1_900),  # NC received on a fixed asset
    purchase(56, False, 1, neto=10_000, recup=1_900),  # ND received
    purchase(914, False, 1, neto=100_000, recup=19_000),  # DIN del giro
    purchase(914, True, 1, neto=50_000, recup=9_500),  # DIN activo fijo
    purchase(34, False, 1, exento=30_000),  # exempt purchase: feeds no box
)
MONTH = F29Input(
    sales=MONTH_SALES,
    purchases=MONTH_PURCHASES,
    remanente_anterior=15_000,
    ppm_rate=Decimal("1.5"),
    uso_comun_factor=Decimal("0.6"),
)

MONTH_EXPECTED = {
    # --- Débitos
    "585": 2,  # tipo 110
    "20": 750_000,  # total of 110 (800.000) − total of 112 (50.000)
    "586": 8,  # 34 (3) + 41 (5); the 33s with an exempt part add no documents
    "142": 364_932,  # exento 33 50.000 + 34 300.000 + 41 24.932 = 374.932, − NC 61 10.000
    "503": 12,
    "502": 190_000,
    "110": 40,
    "111": 79_832,
    "512": 1,
    "513": 3_800,
    "509": 2,
    "510": 19_000,
    "500": 1,  # tipo 43
    "501": 19_000,  # the commission's IVA, not the 380.000 of the sales it liquidates
    "538": 273_632,  # 190.000 + 79.832 + 3.800 + 19.000 − 19.000
    # --- Créditos (common-use share 0.6)
    "519": 10,  # 33 (8) + 46 (2), not fixed assets
    "520": 141_401,  # 95.000 + 38.000 + round(14.001 × 0.6 = 8.400,6 → 8.401)
    "524": 1,
    "525": 38_000,
    "527": 2,  # 61 del giro (1) + 61 activo fijo (1)
    "528": 10_400,  # 7.000 + 1.900 + round(2.500 × 0.6 = 1.500)
    "531": 1,
    "532": 1_900,
    "534": 1,
    "535": 19_000,
    "536": 1,
    "553": 9_500,
    "504": 15_000,
    "537": 214_401,  # 141.401 + 38.000 − 10.400 + 1.900 + 19.000 + 9.500 + 15.000
    # --- Impuesto determinado
    "89": 59_231,  # 273.632 − 214.401
    "77": 0,
    # --- PPM
    # neto of 33, 39, 56: 1.000.000 + 420.168 + 20.000 = 1.440.168
    # exento of 33, 34, 41, 110: 50.000 + 300.000 + 24.932 + 800.000 = 1.174.932
    # the commission of the 43: 100.000
    # less neto + exento of 61 (110.000) and 112 (50.000): 2.715.100 − 160.000
    "563": 2_555_100,
    "115": Decimal("1.5"),
    "62": 38_327,  # 2.555.100 × 1,5 / 100 = 38.326,5 → half up (banker's would give 38.326)
    # --- Retenciones
    "39": 38_000,  # iva_retenido of the issued facturas de compra (46)
    # --- Total
    "595": 135_558,  # 59.231 + 38.327 + 38.000
    "91": 135_558,
}


def test_full_month_box_by_box():
    result = compute(MONTH)
    for code, expected in MONTH_EXPECTED.items():
        assert result.value(int(code)) == expected, f"box {code}"
    assert result.as_json() == MONTH_EXPECTED
    assert list(result.as_json()) == [str(code) for code in BOX_CODES]
    assert isinstance(result.value(115), Decimal)
    assert all(type(v) is int for k, v in result.as_json().items() if k != "115")


def test_boxes_in_form_order_with_spanish_labels_and_sections():
    result = compute(MONTH)
    assert tuple(result.boxes) == BOX_CODES
    assert len(BOX_CODES) == len(MONTH_EXPECTED)
    sections = []
    for box in result.boxes.values():
        if not sections or sections[-1] != box.section:
            sections.append(box.section)
    assert sections == [
        "Débitos",
        "Créditos",
        "Impuesto determinado",
        "PPM",
        "Retenciones",
        "Total",
    ]
    assert result.boxes[502].label == "Débitos facturas emitidas"
    assert result.boxes[503].label == "Cantidad de facturas emitidas"
    assert result.boxes[538].label == "Total débitos"
    assert result.boxes[537].label == "Total créditos"
    assert result.boxes[89].label == "IVA determinado"
    assert result.boxes[77].label == "Remanente de crédito fiscal para el mes siguiente"
    assert result.boxes[504].label == "Remanente crédito fiscal mes anterior"
    assert result.boxes[91].label == "Total a pagar dentro del plazo legal"
    assert result.boxes[563].label == "Base imponible PPM"
    assert result.boxes[115].label == "Tasa PPM (%)"
    assert result.boxes[62].label == "PPM neto determinado"
    assert all(result.boxes[code].label == LABELS[code] for code in BOX_CODES)


def test_credits_exceed_debits():
    data = F29Input(
        sales=(
            sale(33, 1, neto=100_000, iva=19_000),
            sale(46, 1, neto=10_000, iva=1_900, iva_retenido=1_900),
        ),
        purchases=(purchase(33, False, 1, neto=500_000, recup=95_000),),
        remanente_anterior=10_000,
        ppm_rate=Decimal(1),
    )
    result = compute(data)
    assert result.value(538) == 19_000
    assert result.value(537) == 105_000  # 95.000 + 10.000 carried in
    assert result.value(89) == 0
    assert result.value(77) == 86_000  # 105.000 − 19.000, for next month's 504
    assert result.value(563) == 100_000  # the 46 is a purchase: not in the PPM base
    assert result.value(62) == 1_000  # 1 % of 100.000
    assert result.value(39) == 1_900
    assert result.value(595) == 2_900  # 0 + 1.000 + 1.900: only PPM and retention
    assert result.value(91) == 2_900


def test_debits_equal_credits_leave_neither_tax_nor_remanente():
    result = compute(
        F29Input(
            sales=(sale(33, 1, neto=100_000, iva=19_000),),
            purchases=(purchase(30, False, 1, neto=100_000, recup=19_000),),
        )
    )
    assert (result.value(538), result.value(537)) == (19_000, 19_000)
    assert (result.value(89), result.value(77)) == (0, 0)


def test_negative_ppm_base_is_kept_and_gives_no_ppm():
    result = compute(
        F29Input(sales=(sale(61, 1, neto=40_000, iva=7_600),), ppm_rate=Decimal("0.25"))
    )
    assert result.value(563) == -40_000
    assert result.value(62) == 0
    assert result.value(142) == 0
    assert result.value(538) == -7_600  # débitos go negative: the NC exceeds the month's sales
    assert result.value(89) == 0
    assert result.value(77) == 7_600


@pytest.mark.parametrize(
    ("factor", "uso", "credit"),
    [
        (Decimal("0.5"), 1_001, 501),  # 500,5 → half up
        (Decimal("0.5"), 1_005, 503),  # 502,5 → 503 (banker's would give 502)
        (Decimal(0), 1_000, 0),
        (Decimal(1), 1_000, 1_000),
    ],
)
def test_common_use_share_is_rounded_half_up(factor, uso, credit):
    data = F29Input(purchases=(purchase(33, False, 1, uso=uso),), uso_comun_factor=factor)
    assert compute(data).value(520) == credit


def test_common_use_is_summed_before_rounding():
    # Two aggregates of the same box, 1.001 × 0.5 = 500,5 each: rounded once, 1.001; per
    # aggregate it would be 501 + 501.
    data = F29Input(
        purchases=(purchase(30, False, 1, uso=1_001), purchase(33, False, 1, uso=1_001)),
        uso_comun_factor=Decimal("0.5"),
    )
    assert compute(data).value(520) == 1_001


def test_trail_of_document_boxes():
    result = compute(MONTH)
    assert result.boxes[510].parts == (
        TrailPart("sales", SALES_NOTAS_CREDITO, None, "iva", count=2, amount=19_000, sign=1),
    )
    assert SALES_NOTAS_CREDITO == (60, 61)
    assert result.boxes[509].parts == (TrailPart("sales", (60, 61), None, "count", 2, 2),)
    # A subtracting part carries its sign and an amount already signed.
    assert result.boxes[142].parts == (
        TrailPart("sales", (30, 32, 33, 34, 35, 38, 39, 41, 55, 56), None, "exento", 61, 374_932),
        TrailPart("sales", (60, 61), None, "exento", 2, -10_000, sign=-1),
    )
    assert result.boxes[20].parts[1] == TrailPart("sales", (112,), None, "total", 1, -50_000, -1)
    # Purchases say which side of the fixed-asset flag they took; NCs take both.
    assert result.boxes[520].parts == (
        TrailPart("purchases", (30, 33, 46), False, "iva_recuperable", 10, 133_000),
        TrailPart("purchases", (30, 33, 46), False, "iva_uso_comun", 10, 8_401),  # credited share
    )
    assert result.boxes[525].parts[0].fixed_asset is True
    assert result.boxes[528].parts[0] == TrailPart(
        "purchases", PURCHASE_NOTAS_CREDITO, None, "iva_recuperable", 2, 8_900
    )
    assert result.boxes[553].parts[0] == TrailPart(
        "purchases", (914,), True, "iva_recuperable", 1, 9_500
    )
    assert result.boxes[39].parts == (TrailPart("sales", (46,), None, "iva_retenido", 2, 38_000),)
    assert len(result.boxes[563].parts) == 6
    assert [p.sign for p in result.boxes[563].parts] == [1, 1, 1, 1, -1, -1]
    assert result.boxes[501].parts == (TrailPart("sales", (43,), None, "comision_iva", 1, 19_000),)


def test_trail_of_input_boxes():
    result = compute(MONTH)
    assert result.boxes[504].parts == (
        TrailPart("input", (), None, "remanente_anterior", count=0, amount=15_000),
    )
    assert result.boxes[115] == Box(115, "Tasa PPM (%)", "PPM", Decimal("1.5"))


def test_trail_of_derived_boxes():
    result = compute(MONTH)
    total_debitos = result.boxes[538]
    assert total_debitos.formula == "502 + 111 + 513 + 501 − 510"
    assert total_debitos.inputs == (502, 111, 513, 501, 510)
    assert total_debitos.parts == ()
    assert result.boxes[537].inputs == (520, 525, 528, 532, 535, 553, 504)
    assert result.boxes[89].inputs == (538, 537)
    assert result.boxes[62].inputs == (563, 115)
    assert result.boxes[595].inputs == (89, 62, 39)
    assert result.boxes[91].inputs == (595,)


def test_every_box_is_explained():
    result = compute(MONTH)
    for code, box in result.boxes.items():
        assert box.code == code
        if box.inputs:
            assert box.formula and not box.parts
            assert all(str(i) in box.formula and i in result.boxes for i in box.inputs)
        elif code != 115:
            assert box.parts, f"box {code} has no trail"
            # Parts of a box add up to it (the common-use part is already the credited share).
            assert sum(p.amount for p in box.parts) == box.value, f"box {code}"
            assert all(p.amount == p.sign * abs(p.amount) or p.amount == 0 for p in box.parts)


def test_empty_input_gives_all_zero():
    result = compute(F29Input())
    assert result.as_json() == {str(code): 0 for code in BOX_CODES}
    assert result.value(115) == Decimal(0)
    assert result.boxes[510].parts == (TrailPart("sales", (60, 61), None, "iva", 0, 0),)


def test_result_is_read_only():
    result = compute(MONTH)
    with pytest.raises(TypeError):
        result.boxes[502] = result.boxes[503]  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        result.boxes[502].value = 0  # type: ignore[misc]
    with pytest.raises(KeyError, match="box 48"):
        result.value(48)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (F29Input(sales=(sale(33, -1),)), r"SalesAggregate\(tipo=33\)\.count must not be negative"),
        (
            F29Input(purchases=(purchase(33, False, -2),)),
            r"PurchaseAggregate\(tipo=33\)\.count must not be negative",
        ),
        (F29Input(sales=(sale(61, 1, iva=-19),)), r"\.iva must not be negative"),
        (F29Input(uso_comun_factor=Decimal("1.01")), "uso_comun_factor must be between 0 and 1"),
        (F29Input(uso_comun_factor=Decimal("-0.1")), "uso_comun_factor must be between 0 and 1"),
        (F29Input(ppm_rate=Decimal("-0.5")), "ppm_rate .* must not be negative"),
        (F29Input(ppm_rate=Decimal("NaN")), "ppm_rate must be a finite number"),
        (F29Input(remanente_anterior=-1), "remanente_anterior .* must not be negative"),
    ],
)
def test_invalid_input_raises_value_error(data, message):
    with pytest.raises(ValueError, match=message):
        compute(data)


@pytest.mark.parametrize(
    "data",
    [
        F29Input(ppm_rate=1.5),  # type: ignore[arg-type]
        F29Input(uso_comun_factor=0.6),  # type: ignore[arg-type]
        F29Input(remanente_anterior=1.0),  # type: ignore[arg-type]
        F29Input(sales=(SalesAggregate(33, 1, 100.0, 0, 19, 0, 119),)),  # type: ignore[arg-type]
        F29Input(sales=(purchase(33, False, 1),)),  # type: ignore[arg-type]
    ],
)
def test_floats_and_wrong_types_raise_type_error(data):
    with pytest.raises(TypeError):
        compute(data)
