"""The SII's answers, in its own formats (see /work/shared/sii/samples/responses/).

SII:RESPUESTA documents (the strings the SOAP services return), the DTEUpload RECEPCIONDTE, the
HTML pages the SII (or a proxy in front of it) answers instead: maintenance, the upload CGI's
generic error (what a non-browser User-Agent gets), a bad gateway; and the simulated faults'
bodies. The boletas API's JSON is built in operations.
"""

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from xml.sax.saxutils import escape

from django.utils import timezone

SII_NS = "http://www.sii.cl/XMLSchema"
UTF8_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# --- Glosas ---------------------------------------------------------------------------------

ESTUP_GLOSAS = {
    "REC": "Envio Recibido Conforme",
    "SOK": "Schema Validado",
    "CRT": "Caratula OK",
    "FOK": "Firma de Envio Validada",
    "PRD": "Envio en Proceso",
    "EPR": "Envio Procesado",
    "RSC": "Rechazado por Error en Schema",
    "RFR": "Rechazado por Error en Firma",
    "RCT": "Rechazado por Error en Caratula",
    "RPT": "Repetido Rechazado",
    "RCO": "Rechazado por Inconsistencia",
    "RCH": "Rechazado por Informacion",
    "VOF": "No se encontro el archivo .xml",
}
TOKEN_GLOSAS = {
    "001": "Cookie Inactivo (o nulo): no esta autenticado",
    "002": "Token Inactivo",
    "003": "Token No Encontrado",
}
ESTDTE_GLOSAS = {
    "DOK": "Documento Recibido por el SII. Datos Coinciden con los Registrados",
    "DNK": "Documento Recibido por el SII pero Datos NO Coinciden con los Registrados",
    "FAU": "Documento No Recibido por el SII",
    "FNA": "Documento No Autorizado",
    "FAN": "Documento Anulado",
    "EMP": "Empresa no autorizada a Emitir Documentos Tributarios Electronicos",
}
UPLOAD_ERRORS = {
    1: "Usuario sin permiso de envio",
    2: "Error en tamaño del archivo",
    3: "Archivo cortado (tamaño distinto al informado)",
    5: "No esta autenticado",
    6: "Empresa no autorizada a enviar archivos",
    7: "Esquema invalido",
    8: "Firma del documento",
    9: "Sistema bloqueado",
    99: "Envio ya recibido (archivo repetido)",
    -1: "Error en los parametros de entrada",
}


def num_atencion(now: datetime | None = None) -> str:
    """The SII's request stamp, e.g. `532 ( 2004/06/14 16:44:20)`."""
    moment = timezone.localtime(now or timezone.now())
    return f"{secrets.randbelow(900000) + 100} ( {moment:%Y/%m/%d %H:%M:%S})"


def _fields(pairs: Iterable[tuple[str, object]]) -> str:
    return "".join(
        f"<{name}/>" if value is None else f"<{name}>{escape(str(value))}</{name}>"
        for name, value in pairs
    )


def respuesta(
    header: Sequence[tuple[str, object]],
    body: Sequence[tuple[str, object]] = (),
    *,
    declaration: bool = False,
) -> str:
    """`<SII:RESPUESTA><SII:RESP_HDR>…</SII:RESP_HDR>[<SII:RESP_BODY>…</SII:RESP_BODY>]`."""
    body_xml = f"<SII:RESP_BODY>{_fields(body)}</SII:RESP_BODY>" if body else ""
    return (
        (UTF8_DECLARATION if declaration else "")
        + f'<SII:RESPUESTA xmlns:SII="{SII_NS}"><SII:RESP_HDR>{_fields(header)}</SII:RESP_HDR>'
        + f"{body_xml}</SII:RESPUESTA>"
    )


# --- Seed and token -------------------------------------------------------------------------


def seed_ok(seed: str) -> str:
    return respuesta([("ESTADO", "00")], [("SEMILLA", seed)], declaration=True)


def seed_error() -> str:
    return respuesta([("ESTADO", "-2"), ("GLOSA", "ERROR RETORNO")], declaration=True)


def token_ok(token: str) -> str:
    header = [("ESTADO", "00"), ("GLOSA", "Token Creado")]
    return respuesta(header, [("TOKEN", token)], declaration=True)


def token_error(estado: str, glosa: str) -> str:
    return respuesta([("ESTADO", estado), ("GLOSA", glosa)], declaration=True)


# --- QueryEstUp -----------------------------------------------------------------------------


def estup_token_error(estado: str) -> str:
    header = [("ESTADO", estado), ("GLOSA", TOKEN_GLOSAS[estado]), ("NUM_ATENCION", num_atencion())]
    return respuesta(header)


def estup_not_found() -> str:
    """-11 with ERR_CODE 1: the track id is not this company's (or parameters are missing)."""
    header = [
        ("ESTADO", "-11"),
        ("ERR_CODE", "1"),
        ("SQL_CODE", None),
        ("SRV_CODE", None),
        ("NUM_ATENCION", num_atencion()),
    ]
    return respuesta(header)


def estup_still_processing() -> str:
    """-11 with ERR_CODE 2: still processing, ask again (queryestup_minus11_pending.xml)."""
    header = [
        ("ESTADO", "-11"),
        ("ERR_CODE", "2"),
        ("SQL_CODE", None),
        ("SRV_CODE", None),
        ("NUM_ATENCION", num_atencion()),
    ]
    return respuesta(header)


def estup_libro(track_id: int, estado: str, glosa: str) -> str:
    """A libro's final state (LOK, or a rejection such as LRS, LRC, LRF) with its GLOSA. The
    shape of an envelope's answer without RESP_BODY: no sample of the SII's was found."""
    header = [
        ("TRACKID", track_id),
        ("ESTADO", estado),
        ("GLOSA", glosa),
        ("NUM_ATENCION", num_atencion()),
    ]
    return respuesta(header)


def estup_in_progress(track_id: int, estado: str) -> str:
    header = [
        ("TRACKID", track_id),
        ("ESTADO", estado),
        ("GLOSA", ESTUP_GLOSAS[estado]),
        ("NUM_ATENCION", num_atencion()),
    ]
    return respuesta(header)


def estup_processed(track_id: int, stats: Sequence[dict[str, int]]) -> str:
    header = [
        ("TRACKID", track_id),
        ("ESTADO", "EPR"),
        ("GLOSA", ESTUP_GLOSAS["EPR"]),
        ("NUM_ATENCION", num_atencion()),
    ]
    body = [
        pair
        for group in stats
        for pair in (
            ("TIPO_DOCTO", group["tipo"]),
            ("INFORMADOS", group["informados"]),
            ("ACEPTADOS", group["aceptados"]),
            ("RECHAZADOS", group["rechazados"]),
            ("REPAROS", group["reparos"]),
        )
    ]
    return respuesta(header, body)


def estup_rejected(estado: str, glosa: str) -> str:
    """An envelope rejected as a whole (the shape of queryestup_RCT_rejected.xml)."""
    header = [("ESTADO", estado), ("GLOSA", glosa), ("NUM_ATENCION", num_atencion())]
    return respuesta(header)


# --- QueryEstDte ----------------------------------------------------------------------------


def estdte(estado: str, *, err_code: str = "0", glosa_err: str = "Se retorna el estado") -> str:
    glosa = ESTDTE_GLOSAS.get(estado) or TOKEN_GLOSAS.get(estado, "")
    header = [
        ("ESTADO", estado),
        ("GLOSA_ESTADO", glosa),
        ("ERR_CODE", err_code),
        ("GLOSA_ERR", glosa_err),
        ("NUM_ATENCION", num_atencion()),
    ]
    return respuesta(header)


def estdte_token_error(estado: str) -> str:
    return estdte(estado, err_code=estado, glosa_err=TOKEN_GLOSAS[estado])


def estdte_bad_request(reason: str) -> str:
    header = [
        ("ESTADO", "-4"),
        ("GLOSA_ESTADO", "Error en los parametros de entrada"),
        ("ERR_CODE", "-4"),
        ("GLOSA_ERR", reason),
        ("NUM_ATENCION", num_atencion()),
    ]
    return respuesta(header)


# --- DTEUpload ------------------------------------------------------------------------------


def recepcion(
    *,
    rut_sender: str,
    rut_company: str,
    file_name: str,
    status: int,
    track_id: int | None = None,
    error: str = "",
    now: datetime | None = None,
) -> str:
    moment = timezone.localtime(now or timezone.now())
    fields: list[tuple[str, object]] = [
        ("RUTSENDER", rut_sender),
        ("RUTCOMPANY", rut_company),
        ("FILE", file_name),
        ("TIMESTAMP", f"{moment:%Y-%m-%d %H:%M:%S}"),
        ("STATUS", status),
    ]
    if track_id is not None:
        fields.append(("TRACKID", track_id))
    detail = f"<DETAIL><ERROR>{escape(error)}</ERROR></DETAIL>" if error else ""
    return f'<?xml version="1.0"?>\n<RECEPCIONDTE>{_fields(fields)}{detail}</RECEPCIONDTE>'


# --- Maintenance ----------------------------------------------------------------------------

MAINTENANCE_HTML = """<!DOCTYPE html>
<html lang="es">
<head><meta charset="utf-8"><title>SII - Servicio no disponible</title></head>
<body>
<h1>Servicio no disponible</h1>
<p>Estimado contribuyente: en estos momentos el servicio se encuentra en mantención.</p>
<p>Por favor, intente nuevamente más tarde. Disculpe las molestias.</p>
<p>Servicio de Impuestos Internos</p>
</body>
</html>
"""

# The DTEUpload CGI's generic page, in place of RECEPCIONDTE, for a request it does not take as
# coming from a browser (SII_BEHAVIOUR.md: "User-Agent"). No STATUS, no TRACKID.
UPLOAD_ERROR_HTML = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<html><head><title>SII - Envio de Documentos Tributarios Electronicos</title></head>
<body><p>HA OCURRIDO UN ERROR EN EL UPLOAD DEL ARCHIVO DE DOCUMENTOS TRIBUTARIOS
ELECTRONICOS.</p></body></html>
"""

# What a proxy in front of the SII answers when the SII's answer does not reach it in time.
BAD_GATEWAY_HTML = """<html>
<head><title>502 Bad Gateway</title></head>
<body><center><h1>502 Bad Gateway</h1></center></body>
</html>
"""

# The body of a plain HTTP 500 (LibreDTE retries an upload whose answer is exactly this text).
SERVER_ERROR_TEXT = "Error 500"
SERVER_ERROR_FAULT = "Error interno del servidor (falla simulada del SII de pruebas)"

# A body that is neither XML nor JSON, whatever its Content-Type says.
GARBAGE = b"\x00\x01garbage<<"
