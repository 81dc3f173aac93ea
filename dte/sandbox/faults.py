"""Simulated failures for tests and demos: what the SII (or the network to it) does on a bad day.

A fault is a database row, so that it works across processes. Each call of an operation takes at
most one pending fault, the oldest for that operation or for "*", decrementing it atomically
(`reject` faults are taken by the processing of an envelope instead, see fault_take).

Kinds (KINDS), for every operation unless said otherwise:
  timeout    sleep conf.timeout_sleep() (past the client's timeout), then answer normally
  slow       sleep conf.slow_sleep() (within it), then answer normally
  html503    the SII's HTML maintenance page, HTTP 503 with Retry-After: 30; nothing done
  http500    HTTP 500 with a short body (a SOAP Fault for the SOAP services, "Error 500" as
             text otherwise); nothing done
  lost       do the work (an upload is registered and processed as usual), then lose the answer:
             HTTP 502 "Bad Gateway" HTML for uploads, as http500 for the other operations
  garbage    HTTP 200 whose body is neither XML nor JSON; nothing done
  bad_token  the operation's own token error (001, STATUS 5, HTTP 401, …)
  not_found  HTTP 404 JSON, for the boletas API's boleta_status and boleta_estado only
  reject     upload/boleta_upload: the next envelope (or, per_document, its next documents) is
             rejected with `code` and `glosa` instead of the checks' verdict
"""

from dataclasses import dataclass

from django.db.models import F

from dte.sandbox.models import Fault

OPERATIONS = (
    "getSeed",
    "getToken",
    "upload",
    "getEstUp",
    "getEstDte",
    "boleta_seed",
    "boleta_token",
    "boleta_upload",
    "boleta_status",  # GET boleta.electronica.envio/{rut}-{dv}-{trackid}
    "boleta_estado",  # GET boleta.electronica/{rut}-{dv}-{tipo}-{folio}/estado
    # The RCV registro de aceptación o reclamo (receiving).
    "ingresarAceptacionReclamoDoc",
    "listarEventosHistDoc",
    "consultarFechaRecepcionSii",
)
ANY = "*"
KINDS = (
    "timeout",
    "slow",
    "html503",
    "http500",
    "lost",
    "garbage",
    "bad_token",
    "not_found",
    "reject",
)
UPLOADS = ("upload", "boleta_upload")
NOT_FOUND_OPERATIONS = ("boleta_status", "boleta_estado")
ENVELOPE_CODES = ("RSC", "RFR", "RCT", "RPT", "RCO", "RCH", "VOF")
DOCUMENT_CODES = ("RCH", "RPR", "RLV")
DEFAULT_GLOSAS = {
    "RSC": "Rechazado por Error en Schema",
    "RFR": "Rechazado por Error en Firma",
    "RCT": "Rechazado por Error en Caratula",
    "RPT": "Repetido Rechazado",
    "RCO": "Rechazado por Inconsistencia",
    "RCH": "Rechazado por Informacion",
    "VOF": "No se encontro el archivo .xml",
}
DEFAULT_DOCUMENT_GLOSA = "Rechazado por el SII (falla simulada)"


class FaultError(ValueError):
    """A fault request that makes no sense (unknown operation, kind or code)."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    operation: str
    kind: str
    count: int = 1
    code: str = ""
    glosa: str = ""
    per_document: bool = False


def validate(spec: FaultSpec) -> FaultSpec:
    """The spec with defaults filled in; FaultError (Spanish message) when it is not valid."""
    if spec.operation not in (*OPERATIONS, ANY):
        allowed = ", ".join((*OPERATIONS, ANY))
        raise FaultError(f"Operación desconocida {spec.operation!r}; use una de: {allowed}.")
    if spec.kind not in KINDS:
        raise FaultError(
            f"Tipo de falla desconocido {spec.kind!r}; use uno de: {', '.join(KINDS)}."
        )
    if not isinstance(spec.count, int) or spec.count < 1:
        raise FaultError("La cantidad (count) debe ser un entero mayor o igual a 1.")
    if spec.kind != "reject":
        if spec.code or spec.glosa or spec.per_document:
            raise FaultError("code, glosa y per_document solo se usan con el tipo 'reject'.")
        if spec.kind == "not_found" and spec.operation not in NOT_FOUND_OPERATIONS:
            allowed = " o ".join(NOT_FOUND_OPERATIONS)
            raise FaultError(f"El tipo 'not_found' solo se aplica a {allowed}.")
        return spec
    if spec.operation not in (*UPLOADS, ANY):
        raise FaultError("El tipo 'reject' solo se aplica a upload, boleta_upload o '*'.")
    return _with_reject_defaults(spec)


def _with_reject_defaults(spec: FaultSpec) -> FaultSpec:
    code = spec.code.upper()
    if spec.per_document:
        code = code or "RCH"
        if code not in DOCUMENT_CODES:
            raise FaultError(f"Código por documento inválido {code!r}; use {DOCUMENT_CODES}.")
        glosa = spec.glosa or DEFAULT_DOCUMENT_GLOSA
    else:
        code = code or "RCT"
        if code not in ENVELOPE_CODES:
            raise FaultError(f"Código de envío inválido {code!r}; use {ENVELOPE_CODES}.")
        glosa = spec.glosa or DEFAULT_GLOSAS[code]
    return FaultSpec(spec.operation, spec.kind, spec.count, code, glosa, spec.per_document)


def fault_add(spec: FaultSpec) -> Fault:
    spec = validate(spec)
    return Fault.objects.create(
        operation=spec.operation,
        kind=spec.kind,
        remaining=spec.count,
        code=spec.code,
        glosa=spec.glosa,
        per_document=spec.per_document,
    )


def faults_clear() -> int:
    deleted, _ = Fault.objects.all().delete()
    return deleted


def faults_pending() -> list[Fault]:
    return list(Fault.objects.filter(remaining__gt=0))


def fault_take(operation: str, *, reject: bool = False, per_document: bool = False) -> Fault | None:
    """Consume one pending fault for `operation`; None when nothing is pending.

    Every call takes its timeout/html503/bad_token fault at the door; rejections are taken only
    by the processing of an envelope (one for the envelope, then one per document)."""
    candidates = Fault.objects.filter(operation__in=(operation, ANY), remaining__gt=0)
    if reject:
        candidates = candidates.filter(kind="reject", per_document=per_document)
    else:
        candidates = candidates.exclude(kind="reject")
    for _ in range(5):  # another process may take the same row first
        fault = candidates.order_by("created_at", "id").first()
        if fault is None:
            return None
        taken = Fault.objects.filter(pk=fault.pk, remaining__gt=0).update(
            remaining=F("remaining") - 1
        )
        if taken:
            Fault.objects.filter(pk=fault.pk, remaining=0).delete()
            return fault
    return None


def to_dict(fault: Fault) -> dict[str, object]:
    return {
        "operation": fault.operation,
        "kind": fault.kind,
        "count": fault.remaining,
        "code": fault.code,
        "glosa": fault.glosa,
        "per_document": fault.per_document,
    }


def document_rejects_pending(operation: str) -> bool:
    """Whether a per-document reject fault waits for `operation` (one query per envelope, so
    that an envelope without such faults takes none per document)."""
    return Fault.objects.filter(
        operation__in=(operation, ANY), remaining__gt=0, kind="reject", per_document=True
    ).exists()
