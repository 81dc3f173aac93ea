"""What the sandbox SII checks in a received envelope, and the verdict (no Django, no I/O:
the few database facts it needs come in through `Lookups`).

Envelope, in the order the SII's states tell it (REC → SOK → CRT → FOK → EPR):
  RSC  schema (or the wrong kind of envelope for the service)
  RCT  Carátula: RutReceptor is the SII, RutEnvia is the signer and the uploader, RutEmisor is
       the uploading company, SubTotDTE counts the documents, FchResol/NroResol are the
       company's resolution (when the company is known here)
  RFR  the SetDTE signature (and the signing certificate's validity)
  RPT  the same signed SetDTE was received before (same content in other bytes)
  RCO  a document of another emisor than the Carátula's
Documents (counted in EPR): repeated folio (accepted before in any envelope of the emisor, or
earlier in this one: "DTE Repetido", code 100), signature, CAF (only the sandbox's own key is an
authority here), folio within the CAF's range, CAF not expired, TED, totals.

Libros (check_libro): LRS schema, LRC carátula, LRF signature, else LOK.
"""

import base64
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from lxml import etree

from dte.core.caf import CafError, CafPublic, parse_caf_element
from dte.core.certificate import rut_from_certificate
from dte.core.domain import SII_RUT
from dte.core.schemas import safe_parse
from dte.core.testmaterial import SANDBOX_IDK
from dte.core.verify import DocumentReport, Report, flat_xml, verify_libro, verify_xml
from erp.rut import InvalidRut, normalize_rut

DSIG = "{http://www.w3.org/2000/09/xmldsig#}"
EPR = "EPR"
ENVELOPE_GLOSAS = {
    "RSC": "Rechazado por Error en Schema",
    "RFR": "Rechazado por Error en Firma",
    "RCT": "Rechazado por Error en Caratula",
    "RPT": "Repetido Rechazado",
    "RCO": "Rechazado por Inconsistencia",
}
_MAX_DETAIL = 500


@dataclass(frozen=True, slots=True)
class Lookups:
    """Database facts: the company's resolution (None if the company is unknown here), which of
    some (rut, tipo, folio) were accepted before (asked once per envelope), and whether a SetDTE
    digest was received before."""

    resolution: Callable[[str], tuple[date | None, int] | None]
    accepted_before: Callable[[Iterable[tuple[str, int, int]]], set[tuple[str, int, int]]]
    digest_seen: Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class Upload:
    channel_kind: str  # the envelope the service takes: "EnvioDTE" or "EnvioBOLETA"
    rut_sender: str
    rut_company: str


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason to reject a document, in the boletas API's error shape."""

    seccion: str
    codigo: int
    descripcion: str
    detalle: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "seccion": self.seccion,
            "linea": None,
            "nivel": 3,
            "codigo": self.codigo,
            "descripcion": self.descripcion,
            "detalle": self.detalle,
        }


@dataclass(frozen=True, slots=True)
class DocumentOutcome:
    rut_emisor: str
    tipo_dte: int
    folio: int
    fecha_emision: date | None
    rut_receptor: str
    monto_total: int | None
    problems: tuple[Problem, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def glosa(self) -> str:
        return self.problems[0].descripcion if self.problems else "Documento Aceptado"


@dataclass(frozen=True, slots=True)
class Outcome:
    code: str  # EPR, or the envelope's rejection code
    glosa: str
    set_digest: str = ""
    documents: tuple[DocumentOutcome, ...] = field(default_factory=tuple)


class _Rejected(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def check_envelope(
    data: bytes, *, upload: Upload, sii_key: RSAPublicKey, lookups: Lookups, now: datetime
) -> Outcome:
    """The verdict on an uploaded envelope (the bytes are known to be well-formed XML)."""
    report = verify_xml(data, sii_keys={SANDBOX_IDK: sii_key})
    root = safe_parse(data)
    digest = _set_digest(root)
    try:
        _check_schema(report, upload)
        signer = _signer_certificate(root)
        _check_caratula(root, upload, signer, lookups)
        _check_signature(report, signer, now)
        if digest and lookups.digest_seen(upload.rut_company, digest):
            raise _Rejected("RPT", "el mismo envío (SetDTE firmado) ya fue recibido")
        _check_consistency(root, report)
    except _Rejected as rejected:
        glosa = f"{ENVELOPE_GLOSAS[rejected.code]} - {rejected.detail}"[:_MAX_DETAIL]
        return Outcome(rejected.code, glosa, digest)
    documents = _check_documents(root, report, lookups)
    return Outcome(EPR, "Envio Procesado", digest, documents)


# --- Envelope -------------------------------------------------------------------------------


def _failed(report: Report, name: str) -> str | None:
    check = report.check(name)
    if check is None:
        return f"{name}: no verificado"
    return None if check.ok else check.detail


def _check_schema(report: Report, upload: Upload) -> None:
    if report.kind != upload.channel_kind:
        raise _Rejected("RSC", f"se esperaba un {upload.channel_kind} y se recibió {report.kind}")
    problem = _failed(report, "schema")
    if problem:
        raise _Rejected("RSC", problem)


def _signer_certificate(root: etree._Element) -> x509.Certificate | None:
    element = root.find(f"{DSIG}Signature/{DSIG}KeyInfo/{DSIG}X509Data/{DSIG}X509Certificate")
    if element is None or not element.text:
        return None
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(element.text.split())))
    except ValueError:
        return None


def _caratula_text(root: etree._Element, name: str) -> str:
    return (root.findtext(f"{{*}}SetDTE/{{*}}Caratula/{{*}}{name}") or "").strip()


def _same_rut(a: str, b: str) -> bool:
    try:
        return normalize_rut(a) == normalize_rut(b)
    except InvalidRut:
        return False


def _check_caratula(
    root: etree._Element,
    upload: Upload,
    signer: x509.Certificate | None,
    lookups: Lookups,
) -> None:
    problems: list[str] = []
    receptor = _caratula_text(root, "RutReceptor")
    if not _same_rut(receptor, SII_RUT):
        problems.append(f"RutReceptor {receptor} no es el SII ({SII_RUT})")
    envia = _caratula_text(root, "RutEnvia")
    signer_rut = rut_from_certificate(signer) if signer is not None else None
    if signer_rut is None or not _same_rut(envia, signer_rut):
        problems.append(f"RutEnvia {envia} no es el RUT del certificado que firma ({signer_rut})")
    if not _same_rut(envia, upload.rut_sender):
        problems.append(f"RutEnvia {envia} no es el usuario que envía ({upload.rut_sender})")
    emisor = _caratula_text(root, "RutEmisor")
    if not _same_rut(emisor, upload.rut_company):
        problems.append(f"RutEmisor {emisor} no es la empresa del envío ({upload.rut_company})")
    problems.extend(_subtotal_problems(root))
    problems.extend(_resolution_problems(root, upload.rut_company, lookups))
    if problems:
        raise _Rejected("RCT", "; ".join(problems))


def _subtotal_problems(root: etree._Element) -> list[str]:
    declared: Counter[str] = Counter()
    for subtotal in root.iterfind("{*}SetDTE/{*}Caratula/{*}SubTotDTE"):
        tipo = (subtotal.findtext("{*}TpoDTE") or "").strip()
        declared[tipo] += int((subtotal.findtext("{*}NroDTE") or "0").strip() or 0)
    actual = Counter(
        (dte.findtext("{*}*/{*}Encabezado/{*}IdDoc/{*}TipoDTE") or "").strip()
        for dte in root.iterfind("{*}SetDTE/{*}DTE")
    )
    if declared == actual:
        return []
    shown = ", ".join(f"tipo {t}: {n}" for t, n in sorted(actual.items()))
    stated = ", ".join(f"tipo {t}: {n}" for t, n in sorted(declared.items()))
    return [f"SubTotDTE ({stated}) no corresponde a los documentos del envío ({shown})"]


def _resolution_problems(
    root: etree._Element,
    rut_company: str,
    lookups: Lookups,
    *,
    text: Callable[[etree._Element, str], str] | None = None,
) -> list[str]:
    known = lookups.resolution(rut_company)
    if known is None:
        return []
    fecha, numero = known
    caratula = text or _caratula_text
    fch_resol = caratula(root, "FchResol")
    nro_resol = caratula(root, "NroResol")
    problems = []
    if fecha is None or fch_resol != fecha.isoformat():
        expected = fecha.isoformat() if fecha else "sin fecha registrada"
        problems.append(f"FchResol {fch_resol} no es la de la resolución ({expected})")
    if nro_resol != str(numero):
        problems.append(f"NroResol {nro_resol} no es el de la resolución ({numero})")
    return problems


def _check_signature(report: Report, signer: x509.Certificate | None, now: datetime) -> None:
    _check_signature_as("RFR", report, signer, now)


def _check_signature_as(
    code: str, report: Report, signer: x509.Certificate | None, now: datetime
) -> None:
    problem = _failed(report, "signature")
    if problem:
        raise _Rejected(code, problem)
    if signer is not None and not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
        raise _Rejected(code, "el certificado que firma el envío no está vigente")


def _set_digest(root: etree._Element) -> str:
    value = root.findtext(f"{DSIG}Signature/{DSIG}SignedInfo/{DSIG}Reference/{DSIG}DigestValue")
    return "".join((value or "").split())


def _check_consistency(root: etree._Element, report: Report) -> None:
    emisor = _caratula_text(root, "RutEmisor")
    for document in report.documents:
        if document.rut_emisor is None or not _same_rut(document.rut_emisor, emisor):
            raise _Rejected(
                "RCO",
                f"el DTE tipo {document.tipo_dte} folio {document.folio} es del emisor "
                f"{document.rut_emisor}, no del emisor de la Caratula {emisor}",
            )


# --- Documents ------------------------------------------------------------------------------


def _check_documents(
    root: etree._Element, report: Report, lookups: Lookups
) -> tuple[DocumentOutcome, ...]:
    keys = [_key(document) for document in report.documents]
    seen = set(lookups.accepted_before(keys))  # one lookup for the whole envelope
    outcomes = []
    elements = root.iterfind("{*}SetDTE/{*}DTE")
    for element, document, key in zip(elements, report.documents, keys, strict=True):
        outcome = _document_outcome(element, document, key in seen)
        if outcome.accepted:
            seen.add(key)
        outcomes.append(outcome)
    return tuple(outcomes)


def _key(document: DocumentReport) -> tuple[str, int, int]:
    return _canonical(document.rut_emisor or ""), document.tipo_dte or 0, document.folio or 0


def _document_outcome(
    element: etree._Element, document: DocumentReport, repeated: bool
) -> DocumentOutcome:
    documento = next(
        (child for child in element.iterchildren(etree.Element) if child.tag != f"{DSIG}Signature"),
        None,
    )
    rut, tipo, folio = _key(document)
    fecha = _date(_text(documento, "Encabezado/IdDoc/FchEmis"))
    problems: list[Problem] = []
    if repeated:
        # The SII's code DTE-3-100 (SII_BEHAVIOUR.md: "Repeats").
        problems.append(
            Problem("DTE", 100, "DTE Repetido", f"el folio {folio} del tipo {tipo} ya fue recibido")
        )
    problems.extend(_report_problems(document))
    problems.extend(_caf_problems(documento, folio, fecha))
    return DocumentOutcome(
        rut_emisor=rut,
        tipo_dte=tipo,
        folio=folio,
        fecha_emision=fecha,
        rut_receptor=_canonical(_text(documento, "Encabezado/Receptor/RUTRecep") or ""),
        monto_total=_int(_text(documento, "Encabezado/Totales/MntTotal")),
        problems=tuple(problems),
    )


def _report_problems(document: DocumentReport) -> list[Problem]:
    problems = []
    signature, caf, ted, totals = (document.check(n) for n in ("signature", "caf", "ted", "totals"))
    if signature is None or not signature.ok:
        detail = signature.detail if signature else None
        problems.append(Problem("DTE", 2, "Firma del DTE Incorrecta", detail))
    if caf is not None and not caf.ok:
        problems.append(Problem("CAF", 3, "CAF no Autorizado por el SII", caf.detail))
    if ted is not None and not ted.ok:
        # The folio range is reported apart (code 4); only the TED's own problems count here.
        own = [part for part in ted.detail.split("; ") if "outside the CAF range" not in part]
        if own:
            problems.append(
                Problem("TED", 6, "Timbre Electronico (TED) Incorrecto", "; ".join(own))
            )
    if totals is not None and not totals.ok:
        problems.append(
            Problem("HED", 7, "Montos del Documento no Cuadran con el Detalle", totals.detail)
        )
    return problems


def _caf_problems(
    documento: etree._Element | None, folio: int, fecha: date | None
) -> list[Problem]:
    caf = _caf_of(documento)
    if caf is None:
        return []
    problems = []
    if not caf.contains(folio):
        problems.append(
            Problem(
                "CAF",
                4,
                "Folio fuera del Rango Autorizado en el CAF",
                f"folio {folio} fuera del rango {caf.folio_desde}-{caf.folio_hasta}",
            )
        )
    expires_on = caf.expires_on()
    if expires_on is not None and fecha is not None and fecha > expires_on:
        problems.append(
            Problem("CAF", 5, "CAF Vencido", f"el CAF venció el {expires_on.isoformat()}")
        )
    return problems


def _caf_of(documento: etree._Element | None) -> CafPublic | None:
    element = documento.find("{*}TED/{*}DD/{*}CAF") if documento is not None else None
    if element is None:
        return None
    try:
        return parse_caf_element(flat_xml(element))
    except CafError:
        return None


# --- Libros ---------------------------------------------------------------------------------
# A LibroCompraVenta or LibroGuia uploaded through DTEUpload (dte/core/CERTIFICATION.md, "How
# the SII answers a libro"). The codes are the sources' reading of the SII's L… states, whose
# meanings no SII text settles ([OPEN]; SII_BEHAVIOUR.md, "Libros", says which is used for what).
LOK = "LOK"
LIBRO_GLOSAS = {
    LOK: "Libro Cuadrado",
    "LRS": "Libro Rechazado por Error en Schema",
    "LRC": "Libro Rechazado por Error en Caratula",
    "LRF": "Libro Rechazado por Error en Firma",
    "LRH": "Libro Rechazado",
}


def check_libro(data: bytes, *, upload: Upload, lookups: Lookups, now: datetime) -> Outcome:
    """The verdict on an uploaded libro (the bytes are known to be well-formed XML), in the
    order the envelope's are reached: schema (LRS), carátula (LRC: RutEmisorLibro is the
    uploading company, RutEnvia the certificate that signs and the user who uploads,
    FchResol/NroResol the company's resolution when the company is known here), signature over
    EnvioLibro and the signing certificate's validity (LRF); else LOK. `set_digest` is the
    signature's digest of EnvioLibro."""
    report = verify_libro(data)
    root = safe_parse(data)
    digest = _set_digest(root)
    try:
        problem = _failed(report, "schema")
        if problem:
            raise _Rejected("LRS", problem)
        signer = _signer_certificate(root)
        _check_libro_caratula(root, upload, signer, lookups)
        _check_signature_as("LRF", report, signer, now)
    except _Rejected as rejected:
        glosa = f"{LIBRO_GLOSAS[rejected.code]} - {rejected.detail}"[:_MAX_DETAIL]
        return Outcome(rejected.code, glosa, digest)
    return Outcome(LOK, LIBRO_GLOSAS[LOK], digest)


def _libro_caratula_text(root: etree._Element, name: str) -> str:
    return (root.findtext(f"{{*}}EnvioLibro/{{*}}Caratula/{{*}}{name}") or "").strip()


def _check_libro_caratula(
    root: etree._Element,
    upload: Upload,
    signer: x509.Certificate | None,
    lookups: Lookups,
) -> None:
    problems: list[str] = []
    emisor = _libro_caratula_text(root, "RutEmisorLibro")
    if not _same_rut(emisor, upload.rut_company):
        problems.append(
            f"RutEmisorLibro {emisor} no es la empresa del envío ({upload.rut_company})"
        )
    envia = _libro_caratula_text(root, "RutEnvia")
    signer_rut = rut_from_certificate(signer) if signer is not None else None
    if signer_rut is None or not _same_rut(envia, signer_rut):
        problems.append(f"RutEnvia {envia} no es el RUT del certificado que firma ({signer_rut})")
    if not _same_rut(envia, upload.rut_sender):
        problems.append(f"RutEnvia {envia} no es el usuario que envía ({upload.rut_sender})")
    problems.extend(
        _resolution_problems(root, upload.rut_company, lookups, text=_libro_caratula_text)
    )
    if problems:
        raise _Rejected("LRC", "; ".join(problems))


# --- Small helpers --------------------------------------------------------------------------


def _text(parent: etree._Element | None, path: str) -> str | None:
    if parent is None:
        return None
    value = parent.findtext("/".join(f"{{*}}{step}" for step in path.split("/")))
    return value.strip() if value is not None else None


def _canonical(rut: str) -> str:
    try:
        return normalize_rut(rut)
    except InvalidRut:
        return rut.strip().upper()


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
