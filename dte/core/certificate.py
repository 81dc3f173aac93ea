"""The company's signing certificate (.pfx / .p12 issued by a Chilean CA) and its holder's RUT.

Pure: no Django, no I/O, no clock (`now` is passed in). Passwords and private keys are never
put in messages, reprs or logs.

Where the holder's RUT lives depends on the CA (see `rut_from_certificate`):
- subjectAltName otherName 1.3.6.1.4.1.8321.1, an IA5String with the RUT: the field Decreto 181
  (reglamento de la Ley 19.799) defines for it; E-Sign/E-Certchile, Acepta, IDOK and Signapis
  certificates carry it. 1.3.6.1.4.1.8321.2 is the *CA's* RUT and is never used.
- subject serialNumber (2.5.4.5): Acepta and IDOK ("12345678-9"), sometimes "CL-12345678-9"
  or without hyphen; Odoo's l10n_cl_edi reads only this one.
- subject OU: Signapis has put the RUN there.
LibreDTE reads the otherName first and falls back to serialNumber; cl-sii reads only the
otherName. We try all of them, in that order of authority.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from erp.rut import InvalidRut, normalize_rut

HOLDER_RUT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.8321.1")
ISSUER_RUT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.8321.2")

# A RUT inside free text: "12345678-9", "12.345.678-9", "CL-12345678-9", "0012345678-9",
# "123456789" (no hyphen; only accepted from fields meant to hold a RUT).
_RUT_IN_TEXT = re.compile(
    r"(?<![\d.])0*(\d{1,3}(?:\.\d{3}){1,2}|\d{1,9})[ \t]*(-?)[ \t]*([\dK])(?![\dA-Z])"
)
# DER tags of ASN.1 string types, with the codec of their content.
_DER_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "latin-1",  # PrintableString
    0x14: "latin-1",  # TeletexString
    0x16: "latin-1",  # IA5String
    0x1A: "latin-1",  # VisibleString
    0x1E: "utf-16-be",  # BMPString
}
_PKCS7_DATA = bytes.fromhex("2a864886f70d010701")
_PKCS7_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
_PKCS7_ENCRYPTED_DATA = bytes.fromhex("2a864886f70d010706")
_PKCS8_SHROUDED_KEY_BAG = bytes.fromhex("2a864886f70d010c0a0102")

# The largest key-derivation iteration count we accept in a .pfx (its MAC, and the PBE/PBES2
# parameters of its encrypted bags), checked before anything is derived: each iteration is one
# hash, and the count is whatever the file says (up to 2^31), so a crafted file could otherwise
# hold a worker for hours. Exports use 1 to 10,000 (OpenSSL 2,048, Windows 2,000, Java 10,000;
# the most cautious ones 600,000, NIST's figure for PBKDF2-SHA256); a million is about a second.
MAX_PKCS12_ITERATIONS = 1_000_000

_OidPredicate = Callable[[x509.ObjectIdentifier], bool]


class CertificateError(ValueError):
    """A certificate that cannot be used. `code` is for programs, `message` (Spanish) for people.

    Codes: not_pkcs12, bad_file, bad_password, no_private_key, not_rsa, expired, not_yet_valid,
    no_rut.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Certificate:
    """A loaded signing certificate with what XMLDSig's KeyInfo needs."""

    private_key: RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate
    rut: str | None
    holder_name: str
    not_before: datetime
    not_after: datetime
    der_b64: str = field(repr=False)
    modulus_b64: str = field(repr=False)
    exponent_b64: str = field(repr=False)

    def check_valid(self, now: datetime) -> None:
        """Raise CertificateError("expired"/"not_yet_valid") unless valid at `now` (aware)."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        if now < self.not_before:
            raise CertificateError(
                "not_yet_valid",
                f"El certificado digital aún no es válido: rige desde el "
                f"{_format_datetime(self.not_before)}.",
            )
        if now > self.not_after:
            raise CertificateError(
                "expired",
                f"El certificado digital venció el {_format_datetime(self.not_after)}. "
                "Cargue un certificado vigente.",
            )

    def require_rut(self) -> str:
        """The holder's RUT, or CertificateError("no_rut") when the certificate has none."""
        if self.rut is None:
            raise CertificateError(
                "no_rut",
                "No se encontró el RUT del titular en el certificado digital. Use un "
                "certificado emitido por una entidad certificadora acreditada en Chile.",
            )
        return self.rut


def load_pkcs12(data: bytes, password: str | bytes) -> Certificate:
    """Open a .pfx/.p12 file. Does not check dates (see Certificate.check_valid)."""
    if not _looks_like_pkcs12(data):
        raise CertificateError(
            "not_pkcs12",
            "El archivo no es un certificado digital en formato PKCS#12 (.pfx o .p12).",
        )
    _check_iterations(bytes(data))
    key, cert, extra = _open_pkcs12(bytes(data), password)
    certificates = [c for c in (cert, *extra) if c is not None]
    if not certificates:
        raise CertificateError(
            "not_pkcs12", "El archivo PKCS#12 no contiene un certificado digital."
        )
    if key is None:
        raise CertificateError(
            "no_private_key",
            "El archivo no contiene la clave privada del certificado. Exporte el certificado "
            "incluyendo la clave privada.",
        )
    if not isinstance(key, RSAPrivateKey):
        raise CertificateError(
            "not_rsa", "La clave del certificado no es RSA; el SII solo acepta firmas RSA."
        )
    return _certificate(key, _matching_certificate(key, certificates))


def rut_from_certificate(cert: x509.Certificate) -> str | None:
    """The holder's RUT (canonical), or None. See the module docstring for where we look."""
    other_names = _other_names(cert)
    sources: list[tuple[list[str], bool]] = [
        (_texts_of(other_names, lambda oid: oid == HOLDER_RUT_OID), False),
        (_subject_texts(cert, NameOID.SERIAL_NUMBER), False),
        (_texts_of(other_names, lambda oid: oid not in (HOLDER_RUT_OID, ISSUER_RUT_OID)), True),
        (_subject_texts(cert, NameOID.ORGANIZATIONAL_UNIT_NAME), True),
        (_subject_texts(cert, NameOID.COMMON_NAME), True),
    ]
    for texts, require_hyphen in sources:
        for text in texts:
            rut = _rut_in_text(text, require_hyphen=require_hyphen)
            if rut is not None:
                return rut
    return None


# --- PKCS#12 ----------------------------------------------------------------------------------


def _open_pkcs12(
    data: bytes, password: str | bytes
) -> tuple[PrivateKeyTypes | None, x509.Certificate | None, list[x509.Certificate]]:
    for candidate in _password_candidates(password):
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, candidate)
        except UnsupportedAlgorithm:
            raise CertificateError(
                "not_pkcs12",
                "El certificado usa un cifrado antiguo no soportado. Expórtelo nuevamente "
                "(por ejemplo con AES-256) e inténtelo otra vez.",
            ) from None
        except (ValueError, TypeError):
            continue
        return key, cert, list(extra)
    raise CertificateError(
        "bad_password",
        "La contraseña del certificado digital no es correcta (o el archivo está dañado).",
    )


def _password_candidates(password: str | bytes) -> list[bytes | None]:
    """UTF-8 first (OpenSSL 3), then Latin-1 (old exports); empty means no password."""
    if isinstance(password, str):
        encoded = [password.encode("utf-8")]
        try:
            latin1 = password.encode("latin-1")
        except UnicodeEncodeError:
            latin1 = encoded[0]
        if latin1 != encoded[0]:
            encoded.append(latin1)
    else:
        encoded = [bytes(password)]
    if encoded == [b""]:
        return [None, b""]
    return list(encoded)


def _looks_like_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo (data | signedData), … }."""
    if not isinstance(data, bytes | bytearray) or len(data) < 16:
        return False
    try:
        tag, content, _ = _read_tlv(bytes(data), 0)
        if tag != 0x30:
            return False
        children = _children(content, limit=2)
        version, auth_safe = next(children), next(children)
        if version != (0x02, b"\x03") or auth_safe[0] != 0x30:
            return False
        oid_tag, oid, _ = _read_tlv(auth_safe[1], 0)
    except (ValueError, StopIteration):
        return False
    return oid_tag == 0x06 and oid in (_PKCS7_DATA, _PKCS7_SIGNED_DATA)


def _check_iterations(data: bytes) -> None:
    """Refuse a .pfx whose MAC or encrypted bags ask for more than MAX_PKCS12_ITERATIONS
    key-derivation rounds (CertificateError "bad_file"), reading only its plaintext DER."""
    counts = list(_pkcs12_iteration_counts(data))
    if counts and max(counts) > MAX_PKCS12_ITERATIONS:
        raise CertificateError(
            "bad_file",
            f"El archivo PKCS#12 pide {_thousands(max(counts))} iteraciones para derivar sus "
            f"claves (el máximo aceptado es {_thousands(MAX_PKCS12_ITERATIONS)}); expórtelo de "
            "nuevo con los valores por omisión.",
        )


def _pkcs12_iteration_counts(data: bytes) -> Iterator[int]:
    """The iteration counts a .pfx declares: MacData.iterations (DEFAULT 1) and those in the
    AlgorithmIdentifier parameters of its encryptedData contents and shrouded key bags (PKCS#12
    PBE and PBES2/PBKDF2 alike). What cannot be parsed is skipped: the loader judges it."""
    try:
        _, pfx, _ = _read_tlv(data, 0)
        parts = list(_children(pfx, limit=3))
    except ValueError:
        return
    if len(parts) == 3 and parts[2][0] == 0x30:  # macData
        try:
            mac = list(_children(parts[2][1], limit=3))
        except ValueError:
            mac = []
        if len(mac) == 3 and mac[2][0] == 0x02:
            yield _der_int(mac[2][1])
    if len(parts) >= 2:
        try:
            yield from _auth_safe_counts(parts[1][1])
        except (ValueError, StopIteration):
            return


def _auth_safe_counts(content_info: bytes) -> Iterator[int]:
    oid_tag, oid, offset = _read_tlv(content_info, 0)
    if oid_tag != 0x06 or oid != _PKCS7_DATA:
        return  # signedData (public-key integrity): no password-based derivation to bound
    _, explicit, _ = _read_tlv(content_info, offset)
    _, safe, _ = _read_tlv(_octets(explicit), 0)  # AuthenticatedSafe: SEQUENCE OF ContentInfo
    for tag, info in _children(safe):
        if tag != 0x30:
            continue
        oid_tag, oid, offset = _read_tlv(info, 0)
        _, explicit, _ = _read_tlv(info, offset)
        if oid == _PKCS7_DATA:  # SafeContents in clear: look at the shrouded key bags
            _, bags, _ = _read_tlv(_octets(explicit), 0)
            for bag_tag, bag in _children(bags):
                if bag_tag != 0x30:
                    continue
                _, bag_id, offset = _read_tlv(bag, 0)
                if bag_id != _PKCS8_SHROUDED_KEY_BAG:
                    continue
                _, value, _ = _read_tlv(bag, offset)  # [0] EXPLICIT
                _, epki, _ = _read_tlv(value, 0)  # EncryptedPrivateKeyInfo
                _, algorithm = next(_children(epki, limit=1))
                yield from _algorithm_counts(algorithm)
        elif oid == _PKCS7_ENCRYPTED_DATA:
            _, encrypted, _ = _read_tlv(explicit, 0)  # EncryptedData
            children = _children(encrypted, limit=2)
            next(children)  # version
            _, eci = next(children)  # EncryptedContentInfo
            eci_children = _children(eci, limit=2)
            next(eci_children)  # contentType
            _, algorithm = next(eci_children)
            yield from _algorithm_counts(algorithm)


def _algorithm_counts(algorithm: bytes, depth: int = 0) -> Iterator[int]:
    """Iteration counts in an AlgorithmIdentifier's parameters: every SEQUENCE that starts with
    salt OCTET STRING, iterationCount INTEGER (PKCS#12 pbeParams and PBKDF2-params both do),
    looking into nested AlgorithmIdentifiers (PBES2's keyDerivationFunc)."""
    if depth > 4:
        return
    children = list(_children(algorithm))
    if len(children) >= 2 and children[0][0] == 0x04 and children[1][0] == 0x02:
        yield _der_int(children[1][1])
    for tag, content in children:
        if tag == 0x30:
            yield from _algorithm_counts(content, depth + 1)


def _octets(explicit: bytes) -> bytes:
    """The bytes of the OCTET STRING inside a [0] EXPLICIT; a BER constructed one (tag 0x24,
    as some exporters write) is the concatenation of its pieces."""
    tag, content, _ = _read_tlv(explicit, 0)
    if tag == 0x04:
        return content
    if tag == 0x24:
        pieces = []
        for piece_tag, piece in _children(content):
            if piece_tag == 0x00:  # end-of-contents of an indefinite length
                break
            pieces.append(piece)
        return b"".join(pieces)
    raise ValueError("not an OCTET STRING")


def _thousands(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def _der_int(content: bytes) -> int:
    return int.from_bytes(content, "big", signed=True) if content else 0


def _matching_certificate(
    key: RSAPrivateKey, certificates: list[x509.Certificate]
) -> x509.Certificate:
    """The certificate of `key` (a .pfx may also carry the CA chain)."""
    numbers = key.public_key().public_numbers()
    for candidate in certificates:
        public = candidate.public_key()
        if isinstance(public, RSAPublicKey) and public.public_numbers() == numbers:
            return candidate
    raise CertificateError(
        "no_private_key",
        "La clave privada del archivo no corresponde al certificado digital que contiene.",
    )


def _certificate(key: RSAPrivateKey, cert: x509.Certificate) -> Certificate:
    numbers = key.public_key().public_numbers()
    return Certificate(
        private_key=key,
        certificate=cert,
        rut=rut_from_certificate(cert),
        holder_name=_holder_name(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        der_b64=_b64(cert.public_bytes(serialization.Encoding.DER)),
        modulus_b64=_b64(_int_bytes(numbers.n)),
        exponent_b64=_b64(_int_bytes(numbers.e)),
    )


def _holder_name(cert: x509.Certificate) -> str:
    names = _subject_texts(cert, NameOID.COMMON_NAME)
    return names[0] if names else cert.subject.rfc4514_string()


# --- RUT sources ------------------------------------------------------------------------------


def _rut_in_text(text: str, *, require_hyphen: bool) -> str | None:
    for match in _RUT_IN_TEXT.finditer(text.upper()):
        body, hyphen, dv = match.groups()
        if require_hyphen and not hyphen:
            continue
        try:
            return normalize_rut(f"{body}-{dv}")
        except InvalidRut:
            continue
    return None


def _subject_texts(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    texts: list[str] = []
    for attribute in cert.subject.get_attributes_for_oid(oid):
        value = attribute.value
        texts.append(value.decode("latin-1") if isinstance(value, bytes) else value)
    return texts


def _other_names(cert: x509.Certificate) -> list[x509.OtherName]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return list(san.get_values_for_type(x509.OtherName))


def _texts_of(other_names: list[x509.OtherName], wanted: _OidPredicate) -> list[str]:
    return [text for name in other_names if wanted(name.type_id) for text in _der_texts(name.value)]


def _der_texts(value: bytes) -> list[str]:
    """The strings inside an otherName value (DER, maybe wrapped in [0] or a SEQUENCE).

    Falls back to the raw bytes as Latin-1 when the value is not valid DER.
    """
    try:
        texts = list(_walk_strings(value))
    except (ValueError, UnicodeDecodeError):
        texts = []
    return texts or [value.decode("latin-1")]


def _walk_strings(data: bytes, depth: int = 0) -> Iterator[str]:
    if depth > 8:
        raise ValueError("DER nested too deeply")
    for tag, content in _children(data):
        if tag in _DER_STRING_CODECS:
            yield content.decode(_DER_STRING_CODECS[tag])
        elif tag & 0x20:  # constructed: SEQUENCE, SET, [n] EXPLICIT …
            yield from _walk_strings(content, depth + 1)


# --- Minimal DER reader -----------------------------------------------------------------------


def _read_tlv(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, content, next offset) of the TLV at `offset`; single-byte tags only.

    An indefinite length (BER, found in some .pfx exports) yields the rest of `data`.
    """
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not supported")
    position = offset + 2
    if first == 0x80:
        return tag, data[position:], len(data)
    if first & 0x80:
        count = first & 0x7F
        if count > 4 or position + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    else:
        length = first
    if position + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[position : position + length], position + length


def _children(data: bytes, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    offset, count = 0, 0
    while offset < len(data) and (limit is None or count < limit):
        tag, content, offset = _read_tlv(data, offset)
        count += 1
        yield tag, content


# --- Helpers ----------------------------------------------------------------------------------


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _format_datetime(moment: datetime) -> str:
    return moment.strftime("%d-%m-%Y %H:%M UTC")
