"""Chilean RUT: parse what people type, keep the SII's canonical form (`76086428-5`).

Pure: no Django. The check digit rule (mod 11) is cl-sii's; this module adds the lenient input
people actually use (dots, spaces, a missing hyphen, lowercase k) and Spanish error messages.
"""

import re

from cl_sii.rut import Rut

# The XSD's RUTType: 3..10 characters, digits, a hyphen and a digit or K.
_NOISE = re.compile(r"[\s.]")
_SHAPE = re.compile(r"^(\d{1,8})-?([\dK])$")


class InvalidRut(ValueError):
    """The text is not a RUT, or its check digit does not match."""


def check_digit(body: int) -> str:
    """The mod-11 check digit for a RUT body (the digits before the hyphen)."""
    return Rut.calc_dv(str(body))


def normalize_rut(value: str) -> str:
    """Return the canonical `NNNNNNNN-D` form, or raise InvalidRut with a Spanish reason."""
    if not isinstance(value, str):
        raise InvalidRut("El RUT debe ser texto, por ejemplo 76.086.428-5.")
    compact = _NOISE.sub("", value).upper()
    match = _SHAPE.match(compact)
    if not match:
        raise InvalidRut("RUT con formato inválido; use por ejemplo 76.086.428-5.")
    body, dv = match.groups()
    if int(body) == 0:
        raise InvalidRut("RUT con formato inválido; use por ejemplo 76.086.428-5.")
    if check_digit(int(body)) != dv:
        raise InvalidRut("RUT inválido: el dígito verificador no corresponde.")
    return Rut(f"{int(body)}-{dv}", validate_dv=True).canonical


def format_rut(canonical: str) -> str:
    """`76086428-5` -> `76.086.428-5`, the way it is printed for people."""
    return Rut(canonical).verbose
