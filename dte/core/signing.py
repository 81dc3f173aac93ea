"""XML-DSig as the SII uses it (DOMAIN.md §9): enveloped RSA-SHA1, SHA1 digest, inclusive C14N,
KeyValue and X509Certificate in KeyInfo.

We write every signed part in its canonical form from the start, so the document's bytes are the
bytes that were digested and nothing is re-serialised after signing: the Documento's digest is
taken over lxml's C14N of the Documento built as a root element (which is what its C14N is inside
a standalone `<DTE xmlns="…SiiDte">`; this also sidesteps lxml's sub-element C14N pitfall), and
SignedInfo is written directly in canonical form with the namespaces in scope where it sits.
Verification, in the tests and in verify.py, goes through python-xmlsec: an independent path.
"""

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from lxml import etree

from dte.core.domain import DSIG_NS, SIIDTE_NS

C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
BASE64_WIDTH = 76


class SigningKey(Protocol):
    """What signing needs of a certificate (dte.core.certificate.Certificate provides it)."""

    @property
    def private_key(self) -> RSAPrivateKey: ...

    @property
    def modulus_b64(self) -> str: ...

    @property
    def exponent_b64(self) -> str: ...

    @property
    def der_b64(self) -> str: ...


def wrap(b64: str) -> str:
    """Base64 broken into 76-column lines, as xmlsec and the SII's own examples write it."""
    return "\n".join(b64[i : i + BASE64_WIDTH] for i in range(0, len(b64), BASE64_WIDTH))


@lru_cache(maxsize=64)
def _key_info(modulus_b64: str, exponent_b64: str, der_b64: str) -> str:
    return (
        "<KeyInfo><KeyValue><RSAKeyValue>"
        f"<Modulus>{wrap(modulus_b64)}</Modulus><Exponent>{exponent_b64}</Exponent>"
        "</RSAKeyValue></KeyValue>"
        f"<X509Data><X509Certificate>{wrap(der_b64)}</X509Certificate></X509Data>"
        "</KeyInfo>"
    )


def digest(canonical: bytes) -> str:
    return base64.b64encode(hashlib.sha1(canonical).digest()).decode("ascii")


ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"


def _signed_info_body(reference_uri: str, digest_value: str, transforms: tuple[str, ...]) -> str:
    transform_xml = "".join(f'<Transform Algorithm="{t}"></Transform>' for t in transforms)
    return (
        f'<CanonicalizationMethod Algorithm="{C14N}"></CanonicalizationMethod>'
        f'<SignatureMethod Algorithm="{RSA_SHA1}"></SignatureMethod>'
        f'<Reference URI="{reference_uri}">'
        f"<Transforms>{transform_xml}</Transforms>"
        f'<DigestMethod Algorithm="{SHA1}"></DigestMethod>'
        f"<DigestValue>{digest_value}</DigestValue>"
        "</Reference>"
    )


@dataclass(frozen=True, slots=True)
class Signature:
    xml: str  # the <Signature xmlns="…xmldsig#">…</Signature> element as it goes in the document
    value: str  # SignatureValue (base64, unwrapped): what QueryEstDteAv asks for


def sign_reference(
    canonical: bytes,
    *,
    reference_uri: str,
    key: SigningKey,
    inherited_ns: str = "",
    transforms: tuple[str, ...] = (C14N,),
) -> Signature:
    """Sign the canonical bytes of the referenced element.

    `inherited_ns` lists the namespace declarations in scope where the Signature element sits
    besides its own default (e.g. ` xmlns:xsi="…"` inside EnvioDTE): inclusive C14N puts them on
    SignedInfo, so they are part of what is signed.
    """
    body = _signed_info_body(reference_uri, digest(canonical), transforms)
    signed_info = f'<SignedInfo xmlns="{DSIG_NS}"{inherited_ns}>{body}</SignedInfo>'
    raw = key.private_key.sign(signed_info.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1())
    value = base64.b64encode(raw).decode("ascii")
    xml = (
        f'<Signature xmlns="{DSIG_NS}"><SignedInfo>{body}</SignedInfo>'
        f"<SignatureValue>{wrap(value)}</SignatureValue>"
        f"{_key_info(key.modulus_b64, key.exponent_b64, key.der_b64)}</Signature>"
    )
    return Signature(xml=xml, value=value)


DTE_OPEN = f'<DTE xmlns="{SIIDTE_NS}" version="1.0">'
# The element a DTE wraps: Documento, or Liquidacion (43) and Exportaciones (110–112).
DTE_ROOTS = ("Documento", "Liquidacion", "Exportaciones")


@dataclass(frozen=True, slots=True)
class SignedDteXml:
    xml: str  # <DTE xmlns="…SiiDte" version="1.0">…</DTE>, canonical, no XML declaration
    signature_value: str


def sign_documento(documento: etree._Element, key: SigningKey) -> SignedDteXml:
    """Sign a complete Documento (or Liquidacion, Exportaciones), TED and TmstFirma included,
    built as a root element."""
    canonical = etree.tostring(documento, method="c14n")
    signature = sign_reference(canonical, reference_uri=f"#{documento.get('ID')}", key=key)
    text = canonical.decode("utf-8")
    root = etree.QName(documento).localname
    opening = f'<{root} xmlns="{SIIDTE_NS}" '
    if root not in DTE_ROOTS or not text.startswith(opening):
        raise ValueError("the Documento must be a root element in the SiiDte namespace")
    documento_in_dte = f"<{root} " + text[len(opening) :]
    return SignedDteXml(
        xml=f"{DTE_OPEN}{documento_in_dte}{signature.xml}</DTE>",
        signature_value=signature.value,
    )


def canonical_in_parent(dte_xml: str) -> str:
    """A DTE's canonical text inside a SiiDte parent: its redundant xmlns is dropped by C14N."""
    if not dte_xml.startswith(DTE_OPEN):
        raise ValueError("not a DTE built by sign_documento")
    return '<DTE version="1.0">' + dte_xml[len(DTE_OPEN) :]


def sign_get_token(seed: str, key: SigningKey) -> str:
    """The SII's authentication request (DOMAIN.md §2): the seed, signed with the certificate
    as an enveloped signature over the whole document (Reference URI="")."""
    if not seed.isdigit():
        raise ValueError("the SII's seed is a number")
    body = f"<item><Semilla>{seed}</Semilla></item>"
    canonical = f"<getToken>{body}</getToken>".encode()
    signature = sign_reference(canonical, reference_uri="", key=key, transforms=(ENVELOPED,))
    return f"<getToken>{body}{signature.xml}</getToken>"
