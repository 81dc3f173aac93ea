"""Pesos and their rounding. Pure: no Django.

CLP amounts are integers. Quantities and unit prices are Decimal. The SII rounds half up
(0.5 goes away from zero), never banker's rounding, and only where DOMAIN.md §8 says.
"""

from decimal import ROUND_HALF_UP, Decimal

ONE = Decimal(1)
HUNDRED = Decimal(100)


def round_clp(value: Decimal | int) -> int:
    """Round to whole pesos, half up (away from zero), as the SII does."""
    if isinstance(value, int):
        return value
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be Decimal or int, not {type(value).__name__}")
    return int(value.quantize(ONE, rounding=ROUND_HALF_UP))


def percent_of(amount: Decimal | int, pct: Decimal) -> int:
    """`pct` percent of `amount`, rounded half up to whole pesos."""
    return round_clp(Decimal(amount) * pct / HUNDRED)


def format_clp(amount: int | Decimal | None) -> str:
    """`1234567` -> `$ 1.234.567`; negative amounts keep their sign before the peso sign."""
    if amount is None:
        return ""
    value = round_clp(amount) if isinstance(amount, Decimal) else int(amount)
    sign = "-" if value < 0 else ""
    return f"{sign}$ {abs(value):,}".replace(",", ".")


def format_decimal(value: Decimal | int | None, places: int | None = None) -> str:
    """Chilean decimal notation: `1234.5` -> `1.234,5`; trailing zeros dropped unless `places`."""
    if value is None:
        return ""
    number = Decimal(value)
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        text = f"{number:,.{places}f}"
    else:
        normalized = number.normalize()
        if normalized == normalized.to_integral():
            normalized = normalized.quantize(ONE)
        text = f"{normalized:,f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def plain_decimal(value: Decimal) -> str:
    """`Decimal("20.000000")` -> `"20"`, `Decimal("4.5")` -> `"4.5"`: no exponent, no padding.

    For machine-readable inputs (form fields, JSON); people get format_decimal."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
