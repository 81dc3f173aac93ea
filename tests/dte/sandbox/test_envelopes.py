"""What the sandbox checks in a received EnvioDTE and how getEstUp / getEstDte report it: one
test per envelope rejection code and per document rejection reason."""

from datetime import date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from dte.core.caf import parse_caf
from dte.core.certificate import load_pkcs12
from dte.core.domain import Resolucion
from dte.core.testmaterial import SANDBOX_IDK, generate_caf_key, make_caf
from dte.sandbox.models import ReceivedDocument
from tests.dte.fixtures import fresh_certificate
from tests.dte.sandbox.conftest import body_groups, hdr, make_token
from tests.dte.sandbox.material import (
    CERT_PASSWORD,
    NOW,
    caf_for,
    envelope,
    envelope_with_caratula,
    issue,
    sandbox_key,
)

pytestmark = pytest.mark.django_db
OTHER_COMPANY = "77879240-0"


def final(sii, data: bytes, token: str, **upload: str):
    """Upload, then the getEstUp answer (final at once: the `sii` fixture sets 0 polls)."""
    return sii.est_up(sii.send(data, token, **upload), token, upload.get("company", "76086428-5"))


def rejected_with(sii, data: bytes, token: str, code: str, *fragments: str, **upload: str) -> str:
    root = final(sii, data, token, **upload)
    assert hdr(root, "ESTADO") == code, hdr(root, "GLOSA")
    glosa = hdr(root, "GLOSA")
    for fragment in fragments:
        assert fragment in glosa
    assert root.find("{*}RESP_BODY") is None
    return glosa


def one_document_rejected(sii, token, doc, *, reason: str) -> ReceivedDocument:
    root = final(sii, envelope([doc]), token)
    assert hdr(root, "ESTADO") == "EPR"
    assert body_groups(root) == [
        {
            "TIPO_DOCTO": str(doc.tipo),
            "INFORMADOS": "1",
            "ACEPTADOS": "0",
            "RECHAZADOS": "1",
            "REPAROS": "0",
        }
    ]
    document = ReceivedDocument.objects.get(folio=doc.folio)
    assert document.status == "RCH"
    assert document.glosa == reason, document.errors
    return document


# --- Accepted ---------------------------------------------------------------------------------


def test_a_valid_envelope_is_processed_with_every_document_accepted(sii, token):
    docs = [issue(33, 21), issue(33, 22), issue(61, 23)]
    track_id = sii.send(envelope(docs), token)
    root = sii.est_up(track_id, token)
    assert hdr(root, "ESTADO") == "EPR"
    assert hdr(root, "GLOSA") == "Envio Procesado"
    assert hdr(root, "TRACKID") == str(track_id)
    assert hdr(root, "NUM_ATENCION")
    assert body_groups(root) == [
        {
            "TIPO_DOCTO": "33",
            "INFORMADOS": "2",
            "ACEPTADOS": "2",
            "RECHAZADOS": "0",
            "REPAROS": "0",
        },
        {
            "TIPO_DOCTO": "61",
            "INFORMADOS": "1",
            "ACEPTADOS": "1",
            "RECHAZADOS": "0",
            "REPAROS": "0",
        },
    ]


def test_query_est_dte_answers_from_what_was_received(sii, token):
    doc = issue(33, 31)
    sii.send(envelope([doc]), token)
    dok = sii.est_dte(token, tipo=33, folio=31, monto=doc.monto_total)
    assert hdr(dok, "ESTADO") == "DOK"
    assert hdr(dok, "GLOSA_ESTADO").startswith("Documento Recibido por el SII. Datos Coinciden")
    assert hdr(dok, "ERR_CODE") == "0"
    assert hdr(sii.est_dte(token, tipo=33, folio=31, monto=doc.monto_total + 1), "ESTADO") == "DNK"
    other_day = sii.est_dte(token, tipo=33, folio=31, monto=doc.monto_total, fecha="24-11-2026")
    assert hdr(other_day, "ESTADO") == "DNK"
    other_receiver = sii.est_dte(
        token, tipo=33, folio=31, monto=doc.monto_total, receptor="11111111-1"
    )
    assert hdr(other_receiver, "ESTADO") == "DNK"
    assert hdr(sii.est_dte(token, tipo=33, folio=999, monto=1), "ESTADO") == "FAU"
    assert hdr(sii.est_dte(token, tipo=34, folio=31, monto=1), "ESTADO") == "FAU"


def test_query_est_dte_with_bad_parameters_is_an_error(sii, token):
    root = sii.est_dte(token, tipo=33, folio=31, monto=1, fecha="2026-11-23")
    assert hdr(root, "ESTADO") == "-4"


def test_envelopes_answer_in_progress_states_before_the_final_one(sii, token, settings):
    settings.SII_SANDBOX_POLLS_BEFORE_DONE = 2
    track_id = sii.send(envelope([issue(33, 41)]), token)
    first, second, third = (hdr(sii.est_up(track_id, token), "ESTADO") for _ in range(3))
    assert (first, second, third) == ("SOK", "CRT", "EPR")


def test_default_is_one_in_progress_answer(sii, token, settings):
    del settings.SII_SANDBOX_POLLS_BEFORE_DONE
    track_id = sii.send(envelope([issue(33, 42)]), token)
    in_progress = sii.est_up(track_id, token)
    assert hdr(in_progress, "ESTADO") == "SOK"
    assert hdr(in_progress, "TRACKID") == str(track_id)
    assert hdr(sii.est_up(track_id, token), "ESTADO") == "EPR"


def test_a_track_id_of_another_company_is_minus_11(sii, token):
    track_id = sii.send(envelope([issue(33, 43)]), token)
    root = sii.est_up(track_id, token, company=OTHER_COMPANY)
    assert hdr(root, "ESTADO") == "-11"
    assert hdr(root, "ERR_CODE") == "1"
    assert hdr(sii.est_up("12", token), "ESTADO") == "-11"


# --- Envelope rejections ----------------------------------------------------------------------


def test_rsc_schema(sii, token):
    data = envelope([issue(33, 51)]).replace(b"<NroResol>", b"<Extra>1</Extra><NroResol>")
    rejected_with(sii, data, token, "RSC", "Rechazado por Error en Schema")


def test_rsc_a_boleta_envelope_is_not_for_dte_upload(sii, token):
    rejected_with(sii, envelope([issue(39, 52)]), token, "RSC", "EnvioDTE")


def test_rfr_envelope_signature(sii, token):
    data = envelope([issue(33, 53)]).replace(
        b"<TmstFirmaEnv>2026-11-23T10:45:10", b"<TmstFirmaEnv>2026-11-23T10:45:11"
    )
    rejected_with(sii, data, token, "RFR", "Rechazado por Error en Firma", "SetDTE")


def test_rct_rut_receptor_must_be_the_sii(sii, token):
    data = envelope([issue(33, 54)], rut_receptor="96790240-3")
    rejected_with(sii, data, token, "RCT", "Rechazado por Error en Caratula", "RutReceptor")


def test_rct_rut_envia_must_be_the_signer(sii):
    # The uploader (token) and RutEnvia are 11111111-1, but 12345678-5 signed the envelope.
    token = make_token("11111111-1")
    data = envelope([issue(33, 55)], rut_envia="11111111-1")
    rejected_with(sii, data, token, "RCT", "certificado", sender="11111111-1")


def test_rct_rut_envia_must_be_the_uploader(sii):
    # RutEnvia is the signer (12345678-5), but 11111111-1 uploads it with its own token.
    token = make_token("11111111-1")
    data = envelope([issue(33, 56)])
    rejected_with(sii, data, token, "RCT", "usuario que envía", sender="11111111-1")


def test_rct_rut_emisor_must_be_the_uploading_company(sii, token):
    data = envelope([issue(33, 57)])
    rejected_with(sii, data, token, "RCT", "RutEmisor", company=OTHER_COMPANY)


def test_rct_subtotals_must_count_the_documents(sii, token):
    data = envelope_with_caratula(
        [issue(33, 58)], lambda c: c.replace("<NroDTE>1</NroDTE>", "<NroDTE>2</NroDTE>")
    )
    rejected_with(sii, data, token, "RCT", "SubTotDTE")


def test_rct_resolution_date_must_be_the_companys(sii, token):
    data = envelope([issue(33, 59)], resolucion=Resolucion(date(2015, 1, 1), 80))
    rejected_with(sii, data, token, "RCT", "FchResol")


def test_rct_resolution_number_must_be_the_companys(sii, token):
    data = envelope([issue(33, 60)], resolucion=Resolucion(date(2014, 8, 22), 0))
    rejected_with(sii, data, token, "RCT", "NroResol")


def test_the_resolution_is_not_checked_for_companies_unknown_here(sii, token, sii_key):
    caf = parse_caf(
        make_caf(
            sii_key=sii_key,
            idk=SANDBOX_IDK,
            rut_emisor=OTHER_COMPANY,
            razon_social="Otra",
            tipo_dte=33,
            folio_desde=1,
            folio_hasta=10,
            fecha_autorizacion=date(2026, 11, 1),
            folio_key=generate_caf_key(),
        )
    )
    doc = issue(33, 1, caf=caf, rut_emisor=OTHER_COMPANY)
    data = envelope([doc], rut_emisor=OTHER_COMPANY, resolucion=Resolucion(date(2020, 1, 1), 7))
    root = final(sii, data, token, company=OTHER_COMPANY)
    assert hdr(root, "ESTADO") == "EPR"
    assert body_groups(root)[0]["ACEPTADOS"] == "1"


def test_rpt_the_same_envelope_in_other_bytes(sii, token):
    data = envelope([issue(33, 61)])
    assert hdr(final(sii, data, token), "ESTADO") == "EPR"
    rejected_with(sii, data + b"\n", token, "RPT", "Repetido")


def test_rco_a_document_of_another_emisor(sii, token, sii_key):
    caf = parse_caf(
        make_caf(
            sii_key=sii_key,
            idk=SANDBOX_IDK,
            rut_emisor=OTHER_COMPANY,
            razon_social="Otra",
            tipo_dte=33,
            folio_desde=1,
            folio_hasta=10,
            fecha_autorizacion=date(2026, 11, 1),
            folio_key=generate_caf_key(),
        )
    )
    data = envelope([issue(33, 62), issue(33, 2, caf=caf, rut_emisor=OTHER_COMPANY)])
    rejected_with(sii, data, token, "RCO", OTHER_COMPANY)


def test_an_expired_signing_certificate_is_rfr(sii, token):
    expired = load_pkcs12(fresh_certificate(days_valid=-1), CERT_PASSWORD)
    rejected_with(sii, envelope([issue(33, 63)], signer=expired), token, "RFR", "vigente")


# --- Document rejections ----------------------------------------------------------------------


def test_document_with_a_bad_signature(sii, token):
    doc = issue(33, 71)
    # Edit the signed Documento (a field outside the TED), then sign the envelope over it.
    tampered = type(doc)(
        doc.tipo, doc.folio, doc.monto_total, doc.xml.replace("Licencia", "Licenci@")
    )
    document = one_document_rejected(sii, token, tampered, reason="Firma del DTE Incorrecta")
    assert document.errors[0]["seccion"] == "DTE"


def test_document_with_a_bad_ted(sii, token):
    other_key = generate_caf_key()
    one_document_rejected(
        sii, token, issue(33, 72, ted_key=other_key), reason="Timbre Electronico (TED) Incorrecto"
    )


def test_document_with_a_caf_of_the_real_sii_idk_is_rejected(sii, token):
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    caf = parse_caf(
        make_caf(
            sii_key=key,
            idk=100,
            rut_emisor="76086428-5",
            razon_social="Empresa Demo SpA",
            tipo_dte=33,
            folio_desde=1,
            folio_hasta=100,
            fecha_autorizacion=date(2026, 11, 1),
            folio_key=generate_caf_key(),
        )
    )
    document = one_document_rejected(
        sii, token, issue(33, 73, caf=caf), reason="CAF no Autorizado por el SII"
    )
    assert "IDK 100" in document.errors[0]["detalle"]


def test_document_with_a_caf_signed_by_another_key_is_rejected(sii, token):
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    caf = parse_caf(
        make_caf(
            sii_key=key,
            idk=SANDBOX_IDK,
            rut_emisor="76086428-5",
            razon_social="Empresa Demo SpA",
            tipo_dte=33,
            folio_desde=1,
            folio_hasta=100,
            fecha_autorizacion=date(2026, 11, 1),
            folio_key=generate_caf_key(),
        )
    )
    one_document_rejected(sii, token, issue(33, 74, caf=caf), reason="CAF no Autorizado por el SII")


def test_document_with_a_folio_outside_the_caf(sii, token):
    doc = issue(33, 1500, caf_range=(1, 2000))  # the CAF in the TED says 1-1000
    document = one_document_rejected(
        sii, token, doc, reason="Folio fuera del Rango Autorizado en el CAF"
    )
    assert [e["codigo"] for e in document.errors] == [4]  # not also reported as a bad TED


def test_document_with_an_expired_caf(sii, token):
    caf = parse_caf(
        make_caf(
            sii_key=sandbox_key(),
            idk=SANDBOX_IDK,
            rut_emisor="76086428-5",
            razon_social="Empresa Demo SpA",
            tipo_dte=33,
            folio_desde=1,
            folio_hasta=100,
            fecha_autorizacion=date(2026, 1, 2),  # the document is dated 2026-11-23
            folio_key=generate_caf_key(),
        )
    )
    one_document_rejected(sii, token, issue(33, 75, caf=caf), reason="CAF Vencido")


def test_document_with_a_repeated_folio(sii, token):
    doc = issue(33, 76)
    assert hdr(final(sii, envelope([doc]), token), "ESTADO") == "EPR"
    later = envelope([doc], timestamp=NOW + timedelta(minutes=5))  # another envelope, same DTE
    root = final(sii, later, token)
    assert body_groups(root)[0]["RECHAZADOS"] == "1"
    assert ReceivedDocument.objects.filter(folio=76, status="RCH").get().glosa == "DTE Repetido"
    # The first one still stands.
    assert hdr(sii.est_dte(token, tipo=33, folio=76, monto=doc.monto_total), "ESTADO") == "DOK"


def test_a_folio_repeated_inside_one_envelope(sii, token):
    # Twice the same DTE: the Documento ID F77T33 is no longer unique, so the schema fails.
    doc = issue(33, 77)
    rejected_with(sii, envelope([doc, doc]), token, "RSC")


def test_document_with_totals_that_do_not_add_up(sii, token):
    def wrong_neto(documento):
        neto = documento.find(".//{*}Totales/{*}MntNeto")
        neto.text = str(int(neto.text) + 1)

    document = one_document_rejected(
        sii,
        token,
        issue(33, 78, mutate=wrong_neto),
        reason="Montos del Documento no Cuadran con el Detalle",
    )
    assert "MntNeto" in document.errors[0]["detalle"]


def test_a_rejected_document_is_not_received_for_query_est_dte(sii, token):
    doc = issue(33, 79, ted_key=generate_caf_key())
    final(sii, envelope([doc]), token)
    assert hdr(sii.est_dte(token, tipo=33, folio=79, monto=doc.monto_total), "ESTADO") == "FAU"


def test_mixed_envelope_counts_each_type(sii, token):
    docs = [issue(33, 81), issue(33, 82, ted_key=generate_caf_key()), issue(61, 83)]
    root = final(sii, envelope(docs), token)
    assert body_groups(root) == [
        {
            "TIPO_DOCTO": "33",
            "INFORMADOS": "2",
            "ACEPTADOS": "1",
            "RECHAZADOS": "1",
            "REPAROS": "0",
        },
        {
            "TIPO_DOCTO": "61",
            "INFORMADOS": "1",
            "ACEPTADOS": "1",
            "RECHAZADOS": "0",
            "REPAROS": "0",
        },
    ]


def test_the_caf_of_the_test_data_is_the_sandbox_authoritys(sii):
    # Guard for every test above: tests/data/keys CAFs are signed by the sandbox key in the DB.
    from dte.sandbox.processing import sandbox_public_key

    assert caf_for(33).idk == SANDBOX_IDK
    assert sandbox_public_key().public_numbers() == sandbox_key().public_key().public_numbers()
    assert isinstance(NOW, datetime)
