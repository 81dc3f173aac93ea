"""dte.core.testmaterial: the sandbox's CAF keys, CAF files and test certificates."""

import base64
import math
import re
from datetime import UTC, date, datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import pkcs12

from dte.core import testmaterial
from dte.core.caf import flatten_xml, parse_caf, verify_caf_signature
from dte.core.testmaterial import (
    SANDBOX_IDK,
    TEST_ORGANIZATION,
    generate_caf_key,
    generate_sii_key,
    make_caf,
    make_test_certificate,
)

FA = date(2024, 3, 15)


@pytest.fixture(scope="module")
def sii_key() -> RSAPrivateKey:
    return generate_sii_key()


@pytest.fixture(scope="module")
def folio_key() -> RSAPrivateKey:
    return generate_caf_key()


@pytest.fixture(scope="module")
def caf_file(sii_key: RSAPrivateKey, folio_key: RSAPrivateKey) -> bytes:
    return make_caf(
        sii_key=sii_key,
        idk=SANDBOX_IDK,
        rut_emisor="76.086.428-5",
        razon_social="COMERCIALIZADORA DE PRUEBAS <ÁRBOL> & HERMANOS LIMITADA",
        tipo_dte=33,
        folio_desde=1,
        folio_hasta=50,
        fecha_autorizacion=FA,
        folio_key=folio_key,
    )


# --- Keys -------------------------------------------------------------------------------------


def test_generate_caf_key_is_512_bit_exponent_3(folio_key: RSAPrivateKey) -> None:
    numbers = folio_key.private_numbers()
    assert folio_key.key_size == 512
    assert numbers.public_numbers.n.bit_length() == 512
    assert numbers.public_numbers.e == 3
    assert numbers.p.bit_length() == numbers.q.bit_length() == 256
    assert math.gcd(3, numbers.p - 1) == math.gcd(3, numbers.q - 1) == 1


def test_generate_caf_key_signs_and_verifies(folio_key: RSAPrivateKey) -> None:
    signature = folio_key.sign(b"<DD>x</DD>", padding.PKCS1v15(), hashes.SHA1())
    assert len(signature) == 64
    public = folio_key.public_key()
    public.verify(signature, b"<DD>x</DD>", padding.PKCS1v15(), hashes.SHA1())
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"<DD>y</DD>", padding.PKCS1v15(), hashes.SHA1())


def test_generated_caf_keys_differ() -> None:
    first, second = generate_caf_key(), generate_caf_key()
    assert first.private_numbers().public_numbers.n != second.private_numbers().public_numbers.n


def test_miller_rabin() -> None:
    primes = [2, 3, 5, 7919, 2**61 - 1, 2**127 - 1]
    composites = [0, 1, 4, 561, 1105, 41041, 3215031751, (2**61 - 1) * (2**31 - 1)]
    assert all(testmaterial._is_probable_prime(n) for n in primes)
    assert not any(testmaterial._is_probable_prime(n) for n in composites)


def test_generate_sii_key(sii_key: RSAPrivateKey) -> None:
    assert sii_key.key_size == 1024
    assert SANDBOX_IDK not in (100, 300)


# --- make_caf ---------------------------------------------------------------------------------


def test_make_caf_layout(caf_file: bytes) -> None:
    lines = caf_file.split(b"\n")
    assert lines[0] == b'<?xml version="1.0" encoding="ISO-8859-1"?>'
    assert b"MATERIAL DE PRUEBA" in lines[1] and lines[1].startswith(b"<!--")
    assert lines[2:4] == [b"<AUTORIZACION>", b'<CAF version="1.0">']
    tags = re.findall(rb"<([A-Z]+)[ >]", flatten_xml(caf_file))
    assert tags == [
        b"AUTORIZACION",
        b"CAF",
        b"DA",
        b"RE",
        b"RS",
        b"TD",
        b"RNG",
        b"D",
        b"H",
        b"FA",
        b"RSAPK",
        b"M",
        b"E",
        b"IDK",
        b"FRMA",
        b"RSASK",
        b"RSAPUBK",
    ]
    assert b">\n<" in caf_file  # newlines between elements, like the SII's files
    assert b"<RSASK>-----BEGIN RSA PRIVATE KEY-----\n" in caf_file
    assert b"<RSAPUBK>-----BEGIN PUBLIC KEY-----\n" in caf_file
    assert b'<FRMA algoritmo="SHA1withRSA">' in caf_file
    assert caf_file.endswith(b"</AUTORIZACION>\n")


def test_make_caf_content(
    caf_file: bytes, sii_key: RSAPrivateKey, folio_key: RSAPrivateKey
) -> None:
    caf = parse_caf(caf_file)
    assert caf.rut_emisor == "76086428-5"
    assert caf.razon_social == "COMERCIALIZADORA DE PRUEBAS <ÁRBOL> & HE"  # cut to 40
    assert len(caf.razon_social) == 40
    assert "&lt;ÁRBOL&gt; &amp; HE</RS>".encode("iso-8859-1") in caf_file
    assert caf.idk == SANDBOX_IDK
    assert caf.fecha_autorizacion == FA
    assert caf.private_key().private_numbers() == folio_key.private_numbers()
    assert verify_caf_signature(caf, sii_key.public_key())


def test_make_caf_frma_is_over_the_flattened_da(caf_file: bytes, sii_key: RSAPrivateKey) -> None:
    da = re.search(rb"<DA>.*</DA>", caf_file, re.DOTALL)
    frma = re.search(rb"<FRMA[^>]*>([^<]+)</FRMA>", caf_file)
    assert da is not None and frma is not None
    assert b"\n" in da.group(0)
    sii_key.public_key().verify(
        base64.b64decode(frma.group(1)), flatten_xml(da.group(0)), padding.PKCS1v15(), hashes.SHA1()
    )


def test_make_caf_generates_a_folio_key_when_none_given(sii_key: RSAPrivateKey) -> None:
    data = make_caf(
        sii_key=sii_key,
        idk=SANDBOX_IDK,
        rut_emisor="76086428-5",
        razon_social="X",
        tipo_dte=39,
        folio_desde=10,
        folio_hasta=10,
        fecha_autorizacion=FA,
    )
    caf = parse_caf(data)
    assert caf.private_key().key_size == 512
    assert caf.contains(10) and not caf.contains(11)


def test_make_caf_rejects_a_bad_range(sii_key: RSAPrivateKey) -> None:
    with pytest.raises(ValueError):
        make_caf(
            sii_key=sii_key,
            idk=SANDBOX_IDK,
            rut_emisor="76086428-5",
            razon_social="X",
            tipo_dte=33,
            folio_desde=5,
            folio_hasta=4,
            fecha_autorizacion=FA,
        )


# --- make_test_certificate --------------------------------------------------------------------


def test_make_test_certificate_is_marked_as_test_material() -> None:
    data = make_test_certificate(
        rut="12.345.678-5",
        holder_name="Ana Prueba",
        password="clave",
        not_before=datetime(2024, 1, 1, tzinfo=UTC),
        not_after=datetime(2025, 1, 1, tzinfo=UTC),
    )
    key, cert, extra = pkcs12.load_key_and_certificates(data, b"clave")
    assert cert is not None and key is not None and extra == []
    assert isinstance(key, RSAPrivateKey) and key.key_size == 2048
    assert TEST_ORGANIZATION in cert.subject.rfc4514_string()
    assert "SIN VALIDEZ LEGAL" in TEST_ORGANIZATION
    assert "2.5.4.5=12345678-5" in cert.subject.rfc4514_string()
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, b"otra")
