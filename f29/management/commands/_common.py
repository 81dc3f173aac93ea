"""What the F29 commands share: finding the company, and a one-line reason for an error."""

from django.core.management.base import CommandError

from erp.errors import DomainError
from erp.models import Company
from erp.periods import InvalidPeriod, parse_period
from erp.rut import InvalidRut, normalize_rut


def company_arg(text: str) -> Company:
    try:
        rut = normalize_rut(text)
    except InvalidRut as exc:
        raise CommandError(f"--company: {exc}") from exc
    company = Company.objects.filter(rut=rut).first()
    if company is None:
        raise CommandError(f"--company: no company with RUT {rut}")
    return company


def period_arg(text: str):
    try:
        return parse_period(text)
    except InvalidPeriod as exc:
        raise CommandError(f"--period: {exc}") from exc


def reason(error: DomainError) -> str:
    details = "; ".join(f"{f}: {' '.join(m)}" for f, m in error.fields.items() if f != "file")
    return f"{error.message} ({details})" if details else error.message
