"""The single chokepoint to the SII: every call goes through `SiiClient._call`, which times it,
counts its outcome, and turns transport trouble into typed errors (dte.sii.errors).

SOAP services (seed, token, envelope and document status, and the RCV's acceptance or claim of
a received DTE) go through zeep with the SII's own WSDLs kept in dte/sii/wsdl/ (loaded from disk:
the SII is slow and flaky) and the address of the configured environment; the upload and the
boleta REST API through requests.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
import zeep
import zeep.exceptions
from lxml import etree
from prometheus_client import Counter, Histogram
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from zeep.helpers import serialize_object
from zeep.transports import Transport

from dte.sii import responses
from dte.sii.errors import SiiError, SiiRefused, SiiRetryableError, SiiTokenError

T = TypeVar("T")
WSDL_DIR = Path(__file__).parent / "wsdl"
# The SII answers unusual user agents with misleading errors (DOMAIN.md §3).
USER_AGENT = "Mozilla/4.0 (compatible; PROG 1.0; Windows NT 5.0; YComp 5.0.2.4)"

SII_LATENCY = Histogram(
    "sii_request_seconds",
    "Latency of calls to the SII, by operation",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
SII_OUTCOMES = Counter(
    "sii_requests_total", "Calls to the SII by operation and outcome", ["operation", "outcome"]
)


@dataclass(frozen=True, slots=True)
class Endpoints:
    soap_base: str  # …/DTEWS
    upload_url: str  # …/cgi_dte/UPL/DTEUpload
    boleta_api: str  # …/recursos/v1
    boleta_upload_url: str  # …/recursos/v1/boleta.electronica.envio
    rcv_url: str  # …/WSREGISTRORECLAMODTE[CERT]/registroreclamodteservice (another host: ws1/ws2)


# The RCV service's path in production; certification adds CERT (the SII's manual v1.2).
RCV_PATH = "WSREGISTRORECLAMODTE/registroreclamodteservice"
RCV_SERVICE = "RegistroReclamoDteService"  # its WSDL in dte/sii/wsdl/

ENVIRONMENTS = {
    "certification": Endpoints(
        "https://maullin.sii.cl/DTEWS",
        "https://maullin.sii.cl/cgi_dte/UPL/DTEUpload",
        "https://apicert.sii.cl/recursos/v1",
        "https://pangal.sii.cl/recursos/v1/boleta.electronica.envio",
        "https://ws2.sii.cl/WSREGISTRORECLAMODTECERT/registroreclamodteservice",
    ),
    "production": Endpoints(
        "https://palena.sii.cl/DTEWS",
        "https://palena.sii.cl/cgi_dte/UPL/DTEUpload",
        "https://api.sii.cl/recursos/v1",
        "https://rahue.sii.cl/recursos/v1/boleta.electronica.envio",
        f"https://ws1.sii.cl/{RCV_PATH}",
    ),
}


def sandbox_endpoints(base_url: str) -> Endpoints:
    """The local sandbox serves the same paths under one base URL (…/_sii)."""
    base = base_url.rstrip("/")
    return Endpoints(
        f"{base}/DTEWS",
        f"{base}/cgi_dte/UPL/DTEUpload",
        f"{base}/recursos/v1",
        f"{base}/recursos/v1/boleta.electronica.envio",
        f"{base}/{RCV_PATH}",
    )


def split_rut(rut: str) -> tuple[str, str]:
    body, dv = rut.split("-")
    return body, dv


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, SiiTokenError):
        return "token"
    if isinstance(error, SiiRetryableError):
        return "retryable"
    if isinstance(error, SiiRefused):
        return "refused"
    return "error"


class OneRequestPerConnection(HTTPAdapter):
    """Never reuse a connection. Asking for "Connection: close" is not enough: when the server
    closes without saying so in its answer, urllib3 pools the socket anyway, and the next call
    may be written into it before the server's close arrives ("Remote end closed connection
    without response"), a race that shows under load."""

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        try:
            return super().send(request, **kwargs)
        finally:
            self.poolmanager.clear()


class SiiSession(requests.Session):
    """A session whose every request carries the browser-like User-Agent the SII demands
    (DOMAIN.md §3, §5). zeep's Transport rewrites `session.headers["User-Agent"]` to its own
    name when it is built, so the header is set here, on each request, where nothing can
    overwrite it: SOAP, upload and boleta calls alike."""

    def request(  # type: ignore[override]
        self, method: str, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "User-Agent": USER_AGENT}
        return super().request(method, url, **kwargs)


def one_request_per_connection(session: requests.Session) -> requests.Session:
    session.headers["Connection"] = "close"
    for prefix in ("http://", "https://"):
        session.mount(prefix, OneRequestPerConnection())
    return session


def retry_after(value: str, *, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date (RFC 9110 §10.2.3); None if absent."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _reason(response: requests.Response) -> str:
    """The gist of an error answer: its JSON description, or its text without markup."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        text = str(data.get("descripcion") or data.get("glosa") or data.get("message") or "")
        if text:
            return responses.readable(text)
    return responses.readable(response.text) or f"HTTP {response.status_code}"


def _never_connected(exc: BaseException) -> bool:
    """The request never reached the SII (refused, unreachable, or timed out connecting)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (requests.ConnectTimeout, NewConnectionError, ConnectTimeoutError)):
            return True
        for arg in getattr(seen, "args", ()):
            if isinstance(arg, BaseException) and _never_connected(arg):
                return True
            reason = getattr(arg, "reason", None)
            if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


class SiiClient:
    def __init__(self, endpoints: Endpoints, *, timeout: float = 15.0) -> None:
        self.endpoints = endpoints
        self.timeout = timeout
        # One request per connection: the SII (and gunicorn's threaded workers) may drop an
        # idle kept-alive connection at any moment, and an upload must never be re-sent by a
        # transport-level retry on a stale connection.
        self.session = one_request_per_connection(SiiSession())
        self.session.headers["User-Agent"] = USER_AGENT
        self._services: dict[str, Any] = {}

    # ------------------------------------------------------------ the chokepoint

    def _call(self, operation: str, fn: Callable[[], T], *, sends_data: bool = False) -> T:
        """Run one call. `sends_data`: the call hands the SII something it keeps (an upload),
        so any failure after the request left this machine may hide a registered upload."""
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            return fn()
        except SiiRetryableError as exc:
            if exc.maybe_delivered is None:  # raised on reading the answer: it was sent
                exc.maybe_delivered = sends_data
            error = exc
            raise
        except SiiError as exc:
            error = exc
            raise
        except requests.Timeout as exc:
            error = SiiRetryableError(
                f"El SII no respondió a tiempo ({operation}).",
                maybe_delivered=sends_data and not _never_connected(exc),
            )
            raise error from exc
        except zeep.exceptions.TransportError as exc:
            if isinstance(exc.__context__, requests.Timeout):
                message = f"El SII no respondió a tiempo ({operation})."
            else:
                message = f"El SII no está disponible ({operation}, HTTP {exc.status_code})."
            error = SiiRetryableError(message)
            raise error from exc
        except requests.ConnectionError as exc:
            error = SiiRetryableError(
                f"No se pudo conversar con el SII ({operation}): "
                + ("no acepta conexiones." if _never_connected(exc) else "la conexión se cortó."),
                maybe_delivered=sends_data and not _never_connected(exc),
            )
            raise error from exc
        except zeep.exceptions.Fault as exc:
            error = SiiRetryableError(
                f"El SII respondió con un error ({operation}): {responses.readable(exc.message)}"
            )
            raise error from exc
        except (zeep.exceptions.XMLSyntaxError, etree.XMLSyntaxError) as exc:
            error = SiiRetryableError(f"El SII respondió algo ilegible ({operation}).")
            raise error from exc
        finally:
            SII_LATENCY.labels(operation).observe(time.perf_counter() - start)
            SII_OUTCOMES.labels(operation, _outcome(error)).inc()

    # ------------------------------------------------------------ SOAP

    def _service(self, name: str, address: str | None = None, *, strict: bool = True) -> Any:
        """The zeep proxy of one SOAP service: its WSDL from disk, its address in the configured
        environment (the DTEWS services at soap_base/{name}.jws unless `address` says). Not
        `strict`: elements the WSDL does not describe are skipped, not an error."""
        if name not in self._services:
            transport = Transport(  # type: ignore[no-untyped-call]
                session=self.session, timeout=self.timeout, operation_timeout=self.timeout
            )
            wsdl = str(WSDL_DIR / f"{name}.wsdl")
            client = zeep.Client(  # type: ignore[no-untyped-call]
                wsdl, transport=transport, settings=zeep.Settings(strict=strict)
            )
            binding = next(iter(client.wsdl.bindings))
            address = address or f"{self.endpoints.soap_base}/{name}.jws"
            service = client.create_service(binding, address)  # type: ignore[no-untyped-call]
            self._services[name] = service
        return self._services[name]

    def get_seed(self) -> str:
        return self._call(
            "getSeed", lambda: responses.parse_seed(self._service("CrSeed").getSeed())
        )

    def get_token(self, signed_get_token: str) -> str:
        return self._call(
            "getToken",
            lambda: responses.parse_token(
                self._service("GetTokenFromSeed").getToken(pszXml=signed_get_token)
            ),
        )

    def get_est_up(
        self, *, rut_company: str, track_id: str, token: str
    ) -> responses.EnvelopeStatus:
        rut, dv = split_rut(rut_company)
        return self._call(
            "getEstUp",
            lambda: responses.parse_est_up(
                self._service("QueryEstUp").getEstUp(
                    RutCompania=rut, DvCompania=dv, TrackId=track_id, Token=token
                )
            ),
        )

    def get_est_dte(
        self,
        *,
        rut_consultante: str,
        rut_company: str,
        rut_receptor: str,
        tipo: int,
        folio: int,
        fecha: date,
        monto: int,
        token: str,
    ) -> responses.DocumentStatus:
        (rc, dc), (re, de), (rr, dr) = (
            split_rut(rut_consultante),
            split_rut(rut_company),
            split_rut(rut_receptor),
        )
        return self._call(
            "getEstDte",
            lambda: responses.parse_est_dte(
                self._service("QueryEstDte").getEstDte(
                    RutConsultante=rc,
                    DvConsultante=dc,
                    RutCompania=re,
                    DvCompania=de,
                    RutReceptor=rr,
                    DvReceptor=dr,
                    TipoDte=str(tipo),
                    FolioDte=str(folio),
                    FechaEmisionDte=fecha.strftime("%d-%m-%Y"),
                    MontoDte=str(monto),
                    Token=token,
                )
            ),
        )

    # ------------------------------------------------------------ RCV: aceptación o reclamo

    def _rcv(
        self,
        operation: str,
        token: str,
        parse: Callable[[Any], T],
        *,
        sends_data: bool = False,
        **params: str,
    ) -> T:
        """One call to the RCV service (rpc/literal, a JAX-WS endpoint on ws1/ws2), with the
        token as the cookie it wants. A bad or expired token comes back as a SOAP Fault, not as a
        codResp: SiiTokenError. Other Faults and transport trouble as every other call."""

        def call() -> T:
            # Not strict, as Odoo reads it: this WSDL's types are rebuilt, not the SII's own file.
            service = self._service(RCV_SERVICE, self.endpoints.rcv_url, strict=False)
            headers = {"Cookie": f"TOKEN={token}"}
            try:
                with service._client.settings(extra_http_headers=headers):
                    answer = getattr(service, operation)(**params)
            except zeep.exceptions.Fault as exc:
                if responses.rcv_token_fault(exc.message):
                    raise SiiTokenError(
                        f"El SII rechazó el token ({operation}): {responses.readable(exc.message)}"
                    ) from exc
                raise
            return parse(serialize_object(answer, dict))  # type: ignore[no-untyped-call]

        return self._call(operation, call, sends_data=sends_data)

    def rcv_register_action(
        self, token: str, rut_emisor: str, tipo_doc: int, folio: int, accion: str
    ) -> responses.RcvActionResult:
        """Record the receptor's acceptance or claim of a received DTE at the SII
        (ingresarAceptacionReclamoDoc): `accion` is ACD, RCD, ERM, RFP or RFT (RcvAction). Every
        codResp comes back as the result (code 0: recorded now; 7: recorded before; 8: past the
        8 days; see responses.RCV_CODES); codResp -1 is SiiRetryableError. The token is the
        company's SOAP token (dte.sii.auth.get_token, boleta=False); it must be of a person
        authorised for the receptor."""
        rut, dv = split_rut(rut_emisor)
        return self._rcv(
            "ingresarAceptacionReclamoDoc",
            token,
            responses.parse_rcv_action,
            sends_data=True,
            rutEmisor=rut,
            dvEmisor=dv,
            tipoDoc=str(tipo_doc),
            folio=str(folio),
            accionDoc=str(accion),
        )

    def rcv_events(
        self, token: str, rut_emisor: str, tipo_doc: int, folio: int
    ) -> responses.RcvEvents:
        """The acceptance and claim events recorded on a DTE (listarEventosHistDoc), oldest
        first: code 15 with them, 16 when there are none; other codes say why not."""
        rut, dv = split_rut(rut_emisor)
        return self._rcv(
            "listarEventosHistDoc",
            token,
            responses.parse_rcv_events,
            rutEmisor=rut,
            dvEmisor=dv,
            tipoDoc=str(tipo_doc),
            folio=str(folio),
        )

    def rcv_reception_date(
        self, token: str, rut_emisor: str, tipo_doc: int, folio: int
    ) -> datetime | None:
        """When the SII received the DTE (consultarFechaRecepcionSii), in the SII's time zone:
        the 8 days for a claim run from then. None when the SII gives no date (the operation
        answers only a date string, no code); SiiRefused with its words when it answers text."""
        rut, dv = split_rut(rut_emisor)
        return self._rcv(
            "consultarFechaRecepcionSii",
            token,
            responses.parse_rcv_reception_date,
            rutEmisor=rut,
            dvEmisor=dv,
            tipoDoc=str(tipo_doc),
            folio=str(folio),
        )

    # ------------------------------------------------------------ upload (DTEUpload)

    def _check_http(
        self, response: requests.Response, operation: str, *, lookup: bool = False
    ) -> None:
        """HTTP trouble as typed errors. 503 (maintenance), 429 and 405 come from the SII's
        front door: nothing was registered. Other 5xx may hide a registered upload. A lookup
        (`lookup`: a status query) that answers 404 has found nothing *yet*: a retry, never a
        verdict; the poll limit bounds it."""
        code = response.status_code
        if code == 401:
            raise SiiTokenError(f"El SII rechazó el token ({operation}, HTTP 401).")
        if code in (405, 429, 503) or code >= 500 or (lookup and code == 404):
            wait = retry_after(response.headers.get("Retry-After", ""))
            raise SiiRetryableError(
                f"El SII no está disponible ({operation}, HTTP {code})"
                + (f"; pide reintentar en {wait:.0f} s." if wait is not None else "."),
                maybe_delivered=code not in (405, 429, 503),
                retry_after=wait,
            )
        if code >= 400:
            raise SiiRefused(
                f"HTTP-{code}", f"El SII rechazó la solicitud ({operation}): {_reason(response)}"
            )

    def _multipart(
        self, xml: bytes, rut_sender: str, rut_company: str, filename: str
    ) -> list[tuple[str, Any]]:
        sender, dv_sender = split_rut(rut_sender)
        company, dv_company = split_rut(rut_company)
        # The SII wants these fields, in this order, before the file (DOMAIN.md §3).
        return [
            ("rutSender", (None, sender)),
            ("dvSender", (None, dv_sender)),
            ("rutCompany", (None, company)),
            ("dvCompany", (None, dv_company)),
            ("archivo", (filename, xml, "text/xml")),
        ]

    def upload(
        self, xml: bytes, *, rut_sender: str, rut_company: str, filename: str, token: str
    ) -> responses.UploadResult:
        def send() -> responses.UploadResult:
            response = self.session.post(
                self.endpoints.upload_url,
                files=self._multipart(xml, rut_sender, rut_company, filename),
                headers={"Cookie": f"TOKEN={token}"},
                timeout=self.timeout,
            )
            self._check_http(response, "upload")
            return responses.parse_upload(response.content)

        return self._call("upload", send, sends_data=True)

    # ------------------------------------------------------------ boletas (REST)

    def boleta_seed(self) -> str:
        def fetch() -> str:
            response = self.session.get(
                f"{self.endpoints.boleta_api}/boleta.electronica.semilla", timeout=self.timeout
            )
            self._check_http(response, "boleta_seed")
            return responses.parse_seed(response.content)

        return self._call("boleta_seed", fetch)

    def boleta_token(self, signed_get_token: str) -> str:
        def fetch() -> str:
            response = self.session.post(
                f"{self.endpoints.boleta_api}/boleta.electronica.token",
                data=signed_get_token.encode("utf-8"),
                headers={"Content-Type": "application/xml"},
                timeout=self.timeout,
            )
            self._check_http(response, "boleta_token")
            return responses.parse_token(response.content)

        return self._call("boleta_token", fetch)

    def boleta_upload(
        self, xml: bytes, *, rut_sender: str, rut_company: str, filename: str, token: str
    ) -> responses.UploadResult:
        def send() -> responses.UploadResult:
            response = self.session.post(
                self.endpoints.boleta_upload_url,
                files=self._multipart(xml, rut_sender, rut_company, filename),
                headers={"Cookie": f"TOKEN={token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
            self._check_http(response, "boleta_upload")
            return responses.parse_boleta_upload(response.content)

        return self._call("boleta_upload", send, sends_data=True)

    def boleta_status(
        self, *, rut_company: str, track_id: str, token: str
    ) -> responses.EnvelopeStatus:
        def fetch() -> responses.EnvelopeStatus:
            response = self.session.get(
                f"{self.endpoints.boleta_api}/boleta.electronica.envio/{rut_company}-{track_id}",
                headers={"Cookie": f"TOKEN={token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
            self._check_http(response, "boleta_status", lookup=True)
            return responses.parse_boleta_status(response.content)

        return self._call("boleta_status", fetch)

    def boleta_document_status(
        self,
        *,
        rut_company: str,
        tipo: int,
        folio: int,
        rut_receptor: str,
        monto: int,
        fecha: date,
        token: str,
    ) -> responses.DocumentStatus:
        receptor, dv_receptor = split_rut(rut_receptor)

        def fetch() -> responses.DocumentStatus:
            response = self.session.get(
                f"{self.endpoints.boleta_api}/boleta.electronica/"
                f"{rut_company}-{tipo}-{folio}/estado",
                params={
                    "rut_receptor": receptor,
                    "dv_receptor": dv_receptor,
                    "monto": str(monto),
                    "fechaEmision": fecha.strftime("%d-%m-%Y"),
                },
                headers={"Cookie": f"TOKEN={token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
            self._check_http(response, "boleta_document_status", lookup=True)
            return responses.parse_boleta_document_status(response.content)

        return self._call("boleta_document_status", fetch)
