"""dte.core.caf: parsing, FRMA verification and the import checks (pure, no database)."""

import base64
import random
import re
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from lxml import etree

from dte.core import caf as caf_module
from dte.core.caf import (
    Caf,
    CafError,
    CafPublic,
    check_caf,
    flatten_xml,
    official_sii_keys,
    parse_caf,
    parse_caf_element,
    verify_caf_signature,
)
from dte.core.testmaterial import SANDBOX_IDK, generate_caf_key, generate_sii_key, make_caf

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
REAL_DTE = SHARED / "sii" / "samples" / "dte" / "DTE--96670340-7--61--110616.xml"

RUT = "76086428-5"
RS = "PANADERÍA ÑUÑOA & CÍA LIMITADA"
FA = date(2024, 1, 31)


@pytest.fixture(scope="module")
def sii_key() -> RSAPrivateKey:
    return generate_sii_key()


@pytest.fixture(scope="module")
def folio_key() -> RSAPrivateKey:
    return generate_caf_key()


@pytest.fixture(scope="module")
def caf_file(sii_key: RSAPrivateKey, folio_key: RSAPrivateKey) -> bytes:
    return _make(sii_key, folio_key)


@pytest.fixture(scope="module")
def caf(caf_file: bytes) -> Caf:
    return parse_caf(caf_file)


def _make(sii_key: RSAPrivateKey, folio_key: RSAPrivateKey | None, **overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "sii_key": sii_key,
        "idk": SANDBOX_IDK,
        "rut_emisor": RUT,
        "razon_social": RS,
        "tipo_dte": 33,
        "folio_desde": 101,
        "folio_hasta": 200,
        "fecha_autorizacion": FA,
        "folio_key": folio_key,
    }
    arguments.update(overrides)
    return make_caf(**arguments)  # type: ignore[arg-type]


def _check(caf: Caf, sii_key: RSAPrivateKey, **overrides: object) -> None:
    arguments: dict[str, object] = {
        "rut": RUT,
        "tipo_dte": 33,
        "sii_keys": {SANDBOX_IDK: sii_key.public_key()},
        "today": FA,
    }
    arguments.update(overrides)
    check_caf(caf, **arguments)  # type: ignore[arg-type]


def _code(excinfo: pytest.ExceptionInfo[CafError]) -> str:
    return excinfo.value.code


# --- Parsing ----------------------------------------------------------------------------------


def test_parse_round_trip(caf: Caf, folio_key: RSAPrivateKey) -> None:
    assert caf.rut_emisor == RUT
    assert caf.razon_social == RS
    assert caf.tipo_dte == 33
    assert (caf.folio_desde, caf.folio_hasta) == (101, 200)
    assert caf.fecha_autorizacion == FA
    assert caf.idk == SANDBOX_IDK
    assert caf.public_key.public_numbers() == folio_key.public_key().public_numbers()
    assert caf.private_key().private_numbers() == folio_key.private_numbers()
    assert caf.private_key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_caf_xml_is_the_flattened_element_ready_for_a_ted(caf: Caf, caf_file: bytes) -> None:
    raw = re.search(rb"<CAF version=\"1.0\">.*</CAF>", caf_file, re.DOTALL)
    assert raw is not None
    assert caf.caf_xml == flatten_xml(raw.group(0))
    assert caf.caf_xml.startswith(b'<CAF version="1.0"><DA><RE>76086428-5</RE><RS>')
    assert caf.caf_xml.endswith(b"</FRMA></CAF>")
    assert b">\n" not in caf.caf_xml
    assert "PANADERÍA ÑUÑOA &amp; CÍA".encode("iso-8859-1") in caf.caf_xml
    assert caf.da_xml.startswith(b"<DA><RE>") and caf.da_xml.endswith(b"</IDK></DA>")
    assert caf.da_xml in caf.caf_xml
    assert caf.frma == base64.b64decode(re.findall(rb">([^<]+)</FRMA>", caf.caf_xml)[0])


def test_repr_never_shows_the_private_key(caf: Caf) -> None:
    text = repr(caf)
    assert "PRIVATE" not in text and "private_key_pem" not in text
    assert RUT in text


def test_private_key_signs_and_public_key_verifies(caf: Caf) -> None:
    signature = caf.private_key().sign(b"<DD/>", padding.PKCS1v15(), hashes.SHA1())
    caf.public_key.verify(signature, b"<DD/>", padding.PKCS1v15(), hashes.SHA1())
    assert caf.private_key() is caf.private_key()  # cached


def test_frma_verifies_with_the_signing_key_only(caf: Caf, sii_key: RSAPrivateKey) -> None:
    assert verify_caf_signature(caf, sii_key.public_key()) is True
    assert verify_caf_signature(caf, generate_sii_key().public_key()) is False
    assert verify_caf_signature(caf, official_sii_keys()[300]) is False


def test_key_mismatch_detected(caf_file: bytes) -> None:
    other = generate_caf_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    tampered = re.sub(rb"<RSASK>.*</RSASK>", b"<RSASK>" + other + b"</RSASK>", caf_file, flags=re.S)
    with pytest.raises(CafError) as excinfo:
        parse_caf(tampered)
    assert _code(excinfo) == "key_mismatch"


def test_rsapubk_mismatch_detected(caf_file: bytes) -> None:
    other = (
        generate_caf_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    tampered = re.sub(
        rb"<RSAPUBK>.*</RSAPUBK>", b"<RSAPUBK>" + other + b"</RSAPUBK>", caf_file, flags=re.S
    )
    with pytest.raises(CafError) as excinfo:
        parse_caf(tampered)
    assert _code(excinfo) == "key_mismatch"


def test_rsapubk_is_optional(caf_file: bytes, caf: Caf) -> None:
    without = re.sub(rb"<RSAPUBK>.*</RSAPUBK>", b"", caf_file, flags=re.S)
    assert parse_caf(without).caf_xml == caf.caf_xml


@pytest.mark.parametrize(
    "declaration",
    [
        b'<?xml version="1.0" encoding="UTF-8"?>',
        b"<?xml version='1.0'?>",
        b"",
        b"\xef\xbb\xbf",
    ],
)
def test_iso_8859_1_is_forced_whatever_the_declaration(
    caf_file: bytes, sii_key: RSAPrivateKey, declaration: bytes
) -> None:
    body = caf_file.split(b"?>", 1)[1]
    assert "Í".encode("iso-8859-1") in body  # the accents really are Latin-1 bytes
    parsed = parse_caf(declaration + body)
    assert parsed.razon_social == RS
    assert verify_caf_signature(parsed, sii_key.public_key())


def test_file_resaved_as_utf8_still_verifies(caf: Caf, caf_file: bytes) -> None:
    resaved = caf_file.decode("iso-8859-1").encode("utf-8")
    parsed = parse_caf(resaved)
    assert parsed.razon_social == RS
    assert parsed.caf_xml == caf.caf_xml


def test_windows_line_endings_and_indentation(caf: Caf, caf_file: bytes) -> None:
    indented = re.sub(rb"\n<", b"\r\n    <", caf_file.split(b"?>", 1)[1])
    assert parse_caf(indented).caf_xml == caf.caf_xml


def _replace(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


MALFORMED = {
    "empty": lambda f: b"",
    "not xml": lambda f: b"esto no es un CAF",
    "truncated": lambda f: f[: len(f) // 2],
    "wrong root": lambda f: b"<DTE><Documento/></DTE>",
    "bare CAF element": lambda f: flatten_xml(re.findall(rb"<CAF .*</CAF>", f, re.S)[0]),
    "missing RE": lambda f: _replace(f, b"<RE>76086428-5</RE>", b""),
    "missing FRMA": lambda f: re.sub(rb"<FRMA.*</FRMA>", b"", f),
    "missing RSASK": lambda f: re.sub(rb"<RSASK>.*</RSASK>", b"", f, flags=re.S),
    "missing RSAPK": lambda f: re.sub(rb"<RSAPK>.*</RSAPK>", b"", f, flags=re.S),
    "DSA key": lambda f: re.sub(
        rb"<RSAPK>.*</RSAPK>", b"<DSAPK><P>AQ==</P></DSAPK>", f, flags=re.S
    ),
    "bad base64 in M": lambda f: re.sub(rb"<M>[^<]*</M>", b"<M>@@no base64@@</M>", f),
    "bad base64 in FRMA": lambda f: re.sub(rb"(<FRMA[^>]*>)[^<]*", rb"\1***", f),
    "tiny modulus": lambda f: re.sub(rb"<M>[^<]*</M>", b"<M>AQE=</M>", f),
    "bad RSASK": lambda f: re.sub(rb"<RSASK>.*</RSASK>", b"<RSASK>basura</RSASK>", f, flags=re.S),
    "bad RUT": lambda f: _replace(f, b"<RE>76086428-5</RE>", b"<RE>76086428-4</RE>"),
    "bad TD": lambda f: _replace(f, b"<TD>33</TD>", b"<TD>treinta</TD>"),
    "bad date": lambda f: _replace(f, b"<FA>2024-01-31</FA>", b"<FA>2024-02-31</FA>"),
    "reversed range": lambda f: _replace(f, b"<D>101</D>", b"<D>300</D>"),
    "zero folio": lambda f: _replace(f, b"<D>101</D>", b"<D>0</D>"),
    "duplicated TD": lambda f: _replace(f, b"<TD>33</TD>", b"<TD>33</TD><TD>34</TD>"),
    "unsupported FRMA algorithm": lambda f: _replace(f, b"SHA1withRSA", b"MD5withRSA"),
    "namespace prefix": lambda f: _replace(
        _replace(f, b"<AUTORIZACION>", b'<x:AUTORIZACION xmlns:x="urn:x">'),
        b"</AUTORIZACION>",
        b"</x:AUTORIZACION>",
    ),
    "undefined entity": lambda f: _replace(f, b"<TD>33</TD>", b"<TD>&tipo;</TD>"),
    "billion laughs": lambda f: (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b"<AUTORIZACION><CAF>&lol3;</CAF></AUTORIZACION>"
    ),
    "external entity": lambda f: _replace(
        f,
        b"<AUTORIZACION>",
        b'<!DOCTYPE AUTORIZACION [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><AUTORIZACION>',
    ).replace(b"<TD>33</TD>", b"<TD>&xxe;</TD>"),
    "CDATA": lambda f: _replace(f, b"<RS>", b"<RS><![CDATA[<CAF>]]>"),
    "processing instruction": lambda f: _replace(f, b"<DA>", b"<?pi x?><DA>"),
    "too large": lambda f: f + b" " * (caf_module.MAX_CAF_BYTES + 1),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_inputs_raise_caf_error(name: str, caf_file: bytes) -> None:
    data = MALFORMED[name](caf_file)
    with pytest.raises(CafError) as excinfo:
        parse_caf(data)
    assert _code(excinfo) == "malformed"
    assert excinfo.value.message.startswith("El archivo no es un CAF válido del SII")


def test_lxml_parser_never_expands_entities_either() -> None:
    """Defence in depth: if a DOCTYPE got past the text checks, entities stay unexpanded
    (and an unexpanded entity reference is itself refused)."""
    with pytest.raises(CafError) as excinfo:
        caf_module._parse_xml(
            '<!DOCTYPE A [<!ENTITY e "expandida"><!ENTITY x SYSTEM "file:///etc/passwd">]>'
            "<A><B>&e;</B><C>&x;</C></A>"
        )
    assert _code(excinfo) == "malformed"
    root = caf_module._parse_xml('<!DOCTYPE A [<!ENTITY e "expandida">]><A><B>x</B></A>')
    assert etree.tostring(root) == b"<A><B>x</B></A>"


def test_random_corruption_only_ever_raises_caf_error(caf_file: bytes) -> None:
    rng = random.Random(20240131)
    for _ in range(300):
        data = bytearray(caf_file)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(data))
            if rng.random() < 0.5:
                data[position] = rng.randrange(256)
            else:
                del data[position : position + rng.randint(1, 40)]
        try:
            parse_caf(bytes(data))
        except CafError as exc:
            assert exc.code in {"malformed", "key_mismatch"}


@pytest.mark.parametrize("data", [None, "texto", 33])
def test_non_bytes_input_is_malformed(data: object) -> None:
    with pytest.raises(CafError) as excinfo:
        parse_caf(data)  # type: ignore[arg-type]
    assert _code(excinfo) == "malformed"


def test_comments_outside_and_inside_are_ignored(caf: Caf, caf_file: bytes) -> None:
    commented = _replace(caf_file, b"</AUTORIZACION>", b"<!-- <CAF> -->\n</AUTORIZACION>")
    commented = _replace(commented, b"<AUTORIZACION>", b"<!-- nota --><AUTORIZACION>")
    assert parse_caf(commented).caf_xml == caf.caf_xml


def test_flatten_xml_only_touches_whitespace_between_tags() -> None:
    data = b"<A>\n  <B> dos  espacios </B>\r\n\t<C>x y</C>\n</A>"
    assert flatten_xml(data) == b"<A><B> dos  espacios </B><C>x y</C></A>"


# --- Parsing a CAF copied out of a TED --------------------------------------------------------


def test_parse_caf_element_from_a_ted(caf: Caf, sii_key: RSAPrivateKey) -> None:
    in_document = caf.caf_xml.replace(
        b'<CAF version="1.0">', b"<CAF  xmlns=\"http://www.sii.cl/SiiDte\" version='1.0' >\n"
    ).replace(b"<DA>", b"<DA>\n    ")
    public = parse_caf_element(in_document)
    assert isinstance(public, CafPublic) and not isinstance(public, Caf)
    assert public.da_xml == caf.da_xml
    assert (public.rut_emisor, public.tipo_dte, public.idk) == (RUT, 33, SANDBOX_IDK)
    assert public.public_key.public_numbers() == caf.public_key.public_numbers()
    assert verify_caf_signature(public, sii_key.public_key())
    assert not hasattr(public, "private_key_pem")


def test_parse_caf_element_refuses_other_elements() -> None:
    with pytest.raises(CafError) as excinfo:
        parse_caf_element(b"<DA><RE>76086428-5</RE></DA>")
    assert _code(excinfo) == "malformed"


def _real_caf_element() -> bytes:
    match = re.search(rb'<CAF version="1.0">.*?</CAF>', REAL_DTE.read_bytes(), re.DOTALL)
    assert match is not None
    return match.group(0)


def test_real_production_caf_verifies_with_the_sii_production_key() -> None:
    public = parse_caf_element(_real_caf_element())
    assert public.rut_emisor == "96670340-7"
    assert public.razon_social == "BATA CHILE  S.A."  # two spaces, as the SII wrote it
    assert (public.tipo_dte, public.folio_desde, public.folio_hasta) == (61, 104464, 129299)
    assert public.fecha_autorizacion == date(2019, 6, 21)
    assert public.idk == 300
    assert public.public_key.key_size == 512
    assert public.public_key.public_numbers().e == 3
    keys = official_sii_keys()
    assert verify_caf_signature(public, keys[300]) is True
    assert verify_caf_signature(public, keys[100]) is False


def test_real_ted_frmt_verifies_with_the_caf_public_key() -> None:
    """The RSAPK decoded from the real CAF is the key that signed the real TED."""
    public = parse_caf_element(_real_caf_element())
    document = flatten_xml(REAL_DTE.read_bytes())
    dd = re.search(rb"<DD>.*?</DD>", document, re.DOTALL)
    frmt = re.search(rb"<FRMT[^>]*>([^<]+)</FRMT>", document)
    assert dd is not None and frmt is not None
    public.public_key.verify(
        base64.b64decode(frmt.group(1)), dd.group(0), padding.PKCS1v15(), hashes.SHA1()
    )


def test_official_sii_keys() -> None:
    keys = official_sii_keys()
    assert set(keys) == {100, 300}
    assert all(key.key_size == 512 for key in keys.values())
    keys.clear()
    assert set(official_sii_keys()) == {100, 300}  # callers get their own dict


# --- check_caf --------------------------------------------------------------------------------


def test_check_caf_accepts_a_good_caf(caf: Caf, sii_key: RSAPrivateKey) -> None:
    _check(caf, sii_key)
    _check(caf, sii_key, tipo_dte=None, rut="76.086.428-5")
    _check(caf, sii_key, today=date(2024, 7, 31))  # last day of the 6 months


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"rut": "60910000-1"}, "wrong_company"),
        ({"rut": "no es un rut"}, "wrong_company"),
        ({"tipo_dte": 61}, "wrong_type"),
        ({"sii_keys": {}}, "wrong_environment"),
        ({"today": date(2024, 8, 1)}, "expired"),
    ],
)
def test_check_caf_codes(
    caf: Caf, sii_key: RSAPrivateKey, overrides: dict[str, object], code: str
) -> None:
    with pytest.raises(CafError) as excinfo:
        _check(caf, sii_key, **overrides)
    assert _code(excinfo) == code
    assert excinfo.value.message and str(excinfo.value) == excinfo.value.message


def test_check_caf_unknown_idk(sii_key: RSAPrivateKey, folio_key: RSAPrivateKey) -> None:
    odd = parse_caf(_make(sii_key, folio_key, idk=123))
    with pytest.raises(CafError) as excinfo:
        _check(odd, sii_key, sii_keys={SANDBOX_IDK: sii_key.public_key()})
    assert _code(excinfo) == "unknown_idk"
    assert "123" in excinfo.value.message


def test_check_caf_wrong_environment(caf: Caf) -> None:
    """A sandbox CAF offered to a company configured for production (official keys)."""
    with pytest.raises(CafError) as excinfo:
        check_caf(caf, rut=RUT, tipo_dte=33, sii_keys={300: official_sii_keys()[300]}, today=FA)
    assert _code(excinfo) == "wrong_environment"
    assert "sandbox" in excinfo.value.message


def test_check_caf_bad_signature(sii_key: RSAPrivateKey, folio_key: RSAPrivateKey) -> None:
    forged = parse_caf(_make(generate_sii_key(), folio_key))
    with pytest.raises(CafError) as excinfo:
        _check(forged, sii_key)
    assert _code(excinfo) == "bad_signature"


def test_check_caf_tampered_da(caf_file: bytes, sii_key: RSAPrivateKey) -> None:
    tampered = parse_caf(caf_file.replace(b"<H>200</H>", b"<H>900</H>"))
    with pytest.raises(CafError) as excinfo:
        _check(tampered, sii_key)
    assert _code(excinfo) == "bad_signature"


def test_check_caf_does_not_expire_boletas(
    sii_key: RSAPrivateKey, folio_key: RSAPrivateKey
) -> None:
    boletas = parse_caf(_make(sii_key, folio_key, tipo_dte=39))
    _check(boletas, sii_key, tipo_dte=39, today=date(2030, 1, 1))


# --- Expiry and range -------------------------------------------------------------------------


def _public(tipo_dte: int, fa: date) -> CafPublic:
    real = parse_caf_element(_real_caf_element())
    return CafPublic(
        rut_emisor=real.rut_emisor,
        razon_social=real.razon_social,
        tipo_dte=tipo_dte,
        folio_desde=1,
        folio_hasta=10,
        fecha_autorizacion=fa,
        idk=real.idk,
        public_key=real.public_key,
        da_xml=real.da_xml,
        frma=real.frma,
    )


@pytest.mark.parametrize("tipo", [33, 43, 46, 56, 61])
def test_expiring_types_last_six_calendar_months(tipo: int) -> None:
    assert _public(tipo, date(2024, 1, 15)).expires_on() == date(2024, 7, 15)
    assert _public(tipo, date(2024, 8, 31)).expires_on() == date(2025, 2, 28)
    assert _public(tipo, date(2023, 8, 31)).expires_on() == date(2024, 2, 29)


@pytest.mark.parametrize("tipo", [34, 39, 41, 52, 110, 111, 112])
def test_other_types_do_not_expire(tipo: int) -> None:
    assert _public(tipo, date(2024, 1, 15)).expires_on() is None


def test_contains() -> None:
    public = _public(33, FA)
    assert public.contains(1) and public.contains(10)
    assert not public.contains(0) and not public.contains(11)


def test_sandbox_idk_has_an_environment_name() -> None:
    assert SANDBOX_IDK in caf_module._ENVIRONMENT_NAMES
    assert SANDBOX_IDK not in official_sii_keys()
