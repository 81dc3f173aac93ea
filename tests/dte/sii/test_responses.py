"""Every parser on the SII's sample answers (../shared/sii/samples/responses/) and on hand-made
variants of each code."""

import json
from pathlib import Path

import pytest

from dte.sii import responses as r
from dte.sii.errors import (
    SiiAlreadyReceived,
    SiiProtocolError,
    SiiRefused,
    SiiRetryableError,
    SiiTokenError,
)

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "sii" / "samples" / "responses"
NS = 'xmlns:SII="http://www.sii.cl/XMLSchema"'


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def respuesta(header: str, body: str = "") -> str:
    body_xml = f"<SII:RESP_BODY>{body}</SII:RESP_BODY>" if body else ""
    return f"<SII:RESPUESTA {NS}><SII:RESP_HDR>{header}</SII:RESP_HDR>{body_xml}</SII:RESPUESTA>"


def test_seed():
    assert r.parse_seed(sample("crseed_getSeed_ok.xml")) == "00000000064"
    with pytest.raises(SiiRetryableError):
        r.parse_seed(sample("crseed_getSeed_error.xml"))
    with pytest.raises(SiiRetryableError, match="página"):
        r.parse_seed(b"<html><body>Servicio en mantencion</body></html>")


def test_token():
    assert r.parse_token(sample("gettokenfromseed_getToken_ok.xml")) == "AB82001ABRT"
    with pytest.raises(SiiRefused) as info:
        r.parse_token(sample("gettokenfromseed_getToken_error11.xml"))
    assert info.value.code == "11"
    with pytest.raises(SiiRetryableError):  # an expired seed: a new one will do
        r.parse_token(respuesta("<ESTADO>08</ESTADO><GLOSA>Semilla Invalida</GLOSA>"))
    with pytest.raises(SiiRefused, match="no está autorizado"):
        r.parse_token(respuesta("<ESTADO>-3</ESTADO>"))


def test_upload_ok_and_every_status():
    result = r.parse_upload(sample("dteupload_RECEPCIONDTE_ok.xml"))
    assert result.track_id == "39" and result.timestamp == "2002-11-25 18:51:44"
    with pytest.raises(SiiTokenError):
        r.parse_upload(sample("dteupload_RECEPCIONDTE_not_authenticated.xml"))
    with pytest.raises(SiiRefused) as info:
        r.parse_upload(sample("dteupload_RECEPCIONDTE_schema_error.xml"))
    assert info.value.code == "UPLOAD-7"
    for status, kind in (
        ("1", SiiRefused),
        ("2", SiiRefused),
        ("3", SiiRefused),
        ("6", SiiRefused),
        ("8", SiiRefused),
        ("9", SiiRetryableError),
        ("-1", SiiRefused),
    ):
        xml = (
            f"<RECEPCIONDTE><STATUS>{status}</STATUS><DETAIL><ERROR>detalle {status}"
            "</ERROR></DETAIL></RECEPCIONDTE>"
        )
        with pytest.raises(kind) as info:
            r.parse_upload(xml)
        assert f"detalle {status}" in str(info.value)


def test_upload_already_received_follows_the_first_track_id():
    xml = "<RECEPCIONDTE><STATUS>99</STATUS><TRACKID>1234567890</TRACKID></RECEPCIONDTE>"
    result = r.parse_upload(xml)
    assert (result.track_id, result.repeated) == ("1234567890", True)
    # Without a track id the SII still has it: never a refusal, never a rejection.
    with pytest.raises(SiiAlreadyReceived):
        r.parse_upload("<RECEPCIONDTE><STATUS>99</STATUS></RECEPCIONDTE>")


def test_upload_refusals_are_not_verdicts_and_not_retried_blindly():
    for status in ("1", "2", "3", "6", "7", "8", "-1", "42"):
        xml = f"<RECEPCIONDTE><STATUS>{status}</STATUS></RECEPCIONDTE>"
        with pytest.raises(SiiRefused) as info:
            r.parse_upload(xml)
        assert info.value.code == f"UPLOAD-{status}"
    with pytest.raises(SiiRetryableError) as locked:
        r.parse_upload("<RECEPCIONDTE><STATUS>9</STATUS></RECEPCIONDTE>")
    assert locked.value.maybe_delivered is False  # a locked SII registered nothing
    with pytest.raises(SiiProtocolError):
        r.parse_upload("<RECEPCIONDTE><FILE>x</FILE></RECEPCIONDTE>")


def test_est_up_samples():
    accepted = r.parse_est_up(sample("queryestup_EPR_accepted.xml"))
    assert (accepted.estado, accepted.outcome) == ("EPR", r.Outcome.ACCEPTED)
    assert accepted.counts == (r.TypeCounts(33, 1, 1, 0, 0),)
    rejected = r.parse_est_up(sample("queryestup_RCT_rejected.xml"))
    # RCT: the carátula was wrong; the SII never looked at the documents.
    assert (rejected.estado, rejected.outcome) == ("RCT", r.Outcome.NOT_JUDGED)
    assert rejected.glosa
    multi = r.parse_est_up(sample("queryestup_EPR_multitype_rejected.xml"))
    assert multi.outcome in (r.Outcome.REJECTED, r.Outcome.MIXED)
    assert len(multi.counts) >= 2
    pending = r.parse_est_up(sample("queryestup_minus11_pending.xml"))
    assert pending.outcome is r.Outcome.IN_PROGRESS


@pytest.mark.parametrize("estado", ["REC", "SOK", "CRT", "FOK", "PRD", "PDR"])
def test_est_up_in_progress(estado):
    assert r.parse_est_up(respuesta(f"<ESTADO>{estado}</ESTADO>")).outcome is r.Outcome.IN_PROGRESS


@pytest.mark.parametrize(
    ("estado", "outcome"),
    [
        ("RSC", r.Outcome.NOT_JUDGED),
        ("RFR", r.Outcome.NOT_JUDGED),
        ("RCT", r.Outcome.NOT_JUDGED),
        ("RCO", r.Outcome.NOT_JUDGED),
        ("VOF", r.Outcome.NOT_JUDGED),
        ("XYZ", r.Outcome.NOT_JUDGED),  # a state nobody knows is not a verdict
        ("RPT", r.Outcome.REPEATED),
        ("RCH", r.Outcome.REJECTED),  # rejected for its documents' information: a verdict
        ("RLV", r.Outcome.ACCEPTED_WITH_OBJECTIONS),
    ],
)
def test_est_up_envelope_states_by_kind(estado, outcome):
    status = r.parse_est_up(respuesta(f"<ESTADO>{estado}</ESTADO>"))
    assert status.outcome is outcome
    assert (status.outcome in r.VERDICTS) == (estado in ("RCH", "RLV"))


@pytest.mark.parametrize(
    ("counts", "outcome"),
    [
        ((2, 2, 0, 0), r.Outcome.ACCEPTED),
        ((2, 2, 0, 1), r.Outcome.ACCEPTED_WITH_OBJECTIONS),
        ((2, 0, 2, 0), r.Outcome.REJECTED),
        ((2, 1, 1, 0), r.Outcome.MIXED),
    ],
)
def test_epr_is_decided_by_the_counts(counts, outcome):
    informados, aceptados, rechazados, reparos = counts
    body = (
        f"<TIPO_DOCTO>33</TIPO_DOCTO><INFORMADOS>{informados}</INFORMADOS>"
        f"<ACEPTADOS>{aceptados}</ACEPTADOS><RECHAZADOS>{rechazados}</RECHAZADOS>"
        f"<REPAROS>{reparos}</REPAROS>"
    )
    assert r.parse_est_up(respuesta("<ESTADO>EPR</ESTADO>", body)).outcome is outcome


def test_est_up_objections_and_errors():
    assert r.parse_est_up(respuesta("<ESTADO>RPR</ESTADO>")).outcome is (
        r.Outcome.ACCEPTED_WITH_OBJECTIONS
    )
    for code in ("001", "002", "003"):
        with pytest.raises(SiiTokenError):
            r.parse_est_up(respuesta(f"<ESTADO>{code}</ESTADO>"))
    with pytest.raises(SiiRefused):
        r.parse_est_up(respuesta("<ESTADO>-11</ESTADO><ERR_CODE>1</ERR_CODE>"))
    with pytest.raises(SiiRetryableError):
        r.parse_est_up(respuesta("<ESTADO>-3</ESTADO>"))


def test_est_dte():
    dok = r.parse_est_dte(sample("queryestdte_DOK_shape.xml"))
    assert (dok.estado, dok.state) == ("DOK", r.DocumentState.ACCEPTED)
    expected = {
        "DNK": "accepted",
        "FAU": "unknown",
        "FNA": "rejected",
        "FAN": "rejected",
        "EMP": "rejected",
        "MMC": "accepted",
        "ANC": "accepted",
    }
    for code, state in expected.items():
        assert r.parse_est_dte(respuesta(f"<ESTADO>{code}</ESTADO>")).state == state
    with pytest.raises(SiiTokenError):
        r.parse_est_dte(respuesta("<ESTADO>002</ESTADO>"))
    with pytest.raises(SiiProtocolError):
        r.parse_est_dte(respuesta("<ESTADO>ZZZ</ESTADO>"))


def test_boleta_upload_and_status():
    upload = r.parse_boleta_upload(sample("boleta_rest_envio_response.json"))
    assert upload.track_id == "1014"
    status = r.parse_boleta_status(sample("boleta_rest_envio_status_response.json"))
    assert status.estado == "EPR" and status.outcome is r.Outcome.MIXED
    assert {(d.tipo, d.folio, d.estado) for d in status.documents} >= {(39, 1202, "RCH")}
    rejected = next(d for d in status.documents if d.folio == 1202)
    assert "Precio * Cantidad" in rejected.glosa
    assert r.parse_boleta_status(json.dumps({"estado": "REC"})).outcome is r.Outcome.IN_PROGRESS
    with pytest.raises(SiiRetryableError):
        r.parse_boleta_status("<html>503</html>")
    with pytest.raises(SiiProtocolError):  # no state: a retry, not a verdict
        r.parse_boleta_status("{}")
    with pytest.raises(SiiRefused) as refused:  # a readable reason, not a JSON dump
        r.parse_boleta_upload('{"codigo": 400, "descripcion": "<b>Rut</b> invalido"}')
    assert refused.value.glosa == "Rut invalido"


def test_boleta_document_status():
    assert r.parse_boleta_document_status('{"estado": "DOK"}').state is r.DocumentState.ACCEPTED
    assert r.parse_boleta_document_status('{"estado": "FAU"}').state is r.DocumentState.UNKNOWN
