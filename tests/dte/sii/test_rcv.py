"""The RCV's registro de aceptación o reclamo over real HTTP: the client (dte.sii.client) against
the sandbox SII served by the live server, with the company's SOAP token. A supplier's factura
is recorded in the sandbox SII as received (dte.sandbox.rcv.register_supplier_document); the
company (the receptor) accepts or claims it as the SII allows (SII_BEHAVIOUR.md, "RCV registro
de aceptación o reclamo")."""

from datetime import timedelta

import pytest
import zeep.exceptions
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from dte.keyring import load_certificate
from dte.sandbox import rcv
from dte.sandbox.models import Token
from dte.sii import auth, config, responses
from dte.sii.client import SiiClient, sandbox_endpoints
from dte.sii.errors import SiiRefused, SiiRetryableError, SiiTokenError
from dte.sii.responses import RcvAction

pytestmark = pytest.mark.django_db(transaction=True)

SUPPLIER = "96790240-3"
STRANGER = "77001234-1"  # neither emisor nor receptor of anything here


@pytest.fixture
def client(sii, issuer):
    return config.client("sandbox")


@pytest.fixture
def token(client, issuer):
    """The company's SOAP token, as sending gets it (seed, signed getToken, cached)."""
    row = issuer.certificates.get()
    certificate = load_certificate(row.pk, row.fingerprint)
    return auth.get_token(client, certificate, env="sandbox", boleta=False)


def supplier_invoice(receptor: str, *, folio: int = 101, tipo: int = 33, **kwargs):
    return rcv.register_supplier_document(
        rut_emisor=SUPPLIER,
        rut_receptor=receptor,
        tipo_dte=tipo,
        folio=folio,
        monto_total=119000,
        **kwargs,
    )


def act(client, token, accion, *, folio: int = 101, tipo: int = 33, emisor: str = SUPPLIER):
    return client.rcv_register_action(token, emisor, tipo, folio, accion)


def test_accept_then_receipt_of_goods(client, token, issuer):
    supplier_invoice(issuer.rut)
    accepted = act(client, token, RcvAction.ACD)
    assert (accepted.code, accepted.description) == (0, "Acción Completada OK")
    assert accepted.ok
    assert act(client, token, "ERM").ok  # the Ley 19.983 receipt, after accepting: allowed
    history = client.rcv_events(token, SUPPLIER, 33, 101)
    assert (history.code, history.listed) == (15, True)
    assert [e.code for e in history.events] == ["ACD", "ERM"]
    first = history.events[0]
    assert first.rut_responsable == "12345678-5"  # the token's holder, not the company
    assert first.description == "Acepta Contenido del Documento"
    assert first.fecha.tzinfo is not None
    assert abs(first.fecha - timezone.now()) < timedelta(minutes=1)


def test_claim(client, token, issuer):
    supplier_invoice(issuer.rut)
    claimed = act(client, token, RcvAction.RCD)
    assert claimed.ok
    (event,) = client.rcv_events(token, SUPPLIER, 33, 101).events
    assert (event.code, event.meaning) == ("RCD", responses.RCV_EVENTS["RCD"])


def test_claim_after_eight_days_is_refused_through_the_control_endpoint(client, token, issuer):
    supplier_invoice(issuer.rut)
    staff = Client()
    from tests.factories import UserFactory

    staff.force_login(UserFactory(is_staff=True))
    aged = staff.post(
        "/_sii/_control/reception",
        {"rut_emisor": SUPPLIER, "tipo": 33, "folio": 101, "days": 9},
        content_type="application/json",
    )
    assert aged.status_code == 200, aged.content
    late = act(client, token, RcvAction.RCD)
    assert late.code == 8 and not late.ok
    assert "8 días" in late.description and "8 días" in late.meaning
    # nothing was recorded; with no events and the term over, the SII lists none (8)
    history = client.rcv_events(token, SUPPLIER, 33, 101)
    assert (history.code, history.events, history.listed) == (8, [], True)


def test_within_eight_days_a_claim_is_still_taken(client, token, issuer):
    supplier_invoice(issuer.rut, received_at=timezone.now() - timedelta(days=7, hours=23))
    assert act(client, token, RcvAction.RFT).ok


def test_control_endpoint_is_for_staff_only(sii, issuer):
    supplier_invoice(issuer.rut)
    answer = Client().post(
        "/_sii/_control/reception",
        {"rut_emisor": SUPPLIER, "tipo": 33, "folio": 101, "days": 9},
        content_type="application/json",
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        ("ACD", "ACD", 7),  # the same event again
        ("RCD", "RCD", 7),
        ("ERM", "ERM", 7),
        ("RCD", "ACD", 12),  # accepting what was claimed
        ("RFP", "ERM", 6),  # a receipt of goods claimed missing
        ("ACD", "RCD", 11),  # claiming what was accepted
        ("ERM", "RFT", 13),  # claiming goods whose receipt was given
    ],
)
def test_repeated_or_contradicting_actions(client, token, issuer, first, second, code):
    supplier_invoice(issuer.rut)
    assert act(client, token, first).ok
    refused = act(client, token, second)
    assert refused.code == code, refused
    assert refused.description
    assert [e.code for e in client.rcv_events(token, SUPPLIER, 33, 101).events] == [first]


def test_refusal_names_the_claim(client, token, issuer):
    supplier_invoice(issuer.rut)
    act(client, token, "RFP")
    refused = act(client, token, "ACD")
    assert refused.code == 12 and refused.description.endswith("RFP")


def test_another_claim_after_a_claim_is_recorded(client, token, issuer):
    # the manual: a claim different from those recorded is recorded
    supplier_invoice(issuer.rut)
    assert act(client, token, "RCD").ok
    assert act(client, token, "RFT").ok


def test_not_the_receptor(client, token, issuer, other_company):
    supplier_invoice(other_company.rut)
    refused = act(client, token, RcvAction.ACD)
    assert (refused.code, refused.description) == (17, rcv.DESCRIPTIONS[17])
    history = client.rcv_events(token, SUPPLIER, 33, 101)
    assert history.code == 14 and not history.listed and history.events == []
    assert client.rcv_reception_date(token, SUPPLIER, 33, 101) is None


def test_the_emisor_may_list_the_events_but_not_act(client, token, issuer, other_company):
    # the company issued a factura to another company, which accepted it
    rcv.register_supplier_document(
        rut_emisor=issuer.rut, rut_receptor=other_company.rut, tipo_dte=33, folio=7
    )
    assert act(client, token, "ACD", folio=7, emisor=issuer.rut).code == 17
    assert client.rcv_events(token, issuer.rut, 33, 7).code == 16


def test_unknown_document(client, token, issuer):
    unknown = act(client, token, RcvAction.ACD, folio=999)
    assert (unknown.code, unknown.ok) == (9, False)
    assert client.rcv_events(token, SUPPLIER, 33, 999).code == 18
    assert client.rcv_reception_date(token, SUPPLIER, 33, 999) is None


def test_only_facturas_and_liquidaciones(client, token, issuer):
    supplier_invoice(issuer.rut, tipo=52, folio=5)  # a guía de despacho
    assert act(client, token, "ACD", tipo=52, folio=5).code == 3
    assert client.rcv_events(token, SUPPLIER, 52, 5).code == 3


def test_parameters_checked(client, token, issuer):
    supplier_invoice(issuer.rut)
    assert act(client, token, "XYZ").code == 4
    assert act(client, token, "ACD", emisor="96790240-4").code == 1  # wrong check digit


def test_event_history_oldest_first(client, token, issuer):
    supplier_invoice(issuer.rut)
    assert client.rcv_events(token, SUPPLIER, 33, 101).code == 16  # none yet
    for action in ("ERM", "ACD"):
        assert act(client, token, action).ok
    events = client.rcv_events(token, SUPPLIER, 33, 101).events
    assert [e.code for e in events] == ["ERM", "ACD"]
    assert events[0].fecha <= events[1].fecha
    assert events[0].description == "Acuse de Recibo de Mercaderías y Servicios Ley 19.983"


def test_reception_date(client, token, issuer):
    when = timezone.now().replace(microsecond=0) - timedelta(days=3, hours=2)
    supplier_invoice(issuer.rut, received_at=when)
    received = client.rcv_reception_date(token, SUPPLIER, 33, 101)
    assert received == when
    assert received.tzinfo is not None and str(received.tzinfo) == "America/Santiago"


def test_reception_is_when_its_envelope_came_in_unless_moved(client, token, issuer):
    document = supplier_invoice(issuer.rut)
    came_in = document.envelope.received_at.replace(microsecond=0)  # the SII says seconds
    assert client.rcv_reception_date(token, SUPPLIER, 33, 101) == came_in
    moved = rcv.document_age(rut_emisor=SUPPLIER, tipo_dte=33, folio=101, days=2)
    assert client.rcv_reception_date(token, SUPPLIER, 33, 101) == moved.replace(microsecond=0)


def test_token_missing_or_expired(client, token, issuer):
    supplier_invoice(issuer.rut)
    with pytest.raises(SiiTokenError, match="TOKEN invalido"):
        client.rcv_register_action("", SUPPLIER, 33, 101, "ACD")
    with pytest.raises(SiiTokenError):
        client.rcv_events("NOEXISTE", SUPPLIER, 33, 101)
    Token.objects.filter(value=token).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(SiiTokenError) as raised:
        client.rcv_register_action(token, SUPPLIER, 33, 101, "ACD")
    assert raised.value.retryable and raised.value.maybe_delivered is False
    with pytest.raises(SiiTokenError):
        client.rcv_reception_date(token, SUPPLIER, 33, 101)


def test_a_boleta_token_is_not_a_soap_token(client, issuer):
    supplier_invoice(issuer.rut)
    row = issuer.certificates.get()
    certificate = load_certificate(row.pk, row.fingerprint)
    boleta_token = auth.get_token(client, certificate, env="sandbox", boleta=True)
    with pytest.raises(SiiTokenError):
        client.rcv_register_action(boleta_token, SUPPLIER, 33, 101, "ACD")


def fault(kind: str, count: int = 1) -> None:
    call_command("sandbox_fault", "*", kind, count=count)


@pytest.mark.parametrize(
    "kind",
    [
        "html503",  # the maintenance page
        "http500",  # a SOAP Fault that is not the token's
        "garbage",  # HTTP 200, neither XML nor JSON
        "lost",  # done, then the answer is lost
    ],
)
def test_transport_faults_are_retryable(client, token, issuer, kind):
    supplier_invoice(issuer.rut)
    fault(kind)
    with pytest.raises(SiiRetryableError) as raised:
        client.rcv_register_action(token, SUPPLIER, 33, 101, "ACD")
    assert not isinstance(raised.value, SiiTokenError)
    message = raised.value.message
    assert "ingresarAceptacionReclamoDoc" in message and "<" not in message, message
    # trying again is safe: a lost action comes back as "recorded before"
    again = client.rcv_register_action(token, SUPPLIER, 33, 101, "ACD")
    assert again.code == (7 if kind == "lost" else 0)


def test_timeout_is_retryable_and_may_have_been_recorded(sii, token, issuer):
    sii.SII_SANDBOX_TIMEOUT_SLEEP = 1.5
    supplier_invoice(issuer.rut)
    impatient = SiiClient(sandbox_endpoints(sii.SII_SANDBOX_URL), timeout=0.5)
    fault("timeout")
    with pytest.raises(SiiRetryableError, match="no respondió a tiempo") as raised:
        impatient.rcv_register_action(token, SUPPLIER, 33, 101, "ACD")
    assert raised.value.maybe_delivered is True  # an action sends data: it may be recorded


def test_nobody_listening(token):
    closed = SiiClient(sandbox_endpoints("http://127.0.0.1:9/_sii"), timeout=2)
    with pytest.raises(SiiRetryableError, match="no acepta conexiones") as raised:
        closed.rcv_events(token, SUPPLIER, 33, 101)
    assert raised.value.maybe_delivered is False


def test_internal_error_code_is_retryable():
    with pytest.raises(SiiRetryableError, match="-1"):
        responses.parse_rcv_action({"codResp": -1, "descResp": "Error Interno"})


def test_parses_the_real_answer_shape():
    # listarEventosHistDoc as zeep gave it for a real document (odoo/odoo#74520)
    answer = {
        "codResp": 15,
        "descResp": "Listado de eventos del documento",
        "listaEventosDoc": [
            {
                "codEvento": "ERM",
                "descEvento": "Acuse de Recibo de Mercaderias y Servicios Ley 19.983",
                "rutResponsable": "8815557",
                "dvResponsable": "2",
                "fechaEvento": "30-07-2021 13:25:27",
            }
        ],
        "rutToken": None,
    }
    events = responses.parse_rcv_events(answer)
    (event,) = events.events
    assert (events.code, event.code, event.rut_responsable) == (15, "ERM", "8815557-2")
    assert (event.fecha.year, event.fecha.hour, event.fecha.utcoffset()) == (
        2021,
        13,
        timedelta(hours=-4),
    )
    assert responses.parse_rcv_reception_date("21-02-2017 19:02:03").day == 21
    assert responses.parse_rcv_reception_date("") is None
    with pytest.raises(SiiRefused):
        responses.parse_rcv_reception_date("Documento no ha sido recibido")


def test_the_sandbox_serves_the_wsdl(client, sii):
    import requests

    url = f"{sii.SII_SANDBOX_URL}/WSREGISTRORECLAMODTE/registroreclamodteservice?wsdl"
    wsdl = requests.get(url, timeout=5)
    assert wsdl.status_code == 200
    assert b"http://ws.registroreclamodte.diii.sdi.sii.cl" in wsdl.content
    assert url.removesuffix("?wsdl").encode() in wsdl.content  # its address points here
    assert client.endpoints.rcv_url == url.removesuffix("?wsdl")


def test_an_unknown_operation_is_a_fault(client, token):
    service = client._service("RegistroReclamoDteService", client.endpoints.rcv_url, strict=False)
    cookie = {"Cookie": f"TOKEN={token}"}
    with (
        pytest.raises(zeep.exceptions.Fault, match="no disponible"),
        service._client.settings(extra_http_headers=cookie),
    ):
        service.consultarDocDteCedible(rutEmisor="96790240", dvEmisor="3", tipoDoc="33", folio="1")


def test_register_supplier_document_refuses_a_folio_received(db, sandbox):
    supplier_invoice("76086428-5")
    with pytest.raises(ValueError, match="ya recibió"):
        supplier_invoice("76086428-5")
    with pytest.raises(ValueError, match="RUT"):
        rcv.register_supplier_document(
            rut_emisor="1-2", rut_receptor="76086428-5", tipo_dte=33, folio=1
        )


def test_register_supplier_envelope_takes_every_document(db):
    from tests.dte.sandbox.material import EMISOR_RUT, RECEPTOR, envelope, issue

    invoice, exempt = issue(33, 5), issue(34, 6)
    when = timezone.now() - timedelta(days=1)
    documents = rcv.register_supplier_envelope(envelope([invoice, exempt]), received_at=when)
    assert [(d.rut_emisor, d.rut_receptor, d.tipo_dte, d.folio) for d in documents] == [
        (EMISOR_RUT, RECEPTOR.rut, 33, 5),
        (EMISOR_RUT, RECEPTOR.rut, 34, 6),
    ]
    assert [d.monto_total for d in documents] == [invoice.monto_total, exempt.monto_total]
    assert all(rcv.reception_time(d) == when for d in documents)
    with pytest.raises(ValueError, match="documentos"):
        rcv.register_supplier_envelope(b"<EnvioDTE/>")
