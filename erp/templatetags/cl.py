"""es-CL presentation: `$ 1.234.567`, `76.086.428-5`, `1.234,5`."""

from django import template

from erp.doctypes import liquidated_label
from erp.exports import format_in_currency
from erp.money import format_clp, format_decimal
from erp.rut import InvalidRut, format_rut

register = template.Library()


@register.filter
def clp(value):
    return format_clp(value)


@register.filter
def rut(value):
    if not value:
        return ""
    try:
        return format_rut(value)
    except (InvalidRut, ValueError):
        return value


@register.filter
def decimal_cl(value):
    return format_decimal(value)


@register.filter
def in_currency(value, moneda):
    """An amount in an export's currency: `US$ 43.902,25` (its symbol and minor unit)."""
    return "" if value is None else format_in_currency(value, moneda)


@register.filter
def liquidated_type(value):
    """A liquidación factura line's TpoDocLiq in words."""
    return liquidated_label(str(value or ""))
