"""Certification libros (dte.libro_sending) to the SII and back, over real HTTP against the local
SII sandbox (served by the live server): a signed LibroCompraVenta or LibroGuia is uploaded like
an envelope, followed with getEstUp, and ends accepted (LOK) or rejected with the sandbox's
glosa; transport trouble is retried, refusals wait for a person, the beat tick picks up what is
due. Also the client's reader of a libro's getEstUp answer, and dte.core.verify.verify_libro."""

import re
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

import pytest
from django.core.management import call_command
from django.utils import timezone

from dte import libro_sending
from dte.core.certificate import Certificate as SigningCertificate
from dte.core.certificate import load_pkcs12
from dte.core.domain import Resolucion
from dte.core.libro import (
    AnuladoGuia,
    CaratulaLibro,
    DetalleGuia,
    DetalleLibro,
    FacturaDeGuia,
    TipoOperacion,
    build_libro_compra_venta,
    build_libro_guia,
)
from dte.core.verify import verify_libro
from dte.models import Certificate, CertificationLibro, LibroKind
from dte.sii import responses as r
from dte.sii.errors import SiiRefused, SiiRetryableError, SiiTokenError
from tests.dte.fixtures import CERT_PASSWORD, KEYS

OTHER_COMPANY = "77879240-0"
PROVEEDOR = "96790240-3"
NS = 'xmlns:SII="http://www.sii.cl/XMLSchema"'


@cache
def signer() -> SigningCertificate:
    return load_pkcs12((KEYS / "firmante_12345678-5.p12").read_bytes(), CERT_PASSWORD)


def _day() -> date:
    return timezone.localdate().replace(day=5)


def libro_bytes(company, kind: str = LibroKind.COMPRA, *, rut_emisor: str | None = None) -> bytes:
    """A signed libro of `company` for this month, as the certification builds it (dte.core.libro,
    tests/dte/core/test_libro.py): compras with a paper factura, an electronic one with IVA of
    common use and a nota de crédito; or guías with a traslado interno, a sale invoiced in the
    period and a guía annulled after it was sent."""
    day = _day()
    caratula = CaratulaLibro(
        rut_emisor=rut_emisor or company.rut,
        rut_envia=signer().require_rut(),
        periodo=f"{day:%Y-%m}",
        resolucion=Resolucion(company.resolution_date, company.resolution_number),
        tipo_operacion=TipoOperacion.COMPRA if kind == LibroKind.COMPRA else None,
        folio_notificacion=2 if kind == LibroKind.COMPRA else 1,
    )
    now = timezone.now()
    if kind == LibroKind.COMPRA:
        rows = [
            DetalleLibro(30, 118, day, PROVEEDOR, "Comercial Ñandú Ltda.", monto_neto=17452),
            DetalleLibro(33, 56, day, PROVEEDOR, monto_exento=6120, monto_neto=9033),
            DetalleLibro(33, 402, day, PROVEEDOR, monto_neto=31270, iva_uso_comun=True),
            DetalleLibro(60, 377, day, PROVEEDOR, "Comercial Ñandú Ltda.", monto_neto=1984),
        ]
        return build_libro_compra_venta(
            caratula, rows, key=signer(), timestamp=now, factor_proporcionalidad=Decimal("0.55")
        )
    guias = [
        DetalleGuia(1, tipo_operacion=5, fecha=day, rut=company.rut),
        DetalleGuia(
            2,
            tipo_operacion=1,
            fecha=day,
            rut=OTHER_COMPANY,
            monto_neto=1139490,
            factura=FacturaDeGuia(33, 7, day),
        ),
        DetalleGuia(
            3,
            tipo_operacion=1,
            fecha=day,
            rut=OTHER_COMPANY,
            monto_neto=1780281,
            anulado=AnuladoGuia.ANULADA,
        ),
    ]
    return build_libro_guia(caratula, guias, key=signer(), timestamp=now)


def make_libro(company, kind: str = LibroKind.COMPRA, *, xml: bytes | None = None):
    certificate = Certificate.objects.get(company=company, is_active=True)
    return CertificationLibro.objects.create(
        company=company,
        kind=kind,
        periodo=f"{_day():%Y-%m}",
        xml=xml if xml is not None else libro_bytes(company, kind),
        certificate=certificate,
    )


def tampered(data: bytes) -> bytes:
    """One byte changed after signing: the schema still holds, the signature does not."""
    changed = re.sub(rb"<MntTotal>(\d)", rb"<MntTotal>9\1", data, count=1)
    assert changed != data
    return changed


def run_libros(rounds: int = 20, *, ahead: float = 3600) -> None:
    """What the beat tick and the workers do for libros, in this process, until nothing is
    left: each round runs whatever is due within `ahead` seconds (backoff included)."""
    for _ in range(rounds):
        to_send, to_poll = libro_sending.libro_claim(timezone.now() + timedelta(seconds=ahead))
        if not to_send and not to_poll:
            return
        for libro_id in to_send:
            libro_sending.libro_send(libro_id)
        for libro_id in to_poll:
            libro_sending.libro_refresh(libro_id)


def received(libro: CertificationLibro):
    from dte.sandbox.models import ReceivedEnvelope

    return ReceivedEnvelope.objects.filter(track_id=int(libro.track_id))


def fault(operation: str, kind: str, count: int = 1) -> None:
    call_command("sandbox_fault", operation, kind, count=count)


# --- Over HTTP against the sandbox ------------------------------------------------------------

live = pytest.mark.django_db(transaction=True)


@live
def test_a_libro_de_compras_goes_queued_sent_accepted(sii, issuer):
    libro = make_libro(issuer)
    libro_sending.libro_enqueue(libro)  # SII_AUTO_SEND is off in tests: the beat sends it
    libro.refresh_from_db()
    assert libro.status == "queued" and libro.next_attempt_at is not None

    step = libro_sending.libro_send(libro.pk)
    libro.refresh_from_db()
    assert (step.status, libro.status, libro.attempts) == ("sent", "sent", 1)
    assert len(libro.track_id) == 10 and libro.sent_at is not None
    assert libro.track_id in step.message

    # The sandbox processes it first: -11 (ERR_CODE 2, still processing), not a verdict
    assert libro_sending.libro_refresh(libro.pk).status == "in_progress"
    libro.refresh_from_db()
    assert (libro.status, libro.sii_estado, libro.polls) == ("sent", "-11", 1)

    step = libro_sending.libro_refresh(libro.pk)
    libro.refresh_from_db()
    assert (step.status, libro.status, libro.sii_estado) == ("accepted", "accepted", "LOK")
    assert libro.sii_glosa == "Libro Cuadrado"
    assert libro.next_attempt_at is None and libro.last_error == ""
    (at_sii,) = received(libro)
    assert at_sii.kind == "LibroCompraVenta" and at_sii.company_rut == issuer.rut
    assert bytes(at_sii.file.data) == bytes(libro.xml)
    # Nothing more to do, and asking again changes nothing
    assert libro_sending.libro_claim(timezone.now() + timedelta(days=1)) == ([], [])
    assert libro_sending.libro_refresh(libro.pk).status == "accepted"
    assert libro_sending.libro_send(libro.pk).status == "accepted"


@live
def test_a_libro_de_guias_is_accepted(sii, issuer):
    libro = make_libro(issuer, LibroKind.GUIAS)
    libro_sending.libro_enqueue(libro)
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.sii_estado) == ("accepted", "LOK"), libro.last_error
    assert received(libro).get().kind == "LibroGuia"


@live
def test_enqueued_libro_is_uploaded_after_the_commit_and_followed(sii, issuer, eager_tasks):
    """With tasks eager (a laptop), the task "dte.libro_send" runs after the commit and follows
    the libro in process to its verdict."""
    sii.SII_AUTO_SEND = True
    libro = make_libro(issuer)
    libro_sending.libro_enqueue(libro)
    from erp.background import wait_for_background

    assert wait_for_background(timeout=60)
    libro.refresh_from_db()
    assert (libro.status, libro.sii_estado) == ("accepted", "LOK"), libro.last_error


@live
def test_a_broken_signature_is_rejected_with_the_sii_glosa(sii, issuer):
    libro = make_libro(issuer, xml=tampered(libro_bytes(issuer)))
    libro_sending.libro_enqueue(libro)
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.sii_estado) == ("rejected", "LRF")
    assert libro.sii_glosa.startswith("Libro Rechazado por Error en Firma - ")
    assert "digest does not match" in libro.sii_glosa
    assert received(libro).get().outcome_glosa == libro.sii_glosa  # kept verbatim


@live
def test_a_libro_of_another_company_is_rejected_at_the_caratula(sii, issuer):
    libro = make_libro(issuer, xml=libro_bytes(issuer, rut_emisor=OTHER_COMPANY))
    libro_sending.libro_enqueue(libro)
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.sii_estado) == ("rejected", "LRC")
    assert libro.sii_glosa.startswith("Libro Rechazado por Error en Caratula - ")
    assert f"RutEmisorLibro {OTHER_COMPANY} no es la empresa del envío ({issuer.rut})" in (
        libro.sii_glosa
    )


@live
def test_a_libro_signed_by_another_holder_is_rejected_at_the_caratula(sii, issuer):
    """RutEnvia must be the certificate that signs (and uploads)."""
    data = libro_bytes(issuer).replace(b"<RutEnvia>12345678-5<", b"<RutEnvia>11111111-1<")
    libro = make_libro(issuer, xml=data)
    libro_sending.libro_enqueue(libro)
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.sii_estado) == ("rejected", "LRC")
    assert "RutEnvia 11111111-1 no es el RUT del certificado que firma" in libro.sii_glosa


@live
def test_a_libro_off_its_schema_is_rejected(sii, issuer):
    data = libro_bytes(issuer).replace(b"<TipoEnvio>TOTAL<", b"<TipoEnvio>ENTERO<")
    libro = make_libro(issuer, xml=data)
    libro_sending.libro_enqueue(libro)
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.sii_estado) == ("rejected", "LRS")
    assert libro.sii_glosa.startswith("Libro Rechazado por Error en Schema - ")


@live
def test_maintenance_on_upload_is_retried_with_backoff(sii, issuer):
    fault("upload", "html503", count=2)
    libro = make_libro(issuer)
    libro_sending.libro_enqueue(libro)
    step = libro_sending.libro_send(libro.pk)
    libro.refresh_from_db()
    assert (step.status, libro.status, libro.attempts) == ("retry", "queued", 1)
    assert "HTTP 503" in libro.last_error and "30 s" in libro.last_error  # Retry-After read
    assert libro.next_attempt_at > timezone.now() + timedelta(seconds=25)
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.attempts) == ("accepted", 3)
    assert received(libro).count() == 1


@live
def test_an_upload_whose_answer_was_lost_is_followed_not_uploaded_twice(sii, issuer):
    """The sandbox registers the upload and answers 502: the same bytes go again, the SII
    answers STATUS 99 with the first track id, and that one is followed."""
    from dte.sandbox.models import ReceivedEnvelope

    fault("upload", "lost")
    libro = make_libro(issuer)
    libro_sending.libro_enqueue(libro)
    assert libro_sending.libro_send(libro.pk).status == "retry"
    first = ReceivedEnvelope.objects.get(kind="LibroCompraVenta")
    step = libro_sending.libro_send(libro.pk)
    assert step.status == "sent" and "ya había recibido" in step.message
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.track_id) == ("accepted", str(first.track_id))
    assert ReceivedEnvelope.objects.filter(kind="LibroCompraVenta").count() == 1


@live
def test_a_failed_status_query_is_asked_again(sii, issuer):
    fault("getEstUp", "http500")
    fault("getEstUp", "garbage")
    libro = make_libro(issuer)
    libro_sending.libro_enqueue(libro)
    libro_sending.libro_send(libro.pk)
    assert libro_sending.libro_refresh(libro.pk).status == "in_progress"
    libro.refresh_from_db()
    assert libro.status == "sent" and libro.last_error  # the reason, for staff
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.sii_estado, libro.last_error) == ("accepted", "LOK", "")


@live
def test_a_refused_upload_needs_attention_then_an_admin_retries(sii, issuer, admin_user):
    """STATUS 5 even with a fresh token is a refusal: nobody uploads it again by themselves."""
    fault("upload", "bad_token", count=2)
    libro = make_libro(issuer)
    libro_sending.libro_enqueue(libro)
    step = libro_sending.libro_send(libro.pk)
    libro.refresh_from_db()
    assert (step.status, libro.status, libro.sii_estado) == (
        "needs_attention",
        "needs_attention",
        "UPLOAD-5",
    )
    assert "El SII no recibió el libro (UPLOAD-5: No está autenticado" in libro.last_error
    assert libro.next_attempt_at is None and not received_any()
    assert libro_sending.libro_claim(timezone.now() + timedelta(days=1)) == ([], [])

    libro_sending.libro_enqueue(libro, actor=admin_user)  # the admin's retry
    libro.refresh_from_db()
    assert (libro.status, libro.attempts, libro.last_error) == ("queued", 0, "")
    from erp.models import AuditEvent

    event = AuditEvent.objects.get(entity="certificationlibro", entity_id=libro.pk)
    assert event.actor == admin_user
    assert event.changes == {"status": ["needs_attention", "queued"]}
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.sii_estado) == ("accepted", "LOK")


def received_any() -> bool:
    from dte.sandbox.models import ReceivedEnvelope

    return ReceivedEnvelope.objects.exists()


@live
def test_a_libro_without_verdict_needs_attention_and_is_asked_again_on_retry(sii, issuer):
    sii.SII_MAX_POLLS = 2
    sii.SII_SANDBOX_POLLS_BEFORE_DONE = 3
    libro = make_libro(issuer)
    libro_sending.libro_enqueue(libro)
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.polls, libro.sii_estado) == ("needs_attention", 2, "-11")
    assert "Sin veredicto del SII tras 2 consultas" in libro.last_error
    track_id = libro.track_id

    # resumes asking (the task "dte.libro_refresh", after the commit), never uploads again
    libro_sending.libro_enqueue(libro)
    libro.refresh_from_db()
    assert (libro.status, libro.attempts, libro.track_id) == ("sent", 0, track_id)
    assert libro.polls <= 1  # from zero, and maybe asked once already
    run_libros()
    libro.refresh_from_db()
    assert (libro.status, libro.track_id) == ("accepted", track_id)
    assert received(libro).count() == 1


@live
def test_the_beat_tick_picks_up_due_libros(sii, issuer, eager_tasks):
    from dte import services, tasks

    due = make_libro(issuer)
    libro_sending.libro_enqueue(due)
    later = make_libro(issuer, LibroKind.GUIAS)
    libro_sending.libro_enqueue(later)
    CertificationLibro.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    result = tasks.outbox_tick()
    assert result["libros_send"] == 1 and result["send"] == 0
    due.refresh_from_db()
    later.refresh_from_db()
    # the task followed it in process (tasks eager) to its verdict; the other is not due yet
    assert (due.status, due.sii_estado) == ("accepted", "LOK")
    assert (later.status, later.attempts) == ("queued", 0)

    # a sent libro due for a question is claimed for a poll, once per lease
    CertificationLibro.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now())
    libro_sending.libro_send(later.pk)
    outbox = services.outbox_tick(timezone.now() + timedelta(seconds=1))
    assert (outbox.libros_to_send, outbox.libros_to_ask) == ([], [later.pk])
    assert services.outbox_tick().libros_to_ask == []  # leased: dispatched once
    later.refresh_from_db()
    assert later.status == "sent"


@live
def test_a_company_in_another_environment_needs_attention(sii, issuer):
    sii.SII_ENVIRONMENTS = ("sandbox",)
    libro = make_libro(issuer)
    libro_sending.libro_enqueue(libro)
    type(issuer).objects.filter(pk=issuer.pk).update(sii_environment="production")
    step = libro_sending.libro_send(libro.pk)
    libro.refresh_from_db()
    assert (step.status, libro.status) == ("needs_attention", "needs_attention")
    assert "no está habilitado" in libro.last_error and libro.attempts == 0


# --- The reader of a libro's getEstUp answer ---------------------------------------------------


def respuesta(header: str, body: str = "") -> str:
    body_xml = f"<SII:RESP_BODY>{body}</SII:RESP_BODY>" if body else ""
    return f"<SII:RESPUESTA {NS}><SII:RESP_HDR>{header}</SII:RESP_HDR>{body_xml}</SII:RESPUESTA>"


def test_lok_is_accepted():
    verdict = r.parse_libro_est_up(
        respuesta("<TRACKID>1234567890</TRACKID><ESTADO>LOK</ESTADO><GLOSA>Libro Cuadrado</GLOSA>")
    )
    assert (verdict.estado, verdict.glosa, verdict.outcome) == (
        "LOK",
        "Libro Cuadrado",
        r.LibroOutcome.ACCEPTED,
    )
    assert verdict.final


@pytest.mark.parametrize("estado", ["LRH", "LNC", "LRF", "LRS", "LRC", "LRP"])
def test_every_l_rejection_is_final_with_the_glosa_verbatim(estado):
    glosa = "Libro  Rechazado: TotMntIVA de TpoDoc 33 no cuadra (línea 12)"
    verdict = r.parse_libro_est_up(respuesta(f"<ESTADO>{estado}</ESTADO><GLOSA>{glosa}</GLOSA>"))
    assert (verdict.outcome, verdict.glosa) == (r.LibroOutcome.REJECTED, glosa)
    assert verdict.reason == "Libro Rechazado: TotMntIVA de TpoDoc 33 no cuadra (línea 12)"
    without = r.parse_libro_est_up(respuesta(f"<ESTADO>{estado}</ESTADO>"))
    assert without.glosa == "" and without.reason == r.LIBRO_REJECTED[estado]


@pytest.mark.parametrize(
    "header",
    [
        "<ESTADO>-11</ESTADO><ERR_CODE>2</ERR_CODE><SQL_CODE/><SRV_CODE/>",
        "<ESTADO>REC</ESTADO><GLOSA>Envio Recibido Conforme</GLOSA>",
        "<ESTADO>SOK</ESTADO>",
        "<ESTADO>EPR</ESTADO><GLOSA>Envio Procesado</GLOSA>",  # not a libro's verdict
        "<ESTADO>LXX</ESTADO><GLOSA>Estado nuevo</GLOSA>",  # nobody documented it
    ],
)
def test_anything_else_is_not_final(header):
    verdict = r.parse_libro_est_up(respuesta(header))
    assert verdict.outcome is r.LibroOutcome.IN_PROGRESS and not verdict.final


def test_the_sample_still_processing_answer_is_not_final():
    from tests.dte.sii.test_responses import sample

    verdict = r.parse_libro_est_up(sample("queryestup_minus11_pending.xml"))
    assert (verdict.estado, verdict.outcome) == ("-11", r.LibroOutcome.IN_PROGRESS)


def test_errors_are_those_of_get_est_up():
    with pytest.raises(SiiRefused):  # the track id is not this company's
        r.parse_libro_est_up(respuesta("<ESTADO>-11</ESTADO><ERR_CODE>1</ERR_CODE>"))
    with pytest.raises(SiiTokenError):
        r.parse_libro_est_up(respuesta("<ESTADO>002</ESTADO>"))
    with pytest.raises(SiiRetryableError):
        r.parse_libro_est_up(b"<html><body>Mantencion</body></html>")


def test_lok_keeps_the_counts_the_sii_may_send():
    verdict = r.parse_libro_est_up(
        respuesta(
            "<ESTADO>LOK</ESTADO>",
            "<TIPO_DOCTO>33</TIPO_DOCTO><INFORMADOS>2</INFORMADOS><ACEPTADOS>2</ACEPTADOS>"
            "<RECHAZADOS>0</RECHAZADOS><REPAROS>0</REPAROS>",
        )
    )
    assert verdict.outcome is r.LibroOutcome.ACCEPTED
    assert verdict.counts == (r.TypeCounts(33, 2, 2, 0, 0),)


# --- dte.core.verify.verify_libro --------------------------------------------------------------


class _Company:
    rut = "76086428-5"
    resolution_date = date(2014, 8, 22)
    resolution_number = 80


def test_verify_libro_checks_schema_and_signature():
    for kind, root in ((LibroKind.COMPRA, "LibroCompraVenta"), (LibroKind.GUIAS, "LibroGuia")):
        data = libro_bytes(_Company(), kind)
        report = verify_libro(data)
        assert report.kind == root
        assert [(c.name, c.ok) for c in report.checks] == [
            ("xml", True),
            ("schema", True),
            ("signature", True),
        ]
    broken = verify_libro(tampered(libro_bytes(_Company())))
    assert broken.check("schema").ok and not broken.check("signature").ok
    assert "EnvioLibro signature does not verify" in broken.check("signature").detail
    other = verify_libro(b'<EnvioDTE xmlns="http://www.sii.cl/SiiDte"/>')
    assert other.kind == "unknown" and not other.check("schema").ok
    assert not verify_libro(b"<LibroGuia").check("xml").ok
