"""Repeats, as the SII reports them (dte/sandbox/SII_BEHAVIOUR.md): the same file again is
DTEUpload STATUS 99, the same signed SetDTE in other bytes is RPT, and a folio accepted before
is a document rejected as "DTE Repetido" while QueryEstDte answers DOK for the original."""

from datetime import timedelta

import pytest

from dte.sandbox.models import ReceivedDocument, ReceivedEnvelope
from tests.dte.sandbox.conftest import body_groups, hdr
from tests.dte.sandbox.material import NOW, envelope, issue

pytestmark = pytest.mark.django_db
LATER = NOW + timedelta(minutes=5)


# --- The same file ----------------------------------------------------------------------------


def test_the_same_file_is_status_99_with_the_original_track_id_by_default(sii, token):
    data = envelope([issue(33, 401)])
    first = sii.send(data, token)
    again = sii.upload(data, token)
    assert (again.findtext("STATUS"), again.findtext("TRACKID")) == ("99", str(first))
    assert ReceivedEnvelope.objects.count() == 1


def test_status_99_may_come_without_a_track_id(sii, token, settings):
    settings.SII_SANDBOX_REPEAT_TRACKID = False
    data = envelope([issue(33, 402)])
    sii.send(data, token)
    again = sii.upload(data, token)
    assert again.findtext("STATUS") == "99"
    assert again.find("TRACKID") is None
    assert again.findtext("DETAIL/ERROR")


def test_the_repeat_knob_reads_the_environment(sii, token, settings, monkeypatch):
    del settings.SII_SANDBOX_REPEAT_TRACKID
    monkeypatch.setenv("SII_SANDBOX_REPEAT_TRACKID", "0")
    data = envelope([issue(33, 403)])
    sii.send(data, token)
    assert sii.upload(data, token).find("TRACKID") is None


def test_the_same_file_while_the_original_is_processing_is_status_99(sii, token, settings):
    settings.SII_SANDBOX_PROCESSING_SECONDS = 3600
    data = envelope([issue(33, 404)])
    first = sii.send(data, token)
    again = sii.upload(data, token)
    assert (again.findtext("STATUS"), again.findtext("TRACKID")) == ("99", str(first))
    assert hdr(sii.est_up(first, token), "ESTADO") == "SOK"  # still the one envelope


def test_the_same_boleta_file_answers_the_original_receipt(sii, boleta_token):
    data = envelope([issue(39, 405)])
    first = sii.boleta_upload(data, boleta_token).json()
    again = sii.boleta_upload(data, boleta_token)
    assert again.status_code == 200
    assert again.json() == first
    assert ReceivedEnvelope.objects.count() == 1


# --- The same SetDTE in other bytes: RPT ------------------------------------------------------


def test_the_same_set_in_other_bytes_is_rpt_and_the_original_stands(sii, token):
    doc = issue(33, 406)
    data = envelope([doc])
    first = sii.send(data, token)
    second = sii.send(data.replace(b"?>", b"?>\n", 1), token)  # another file, same SetDTE
    assert second != first
    rpt = sii.est_up(second, token)
    assert (hdr(rpt, "ESTADO"), hdr(rpt, "GLOSA").split(" - ")[0]) == ("RPT", "Repetido Rechazado")
    assert rpt.find("{*}RESP_BODY") is None
    assert hdr(sii.est_up(first, token), "ESTADO") == "EPR"
    dok = sii.est_dte(token, tipo=33, folio=406, monto=doc.monto_total)
    assert hdr(dok, "ESTADO") == "DOK"


def test_the_same_boleta_set_in_other_bytes_is_rpt(sii, boleta_token):
    data = envelope([issue(39, 407)])
    sii.boleta_upload(data, boleta_token)
    second = sii.boleta_upload(data + b"\n", boleta_token).json()["trackid"]
    body = sii.boleta_status(second, boleta_token).json()
    assert (body["estado"], body["estadistica"], body["detalle_rep_rech"]) == ("RPT", [], [])


# --- A folio accepted before --------------------------------------------------------------------


def test_a_folio_accepted_before_is_rejected_as_dte_repetido(sii, token):
    doc, fresh = issue(33, 408), issue(33, 409)
    sii.send(envelope([doc]), token)
    later = sii.send(envelope([doc, fresh], timestamp=LATER), token)
    [group] = body_groups(sii.est_up(later, token))
    assert (group["INFORMADOS"], group["ACEPTADOS"], group["RECHAZADOS"]) == ("2", "1", "1")
    repeated = ReceivedDocument.objects.get(envelope__track_id=later, folio=408)
    assert (repeated.status, repeated.glosa) == ("RCH", "DTE Repetido")
    assert (repeated.errors[0]["seccion"], repeated.errors[0]["codigo"]) == ("DTE", 100)
    # QueryEstDte answers for the folio from the envelope that accepted it.
    assert hdr(sii.est_dte(token, tipo=33, folio=408, monto=doc.monto_total), "ESTADO") == "DOK"


def test_a_folio_accepted_in_an_envelope_with_objections_is_a_repeat_too(sii, token):
    from django.core.management import call_command

    doc = issue(33, 410)
    call_command("sandbox_fault", "upload", "reject", "--document", "--code", "RPR")
    sii.send(envelope([doc]), token)
    later = sii.send(envelope([doc], timestamp=LATER), token)
    assert body_groups(sii.est_up(later, token))[0]["RECHAZADOS"] == "1"
    assert hdr(sii.est_dte(token, tipo=33, folio=410, monto=doc.monto_total), "ESTADO") == "DOK"


def test_a_folio_rejected_before_may_be_sent_again(sii, token):
    from dte.core.testmaterial import generate_caf_key

    sii.send(envelope([issue(33, 411, ted_key=generate_caf_key())]), token)  # rejected: bad TED
    fixed = issue(33, 411)
    later = sii.send(envelope([fixed], timestamp=LATER), token)
    assert body_groups(sii.est_up(later, token))[0]["ACEPTADOS"] == "1"
    assert hdr(sii.est_dte(token, tipo=33, folio=411, monto=fixed.monto_total), "ESTADO") == "DOK"


def test_a_repeated_boleta_shows_in_detalle_rep_rech(sii, boleta_token):
    doc = issue(39, 412)
    first = sii.boleta_upload(envelope([doc]), boleta_token).json()["trackid"]
    later = sii.boleta_upload(envelope([doc], timestamp=LATER), boleta_token).json()["trackid"]
    body = sii.boleta_status(later, boleta_token).json()
    assert body["estadistica"][0]["rechazados"] == 1
    [detail] = body["detalle_rep_rech"]
    assert (detail["tipo"], detail["folio"], detail["estado"]) == (39, 412, "RCH")
    [error] = detail["error"]
    assert (error["seccion"], error["codigo"], error["descripcion"]) == ("DTE", 100, "DTE Repetido")
    estado = sii.boleta_estado(boleta_token, tipo=39, folio=412, monto=doc.monto_total).json()
    assert (estado["estado"], estado["trackid"]) == ("DOK", first)


def test_an_accepted_folio_of_another_emisor_is_no_repeat(sii, token, sii_key):
    from datetime import date

    from dte.core.caf import parse_caf
    from dte.core.domain import Resolucion
    from dte.core.testmaterial import SANDBOX_IDK, generate_caf_key, make_caf

    other = "77879240-0"
    caf = parse_caf(
        make_caf(
            sii_key=sii_key,
            idk=SANDBOX_IDK,
            rut_emisor=other,
            razon_social="Otra",
            tipo_dte=33,
            folio_desde=400,
            folio_hasta=500,
            fecha_autorizacion=date(2026, 11, 1),
            folio_key=generate_caf_key(),
        )
    )
    sii.send(envelope([issue(33, 413)]), token)
    theirs = envelope(
        [issue(33, 413, caf=caf, rut_emisor=other)],
        rut_emisor=other,
        resolucion=Resolucion(date(2020, 1, 1), 7),
    )
    track_id = sii.send(theirs, token, company=other)
    assert body_groups(sii.est_up(track_id, token, company=other))[0]["ACEPTADOS"] == "1"
