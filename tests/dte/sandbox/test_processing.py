"""Asynchronous processing: an envelope's verdict shows only once it is ready (processing time
elapsed) and the first polls have been answered; until then its documents are not received."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dte.sandbox.models import ReceivedEnvelope
from tests.dte.sandbox.conftest import PREFIX, body_groups, hdr
from tests.dte.sandbox.material import NOW, envelope, issue

pytestmark = pytest.mark.django_db
LONG = 3600  # seconds: "still processing" for the whole test


def estado(sii, token, doc) -> str:
    return hdr(sii.est_dte(token, tipo=doc.tipo, folio=doc.folio, monto=doc.monto_total), "ESTADO")


def test_ready_at_is_the_reception_plus_the_processing_time(sii, token, settings):
    settings.SII_SANDBOX_PROCESSING_SECONDS = 90
    track_id = sii.send(envelope([issue(33, 301)]), token)
    stored = ReceivedEnvelope.objects.get(track_id=track_id)
    assert stored.ready_at - stored.received_at == timedelta(seconds=90)


def test_until_processed_est_up_is_in_progress_and_est_dte_is_fau(sii, token, settings):
    settings.SII_SANDBOX_PROCESSING_SECONDS = LONG
    doc = issue(33, 302)
    track_id = sii.send(envelope([doc]), token)
    states = [hdr(sii.est_up(track_id, token), "ESTADO") for _ in range(6)]
    assert states == ["SOK", "CRT", "FOK", "PRD", "PRD", "PRD"]
    in_progress = sii.est_up(track_id, token)
    assert hdr(in_progress, "TRACKID") == str(track_id)
    assert in_progress.find("{*}RESP_BODY") is None
    assert estado(sii, token, doc) == "FAU"

    assert sii.process_now() == 1
    processed = sii.est_up(track_id, token)
    assert hdr(processed, "ESTADO") == "EPR"
    assert body_groups(processed)[0]["ACEPTADOS"] == "1"
    assert estado(sii, token, doc) == "DOK"


def test_the_processing_time_passes_by_itself(sii, token, settings):
    settings.SII_SANDBOX_PROCESSING_SECONDS = LONG
    doc = issue(33, 303)
    track_id = sii.send(envelope([doc]), token)
    assert hdr(sii.est_up(track_id, token), "ESTADO") == "SOK"
    # The hour goes by (as if): the envelope was received long enough ago.
    ReceivedEnvelope.objects.filter(track_id=track_id).update(
        ready_at=timezone.now() - timedelta(seconds=1)
    )
    assert hdr(sii.est_up(track_id, token), "ESTADO") == "EPR"
    assert estado(sii, token, doc) == "DOK"


def test_polls_and_processing_time_must_both_be_done(sii, token, settings):
    settings.SII_SANDBOX_POLLS_BEFORE_DONE = 2
    settings.SII_SANDBOX_PROCESSING_SECONDS = LONG
    track_id = sii.send(envelope([issue(33, 304)]), token)
    assert [hdr(sii.est_up(track_id, token), "ESTADO") for _ in range(3)] == ["SOK", "CRT", "FOK"]
    sii.process_now(track_id)
    assert hdr(sii.est_up(track_id, token), "ESTADO") == "EPR"  # 3 polls already answered

    # Processed at once, but the polls still come first.
    settings.SII_SANDBOX_PROCESSING_SECONDS = 0
    other = sii.send(envelope([issue(33, 305)]), token)
    assert [hdr(sii.est_up(other, token), "ESTADO") for _ in range(3)] == ["SOK", "CRT", "EPR"]


def test_a_rejected_envelope_also_shows_its_verdict_only_when_processed(sii, token, settings):
    settings.SII_SANDBOX_PROCESSING_SECONDS = LONG
    data = envelope([issue(33, 306)]).replace(b"<NroResol>", b"<Extra>1</Extra><NroResol>")
    track_id = sii.send(data, token)
    assert hdr(sii.est_up(track_id, token), "ESTADO") == "REC"
    sii.process_now()
    assert hdr(sii.est_up(track_id, token), "ESTADO") == "RSC"


def test_boletas_envio_status_and_estado_wait_for_the_processing(sii, boleta_token, settings):
    settings.SII_SANDBOX_PROCESSING_SECONDS = LONG
    doc = issue(39, 307)
    track_id = sii.boleta_upload(envelope([doc]), boleta_token).json()["trackid"]
    body = sii.boleta_status(track_id, boleta_token).json()
    assert (body["estado"], body["estadistica"], body["detalle_rep_rech"]) == ("SOK", [], [])
    pending = sii.boleta_estado(boleta_token, tipo=39, folio=307, monto=doc.monto_total)
    assert pending.status_code == 200
    assert (pending.json()["estado"], pending.json()["trackid"]) == ("FAU", None)

    sii.process_now(track_id)
    body = sii.boleta_status(track_id, boleta_token).json()
    assert body["estado"] == "EPR"
    assert body["estadistica"][0]["aceptados"] == 1
    done = sii.boleta_estado(boleta_token, tipo=39, folio=307, monto=doc.monto_total).json()
    assert (done["estado"], done["trackid"]) == ("DOK", track_id)


def test_a_folio_accepted_in_an_envelope_still_processing_is_not_received_yet(sii, token, settings):
    settings.SII_SANDBOX_PROCESSING_SECONDS = LONG
    doc = issue(33, 308)
    first = sii.send(envelope([doc]), token)
    # Another envelope with the same DTE, processed at once: the SII has the folio already (it
    # processes in order of reception), so there it is a repeat.
    settings.SII_SANDBOX_PROCESSING_SECONDS = 0
    second = sii.send(envelope([doc], timestamp=NOW + timedelta(minutes=5)), token)
    groups = body_groups(sii.est_up(second, token))
    assert (groups[0]["ACEPTADOS"], groups[0]["RECHAZADOS"]) == ("0", "1")
    assert estado(sii, token, doc) == "FAU"  # the original is not processed yet
    sii.process_now(first)
    assert estado(sii, token, doc) == "DOK"


def test_process_now_releases_one_envelope_or_all(sii, token, settings):
    settings.SII_SANDBOX_PROCESSING_SECONDS = LONG
    first = sii.send(envelope([issue(33, 309)]), token)
    sii.send(envelope([issue(33, 310)]), token)
    assert sii.process_now(first) == 1
    assert sii.process_now(first) == 0
    assert sii.process_now() == 1
    assert not ReceivedEnvelope.objects.filter(ready_at__gt=timezone.now()).exists()


@pytest.mark.parametrize("body", [b"[1]", b"{", b'{"track_id": "12"}', b'{"track_id": true}'])
def test_process_now_refuses_nonsense(client, db, body):
    response = client.post(f"{PREFIX}/_control/process", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()
