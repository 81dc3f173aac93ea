"""dte.core.schemas: the official XSDs, kind detection and the hostile-input parser."""

import re
from pathlib import Path

import pytest
from lxml import etree

from dte.core.schemas import (
    SIIDTE_NS,
    XSD_DIR,
    SchemaKind,
    XmlError,
    kind_of,
    safe_parse,
    schema,
    validate,
    with_sii_namespace,
)

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
OFFICIAL_XSD = SHARED / "sii" / "xsd"
SAMPLES = SHARED / "sii" / "samples" / "dte"
OFFICIAL_SAMPLE = SAMPLES / "EnvioDTE_F60T33_ejemplo_oficial_SII.xml"
NC_SAMPLE = SAMPLES / "DTE--96670340-7--61--110616.xml"


@pytest.mark.parametrize(
    ("copy", "original"),
    [
        ("DTE_v10.xsd", "DTE_v10.xsd"),
        ("EnvioDTE_v10.xsd", "EnvioDTE_v10.xsd"),
        ("SiiTypes_v10.xsd", "SiiTypes_v10.xsd"),
        ("xmldsignature_v10.xsd", "xmldsignature_v10.xsd"),
        ("boleta_2024/EnvioBOLETA_v11.xsd", "newer_boleta_2024/EnvioBOLETA_v11.xsd"),
        ("boleta_2024/xmldsignature_v10.xsd", "newer_boleta_2024/xmldsignature_v10.xsd"),
    ],
)
def test_the_xsds_are_byte_identical_to_the_official_files(copy: str, original: str) -> None:
    source = OFFICIAL_XSD / original
    if not source.exists():
        pytest.skip(f"{source} is not available")
    assert (XSD_DIR / copy).read_bytes() == source.read_bytes()


@pytest.mark.parametrize("kind", list(SchemaKind))
def test_every_schema_compiles_once(kind: SchemaKind) -> None:
    assert isinstance(schema(kind), etree.XMLSchema)
    assert schema(kind) is schema(kind)


def test_a_lone_boleta_is_validated_against_the_boleta_type() -> None:
    root = safe_parse(OFFICIAL_SAMPLE.read_bytes())
    dte = root.find(f"{{{SIIDTE_NS}}}SetDTE/{{{SIIDTE_NS}}}DTE")
    assert dte is not None
    tipo = dte.find(f".//{{{SIIDTE_NS}}}IdDoc/{{{SIIDTE_NS}}}TipoDTE")
    assert tipo is not None
    tipo.text = "39"

    errors = validate(SchemaKind.DTE, dte)

    assert errors == validate(SchemaKind.BOLETA_DTE, dte)
    # The boleta type names the emisor RznSocEmisor (DTE_v10 would refuse TipoDTE 39 instead).
    assert any("RznSoc" in error and "RznSocEmisor" in error for error in errors), errors
    assert not any("'39' is not an element of the set" in error for error in errors[:1])


def test_the_official_example_is_a_valid_envio_dte() -> None:
    data = OFFICIAL_SAMPLE.read_bytes()

    assert validate(SchemaKind.ENVIO_DTE, data) == []
    assert validate(SchemaKind.ENVIO_DTE, safe_parse(data)) == []
    assert validate(SchemaKind.ENVIO_DTE, safe_parse(data).getroottree()) == []


def test_a_missing_element_is_reported_with_its_line() -> None:
    text = OFFICIAL_SAMPLE.read_bytes().decode("iso-8859-1")
    removed = "<RutEnvia>7880442-4</RutEnvia>"
    assert text.count(removed) == 1
    text = text.replace(removed, "")
    line = text[: text.index("<RutReceptor>")].count("\n") + 1

    errors = validate(SchemaKind.ENVIO_DTE, text.encode("iso-8859-1"))

    assert len(errors) == 1
    assert re.match(rf"line {line}: .*RutReceptor.*Expected is .*RutEnvia", errors[0]), errors


def test_a_lone_dte_of_the_envelope_validates_as_dte() -> None:
    root = safe_parse(OFFICIAL_SAMPLE.read_bytes())
    dte = root.find(f"{{{SIIDTE_NS}}}SetDTE/{{{SIIDTE_NS}}}DTE")
    assert dte is not None

    assert validate(SchemaKind.DTE, dte) == []
    assert validate(SchemaKind.ENVIO_BOLETA, dte) != []  # not a root element there


def test_a_namespace_less_dte_is_validated_with_the_namespace_added() -> None:
    data = NC_SAMPLE.read_bytes()
    root = safe_parse(data)

    errors = validate(SchemaKind.DTE, data)

    # The only problem is the intermediary's element after the signature (see verify.py).
    assert len(errors) == 1 and "DocPersonalizado" in errors[0] and errors[0].startswith("line ")
    personalizado = root.find("DocPersonalizado")
    assert personalizado is not None
    root.remove(personalizado)
    assert validate(SchemaKind.DTE, root) == []
    assert etree.QName(root).namespace is None  # the original tree is untouched


def test_with_sii_namespace_leaves_other_namespaces_alone() -> None:
    root = safe_parse(NC_SAMPLE.read_bytes())

    clone = with_sii_namespace(root)

    assert clone.tag == f"{{{SIIDTE_NS}}}DTE"
    assert clone.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is not None
    assert root.tag == "DTE"


@pytest.mark.parametrize(
    ("xml", "kind"),
    [
        (f'<EnvioDTE xmlns="{SIIDTE_NS}"/>', SchemaKind.ENVIO_DTE),
        (f'<EnvioBOLETA xmlns="{SIIDTE_NS}"/>', SchemaKind.ENVIO_BOLETA),
        (f'<DTE xmlns="{SIIDTE_NS}"/>', SchemaKind.DTE),
        (f'<BoletaDTE xmlns="{SIIDTE_NS}"/>', None),
        (f'<s:DTE xmlns:s="{SIIDTE_NS}"/>', SchemaKind.DTE),
        ("<DTE/>", SchemaKind.DTE),
        ('<DTE xmlns="urn:other"/>', None),
        (f'<Documento xmlns="{SIIDTE_NS}"/>', None),
        (f'<RespuestaDTE xmlns="{SIIDTE_NS}"/>', None),
    ],
)
def test_kind_of(xml: str, kind: SchemaKind | None) -> None:
    assert kind_of(safe_parse(xml.encode())) is kind


def test_kind_of_the_samples() -> None:
    assert kind_of(safe_parse(OFFICIAL_SAMPLE.read_bytes())) is SchemaKind.ENVIO_DTE
    assert kind_of(safe_parse(NC_SAMPLE.read_bytes())) is SchemaKind.DTE


def test_safe_parse_keeps_whitespace_and_reads_iso_8859_1() -> None:
    root = safe_parse(NC_SAMPLE.read_bytes())

    assert root.findtext("Documento/Encabezado/IdDoc/TermPagoGlosa") == "Crédito"
    assert root.text == "\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty document"),
        (b"  \n ", "empty document"),
        (b"<a><b></a>", "malformed XML"),
        (b"not xml", "malformed XML"),
        (b'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY e "x">]>\n<a>&e;</a>', "DOCTYPE"),
        (b'<!DOCTYPE a SYSTEM "http://example.com/a.dtd"><a/>', "DOCTYPE"),
        (b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>', "DOCTYPE"),
    ],
)
def test_safe_parse_refuses_bad_or_hostile_input(data: bytes, message: str) -> None:
    with pytest.raises(XmlError, match=message):
        safe_parse(data)


def test_safe_parse_wants_bytes() -> None:
    with pytest.raises(XmlError, match="expected the document's bytes"):
        safe_parse("<a/>")  # type: ignore[arg-type]


def test_safe_parse_reports_the_line_of_a_syntax_error() -> None:
    with pytest.raises(XmlError) as raised:
        safe_parse(b"<a>\n<b>\n</a>")

    assert raised.value.line == 3
    assert str(raised.value).startswith("line 3: malformed XML")
    assert isinstance(raised.value, ValueError)


def test_safe_parse_survives_an_entity_bomb() -> None:
    bomb = b'<!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
    for level in range(1, 10):
        bomb += f'<!ENTITY a{level} "{f"&a{level - 1};" if level > 1 else "&a;"}'.encode()
        bomb += (f"&a{level - 1};" if level > 1 else "&a;").encode() * 9 + b'">'
    bomb += b"]><a>&a9;</a>"

    with pytest.raises(XmlError):
        safe_parse(bomb)


def test_validate_reports_malformed_bytes_as_an_error_line() -> None:
    assert validate(SchemaKind.DTE, b"<DTE>") == [
        "line 1: malformed XML: Premature end of data in tag DTE line 1"
    ]
