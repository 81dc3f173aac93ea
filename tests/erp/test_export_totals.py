"""Export totals in the operation's currency (dte/core/EXPORTS.md §1.6, §1.7)."""

from decimal import Decimal

import pytest

from erp.totals import (
    GlobalAdjustment,
    LineInput,
    Movement,
    TotalsError,
    ValueType,
    compute_export_totals,
)

D = Decimal


def test_dollar_lines_round_to_cents_and_discounts_to_whole_units():
    totals = compute_export_totals(
        [
            LineInput(D("3"), D("10.335")),  # 31.005 → 31.01
            LineInput(D("2.5"), D("101.10"), discount_pct=D("10")),  # 252.75, −25 (integer)
        ],
        decimals=2,
        adjustments=[
            GlobalAdjustment(Movement.SURCHARGE, ValueType.AMOUNT, D("120.456")),  # freight
            GlobalAdjustment(Movement.SURCHARGE, ValueType.AMOUNT, D("15")),  # insurance
        ],
        tipo_cambio=D("943.57"),
    )
    assert [(a.gross, a.discount, a.amount) for a in totals.lines] == [
        (D("31.01"), 0, D("31.01")),
        (D("252.75"), 25, D("227.75")),
    ]
    assert [a.amount for a in totals.adjustments] == [D("120.46"), D("15.00")]
    assert totals.monto_total == totals.monto_exento == D("394.22")
    assert totals.monto_total_pesos == 371_974  # 394.22 × 943.57 = 371.974,1654


def test_a_yen_invoice_has_no_decimals_and_a_percent_discount_applies_to_the_running_total():
    totals = compute_export_totals(
        [LineInput(D("7"), D("1234.5"))],
        decimals=0,
        adjustments=[GlobalAdjustment(Movement.DISCOUNT, ValueType.PERCENT, D("3"))],
    )
    assert totals.lines[0].amount == D("8642")  # 8.641,5 rounds half up
    assert totals.adjustments[0].amount == D("259")  # 3 % of 8.642 = 259,26
    assert totals.monto_total == D("8383") and totals.monto_total_pesos is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"decimals": 5}, "moneda"),
        ({"decimals": 2, "tipo_cambio": D(0)}, "tipo_cambio"),
        (
            {
                "decimals": 2,
                "adjustments": [GlobalAdjustment(Movement.DISCOUNT, ValueType.AMOUNT, D(500))],
            },
            "adjustments",
        ),
    ],
)
def test_impossible_exports_are_refused(kwargs, field):
    with pytest.raises(TotalsError) as info:
        compute_export_totals([LineInput(D(1), D(100))], **kwargs)
    assert info.value.field == field
