"""Verify any DTE, EnvioDTE or EnvioBOLETA, ours or a supplier's (DOMAIN.md §6–§10, §17), and
a signed libro (verify_libro: its schema and signature).

Pure: no Django, no network, no clock. Bad input never raises: it yields a Report whose checks
say what failed and why.

Checks, by name:
  xml        the bytes parse as XML (hostile-input parser, no DTD)
  schema     the envelope against EnvioDTE/EnvioBOLETA, or a lone DTE against DTE_v10
  signature  XML-DSig: the envelope's (SetDTE, in the envelope's context) and each DTE's
             (Documento, checked standalone: the DTE copied out to its own document, as the SII
             signs and checks it; inclusive C14N differs once the envelope's xmlns:xsi is in scope)
  ted        FRMT over the DD bytes with the CAF key in DD, and DD against the document
  caf        the CAF's FRMA against the SII key named by its IDK
  totals     Detalle and DscRcgGlobal against Totales (skipped, as ok, for what is not modelled)

Signatures are verified with the key of the X509Certificate they carry; whether that certificate
is trusted (issuing CA, validity dates, holder's RUT = RutEnvia) is not decided here.
"""

import base64
import binascii
import copy
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from lxml import etree

from dte.core.caf import (
    CafError,
    CafPublic,
    SiiKeyUnavailable,
    official_sii_keys,
    parse_caf_element,
    verify_caf_signature,
)
from dte.core.schemas import (
    BOLETA_TYPES,
    SIIDTE_NS,
    SchemaKind,
    XmlError,
    kind_of,
    safe_parse,
    validate,
)
from erp.doctypes import TASA_IVA, Envio, TipoDte, codes

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_DS = f"{{{DSIG_NS}}}"
C14N_INCLUSIVE = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
_DIGESTS = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
}
# Transforms a signature may use here; anything else (XPath, XSLT, …) is refused by xmlsec.
_ALLOWED_TRANSFORMS = (
    xmlsec.constants.TransformInclC14N,
    xmlsec.constants.TransformInclC14NWithComments,
    xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformExclC14NWithComments,
    xmlsec.constants.TransformEnveloped,
    xmlsec.constants.TransformSha1,
    xmlsec.constants.TransformSha256,
    xmlsec.constants.TransformRsaSha1,
    xmlsec.constants.TransformRsaSha256,
)
BOLETAS = codes(lambda d: d.envio is Envio.BOLETA)
EXEMPT_TYPES = codes(lambda d: d.exempt_only)  # every line is exempt
# Types whose totals follow the plain model (lines, global adjustments, IVA; 46 with the IVA
# retained in full, ImptoReten TipoImp 15).
MODELLED_TYPES = frozenset(int(t) for t in TipoDte if t.spec.root == "Documento")
# Totales children the model covers; any other one with a non-zero value skips the check.
_MODELLED_TOTALES = frozenset(
    {"MntNeto", "MntExe", "TasaIVA", "IVA", "MntTotal", "SaldoAnterior", "VlrPagar", "MontoPeriodo"}
)
IT1_MAX = 40
_MAX_LISTED_ERRORS = 10
_WHITESPACE = re.compile(r"\s+")
_PLAIN_DECIMAL = re.compile(r"^-?\d{1,18}(\.\d{1,10})?$")


# --- Report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


# Which form of a file its signature verified in: suppliers' files and the SII portal's
# downloads sometimes lose (or gain) the SiiDte namespace after being signed.
AS_WRITTEN = "as written"
NAMESPACE_ADDED = "SiiDte namespace added"
NAMESPACE_REMOVED = "SiiDte namespace removed"


@dataclass(frozen=True)
class DocumentReport:
    tipo_dte: int | None
    folio: int | None
    rut_emisor: str | None
    checks: tuple[Check, ...]
    signed_form: str = AS_WRITTEN

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tipo_dte": self.tipo_dte,
            "folio": self.folio,
            "rut_emisor": self.rut_emisor,
            "ok": self.ok,
            "signed_form": self.signed_form,
            "checks": [check.to_dict() for check in self.checks],
        }


@dataclass(frozen=True)
class Report:
    kind: str  # "EnvioDTE", "EnvioBOLETA", "DTE" or "unknown"
    checks: tuple[Check, ...]
    documents: tuple[DocumentReport, ...] = ()
    signed_form: str = AS_WRITTEN  # the envelope signature's

    @property
    def ok(self) -> bool:
        return (
            bool(self.documents)
            and all(check.ok for check in self.checks)
            and all(document.ok for document in self.documents)
        )

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ok": self.ok,
            "signed_form": self.signed_form,
            "checks": [check.to_dict() for check in self.checks],
            "documents": [document.to_dict() for document in self.documents],
        }


# --- Entry point ----------------------------------------------------------------------------


def verify_xml(data: bytes, *, sii_keys: Mapping[int, RSAPublicKey] | None = None) -> Report:
    """Verify a DTE, EnvioDTE or EnvioBOLETA. `sii_keys` maps CAF IDK to the SII's key
    (default: the official ones, 100 certification and 300 production); it may raise
    SiiKeyUnavailable for an IDK whose key cannot be had, which fails that CAF's check with
    the reason."""
    try:
        root = safe_parse(data)
    except XmlError as exc:
        return Report("unknown", (Check("xml", False, str(exc)),))
    xml_check = Check("xml", True, f"root element {etree.QName(root).localname}")
    kind = kind_of(root)
    if kind is None:
        detail = f"unknown root element {root.tag}: expected EnvioDTE, EnvioBOLETA or DTE"
        return Report("unknown", (xml_check, Check("schema", False, detail)))
    context = _Context(official_sii_keys() if sii_keys is None else sii_keys)
    schema_check = _guard("schema", lambda: _schema_check(kind, root))
    if kind is SchemaKind.DTE:
        document = _verify_document(root, root, context)
        return Report(kind.value, (xml_check, schema_check), (document,))
    envelope_signature, form = _in_some_form(
        root, lambda variant: _envelope_signature_check(variant, context)
    )
    documents = tuple(
        _verify_document(dte, _standalone(dte), context)
        for dte in root.iterfind("{*}SetDTE/{*}DTE")
    )
    return Report(kind.value, (xml_check, schema_check, envelope_signature), documents, form)


# Libros (dte.core.libro): the root's name → its schema and the schema file's name.
LIBRO_KINDS = {
    SchemaKind.LIBRO_CV.value: (SchemaKind.LIBRO_CV, "LibroCV_v10"),
    SchemaKind.LIBRO_GUIA.value: (SchemaKind.LIBRO_GUIA, "LibroGuia_v10"),
}


def libro_kind(root: etree._Element) -> SchemaKind | None:
    """LibroCompraVenta or LibroGuia by the root tag (in the SiiDte namespace or none)."""
    if not isinstance(root.tag, str):
        return None
    qname = etree.QName(root.tag)
    if qname.namespace not in (SIIDTE_NS, None) or qname.localname not in LIBRO_KINDS:
        return None
    return LIBRO_KINDS[qname.localname][0]


def verify_libro(data: bytes) -> Report:
    """Verify a signed libro (LibroCompraVenta or LibroGuia, dte/core/CERTIFICATION.md): `xml`,
    `schema` (LibroCV_v10 or LibroGuia_v10) and `signature` (the root's Signature over
    EnvioLibro, by its ID, with the key of the certificate it carries). The Report's kind is
    the root's name; a libro has no documents, so look at its checks, not at `ok`."""
    try:
        root = safe_parse(data)
    except XmlError as exc:
        return Report("unknown", (Check("xml", False, str(exc)),))
    xml_check = Check("xml", True, f"root element {etree.QName(root).localname}")
    kind = libro_kind(root)
    if kind is None:
        detail = f"unknown root element {root.tag}: expected LibroCompraVenta or LibroGuia"
        return Report("unknown", (xml_check, Check("schema", False, detail)))
    schema_file = LIBRO_KINDS[kind.value][1]

    def schema_check() -> Check:
        errors = validate(kind, root)
        if errors:
            listed = errors[:_MAX_LISTED_ERRORS]
            more = len(errors) - len(listed)
            tail = [f"… and {more} more"] if more else []
            return Check("schema", False, "; ".join([*listed, *tail]))
        return Check("schema", True, f"valid against {schema_file}")

    def signature_check() -> Check:
        envio = root.find("{*}EnvioLibro")
        if envio is None:
            return Check("signature", False, "the libro has no EnvioLibro")
        signature = root.find(f"{_DS}Signature")
        return _signature_check(root, envio, signature, _Context({}), "EnvioLibro")

    checks = (xml_check, _guard("schema", schema_check), _guard("signature", signature_check))
    return Report(kind.value, checks)


def _guard(name: str, run: Callable[[], Check]) -> Check:
    """Run one check; an unexpected failure on odd input becomes a failed check, not a crash."""
    try:
        return run()
    except Exception as exc:
        return Check(name, False, f"could not check: {type(exc).__name__}: {exc}")


@dataclass
class _Context:
    """Per-call memo: an envelope repeats the same certificate and CAF in every document."""

    sii_keys: Mapping[int, RSAPublicKey]
    keys: dict[str, "_SigningKey"] = field(default_factory=dict)
    cafs: dict[bytes, CafPublic | CafError] = field(default_factory=dict)
    caf_signatures: dict[tuple[bytes, bytes, int], bool] = field(default_factory=dict)

    def signing_key(self, signature: etree._Element) -> "_SigningKey":
        key_info = signature.find(f"{_DS}KeyInfo")
        memo = (
            _WHITESPACE.sub("", etree.tostring(key_info, encoding="unicode"))
            if key_info is not None
            else ""
        )
        if memo not in self.keys:
            self.keys[memo] = _load_signing_key(signature)
        return self.keys[memo]

    def caf(self, element: etree._Element) -> CafPublic | CafError:
        memo = etree.tostring(element, with_tail=False)
        if memo not in self.cafs:
            try:
                self.cafs[memo] = parse_caf_element(flat_xml(element))
            except CafError as exc:
                self.cafs[memo] = exc
        return self.cafs[memo]

    def caf_signature_ok(self, caf: CafPublic, sii_key: RSAPublicKey) -> bool:
        memo = (caf.da_xml, caf.frma, caf.idk)
        if memo not in self.caf_signatures:
            self.caf_signatures[memo] = verify_caf_signature(caf, sii_key)
        return self.caf_signatures[memo]


# --- Schema ---------------------------------------------------------------------------------


def _schema_check(kind: SchemaKind, root: etree._Element) -> Check:
    notes: list[str] = []
    target = root
    if kind is SchemaKind.DTE:
        target, ignored = _without_trailing_elements(root)
        if ignored:
            notes.append(
                f"ignored element(s) after the DTE signature, outside the SII schema and not "
                f"signed: {', '.join(ignored)}"
            )
    if etree.QName(root).namespace is None:
        notes.append("validated with the SiiDte namespace added (the document has none)")
    schema_file = _schema_name(kind, root)
    errors = validate(kind, target)
    if errors:
        listed = errors[:_MAX_LISTED_ERRORS]
        more = len(errors) - len(listed)
        tail = [f"… and {more} more"] if more else []
        return Check("schema", False, "; ".join([*listed, *tail, *notes]))
    return Check("schema", True, "; ".join([f"valid against {schema_file}", *notes]))


def _schema_name(kind: SchemaKind, root: etree._Element) -> str:
    if kind is SchemaKind.ENVIO_BOLETA:
        return "EnvioBOLETA_v11 (2024)"
    tipo = _text(_document_element(root), "Encabezado/IdDoc/TipoDTE")
    if kind is SchemaKind.DTE and tipo in BOLETA_TYPES:
        return "the boleta DTE type of EnvioBOLETA_v11 (2024)"
    return f"{kind}_v10"


def _without_trailing_elements(dte: etree._Element) -> tuple[etree._Element, list[str]]:
    """A lone DTE may carry an intermediary's elements after its Signature (e.g. a platform's
    DocPersonalizado): not signed, not SII schema. Validate a copy without them."""
    signature = dte.find(f"{_DS}Signature")
    if signature is None:
        return dte, []
    trailing = [el for el in signature.itersiblings() if isinstance(el.tag, str)]
    if not trailing:
        return dte, []
    clone = copy.deepcopy(dte)
    clone_signature = clone.find(f"{_DS}Signature")
    assert clone_signature is not None
    for element in list(clone_signature.itersiblings()):
        clone.remove(element)
    return clone, [etree.QName(el).localname for el in trailing]


# --- Documents ------------------------------------------------------------------------------


def _standalone(dte: etree._Element) -> etree._Element:
    """The DTE as its own document, as it was signed: its own namespace declarations plus those
    it uses from the envelope, but not the envelope's unused ones (xmlns:xsi). A deep copy does
    exactly that (libxml2 declares the used namespaces on the copy's root)."""
    return copy.deepcopy(dte)


def _document_element(dte: etree._Element) -> etree._Element | None:
    """Documento, Liquidacion or Exportaciones: the DTE's first non-signature child element."""
    for child in dte.iterchildren(etree.Element):
        if child.tag != f"{_DS}Signature":
            return child
    return None


def _text(parent: etree._Element | None, path: str) -> str | None:
    if parent is None:
        return None
    element = parent.find("/".join(f"{{*}}{step}" for step in path.split("/")))
    if element is None or element.text is None:
        return None
    return str(element.text).strip()


def _int(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def _verify_document(
    dte: etree._Element, standalone: etree._Element, context: _Context
) -> DocumentReport:
    document = _document_element(dte)
    tipo = _int(_text(document, "Encabezado/IdDoc/TipoDTE"))
    folio = _int(_text(document, "Encabezado/IdDoc/Folio"))
    rut = _text(document, "Encabezado/Emisor/RUTEmisor")
    if document is None:
        missing = Check("signature", False, "the DTE has no Documento")
        return DocumentReport(tipo, folio, rut, (missing,))
    signature, form = _in_some_form(
        standalone, lambda variant: _document_signature_check(variant, context)
    )
    ted, caf = _ted_and_caf_checks(document, context)
    totals = _guard("totals", lambda: _totals_check(document, tipo))
    return DocumentReport(tipo, folio, rut, (signature, ted, caf, totals), form)


def _in_some_form(
    root: etree._Element, check: Callable[[etree._Element], Check]
) -> tuple[Check, str]:
    """The signature check on the file as written and, when that fails, on the same file with
    the SiiDte namespace added (or removed): the first form that verifies wins. A failure is
    reported as written."""
    written = _guard("signature", lambda: check(root))
    if written.ok:
        return written, AS_WRITTEN
    try:
        variant, form = _namespace_variant(root)
    except (XmlError, ValueError):
        return written, AS_WRITTEN
    other = _guard("signature", lambda: check(variant))
    if not other.ok:
        return written, AS_WRITTEN
    return Check("signature", True, f"{other.detail} (with the {form})"), form


def _namespace_variant(root: etree._Element) -> tuple[etree._Element, str]:
    """A copy of the document with its SiiDte elements moved into, or out of, the SiiDte
    namespace (the signatures stay in theirs), re-parsed so that its namespace declarations are
    exactly those of a file written that way."""
    adding = etree.QName(root).namespace is None
    target = SIIDTE_NS if adding else None
    own = {SIIDTE_NS, None}
    keep = {p: uri for p, uri in root.nsmap.items() if p is not None and uri != SIIDTE_NS}

    def rebuild(element: etree._Element, parent: etree._Element | None) -> etree._Element:
        qname = etree.QName(element)
        if qname.namespace in own:
            tag = f"{{{target}}}{qname.localname}" if target else qname.localname
            nsmap: dict[str | None, str] = {None: target} if target else {}
        else:
            tag, nsmap = element.tag, {None: qname.namespace} if qname.namespace else {}
        if parent is None:
            nsmap = {**keep, **nsmap}
            new = etree.Element(tag, nsmap=nsmap)
        else:
            inherited = parent.nsmap.get(None)
            new = etree.SubElement(
                parent, tag, nsmap=nsmap if nsmap.get(None) != inherited else None
            )
        for name, value in element.attrib.items():
            new.set(name, value)
        new.text = element.text
        for child in element:
            if isinstance(child.tag, str):
                rebuild(child, new).tail = child.tail
            else:  # a comment or processing instruction, with its tail
                new.append(copy.copy(child))
        return new

    rebuilt = rebuild(root, None)
    form = NAMESPACE_ADDED if adding else NAMESPACE_REMOVED
    return safe_parse(etree.tostring(rebuilt)), form


# --- XML signatures -------------------------------------------------------------------------


@dataclass(frozen=True)
class _SigningKey:
    """The verification key from a signature's KeyInfo (None when there is none usable).

    `other` is RSAKeyValue's key when it differs from the certificate's: never trusted, only
    used to explain a failure."""

    key: xmlsec.Key | None
    description: str
    other: xmlsec.Key | None = None


def _envelope_signature_check(root: etree._Element, context: _Context) -> Check:
    set_dte = root.find("{*}SetDTE")
    if set_dte is None:
        return Check("signature", False, "the envelope has no SetDTE")
    return _signature_check(root, set_dte, root.find(f"{_DS}Signature"), context, "SetDTE")


def _document_signature_check(standalone: etree._Element, context: _Context) -> Check:
    document = _document_element(standalone)
    assert document is not None  # checked by the caller
    signature = standalone.find(f"{_DS}Signature")
    what = etree.QName(document).localname
    return _signature_check(standalone, document, signature, context, what)


def _signature_check(
    doc_root: etree._Element,
    signed: etree._Element,
    signature: etree._Element | None,
    context: _Context,
    what: str,
) -> Check:
    if signature is None:
        return Check("signature", False, f"the {what} is not signed (no Signature)")
    problem = _reference_problem(doc_root, signed, signature, what)
    if problem:
        return Check("signature", False, problem)
    signing_key = context.signing_key(signature)
    if signing_key.key is None:
        return Check("signature", False, f"{what} signature: {signing_key.description}")
    xmlsec.tree.add_ids(doc_root, ["ID"])
    try:
        verified = _xmlsec_verifies(signature, signing_key.key)
    except xmlsec.Error as exc:
        return Check("signature", False, f"{what} signature cannot be processed: {exc}")
    if verified:
        algorithm = _signature_algorithm(signature)
        detail = f"{what} signature verified ({algorithm}) with {signing_key.description}"
        return Check("signature", True, detail)
    reason = _failure_reason(signed, signature, signing_key)
    detail = f"{what} signature does not verify with {signing_key.description}: {reason}"
    return Check("signature", False, detail)


def _xmlsec_verifies(signature: etree._Element, key: xmlsec.Key) -> bool:
    """xmlsec's verdict; raises xmlsec.Error when the signature cannot be processed."""
    ctx = xmlsec.SignatureContext()
    for transform in _ALLOWED_TRANSFORMS:
        ctx.enable_reference_transform(transform)
        ctx.enable_signature_transform(transform)
    ctx.key = key
    try:
        ctx.verify(signature)
    except xmlsec.VerificationError:
        return False
    return True


def _reference_problem(
    doc_root: etree._Element, signed: etree._Element, signature: etree._Element, what: str
) -> str:
    """The signature must cover exactly the signed element: one Reference to its unique ID."""
    signed_id = signed.get("ID")
    if not signed_id:
        return f"the {what} has no ID attribute to sign"
    uris = [ref.get("URI") for ref in signature.iterfind(f"{_DS}SignedInfo/{_DS}Reference")]
    if uris != [f"#{signed_id}"]:
        return f"the signature must have one Reference to #{signed_id}, it has {uris}"
    if len(doc_root.xpath("//*[@ID=$id]", id=signed_id)) != 1:
        return f"the ID {signed_id!r} is not unique in the document"
    return ""


def _signature_algorithm(signature: etree._Element) -> str:
    method = signature.find(f"{_DS}SignedInfo/{_DS}SignatureMethod")
    uri = method.get("Algorithm", "") if method is not None else ""
    return uri.rsplit("#", 1)[-1] or "unknown algorithm"


def _failure_reason(
    signed: etree._Element, signature: etree._Element, signing_key: _SigningKey
) -> str:
    reference = signature.find(f"{_DS}SignedInfo/{_DS}Reference")
    assert reference is not None  # checked by _reference_problem
    digest_ok = _digest_matches(signed, reference)
    if digest_ok is False:
        return "the digest does not match: the signed content was altered (or signed elsewhere)"
    if signing_key.other is not None and _xmlsec_verifies(signature, signing_key.other):
        return (
            "the SignatureValue verifies only with the RSAKeyValue key, which is not the "
            "certificate's key, so the certificate holder did not make this signature"
            + (" (the digest matches)" if digest_ok else "")
        )
    if digest_ok:
        return "the digest matches but the SignatureValue does not verify"
    return "the digest or the SignatureValue does not match"


def _digest_matches(signed: etree._Element, reference: etree._Element) -> bool | None:
    """Recompute the Reference digest (inclusive C14N only) to tell content changes from a bad
    SignatureValue. None when the reference uses something else. Diagnostic only."""
    transforms = [t.get("Algorithm") for t in reference.iterfind(f"{_DS}Transforms/{_DS}Transform")]
    method = reference.find(f"{_DS}DigestMethod")
    digest_name = _DIGESTS.get(method.get("Algorithm", "")) if method is not None else None
    expected = _b64decode(_text_of(reference.find(f"{_DS}DigestValue")))
    if any(t != C14N_INCLUSIVE for t in transforms) or digest_name is None or expected is None:
        return None
    # tostring() declares every namespace in scope, as inclusive C14N of a subtree needs; the
    # re-parse avoids lxml's C14N of a non-root element (spurious xmlns="", DOMAIN.md §9).
    try:
        reparsed = safe_parse(etree.tostring(signed, with_tail=False))
    except XmlError:
        return None
    canonical = etree.tostring(reparsed, method="c14n", exclusive=False, with_comments=False)
    return hashlib.new(digest_name, canonical).digest() == expected


def _text_of(element: etree._Element | None) -> str:
    return (element.text or "") if element is not None else ""


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(_WHITESPACE.sub("", text), validate=True) or None
    except (binascii.Error, ValueError):
        return None


def _load_signing_key(signature: etree._Element) -> _SigningKey:
    """The X509Certificate's key (the signer's certificate), else RSAKeyValue."""
    key_info = f"{_DS}KeyInfo/"
    certificate = _b64decode(
        _text_of(signature.find(f"{key_info}{_DS}X509Data/{_DS}X509Certificate"))
    )
    key_value = _rsa_key_value(signature.find(f"{key_info}{_DS}KeyValue/{_DS}RSAKeyValue"))
    if certificate is not None:
        return _certificate_key(certificate, key_value)
    if key_value is not None:
        return _SigningKey(_xmlsec_key(key_value), "the RSAKeyValue key (no X509Certificate)")
    return _SigningKey(None, "KeyInfo has no X509Certificate nor RSAKeyValue")


def _rsa_key_value(element: etree._Element | None) -> RSAPublicKey | None:
    if element is None:
        return None
    modulus = _b64decode(_text_of(element.find(f"{_DS}Modulus")))
    exponent = _b64decode(_text_of(element.find(f"{_DS}Exponent")))
    if modulus is None or exponent is None:
        return None
    try:
        numbers = rsa.RSAPublicNumbers(
            int.from_bytes(exponent, "big"), int.from_bytes(modulus, "big")
        )
        return numbers.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None


def _certificate_key(der: bytes, key_value: RSAPublicKey | None) -> _SigningKey:
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        # Some CA certificates are too old for `cryptography`; OpenSSL (via xmlsec) may read them.
        try:
            key = xmlsec.Key.from_memory(der, xmlsec.constants.KeyDataFormatCertDer)
        except xmlsec.Error:
            return _SigningKey(None, "the X509Certificate cannot be read")
        return _SigningKey(key, "the X509Certificate key")
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return _SigningKey(None, "the X509Certificate's public key cannot be read")
    if not isinstance(public_key, RSAPublicKey):
        return _SigningKey(None, "the X509Certificate does not hold an RSA key")
    other = None
    if key_value is not None and key_value.public_numbers() != public_key.public_numbers():
        other = _xmlsec_key(key_value)
    description = f"the X509Certificate key of {_subject_name(certificate)}"
    return _SigningKey(_xmlsec_key(public_key), description, other)


def _subject_name(certificate: x509.Certificate) -> str:
    try:
        names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    except ValueError:
        return "an unreadable subject"
    if names:
        return str(names[0].value)
    return certificate.subject.rfc4514_string() or "an unnamed subject"


def _xmlsec_key(public_key: RSAPublicKey) -> xmlsec.Key:
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)


# --- TED and CAF ----------------------------------------------------------------------------


def _ted_and_caf_checks(document: etree._Element, context: _Context) -> tuple[Check, Check]:
    try:
        return _ted_and_caf(document, context)
    except Exception as exc:
        detail = f"could not check: {type(exc).__name__}: {exc}"
        return Check("ted", False, detail), Check("caf", False, detail)


def _ted_and_caf(document: etree._Element, context: _Context) -> tuple[Check, Check]:
    ted = document.find("{*}TED")
    dd = ted.find("{*}DD") if ted is not None else None
    if ted is None or dd is None:
        return (
            Check("ted", False, "the document has no TED/DD"),
            Check("caf", False, "no CAF: the document has no TED"),
        )
    caf_element = dd.find("{*}CAF")
    caf = context.caf(caf_element) if caf_element is not None else None
    return _ted_check(document, ted, dd, caf), _caf_check(caf, context)


def _ted_check(
    document: etree._Element,
    ted: etree._Element,
    dd: etree._Element,
    caf: CafPublic | CafError | None,
) -> Check:
    problems: list[str] = []
    frmt = ted.find("{*}FRMT")
    signature = _b64decode(_text_of(frmt))
    if caf is None:
        problems.append("DD has no CAF: FRMT cannot be verified")
    elif isinstance(caf, CafError):
        problems.append(f"the CAF in DD cannot be read, FRMT not verified: {caf.message}")
    elif frmt is None or signature is None:
        problems.append("FRMT is missing or not base64")
    elif frmt.get("algoritmo", "SHA1withRSA") != "SHA1withRSA":
        problems.append(f"FRMT algoritmo {frmt.get('algoritmo')!r} is not SHA1withRSA")
    elif not _frmt_verifies(dd, signature, caf.public_key):
        problems.append("FRMT does not verify with the CAF key (DD altered, or another CAF)")
    problems.extend(_dd_mismatches(document, dd))
    if isinstance(caf, CafPublic):
        problems.extend(_caf_mismatches(dd, caf))
    if problems:
        return Check("ted", False, "; ".join(problems))
    assert isinstance(caf, CafPublic)
    return Check(
        "ted",
        True,
        f"FRMT verified with the CAF key; DD matches the document; folio within the CAF range "
        f"{caf.folio_desde}-{caf.folio_hasta}",
    )


def _frmt_verifies(dd: etree._Element, signature: bytes, key: RSAPublicKey) -> bool:
    """FRMT over DD's bytes; an empty element may have been written <X></X> or <X/>."""
    if _rsa_sha1_verifies(key, signature, flat_xml(dd)):
        return True
    has_empty = any(len(el) == 0 and _is_blank(el.text) for el in dd.iter(etree.Element))
    return has_empty and _rsa_sha1_verifies(key, signature, flat_xml(dd, short_empty=True))


def _rsa_sha1_verifies(key: RSAPublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True


def flat_xml(element: etree._Element, *, short_empty: bool = False) -> bytes:
    """The element as the SII serialises DD for FRMT: ISO-8859-1, no namespace declarations, no
    whitespace between tags, text escaped as XML (C14N style), attributes in document order."""
    parts: list[str] = []
    _write_flat(element, parts, short_empty)
    return "".join(parts).encode("iso-8859-1", errors="xmlcharrefreplace")


def _write_flat(element: etree._Element, out: list[str], short_empty: bool) -> None:
    name = _localname(element.tag)
    attributes = "".join(
        f' {_localname(key)}="{_escape_attribute(value)}"' for key, value in element.items()
    )
    children = list(element.iterchildren(etree.Element))
    text = "" if _is_blank(element.text) else _escape_text(element.text or "")
    if short_empty and not children and not text:
        out.append(f"<{name}{attributes}/>")
        return
    out.append(f"<{name}{attributes}>{text}")
    for child in children:
        _write_flat(child, out, short_empty)
        if not _is_blank(child.tail):
            out.append(_escape_text(child.tail or ""))
    out.append(f"</{name}>")


def _localname(tag: str) -> str:
    return tag.rpartition("}")[2]


def _is_blank(text: str | None) -> bool:
    return not text or not text.strip(" \t\r\n")


def _escape_text(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")
    )


def _escape_attribute(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\t", "&#x9;")
        .replace("\n", "&#xA;")
        .replace("\r", "&#xD;")
    )


def _normal_rut(value: str) -> str:
    return value.replace(".", "").replace(" ", "").upper().lstrip("0")


def _same_number(a: str, b: str) -> bool:
    if _PLAIN_DECIMAL.match(a) and _PLAIN_DECIMAL.match(b):
        return Decimal(a) == Decimal(b)
    return a == b


def _first_item_name(document: etree._Element) -> str:
    name = _text(document.find("{*}Detalle"), "NmbItem") or ""
    return name[:IT1_MAX].strip()


def _dd_mismatches(document: etree._Element, dd: etree._Element) -> list[str]:
    """DD must repeat the document's data (DOMAIN.md §7)."""
    comparisons: list[tuple[str, str, Callable[[str, str], bool]]] = [
        ("RE", _text(document, "Encabezado/Emisor/RUTEmisor") or "", _same_rut),
        ("TD", _text(document, "Encabezado/IdDoc/TipoDTE") or "", _same_number),
        ("F", _text(document, "Encabezado/IdDoc/Folio") or "", _same_number),
        ("FE", _text(document, "Encabezado/IdDoc/FchEmis") or "", str.__eq__),
        ("RR", _text(document, "Encabezado/Receptor/RUTRecep") or "", _same_rut),
        ("MNT", _text(document, "Encabezado/Totales/MntTotal") or "", _same_number),
        ("IT1", _first_item_name(document), str.__eq__),
    ]
    problems = []
    for tag, expected, same in comparisons:
        actual = _text(dd, tag) or ""
        if not same(actual, expected):
            problems.append(f"DD/{tag} is {actual!r} but the document has {expected!r}")
    return problems


def _same_rut(a: str, b: str) -> bool:
    return _normal_rut(a) == _normal_rut(b)


def _caf_mismatches(dd: etree._Element, caf: CafPublic) -> list[str]:
    problems = []
    if not _same_rut(_text(dd, "RE") or "", caf.rut_emisor):
        problems.append(f"DD/RE is not the CAF's emisor {caf.rut_emisor}")
    if _int(_text(dd, "TD")) != caf.tipo_dte:
        problems.append(f"DD/TD is not the CAF's document type {caf.tipo_dte}")
    folio = _int(_text(dd, "F"))
    if folio is None or not caf.contains(folio):
        problems.append(
            f"folio {folio} is outside the CAF range {caf.folio_desde}-{caf.folio_hasta}"
        )
    return problems


def _caf_check(caf: CafPublic | CafError | None, context: _Context) -> Check:
    if caf is None:
        return Check("caf", False, "DD has no CAF")
    if isinstance(caf, CafError):
        return Check("caf", False, f"the CAF cannot be read: {caf.message}")
    try:
        sii_key = context.sii_keys.get(caf.idk)
    except SiiKeyUnavailable as exc:
        return Check(
            "caf", False, f"no se puede verificar la FRMA con la clave IDK {caf.idk}: {exc}"
        )
    if sii_key is None:
        known = ", ".join(str(idk) for idk in sorted(context.sii_keys)) or "none"
        return Check("caf", False, f"IDK {caf.idk} is unknown (known SII keys: {known})")
    if context.caf_signature_ok(caf, sii_key):
        return Check("caf", True, f"FRMA verified with the SII key IDK {caf.idk}")
    detail = f"FRMA does not verify with the SII key IDK {caf.idk} (CAF altered or not the SII's)"
    return Check("caf", False, detail)


# --- Totals ---------------------------------------------------------------------------------


class _NotModelled(Exception):
    """The document uses something the totals model does not cover: skip, do not fail."""


def _totals_check(document: etree._Element, tipo: int | None) -> Check:
    try:
        problems = _totals_problems(document, tipo)
    except _NotModelled as exc:
        return Check("totals", True, f"not checked: {exc}")
    if problems:
        return Check("totals", False, "; ".join(problems))
    return Check("totals", True, "Totales match the detail lines")


# An export's amounts may be rounded to its currency's minor unit or to the schema's 4 decimals,
# and its DescuentoMonto is whole (MntImpType): a line may differ by less than one unit, and
# the total, the sum of lines and globals, by less than a cent (EXPORTS.md §1.6).
EXPORT_LINE_TOLERANCE = Decimal(1)
EXPORT_TOTAL_TOLERANCE = Decimal("0.01")


def _export_problems(document: etree._Element) -> list[str]:
    """Detalle and DscRcgGlobal against Totales (and OtraMoneda) of an Exportaciones."""
    problems = []
    total = Decimal(0)
    for detalle in document.iterfind("{*}Detalle"):
        amount = _amount(detalle, "MontoItem") or Decimal(0)
        qty, price = _amount(detalle, "QtyItem"), _amount(detalle, "PrcItem")
        if qty is not None and price is not None:
            expected = (
                qty * price
                - (_amount(detalle, "DescuentoMonto") or 0)
                + (_amount(detalle, "RecargoMonto") or 0)
            )
            if abs(expected - amount) >= EXPORT_LINE_TOLERANCE:
                line = _text(detalle, "NroLinDet")
                problems.append(f"line {line}: MontoItem {amount} is not QtyItem × PrcItem")
        total += amount
    for dr in document.iterfind("{*}DscRcgGlobal"):
        value = _amount(dr, "ValorDR") or Decimal(0)
        if _text(dr, "TpoValor") == "%":
            value = total * value / 100
        total += value if _text(dr, "TpoMov") == "R" else -value
    totales = document.find("{*}Encabezado/{*}Totales")
    declared = _amount(totales, "MntTotal") if totales is not None else None
    if declared is None or abs(declared - total) >= EXPORT_TOTAL_TOLERANCE:
        problems.append(f"MntTotal {declared} is not the lines and globals' {total}")
    otra = document.find("{*}Encabezado/{*}OtraMoneda")
    if otra is not None and declared is not None:
        rate, pesos = _amount(otra, "TpoCambio"), _amount(otra, "MntTotOtrMnda")
        if rate is not None and pesos is not None and abs(declared * rate - pesos) > 1:
            problems.append(f"MntTotOtrMnda {pesos} is not MntTotal × TpoCambio")
    return problems


def _liquidacion_problems(document: etree._Element) -> list[str]:
    """Detalle and Comisiones against Totales of a Liquidacion (43, dte/core/EXPORTS.md §6):
    MntNeto/MntExe the lines' sums, IVA 19 % of MntNeto, Totales/Comisiones the Comisiones
    lines' sums with each ValComIVA 19 % of its ValComNeto, and MntTotal = MntNeto + MntExe +
    IVA − ValComNeto − ValComExe − ValComIVA."""
    totales = document.find("{*}Encabezado/{*}Totales")
    if totales is None:
        return ["the document has no Totales"]
    for child in totales.iterchildren(etree.Element):
        name = etree.QName(child).localname
        if name not in {*_MODELLED_TOTALES, "Comisiones"} and _non_zero(child):
            raise _NotModelled(f"Totales/{name}")
    affected = exempt = Decimal(0)
    for line in document.iterfind("{*}Detalle"):
        amount = _amount(line, "MontoItem")
        if amount is None:
            raise _NotModelled("a Detalle line without MontoItem")
        if _text(line, "IndExe") == "1":
            exempt += amount
        elif _text(line, "IndExe") is None:
            affected += amount
        else:
            raise _NotModelled(f"IndExe={_text(line, 'IndExe')}")
    sums = {"ValComNeto": Decimal(0), "ValComExe": Decimal(0), "ValComIVA": Decimal(0)}
    problems = []
    for line in document.iterfind("{*}Comisiones"):
        neto = _amount(line, "ValComNeto") or Decimal(0)
        iva = _amount(line, "ValComIVA") or Decimal(0)
        if iva != _round_half_up(neto * Decimal(TASA_IVA) / 100):
            number = _text(line, "NroLinCom")
            problems.append(f"commission {number}: ValComIVA {iva:f} is not 19 % of {neto:f}")
        for name in sums:
            sums[name] += _amount(line, name) or Decimal(0)
    declared = totales.find("{*}Comisiones")
    for name, expected in sums.items():
        value = _amount(declared, name) if declared is not None else None
        problems.append(_mismatch(f"Comisiones/{name}", value, expected) or "")
    iva = _round_half_up(affected * Decimal(TASA_IVA) / 100)
    total = affected + exempt + iva - sum(sums.values())
    for name, expected in (
        ("MntNeto", affected),
        ("MntExe", exempt),
        ("IVA", iva),
        ("MntTotal", total),
    ):
        problems.append(_mismatch(name, _amount(totales, name), expected) or "")
    return [p for p in problems if p]


def _totals_problems(document: etree._Element, tipo: int | None) -> list[str]:
    if etree.QName(document).localname == "Exportaciones":
        return _export_problems(document)
    if etree.QName(document).localname == "Liquidacion":
        return _liquidacion_problems(document)
    _require_modelled(document, tipo)
    assert tipo is not None
    totales = document.find("{*}Encabezado/{*}Totales")
    if totales is None:
        return ["the document has no Totales"]
    retained = _retained_iva(totales)
    affected, exempt = _line_subtotals(document, tipo)
    affected, exempt = _apply_global_adjustments(document, tipo, affected, exempt)
    amounts = {name: _amount(totales, name) for name in ("MntNeto", "MntExe", "IVA", "MntTotal")}
    if tipo in BOLETAS:
        return _boleta_problems(amounts, affected, exempt)
    return _factura_problems(totales, amounts, affected, exempt, retained)


def _require_modelled(document: etree._Element, tipo: int | None) -> None:
    element = etree.QName(document).localname
    if element != "Documento":
        raise _NotModelled(f"{element} documents")
    if tipo not in MODELLED_TYPES:
        raise _NotModelled(f"TipoDTE {tipo}")
    if _text(document, "Encabezado/IdDoc/MntBruto") == "1":
        raise _NotModelled("MntBruto=1 (line amounts include IVA)")
    if tipo in BOLETAS and _text(document, "Encabezado/IdDoc/IndMntNeto") == "2":
        raise _NotModelled("IndMntNeto=2 (net line amounts)")
    if document.find("{*}Comisiones") is not None:
        raise _NotModelled("Comisiones")
    totales = document.find("{*}Encabezado/{*}Totales")
    for child in totales.iterchildren(etree.Element) if totales is not None else ():
        name = etree.QName(child).localname
        if name == "ImptoReten" and _text(child, "TipoImp") == "15":
            continue
        if name not in _MODELLED_TOTALES and _non_zero(child):
            raise _NotModelled(f"Totales/{name}")


def _non_zero(element: etree._Element) -> bool:
    if len(element):
        return True
    try:
        return _decimal(element.text) != 0
    except _NotModelled:
        return True


def _decimal(text: str | None) -> Decimal:
    """A plain decimal as the XSD writes amounts (no exponent, NaN or infinity)."""
    value = (text or "").strip()
    if not _PLAIN_DECIMAL.match(value):
        raise _NotModelled(f"non-numeric amount {text!r}")
    return Decimal(value)


def _amount(parent: etree._Element, name: str) -> Decimal | None:
    value = _text(parent, name)
    return None if value is None else _decimal(value)


def _round_half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def _retained_iva(totales: etree._Element) -> Decimal:
    """IVA retained in full by the buyer (ImptoReten TipoImp 15, factura de compra 46)."""
    total = Decimal(0)
    for impuesto in totales.iterfind("{*}ImptoReten"):
        total += _decimal(_text(impuesto, "MontoImp"))
    return total


def _line_subtotals(document: etree._Element, tipo: int) -> tuple[Decimal, Decimal]:
    """Sum of MontoItem of affected and of exempt (IndExe=1) lines."""
    affected = exempt = Decimal(0)
    for line in document.iterfind("{*}Detalle"):
        ind_exe = _text(line, "IndExe")
        if ind_exe not in (None, "1"):
            raise _NotModelled(f"IndExe={ind_exe}")
        monto = _text(line, "MontoItem")
        if monto is None:
            raise _NotModelled("a Detalle line without MontoItem")
        if ind_exe == "1" or tipo in EXEMPT_TYPES:
            exempt += _decimal(monto)
        else:
            affected += _decimal(monto)
    return affected, exempt


def _apply_global_adjustments(
    document: etree._Element, tipo: int, affected: Decimal, exempt: Decimal
) -> tuple[Decimal, Decimal]:
    """DscRcgGlobal: D subtracts, R adds; a percentage is of the subtotal it applies to."""
    adjustments = list(document.iterfind("{*}DscRcgGlobal"))
    percentages: set[bool] = set()
    subtotals = {False: affected, True: exempt}
    result = dict(subtotals)
    for adjustment in adjustments:
        movement, value_type = _text(adjustment, "TpoMov"), _text(adjustment, "TpoValor")
        ind_exe = _text(adjustment, "IndExeDR")
        if ind_exe not in (None, "1") or movement not in ("D", "R") or value_type not in ("%", "$"):
            raise _NotModelled(
                f"DscRcgGlobal TpoMov={movement} TpoValor={value_type} IndExeDR={ind_exe}"
            )
        on_exempt = ind_exe == "1" or tipo in EXEMPT_TYPES
        value = _decimal(_text(adjustment, "ValorDR"))
        if value_type == "%":
            if on_exempt in percentages:
                raise _NotModelled("several percentage DscRcgGlobal on one subtotal")
            percentages.add(on_exempt)
            value = subtotals[on_exempt] * value / 100
        signed = _round_half_up(value) * (-1 if movement == "D" else 1)
        result[on_exempt] += signed
    return result[False], result[True]


def _mismatch(name: str, actual: Decimal | None, expected: Decimal) -> str | None:
    value = actual if actual is not None else Decimal(0)
    if value == expected:
        return None
    shown = "absent" if actual is None else f"{actual:f}"
    return f"{name} is {shown} but the detail lines give {expected:f}"


def _boleta_problems(
    amounts: Mapping[str, Decimal | None], affected: Decimal, exempt: Decimal
) -> list[str]:
    """Boletas carry gross prices: MntTotal is the sum of the lines (IVA is not recomputed)."""
    checks = [_mismatch("MntTotal", amounts["MntTotal"], affected + exempt)]
    if amounts["MntExe"] is not None:
        checks.append(_mismatch("MntExe", amounts["MntExe"], exempt))
    return [problem for problem in checks if problem]


def _factura_problems(
    totales: etree._Element,
    amounts: Mapping[str, Decimal | None],
    affected: Decimal,
    exempt: Decimal,
    retained: Decimal,
) -> list[str]:
    neto = amounts["MntNeto"] or Decimal(0)
    exento = amounts["MntExe"] or Decimal(0)
    iva = amounts["IVA"] or Decimal(0)
    problems = [
        _mismatch("MntNeto", amounts["MntNeto"], affected),
        _mismatch("MntExe", amounts["MntExe"], exempt),
    ]
    tasa = _amount(totales, "TasaIVA")
    if tasa is not None:
        expected_iva = _round_half_up(neto * tasa / 100)
        if iva != expected_iva:
            problems.append(f"IVA is {iva:f} but MntNeto × TasaIVA / 100 is {expected_iva:f}")
    elif iva:
        problems.append("IVA without TasaIVA")
    if retained and retained != iva:
        problems.append(f"retained IVA (ImptoReten 15) is {retained:f} but IVA is {iva:f}")
    expected_total = neto + exento + iva - retained
    total = amounts["MntTotal"] or Decimal(0)
    if total != expected_total:
        problems.append(
            f"MntTotal is {total:f} but MntNeto + MntExe + IVA"
            f"{' - retained IVA' if retained else ''} is {expected_total:f}"
        )
    return [problem for problem in problems if problem]
