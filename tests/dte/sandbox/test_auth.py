"""Seeds, tokens and the SOAP plumbing: getSeed, getToken (real XML-DSig checks), token errors,
the served WSDLs, SOAP faults, and one round trip over real HTTP with zeep."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from lxml import etree

from dte.sandbox.models import Channel, Seed, Token
from tests.dte.fixtures import fresh_certificate
from tests.dte.sandbox.conftest import PREFIX, hdr, make_token, parse_answer
from tests.dte.sandbox.material import CERT_PASSWORD, SIGNER_RUT, signed_get_token

pytestmark = pytest.mark.django_db


def test_get_seed_answers_a_numeric_seed_in_the_sii_shape(sii):
    root = sii.soap("CrSeed", "getSeed")
    assert etree.QName(root).localname == "RESPUESTA"
    assert hdr(root, "ESTADO") == "00"
    seed = root.findtext("{*}RESP_BODY/SEMILLA")
    assert seed and seed.isdigit()
    assert Seed.objects.filter(value=seed, channel=Channel.DTE).exists()


def test_get_token_with_a_signed_seed_issues_a_token_bound_to_the_holder(sii):
    root = sii.get_token(signed_get_token(sii.seed()))
    assert hdr(root, "ESTADO") == "00"
    assert hdr(root, "GLOSA") == "Token Creado"
    token = root.findtext("{*}RESP_BODY/TOKEN")
    assert Token.objects.get(value=token).rut == SIGNER_RUT


def test_a_seed_is_good_for_one_token_only(sii):
    xml = signed_get_token(sii.seed())
    assert hdr(sii.get_token(xml), "ESTADO") == "00"
    assert hdr(sii.get_token(xml), "ESTADO") == "08"


def test_an_expired_seed_is_refused(sii):
    seed = sii.seed()
    Seed.objects.filter(value=seed).update(created_at=timezone.now() - timedelta(minutes=3))
    assert hdr(sii.get_token(signed_get_token(seed)), "ESTADO") == "08"


def test_an_unknown_seed_is_refused(sii):
    assert hdr(sii.get_token(signed_get_token("999999999999")), "ESTADO") == "08"


def test_an_unsigned_get_token_is_refused(sii):
    xml = f"<getToken><item><Semilla>{sii.seed()}</Semilla></item></getToken>"
    root = sii.get_token(xml)
    assert hdr(root, "ESTADO") == "02"


def test_a_tampered_get_token_is_refused(sii):
    seed = sii.seed()
    other = sii.seed()
    xml = signed_get_token(seed).replace(f"<Semilla>{seed}<", f"<Semilla>{other}<")
    assert hdr(sii.get_token(xml), "ESTADO") == "04"


def test_a_get_token_without_certificate_is_error_11(sii):
    xml = signed_get_token(sii.seed())
    root = etree.fromstring(xml)
    x509_data = root.find(".//{http://www.w3.org/2000/09/xmldsig#}X509Data")
    x509_data.getparent().remove(x509_data)
    answer = sii.get_token(etree.tostring(root, encoding="unicode"))
    assert hdr(answer, "ESTADO") == "11"
    assert "Certificate no existe" in hdr(answer, "GLOSA")


def test_malformed_xml_is_error_01(sii):
    assert hdr(sii.get_token("<getToken><item>"), "ESTADO") == "01"


def test_an_expired_certificate_gets_no_token(sii):
    from dte.core.certificate import load_pkcs12

    expired = load_pkcs12(fresh_certificate(days_valid=-1), CERT_PASSWORD)
    assert hdr(sii.get_token(signed_get_token(sii.seed(), expired)), "ESTADO") == "-3"


def test_another_holder_gets_a_token_with_its_own_rut(sii):
    from dte.core.certificate import load_pkcs12

    other = load_pkcs12(fresh_certificate(days_valid=30, rut="11111111-1"), CERT_PASSWORD)
    root = sii.get_token(signed_get_token(sii.seed(), other))
    assert Token.objects.get(value=root.findtext("{*}RESP_BODY/TOKEN")).rut == "11111111-1"


@pytest.mark.parametrize(
    ("token", "estado"),
    [("", "001"), ("NOEXISTE123", "003"), ("expired", "002"), ("boleta", "003")],
)
def test_status_queries_answer_token_errors(sii, token, estado):
    if token == "expired":
        token = make_token(ttl=-1)
    elif token == "boleta":
        token = make_token(channel=Channel.BOLETA)  # boleta tokens are not SOAP tokens
    root = sii.est_up("1234567890", token)
    assert hdr(root, "ESTADO") == estado
    answer = sii.est_dte(token, tipo=33, folio=1, monto=1)
    assert hdr(answer, "ESTADO") == estado


def test_token_lifetime_is_a_setting(sii, settings):
    settings.SII_SANDBOX_TOKEN_TTL = 5
    root = sii.get_token(signed_get_token(sii.seed()))
    token = Token.objects.get(value=root.findtext("{*}RESP_BODY/TOKEN"))
    assert token.expires_at - token.created_at == timedelta(seconds=5)


@pytest.mark.parametrize("service", ["CrSeed", "GetTokenFromSeed", "QueryEstUp", "QueryEstDte"])
def test_wsdl_is_the_real_one_pointing_at_the_sandbox(client, service):
    response = client.get(f"{PREFIX}/DTEWS/{service}.jws?WSDL")
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == f"http://testserver{PREFIX}/DTEWS/{service}.jws"
    assert root.get("targetNamespace") == f"https://maullin.sii.cl/DTEWS/{service}.jws"


def test_the_answer_is_an_axis_rpc_envelope_with_the_xml_as_a_string(sii):
    response = sii.soap_raw("CrSeed", "getSeed")
    assert response["Content-Type"].startswith("text/xml")
    envelope = etree.fromstring(response.content)
    returned = envelope.find(
        ".//{https://maullin.sii.cl/DTEWS/CrSeed.jws}getSeedResponse/getSeedReturn"
    )
    assert returned.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "xsd:string"
    assert returned.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert hdr(parse_answer(returned.text), "ESTADO") == "00"


def test_unknown_operation_is_a_soap_fault(sii):
    response = sii.soap_raw("CrSeed", "getNothing")
    assert response.status_code == 500
    fault = etree.fromstring(response.content).find(".//{*}Fault")
    assert "getNothing" in fault.findtext("faultstring")


def test_garbage_is_a_soap_fault(client):
    response = client.post(f"{PREFIX}/DTEWS/CrSeed.jws", data=b"hola", content_type="text/xml")
    assert response.status_code == 500
    assert b"Fault" in response.content


def test_parameters_are_read_whatever_their_prefix(sii):
    body = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        '<x:getToken xmlns:x="urn:any"><x:pszXml>&lt;getToken/&gt;</x:pszXml></x:getToken>'
        "</s:Body></s:Envelope>"
    )
    response = Client().post(
        f"{PREFIX}/DTEWS/GetTokenFromSeed.jws", data=body, content_type="text/xml"
    )
    returned = etree.fromstring(response.content).find(".//getTokenReturn")
    assert hdr(parse_answer(returned.text), "ESTADO") == "06"  # read: no Semilla in it


@pytest.mark.django_db(transaction=True)
def test_zeep_gets_a_seed_and_a_token_over_real_http(live_server, sandbox):
    zeep = pytest.importorskip("zeep")
    requests = pytest.importorskip("requests")
    base = f"{live_server.url}{PREFIX}/DTEWS"
    # No keep-alive: no server thread is left waiting on a connection after the test.
    from dte.sii.client import one_request_per_connection

    with one_request_per_connection(requests.Session()) as session:
        transport = zeep.Transport(session=session)

        def service(name: str):
            return zeep.Client(f"{base}/{name}.jws?WSDL", transport=transport).service

        seed_answer = parse_answer(service("CrSeed").getSeed())
        assert hdr(seed_answer, "ESTADO") == "00"
        seed = seed_answer.findtext("{*}RESP_BODY/SEMILLA")

        token_answer = parse_answer(service("GetTokenFromSeed").getToken(signed_get_token(seed)))
        assert hdr(token_answer, "ESTADO") == "00"
        token = token_answer.findtext("{*}RESP_BODY/TOKEN")

        status = parse_answer(service("QueryEstUp").getEstUp("76086428", "5", "1234567890", token))
    assert hdr(status, "ESTADO") == "-11"  # authenticated; the track id is not this company's
    assert hdr(status, "ERR_CODE") == "1"
