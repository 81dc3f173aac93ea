"""Reading what a supplier sent (DOMAIN.md §12): the files of one delivery, each envelope or
lone DTE verified for a receiving company, with the facts of every document and the reception
codes the RespuestaDTE will carry.

Pure: no Django, no network, no clock. Bad input never raises: an unreadable file is an
envelope with EstadoRecepEnv 91 and the reason.

What is accepted, as suppliers really send it: an EnvioDTE addressed to the company, a lone
DTE, several of either in a ZIP (folders and one level of nested ZIPs), UTF-8, ISO-8859-1 or
Windows-1252 (declared or not), with or without the SiiDte namespace (the verifier says in
which form each signature verified).
"""

from __future__ import annotations

import copy
import io
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from lxml import etree

from dte.core.exchange import EstadoRecepDTE, EstadoRecepEnv
from dte.core.schemas import XmlError, safe_parse
from dte.core.verify import (
    AS_WRITTEN,
    NAMESPACE_ADDED,
    NAMESPACE_REMOVED,
    DocumentReport,
    Report,
    verify_xml,
)
from erp.rut import normalize_rut

MAX_FILES = 20_000  # entries of one delivery (a ZIP of a month of purchases)
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
_ENCODING_IN_DECLARATION = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_DS = "{http://www.w3.org/2000/09/xmldsig#}"


# --- Files ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingFile:
    name: str
    data: bytes


@dataclass(frozen=True)
class Unpacked:
    files: tuple[IncomingFile, ...]
    problems: tuple[str, ...]  # in Spanish, one per entry left out


def unpack(name: str, data: bytes) -> Unpacked:
    """The XML files of one upload or attachment: the file itself, or the XML entries of a ZIP
    (with its folders and ZIPs nested one level). Entries that are not XML are listed as
    problems; a ZIP past the size or count limits is refused whole."""
    files: list[IncomingFile] = []
    problems: list[str] = []
    for item in iter_unpack(name, data):
        if isinstance(item, IncomingFile):
            files.append(item)
        else:
            problems.append(item)
    return Unpacked(tuple(files), tuple(problems))


def iter_unpack(name: str, data: bytes, *, depth: int = 0) -> Iterator[IncomingFile | str]:
    """As unpack, one file (or problem, a str) at a time: a large ZIP is never held unpacked."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        if len(data) > MAX_FILE_BYTES:
            yield f"{name}: el archivo supera {MAX_FILE_BYTES // 1024 // 1024} MB."
        elif _looks_like_xml(data):
            yield IncomingFile(name, data)
        else:
            yield f"{name}: no es un archivo XML ni un ZIP."
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = [e for e in archive.infolist() if not e.is_dir()]
            too_many = len(entries) > MAX_FILES
            total = sum(e.file_size for e in entries)
            if too_many or total > MAX_TOTAL_BYTES:
                yield (
                    f"{name}: el ZIP es demasiado grande ({len(entries)} archivos, "
                    f"{total // 1024 // 1024} MB descomprimido)."
                )
                return
            for entry in entries:
                entry_name = f"{name}/{entry.filename}"
                if _is_noise(entry.filename):
                    continue
                if entry.file_size > MAX_FILE_BYTES:
                    yield f"{entry_name}: el archivo supera el tamaño permitido."
                    continue
                content = archive.read(entry)
                if depth == 0 and zipfile.is_zipfile(io.BytesIO(content)):
                    yield from iter_unpack(entry_name, content, depth=1)
                elif _looks_like_xml(content):
                    yield IncomingFile(entry_name, content)
                else:
                    yield f"{entry_name}: no es un archivo XML; se omitió."
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as exc:
        yield f"{name}: el ZIP no se puede leer ({exc})."


def count_files(name: str, data: bytes) -> int:
    """How many files an upload holds, from the ZIP's directory alone (a nested ZIP counts as
    one): cheap, to decide whether the intake can run inside a request."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return 1
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(
                1 for e in archive.infolist() if not e.is_dir() and not _is_noise(e.filename)
            )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError):
        return 1


def _is_noise(filename: str) -> bool:
    base = filename.rsplit("/", 1)[-1]
    return filename.startswith("__MACOSX/") or base.startswith(".") or base in ("Thumbs.db",)


def _looks_like_xml(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


def parseable(data: bytes) -> bytes:
    """The bytes as lxml can read them: a file that is not UTF-8 and declares no encoding is
    read as Windows-1252 (a superset of ISO-8859-1, what Chilean systems write); a declared
    "ISO-8859-1" file with Windows-1252 punctuation still parses (the C1 range is legal XML)."""
    stripped = data.lstrip(b"\xef\xbb\xbf")
    has_declaration = _XML_DECLARATION.match(stripped)
    declared = (
        _ENCODING_IN_DECLARATION.search(has_declaration.group(0)) if has_declaration else None
    )
    if declared is not None:
        return data
    try:
        stripped.decode("utf-8")
        return data
    except UnicodeDecodeError:
        pass
    body = stripped[has_declaration.end() :] if has_declaration else stripped
    return b'<?xml version="1.0" encoding="windows-1252"?>' + body


# --- Documents ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    numero: int
    nombre: str
    descripcion: str
    cantidad: Decimal | None
    unidad: str
    precio: Decimal | None
    descuento: int
    monto: int
    exento: bool


@dataclass(frozen=True, slots=True)
class Reference:
    tipo: str  # TpoDocRef: a DTE type, "SET", or another document code
    folio: str
    fecha: date | None
    codigo: int | None  # CodRef: 1 annuls, 2 corrects text, 3 corrects amounts
    razon: str


@dataclass(frozen=True)
class Facts:
    """What the purchase book and the answers need of a received document."""

    tipo_dte: int
    folio: int
    fecha_emision: date
    rut_emisor: str
    razon_social: str
    giro: str
    direccion: str
    comuna: str
    correo: str
    rut_receptor: str
    monto_neto: int
    monto_exento: int
    iva: int
    otros_impuestos: int
    monto_total: int
    fecha_vencimiento: date | None = None
    lines: tuple[Line, ...] = ()
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True)
class Document:
    """One DTE as received: its facts (None when they cannot be read), the DTE element as its
    own ISO-8859-1 file, its verification, and its reception code."""

    facts: Facts | None
    xml: bytes
    report: DocumentReport
    estado: EstadoRecepDTE
    reasons: tuple[str, ...]  # in Spanish; empty when estado is OK

    @property
    def signed_form(self) -> str:
        return self.report.signed_form


@dataclass(frozen=True)
class Envelope:
    """One file of a delivery: an EnvioDTE or a lone DTE, read for the receiving company."""

    name: str
    kind: str  # "EnvioDTE", "DTE" or "unknown"
    estado: EstadoRecepEnv
    reasons: tuple[str, ...]  # in Spanish; empty when estado is OK
    envio_id: str = ""
    digest: str = ""
    rut_emisor: str = ""
    rut_envia: str = ""
    rut_receptor: str = ""
    documents: tuple[Document, ...] = ()
    report: Report | None = None
    signed_form: str = AS_WRITTEN
    checks: tuple[tuple[str, bool, str], ...] = field(default=())

    @property
    def glosa(self) -> str:
        if self.estado is EstadoRecepEnv.OK or not self.reasons:
            return self.estado.glosa
        return f"{self.estado.glosa}: {self.reasons[0]}"


def read_envelope(
    name: str,
    data: bytes,
    *,
    receptor_rut: str,
    sii_keys: Mapping[int, RSAPublicKey] | None = None,
) -> Envelope:
    """Verify one file for `receptor_rut` and read its documents. Never raises on what a
    supplier sent: anything unforeseen makes the file unreadable (91) with the reason."""
    try:
        return _read_envelope(name, data, receptor_rut=receptor_rut, sii_keys=sii_keys)
    except Exception as exc:  # a verifier or reader bug on odd input: refuse the file, say why
        reason = f"El archivo no se pudo leer ({type(exc).__name__}: {exc})."
        return Envelope(name, "unknown", EstadoRecepEnv.ARCHIVO_ILEGIBLE, (reason[:500],))


def _read_envelope(
    name: str,
    data: bytes,
    *,
    receptor_rut: str,
    sii_keys: Mapping[int, RSAPublicKey] | None,
) -> Envelope:
    data = parseable(data)
    try:
        root = safe_parse(data)
    except XmlError as exc:
        return Envelope(name, "unknown", EstadoRecepEnv.ARCHIVO_ILEGIBLE, (f"XML ilegible: {exc}",))
    local = etree.QName(root).localname if isinstance(root.tag, str) else ""
    if local == "EnvioBOLETA":
        reason = "Es un sobre de boletas (EnvioBOLETA): las boletas no se intercambian."
        return Envelope(name, local, EstadoRecepEnv.OTROS, (reason,))
    if local not in ("EnvioDTE", "DTE"):
        reason = f"No es un EnvioDTE ni un DTE (elemento raíz {local or '?'})."
        return Envelope(name, "unknown", EstadoRecepEnv.ARCHIVO_ILEGIBLE, (reason,))
    report = verify_xml(data, sii_keys=sii_keys)
    receptor = normalize_rut(receptor_rut)
    if local == "DTE":
        return _lone_dte(name, root, report, receptor)
    return _envio_dte(name, root, report, receptor)


def _envio_dte(name: str, root: etree._Element, report: Report, receptor: str) -> Envelope:
    caratula = root.find("{*}SetDTE/{*}Caratula")
    rut_emisor = _rut(_text(caratula, "RutEmisor"))
    rut_receptor = _rut(_text(caratula, "RutReceptor"))
    set_dte = root.find("{*}SetDTE")
    envio_id = set_dte.get("ID", "") if set_dte is not None else ""
    digest = _text(root.find(f"{_DS}Signature"), "SignedInfo/Reference/DigestValue")
    checks = tuple((c.name, c.ok, c.detail) for c in report.checks)
    base = Envelope(
        name,
        "EnvioDTE",
        EstadoRecepEnv.OK,
        (),
        envio_id=envio_id,
        digest=digest,
        rut_emisor=rut_emisor,
        rut_envia=_rut(_text(caratula, "RutEnvia")),
        rut_receptor=rut_receptor,
        report=report,
        signed_form=report.signed_form,
        checks=checks,
    )
    envelope_estado, reason = _envelope_estado(report, rut_receptor, receptor)
    dtes = list(root.iterfind("{*}SetDTE/{*}DTE"))
    documents = tuple(
        _document(dte, document_report, rut_emisor, receptor)
        for dte, document_report in zip(dtes, report.documents, strict=True)
    )
    if envelope_estado is not EstadoRecepEnv.OK:
        assert reason
        refused = tuple(_refused_with_envelope(d, reason) for d in documents)
        return replace(base, estado=envelope_estado, reasons=(reason,), documents=refused)
    if not documents:
        reason = "El sobre no contiene documentos."
        return replace(base, estado=EstadoRecepEnv.OTROS, reasons=(reason,))
    return replace(base, documents=documents)


def _lone_dte(name: str, root: etree._Element, report: Report, receptor: str) -> Envelope:
    document = _document(root, report.documents[0], "", receptor)
    schema = report.check("schema")
    if schema is not None and not schema.ok and document.estado is EstadoRecepDTE.OK:
        reason = "El documento no cumple el esquema del SII."
        document = _with_estado(document, EstadoRecepDTE.OTROS, reason)
    documento = _first_element(root)
    signature = root.find(f"{_DS}Signature")
    facts = document.facts
    estado = _LONE_ENVELOPE_ESTADO.get(document.estado, EstadoRecepEnv.OK)
    return Envelope(
        name,
        "DTE",
        estado,
        document.reasons if estado is not EstadoRecepEnv.OK else (),
        envio_id=documento.get("ID", "") if documento is not None else "",
        digest=_text(signature, "SignedInfo/Reference/DigestValue"),
        rut_emisor=facts.rut_emisor if facts else "",
        rut_envia=facts.rut_emisor if facts else "",
        rut_receptor=facts.rut_receptor if facts else "",
        documents=(document,),
        report=report,
        signed_form=document.signed_form,
        checks=tuple((c.name, c.ok, c.detail) for c in report.checks),
    )


# A lone DTE is its own envelope: its signature and its receiver are the envelope's too.
_LONE_ENVELOPE_ESTADO = {
    EstadoRecepDTE.ERROR_FIRMA: EstadoRecepEnv.ERROR_FIRMA,
    EstadoRecepDTE.ERROR_RUT_RECEPTOR: EstadoRecepEnv.RUT_RECEPTOR_NO_CORRESPONDE,
}


def _envelope_estado(
    report: Report, rut_receptor: str, receptor: str
) -> tuple[EstadoRecepEnv, str]:
    schema = report.check("schema")
    if schema is not None and not schema.ok:
        reason = f"El sobre no cumple el esquema EnvioDTE: {schema.detail}"
        return EstadoRecepEnv.ERROR_SCHEMA, reason
    signature = report.check("signature")
    if signature is not None and not signature.ok:
        return EstadoRecepEnv.ERROR_FIRMA, "La firma del sobre no es válida."
    if rut_receptor != receptor:
        return (
            EstadoRecepEnv.RUT_RECEPTOR_NO_CORRESPONDE,
            f"El sobre está dirigido a {rut_receptor or 'nadie'}, no a {receptor}.",
        )
    return EstadoRecepEnv.OK, ""


def _refused_with_envelope(document: Document, reason: str) -> Document:
    estado = document.estado if document.estado is not EstadoRecepDTE.OK else EstadoRecepDTE.OTROS
    return _with_estado(document, estado, f"Sobre rechazado: {reason}")


def _with_estado(document: Document, estado: EstadoRecepDTE, reason: str) -> Document:
    return Document(
        document.facts, document.xml, document.report, estado, (*document.reasons, reason)
    )


CHECK_REASONS = {
    "signature": "La firma del documento no es válida: su contenido fue alterado o la firma "
    "no corresponde.",
    "ted": "El timbre electrónico (TED) no corresponde al documento.",
    "caf": "El CAF del timbre no está autorizado por el SII.",
    "totals": "Los totales del documento no cuadran con su detalle.",
}


# What each check means when it passes, in the user's words (the verifier's details are
# technical, for the log and the support desk).
CHECK_PASSED = {
    "xml": "El archivo es XML legible.",
    "schema": "Cumple el esquema del SII.",
    "signature": "La firma electrónica es válida: el documento no fue alterado.",
    "ted": "El timbre electrónico corresponde al documento y a su CAF.",
    "caf": "El CAF del timbre está autorizado por el SII.",
    "totals": "Los totales cuadran con el detalle.",
}
SIGNED_FORMS = {
    NAMESPACE_ADDED: "con el espacio de nombres del SII añadido (el archivo no lo trae)",
    NAMESPACE_REMOVED: "sin el espacio de nombres del SII (el archivo lo trae de más)",
}


def _document(
    dte: etree._Element, report: DocumentReport, rut_caratula: str, receptor: str
) -> Document:
    xml = etree.tostring(_standalone(dte), encoding="ISO-8859-1", xml_declaration=True)
    try:
        facts: Facts | None = _facts(dte)
    except ValueError as exc:
        facts = None
        unreadable = f"No se pueden leer los datos del documento: {exc}"
    failed = [check for check in report.checks if not check.ok]
    if facts is None:
        return Document(None, xml, report, EstadoRecepDTE.OTROS, (unreadable,))
    if not valid_rut(facts.rut_emisor):
        reason = f"El RUT del emisor no es válido ({facts.rut_emisor or 'vacío'})."
        return Document(facts, xml, report, EstadoRecepDTE.ERROR_RUT_EMISOR, (reason,))
    signature_like = [c for c in failed if c.name in ("signature", "ted", "caf")]
    if signature_like:
        reasons = tuple(CHECK_REASONS[c.name] for c in signature_like)
        return Document(facts, xml, report, EstadoRecepDTE.ERROR_FIRMA, reasons)
    if rut_caratula and facts.rut_emisor != rut_caratula:
        reason = (
            f"El emisor del documento ({facts.rut_emisor}) no es el del sobre ({rut_caratula})."
        )
        return Document(facts, xml, report, EstadoRecepDTE.ERROR_RUT_EMISOR, (reason,))
    if facts.rut_receptor != receptor:
        reason = f"El documento está emitido a {facts.rut_receptor}, no a {receptor}."
        return Document(facts, xml, report, EstadoRecepDTE.ERROR_RUT_RECEPTOR, (reason,))
    if failed:
        reasons = tuple(
            CHECK_REASONS.get(c.name, f"Verificación {c.name} fallida.") for c in failed
        )
        return Document(facts, xml, report, EstadoRecepDTE.OTROS, reasons)
    return Document(facts, xml, report, EstadoRecepDTE.OK, ())


def _standalone(dte: etree._Element) -> etree._Element:
    return copy.deepcopy(dte)


def _facts(dte: etree._Element) -> Facts:
    document = _first_element(dte)
    if document is None:
        raise ValueError("el DTE no tiene Documento")
    header = document.find("{*}Encabezado")
    tipo = _required_int(header, "IdDoc/TipoDTE")
    folio = _required_int(header, "IdDoc/Folio")
    if tipo > MAX_TIPO or folio > MAX_BIGINT:
        raise ValueError("el tipo o el folio están fuera de rango")
    fecha = _required_date(header, "IdDoc/FchEmis")
    totals = header.find("{*}Totales") if header is not None else None
    otros = sum(
        _amount(_text(tax, "MontoImp"))
        for tax in (totals.iterfind("{*}ImptoReten") if totals is not None else ())
    )
    emisor = "Emisor"
    razon = _text(header, f"{emisor}/RznSoc") or _text(header, f"{emisor}/RznSocEmisor")
    giro = _text(header, f"{emisor}/GiroEmis") or _text(header, f"{emisor}/GiroEmisor")
    return Facts(
        tipo_dte=tipo,
        folio=folio,
        fecha_emision=fecha,
        rut_emisor=_rut(_text(header, "Emisor/RUTEmisor")),
        razon_social=razon,
        giro=giro,
        direccion=_text(header, "Emisor/DirOrigen"),
        comuna=_text(header, "Emisor/CmnaOrigen"),
        correo=_text(header, "Emisor/CorreoEmisor"),
        rut_receptor=_rut(_text(header, "Receptor/RUTRecep")),
        monto_neto=_amount(_text(totals, "MntNeto")),
        monto_exento=_amount(_text(totals, "MntExe")),
        iva=_amount(_text(totals, "IVA")),
        otros_impuestos=otros,
        monto_total=_amount(_text(totals, "MntTotal")),
        fecha_vencimiento=_date(_text(header, "IdDoc/FchVenc")),
        lines=tuple(_line(d) for d in document.iterfind("{*}Detalle")),
        references=tuple(_reference(r) for r in document.iterfind("{*}Referencia")),
    )


def _line(detalle: etree._Element) -> Line:
    return Line(
        numero=_int(_text(detalle, "NroLinDet")) or 0,
        nombre=_text(detalle, "NmbItem"),
        descripcion=_text(detalle, "DscItem"),
        cantidad=_decimal(_text(detalle, "QtyItem")),
        unidad=_text(detalle, "UnmdItem"),
        precio=_decimal(_text(detalle, "PrcItem")),
        descuento=_amount(_text(detalle, "DescuentoMonto")),
        monto=_amount(_text(detalle, "MontoItem")),
        exento=_text(detalle, "IndExe") in ("1", "2"),
    )


def _reference(referencia: etree._Element) -> Reference:
    return Reference(
        tipo=_text(referencia, "TpoDocRef"),
        folio=_text(referencia, "FolioRef"),
        fecha=_date(_text(referencia, "FchRef")),
        codigo=_int(_text(referencia, "CodRef")),
        razon=_text(referencia, "RazonRef"),
    )


def _first_element(dte: etree._Element) -> etree._Element | None:
    for child in dte.iterchildren(etree.Element):
        if child.tag != f"{_DS}Signature":
            return child
    return None


def _path(path: str) -> str:
    return "/".join(step if step.startswith("{") else f"{{*}}{step}" for step in path.split("/"))


def _text(parent: etree._Element | None, path: str) -> str:
    if parent is None:
        return ""
    element = parent.find(_path(path))
    if element is None or element.text is None:
        return ""
    return " ".join(str(element.text).split())


def valid_rut(value: str) -> bool:
    try:
        return bool(value) and normalize_rut(value) == value
    except ValueError:
        return False


def _rut(value: str) -> str:
    try:
        return normalize_rut(value) if value else ""
    except ValueError:
        return value.upper()


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _required_int(parent: etree._Element | None, path: str) -> int:
    value = _int(_text(parent, path))
    if value is None:
        raise ValueError(f"falta {path.rsplit('/', 1)[-1]} o no es un número")
    return value


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _required_date(parent: etree._Element | None, path: str) -> date:
    value = _date(_text(parent, path))
    if value is None:
        raise ValueError(f"falta {path.rsplit('/', 1)[-1]} o no es una fecha")
    return value


# What the database holds: a smallint type, bigint folios and amounts.
MAX_TIPO = 32_767
MAX_BIGINT = 2**63 - 1


def _decimal(value: str) -> Decimal | None:
    try:
        number = Decimal(value) if value else None
    except (InvalidOperation, ArithmeticError):
        return None
    if number is not None and (not number.is_finite() or abs(number) > MAX_BIGINT):
        return None
    return number


def _amount(value: str) -> int:
    """Integer pesos; the amounts of the types received here are whole (export documents,
    whose amounts may carry decimals, are rounded half up)."""
    number = _decimal(value)
    if number is None:
        return 0
    return int(number.to_integral_value(rounding="ROUND_HALF_UP"))


def read_delivery(
    files: Iterator[IncomingFile] | tuple[IncomingFile, ...],
    *,
    receptor_rut: str,
    sii_keys: Mapping[int, RSAPublicKey] | None = None,
) -> Iterator[Envelope]:
    """Each file of a delivery, read in turn (a generator: a large ZIP is never held as read
    envelopes all at once)."""
    for incoming in files:
        yield read_envelope(
            incoming.name, incoming.data, receptor_rut=receptor_rut, sii_keys=sii_keys
        )
