"""The boletas REST API: seed, token (separate from SOAP tokens), envío, its status JSON and the
single boleta's state."""

import pytest
from lxml import etree

from dte.core.testmaterial import generate_caf_key
from dte.sandbox.models import Token
from tests.dte.sandbox.conftest import PREFIX, hdr, make_token
from tests.dte.sandbox.material import SIGNER_RUT, envelope, issue, signed_get_token

pytestmark = pytest.mark.django_db
API = f"{PREFIX}/recursos/v1"


def test_seed_and_token_over_rest(sii):
    seed_response = sii.client.get(f"{API}/boleta.electronica.semilla")
    assert seed_response.status_code == 200
    seed_root = etree.fromstring(seed_response.content)
    assert hdr(seed_root, "ESTADO") == "00"
    seed = seed_root.findtext("{*}RESP_BODY/SEMILLA")

    token_response = sii.client.post(
        f"{API}/boleta.electronica.token",
        data=signed_get_token(seed),
        content_type="application/xml",
    )
    token_root = etree.fromstring(token_response.content)
    assert hdr(token_root, "ESTADO") == "00"
    token = Token.objects.get(value=token_root.findtext("{*}RESP_BODY/TOKEN"))
    assert (token.channel, token.rut) == ("boleta", SIGNER_RUT)


def test_a_soap_seed_is_not_a_boleta_seed(sii):
    xml = signed_get_token(sii.seed())
    response = sii.client.post(
        f"{API}/boleta.electronica.token", data=xml, content_type="application/xml"
    )
    assert hdr(etree.fromstring(response.content), "ESTADO") == "08"


def test_envio_without_a_boleta_token_is_401(sii, token):
    data = envelope([issue(39, 101)])
    assert sii.boleta_upload(data, None).status_code == 401
    assert sii.boleta_upload(data, token).status_code == 401  # a SOAP token is not enough


def test_envio_answers_rec_and_a_fifteen_digit_track_id(sii, boleta_token):
    response = sii.boleta_upload(envelope([issue(39, 102)]), boleta_token)
    assert response.status_code == 200
    body = response.json()
    assert body["estado"] == "REC"
    assert body["rut_emisor"] == "76086428-5"
    assert body["rut_envia"] == SIGNER_RUT
    assert body["file"] == "EnvioBOLETA.xml"
    assert isinstance(body["trackid"], int) and len(str(body["trackid"])) == 15
    assert len(body["fecha_recepcion"]) == 19


def test_envio_status_with_estadistica(sii, boleta_token):
    docs = [issue(39, 103), issue(39, 104), issue(41, 105)]
    track_id = sii.boleta_upload(envelope(docs), boleta_token).json()["trackid"]
    response = sii.boleta_status(track_id, boleta_token)
    assert response.status_code == 200
    body = response.json()
    assert body["estado"] == "EPR"
    assert body["trackid"] == track_id
    assert body["estadistica"] == [
        {"tipo": 39, "informados": 2, "aceptados": 2, "rechazados": 0, "reparos": 0},
        {"tipo": 41, "informados": 1, "aceptados": 1, "rechazados": 0, "reparos": 0},
    ]
    assert body["detalle_rep_rech"] == []


def test_a_rejected_boleta_shows_up_in_detalle_rep_rech(sii, boleta_token):
    docs = [issue(39, 106), issue(39, 107, ted_key=generate_caf_key())]
    track_id = sii.boleta_upload(envelope(docs), boleta_token).json()["trackid"]
    body = sii.boleta_status(track_id, boleta_token).json()
    assert body["estadistica"] == [
        {"tipo": 39, "informados": 2, "aceptados": 1, "rechazados": 1, "reparos": 0}
    ]
    [detail] = body["detalle_rep_rech"]
    assert (detail["tipo"], detail["folio"], detail["estado"]) == (39, 107, "RCH")
    assert detail["descripcion"] == "Dte Rechazado"
    [error] = detail["error"]
    assert error["descripcion"] == "Timbre Electronico (TED) Incorrecto"
    assert set(error) == {"seccion", "linea", "nivel", "codigo", "descripcion", "detalle"}


def test_envio_status_in_progress_then_final(sii, boleta_token, settings):
    settings.SII_SANDBOX_POLLS_BEFORE_DONE = 1
    track_id = sii.boleta_upload(envelope([issue(39, 108)]), boleta_token).json()["trackid"]
    first = sii.boleta_status(track_id, boleta_token).json()
    assert (first["estado"], first["estadistica"]) == ("SOK", [])
    assert sii.boleta_status(track_id, boleta_token).json()["estado"] == "EPR"


def test_envio_status_needs_a_boleta_token_and_a_known_envio(sii, boleta_token, token):
    track_id = sii.boleta_upload(envelope([issue(39, 109)]), boleta_token).json()["trackid"]
    assert sii.boleta_status(track_id, token).status_code == 401
    assert sii.boleta_status(track_id, boleta_token, company="77879240-0").status_code == 404


def test_an_envio_dte_to_the_boleta_api_is_rsc(sii, boleta_token):
    track_id = sii.boleta_upload(envelope([issue(33, 110)]), boleta_token).json()["trackid"]
    assert sii.boleta_status(track_id, boleta_token).json()["estado"] == "RSC"


def test_single_boleta_state(sii, boleta_token):
    doc = issue(39, 111)
    sii.boleta_upload(envelope([doc]), boleta_token)

    def estado(folio: int, monto: int, fecha: str = "23-11-2026", token: str = boleta_token):
        return sii.client.get(
            f"{API}/boleta.electronica/76086428-5-39-{folio}/estado",
            {"rut_receptor": "96790240", "dv_receptor": "3", "monto": monto, "fechaEmision": fecha},
            HTTP_COOKIE=f"TOKEN={token}",
        )

    dok = estado(111, doc.monto_total)
    assert dok.status_code == 200
    assert dok.json()["estado"] == "DOK"
    assert estado(111, doc.monto_total + 10).json()["estado"] == "DNK"
    assert estado(111, doc.monto_total, "01-01-2026").json()["estado"] == "DNK"
    assert estado(999, 1).json()["estado"] == "FAU"
    assert estado(111, doc.monto_total, token=make_token()).status_code == 401


def test_the_same_boleta_file_twice_gives_the_same_track_id(sii, boleta_token):
    data = envelope([issue(39, 112)])
    first = sii.boleta_upload(data, boleta_token).json()["trackid"]
    assert sii.boleta_upload(data, boleta_token).json()["trackid"] == first


def test_envio_that_is_not_xml_is_400(sii, boleta_token):
    response = sii.boleta_upload(b"no soy xml", boleta_token)
    assert response.status_code == 400
    assert response.json()["codigo"] == 7
