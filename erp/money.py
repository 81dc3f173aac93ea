"""Pesos and their rounding. Pure: no Django.

CLP amounts are integers. Quantities and unit prices are Decimal. The SII rounds half up
(0.5 goes away from zero), never banker's rounding, and only where DOMAIN.md §8 says.
"""

import re
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


class NumberError(ValueError):
    """Text that is not a number as Chileans write it, or that could be read two ways
    (`ambiguous`)."""

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


_GROUPED = re.compile(r"^\d{1,3}(\.\d{3})+$")  # 1.000 · 1.234.567
_GROUPED_WITH_DECIMALS = re.compile(r"^\d{1,3}(\.\d{3})*,\d+$")  # 1.000,50 · 2,5
_PLAIN = re.compile(r"^\d+$")
_COMMA_DECIMAL = re.compile(r"^\d+,\d+$")  # 1000,5
_DOT_DECIMAL = re.compile(r"^\d+\.\d+$")  # 2.5 (a decimal point, typed or pasted)
_LOOKS_GROUPED_BY_COMMA = re.compile(r"^[1-9]\d{0,2}(,\d{3})+$")  # 1,000 · 2,500 (not 0,125)


def parse_decimal(text: str) -> Decimal:
    """A number typed as es-CL writes it: dot for thousands, comma for decimals.

    `1.234.567` → 1234567, `1.234,5` → 1234.5, `2,5` → 2.5, `1000` → 1000; a lone decimal point
    that cannot be a thousands group (`2.5`, `1000.25`) is read as a decimal point. Text that
    could mean two numbers (`1,000`: one thousand, or one?) or none raises NumberError with
    the reason in Spanish.
    """
    raw = (text or "").strip().replace(" ", "").replace("\u00a0", "").removeprefix("$")
    negative = raw.startswith("-")
    body = raw[1:] if negative else raw
    if not body:
        raise NumberError("Ingrese un número.")
    if _LOOKS_GROUPED_BY_COMMA.match(body):
        thousands = body.replace(",", ".")
        raise NumberError(
            f"«{text.strip()}» es ambiguo: en Chile el punto separa los miles y la coma los "
            f"decimales. Escriba {thousands} si son miles.",
            ambiguous=True,
        )
    if _PLAIN.match(body) or _GROUPED.match(body):
        number = Decimal(body.replace(".", ""))
    elif _GROUPED_WITH_DECIMALS.match(body) or _COMMA_DECIMAL.match(body):
        number = Decimal(body.replace(".", "").replace(",", "."))
    elif _DOT_DECIMAL.match(body):
        number = Decimal(body)
    else:
        raise NumberError(
            f"«{text.strip()}» no es un número: use punto para miles y coma para decimales "
            "(1.234.567 o 1.234,5)."
        )
    return -number if negative else number
