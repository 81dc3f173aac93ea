"""Documents and envelopes for the sandbox tests, built with dte.core and the fixed test keys in
tests/data/keys (CAFs signed by the sandbox key, IDK 900; certificate of 12345678-5), with hooks
to break exactly one thing at a time."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import xmlsec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from lxml import etree

from dte.core.caf import Caf, parse_caf
from dte.core.certificate import Certificate, load_pkcs12
from dte.core.domain import SII_RUT, Documento, Emisor, Linea, Receptor, Referencia, Resolucion
from dte.core.envelope import EnvelopeItem, build_caratula, build_envelope
from dte.core.issue import canonical_caf
from dte.core.signing import canonical_in_parent, sign_documento, sign_reference
from dte.core.ted import build_ted
from dte.core.xml import append_raw, build_documento, format_timestamp
from erp.doctypes import TipoDte

KEYS = Path(__file__).resolve().parents[2] / "data" / "keys"
CERT_PASSWORD = "clave-de-prueba"
SIGNER_RUT = "12345678-5"
EMISOR_RUT = "76086428-5"
NOW = datetime(2026, 11, 23, 13, 45, 10, tzinfo=UTC)
RESOLUCION = Resolucion(date(2014, 8, 22), 80)  # tests.factories.CompanyFactory's resolution
SIIDTE_NS = "http://www.sii.cl/SiiDte"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
DSIG = "{http://www.w3.org/2000/09/xmldsig#}"

RECEPTOR = Receptor(
    "96790240-3",
    "Distribuidora Los Andes S.A.",
    "Venta al por mayor",
    "Av. Apoquindo 4501",
    "Las Condes",
    "Santiago",
)


def emisor(rut: str = EMISOR_RUT) -> Emisor:
    return Emisor(
        rut,
        "Empresa Demo SpA",
        "Desarrollo de software",
        (620200,),
        "Av. Providencia 1208",
        "Providencia",
        "Santiago",
    )


@cache
def certificate() -> Certificate:
    return load_pkcs12((KEYS / "firmante_12345678-5.p12").read_bytes(), CERT_PASSWORD)


@cache
def sandbox_key() -> RSAPrivateKey:
    key = serialization.load_pem_private_key((KEYS / "sandbox_sii_key.pem").read_bytes(), None)
    assert isinstance(key, RSAPrivateKey)
    return key


@cache
def caf_for(tipo: int) -> Caf:
    return parse_caf((KEYS / f"caf_76086428-5_{tipo}_1-1000.xml").read_bytes())


def documento(tipo: int, folio: int, *, rut_emisor: str = EMISOR_RUT) -> Documento:
    tipo_dte = TipoDte(tipo)
    if tipo_dte.gross_prices:
        lines: tuple[Linea, ...] = (Linea("Café en grano 1 kg", Decimal(2), Decimal(11900)),)
    elif tipo_dte.exempt_only:
        lines = (Linea("Curso de capacitación", Decimal(4), Decimal(80000)),)
    else:
        lines = (
            Linea("Consultoría marzo", Decimal(12), Decimal(45000), unidad="HR"),
            Linea("Licencia anual", Decimal(1), Decimal(120000), Decimal(10)),
        )
    refs: tuple[Referencia, ...] = ()
    if tipo_dte.is_note:
        refs = (Referencia("33", "1", date(2026, 11, 2), 3, "Corrige montos"),)
    return Documento(
        tipo=tipo_dte,
        folio=folio,
        fecha_emision=date(2026, 11, 23),
        emisor=emisor(rut_emisor),
        receptor=RECEPTOR,
        lineas=lines,
        referencias=refs,
        forma_pago=1,
    )


@dataclass(frozen=True)
class Issued:
    tipo: int
    folio: int
    monto_total: int
    xml: str


def issue(
    tipo: int,
    folio: int,
    *,
    caf: Caf | None = None,
    rut_emisor: str = EMISOR_RUT,
    ted_key: RSAPrivateKey | None = None,
    caf_range: tuple[int, int] | None = None,
    mutate: Callable[[etree._Element], None] | None = None,
) -> Issued:
    """A signed DTE, like dte.core.issue.stamp_and_sign, with hooks: `ted_key` signs the TED
    with another key, `caf_range` lets a folio outside the CAF be stamped, `mutate` edits the
    Documento before the TED and the signature (so both stay valid)."""
    doc = documento(tipo, folio, rut_emisor=rut_emisor)
    caf = caf or caf_for(tipo)
    element = build_documento(doc)
    if mutate is not None:
        mutate(element)
    desde, hasta = caf_range or (caf.folio_desde, caf.folio_hasta)
    ted = build_ted(
        doc,
        caf_xml=canonical_caf(caf.caf_xml),
        caf_key=ted_key or caf.private_key(),
        caf_rut=caf.rut_emisor,
        caf_tipo=caf.tipo_dte,
        caf_desde=desde,
        caf_hasta=hasta,
        timestamp=NOW,
    )
    append_raw(element, [ted.xml, f"<TmstFirma>{format_timestamp(NOW)}</TmstFirma>"])
    signed = sign_documento(element, certificate())
    return Issued(tipo, folio, doc.totales.monto_total, signed.xml)


def envelope(
    docs: Sequence[Issued],
    *,
    rut_emisor: str = EMISOR_RUT,
    rut_envia: str = SIGNER_RUT,
    rut_receptor: str = SII_RUT,
    resolucion: Resolucion = RESOLUCION,
    timestamp: datetime = NOW,
    signer: Certificate | None = None,
) -> bytes:
    """An EnvioDTE/EnvioBOLETA built by dte.core.envelope."""
    return build_envelope(
        [EnvelopeItem(TipoDte(d.tipo), d.xml) for d in docs],
        rut_emisor=rut_emisor,
        rut_envia=rut_envia,
        resolucion=resolucion,
        timestamp=timestamp,
        key=signer or certificate(),
        rut_receptor=rut_receptor,
    )


def envelope_with_caratula(
    docs: Sequence[Issued], caratula: Callable[[str], str], kind: str = "EnvioDTE"
) -> bytes:
    """An envelope signed correctly over a Carátula edited by `caratula` (e.g. wrong counts)."""
    text = caratula(
        build_caratula(
            rut_emisor=EMISOR_RUT,
            rut_envia=SIGNER_RUT,
            rut_receptor=SII_RUT,
            resolucion=RESOLUCION,
            timestamp=NOW,
            tipos=[TipoDte(d.tipo) for d in docs],
        )
    )
    xsi = f' xmlns:xsi="{XSI_NS}"'
    canonical = (
        f'<SetDTE xmlns="{SIIDTE_NS}"{xsi} ID="SetDoc">{text}'
        + "".join(canonical_in_parent(d.xml) for d in docs)
        + "</SetDTE>"
    )
    signature = sign_reference(
        canonical.encode(), reference_uri="#SetDoc", key=certificate(), inherited_ns=xsi
    )
    schema = "EnvioBOLETA_v11.xsd" if kind == "EnvioBOLETA" else "EnvioDTE_v10.xsd"
    document = (
        f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<{kind} xmlns="{SIIDTE_NS}"{xsi} '
        f'version="1.0" xsi:schemaLocation="{SIIDTE_NS} {schema}">'
        f'<SetDTE ID="SetDoc">{text}'
        + "".join(d.xml for d in docs)
        + f"</SetDTE>{signature.xml}</{kind}>"
    )
    return document.encode("iso-8859-1")


def signed_get_token(seed: str, cert: Certificate | None = None) -> str:
    """`<getToken><item><Semilla>…</Semilla></item><Signature/></getToken>` signed as the SII
    asks (enveloped, RSA-SHA1, SHA1, KeyValue and X509Certificate), with python-xmlsec."""
    cert = cert or certificate()
    root = etree.fromstring(f"<getToken><item><Semilla>{seed}</Semilla></item></getToken>")
    signature = xmlsec.template.create(
        root, xmlsec.constants.TransformInclC14N, xmlsec.constants.TransformRsaSha1
    )
    root.append(signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha1, uri="")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    key_info = xmlsec.template.ensure_key_info(signature)
    key_value = xmlsec.template.add_key_value(key_info)
    xmlsec.template.add_x509_data(key_info)
    key = xmlsec.Key.from_memory(
        cert.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        xmlsec.constants.KeyDataFormatPem,
    )
    key.load_cert_from_memory(
        cert.certificate.public_bytes(serialization.Encoding.PEM),
        xmlsec.constants.KeyDataFormatCertPem,
    )
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.sign(signature)
    # xmlsec leaves KeyValue empty with OpenSSL 3; KeyInfo is not signed, so fill it after.
    rsa_key_value = etree.SubElement(key_value, f"{DSIG}RSAKeyValue")
    etree.SubElement(rsa_key_value, f"{DSIG}Modulus").text = cert.modulus_b64
    etree.SubElement(rsa_key_value, f"{DSIG}Exponent").text = cert.exponent_b64
    return etree.tostring(root, encoding="unicode")
