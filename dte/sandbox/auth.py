"""Seeds and tokens (DOMAIN.md §2): getSeed, getToken (a seed signed with the holder's
certificate, verified for real with python-xmlsec) and the token checks of every other call."""

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.db import IntegrityError, transaction
from django.utils import timezone
from lxml import etree

from dte.core.certificate import rut_from_certificate
from dte.core.schemas import XmlError, safe_parse
from dte.sandbox import conf
from dte.sandbox.models import Seed, Token

DSIG = "{http://www.w3.org/2000/09/xmldsig#}"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_ALLOWED_TRANSFORMS = (
    xmlsec.constants.TransformInclC14N,
    xmlsec.constants.TransformInclC14NWithComments,
    xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformEnveloped,
    xmlsec.constants.TransformSha1,
    xmlsec.constants.TransformSha256,
    xmlsec.constants.TransformRsaSha1,
    xmlsec.constants.TransformRsaSha256,
)
_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ENCODING = re.compile(r"""^\s*<\?xml[^>]*encoding\s*=\s*["']([\w.-]+)["']""")


class TokenRefused(Exception):
    """getToken's answer is not a token: `estado` and `glosa` as the SII writes them."""

    def __init__(self, estado: str, glosa: str) -> None:
        super().__init__(f"{estado} {glosa}")
        self.estado = estado
        self.glosa = glosa


# --- Seeds ----------------------------------------------------------------------------------


def seed_create(channel: str) -> str:
    """A new 12-digit seed, valid for conf.seed_ttl() and for one token."""
    for _ in range(10):
        value = f"{secrets.randbelow(10**12):012d}"
        try:
            with transaction.atomic():
                Seed.objects.create(value=value, channel=channel, created_at=timezone.now())
        except IntegrityError:
            continue
        return value
    raise RuntimeError("could not allocate a unique seed")


def _seed_consume(value: str, channel: str) -> None:
    """Mark the seed used; TokenRefused 08 when it is unknown, expired or used already."""
    now = timezone.now()
    used = Seed.objects.filter(
        value=value, channel=channel, used_at__isnull=True, created_at__gte=now - conf.seed_ttl()
    ).update(used_at=now)
    if not used:
        raise TokenRefused("08", "Error de Parametros: Semilla invalida, expirada o ya utilizada")


# --- getToken -------------------------------------------------------------------------------


def token_from_signed_seed(xml: str | bytes, channel: str) -> Token:
    """Verify the signed `<getToken>` and issue a token bound to the certificate holder's RUT."""
    root = _parse_get_token(xml)
    seed = _seed_value(root)
    signature = root.find(f"{DSIG}Signature")
    if signature is None:
        raise TokenRefused("02", "XML Invalido, elemento Signature no existe")
    certificate = _certificate(signature)
    _check_reference(signature)
    _verify_signature(signature, certificate)
    rut = _holder_rut(certificate)
    _seed_consume(seed, channel)
    return _token_create(channel, rut)


def _as_bytes(xml: str | bytes) -> bytes:
    if isinstance(xml, bytes):
        return xml
    match = _ENCODING.match(xml)
    try:
        return xml.encode(match.group(1) if match else "utf-8")
    except (LookupError, UnicodeEncodeError):
        return xml.encode("utf-8")


def _parse_get_token(xml: str | bytes) -> etree._Element:
    try:
        root = safe_parse(_as_bytes(xml))
    except XmlError as exc:
        raise TokenRefused("01", f"XML Invalido: {exc}") from None
    if etree.QName(root).localname != "getToken":
        raise TokenRefused("01", "XML Invalido, el elemento raiz debe ser getToken")
    return root


def _seed_value(root: etree._Element) -> str:
    semilla = root.find("{*}item/{*}Semilla")
    value = "".join(semilla.itertext()).strip() if semilla is not None else ""
    if not value:
        raise TokenRefused("06", "XML Invalido, elemento Semilla no existe")
    return value


def _certificate(signature: etree._Element) -> x509.Certificate:
    element = signature.find(f"{DSIG}KeyInfo/{DSIG}X509Data/{DSIG}X509Certificate")
    text = "".join(element.itertext()) if element is not None else ""
    if not text.strip():
        raise TokenRefused(
            "11", "XML Invalido, elemento Certificate no existe, funcion getCertificado"
        )
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))
    except (binascii.Error, ValueError):
        raise TokenRefused("05", "Error al leer el certificado (X509Certificate)") from None


def _check_reference(signature: etree._Element) -> None:
    references = signature.findall(f"{DSIG}SignedInfo/{DSIG}Reference")
    if len(references) != 1 or references[0].get("URI") != "":
        raise TokenRefused("03", "Error en la firma: se espera una Reference con URI vacia")
    transforms = [t.get("Algorithm") for t in references[0].iterfind(f"{DSIG}Transforms/*")]
    if ENVELOPED not in transforms:
        raise TokenRefused("03", "Error en la firma: falta la transformacion enveloped-signature")


def _verify_signature(signature: etree._Element, certificate: x509.Certificate) -> None:
    der = certificate.public_bytes(serialization.Encoding.DER)
    ctx = xmlsec.SignatureContext()
    for transform in _ALLOWED_TRANSFORMS:
        ctx.enable_reference_transform(transform)
        ctx.enable_signature_transform(transform)
    try:
        ctx.key = xmlsec.Key.from_memory(der, xmlsec.constants.KeyDataFormatCertDer)
        ctx.verify(signature)
    except xmlsec.VerificationError:
        raise TokenRefused("04", "Error en la firma: la firma no es valida") from None
    except xmlsec.Error:
        raise TokenRefused("03", "Error en la firma: no se pudo procesar la firma") from None


def _holder_rut(certificate: x509.Certificate) -> str:
    now = timezone.now()
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise TokenRefused("-3", "Error de autenticacion: certificado vencido o aun no vigente")
    rut = rut_from_certificate(certificate)
    if rut is None:
        raise TokenRefused("-3", "Error de autenticacion: el certificado no contiene un RUT")
    return rut


def _token_create(channel: str, rut: str) -> Token:
    now = timezone.now()
    for _ in range(10):
        value = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(13))
        try:
            with transaction.atomic():
                return Token.objects.create(
                    value=value,
                    channel=channel,
                    rut=rut,
                    created_at=now,
                    expires_at=now + conf.token_ttl(),
                )
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a unique token")


# --- Token checks ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """A valid token's holder RUT, or the SII's token error code (001, 002, 003)."""

    rut: str | None = None
    error: str | None = None


def token_check(value: str | None, channel: str) -> TokenCheck:
    value = (value or "").strip()
    if not value:
        return TokenCheck(error="001")
    token = Token.objects.filter(value=value, channel=channel).first()
    if token is None:
        return TokenCheck(error="003")
    if token.expires_at <= timezone.now():
        return TokenCheck(error="002")
    return TokenCheck(rut=token.rut)
