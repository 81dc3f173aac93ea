"""The TED (Timbre Electrónico DTE), DOMAIN.md §7.

DD is written as text in a fixed canonical order (no namespace declarations, nothing between
tags, text escaped as C14N escapes it), so the bytes signed with the CAF key are exactly the bytes
the document carries: the SII recomputes FRMT over the DD it reads and any difference fails.
"""

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from dte.core import text
from dte.core.domain import ANONYMOUS_RECEPTOR, Receptor
from dte.core.xml import format_date, format_timestamp


class _Rut(Protocol):
    @property
    def rut(self) -> str: ...


class _Named(Protocol):
    @property
    def nombre(self) -> str: ...


class Stampable(Protocol):
    """What the TED reads of a document: a Documento, or an export (dte.core.export)."""

    @property
    def tipo(self) -> int: ...
    @property
    def folio(self) -> int: ...
    @property
    def fecha_emision(self) -> date: ...
    @property
    def emisor(self) -> _Rut: ...
    @property
    def receptor(self) -> Receptor: ...
    @property
    def lineas(self) -> Sequence[_Named]: ...
    @property
    def ted_mnt(self) -> str: ...


RSR_IT1_MAX = 40


@dataclass(frozen=True, slots=True)
class Ted:
    dd: str  # the canonical <DD>…</DD> text that FRMT signs (its ISO-8859-1 bytes)
    frmt: str  # base64 signature
    xml: str  # the whole <TED version="1.0">…</TED>, as it goes into the Documento

    @property
    def latin1(self) -> bytes:
        """The TED as the PDF417 barcode encodes it (ISO-8859-1, no whitespace between tags)."""
        return self.xml.encode("iso-8859-1")


class CafMismatch(ValueError):
    """The CAF cannot stamp this document (other emisor, type or folio range)."""


def build_dd(doc: Stampable, *, caf_xml: str, timestamp: datetime) -> str:
    receptor = doc.receptor or ANONYMOUS_RECEPTOR
    first_item = text.clean(doc.lineas[0].nombre, 80) if doc.lineas else ""
    parts = [
        ("RE", doc.emisor.rut),
        ("TD", str(int(doc.tipo))),
        ("F", str(doc.folio)),
        ("FE", format_date(doc.fecha_emision)),
        ("RR", receptor.rut),
        ("RSR", text.clean(receptor.razon_social, 100)[:RSR_IT1_MAX].rstrip()),
        ("MNT", doc.ted_mnt),
        ("IT1", first_item[:RSR_IT1_MAX].rstrip()),
    ]
    body = "".join(f"<{tag}>{text.escape(value)}</{tag}>" for tag, value in parts)
    tsted = f"<TSTED>{format_timestamp(timestamp)}</TSTED>"
    return f"<DD>{body}{caf_xml}{tsted}</DD>"


def sign_dd(dd: str, caf_key: RSAPrivateKey) -> str:
    signature = caf_key.sign(dd.encode("iso-8859-1"), padding.PKCS1v15(), hashes.SHA1())
    return base64.b64encode(signature).decode("ascii")


def build_ted(
    doc: Stampable,
    *,
    caf_xml: str,
    caf_key: RSAPrivateKey,
    caf_rut: str,
    caf_tipo: int,
    caf_desde: int,
    caf_hasta: int,
    timestamp: datetime,
) -> Ted:
    """Stamp `doc` with its CAF. `caf_xml` is the CAF element in canonical text form."""
    if caf_rut != doc.emisor.rut:
        raise CafMismatch(f"El CAF es de {caf_rut}, no del emisor {doc.emisor.rut}.")
    if caf_tipo != int(doc.tipo):
        raise CafMismatch(f"El CAF es para el tipo {caf_tipo}, no para {int(doc.tipo)}.")
    if not caf_desde <= doc.folio <= caf_hasta:
        raise CafMismatch(f"El folio {doc.folio} está fuera del rango {caf_desde}-{caf_hasta}.")
    dd = build_dd(doc, caf_xml=caf_xml, timestamp=timestamp)
    frmt = sign_dd(dd, caf_key)
    xml = f'<TED version="1.0">{dd}<FRMT algoritmo="SHA1withRSA">{frmt}</FRMT></TED>'
    return Ted(dd=dd, frmt=frmt, xml=xml)
