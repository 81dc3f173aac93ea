"""The certification's intercambio stage (dte.certification_exchange): the SII's test envelope,
from its test issuer 88888888-8 to the company, is taken in through receiving and answered with
the three files the SII's site asks for (RecepcionEnvio, ResultadoDTE, EnvioRecibos), each valid
against the SII's XSDs and signed (python-xmlsec and the xmlsec1 command). Nothing here asks the
SII: its test documents are never registered there (see the module's docstring), so the SII
client is made to fail if anything tries."""

import base64
import io
import zipfile
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import xmlsec
from django.utils import timezone
from lxml import etree

from dte import certification_exchange as cx
from dte import receiving, services
from dte.core.domain import Linea
from dte.core.exchange import DECLARACION
from dte.core.schemas import SchemaKind, validate
from dte.models import IntakeSource, ReceivedDte, ReceivedDteEvent, ReceivedEnvelope
from dte.sandbox.supplier import Supplier, default_supplier, envelope_for, supply
from dte.views import received_answer_file
from erp.errors import DomainError, NotFound
from erp.models import PurchaseDocument
from tests.dte.fixtures import CERT_PASSWORD, SIGNER_RUT
from tests.dte.receiving_material import receptor_for, supplier_envelope, xmlsec1_verifies_all

pytestmark = pytest.mark.django_db

NS = "http://www.sii.cl/SiiDte"
S = f"{{{NS}}}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
EXEMPT = [Linea("Asesoría contable exenta", Decimal(1), Decimal(120000), exento=True)]


@pytest.fixture(scope="module")
def sii_sender(sii_key):
    """The SII's test issuer, with its own certificate and CAFs (signed by the sandbox key)."""
    emisor = replace(
        default_supplier(),
        rut=cx.SII_TEST_EMISOR,
        razon_social="Empresa de Prueba Intercambio SII",
        correo="",
    )
    return Supplier(emisor, sii_key, timezone.now())


@pytest.fixture(autouse=True)
def no_sii(monkeypatch):
    """The intercambio answers without the SII: any QueryEstDte or RCV call fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the certification's intercambio must not call the SII")

    monkeypatch.setattr(receiving, "_sii_session", refuse)
    monkeypatch.setattr(receiving, "_rcv", refuse)


def sii_envelope(sender, company, *, tipos=(33, 33, 34), tamper=None):
    """(envelope bytes, documents) like the SII's: `tipos` from its test issuer to `company`;
    the document at index `tamper` is altered after signing (the envelope signed over it)."""
    now = timezone.now()
    documents = []
    for tipo in tipos:
        lines = EXEMPT if tipo == 34 else None
        documents += supply(sender, receptor_for(company), tipo=tipo, now=now, lines=lines)
    if tamper is not None:
        doc = documents[tamper]
        altered = doc.xml.replace("<RznSoc>Empresa de Prueba", "<RznSoc>Empresa de Pruebas", 1)
        assert altered != doc.xml
        documents[tamper] = replace(doc, xml=altered)
    return envelope_for(sender, documents, rut_receptor=company.rut, now=now), documents


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def xmlsec_verifies_all(data: bytes) -> bool:
    """Every Signature verifies with python-xmlsec, with the key of the certificate it carries
    and the ID attributes registered."""
    root = parse(data)
    xmlsec.tree.add_ids(root, ["ID"])
    signatures = list(root.iter(f"{DS}Signature"))
    assert signatures
    for signature in signatures:
        der = base64.b64decode("".join(signature.findtext(f".//{DS}X509Certificate").split()))
        ctx = xmlsec.SignatureContext()
        ctx.key = xmlsec.Key.from_memory(der, xmlsec.constants.KeyDataFormatCertDer)
        try:
            ctx.verify(signature)
        except xmlsec.VerificationError:
            return False
    return True


def signed_everywhere(data: bytes, tmp_path) -> bool:
    return xmlsec_verifies_all(data) and xmlsec1_verifies_all(data, tmp_path)


def take_in(company, data, *, actor=None, filename="ENVIO_DTE_INTERCAMBIO.xml", **kw):
    return cx.exchange_take_in(company=company, actor=actor, data=data, filename=filename, **kw)


def dte_rows(root: etree._Element, tag: str, tipo_tag: str = "TipoDTE") -> list[tuple]:
    return [
        (
            int(node.findtext(f"{S}{tipo_tag}")),
            int(node.findtext(f"{S}Folio")),
            node.findtext(f"{S}RUTEmisor"),
            node.findtext(f"{S}RUTRecep"),
            int(node.findtext(f"{S}MntTotal")),
        )
        for node in root.iter(f"{S}{tag}")
    ]


def test_the_sii_envelope_is_taken_in_and_answered_three_ways(issuer, sii_sender, clerk, tmp_path):
    data, docs = sii_envelope(sii_sender, issuer)
    expected = [(d.tipo, d.folio, cx.SII_TEST_EMISOR, issuer.rut, d.monto_total) for d in docs]
    outcome = take_in(issuer, data, actor=clerk)

    assert outcome.complete, (outcome.problems, [d.problem for d in outcome.documents])
    assert not outcome.repeated
    # In "Recibidos" like any supplier's envelope, its documents accepted and not booked.
    envelope = ReceivedEnvelope.objects.get(company=issuer)
    assert outcome.envelope == envelope
    assert (envelope.source, envelope.name) == (IntakeSource.UPLOAD, "ENVIO_DTE_INTERCAMBIO.xml")
    assert list(cx.exchange_envelopes(company=issuer)) == [envelope]
    assert [(d.tipo_dte, d.folio) for d in outcome.documents] == [(d.tipo, d.folio) for d in docs]
    rows = list(ReceivedDte.objects.filter(envelope=envelope).order_by("pk"))
    assert [(r.status, r.commercial_result, r.rcv_action) for r in rows] == [
        ("accepted", "0", "")
    ] * 3
    assert all(r.goods_received_at and r.purchase is None for r in rows)
    assert not PurchaseDocument.objects.exists()
    answer_events = ReceivedDteEvent.objects.filter(received_dte__in=rows, kind="answer")
    assert answer_events.count() == 3
    assert all("no se registra en el RCV" in e.message for e in answer_events)
    assert {e.actor for e in answer_events} == {clerk}

    # 1. The reception (RecepcionEnvio), as receiving made it on intake.
    recepcion = outcome.recepcion_xml
    assert recepcion == bytes(envelope.response_xml)
    assert validate(SchemaKind.RESPUESTA_DTE, recepcion) == []
    assert signed_everywhere(recepcion, tmp_path)
    root = parse(recepcion)
    sent_id = parse(data).find(f"{S}SetDTE").get("ID")
    assert root.findtext(f".//{S}Caratula/{S}RutResponde") == issuer.rut
    assert root.findtext(f".//{S}Caratula/{S}RutRecibe") == cx.SII_TEST_EMISOR
    envio = root.find(f".//{S}RecepcionEnvio")
    assert envio.findtext(f"{S}NmbEnvio") == "ENVIO_DTE_INTERCAMBIO.xml"
    assert envio.findtext(f"{S}EnvioDTEID") == sent_id
    assert envio.findtext(f"{S}CodEnvio") == str(envelope.pk)
    assert envio.findtext(f"{S}EstadoRecepEnv") == "0"
    assert dte_rows(root, "RecepcionDTE") == expected
    assert [e.text for e in root.iter(f"{S}EstadoRecepDTE")] == ["0"] * 3

    # 2. The commercial result: one file, every document accepted, the envelope's CodEnvio.
    resultado = outcome.resultado_xml
    assert validate(SchemaKind.RESPUESTA_DTE, resultado) == []
    assert signed_everywhere(resultado, tmp_path)
    root = parse(resultado)
    assert root.findtext(f".//{S}Caratula/{S}RutRecibe") == cx.SII_TEST_EMISOR
    assert root.findtext(f".//{S}Caratula/{S}NroDetalles") == "3"
    assert dte_rows(root, "ResultadoDTE") == expected
    assert [e.text for e in root.iter(f"{S}EstadoDTE")] == ["0"] * 3
    assert {e.text for e in root.iter(f"{S}CodEnvio")} == {str(envelope.pk)}

    # 3. The receipt of goods: one signed Recibo per document, then the set.
    recibos = outcome.recibos_xml
    assert validate(SchemaKind.ENVIO_RECIBOS, recibos) == []
    assert signed_everywhere(recibos, tmp_path)
    root = parse(recibos)
    assert len(list(root.iter(f"{DS}Signature"))) == 4
    assert dte_rows(root, "DocumentoRecibo", "TipoDoc") == expected
    assert {e.text for e in root.iter(f"{S}Recinto")} == {cx.DEFAULT_RECINTO}
    assert {e.text for e in root.iter(f"{S}RutFirma")} == {SIGNER_RUT}
    assert {e.text for e in root.iter(f"{S}Declaracion")} == {DECLARACION}

    # The downloads in "Recibidos" give the same files.
    assert received_answer_file(rows[0], "respuesta")[0] == recepcion
    assert received_answer_file(rows[1], "resultado")[0] == resultado
    assert received_answer_file(rows[2], "recibo")[0] == recibos
    assert outcome.to_dict()["complete"] is True


def test_the_zip_holds_the_three_answers_named_for_the_sii(issuer, sii_sender):
    data, _ = sii_envelope(sii_sender, issuer, tipos=(33, 33))
    outcome = take_in(issuer, data)
    archive = zipfile.ZipFile(
        io.BytesIO(cx.exchange_answers_zip(company=issuer, envelope=outcome.envelope))
    )
    rut = issuer.rut
    assert sorted(archive.namelist()) == sorted(
        [
            f"RespuestaDTE--{rut}--recepcion.xml",
            f"RespuestaDTE--{rut}--resultado.xml",
            f"EnvioRecibos--{rut}.xml",
        ]
    )
    assert archive.read(f"RespuestaDTE--{rut}--recepcion.xml") == outcome.recepcion_xml
    assert archive.read(f"RespuestaDTE--{rut}--resultado.xml") == outcome.resultado_xml
    assert archive.read(f"EnvioRecibos--{rut}.xml") == outcome.recibos_xml
    assert (
        validate(SchemaKind.RESPUESTA_DTE, archive.read(f"RespuestaDTE--{rut}--resultado.xml"))
        == []
    )
    assert validate(SchemaKind.ENVIO_RECIBOS, archive.read(f"EnvioRecibos--{rut}.xml")) == []
    assert cx.exchange_zip_filename(issuer, outcome.envelope).endswith(".zip")


def test_the_same_file_again_stores_nothing_and_gives_the_same_answers(issuer, sii_sender):
    data, _ = sii_envelope(sii_sender, issuer)
    first = take_in(issuer, data)
    counts = (
        ReceivedEnvelope.objects.count(),
        ReceivedDte.objects.count(),
        ReceivedDteEvent.objects.count(),
    )
    again = take_in(issuer, data, filename="otra-vez.xml")
    assert again.repeated and again.complete
    assert again.envelope == first.envelope
    assert (again.recepcion_xml, again.resultado_xml, again.recibos_xml) == (
        first.recepcion_xml,
        first.resultado_xml,
        first.recibos_xml,
    )
    assert [d.received for d in again.documents] == [d.received for d in first.documents]
    assert counts == (
        ReceivedEnvelope.objects.count(),
        ReceivedDte.objects.count(),
        ReceivedDteEvent.objects.count(),
    )
    shown = cx.exchange_outcome(company=issuer, envelope=first.envelope)
    assert shown.resultado_xml == first.resultado_xml and shown.recibos_xml == first.recibos_xml


def test_a_document_that_fails_its_signature_is_rejected_and_gets_no_receipt(
    issuer, sii_sender, tmp_path
):
    data, docs = sii_envelope(sii_sender, issuer, tamper=1)
    outcome = take_in(issuer, data)
    assert not outcome.complete
    bad = outcome.documents[1]
    assert (bad.folio, bad.estado_recep_dte, bad.resultado) == (docs[1].folio, 1, "2")
    assert not bad.goods_receipt and "firma" in bad.problem
    assert [d.problem for d in (outcome.documents[0], outcome.documents[2])] == ["", ""]
    reception = parse(outcome.recepcion_xml)
    assert [e.text for e in reception.iter(f"{S}EstadoRecepDTE")] == ["0", "1", "0"]
    resultado = parse(outcome.resultado_xml)
    assert validate(SchemaKind.RESPUESTA_DTE, outcome.resultado_xml) == []
    assert [e.text for e in resultado.iter(f"{S}EstadoDTE")] == ["0", "2", "0"]
    assert [e.text for e in resultado.iter(f"{S}CodRchDsc")] == ["-1"]
    recibos = parse(outcome.recibos_xml)
    assert [int(e.text) for e in recibos.iter(f"{S}Folio")] == [docs[0].folio, docs[2].folio]
    assert signed_everywhere(outcome.recibos_xml, tmp_path)
    assert ReceivedDte.objects.get(folio=docs[1].folio, tipo_dte=33).status == "refused"
    names = zipfile.ZipFile(
        io.BytesIO(cx.exchange_answers_zip(company=issuer, envelope=outcome.envelope))
    ).namelist()
    assert len(names) == 3


def test_documents_already_received_in_another_envelope_are_reported(issuer, sii_sender):
    data, docs = sii_envelope(sii_sender, issuer, tipos=(33,))
    take_in(issuer, data)
    later = timezone.now() + timedelta(seconds=5)
    other = envelope_for(sii_sender, docs, rut_receptor=issuer.rut, now=later)
    outcome = take_in(issuer, other)
    (document,) = outcome.documents
    assert document.received is None and document.estado_recep_dte == 4
    assert "Ya se había recibido en otro envío" in document.problem
    assert outcome.resultado_xml is None
    with pytest.raises(DomainError) as error:
        cx.exchange_answers_zip(company=issuer, envelope=outcome.envelope)
    assert error.value.code == cx.EXCHANGE_INCOMPLETE and "envelope" in error.value.fields


def _zip_of(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("envio.xml", data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("empty", "vacío"),
        ("text", "no es un XML legible"),
        ("zip", "Es un ZIP"),
        ("other_root", "no es un envío de documentos"),
        ("other_company", "no a esta empresa"),
        ("real_supplier", "no del emisor de prueba del SII"),
    ],
)
def test_what_is_not_the_sii_envelope_for_the_company_is_refused(
    issuer, other_company, sii_sender, supplier, case, says
):
    good, _ = sii_envelope(sii_sender, issuer, tipos=(33,))
    data = {
        "empty": lambda: b"",
        "text": lambda: b"RUT;folio;monto\n",
        "zip": lambda: _zip_of(good),
        "other_root": lambda: b'<?xml version="1.0"?><RespuestaDTE version="1.0"/>',
        "other_company": lambda: sii_envelope(sii_sender, other_company, tipos=(33,))[0],
        "real_supplier": lambda: supplier_envelope(supplier, issuer)[0],
    }[case]()
    with pytest.raises(DomainError) as error:
        take_in(issuer, data)
    assert says.lower() in error.value.message.lower()
    assert error.value.fields["file"] == [error.value.message]
    assert not ReceivedEnvelope.objects.exists()


def test_a_company_that_cannot_answer_is_refused_before_anything_is_stored(
    company, sandbox, sii_sender
):
    data, _ = sii_envelope(sii_sender, company, tipos=(33,))
    with pytest.raises(DomainError) as error:
        take_in(company, data)  # no certificate to sign the answers with
    assert "certificate" in error.value.fields
    with pytest.raises(DomainError) as error:
        take_in(company, data, recinto="  ")
    assert "recinto" in error.value.fields
    type(company).objects.filter(pk=company.pk).update(sii_environment="production")
    company.refresh_from_db()
    with pytest.raises(DomainError) as error:
        take_in(company, data)
    assert "sii_environment" in error.value.fields
    assert not ReceivedEnvelope.objects.exists()


def test_an_envelope_received_before_the_certificate_is_answered_whole(
    company, sandbox, cert_pfx, sii_sender, tmp_path
):
    data, docs = sii_envelope(sii_sender, company, tipos=(33, 34))
    receiving.receive(company=company, uploads=[("sii.xml", data)], source=IntakeSource.MAIL)
    envelope = ReceivedEnvelope.objects.get()
    assert envelope.response_xml is None  # nothing to sign it with then
    services.certificate_upload(company=company, actor=None, data=cert_pfx, password=CERT_PASSWORD)
    outcome = take_in(company, data)
    assert outcome.repeated and outcome.complete, outcome.problems
    recepcion = outcome.recepcion_xml
    assert validate(SchemaKind.RESPUESTA_DTE, recepcion) == []
    assert signed_everywhere(recepcion, tmp_path)
    root = parse(recepcion)
    assert root.findtext(f".//{S}EnvioDTEID") == parse(data).find(f"{S}SetDTE").get("ID")
    assert [int(e.text) for e in root.iter(f"{S}Folio")] == [d.folio for d in docs]
    assert [e.text for e in root.iter(f"{S}EstadoRecepDTE")] == ["0", "0"]


def test_the_zip_of_another_companys_envelope_is_not_found(issuer, other_company, sii_sender):
    data, _ = sii_envelope(sii_sender, issuer, tipos=(33,))
    outcome = take_in(issuer, data)
    with pytest.raises(NotFound):
        cx.exchange_answers_zip(company=other_company, envelope=outcome.envelope)
