"""Simulated failures: each kind and its count, via `manage.py sandbox_fault` and via the
control endpoint."""

import json
import time

import pytest
from django.core.management import CommandError, call_command

from dte.sandbox.models import Fault, ReceivedDocument
from tests.dte.sandbox.conftest import PREFIX, body_groups, hdr
from tests.dte.sandbox.material import envelope, issue

pytestmark = pytest.mark.django_db


def command(*args: str) -> None:
    call_command("sandbox_fault", *args)


def control(client, **fields: object):
    return client.post(
        f"{PREFIX}/_control/faults", data=json.dumps(fields), content_type="application/json"
    )


def test_timeout_sleeps_then_answers_normally_for_count_calls(sii, settings):
    settings.SII_SANDBOX_TIMEOUT_SLEEP = 0.2
    command("getSeed", "timeout", "--count", "2")
    for _ in range(2):
        started = time.monotonic()
        assert sii.seed()
        assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    sii.seed()
    assert time.monotonic() - started < 0.2
    assert not Fault.objects.exists()


def test_html503_is_the_maintenance_page(sii, token):
    response = control(sii.client, operation="getEstUp", kind="html503")
    assert response.status_code == 201
    answer = sii.soap_raw("QueryEstUp", "getEstUp", RutCompania="1", Token=token)
    assert answer.status_code == 503
    assert answer["Content-Type"].startswith("text/html")
    assert "Servicio no disponible" in answer.content.decode()
    assert hdr(sii.est_up("1", token), "ESTADO") == "-11"  # next call: normal again


def test_html503_on_upload_and_boletas(sii, token, boleta_token):
    command("upload", "html503")
    command("boleta_seed", "html503")
    assert sii.upload_raw(b"<x/>", token).status_code == 503
    assert sii.client.get(f"{PREFIX}/recursos/v1/boleta.electronica.semilla").status_code == 503


def test_bad_token_answers_each_operations_token_error(sii, token, boleta_token):
    command("getEstUp", "bad_token")
    command("getEstDte", "bad_token")
    command("upload", "bad_token")
    command("boleta_upload", "bad_token")
    command("boleta_status", "bad_token")
    command("getSeed", "bad_token")
    command("getToken", "bad_token")
    assert hdr(sii.est_up("1", token), "ESTADO") == "001"
    assert hdr(sii.est_dte(token, tipo=33, folio=1, monto=1), "ESTADO") == "001"
    assert sii.upload(envelope([issue(33, 201)]), token).findtext("STATUS") == "5"
    assert sii.boleta_upload(envelope([issue(39, 202)]), boleta_token).status_code == 401
    assert sii.boleta_status(1, boleta_token).status_code == 401
    assert hdr(sii.soap("CrSeed", "getSeed"), "ESTADO") == "-2"
    assert hdr(sii.get_token("<getToken/>"), "ESTADO") == "-3"
    assert not Fault.objects.exists()


def test_any_operation_fault(sii, token):
    control(sii.client, operation="*", kind="bad_token", count=2)
    assert hdr(sii.soap("CrSeed", "getSeed"), "ESTADO") == "-2"
    assert hdr(sii.est_up("1", token), "ESTADO") == "001"
    assert hdr(sii.soap("CrSeed", "getSeed"), "ESTADO") == "00"


def test_reject_the_next_envelope_with_a_code_and_glosa(sii, token):
    command("upload", "reject", "--code", "RCT", "--glosa", "Rechazado por Error en Caratula")
    track_id = sii.send(envelope([issue(33, 203)]), token)
    root = sii.est_up(track_id, token)
    assert (hdr(root, "ESTADO"), hdr(root, "GLOSA")) == ("RCT", "Rechazado por Error en Caratula")
    assert not ReceivedDocument.objects.exists()
    # Only the next one: this envelope is accepted.
    later = sii.send(envelope([issue(33, 204)]), token)
    assert hdr(sii.est_up(later, token), "ESTADO") == "EPR"


def test_reject_the_next_documents_via_the_control_endpoint(sii, token):
    response = control(
        sii.client,
        operation="upload",
        kind="reject",
        per_document=True,
        count=2,
        glosa="Rut receptor no autorizado",
    )
    assert response.json()["fault"]["code"] == "RCH"
    docs = [issue(33, 205), issue(33, 206), issue(33, 207)]
    root = sii.est_up(sii.send(envelope(docs), token), token)
    assert body_groups(root)[0]["RECHAZADOS"] == "2"
    assert body_groups(root)[0]["ACEPTADOS"] == "1"
    rejected = ReceivedDocument.objects.filter(status="RCH").order_by("folio")
    assert [d.folio for d in rejected] == [205, 206]
    assert {d.glosa for d in rejected} == {"Rut receptor no autorizado"}


def test_documents_accepted_with_objections(sii, token):
    command("upload", "reject", "--document", "--code", "RPR", "--glosa", "Giro muy largo")
    root = sii.est_up(sii.send(envelope([issue(33, 208)]), token), token)
    assert body_groups(root)[0]["REPAROS"] == "1"
    assert body_groups(root)[0]["ACEPTADOS"] == "0"
    doc = ReceivedDocument.objects.get(folio=208)
    assert hdr(sii.est_dte(token, tipo=33, folio=208, monto=doc.monto_total), "ESTADO") == "DOK"


def test_reject_boletas_documents_shows_in_detalle(sii, boleta_token):
    command("boleta_upload", "reject", "--document", "--glosa", "Boleta rechazada")
    track_id = sii.boleta_upload(envelope([issue(39, 209)]), boleta_token).json()["trackid"]
    [detail] = sii.boleta_status(track_id, boleta_token).json()["detalle_rep_rech"]
    assert detail["error"][0]["descripcion"] == "Boleta rechazada"


def test_list_clear_and_reset(sii, capsys):
    command("getSeed", "timeout", "--count", "3")
    control(sii.client, operation="getToken", kind="html503")
    listed = sii.client.get(f"{PREFIX}/_control/faults").json()["faults"]
    assert [(f["operation"], f["count"]) for f in listed] == [("getSeed", 3), ("getToken", 1)]
    command("--list")
    assert "getSeed timeout ×3" in capsys.readouterr().out
    command("--clear")
    assert not Fault.objects.exists()
    control(sii.client, operation="getToken", kind="html503")
    assert sii.client.post(f"{PREFIX}/_control/reset").json() == {"cleared": 1}
    assert not Fault.objects.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("getNothing", "timeout"),
        ("getSeed", "reject"),
        ("upload", "reject", "--code", "XYZ"),
        ("getSeed", "timeout", "--count", "0"),
        ("getSeed", "timeout", "--glosa", "x"),
        (),
    ],
)
def test_command_refuses_nonsense(db, args):
    with pytest.raises(CommandError):
        command(*args)


def test_control_endpoint_refuses_nonsense(client, db):
    assert control(client, operation="upload", kind="explode").status_code == 400
    response = client.post(f"{PREFIX}/_control/faults", data=b"{", content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_a_reject_waits_for_an_envelope_that_is_processed(sii, token):
    command("upload", "reject", "--code", "RSC")
    data = envelope([issue(33, 210)])
    assert sii.upload(data, None).findtext("STATUS") == "5"  # refused: nothing processed
    track_id = sii.send(data, token)
    assert sii.upload(data, token).findtext("STATUS") == "99"  # a repeat is not processed
    assert hdr(sii.est_up(track_id, token), "ESTADO") == "RSC"
    assert not Fault.objects.exists()
