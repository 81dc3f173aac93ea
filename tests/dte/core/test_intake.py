"""Reading a supplier's files for the receiving company (dte.core.intake): the shapes suppliers
really send, the reception codes, and the facts the purchase book needs."""

import io
import re
import zipfile
from pathlib import Path

import pytest

from dte.core.exchange import EstadoRecepDTE, EstadoRecepEnv
from dte.core.intake import parseable, read_envelope, unpack
from dte.core.verify import AS_WRITTEN, NAMESPACE_ADDED, NAMESPACE_REMOVED
from tests.dte.sandbox import material
from tests.dte.sandbox.material import RECEPTOR, sandbox_key

SAMPLE = (
    Path(__file__).resolve().parents[4]
    / "shared"
    / "sii"
    / "samples"
    / "dte"
    / "DTE--96670340-7--61--110616.xml"
)
SAMPLE_RECEPTOR = "81675600-6"
US = RECEPTOR.rut
SII_NS = b' xmlns="http://www.sii.cl/SiiDte"'


@pytest.fixture(scope="module")
def keys():
    return {900: sandbox_key().public_key()}


@pytest.fixture(scope="module")
def envelope_bytes():
    docs = [material.issue(33, 1), material.issue(33, 2), material.issue(61, 3)]
    return material.envelope(docs, rut_receptor=US)


def test_an_envelope_addressed_to_us_is_received_with_its_facts(envelope_bytes, keys):
    read = read_envelope("envio.xml", envelope_bytes, receptor_rut=US, sii_keys=keys)
    assert read.estado is EstadoRecepEnv.OK, read.reasons
    assert read.kind == "EnvioDTE"
    assert read.envio_id == "SetDoc"
    assert read.digest and read.rut_emisor == material.EMISOR_RUT
    assert [d.estado for d in read.documents] == [EstadoRecepDTE.OK] * 3
    facts = read.documents[0].facts
    assert facts is not None
    assert (facts.tipo_dte, facts.folio, facts.rut_receptor) == (33, 1, US)
    assert facts.monto_neto + facts.iva == facts.monto_total
    assert len(facts.lines) == 2 and facts.lines[0].nombre == "Consultoría marzo"
    nota = read.documents[2].facts
    assert nota is not None and nota.references[0].tipo == "33" and nota.references[0].codigo == 3
    # Each document is kept as its own file, and it verifies on its own.
    from dte.core.verify import verify_xml

    alone = verify_xml(read.documents[0].xml, sii_keys=keys)
    assert alone.ok, alone.to_dict()


def test_an_envelope_for_another_company_is_refused_with_code_3(envelope_bytes, keys):
    read = read_envelope("envio.xml", envelope_bytes, receptor_rut="76086428-5", sii_keys=keys)
    assert read.estado is EstadoRecepEnv.RUT_RECEPTOR_NO_CORRESPONDE
    assert all(d.estado is not EstadoRecepDTE.OK for d in read.documents)
    assert "96790240-3" in read.reasons[0]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda x: x.replace(b"<MntTotal>", b"<MntTotal>1", 1),  # an amount
        lambda x: x.replace(b"Consultor", b"Konsultor", 1),  # a name
    ],
)
def test_a_tampered_document_is_refused_with_code_1(tamper, keys):
    doc = material.issue(33, 7)
    raw = material.envelope([doc], rut_receptor=US).decode("iso-8859-1")
    # Tamper with the DTE and re-sign the envelope, as a forger would: the DTE's own
    # signature is what catches it.
    tampered_dte = material.Issued(
        doc.tipo, doc.folio, doc.monto_total, tamper(doc.xml.encode("iso-8859-1")).decode("latin-1")
    )
    envelope = material.envelope([tampered_dte], rut_receptor=US)
    assert envelope != raw.encode("iso-8859-1")
    read = read_envelope("envio.xml", envelope, receptor_rut=US, sii_keys=keys)
    assert read.documents[0].estado is EstadoRecepDTE.ERROR_FIRMA
    assert "firma" in read.documents[0].reasons[0]


def test_a_signature_byte_changed_in_the_envelope_is_a_signature_error(envelope_bytes, keys):
    text = envelope_bytes.decode("iso-8859-1")
    values = list(re.finditer(r"<SignatureValue>([A-Za-z0-9+/])", text))
    at = values[-1].start(1)
    flipped = "B" if text[at] == "A" else "A"
    broken = (text[:at] + flipped + text[at + 1 :]).encode("iso-8859-1")
    read = read_envelope("envio.xml", broken, receptor_rut=US, sii_keys=keys)
    assert read.estado is EstadoRecepEnv.ERROR_FIRMA


def test_the_sii_sample_nota_de_credito_is_received_by_its_receiver():
    read = read_envelope(SAMPLE.name, SAMPLE.read_bytes(), receptor_rut=SAMPLE_RECEPTOR)
    assert read.kind == "DTE"
    assert read.estado is EstadoRecepEnv.OK
    (document,) = read.documents
    assert document.estado is EstadoRecepDTE.OK, document.reasons
    assert document.facts is not None and document.facts.monto_total == 57347078
    assert document.signed_form == AS_WRITTEN


def test_the_sample_addressed_elsewhere_is_refused():
    read = read_envelope(SAMPLE.name, SAMPLE.read_bytes(), receptor_rut="76086428-5")
    assert read.estado is EstadoRecepEnv.RUT_RECEPTOR_NO_CORRESPONDE
    assert read.documents[0].estado is EstadoRecepDTE.ERROR_RUT_RECEPTOR


def test_a_file_that_gained_the_namespace_verifies_with_it_removed():
    data = SAMPLE.read_bytes().replace(
        b'<DTE version="1.0">', b"<DTE" + SII_NS + b' version="1.0">'
    )
    read = read_envelope(SAMPLE.name, data, receptor_rut=SAMPLE_RECEPTOR)
    assert read.documents[0].estado is EstadoRecepDTE.OK
    assert read.documents[0].signed_form == NAMESPACE_REMOVED


def test_a_file_that_lost_the_namespace_verifies_with_it_added(keys):
    doc = material.issue(33, 9)
    envelope = material.envelope([doc], rut_receptor=US)
    stripped = envelope.replace(SII_NS, b"")
    assert SII_NS not in stripped
    read = read_envelope("sin-ns.xml", stripped, receptor_rut=US, sii_keys=keys)
    assert read.estado is EstadoRecepEnv.OK, read.reasons
    assert read.signed_form == NAMESPACE_ADDED
    assert read.documents[0].estado is EstadoRecepDTE.OK, read.documents[0].reasons
    assert read.documents[0].signed_form == NAMESPACE_ADDED


def test_windows_1252_without_a_declaration_is_read():
    sample = SAMPLE.read_bytes()
    body = sample[sample.index(b"<DTE") :]
    assert b"\xe9" in body  # Crédito, ISO-8859-1 / Windows-1252
    assert parseable(body).startswith(b'<?xml version="1.0" encoding="windows-1252"?>')
    read = read_envelope(SAMPLE.name, body, receptor_rut=SAMPLE_RECEPTOR)
    assert read.documents[0].estado is EstadoRecepDTE.OK, read.documents[0].reasons


def test_unreadable_and_foreign_files():
    assert read_envelope("x.xml", b"<EnvioDTE><", receptor_rut=US).estado == 91
    other = read_envelope("x.xml", b"<Factura/>", receptor_rut=US)
    assert other.estado is EstadoRecepEnv.ARCHIVO_ILEGIBLE
    boletas = read_envelope("b.xml", b'<EnvioBOLETA version="1.0"/>', receptor_rut=US)
    assert boletas.estado is EstadoRecepEnv.OTROS


def test_a_zip_is_unpacked_with_its_folders_and_a_nested_zip(envelope_bytes):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("b.xml", envelope_bytes)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("junio/a.xml", envelope_bytes)
        archive.writestr("mas.zip", inner.getvalue())
        archive.writestr("leeme.pdf", b"%PDF-1.4")
        archive.writestr("__MACOSX/._a.xml", b"junk")
    unpacked = unpack("compras.zip", outer.getvalue())
    assert [f.name for f in unpacked.files] == [
        "compras.zip/junio/a.xml",
        "compras.zip/mas.zip/b.xml",
    ]
    assert unpacked.problems == ("compras.zip/leeme.pdf: no es un archivo XML; se omitió.",)


def test_a_file_that_is_neither_xml_nor_zip_is_a_problem():
    unpacked = unpack("foto.jpg", b"\xff\xd8\xff\xe0")
    assert not unpacked.files and "no es un archivo XML" in unpacked.problems[0]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<MntTotal>57347078</MntTotal>", b"<MntTotal>Infinity</MntTotal>"),
        (b"<MntTotal>57347078</MntTotal>", b"<MntTotal>sNaN</MntTotal>"),
        (b"<MntTotal>57347078</MntTotal>", b"<MntTotal>1E+30</MntTotal>"),
        (b"<TipoDTE>61</TipoDTE>", b"<TipoDTE>99999</TipoDTE>"),
        (b"<Folio>110616</Folio>", b"<Folio>12345678901234567890123</Folio>"),
    ],
)
def test_out_of_range_values_never_crash_the_reading(old, new):
    data = SAMPLE.read_bytes()
    assert old in data
    read = read_envelope(SAMPLE.name, data.replace(old, new, 1), receptor_rut=SAMPLE_RECEPTOR)
    (document,) = read.documents
    assert document.estado is not EstadoRecepDTE.OK
    if document.facts is not None:
        assert abs(document.facts.monto_total) < 2**63 and document.facts.tipo_dte < 32768
