"""Tax periods (months): a period is the date of its first day. Pure: no Django."""

import re
from datetime import date, timedelta

_PERIOD = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


class InvalidPeriod(ValueError):
    pass


def month_start(day: date) -> date:
    return day.replace(day=1)


def parse_period(text: str) -> date:
    """ "2026-10" → date(2026, 10, 1); anything else raises InvalidPeriod with a Spanish reason."""
    match = _PERIOD.match(text or "")
    if not match:
        raise InvalidPeriod(f"Período inválido «{text}»: use AAAA-MM, p. ej. 2026-10.")
    year, month = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12 and 2000 <= year <= 2100):
        raise InvalidPeriod(f"Período inválido «{text}»: el mes va de 01 a 12.")
    return date(year, month, 1)


def period_key(period: date) -> str:
    """The period as the URL and the API spell it: "2026-10"."""
    return f"{period.year:04d}-{period.month:02d}"


def period_label(period: date) -> str:
    """The period as people read it in Chile: "10-2026"."""
    return f"{period.month:02d}-{period.year:04d}"


def previous_period(period: date) -> date:
    return month_start(period - timedelta(days=1))


def next_period(period: date) -> date:
    return month_start(period.replace(day=28) + timedelta(days=4))


def period_end(period: date) -> date:
    """The last day of the month."""
    return next_period(period) - timedelta(days=1)
