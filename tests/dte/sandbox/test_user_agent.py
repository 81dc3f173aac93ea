"""User-Agent: the upload endpoints refuse agents that are not a browser's, as the SII does;
the SOAP services and the other boletas endpoints take any agent."""

import pytest
from django.core.management import call_command

from dte.sandbox.models import Fault, ReceivedEnvelope
from tests.dte.sandbox.conftest import NON_BROWSER_AGENTS, PREFIX, hdr
from tests.dte.sandbox.material import envelope, issue

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("agent", NON_BROWSER_AGENTS)
def test_dte_upload_answers_its_generic_error_page_to_a_non_browser(sii, token, agent):
    response = sii.upload_raw(envelope([issue(33, 501)]), token, agent=agent)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "HA OCURRIDO UN ERROR EN EL UPLOAD" in page
    assert "RECEPCIONDTE" not in page and "STATUS" not in page and "TRACKID" not in page
    assert not ReceivedEnvelope.objects.exists()


@pytest.mark.parametrize("agent", NON_BROWSER_AGENTS)
def test_boleta_envio_is_401_for_a_non_browser(sii, boleta_token, agent):
    response = sii.boleta_upload(envelope([issue(39, 502)]), boleta_token, agent=agent)
    assert response.status_code == 401
    assert response.json()["codigo"] == 401
    assert not ReceivedEnvelope.objects.exists()


def test_the_refusal_comes_before_faults_and_tokens(sii, token):
    call_command("sandbox_fault", "upload", "html503")
    refused = sii.upload_raw(envelope([issue(33, 503)]), None, agent="curl/8.5.0")
    assert b"HA OCURRIDO UN ERROR" in refused.content
    assert Fault.objects.get().remaining == 1  # the fault is still pending


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/4.0 (compatible; PROG 1.0; Windows NT 5.0; YComp 5.0.2.4)",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ],
)
def test_browser_agents_are_taken(sii, token, boleta_token, agent):
    assert sii.upload(envelope([issue(33, 504)]), token, agent=agent).findtext("STATUS") == "0"
    boleta = sii.boleta_upload(envelope([issue(39, 505)]), boleta_token, agent=agent)
    assert boleta.status_code == 200


def test_soap_and_the_other_boleta_endpoints_take_any_agent(sii, boleta_token):
    zeep = {"HTTP_USER_AGENT": "Zeep/4.3.1 (www.python-zeep.org)"}
    answer = sii.client.post(
        f"{PREFIX}/DTEWS/CrSeed.jws",
        data=(
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            "<soapenv:Body><getSeed/></soapenv:Body></soapenv:Envelope>"
        ),
        content_type="text/xml",
        **zeep,
    )
    assert answer.status_code == 200 and b"SEMILLA" in answer.content
    seed = sii.client.get(f"{PREFIX}/recursos/v1/boleta.electronica.semilla", **zeep)
    assert seed.status_code == 200 and b"SEMILLA" in seed.content
    track_id = sii.boleta_upload(envelope([issue(39, 506)]), boleta_token).json()["trackid"]
    status = sii.client.get(
        f"{PREFIX}/recursos/v1/boleta.electronica.envio/76086428-5-{track_id}",
        HTTP_COOKIE=f"TOKEN={boleta_token}",
        **zeep,
    )
    assert status.status_code == 200 and status.json()["estado"] == "EPR"
    estado = sii.client.get(
        f"{PREFIX}/recursos/v1/boleta.electronica/76086428-5-39-506/estado",
        HTTP_COOKIE=f"TOKEN={boleta_token}",
        **zeep,
    )
    assert estado.status_code == 200 and estado.json()["estado"] == "DOK"


def test_soap_takes_no_agent_at_all(sii, token):
    # Django's test client sends no User-Agent: QueryEstUp answers all the same.
    assert hdr(sii.est_up("1", token), "ESTADO") == "-11"
