from decimal import Decimal

import pytest

from erp.money import format_clp, format_decimal, percent_of, round_clp


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.5"), 1),
        (Decimal("1.5"), 2),
        (Decimal("2.5"), 3),  # half up, not banker's (which gives 2)
        (Decimal("2.4999"), 2),
        (Decimal("-2.5"), -3),  # away from zero
        (7, 7),
    ],
)
def test_round_clp_is_half_up(value, expected):
    assert round_clp(value) == expected


def test_round_clp_refuses_float():
    with pytest.raises(TypeError):
        round_clp(2.5)  # type: ignore[arg-type]


def test_percent_of():
    assert percent_of(150, Decimal(19)) == 29  # 28.5 rounds up
    assert percent_of(Decimal("5971.5"), Decimal(10)) == 597


@pytest.mark.parametrize(
    ("amount", "text"),
    [(1234567, "$ 1.234.567"), (0, "$ 0"), (999, "$ 999"), (-5000, "-$ 5.000"), (None, "")],
)
def test_format_clp(amount, text):
    assert format_clp(amount) == text


def test_format_decimal_is_chilean():
    assert format_decimal(Decimal("1234.500000")) == "1.234,5"
    assert format_decimal(Decimal("12.000000")) == "12"
    assert format_decimal(Decimal("0.25"), places=2) == "0,25"


def test_plain_decimal_has_no_exponent():
    from erp.money import plain_decimal

    assert plain_decimal(Decimal("20.000000")) == "20"
    assert plain_decimal(Decimal("4290.000000")) == "4290"
    assert plain_decimal(Decimal("18990.500000")) == "18990.5"
    assert plain_decimal(Decimal("0")) == "0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234.567", Decimal("1234567")),
        ("1.234,5", Decimal("1234.5")),
        ("2,5", Decimal("2.5")),
        ("1.000", Decimal("1000")),
        ("1.000,50", Decimal("1000.50")),
        ("1000", Decimal("1000")),
        ("0,125", Decimal("0.125")),
        ("2.5", Decimal("2.5")),  # a lone decimal point that cannot be a thousands group
        ("1000.25", Decimal("1000.25")),
        ("$ 1.500", Decimal("1500")),
        (" 12 ", Decimal("12")),
        ("-3,5", Decimal("-3.5")),
    ],
)
def test_numbers_as_chileans_type_them(text, expected):
    from erp.money import parse_decimal

    assert parse_decimal(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("1,000", "ambiguo"),
        ("2,500", "Escriba 2.500 si son miles"),
        ("abc", "no es un número"),
        ("1.2.3", "no es un número"),
        ("1,2,3", "no es un número"),
        ("", "Ingrese un número"),
    ],
)
def test_ambiguous_or_wrong_numbers_are_refused_with_the_reason(text, says):
    from erp.money import NumberError, parse_decimal

    with pytest.raises(NumberError, match=says):
        parse_decimal(text)
