"""HTTP edges of the sandbox SII: parse the request, apply a pending fault, call one operation,
write the SII's answer. Mounted under /_sii/ (ops/urls.py) when SII_ENV=sandbox.

The upload endpoints (DTEUpload and boleta.electronica.envio) refuse a User-Agent that is not a
browser's (without "Mozilla"), as the SII does: DTEUpload with its generic HTML error page and
no STATUS, the boletas API with HTTP 401. Nothing is registered. The SOAP services and the other
boletas endpoints take any agent (SII_BEHAVIOUR.md).
"""

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dte.sandbox import answers, auth, conf, faults, operations, processing, rcv, soap
from dte.sandbox.models import Channel, Fault
from dte.sandbox.processing import UploadRefused

XML = "text/xml; charset=utf-8"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
Operation = Callable[[dict[str, str]], str]
BROWSER_MARK = "mozilla"

# How an endpoint speaks, for the faults that replace its answer.
SOAP, UPLOAD, REST = "soap", "upload", "rest"

# Service → operation (also its name for faults) → (handler, answer to a "bad_token" fault).
SOAP_SERVICES: dict[str, dict[str, tuple[Operation, Callable[[], str]]]] = {
    "CrSeed": {"getSeed": (operations.get_seed, answers.seed_error)},
    "GetTokenFromSeed": {
        "getToken": (
            operations.get_token,
            lambda: answers.token_error("-3", "Error de autenticacion (falla simulada)"),
        )
    },
    "QueryEstUp": {"getEstUp": (operations.get_est_up, lambda: answers.estup_token_error("001"))},
    "QueryEstDte": {
        "getEstDte": (operations.get_est_dte, lambda: answers.estdte_token_error("001"))
    },
}


# --- Faults ---------------------------------------------------------------------------------


def _maintenance() -> HttpResponse:
    page = HttpResponse(answers.MAINTENANCE_HTML, status=503, content_type=HTML)
    page["Retry-After"] = "30"
    return page


def _server_error(style: str) -> HttpResponse:
    if style == SOAP:
        body = soap.fault("Server", answers.SERVER_ERROR_FAULT)
        return HttpResponse(body, status=500, content_type=XML)
    return HttpResponse(answers.SERVER_ERROR_TEXT, status=500, content_type=TEXT)


def _garbage(style: str) -> HttpResponse:
    return HttpResponse(answers.GARBAGE, content_type=JSON if style == REST else XML)


def _bad_gateway() -> HttpResponse:
    return HttpResponse(answers.BAD_GATEWAY_HTML, status=502, content_type=HTML)


def _not_found() -> HttpResponse:
    return JsonResponse({"codigo": 404, "descripcion": "Recurso no encontrado"}, status=404)


def _gate(operation: str, style: str) -> tuple[Fault | None, HttpResponse | None]:
    """Take a pending fault for `operation`. timeout and slow sleep and let the call go on;
    html503, http500, garbage and not_found answer at once, in place of the call; bad_token
    and lost are the caller's to apply (the fault is returned)."""
    fault = faults.fault_take(operation)
    if fault is None:
        return None, None
    if fault.kind in ("timeout", "slow"):
        time.sleep(conf.timeout_sleep() if fault.kind == "timeout" else conf.slow_sleep())
        return None, None
    early: dict[str, Callable[[], HttpResponse]] = {
        "html503": _maintenance,
        "http500": lambda: _server_error(style),
        "garbage": lambda: _garbage(style),
        "not_found": _not_found,
    }
    if fault.kind in early:
        return fault, early[fault.kind]()
    return fault, None


def _delivered(fault: Fault | None, response: HttpResponse, style: str) -> HttpResponse:
    """The answer as the client gets it: lost (after the work was done) under a "lost" fault."""
    if fault is None or fault.kind != "lost":
        return response
    return _bad_gateway() if style == UPLOAD else _server_error(style)


def _token_cookie(request: HttpRequest) -> str | None:
    return request.COOKIES.get("TOKEN")


def _browser(request: HttpRequest) -> bool:
    return BROWSER_MARK in request.headers.get("User-Agent", "").lower()


# --- SOAP -----------------------------------------------------------------------------------


@csrf_exempt
@require_http_methods(["GET", "POST"])
def soap_service(request: HttpRequest, service: str) -> HttpResponse:
    if request.method == "GET":
        if any(key.lower() == "wsdl" for key in request.GET):
            location = request.build_absolute_uri(request.path)
            return HttpResponse(soap.wsdl(service, location), content_type=XML)
        return HttpResponse(
            f"<h1>{service}</h1><p>Hi there, this is an AXIS service!</p>", content_type="text/html"
        )
    try:
        call = soap.parse_call(request.body)
    except soap.SoapError as exc:
        return HttpResponse(soap.fault("Client", str(exc)), status=500, content_type=XML)
    known = SOAP_SERVICES[service]
    if call.operation not in known:
        message = f"No such operation '{call.operation}'"
        return HttpResponse(soap.fault("Client", message), status=500, content_type=XML)
    handler, bad_token = known[call.operation]
    fault, early = _gate(call.operation, SOAP)
    if early is not None:
        return early
    value = bad_token() if fault is not None and fault.kind == "bad_token" else handler(call.params)
    answer = HttpResponse(soap.response(service, call.operation, value), content_type=XML)
    return _delivered(fault, answer, SOAP)


# --- RCV: registro de aceptación o reclamo (JAX-WS, rpc/literal) ------------------------------

RCV_SERVICE = "RegistroReclamoDteService"
# What the SII answers for a missing, unknown or expired token: a Fault, not a codResp (Odoo's
# l10n_cl_edi_util.py, SII_BEHAVIOUR.md).
RCV_TOKEN_FAULT = "Error de Autenticacion: TOKEN invalido"


def _soap_fault(code: str, message: str) -> HttpResponse:
    return HttpResponse(soap.fault(code, message), status=500, content_type=XML)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def rcv_service(request: HttpRequest) -> HttpResponse:
    """ingresarAceptacionReclamoDoc, listarEventosHistDoc, consultarFechaRecepcionSii and
    getVersion, with the token as the cookie TOKEN (a SOAP token, as DTEWS's)."""
    if request.method == "GET":
        if any(key.lower() == "wsdl" for key in request.GET):
            location = request.build_absolute_uri(request.path)
            return HttpResponse(soap.wsdl(RCV_SERVICE, location), content_type=XML)
        return HttpResponse(
            "<h1>RegistroReclamoDteServiceEndpointService</h1><p>Web Services (SII de pruebas)</p>",
            content_type="text/html",
        )
    try:
        call = soap.parse_call(request.body)
    except soap.SoapError as exc:
        return _soap_fault("Client", str(exc))
    handler = rcv.OPERATIONS.get(call.operation)
    if handler is None:
        return _soap_fault(
            "Client", f"Operación no disponible en el SII de pruebas: {call.operation}"
        )
    fault, early = _gate(call.operation, SOAP)
    if early is not None:
        return early
    token = auth.token_check(_token_cookie(request), Channel.DTE)
    if (fault is not None and fault.kind == "bad_token") or token.error:
        return _soap_fault("Server", RCV_TOKEN_FAULT)
    parts = rcv.answer_xml(handler(call.params, token.rut))
    answer = HttpResponse(soap.literal_response(call.operation, parts), content_type=XML)
    return _delivered(fault, answer, SOAP)


# --- DTEUpload ------------------------------------------------------------------------------


@csrf_exempt
@require_POST
def dte_upload(request: HttpRequest) -> HttpResponse:
    if not _browser(request):
        return HttpResponse(answers.UPLOAD_ERROR_HTML, content_type=HTML)
    archivo = request.FILES.get("archivo")
    file_name = archivo.name if archivo is not None else ""
    post = request.POST

    def answer(status: int, track_id: int | None = None, error: str = "") -> HttpResponse:
        body = answers.recepcion(
            rut_sender=f"{post.get('rutSender', '')}-{post.get('dvSender', '')}",
            rut_company=f"{post.get('rutCompany', '')}-{post.get('dvCompany', '')}",
            file_name=file_name or "",
            status=status,
            track_id=track_id,
            error=error,
        )
        return HttpResponse(body, content_type=XML)

    fault, early = _gate("upload", UPLOAD)
    if early is not None:
        return early
    token = auth.token_check(_token_cookie(request), Channel.DTE)
    if (fault is not None and fault.kind == "bad_token") or token.error:
        return answer(5)
    try:
        rut_sender, rut_company, data = _upload_input(request, token.rut)
    except UploadRefused as refused:
        return answer(refused.status, error=refused.detail or answers.UPLOAD_ERRORS[refused.status])
    received = processing.envelope_receive(
        channel=Channel.DTE,
        rut_sender=rut_sender,
        rut_company=rut_company,
        file_name=file_name,
        data=data,
    )
    if received.duplicate:
        original = received.envelope.track_id if conf.repeat_track_id() else None
        return _delivered(fault, answer(99, original, answers.UPLOAD_ERRORS[99]), UPLOAD)
    return _delivered(fault, answer(0, received.envelope.track_id), UPLOAD)


def _upload_input(request: HttpRequest, token_rut: str | None) -> tuple[str, str, bytes]:
    """The sender and company RUTs and the file's XML bytes; UploadRefused when unusable."""
    post = request.POST
    rut_sender = processing.rut_of(post.get("rutSender"), post.get("dvSender"))
    rut_company = processing.rut_of(post.get("rutCompany"), post.get("dvCompany"))
    if rut_sender != token_rut:
        raise UploadRefused(1, f"Usuario {rut_sender} sin permiso de envio (token de {token_rut})")
    archivo = request.FILES.get("archivo")
    if archivo is None:
        raise UploadRefused(-1, "Falta el archivo (campo archivo)")
    return rut_sender, rut_company, processing.file_bytes(archivo.read())


# --- Boletas REST ---------------------------------------------------------------------------


def _json(answer: tuple[int, dict[str, object]]) -> JsonResponse:
    status, payload = answer
    return JsonResponse(payload, status=status, json_dumps_params={"ensure_ascii": False})


def _boleta_gate(operation: str, style: str = REST) -> tuple[Fault | None, HttpResponse | None]:
    """A pending fault for a boletas call: its early answer (a token fault is HTTP 401)."""
    fault, early = _gate(operation, style)
    if early is None and fault is not None and fault.kind == "bad_token":
        return fault, _json(operations.unauthorized())
    return fault, early


@csrf_exempt
@require_GET
def boleta_seed(request: HttpRequest) -> HttpResponse:
    fault, early = _boleta_gate("boleta_seed")
    if early is not None:
        return early
    seed = auth.seed_create(Channel.BOLETA)
    answer = HttpResponse(answers.seed_ok(seed), content_type="application/xml")
    return _delivered(fault, answer, REST)


@csrf_exempt
@require_POST
def boleta_token(request: HttpRequest) -> HttpResponse:
    fault, early = _boleta_gate("boleta_token")
    if early is not None:
        return early
    value = operations.token_answer(request.body, Channel.BOLETA)
    return _delivered(fault, HttpResponse(value, content_type="application/xml"), REST)


@csrf_exempt
@require_POST
def boleta_envio(request: HttpRequest) -> HttpResponse:
    if not _browser(request):
        return _json(operations.unauthorized())
    fault, early = _boleta_gate("boleta_upload", UPLOAD)
    if early is not None:
        return early
    token = auth.token_check(_token_cookie(request), Channel.BOLETA)
    if token.error:
        return _json(operations.unauthorized())
    try:
        rut_sender, rut_company, data = _upload_input(request, token.rut)
    except UploadRefused as refused:
        return _json(operations.boleta_envio_refused(refused))
    archivo = request.FILES["archivo"]
    received = processing.envelope_receive(
        channel=Channel.BOLETA,
        rut_sender=rut_sender,
        rut_company=rut_company,
        file_name=archivo.name or "",
        data=data,
    )
    return _delivered(fault, _json(operations.boleta_envio_received(received.envelope)), UPLOAD)


@csrf_exempt
@require_GET
def boleta_envio_status(request: HttpRequest, envio_id: str) -> HttpResponse:
    fault, early = _boleta_gate("boleta_status")
    if early is not None:
        return early
    answer = _json(operations.boleta_envio_status(_token_cookie(request), envio_id))
    return _delivered(fault, answer, REST)


@csrf_exempt
@require_GET
def boleta_estado(request: HttpRequest, boleta_id: str) -> HttpResponse:
    fault, early = _boleta_gate("boleta_estado")
    if early is not None:
        return early
    query = {key: request.GET.get(key, "") for key in request.GET}
    answer = _json(operations.boleta_estado(_token_cookie(request), boleta_id, query))
    return _delivered(fault, answer, REST)


# --- Control (sandbox only) -----------------------------------------------------------------


def _payload(request: HttpRequest) -> dict[str, Any]:
    payload = json.loads(request.body or b"{}")
    if not isinstance(payload, dict):
        raise faults.FaultError("Se espera un objeto JSON.")
    return payload


def staff_only(
    view: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """The control endpoints change how the SII answers everyone: a staff session only, with
    Django's CSRF check (not exempt like the SII's own endpoints)."""

    def wrapper(request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            message = "Solo el personal (sesión de staff) puede controlar el SII de pruebas."
            return JsonResponse({"error": message}, status=403)
        return view(request)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@staff_only
@require_http_methods(["GET", "POST"])
def control_faults(request: HttpRequest) -> HttpResponse:
    """GET: the pending faults. POST {"operation", "kind", "count", "code", "glosa",
    "per_document"}: add one."""
    if request.method == "GET":
        return JsonResponse({"faults": [faults.to_dict(f) for f in faults.faults_pending()]})
    try:
        payload = _payload(request)
        spec = faults.FaultSpec(
            operation=str(payload.get("operation", "")),
            kind=str(payload.get("kind", "")),
            count=payload.get("count", 1),
            code=str(payload.get("code") or ""),
            glosa=str(payload.get("glosa") or ""),
            per_document=bool(payload.get("per_document", False)),
        )
        fault = faults.fault_add(spec)
    except (ValueError, faults.FaultError) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"fault": faults.to_dict(fault)}, status=201)


@staff_only
@require_POST
def control_reset(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"cleared": faults.faults_clear()})


@staff_only
@require_POST
def control_reception(request: HttpRequest) -> HttpResponse:
    """POST {"rut_emisor", "tipo", "folio", "days"} or {…, "received_at": ISO 8601}: move the
    SII's reception time of a received document (`days` earlier, or to `received_at`), so that
    the RCV's 8 days run out."""
    try:
        payload = _payload(request)
        days, moment = payload.get("days"), payload.get("received_at")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int | float)):
            raise faults.FaultError("days debe ser un número.")
        received_at = None
        if moment is not None:
            received_at = datetime.fromisoformat(str(moment))
        new_time = rcv.document_age(
            rut_emisor=str(payload.get("rut_emisor") or ""),
            tipo_dte=int(payload.get("tipo") or 0),
            folio=int(payload.get("folio") or 0),
            days=days,
            received_at=received_at,
        )
    except LookupError as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    except (ValueError, TypeError, faults.FaultError) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"received_at": new_time.isoformat()})


@staff_only
@require_POST
def control_process(request: HttpRequest) -> HttpResponse:
    """POST {} or {"track_id": N}: end the processing time of the envelopes still being
    processed (or of one), so that their verdicts show now."""
    try:
        payload = _payload(request)
        track_id = payload.get("track_id")
        if track_id is not None and (isinstance(track_id, bool) or not isinstance(track_id, int)):
            raise faults.FaultError("track_id debe ser un número entero.")
    except (ValueError, faults.FaultError) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"released": processing.envelopes_release(track_id=track_id)})
