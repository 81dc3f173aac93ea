"""Simulated failures: each kind and its count, via `manage.py sandbox_fault` and via the
control endpoint."""

import json
import time

import pytest
from django.core.management import CommandError, call_command
from lxml import etree

from dte.sandbox.models import Fault, ReceivedDocument, ReceivedEnvelope
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
        ("getEstUp", "not_found"),
        ("upload", "explode"),
        (),
    ],
)
def test_command_refuses_nonsense(db, args):
    with pytest.raises(CommandError):
        command(*args)


def test_control_endpoints_are_for_a_staff_session_only(db):
    """Anyone could otherwise make the SII time out or reject for everyone."""
    from django.test import Client

    from tests.dte.sandbox.conftest import staff_user
    from tests.factories import UserFactory

    client = Client()
    fault = json.dumps({"operation": "upload", "kind": "timeout"})
    for path, body in (
        ("_control/faults", fault),
        ("_control/reset", ""),
        ("_control/process", "{}"),
    ):
        anonymous = client.post(f"{PREFIX}/{path}", data=body, content_type="application/json")
        assert anonymous.status_code == 403 and "staff" in anonymous.json()["error"]
    assert client.get(f"{PREFIX}/_control/faults").status_code == 403
    client.force_login(UserFactory(is_staff=False))
    assert (
        client.post(
            f"{PREFIX}/_control/faults", data=fault, content_type="application/json"
        ).status_code
        == 403
    )
    client.force_login(staff_user())
    assert (
        client.post(
            f"{PREFIX}/_control/faults", data=fault, content_type="application/json"
        ).status_code
        == 201
    )
    # ... and the browser's CSRF protection applies (not exempt like the SII's own endpoints)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user())
    assert browser.post(f"{PREFIX}/_control/reset").status_code == 403


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


# --- http500, lost, slow, garbage, not_found -------------------------------------------------


def test_http500_on_soap_is_a_soap_fault(sii, token):
    command("getEstUp", "http500")
    response = sii.soap_raw("QueryEstUp", "getEstUp", RutCompania="1", Token=token)
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/xml")
    fault = etree.fromstring(response.content).find(".//{*}Fault")
    assert fault is not None and fault.findtext("faultcode") == "soapenv:Server"
    assert hdr(sii.est_up("1", token), "ESTADO") == "-11"  # then normal again


def test_http500_on_upload_registers_nothing(sii, token, boleta_token):
    command("upload", "http500")
    command("boleta_upload", "http500")
    response = sii.upload_raw(envelope([issue(33, 601)]), token)
    assert (response.status_code, response.content) == (500, b"Error 500")
    assert sii.boleta_upload(envelope([issue(39, 602)]), boleta_token).status_code == 500
    assert not ReceivedEnvelope.objects.exists()


def test_lost_upload_is_registered_and_processed_but_the_answer_is_a_502(sii, token):
    command("upload", "lost")
    doc = issue(33, 603)
    data = envelope([doc])
    response = sii.upload_raw(data, token)
    assert response.status_code == 502
    assert response["Content-Type"].startswith("text/html")
    assert b"Bad Gateway" in response.content
    stored = ReceivedEnvelope.objects.get()  # the SII has it, under a track id never told
    assert hdr(sii.est_up(stored.track_id, token), "ESTADO") == "EPR"
    assert hdr(sii.est_dte(token, tipo=33, folio=603, monto=doc.monto_total), "ESTADO") == "DOK"
    # Sending the same file again tells it.
    again = sii.upload(data, token)
    assert (again.findtext("STATUS"), again.findtext("TRACKID")) == ("99", str(stored.track_id))


def test_lost_boleta_upload_is_registered(sii, boleta_token):
    command("boleta_upload", "lost")
    response = sii.boleta_upload(envelope([issue(39, 604)]), boleta_token)
    assert response.status_code == 502
    stored = ReceivedEnvelope.objects.get()
    assert sii.boleta_status(stored.track_id, boleta_token).json()["estado"] == "EPR"


def test_lost_elsewhere_does_the_work_then_answers_500(sii):
    from dte.sandbox.models import Seed

    command("getSeed", "lost")
    command("boleta_seed", "lost")
    response = sii.soap_raw("CrSeed", "getSeed")
    assert response.status_code == 500
    assert etree.fromstring(response.content).find(".//{*}Fault") is not None
    rest = sii.client.get(f"{PREFIX}/recursos/v1/boleta.electronica.semilla")
    assert (rest.status_code, rest.content) == (500, b"Error 500")
    assert Seed.objects.count() == 2  # both seeds were made


def test_slow_sleeps_then_answers_normally(sii, token, settings):
    settings.SII_SANDBOX_SLOW_SLEEP = 0.2
    command("upload", "slow")
    started = time.monotonic()
    assert sii.send(envelope([issue(33, 605)]), token)
    assert time.monotonic() - started >= 0.2
    assert not Fault.objects.exists()


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("getSeed", lambda sii, t, b: sii.soap_raw("CrSeed", "getSeed")),
        ("upload", lambda sii, t, b: sii.upload_raw(envelope([issue(33, 606)]), t)),
        ("boleta_upload", lambda sii, t, b: sii.boleta_upload(envelope([issue(39, 607)]), b)),
        ("boleta_status", lambda sii, t, b: sii.boleta_status(1, b)),
        ("boleta_estado", lambda sii, t, b: sii.boleta_estado(b, tipo=39, folio=1, monto=1)),
    ],
)
def test_garbage_is_200_neither_xml_nor_json(sii, token, boleta_token, operation, call):
    command(operation, "garbage")
    response = call(sii, token, boleta_token)
    assert response.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)
    with pytest.raises(ValueError):
        json.loads(response.content)
    assert not ReceivedEnvelope.objects.exists()


def test_boleta_estado_faults_are_apart_from_boleta_status(sii, boleta_token):
    track_id = sii.boleta_upload(envelope([issue(39, 608)]), boleta_token).json()["trackid"]
    command("boleta_estado", "not_found")
    assert sii.boleta_status(track_id, boleta_token).status_code == 200  # not taken here
    missing = sii.boleta_estado(boleta_token, tipo=39, folio=608, monto=1)
    assert missing.status_code == 404
    assert missing.json()["codigo"] == 404
    command("boleta_status", "bad_token")
    assert sii.boleta_estado(boleta_token, tipo=39, folio=608, monto=1).status_code == 200
    assert sii.boleta_status(track_id, boleta_token).status_code == 401
    command("boleta_estado", "bad_token")
    assert sii.boleta_estado(boleta_token, tipo=39, folio=608, monto=1).status_code == 401


def test_not_found_on_the_boleta_envio_status(sii, boleta_token):
    control(sii.client, operation="boleta_status", kind="not_found")
    assert sii.boleta_status(1, boleta_token).status_code == 404


def test_every_operation_takes_every_common_kind(sii, token):
    from dte.sandbox import faults

    common = [k for k in faults.KINDS if k not in ("reject", "not_found")]
    for operation in faults.OPERATIONS:
        for kind in common:
            assert control(sii.client, operation=operation, kind=kind).status_code == 201
    command("--clear")


def test_a_fault_for_any_operation_may_be_http500(sii, token):
    control(sii.client, operation="*", kind="http500")
    assert sii.soap_raw("CrSeed", "getSeed").status_code == 500
    assert hdr(sii.soap("CrSeed", "getSeed"), "ESTADO") == "00"


def test_html503_carries_retry_after(sii):
    command("boleta_estado", "html503")
    response = sii.client.get(f"{PREFIX}/recursos/v1/boleta.electronica/76086428-5-39-1/estado")
    assert (response.status_code, response["Retry-After"]) == (503, "30")


@pytest.mark.parametrize(
    "fields",
    [
        {"operation": "getSeed", "kind": "not_found"},
        {"operation": "*", "kind": "not_found"},
        {"operation": "boleta_estado", "kind": "reject"},
        {"operation": "boleta_estado", "kind": "lost", "glosa": "x"},
    ],
)
def test_kinds_are_refused_where_they_make_no_sense(client, db, fields):
    response = control(client, **fields)
    assert response.status_code == 400
    assert response.json()["error"]
