"""Local TEST material: CAF files and signing certificates that only our own sandbox accepts.

Used by the demo data, the local SII sandbox and the tests. Everything generated here is marked
as test material: CAFs carry a comment and are signed by the sandbox SII key (IDK 900, which the
real SII does not have), certificates say "CERTIFICADO DE PRUEBA - SIN VALIDEZ LEGAL" and are
self-signed. None of it is accepted by the real SII.

Pure: no Django, no I/O, no clock (dates are passed in). Randomness comes from `secrets`.
"""

from __future__ import annotations

import base64
import math
import secrets
from datetime import date, datetime
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from dte.core.caf import flatten_xml
from erp.rut import normalize_rut

SANDBOX_IDK = 900
"""The local sandbox SII's CAF-signing key id (the real SII uses 100 and 300)."""

TEST_ORGANIZATION = "CERTIFICADO DE PRUEBA - SIN VALIDEZ LEGAL"
CAF_TEST_COMMENT = "<!-- MATERIAL DE PRUEBA: CAF generado localmente, sin validez ante el SII. -->"
RUT_OTHER_NAME_OID = x509.ObjectIdentifier("1.3.6.1.4.1.8321.1")

CAF_KEY_BITS = 512
CAF_KEY_EXPONENT = 3
_MILLER_RABIN_ROUNDS = 40
_SMALL_PRIMES = tuple(
    n for n in range(3, 2000, 2) if all(n % d for d in range(3, math.isqrt(n) + 1, 2))
)


# --- Keys -------------------------------------------------------------------------------------


def generate_caf_key() -> RSAPrivateKey:
    """A folio-range key like the SII's: 512-bit RSA with public exponent 3.

    `cryptography` refuses to generate keys this small, so the primes are made here.
    """
    half = CAF_KEY_BITS // 2
    p = _caf_prime(half)
    q = _caf_prime(half)
    while q == p:
        q = _caf_prime(half)
    n = p * q
    assert n.bit_length() == CAF_KEY_BITS
    d = pow(CAF_KEY_EXPONENT, -1, math.lcm(p - 1, q - 1))
    return rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(CAF_KEY_EXPONENT, n),
    ).private_key()


def generate_sii_key() -> RSAPrivateKey:
    """The sandbox SII's own CAF-signing key (the one named by SANDBOX_IDK)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _caf_prime(bits: int) -> int:
    """A random prime of exactly `bits` bits with gcd(3, p - 1) == 1.

    The two top bits are set so that the product of two such primes has exactly 2 * bits bits.
    """
    while True:
        candidate = secrets.randbits(bits) | (0b11 << (bits - 2)) | 1
        if candidate % CAF_KEY_EXPONENT == 1:  # then 3 divides p - 1
            continue
        if _is_probable_prime(candidate):
            return candidate


def _is_probable_prime(n: int) -> bool:
    """Miller-Rabin with random bases from `secrets` (after trial division by small primes)."""
    if n < 2:
        return False
    for prime in (2, *_SMALL_PRIMES):
        if n % prime == 0:
            return n == prime
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(_MILLER_RABIN_ROUNDS):
        x = pow(2 + secrets.randbelow(n - 3), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


# --- CAF --------------------------------------------------------------------------------------


def make_caf(
    *,
    sii_key: RSAPrivateKey,
    idk: int,
    rut_emisor: str,
    razon_social: str,
    tipo_dte: int,
    folio_desde: int,
    folio_hasta: int,
    fecha_autorizacion: date,
    folio_key: RSAPrivateKey | None = None,
) -> bytes:
    """A complete AUTORIZACION file in the SII's layout, signed by `sii_key` (test material).

    Newlines between elements as in the SII's files; FRMA is SHA1withRSA over the flattened DA.
    """
    if not 1 <= folio_desde <= folio_hasta:
        raise ValueError("folio_desde must be >= 1 and <= folio_hasta")
    key = folio_key if folio_key is not None else generate_caf_key()
    numbers = key.public_key().public_numbers()
    da = "\n".join(
        [
            "<DA>",
            f"<RE>{normalize_rut(rut_emisor)}</RE>",
            f"<RS>{escape(razon_social[:40])}</RS>",
            f"<TD>{tipo_dte}</TD>",
            "<RNG>",
            f"<D>{folio_desde}</D>",
            f"<H>{folio_hasta}</H>",
            "</RNG>",
            f"<FA>{fecha_autorizacion.isoformat()}</FA>",
            "<RSAPK>",
            f"<M>{_b64_int(numbers.n)}</M>",
            f"<E>{_b64_int(numbers.e)}</E>",
            "</RSAPK>",
            f"<IDK>{idk}</IDK>",
            "</DA>",
        ]
    ).encode("iso-8859-1", errors="xmlcharrefreplace")
    frma = sii_key.sign(flatten_xml(da), padding.PKCS1v15(), hashes.SHA1())
    head = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        f"{CAF_TEST_COMMENT}\n"
        '<AUTORIZACION>\n<CAF version="1.0">\n'
    ).encode("iso-8859-1")
    tail = "\n".join(
        [
            "",
            f'<FRMA algoritmo="SHA1withRSA">{base64.b64encode(frma).decode("ascii")}</FRMA>',
            "</CAF>",
            f"<RSASK>{_pem_private(key)}</RSASK>",
            f"<RSAPUBK>{_pem_public(key)}</RSAPUBK>",
            "</AUTORIZACION>",
            "",
        ]
    ).encode("iso-8859-1")
    return head + da + tail


def _b64_int(value: int) -> str:
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode("ascii")


def _pem_private(key: RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1 PEM, the form the SII
        serialization.NoEncryption(),
    ).decode("ascii")


def _pem_public(key: RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


# --- Certificate ------------------------------------------------------------------------------


def make_test_certificate(
    *,
    rut: str,
    holder_name: str,
    password: str,
    not_before: datetime,
    not_after: datetime,
    key: RSAPrivateKey | None = None,
) -> bytes:
    """A self-signed signing certificate for `rut`, as PKCS#12 protected by `password`.

    The holder's RUT is in the subject serialNumber and, as E-Sign and other Chilean CAs do,
    in a subjectAltName otherName 1.3.6.1.4.1.8321.1 (IA5String). O= marks it as test material.
    """
    canonical = normalize_rut(rut)
    private_key = key if key is not None else rsa.generate_private_key(65537, 2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TEST_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, holder_name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, canonical),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_key_usage(), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.OtherName(RUT_OTHER_NAME_OID, _ia5(canonical))]),
            critical=False,
        )
        .sign(private_key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode("utf-8"))
        if password
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        name=f"{TEST_ORGANIZATION} {canonical}".encode(),
        key=private_key,
        cert=certificate,
        cas=None,
        encryption_algorithm=encryption,
    )


def _signing_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _ia5(text: str) -> bytes:
    """DER IA5String (short texts only)."""
    raw = text.encode("ascii")
    if len(raw) > 127:
        raise ValueError("text too long for a short-form DER IA5String")
    return bytes([0x16, len(raw)]) + raw
