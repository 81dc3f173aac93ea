"""Stamp and sign one document: TED with the CAF key → TmstFirma → XML-DSig of the Documento.

The order is the SII's (DOMAIN.md §9). Key material and `now` come from the caller.
"""

import copy
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from lxml import etree

from dte.core.domain import Documento
from dte.core.envelope import XML_DECLARATION
from dte.core.export import Exportacion, build_exportacion
from dte.core.liquidacion import Liquidacion, build_liquidacion
from dte.core.signing import SigningKey, sign_documento
from dte.core.ted import Ted, build_ted
from dte.core.xml import append_raw, build_documento, format_timestamp


class CafLike(Protocol):
    """What stamping needs of a CAF (dte.core.caf.Caf provides it)."""

    @property
    def rut_emisor(self) -> str: ...

    @property
    def tipo_dte(self) -> int: ...

    @property
    def folio_desde(self) -> int: ...

    @property
    def folio_hasta(self) -> int: ...

    @property
    def caf_xml(self) -> bytes: ...

    def private_key(self) -> RSAPrivateKey: ...


@lru_cache(maxsize=256)
def canonical_caf(caf_xml: bytes) -> str:
    """The CAF element (ISO-8859-1 bytes, as dte.core.caf keeps it) in canonical text, which is
    how it will read inside the Documento. For the SII's CAFs this is the same text: they
    already use double quotes and no entities."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    root = etree.fromstring(caf_xml.decode("iso-8859-1"), parser)
    canonical: bytes = etree.tostring(root, method="c14n")
    return canonical.decode("utf-8")


def with_folio(
    doc: "Documento | Exportacion | Liquidacion", folio: int
) -> "Documento | Exportacion | Liquidacion":
    """The same document under `folio`. Its totals do not depend on the folio, so they are
    kept, not computed again (dataclasses.replace would run __post_init__ once more)."""
    clone = copy.copy(doc)
    object.__setattr__(clone, "folio", folio)
    return clone


@dataclass(frozen=True, slots=True)
class IssuedDte:
    documento: "Documento | Exportacion | Liquidacion"
    ted: Ted
    xml: str  # the signed <DTE> element, canonical text
    signature_value: str

    def file_bytes(self) -> bytes:
        """The DTE on its own, as stored and as downloaded: ISO-8859-1 with its declaration."""
        return (XML_DECLARATION + self.xml).encode("iso-8859-1")


def _build(doc: "Documento | Exportacion | Liquidacion") -> etree._Element:
    """The element the DTE wraps, by what the document is (DTE_v10.xsd)."""
    if isinstance(doc, Exportacion):
        return build_exportacion(doc)
    if isinstance(doc, Liquidacion):
        return build_liquidacion(doc)
    return build_documento(doc)


def stamp_and_sign(
    doc: "Documento | Exportacion | Liquidacion", *, caf: CafLike, signer: SigningKey, now: datetime
) -> IssuedDte:
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    documento = _build(doc)
    ted = build_ted(
        doc,
        caf_xml=canonical_caf(caf.caf_xml),
        caf_key=caf.private_key(),
        caf_rut=caf.rut_emisor,
        caf_tipo=caf.tipo_dte,
        caf_desde=caf.folio_desde,
        caf_hasta=caf.folio_hasta,
        timestamp=now,
    )
    append_raw(documento, [ted.xml, f"<TmstFirma>{format_timestamp(now)}</TmstFirma>"])
    signed = sign_documento(documento, signer)
    return IssuedDte(documento=doc, ted=ted, xml=signed.xml, signature_value=signed.signature_value)
