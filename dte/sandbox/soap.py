"""SOAP 1.1 as the SII's services speak it: the Axis ones (rpc/encoded, one XML string returned)
and the RCV's JAX-WS one (rpc/literal, a structure returned). Read a call, write an answer or a
Fault, and serve each service's WSDL with its address pointing at this sandbox."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

from dte.core.schemas import XmlError, safe_parse

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_DIR = Path(__file__).resolve().parent / "wsdl"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
# The services' namespace, as in the WSDLs (the real SII answers in it too).
SERVICE_NS = "https://maullin.sii.cl/DTEWS/{service}.jws"
# The RCV service's (RegistroReclamoDteService.wsdl).
RCV_NS = "http://ws.registroreclamodte.diii.sdi.sii.cl"


class SoapError(ValueError):
    """The request is not a SOAP call we can read."""


@dataclass(frozen=True, slots=True)
class SoapCall:
    operation: str
    params: dict[str, str]


def parse_call(body: bytes) -> SoapCall:
    """The operation (first element of Body) and its parameters (its child elements, by local
    name, whatever their prefix or xsi:type: rpc/encoded or rpc/literal alike)."""
    try:
        root = safe_parse(body)
    except XmlError as exc:
        raise SoapError(f"Mensaje SOAP ilegible: {exc}") from None
    if etree.QName(root).localname != "Envelope":
        raise SoapError("El mensaje no es un sobre SOAP (falta Envelope)")
    soap_body = next(
        (el for el in root.iterchildren(etree.Element) if etree.QName(el).localname == "Body"),
        None,
    )
    if soap_body is None:
        raise SoapError("El sobre SOAP no tiene Body")
    operation = next(soap_body.iterchildren(etree.Element), None)
    if operation is None:
        raise SoapError("El Body SOAP no contiene una operación")
    params = {
        etree.QName(child).localname: "".join(child.itertext())
        for child in operation.iterchildren(etree.Element)
    }
    return SoapCall(etree.QName(operation).localname, params)


def response(service: str, operation: str, value: str) -> bytes:
    """An Axis rpc answer: `<ns1:{op}Response><{op}Return xsi:type="xsd:string">` + the escaped
    XML document the SII returns as a string."""
    namespace = SERVICE_NS.format(service=service)
    escaped = escape(value, {'"': "&quot;"})
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body>"
        f'<ns1:{operation}Response soapenv:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"'
        f' xmlns:ns1="{namespace}">'
        f'<{operation}Return xsi:type="xsd:string">{escaped}</{operation}Return>'
        f"</ns1:{operation}Response>"
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def literal_response(operation: str, parts: str, namespace: str = RCV_NS) -> bytes:
    """A JAX-WS rpc/literal answer, as the SII's RCV service writes it (its manual's examples):
    `<S:Envelope><S:Body><ns2:{op}Response xmlns:ns2=…>` + the parts' XML, unqualified."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<S:Envelope xmlns:S="{SOAP_ENV_NS}"><S:Body>'
        f'<ns2:{operation}Response xmlns:ns2="{namespace}">{parts}</ns2:{operation}Response>'
        "</S:Body></S:Envelope>"
    ).encode()


def fault(code: str, message: str) -> bytes:
    """A SOAP 1.1 Fault (sent with HTTP 500, as Axis does)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>soapenv:{escape(code)}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring>"
        "<detail/>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()


@cache
def _wsdl_bytes(service: str) -> bytes:
    return (WSDL_DIR / f"{service}.wsdl").read_bytes()


def wsdl(service: str, location: str) -> bytes:
    """The service's real WSDL with soap:address/@location set to `location`."""
    root = etree.fromstring(_wsdl_bytes(service), etree.XMLParser(resolve_entities=False))
    for address in root.iter(f"{{{WSDL_SOAP_NS}}}address"):
        address.set("location", location)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
