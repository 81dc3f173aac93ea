"""Fixtures for the sandbox SII tests: the sandbox authority with the fixed test key (so the CAFs
in tests/data/keys verify), the demo company, and a small client for the SII's protocols."""

from datetime import timedelta
from xml.sax.saxutils import escape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from lxml import etree

from dte.sandbox.models import Channel, Token
from tests.dte.sandbox.material import EMISOR_RUT, RECEPTOR, SIGNER_RUT

PREFIX = "/_sii"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
# What the project's client sends (dte.sii.client.USER_AGENT), and agents the SII refuses.
BROWSER_AGENT = "Mozilla/4.0 (compatible; PROG 1.0; Windows NT 5.0; YComp 5.0.2.4)"
NON_BROWSER_AGENTS = ("python-requests/2.32.3", "Zeep/4.3.1 (www.python-zeep.org)", "")


def parse_answer(text: str) -> etree._Element:
    """An SII answer string (it may carry an XML declaration with an encoding)."""
    return etree.fromstring(text.encode("utf-8"))


def hdr(root: etree._Element, name: str) -> str | None:
    return root.findtext(f"{{*}}RESP_HDR/{name}")


def body_groups(root: etree._Element) -> list[dict[str, str]]:
    """RESP_BODY's repeated TIPO_DOCTO … REPAROS groups."""
    values = [(el.tag, el.text or "") for el in root.find("{*}RESP_BODY")]
    return [dict(values[i : i + 5]) for i in range(0, len(values), 5)]


def soap_envelope(service: str, operation: str, params: dict[str, str]) -> bytes:
    """A request as an rpc/encoded Axis client writes it (xsi:type on each part)."""
    parts = "".join(
        f'<{name} xsi:type="xsd:string">{escape(value)}</{name}>' for name, value in params.items()
    )
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:sii="https://maullin.sii.cl/DTEWS/{service}.jws">'
        f"<soapenv:Body><sii:{operation}>{parts}</sii:{operation}></soapenv:Body>"
        "</soapenv:Envelope>"
    ).encode()


class Sii:
    """The SII's protocols over Django's test client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # SOAP
    def soap_raw(self, service: str, operation: str, **params: str):
        return self.client.post(
            f"{PREFIX}/DTEWS/{service}.jws",
            data=soap_envelope(service, operation, params),
            content_type="text/xml; charset=utf-8",
            HTTP_SOAPACTION='""',
        )

    def soap(self, service: str, operation: str, **params: str) -> etree._Element:
        response = self.soap_raw(service, operation, **params)
        assert response.status_code == 200, response.content
        envelope = etree.fromstring(response.content)
        returned = envelope.find(f".//{operation}Return")
        assert returned is not None, response.content
        return parse_answer(returned.text or "")

    def seed(self) -> str:
        root = self.soap("CrSeed", "getSeed")
        assert hdr(root, "ESTADO") == "00"
        return root.findtext("{*}RESP_BODY/SEMILLA") or ""

    def get_token(self, xml: str) -> etree._Element:
        return self.soap("GetTokenFromSeed", "getToken", pszXml=xml)

    def est_up(self, track_id: int | str, token: str, company: str = EMISOR_RUT):
        rut, dv = company.split("-")
        return self.soap(
            "QueryEstUp",
            "getEstUp",
            RutCompania=rut,
            DvCompania=dv,
            TrackId=str(track_id),
            Token=token,
        )

    def est_dte(
        self,
        token: str,
        *,
        tipo: int,
        folio: int,
        monto: int,
        fecha: str = "23-11-2026",
        receptor: str = RECEPTOR.rut,
        company: str = EMISOR_RUT,
    ) -> etree._Element:
        rut, dv = company.split("-")
        rut_r, dv_r = receptor.split("-")
        consultante, dv_c = SIGNER_RUT.split("-")
        return self.soap(
            "QueryEstDte",
            "getEstDte",
            RutConsultante=consultante,
            DvConsultante=dv_c,
            RutCompania=rut,
            DvCompania=dv,
            RutReceptor=rut_r,
            DvReceptor=dv_r,
            TipoDte=str(tipo),
            FolioDte=str(folio),
            FechaEmisionDte=fecha,
            MontoDte=str(monto),
            Token=token,
        )

    # Uploads
    def _multipart(self, data: bytes, sender: str, company: str, name: str) -> dict:
        rut_s, dv_s = sender.split("-")
        rut_c, dv_c = company.split("-")
        return {
            "rutSender": rut_s,
            "dvSender": dv_s,
            "rutCompany": rut_c,
            "dvCompany": dv_c,
            "archivo": SimpleUploadedFile(name, data, content_type="text/xml"),
        }

    def upload_raw(
        self,
        data: bytes,
        token: str | None,
        *,
        sender: str = SIGNER_RUT,
        company: str = EMISOR_RUT,
        name: str = "EnvioDTE.xml",
        agent: str = BROWSER_AGENT,
    ):
        extra = {"HTTP_COOKIE": f"TOKEN={token}"} if token else {}
        return self.client.post(
            f"{PREFIX}/cgi_dte/UPL/DTEUpload",
            self._multipart(data, sender, company, name),
            HTTP_USER_AGENT=agent,
            **extra,
        )

    def upload(self, data: bytes, token: str | None, **kwargs: str) -> etree._Element:
        response = self.upload_raw(data, token, **kwargs)
        assert response.status_code == 200, response.content
        return etree.fromstring(response.content)

    def send(self, data: bytes, token: str, **kwargs: str) -> int:
        """Upload and return the track id (asserting STATUS 0)."""
        root = self.upload(data, token, **kwargs)
        assert root.findtext("STATUS") == "0", etree.tostring(root)
        return int(root.findtext("TRACKID") or 0)

    # Boletas
    def boleta_upload(
        self,
        data: bytes,
        token: str | None,
        *,
        sender: str = SIGNER_RUT,
        agent: str = BROWSER_AGENT,
    ):
        extra = {"HTTP_COOKIE": f"TOKEN={token}"} if token else {}
        return self.client.post(
            f"{PREFIX}/recursos/v1/boleta.electronica.envio",
            self._multipart(data, sender, EMISOR_RUT, "EnvioBOLETA.xml"),
            HTTP_ACCEPT="application/json",
            HTTP_USER_AGENT=agent,
            **extra,
        )

    def boleta_status(self, track_id: int, token: str, company: str = EMISOR_RUT):
        return self.client.get(
            f"{PREFIX}/recursos/v1/boleta.electronica.envio/{company}-{track_id}",
            HTTP_COOKIE=f"TOKEN={token}",
        )

    def boleta_estado(
        self,
        token: str,
        *,
        tipo: int,
        folio: int,
        monto: int,
        fecha: str = "23-11-2026",
        receptor: str = RECEPTOR.rut,
        company: str = EMISOR_RUT,
    ):
        rut_r, dv_r = receptor.split("-")
        return self.client.get(
            f"{PREFIX}/recursos/v1/boleta.electronica/{company}-{tipo}-{folio}/estado",
            {"rut_receptor": rut_r, "dv_receptor": dv_r, "monto": monto, "fechaEmision": fecha},
            HTTP_COOKIE=f"TOKEN={token}",
        )

    # Control
    def process_now(self, track_id: int | None = None) -> int:
        """End the processing time of pending envelopes (POST /_sii/_control/process)."""
        body = {} if track_id is None else {"track_id": track_id}
        response = self.client.post(
            f"{PREFIX}/_control/process", data=body, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        return response.json()["released"]


@pytest.fixture
def sii(sandbox, company, settings) -> Sii:
    """The sandbox with the test key as its authority, the demo company known, final states
    at once (no processing time, no in-progress polls) and instant timeouts."""
    settings.SII_SANDBOX_POLLS_BEFORE_DONE = 0
    settings.SII_SANDBOX_PROCESSING_SECONDS = 0
    settings.SII_SANDBOX_TIMEOUT_SLEEP = 0
    settings.SII_SANDBOX_SLOW_SLEEP = 0
    client = Client()
    client.force_login(staff_user())  # the control endpoints are for staff only
    return Sii(client)


@pytest.fixture
def client(client, db):
    """Django's test client with a staff session: the control endpoints need one."""
    client.force_login(staff_user())
    return client


def staff_user():
    from tests.factories import UserFactory

    return UserFactory(is_staff=True)


def make_token(rut: str = SIGNER_RUT, channel: str = Channel.DTE, *, ttl: int = 3600) -> str:
    """A token straight in the database (the getToken flow has its own tests)."""
    now = timezone.now()
    value = f"T{channel[0].upper()}{Token.objects.count():04d}{rut.replace('-', '')}"
    Token.objects.create(
        value=value,
        channel=channel,
        rut=rut,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
    return value


@pytest.fixture
def token(db) -> str:
    return make_token()


@pytest.fixture
def boleta_token(db) -> str:
    return make_token(channel=Channel.BOLETA)
