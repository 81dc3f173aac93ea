"""The SII's XML schemas (DOMAIN.md §8, §10, §17) and a parser for untrusted XML. Pure: no Django.

The XSDs in `dte/core/xsd/` are byte-identical copies of the official files (see
`/work/shared/sii/SOURCES.md`); EnvioBOLETA uses the 2024 revision in `xsd/boleta_2024/`.
Each schema is compiled once per process.

DTE_v10.xsd does not admit boletas (39, 41): their DTE is `BOLETADefType` of the boleta schema.
SchemaKind.BOLETA_DTE is that type as a root element, and `validate(SchemaKind.DTE, …)` uses it
by itself for a lone DTE whose TipoDTE is 39 or 41.
"""

import copy
import functools
import re
import threading
from enum import StrEnum
from pathlib import Path

from lxml import etree

from erp.doctypes import Envio, codes

SIIDTE_NS = "http://www.sii.cl/SiiDte"
XSD_DIR = Path(__file__).resolve().parent / "xsd"


class SchemaKind(StrEnum):
    ENVIO_DTE = "EnvioDTE"
    ENVIO_BOLETA = "EnvioBOLETA"
    DTE = "DTE"
    BOLETA_DTE = "BoletaDTE"  # a lone boleta <DTE> (root tag DTE: kind_of never returns this)
    # Exchange answers to a supplier (DOMAIN.md §12, dte.core.exchange); kind_of does not
    # return these: verify_xml checks DTEs and their envelopes only.
    RESPUESTA_DTE = "RespuestaDTE"
    ENVIO_RECIBOS = "EnvioRecibos"
    RECIBO = "Recibo"
    # Libros (dte.core.libro, dte/core/CERTIFICATION.md); kind_of does not return these either.
    LIBRO_CV = "LibroCompraVenta"
    LIBRO_GUIA = "LibroGuia"


_XSD_FILES: dict[SchemaKind, Path] = {
    SchemaKind.ENVIO_DTE: XSD_DIR / "EnvioDTE_v10.xsd",
    SchemaKind.ENVIO_BOLETA: XSD_DIR / "boleta_2024" / "EnvioBOLETA_v11.xsd",
    SchemaKind.DTE: XSD_DIR / "DTE_v10.xsd",
    # Not a file of its own: compiled from _BOLETA_DTE_XSD, which includes EnvioBOLETA_v11.xsd.
    SchemaKind.BOLETA_DTE: XSD_DIR / "boleta_2024" / "boleta_dte.xsd",
    SchemaKind.RESPUESTA_DTE: XSD_DIR / "RespuestaEnvioDTE_v10.xsd",
    SchemaKind.ENVIO_RECIBOS: XSD_DIR / "EnvioRecibos_v10.xsd",
    SchemaKind.RECIBO: XSD_DIR / "Recibos_v10.xsd",
    # LibroCV_v10.xsd imports LceCoCertif_v10.xsd, which includes LceSiiTypes and LceCal.
    SchemaKind.LIBRO_CV: XSD_DIR / "LibroCV_v10.xsd",
    SchemaKind.LIBRO_GUIA: XSD_DIR / "LibroGuia_v10.xsd",
}

BOLETA_TYPES = frozenset(str(code) for code in codes(lambda d: d.envio is Envio.BOLETA))
# A lone boleta DTE: the boleta schema's BOLETADefType as a root element (built here, since the
# official file only declares DTE inside EnvioBOLETA/SetDTE).
_BOLETA_DTE_XSD = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:SiiDte="{SIIDTE_NS}" targetNamespace="{SIIDTE_NS}" elementFormDefault="qualified"
    attributeFormDefault="unqualified">
  <xs:include schemaLocation="EnvioBOLETA_v11.xsd"/>
  <xs:element name="DTE" type="SiiDte:BOLETADefType"/>
</xs:schema>"""

# An XMLSchema object keeps its error log on itself: serialise validations per schema.
_LOCKS: dict[SchemaKind, threading.Lock] = {kind: threading.Lock() for kind in SchemaKind}


# lxml appends ", line N, column M" to parser messages; XmlError carries the line itself.
_POSITION_SUFFIX = re.compile(r", line \d+, column \d+$")


class XmlError(ValueError):
    """The bytes are not acceptable XML (malformed, empty, or carrying a DTD)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason = reason
        self.line = line


def _parser() -> etree.XMLParser:
    # One parser per call: lxml parsers are not meant to be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        remove_blank_text=False,
        load_dtd=False,
        dtd_validation=False,
    )


def safe_parse(data: bytes) -> etree._Element:
    """Parse untrusted XML: no entity expansion, no network, no DTD at all (the SII never uses
    one, and refusing it is what defeats entity bombs). Raises XmlError with a readable message."""
    if not isinstance(data, bytes):
        raise XmlError(f"expected the document's bytes, not {type(data).__name__}")
    if not data.strip():
        raise XmlError("empty document")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        reason = _POSITION_SUFFIX.sub("", str(exc.msg))
        raise XmlError(f"malformed XML: {reason}", exc.lineno) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlError("DOCTYPE declarations are not allowed")
    return root


@functools.cache
def schema(kind: SchemaKind) -> etree.XMLSchema:
    """The compiled schema for `kind` (compiled on first use, then cached)."""
    path = _XSD_FILES[kind]
    if kind is SchemaKind.BOLETA_DTE:
        # base_url places the wrapper beside EnvioBOLETA_v11.xsd so its include resolves.
        xsd = etree.fromstring(_BOLETA_DTE_XSD.encode(), base_url=str(path)).getroottree()
    else:
        xsd = etree.parse(str(path), etree.XMLParser(no_network=True))
    return etree.XMLSchema(xsd)


_ROOT_KINDS = {
    kind.value: kind for kind in (SchemaKind.ENVIO_DTE, SchemaKind.ENVIO_BOLETA, SchemaKind.DTE)
}


def kind_of(root: etree._Element) -> SchemaKind | None:
    """EnvioDTE, EnvioBOLETA or DTE by the root tag, in the SiiDte namespace or (as some issuers
    send a lone DTE) in no namespace."""
    tag = root.tag
    if not isinstance(tag, str):
        return None
    qname = etree.QName(tag)
    if qname.namespace not in (SIIDTE_NS, None):
        return None
    return _ROOT_KINDS.get(qname.localname)


def with_sii_namespace(root: etree._Element) -> etree._Element:
    """A copy of `root` with the SiiDte namespace on every element that has none (for validating
    namespace-less documents). The original is left untouched."""
    clone = copy.deepcopy(root)
    for element in clone.iter(etree.Element):
        if not etree.QName(element).namespace:
            element.tag = f"{{{SIIDTE_NS}}}{etree.QName(element).localname}"
    return clone


def _root_of(doc: etree._Element | etree._ElementTree | bytes) -> etree._Element:
    if isinstance(doc, bytes):
        return safe_parse(doc)
    if isinstance(doc, etree._ElementTree):
        return doc.getroot()
    return doc


def validate(kind: SchemaKind, doc: etree._Element | etree._ElementTree | bytes) -> list[str]:
    """Schema errors as "line N: message" lines; [] when `doc` is valid.

    A document whose root has no namespace is validated as a copy in the SiiDte namespace
    (DOMAIN.md: the SII accepted such DTEs). Malformed bytes give one error line.
    """
    try:
        root = _root_of(doc)
    except XmlError as exc:
        return [f"line {exc.line or 0}: {exc.reason}"]
    if etree.QName(root).namespace is None:
        root = with_sii_namespace(root)
    if kind is SchemaKind.DTE and _tipo_dte(root) in BOLETA_TYPES:
        kind = SchemaKind.BOLETA_DTE
    compiled = schema(kind)
    with _LOCKS[kind]:
        if compiled.validate(root):
            return []
        return [f"line {error.line}: {error.message}" for error in compiled.error_log]


def _tipo_dte(dte: etree._Element) -> str | None:
    tipo = dte.findtext("{*}Documento/{*}Encabezado/{*}IdDoc/{*}TipoDTE")
    return tipo.strip() if tipo is not None else None
