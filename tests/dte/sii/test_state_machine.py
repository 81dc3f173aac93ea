"""The envelope's state machine, driven by the SII's recorded answers
(../shared/sii/samples/responses/ and hand-made variants) through a client that replays them:
no HTTP, every transition checked and recorded."""

from pathlib import Path

import pytest

from dte import sending, services
from dte.core.domain import (
    ALLOWED_TRANSITIONS,
    ENVELOPE_TRANSITIONS,
    DteStatus,
    EnvelopeState,
    can_transition,
    envelope_can_transition,
)
from dte.models import Dte, Envelope
from dte.sii import auth, config
from dte.sii import responses as r
from dte.sii.errors import SiiRetryableError
from tests.dte.sii.conftest import make_drafts

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "sii" / "samples" / "responses"
NS = 'xmlns:SII="http://www.sii.cl/XMLSchema"'


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def est_up(estado: str, glosa: str = "") -> bytes:
    return (
        f"<SII:RESPUESTA {NS}><SII:RESP_HDR><ESTADO>{estado}</ESTADO><GLOSA>{glosa}</GLOSA>"
        "</SII:RESP_HDR></SII:RESPUESTA>"
    ).encode()


def est_dte(estado: str) -> bytes:
    header = f"<SII:RESP_HDR><ESTADO>{estado}</ESTADO></SII:RESP_HDR>"
    return f"<SII:RESPUESTA {NS}>{header}</SII:RESPUESTA>".encode()


# ---------------------------------------------------------------- the tables themselves


def test_only_a_verdict_rejects_a_document():
    assert not can_transition(DteStatus.QUEUED, DteStatus.REJECTED)
    assert not can_transition(DteStatus.NEEDS_ATTENTION, DteStatus.REJECTED)
    sources = {s for s, targets in ALLOWED_TRANSITIONS.items() if DteStatus.REJECTED in targets}
    assert sources == {DteStatus.SENT}


def test_envelope_transitions():
    terminal = {s for s, targets in ENVELOPE_TRANSITIONS.items() if not targets}
    assert terminal == {EnvelopeState.PROCESSED, EnvelopeState.REJECTED, EnvelopeState.SUPERSEDED}
    # re-enveloping happens only to an envelope a person is looking at
    assert {s for s, t in ENVELOPE_TRANSITIONS.items() if EnvelopeState.SUPERSEDED in t} == {
        EnvelopeState.NEEDS_ATTENTION
    }
    # an unanswered upload is asked about before any new upload
    assert envelope_can_transition(EnvelopeState.UPLOADING, EnvelopeState.UNCERTAIN)
    assert not envelope_can_transition(EnvelopeState.UNCERTAIN, EnvelopeState.UPLOADING)
    assert envelope_can_transition(EnvelopeState.UNCERTAIN, EnvelopeState.QUEUED)
    # every state is reachable from QUEUED
    seen, todo = set(), [EnvelopeState.QUEUED]
    while todo:
        state = todo.pop()
        if state not in seen:
            seen.add(state)
            todo.extend(ENVELOPE_TRANSITIONS[state])
    assert seen == set(EnvelopeState)


# ---------------------------------------------------------------- replayed answers


class Replay:
    """A client whose every call answers with the next recorded answer of its operation."""

    def __init__(self, **answers):
        self.answers = {name: list(values) for name, values in answers.items()}
        self.calls: list[str] = []

    def _next(self, operation: str, parse):
        self.calls.append(operation)
        answer = self.answers[operation].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return parse(answer)

    def upload(self, xml, **kw):
        return self._next("upload", r.parse_upload)

    def boleta_upload(self, xml, **kw):
        return self._next("boleta_upload", r.parse_boleta_upload)

    def get_est_up(self, **kw):
        return self._next("getEstUp", r.parse_est_up)

    def boleta_status(self, **kw):
        return self._next("boleta_status", r.parse_boleta_status)

    def get_est_dte(self, **kw):
        return self._next("getEstDte", r.parse_est_dte)

    def boleta_document_status(self, **kw):
        return self._next("boleta_estado", r.parse_boleta_document_status)


@pytest.fixture
def replay(monkeypatch, settings):
    settings.SII_POLL_INTERVAL = 0
    holder = {}
    monkeypatch.setattr(config, "client", lambda env: holder["client"])
    monkeypatch.setattr(auth, "get_token", lambda *a, **k: "TOKEN")
    forgotten = []
    monkeypatch.setattr(auth, "forget_token", lambda *a, **k: forgotten.append(k))

    def use(**answers) -> Replay:
        holder["client"] = Replay(**answers)
        holder["forgotten"] = forgotten
        return holder["client"]

    return use


def batch(company, clerk, tipo=33, n=1) -> tuple[Envelope, list[Dte]]:
    drafts = make_drafts(company, clerk, tipo=tipo, n=n)
    _, (envelope,) = services.dte_issue_many(documents=drafts, actor=clerk)
    return envelope, list(Dte.objects.filter(envelope=envelope).order_by("pk"))


def states(envelope: Envelope) -> tuple[str, list[str]]:
    envelope.refresh_from_db()
    return envelope.status, list(envelope.dtes.order_by("pk").values_list("status", flat=True))


def flow(envelope: Envelope) -> list[str]:
    return list(envelope.events.values_list("status", flat=True))


def test_upload_ok_then_epr_accepted(db, issuer, clerk, replay):
    envelope, _ = batch(issuer, clerk)
    replay(
        upload=[sample("dteupload_RECEPCIONDTE_ok.xml")],
        getEstUp=[sample("queryestup_minus11_pending.xml"), sample("queryestup_EPR_accepted.xml")],
    )
    assert sending.envelope_send(envelope.pk).status == "sent"
    assert Envelope.objects.get(pk=envelope.pk).track_id == "39"
    assert sending.envelope_refresh(envelope.pk).status == "in_progress"  # -11 / ERR_CODE 2
    sending.envelope_refresh(envelope.pk)
    assert states(envelope) == ("processed", ["accepted"])
    assert flow(envelope) == ["queued", "uploading", "sent", "processed"]
    assert envelope.events.last().sii_code == "EPR"


def test_upload_refused_for_its_schema_needs_attention_not_rejection(db, issuer, clerk, replay):
    envelope, dtes = batch(issuer, clerk)
    replay(upload=[sample("dteupload_RECEPCIONDTE_schema_error.xml")])
    step = sending.envelope_send(envelope.pk)
    assert step.status == "needs_attention"
    assert states(envelope) == ("needs_attention", ["needs_attention"])
    assert envelope.sii_estado == "UPLOAD-7"
    assert "no revisó los documentos" in envelope.last_error
    assert dtes[0].events.last().sii_code == "UPLOAD-7"


def test_token_refused_at_upload_is_a_retry_with_a_new_token(db, issuer, clerk, replay):
    envelope, _ = batch(issuer, clerk)
    replay(upload=[sample("dteupload_RECEPCIONDTE_not_authenticated.xml")])
    step = sending.envelope_send(envelope.pk)
    assert step.status == "retry"
    assert states(envelope) == ("queued", ["queued"])
    assert flow(envelope) == ["queued", "uploading", "queued"]


def test_status_99_without_track_id_follows_the_documents(db, issuer, clerk, replay):
    envelope, _ = batch(issuer, clerk, n=2)
    replay(
        upload=[b"<RECEPCIONDTE><STATUS>99</STATUS></RECEPCIONDTE>"],
        getEstDte=[
            sample("queryestdte_DOK_shape.xml"),
            est_dte("FAU"),
            sample("queryestdte_DOK_shape.xml"),
        ],
    )
    assert sending.envelope_send(envelope.pk).status == "sent"
    envelope.refresh_from_db()
    assert envelope.follow_documents and not envelope.track_id
    sending.envelope_refresh(envelope.pk)  # one accepted, one not reported yet
    assert states(envelope) == ("sent", ["accepted", "sent"])
    sending.envelope_refresh(envelope.pk)
    assert states(envelope) == ("processed", ["accepted", "accepted"])


@pytest.mark.parametrize("estado", ["RCT", "RSC", "RFR", "RCO", "VOF"])
def test_envelope_refused_unjudged_needs_attention(db, issuer, clerk, replay, estado):
    envelope, _ = batch(issuer, clerk)
    replay(
        upload=[sample("dteupload_RECEPCIONDTE_ok.xml")],
        getEstUp=[sample("queryestup_RCT_rejected.xml") if estado == "RCT" else est_up(estado)],
    )
    sending.envelope_send(envelope.pk)
    sending.envelope_refresh(envelope.pk)
    assert states(envelope) == ("needs_attention", ["needs_attention"])
    assert envelope.sii_estado == estado
    assert envelope.events.last().sii_code == estado


def test_repeated_envelope_follows_the_original(db, issuer, clerk, replay):
    envelope, _ = batch(issuer, clerk)
    replay(
        upload=[sample("dteupload_RECEPCIONDTE_ok.xml")],
        getEstUp=[est_up("RPT", "Repetido Rechazado")],
        getEstDte=[sample("queryestdte_DOK_shape.xml")],
    )
    sending.envelope_send(envelope.pk)
    assert sending.envelope_refresh(envelope.pk).status == "repeated"
    assert states(envelope) == ("sent", ["sent"])
    sending.envelope_refresh(envelope.pk)
    assert states(envelope) == ("processed", ["accepted"])


def test_counts_rejected_ask_each_document_first(db, issuer, clerk, replay):
    """EPR with rejections: a document the SII holds accepted (DOK: it came in an earlier
    submission) is accepted; the others are rejected with the SII's counts as reason."""
    envelope, _ = batch(issuer, clerk, n=2)
    replay(
        upload=[sample("dteupload_RECEPCIONDTE_ok.xml")],
        getEstUp=[sample("queryestup_EPR_multitype_rejected.xml")],
        getEstDte=[sample("queryestdte_DOK_shape.xml"), est_dte("FAU")],
    )
    sending.envelope_send(envelope.pk)
    sending.envelope_refresh(envelope.pk)
    assert states(envelope) == ("processed", ["accepted", "rejected"])
    rejected = envelope.dtes.order_by("pk").last()
    assert "4 rechazados" in rejected.events.last().message


def test_a_failed_lookup_is_never_a_verdict(db, issuer, clerk, replay):
    envelope, _ = batch(issuer, clerk, n=1)
    replay(
        upload=[sample("dteupload_RECEPCIONDTE_ok.xml")],
        getEstUp=[sample("queryestup_EPR_multitype_rejected.xml")] * 2,
        getEstDte=[
            SiiRetryableError("El SII no está disponible (getEstDte, HTTP 500)."),
            est_dte("FAU"),
        ],
    )
    sending.envelope_send(envelope.pk)
    assert sending.envelope_refresh(envelope.pk).status == "in_progress"
    assert states(envelope) == ("sent", ["sent"])
    assert "HTTP 500" in envelope.last_error
    sending.envelope_refresh(envelope.pk)
    assert states(envelope) == ("processed", ["rejected"])
    assert envelope.last_error == ""  # cleared once the SII answered


def test_boletas_take_the_per_document_list(db, issuer, clerk, replay):
    envelope, dtes = batch(issuer, clerk, tipo=39, n=3)
    Dte.objects.filter(pk=dtes[1].pk).update(folio=1202)  # the one the SII's sample rejects
    replay(
        boleta_upload=[sample("boleta_rest_envio_response.json")],
        boleta_status=[sample("boleta_rest_envio_status_response.json")],
        boleta_estado=[b'{"estado": "FAU"}'],
    )
    sending.envelope_send(envelope.pk)
    sending.envelope_refresh(envelope.pk)
    assert states(envelope) == ("processed", ["accepted", "rejected", "accepted"])
    reason = Dte.objects.get(pk=dtes[1].pk).events.last()
    assert (reason.sii_code, reason.message) == (
        "RCH",
        "Valor Detalle Distinto a Precio * Cantidad",
    )


def test_an_invalid_transition_is_refused(db, issuer, clerk, replay):
    envelope, _ = batch(issuer, clerk)
    envelope.refresh_from_db()
    envelope.status = EnvelopeState.PROCESSED
    envelope.save()
    with pytest.raises(sending.InvalidTransition):
        sending.envelope_move(envelope, EnvelopeState.QUEUED, "no")


def test_without_a_worker_the_follow_up_sleeps_until_each_question_is_due(
    db, issuer, clerk, replay, settings, monkeypatch
):
    """No busy polling: the in-process follow-up waits for next_attempt_at between questions,
    and gives up once the next one is beyond SII_INPROCESS_FOLLOW."""
    import time

    settings.SII_POLL_INTERVAL = 5
    settings.SII_POLL_FIRST = 1
    settings.SII_INPROCESS_FOLLOW = 60
    envelope, _ = batch(issuer, clerk, n=2)
    replay(
        upload=[sample("dteupload_RECEPCIONDTE_ok.xml")] * 2,
        getEstUp=[est_up("SOK"), est_up("SOK"), sample("queryestup_EPR_accepted.xml")],
    )
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    step = sending.follow_in_process(envelope.pk, sending.envelope_send(envelope.pk))
    assert step.status == "accepted"
    # One per question: the first soon after the upload, then doubling (SII_POLL_FIRST 1 s).
    expected = [1, 2, 4]
    assert len(slept) == 3, slept
    assert all(e - 0.5 < s <= e for s, e in zip(slept, expected, strict=True)), slept
    # A follow-up whose next question is beyond the limit leaves it to the beat / dte_outbox.
    settings.SII_INPROCESS_FOLLOW = 0.5
    other, _ = batch(issuer, clerk)
    slept.clear()
    step = sending.follow_in_process(other.pk, sending.envelope_send(other.pk))
    assert step.status == "sent" and slept == []
