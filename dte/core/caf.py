"""CAF (Código de Autorización de Folios): parse, verify and check the files the SII hands out.

Pure: no Django, no I/O except reading the SII's public keys shipped in `sii_keys/`, no clock
(`today` is passed in).

A CAF file is `AUTORIZACION/{CAF/{DA, FRMA}, RSASK, RSAPUBK}` in ISO-8859-1 (often mis-declared
as UTF-8). The SII signs the whitespace-flattened `<DA>…</DA>` bytes (FRMA, SHA1withRSA) with
the key named by `DA/IDK` (100 certification, 300 production). The whole `<CAF>` element is
copied verbatim into every TED, so we keep its exact bytes (`caf_xml`), flattened.

Hostile input is expected (files are uploaded by users): no DTD, no entities, no network, a size
cap, and every failure becomes `CafError("malformed")`.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from lxml import etree

from erp.doctypes import codes
from erp.rut import InvalidRut, normalize_rut

IDK_CERTIFICACION = 100
IDK_PRODUCCION = 300
# Human names of the environments a CAF-signing key belongs to (900 is the local sandbox SII,
# `dte.core.testmaterial.SANDBOX_IDK`).
_ENVIRONMENT_NAMES: dict[int, str] = {
    IDK_CERTIFICACION: "el ambiente de certificación del SII",
    IDK_PRODUCCION: "el ambiente de producción del SII",
    900: "el SII de pruebas local (sandbox)",
}

# Document types whose folios must be used within 6 months of FA (SII: "CAF Vencido").
EXPIRING_TYPES = codes(lambda d: d.caf_expires)
EXPIRY_MONTHS = 6

# A real CAF is ~2 KB; anything far larger is not one.
MAX_CAF_BYTES = 256 * 1024

_XML_DECLARATION = re.compile(r"^<\?xml\b[^>]*\?>")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_BETWEEN_TAGS_STR = re.compile(r">[ \t\r\n]+<")
_BETWEEN_TAGS_BYTES = re.compile(rb">[ \t\r\n]+<")
_TAG = re.compile(
    r"<(/?)([A-Za-z_][\w.-]*)((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>"
)
_ATTRIBUTE = re.compile(r"([^\s=/>]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_INTEGER = re.compile(r"^\d{1,12}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class CafError(ValueError):
    """A CAF that cannot be used. `code` is for programs, `message` (Spanish) for people.

    Codes: malformed, key_mismatch, bad_signature, unknown_idk, wrong_company, wrong_type,
    expired, wrong_environment.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CafPublic:
    """The public part of a CAF: what a `<CAF>` element copied out of a TED carries."""

    rut_emisor: str
    razon_social: str
    tipo_dte: int
    folio_desde: int
    folio_hasta: int
    fecha_autorizacion: date
    idk: int
    public_key: RSAPublicKey
    da_xml: bytes = field(repr=False)
    frma: bytes = field(repr=False)

    def contains(self, folio: int) -> bool:
        """Whether `folio` is inside the authorised range."""
        return self.folio_desde <= folio <= self.folio_hasta

    def expires_on(self) -> date | None:
        """Last day on which a folio of this CAF may be used, or None if it does not expire.

        The SII rejects documents of types 33, 43, 46, 56 and 61 whose CAF is more than
        6 months old ("CAF Vencido"). We use calendar months (FA 2024-01-31 -> 2024-07-31,
        FA 2024-08-31 -> 2025-02-28), which is what "6 meses" means; LibreDTE's FA + 180 days
        ends 1-3 days earlier. The CAF is usable up to and including the returned day.
        """
        if self.tipo_dte not in EXPIRING_TYPES:
            return None
        return add_months(self.fecha_autorizacion, EXPIRY_MONTHS)


@dataclass(frozen=True, slots=True)
class Caf(CafPublic):
    """A complete CAF file: the public part plus the folio range's private key."""

    private_key_pem: bytes = field(repr=False)
    caf_xml: bytes = field(repr=False)

    def private_key(self) -> RSAPrivateKey:
        """The RSA key that signs the TEDs of this folio range (RSASK)."""
        return _load_private_key(self.private_key_pem)


def add_months(day: date, months: int) -> date:
    """`day` plus calendar months, clamped to the end of the target month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def flatten_xml(data: bytes) -> bytes:
    """Remove whitespace between tags (`>  \\n <` -> `><`); text content is untouched."""
    return _BETWEEN_TAGS_BYTES.sub(b"><", data)


def parse_caf(data: bytes) -> Caf:
    """Parse a whole AUTORIZACION file as downloaded from the SII.

    Raises CafError("malformed") for anything that is not a CAF and CafError("key_mismatch")
    when RSASK (or RSAPUBK) does not belong to DA/RSAPK.
    """
    text = _prepare(data)
    root = _parse_xml(text)
    if etree.QName(root).localname == "CAF":
        raise _malformed(
            "contiene solo el elemento CAF, sin la clave privada (RSASK); descargue el archivo "
            "completo desde el sitio del SII"
        )
    if etree.QName(root).localname != "AUTORIZACION":
        raise _malformed("el elemento raíz debe ser AUTORIZACION")
    _single(root, "CAF")
    caf_text = _element_text(text, "CAF")
    public = _read_caf_element(caf_text)
    private_key_pem = _normalize_pem(_single_text(root, "RSASK"))
    private_key = _parse_private_key(private_key_pem)
    _check_key_pair(private_key, public.public_key)
    _check_rsapubk(root, public.public_key)
    return Caf(
        rut_emisor=public.rut_emisor,
        razon_social=public.razon_social,
        tipo_dte=public.tipo_dte,
        folio_desde=public.folio_desde,
        folio_hasta=public.folio_hasta,
        fecha_autorizacion=public.fecha_autorizacion,
        idk=public.idk,
        public_key=public.public_key,
        da_xml=public.da_xml,
        frma=public.frma,
        private_key_pem=private_key_pem,
        caf_xml=caf_text.encode("iso-8859-1"),
    )


def parse_caf_element(caf_xml: bytes) -> CafPublic:
    """Parse just a `<CAF version="1.0">…</CAF>` element (e.g. copied out of a TED)."""
    return _read_caf_element(_element_text(_prepare(caf_xml), "CAF"))


def verify_caf_signature(caf: Caf | CafPublic, sii_key: RSAPublicKey) -> bool:
    """Whether FRMA is the SII's SHA1withRSA (PKCS#1 v1.5) signature of `da_xml`."""
    try:
        sii_key.verify(caf.frma, caf.da_xml, padding.PKCS1v15(), hashes.SHA1())
    except (InvalidSignature, ValueError):
        return False
    return True


def official_sii_keys() -> dict[int, RSAPublicKey]:
    """The SII's CAF-signing public keys: {100: certification (maullin), 300: production}."""
    return dict(_official_sii_keys())


class SiiKeyUnavailable(Exception):
    """Raised by a mapping of SII keys for an IDK it accepts but cannot provide right now (the
    sandbox's key, kept in a database that cannot be read): the message is the reason, one
    line, and the CAF is reported as not verifiable rather than unknown."""


def check_caf(
    caf: Caf,
    *,
    rut: str,
    tipo_dte: int | None,
    sii_keys: Mapping[int, RSAPublicKey],
    today: date,
) -> None:
    """Checks before a CAF is accepted for a company (key pairing was checked by parse_caf).

    `sii_keys` holds the keys of the company's environment only, so a CAF signed for another
    environment is reported as wrong_environment.
    """
    if _canonical_rut(rut) != caf.rut_emisor:
        raise CafError(
            "wrong_company",
            f"El CAF fue emitido para el RUT {caf.rut_emisor} y no corresponde a la empresa "
            f"({_canonical_rut(rut)}).",
        )
    if tipo_dte is not None and tipo_dte != caf.tipo_dte:
        raise CafError(
            "wrong_type",
            f"El CAF es para documentos tipo {caf.tipo_dte}, no para el tipo {tipo_dte}.",
        )
    sii_key = sii_keys.get(caf.idk)
    if sii_key is None:
        raise _idk_error(caf.idk)
    if not verify_caf_signature(caf, sii_key):
        raise CafError(
            "bad_signature",
            "La firma del SII en el CAF no es válida: el archivo fue modificado o no fue "
            "emitido por el SII. Descárguelo nuevamente desde el sitio del SII.",
        )
    expires_on = caf.expires_on()
    if expires_on is not None and today > expires_on:
        raise CafError(
            "expired",
            f"El CAF venció el {_format_date(expires_on)}: los folios de este tipo de documento "
            f"deben usarse dentro de {EXPIRY_MONTHS} meses desde su autorización "
            f"({_format_date(caf.fecha_autorizacion)}). Solicite un nuevo CAF en el SII.",
        )


# --- Text preparation -------------------------------------------------------------------------


def _prepare(data: bytes) -> str:
    """Decode as ISO-8859-1, drop the declaration and comments, flatten, refuse DTDs/CDATA/PIs."""
    if not isinstance(data, bytes | bytearray):
        raise _malformed("se esperaba el contenido del archivo")
    if len(data) > MAX_CAF_BYTES:
        raise _malformed("el archivo es demasiado grande para ser un CAF")
    text = _decode(bytes(data).removeprefix(b"\xef\xbb\xbf")).strip()
    text = _COMMENT.sub("", _XML_DECLARATION.sub("", text, count=1))
    if "<!" in text or "<?" in text:
        raise _malformed("contiene declaraciones no permitidas (DOCTYPE, CDATA o instrucciones)")
    return _BETWEEN_TAGS_STR.sub("><", text).strip()


def _decode(data: bytes) -> str:
    """ISO-8859-1, whatever the declaration says.

    One exception: a file someone re-saved as real UTF-8 (valid UTF-8 with non-ASCII bytes, all
    of it Latin-1 characters) is decoded as UTF-8, which gives back the text the SII signed.
    Genuine ISO-8859-1 text with accents is practically never valid UTF-8.
    """
    if any(byte > 0x7F for byte in data):
        try:
            text = data.decode("utf-8")
            text.encode("iso-8859-1")
        except UnicodeError:
            pass
        else:
            return text
    return data.decode("iso-8859-1")


def _parse_xml(text: str) -> etree._Element:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(text, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise _malformed("no es un XML bien formado") from exc
    if root is None:
        raise _malformed("no es un XML bien formado")
    # A default namespace (xmlns="…") is tolerated (and dropped from caf_xml); prefixes are not.
    if any(not isinstance(node.tag, str) or node.prefix is not None for node in root.iter()):
        raise _malformed("contiene nodos o prefijos de espacio de nombres inesperados")
    return root


def _element_text(text: str, name: str) -> str:
    """The exact text of the first `<name …>…</name>` element, with canonical tags.

    Safe as plain text search because _prepare refused CDATA/PIs and removed comments: in
    well-formed XML a `<` then only starts a tag.
    """
    match = re.search(rf"<{name}(?=[\s/>])", text)
    end = text.find(f"</{name}>", match.start()) if match else -1
    if match is None or end < 0:
        raise _malformed(f"falta el elemento {name}")
    return _canonical_tags(text[match.start() : end + len(name) + 3])


def _canonical_tags(text: str) -> str:
    """Rewrite tags without xmlns declarations and with double-quoted attributes."""

    def rewrite(match: re.Match[str]) -> str:
        closing, name, attributes, empty = match.groups()
        if closing:
            return f"</{name}>"
        kept = [
            f' {key}="{value.replace(chr(34), "&quot;")}"'
            for key, double, single in _ATTRIBUTE.findall(attributes)
            for value in [double or single]
            if key != "xmlns" and not key.startswith("xmlns:")
        ]
        return f"<{name}{''.join(kept)}{'/' if empty else ''}>"

    return _TAG.sub(rewrite, text)


# --- The CAF element --------------------------------------------------------------------------


def _read_caf_element(caf_text: str) -> CafPublic:
    caf = _parse_xml(caf_text)
    if etree.QName(caf).localname != "CAF":
        raise _malformed("falta el elemento CAF")
    da = _single(caf, "DA")
    if _optional(da, "RSAPK") is None:
        if _optional(da, "DSAPK") is not None:
            raise _malformed("CAF con clave DSA (DSAPK): no está soportado")
        raise _malformed("falta el elemento RSAPK")
    frma = _single(caf, "FRMA")
    if (frma.get("algoritmo") or "SHA1withRSA") != "SHA1withRSA":
        raise _malformed("algoritmo de firma FRMA no soportado")
    desde, hasta = _integer(da, "RNG/D"), _integer(da, "RNG/H")
    if desde < 1 or hasta < desde:
        raise _malformed("el rango de folios (RNG) no es válido")
    return CafPublic(
        rut_emisor=_rut(_single_text(da, "RE")),
        razon_social=_single_text(da, "RS"),
        tipo_dte=_integer(da, "TD"),
        folio_desde=desde,
        folio_hasta=hasta,
        fecha_autorizacion=_date(_single_text(da, "FA")),
        idk=_integer(da, "IDK"),
        public_key=_rsa_public_key(_b64(da, "RSAPK/M"), _b64(da, "RSAPK/E")),
        da_xml=_element_text(caf_text, "DA").encode("iso-8859-1"),
        frma=_b64(caf, "FRMA"),
    )


def _optional(parent: etree._Element, path: str) -> etree._Element | None:
    """The only element at `path` (any namespace), None if absent; malformed if repeated."""
    found = parent.findall("/".join(f"{{*}}{step}" for step in path.split("/")))
    if len(found) > 1:
        raise _malformed(f"el elemento {path} aparece más de una vez")
    return found[0] if found else None


def _single(parent: etree._Element, path: str) -> etree._Element:
    element = _optional(parent, path)
    if element is None:
        raise _malformed(f"falta el elemento {path}")
    return element


def _single_text(parent: etree._Element, path: str) -> str:
    element = _single(parent, path)
    if len(element):
        raise _malformed(f"el elemento {path} no debe tener subelementos")
    text = (element.text or "").strip()
    if not text:
        raise _malformed(f"el elemento {path} está vacío")
    return text


def _integer(parent: etree._Element, path: str) -> int:
    text = _single_text(parent, path)
    if not _INTEGER.match(text):
        raise _malformed(f"el elemento {path} debe ser un número entero")
    return int(text)


def _date(text: str) -> date:
    try:
        if not _ISO_DATE.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise _malformed("la fecha de autorización (FA) no es válida") from exc


def _rut(text: str) -> str:
    try:
        return normalize_rut(text)
    except InvalidRut as exc:
        raise _malformed("el RUT del emisor (RE) no es válido") from exc


def _b64(parent: etree._Element, path: str) -> bytes:
    compact = re.sub(r"\s+", "", _single_text(parent, path))
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(f"el elemento {path} no es base64 válido") from exc


def _rsa_public_key(modulus: bytes, exponent: bytes) -> RSAPublicKey:
    n, e = int.from_bytes(modulus, "big"), int.from_bytes(exponent, "big")
    if n.bit_length() < 256 or n.bit_length() > 4096 or e < 3 or e % 2 == 0:
        raise _malformed("la clave pública RSAPK no es válida")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _malformed("la clave pública RSAPK no es válida") from exc


# --- Private key ------------------------------------------------------------------------------


def _normalize_pem(text: str) -> bytes:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")


def _parse_private_key(pem: bytes) -> RSAPrivateKey:
    try:
        return _load_private_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # No chaining: the loader's error says nothing useful and must not echo key material.
        raise _malformed("la clave privada RSASK no es válida") from None


@lru_cache(maxsize=64)
def _load_private_key(pem: bytes) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, RSAPrivateKey):
        raise TypeError("RSASK is not an RSA key")
    return key


def _check_key_pair(private_key: RSAPrivateKey, public_key: RSAPublicKey) -> None:
    if private_key.public_key().public_numbers() != public_key.public_numbers():
        raise CafError(
            "key_mismatch",
            "La clave privada del CAF (RSASK) no corresponde a su clave pública (RSAPK): el "
            "archivo está alterado o dañado. Descárguelo nuevamente desde el sitio del SII.",
        )


def _check_rsapubk(root: etree._Element, public_key: RSAPublicKey) -> None:
    """RSAPUBK repeats RSAPK as PEM; when present it must agree."""
    element = _optional(root, "RSAPUBK")
    if element is None or not (element.text or "").strip():
        return
    try:
        pubk = serialization.load_pem_public_key(_normalize_pem(element.text or ""))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _malformed("la clave pública RSAPUBK no es válida") from exc
    if not isinstance(pubk, RSAPublicKey) or pubk.public_numbers() != public_key.public_numbers():
        raise CafError(
            "key_mismatch",
            "La clave pública RSAPUBK del CAF no coincide con RSAPK: el archivo está alterado o "
            "dañado. Descárguelo nuevamente desde el sitio del SII.",
        )


# --- Helpers ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _official_sii_keys() -> tuple[tuple[int, RSAPublicKey], ...]:
    folder = resources.files(__package__ or "dte.core").joinpath("sii_keys")
    keys: list[tuple[int, RSAPublicKey]] = []
    for idk in (IDK_CERTIFICACION, IDK_PRODUCCION):
        key = serialization.load_pem_public_key(folder.joinpath(f"caf_idk{idk}.pem").read_bytes())
        assert isinstance(key, RSAPublicKey)
        keys.append((idk, key))
    return tuple(keys)


def _idk_error(idk: int) -> CafError:
    environment = _ENVIRONMENT_NAMES.get(idk)
    if environment is not None:
        return CafError(
            "wrong_environment",
            f"El CAF fue autorizado para {environment} y no corresponde al ambiente configurado "
            "para la empresa.",
        )
    return CafError(
        "unknown_idk",
        f"El CAF está firmado con una llave del SII desconocida (IDK {idk}); no es posible "
        "verificar que lo haya emitido el SII.",
    )


def _canonical_rut(rut: str) -> str:
    try:
        return normalize_rut(rut)
    except InvalidRut:
        return rut


def _format_date(day: date) -> str:
    return day.strftime("%d-%m-%Y")


def _malformed(detail: str) -> CafError:
    return CafError("malformed", f"El archivo no es un CAF válido del SII: {detail}.")
