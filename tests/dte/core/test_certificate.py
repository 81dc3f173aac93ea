"""dte.core.certificate: opening .pfx files and finding the holder's RUT (pure, no database)."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from dte.core.certificate import (
    Certificate,
    CertificateError,
    load_pkcs12,
    rut_from_certificate,
)
from dte.core.testmaterial import TEST_ORGANIZATION, make_test_certificate
from erp.rut import check_digit

RUT = "12345678-5"
OTHER_RUT = "76086428-5"
HOLDER = "José Pérez Ñuñez"
PASSWORD = "contraseña-Ñ 2024"
NOT_BEFORE = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
NOT_AFTER = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOLDER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.8321.1")
ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.8321.2")


@pytest.fixture(scope="module")
def key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def p12(key: RSAPrivateKey) -> bytes:
    return make_test_certificate(
        rut=RUT,
        holder_name=HOLDER,
        password=PASSWORD,
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
        key=key,
    )


@pytest.fixture(scope="module")
def loaded(p12: bytes) -> Certificate:
    return load_pkcs12(p12, PASSWORD)


def _code(excinfo: pytest.ExceptionInfo[CertificateError]) -> str:
    return excinfo.value.code


def _ia5(text: str) -> bytes:
    return bytes([0x16, len(text)]) + text.encode("ascii")


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    return bytes([0x0C, len(raw)]) + raw


def _cert(
    key: RSAPrivateKey,
    attributes: list[tuple[x509.ObjectIdentifier, str]],
    other_names: list[tuple[x509.ObjectIdentifier, bytes]] = (),  # type: ignore[assignment]
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
    )
    if other_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.OtherName(oid, value) for oid, value in other_names]),
            critical=False,
        )
    return builder.sign(key, hashes.SHA256())


# --- load_pkcs12 ------------------------------------------------------------------------------


def test_load_pkcs12(loaded: Certificate, key: RSAPrivateKey) -> None:
    assert loaded.rut == RUT
    assert loaded.holder_name == HOLDER
    assert loaded.not_before == NOT_BEFORE
    assert loaded.not_after == NOT_AFTER
    assert loaded.not_before.tzinfo is not None
    assert loaded.private_key.private_numbers() == key.private_numbers()


def test_key_info_values_match_the_key(loaded: Certificate, key: RSAPrivateKey) -> None:
    numbers = key.public_key().public_numbers()
    assert "\n" not in loaded.der_b64
    der = base64.b64decode(loaded.der_b64, validate=True)
    assert x509.load_der_x509_certificate(der) == loaded.certificate
    assert loaded.exponent_b64 == "AQAB"
    modulus = base64.b64decode(loaded.modulus_b64, validate=True)
    assert int.from_bytes(modulus, "big") == numbers.n
    assert len(modulus) == 256 and modulus[0] != 0  # minimal bytes, no sign byte


def test_repr_hides_the_private_key(loaded: Certificate) -> None:
    text = repr(loaded)
    assert "private_key" not in text and PASSWORD not in text
    assert RUT in text


def test_password_as_bytes(p12: bytes) -> None:
    assert load_pkcs12(p12, PASSWORD.encode("utf-8")).rut == RUT


def test_empty_password(key: RSAPrivateKey) -> None:
    data = make_test_certificate(
        rut=RUT,
        holder_name=HOLDER,
        password="",
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
        key=key,
    )
    assert load_pkcs12(data, "").rut == RUT


@pytest.mark.parametrize("password", ["otra", "", PASSWORD.upper()])
def test_wrong_password(p12: bytes, password: str) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_pkcs12(p12, password)
    assert _code(excinfo) == "bad_password"
    assert password not in excinfo.value.message or not password


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage" * 20,
        b"\x30\x82\xff\xff" + b"\x00" * 40,
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    ],
)
def test_not_pkcs12(data: bytes) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_pkcs12(data, PASSWORD)
    assert _code(excinfo) == "not_pkcs12"


def test_a_bare_der_certificate_is_not_pkcs12(loaded: Certificate) -> None:
    der = loaded.certificate.public_bytes(serialization.Encoding.DER)
    with pytest.raises(CertificateError) as excinfo:
        load_pkcs12(der, PASSWORD)
    assert _code(excinfo) == "not_pkcs12"


def test_no_private_key(loaded: Certificate) -> None:
    data = pkcs12.serialize_key_and_certificates(
        b"solo certificado",
        None,
        loaded.certificate,
        None,
        serialization.BestAvailableEncryption(b"x"),
    )
    with pytest.raises(CertificateError) as excinfo:
        load_pkcs12(data, "x")
    assert _code(excinfo) == "no_private_key"


def test_key_of_another_certificate(loaded: Certificate) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    data = pkcs12.serialize_key_and_certificates(
        b"mezcla", other_key, None, [loaded.certificate], serialization.NoEncryption()
    )
    with pytest.raises(CertificateError) as excinfo:
        load_pkcs12(data, "")
    assert _code(excinfo) == "no_private_key"


def test_the_certificate_of_the_key_is_picked_from_the_chain(
    loaded: Certificate, key: RSAPrivateKey
) -> None:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ca = _cert(ca_key, [(NameOID.COMMON_NAME, "CA de prueba")])
    data = pkcs12.serialize_key_and_certificates(
        b"cadena", key, loaded.certificate, [ca], serialization.NoEncryption()
    )
    assert load_pkcs12(data, "").certificate == loaded.certificate


def test_not_rsa() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EC")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ec_key.public_key())
        .serial_number(1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .sign(ec_key, hashes.SHA256())
    )
    data = pkcs12.serialize_key_and_certificates(
        b"ec", ec_key, cert, None, serialization.NoEncryption()
    )
    with pytest.raises(CertificateError) as excinfo:
        load_pkcs12(data, "")
    assert _code(excinfo) == "not_rsa"


def test_certificate_without_rut(key: RSAPrivateKey) -> None:
    cert = _cert(key, [(NameOID.COMMON_NAME, "Sin RUT")])
    data = pkcs12.serialize_key_and_certificates(
        b"sin rut", key, cert, None, serialization.NoEncryption()
    )
    loaded = load_pkcs12(data, "")
    assert loaded.rut is None
    with pytest.raises(CertificateError) as excinfo:
        loaded.require_rut()
    assert _code(excinfo) == "no_rut"


def test_require_rut(loaded: Certificate) -> None:
    assert loaded.require_rut() == RUT


# --- check_valid ------------------------------------------------------------------------------


def test_check_valid(loaded: Certificate) -> None:
    loaded.check_valid(NOT_BEFORE)
    loaded.check_valid(NOT_AFTER)
    loaded.check_valid(datetime(2025, 6, 1, 9, 0, tzinfo=UTC))


def test_expired(loaded: Certificate) -> None:
    with pytest.raises(CertificateError) as excinfo:
        loaded.check_valid(NOT_AFTER + timedelta(seconds=1))
    assert _code(excinfo) == "expired"
    assert "01-01-2026" in excinfo.value.message


def test_not_yet_valid(loaded: Certificate) -> None:
    with pytest.raises(CertificateError) as excinfo:
        loaded.check_valid(NOT_BEFORE - timedelta(days=1))
    assert _code(excinfo) == "not_yet_valid"


def test_check_valid_needs_an_aware_now(loaded: Certificate) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        loaded.check_valid(datetime(2025, 1, 1))  # noqa: DTZ001


# --- rut_from_certificate ---------------------------------------------------------------------


def _dotted(rut: str) -> str:
    body, dv = rut.split("-")
    return f"{int(body):,}".replace(",", ".") + f"-{dv}"


@pytest.mark.parametrize(
    "serial",
    [
        RUT,
        f"CL-{RUT}",
        "CL12345678-5",
        RUT.replace("-", ""),
        _dotted(RUT),
        f"0{RUT}",
        f"RUT: {RUT}",
        "12345678 - 5",
    ],
)
def test_rut_from_serial_number_variants(key: RSAPrivateKey, serial: str) -> None:
    cert = _cert(key, [(NameOID.COMMON_NAME, HOLDER), (NameOID.SERIAL_NUMBER, serial)])
    assert rut_from_certificate(cert) == RUT


def test_rut_with_k_and_short_body(key: RSAPrivateKey) -> None:
    for body in (76369187, 1000005, 9999999):
        dv = check_digit(body)
        cert = _cert(key, [(NameOID.SERIAL_NUMBER, f"{body}-{dv.lower()}")])
        assert rut_from_certificate(cert) == f"{body}-{dv}"


@pytest.mark.parametrize("serial", ["12345678-4", "ABCDEF", "1234567890123", ""])
def test_serial_number_that_is_not_a_rut(key: RSAPrivateKey, serial: str) -> None:
    attributes = [(NameOID.COMMON_NAME, "Nadie")]
    if serial:
        attributes.append((NameOID.SERIAL_NUMBER, serial))
    assert rut_from_certificate(_cert(key, attributes)) is None


@pytest.mark.parametrize(
    "value",
    [
        _ia5(RUT),  # E-Sign, as LibreDTE and cl-sii read it
        _ia5(_dotted(RUT)),  # Acepta's "xx.xxx.xxx-v"
        _ia5("0" + RUT),
        _utf8(RUT),
        b"\x30" + bytes([len(_ia5(RUT))]) + _ia5(RUT),  # wrapped in a SEQUENCE
        b"\xa0" + bytes([len(_ia5(RUT))]) + _ia5(RUT),  # wrapped in [0] EXPLICIT
    ],
)
def test_rut_from_other_name_alone(key: RSAPrivateKey, value: bytes) -> None:
    cert = _cert(key, [(NameOID.COMMON_NAME, HOLDER)], [(HOLDER_OID, value)])
    assert rut_from_certificate(cert) == RUT


def test_holder_other_name_wins_over_serial_number(key: RSAPrivateKey) -> None:
    cert = _cert(
        key,
        [(NameOID.SERIAL_NUMBER, OTHER_RUT)],
        [(ISSUER_OID, _ia5("96928180-5")), (HOLDER_OID, _ia5(RUT))],
    )
    assert rut_from_certificate(cert) == RUT


def test_the_issuer_rut_is_never_the_holder(key: RSAPrivateKey) -> None:
    cert = _cert(key, [(NameOID.COMMON_NAME, HOLDER)], [(ISSUER_OID, _ia5(OTHER_RUT))])
    assert rut_from_certificate(cert) is None


def test_other_ca_specific_other_names(key: RSAPrivateKey) -> None:
    custom = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1")
    cert = _cert(key, [(NameOID.COMMON_NAME, HOLDER)], [(custom, _utf8(f"RUN {RUT}"))])
    assert rut_from_certificate(cert) == RUT


def test_rut_in_organizational_unit(key: RSAPrivateKey) -> None:
    """Signapis has put the RUN in OU."""
    cert = _cert(key, [(NameOID.COMMON_NAME, HOLDER), (NameOID.ORGANIZATIONAL_UNIT_NAME, RUT)])
    assert rut_from_certificate(cert) == RUT


def test_rut_in_common_name_needs_a_hyphen(key: RSAPrivateKey) -> None:
    with_rut = _cert(key, [(NameOID.COMMON_NAME, f"Juan Soto {RUT}")])
    assert rut_from_certificate(with_rut) == RUT
    digits_only = _cert(key, [(NameOID.COMMON_NAME, "Juan Soto 123456785")])
    assert rut_from_certificate(digits_only) is None


def test_made_test_certificate_is_marked_and_carries_the_rut_twice(loaded: Certificate) -> None:
    cert = loaded.certificate
    organization = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert organization[0].value == TEST_ORGANIZATION
    assert cert.issuer == cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == RUT
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    other_names = san.get_values_for_type(x509.OtherName)
    assert [(o.type_id, o.value) for o in other_names] == [(HOLDER_OID, _ia5(RUT))]
    only_other_name = _cert(
        loaded.private_key, [(NameOID.COMMON_NAME, HOLDER)], [(HOLDER_OID, other_names[0].value)]
    )
    assert rut_from_certificate(only_other_name) == RUT


# --- absurd key-derivation iteration counts ----------------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def _tlvs(data: bytes) -> list[bytes]:
    """The raw TLVs (header included) one after another in `data` (definite lengths)."""
    out, offset = [], 0
    while offset < len(data):
        first = data[offset + 1]
        if first & 0x80:
            count = first & 0x7F
            length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
            header = 2 + count
        else:
            length, header = first, 2
        out.append(data[offset : offset + header + length])
        offset += header + length
    return out


def _content(tlv: bytes) -> bytes:
    return tlv[len(tlv) - _length(tlv) :]


def _length(tlv: bytes) -> int:
    first = tlv[1]
    if first & 0x80:
        count = first & 0x7F
        return int.from_bytes(tlv[2 : 2 + count], "big")
    return first


ROUNDS = 54321  # DER INTEGER 02 03 00 D4 31: easy to find in the file


@pytest.fixture(scope="module")
def p12_rounds(key: RSAPrivateKey, loaded: Certificate) -> bytes:
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(PASSWORD.encode())
    )
    return pkcs12.serialize_key_and_certificates(b"test", key, loaded.certificate, None, encryption)


def _with_mac_iterations(data: bytes, iterations: int) -> bytes:
    version, auth_safe, mac_data = _tlvs(_content(data))
    digest, salt, _ = _tlvs(_content(mac_data))
    count = iterations.to_bytes((iterations.bit_length() + 8) // 8, "big")
    mac_data = _der(0x30, digest + salt + _der(0x02, count))
    return _der(0x30, version + auth_safe + mac_data)


def test_iteration_counts_are_read_from_the_mac_and_the_bags(p12_rounds: bytes) -> None:
    from dte.core.certificate import _pkcs12_iteration_counts

    # cryptography keeps OpenSSL's 2,048 for the MAC; the rounds go to the certificates'
    # encryptedData and to the shrouded key bag.
    assert list(_pkcs12_iteration_counts(p12_rounds)) == [2048, ROUNDS, ROUNDS]
    assert load_pkcs12(p12_rounds, PASSWORD).rut == RUT


def test_a_huge_mac_iteration_count_is_refused_before_deriving(p12_rounds: bytes) -> None:
    import time

    crafted = _with_mac_iterations(p12_rounds, 2**31 - 1)
    started = time.monotonic()
    with pytest.raises(CertificateError) as excinfo:
        load_pkcs12(crafted, PASSWORD)
    assert time.monotonic() - started < 1.0
    assert _code(excinfo) == "bad_file"
    assert "2.147.483.647 iteraciones" in excinfo.value.message
    assert "1.000.000" in excinfo.value.message


def test_a_huge_iteration_count_in_an_encrypted_bag_is_refused(p12_rounds: bytes) -> None:
    integer = b"\x02\x03\x00\xd4\x31"
    assert p12_rounds.count(integer) == 2
    first = p12_rounds.index(integer)
    crafted = p12_rounds[:first] + b"\x02\x03\x7f\xff\xff" + p12_rounds[first + len(integer) :]
    with pytest.raises(CertificateError) as excinfo:
        load_pkcs12(crafted, PASSWORD)
    assert _code(excinfo) == "bad_file" and "8.388.607" in excinfo.value.message


def test_a_mac_count_at_the_bound_is_not_refused_by_the_guard(p12_rounds: bytes) -> None:
    from dte.core.certificate import MAX_PKCS12_ITERATIONS, _check_iterations

    _check_iterations(_with_mac_iterations(p12_rounds, MAX_PKCS12_ITERATIONS))
    with pytest.raises(CertificateError):
        _check_iterations(_with_mac_iterations(p12_rounds, MAX_PKCS12_ITERATIONS + 1))
