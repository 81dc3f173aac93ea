"""dte.core.verify: real SII samples, tampering, and documents signed here (test material)."""

import base64
import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import xmlsec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree

from dte.core import testmaterial
from dte.core.caf import official_sii_keys
from dte.core.schemas import SchemaKind, validate
from dte.core.verify import Report, verify_xml

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
SAMPLES = SHARED / "sii" / "samples" / "dte"
NC_SAMPLE = SAMPLES / "DTE--96670340-7--61--110616.xml"
OFFICIAL_SAMPLE = SAMPLES / "EnvioDTE_F60T33_ejemplo_oficial_SII.xml"

SII_NS = "http://www.sii.cl/SiiDte"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
EMISOR = "76086428-5"
RECEPTOR = "96790240-3"
IDK = testmaterial.SANDBOX_IDK


def sample_text(path: Path) -> str:
    return path.read_bytes().decode("iso-8859-1")


def checks_of(report: Report, index: int = 0) -> dict[str, bool]:
    return {check.name: check.ok for check in report.documents[index].checks}


def detail(report: Report, name: str, index: int | None = 0) -> str:
    found = report.check(name) if index is None else report.documents[index].check(name)
    assert found is not None
    return found.detail


# --- Test material: a CAF signed by a sandbox "SII" key and a self-signed certificate --------


@dataclass(frozen=True)
class Material:
    sii_public: RSAPublicKey
    caf_key: RSAPrivateKey
    cafs: dict[int, str]  # tipo -> the flattened <CAF>…</CAF> element, as TEDs carry it
    cert_key: RSAPrivateKey
    cert_pem: bytes

    @property
    def sii_keys(self) -> dict[int, RSAPublicKey]:
        return {IDK: self.sii_public}


def _caf_element(autorizacion: bytes) -> str:
    text = autorizacion.decode("iso-8859-1")
    match = re.search(r"<CAF\b.*?</CAF>", text, re.DOTALL)
    assert match is not None
    return re.sub(r">\s+<", "><", match.group(0))


@pytest.fixture(scope="module")
def material() -> Material:
    sii_key = testmaterial.generate_sii_key()
    caf_key = testmaterial.generate_caf_key()
    cafs = {
        tipo: _caf_element(
            testmaterial.make_caf(
                sii_key=sii_key,
                idk=IDK,
                rut_emisor=EMISOR,
                razon_social="Comercial Ñandú & Cía Ltda",
                tipo_dte=tipo,
                folio_desde=1,
                folio_hasta=5000,
                fecha_autorizacion=date(2026, 11, 1),
                folio_key=caf_key,
            )
        )
        for tipo in (33, 39, 46)
    }
    cert_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p12 = testmaterial.make_test_certificate(
        rut="13456789-9",
        holder_name="Juana Pérez Soto",
        password="",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2028, 1, 1, tzinfo=UTC),
        key=cert_key,
    )
    _, certificate, _ = pkcs12.load_key_and_certificates(p12, None)
    assert certificate is not None
    return Material(
        sii_public=sii_key.public_key(),
        caf_key=caf_key,
        cafs=cafs,
        cert_key=cert_key,
        cert_pem=certificate.public_bytes(serialization.Encoding.PEM),
    )


# --- Documents built and signed here ---------------------------------------------------------


@dataclass(frozen=True)
class Line:
    name: str
    quantity: int
    price: int
    exempt: bool = False

    @property
    def amount(self) -> int:
        return self.quantity * self.price


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def factura_totales(lines: Sequence[Line], global_discount: int = 0) -> dict[str, int]:
    neto = sum(line.amount for line in lines if not line.exempt) - global_discount
    exento = sum(line.amount for line in lines if line.exempt)
    iva = half_up(neto * 19, 100)
    return {
        "MntNeto": neto,
        "MntExe": exento,
        "TasaIVA": 19,
        "IVA": iva,
        "MntTotal": neto + exento + iva,
    }


def boleta_totales(lines: Sequence[Line]) -> dict[str, int]:
    total = sum(line.amount for line in lines)
    neto = half_up(total * 100, 119)
    return {"MntNeto": neto, "IVA": total - neto, "MntTotal": total}


def documento_xml(
    material: Material,
    *,
    tipo: int = 33,
    folio: int = 1,
    lines: Sequence[Line] = (Line("Diseño web & <hosting> anual para Ñandú", 2, 45_000),),
    receptor: str = "Cliente Ejemplo & Cía S.A.",
    totales: dict[str, int | str] | None = None,
    extra_after_detalle: str = "",
) -> str:
    """A Documento (no namespace declaration: it sits inside <DTE xmlns=SiiDte>), with a TED."""
    boleta = tipo in (39, 41)
    amounts: dict[str, int | str] = dict(
        totales or (boleta_totales(lines) if boleta else factura_totales(lines))
    )
    fecha = "2026-11-23"
    if boleta:
        id_doc = f"<TipoDTE>{tipo}</TipoDTE><Folio>{folio}</Folio><FchEmis>{fecha}</FchEmis>"
        id_doc += "<IndServicio>3</IndServicio>"
        emisor = (
            f"<RUTEmisor>{EMISOR}</RUTEmisor><RznSocEmisor>Comercial Ñandú &amp; Cía Ltda"
            "</RznSocEmisor><GiroEmisor>Venta al por menor</GiroEmisor>"
            "<DirOrigen>Teatinos 120</DirOrigen><CmnaOrigen>Santiago</CmnaOrigen>"
        )
        receptor_xml = f"<RUTRecep>66666666-6</RUTRecep><RznSocRecep>{esc(receptor)}</RznSocRecep>"
        rut_recep = "66666666-6"
    else:
        id_doc = f"<TipoDTE>{tipo}</TipoDTE><Folio>{folio}</Folio><FchEmis>{fecha}</FchEmis>"
        emisor = (
            f"<RUTEmisor>{EMISOR}</RUTEmisor><RznSoc>Comercial Ñandú &amp; Cía Ltda</RznSoc>"
            "<GiroEmis>Servicios informáticos</GiroEmis><Acteco>620200</Acteco>"
            "<DirOrigen>Teatinos 120</DirOrigen><CmnaOrigen>Santiago</CmnaOrigen>"
        )
        receptor_xml = (
            f"<RUTRecep>{RECEPTOR}</RUTRecep><RznSocRecep>{esc(receptor)}</RznSocRecep>"
            "<GiroRecep>Comercio</GiroRecep><DirRecep>Moneda 970</DirRecep>"
            "<CmnaRecep>Santiago</CmnaRecep>"
        )
        rut_recep = RECEPTOR
    totales_xml = "".join(f"<{name}>{value}</{name}>" for name, value in amounts.items())
    detalle = "".join(
        f"<Detalle><NroLinDet>{n}</NroLinDet>{'<IndExe>1</IndExe>' if line.exempt else ''}"
        f"<NmbItem>{esc(line.name)}</NmbItem><QtyItem>{line.quantity}</QtyItem>"
        f"<PrcItem>{line.price}</PrcItem><MontoItem>{line.amount}</MontoItem></Detalle>"
        for n, line in enumerate(lines, start=1)
    )
    dd = (
        f"<DD><RE>{EMISOR}</RE><TD>{tipo}</TD><F>{folio}</F><FE>{fecha}</FE>"
        f"<RR>{rut_recep}</RR><RSR>{esc(receptor[:40])}</RSR><MNT>{amounts['MntTotal']}</MNT>"
        f"<IT1>{esc(lines[0].name[:40])}</IT1>{material.cafs[tipo]}"
        "<TSTED>2026-11-23T10:00:00</TSTED></DD>"
    )
    frmt = material.caf_key.sign(dd.encode("iso-8859-1"), padding.PKCS1v15(), hashes.SHA1())
    ted = (
        f'<TED version="1.0">{dd}<FRMT algoritmo="SHA1withRSA">'
        f"{base64.b64encode(frmt).decode()}</FRMT></TED>"
    )
    documento = (
        f'<Documento ID="F{folio}T{tipo}"><Encabezado><IdDoc>{id_doc}</IdDoc>'
        f"<Emisor>{emisor}</Emisor><Receptor>{receptor_xml}</Receptor>"
        f"<Totales>{totales_xml}</Totales></Encabezado>{detalle}{extra_after_detalle}{ted}"
        "<TmstFirma>2026-11-23T10:00:01</TmstFirma></Documento>"
    )
    # Indented like the SII's own files: DD is flattened again when verifying FRMT.
    return documento.replace("><", ">\n<")


def sign(root: etree._Element, uri: str, material: Material) -> None:
    """Enveloped XML-DSig as the SII uses it, appended as the last child of `root`."""
    signature = xmlsec.template.create(
        root, xmlsec.constants.TransformInclC14N, xmlsec.constants.TransformRsaSha1
    )
    root.append(signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha1, uri=uri)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformInclC14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.add_key_value(key_info)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(key_info))
    private_pem = material.cert_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = xmlsec.Key.from_memory(private_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(material.cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    xmlsec.tree.add_ids(root, ["ID"])
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.sign(signature)
    # xmlsec leaves KeyValue empty; the SII's layout (and schema) wants RSAKeyValue in it.
    numbers = material.cert_key.public_key().public_numbers()
    # (lxml's find() misses nodes xmlsec created outside the parser's name dictionary.)
    key_value = next(node for node in signature.iter() if node.tag == f"{DS}KeyValue")
    rsa_key_value = etree.SubElement(key_value, f"{DS}RSAKeyValue")
    for name, number in (("Modulus", numbers.n), ("Exponent", numbers.e)):
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        etree.SubElement(rsa_key_value, f"{DS}{name}").text = base64.b64encode(raw).decode()


def dte_xml(documento: str, *, declarations: str = "") -> bytes:
    """<DTE xmlns=SiiDte> around a Documento, as ISO-8859-1 bytes with their declaration."""
    head = f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<DTE xmlns="{SII_NS}"{declarations}'
    return (f'{head} version="1.0">\n{documento}\n</DTE>').encode("iso-8859-1")


def signed_dte(material: Material, *, declarations: str = "", **kwargs: Any) -> bytes:
    """A standalone signed <DTE xmlns=SiiDte>, ISO-8859-1 bytes with declaration."""
    documento = documento_xml(material, **kwargs)
    root = etree.fromstring(dte_xml(documento, declarations=declarations))
    match = re.search(r'ID="([^"]+)"', documento)
    assert match is not None
    sign(root, f"#{match.group(1)}", material)
    return to_bytes(root)


def envelope(dtes: Sequence[bytes], material: Material, *, kind: str = "EnvioDTE") -> bytes:
    """Signed DTEs inserted as unchanged text into a signed envelope (with xmlns:xsi)."""
    tipos: dict[str, int] = {}
    for dte in dtes:
        tipo = re.search(rb"<TipoDTE>(\d+)</TipoDTE>", dte)
        assert tipo is not None
        tipos[tipo.group(1).decode()] = tipos.get(tipo.group(1).decode(), 0) + 1
    subtotales = "".join(
        f"<SubTotDTE><TpoDTE>{tipo}</TpoDTE><NroDTE>{count}</NroDTE></SubTotDTE>"
        for tipo, count in tipos.items()
    )
    head = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        f'<{kind} xmlns="{SII_NS}" xmlns:xsi="{XSI}" '
        f'xsi:schemaLocation="{SII_NS} {kind}_v1{"1" if kind == "EnvioBOLETA" else "0"}.xsd" '
        'version="1.0">\n<SetDTE ID="SetDoc">\n<Caratula version="1.0">'
        f"<RutEmisor>{EMISOR}</RutEmisor><RutEnvia>13456789-9</RutEnvia>"
        "<RutReceptor>60803000-K</RutReceptor><FchResol>2026-01-15</FchResol>"
        f"<NroResol>0</NroResol><TmstFirmaEnv>2026-11-23T10:05:00</TmstFirmaEnv>{subtotales}"
        "</Caratula>\n"
    ).encode("iso-8859-1")
    body = b"\n".join(re.sub(rb"^<\?xml[^>]*\?>\s*", b"", dte) for dte in dtes)
    root = etree.fromstring(head + body + f"\n</SetDTE>\n</{kind}>".encode())
    sign(root, "#SetDoc", material)
    return to_bytes(root)


def to_bytes(root: etree._Element) -> bytes:
    data: bytes = etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)
    return data


# --- The real SII-accepted nota de crédito --------------------------------------------------


def test_real_nota_de_credito_verifies_fully() -> None:
    report = verify_xml(NC_SAMPLE.read_bytes())

    assert report.ok, report.to_dict()
    assert report.kind == "DTE"
    assert [c.name for c in report.checks] == ["xml", "schema"]
    document = report.documents[0]
    assert (document.tipo_dte, document.folio, document.rut_emisor) == (61, 110616, "96670340-7")
    assert [c.name for c in document.checks] == ["signature", "ted", "caf", "totals"]
    assert "IDK 300" in detail(report, "caf")
    assert "DocPersonalizado" in detail(report, "schema", None)
    assert "namespace added" in detail(report, "schema", None)
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_caf_of_an_unknown_idk_fails_only_the_caf_check() -> None:
    report = verify_xml(NC_SAMPLE.read_bytes(), sii_keys={100: official_sii_keys()[100]})

    assert checks_of(report) == {"signature": True, "ted": True, "caf": False, "totals": True}
    assert "IDK 300 is unknown" in detail(report, "caf")


def _flip_base64(text: str, element: str) -> str:
    """Change one character in the middle of an element's base64 content."""
    match = re.search(rf"<{element}\b[^>]*>\s*([A-Za-z0-9+/]{{20}})", text)
    assert match is not None
    position = match.start(1) + 10
    replacement = "A" if text[position] != "A" else "B"
    return text[:position] + replacement + text[position + 1 :]


def _tamper(old: str, new: str) -> str:
    text = sample_text(NC_SAMPLE)
    assert text.count(old) == 1
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("tampered", "expected", "reason"),
    [
        pytest.param(
            _tamper("<MntTotal>57347078</MntTotal>", "<MntTotal>57347079</MntTotal>"),
            {"signature": False, "ted": False, "caf": True, "totals": False},
            {"signature": "digest does not match", "ted": "DD/MNT", "totals": "MntTotal"},
            id="MntTotal+1",
        ),
        pytest.param(
            _tamper(
                "<RznSocRecep>Comercializadora S.A</RznSocRecep>",
                "<RznSocRecep>Comercializadora S.B</RznSocRecep>",
            ),
            {"signature": False, "ted": True, "caf": True, "totals": True},
            {"signature": "digest does not match"},
            id="RznSocRecep",
        ),
        pytest.param(
            _flip_base64(sample_text(NC_SAMPLE), "SignatureValue"),
            {"signature": False, "ted": True, "caf": True, "totals": True},
            {"signature": "digest matches but the SignatureValue does not verify"},
            id="SignatureValue",
        ),
        pytest.param(
            _flip_base64(sample_text(NC_SAMPLE), "FRMT"),
            {"signature": False, "ted": False, "caf": True, "totals": True},
            {"ted": "FRMT does not verify", "signature": "digest does not match"},
            id="FRMT",
        ),
        pytest.param(
            _flip_base64(sample_text(NC_SAMPLE), "FRMA"),
            {"signature": False, "ted": False, "caf": False, "totals": True},
            {"caf": "FRMA does not verify", "ted": "FRMT does not verify"},
            id="FRMA",
        ),
    ],
)
def test_tampering_fails_the_right_checks(
    tampered: str, expected: dict[str, bool], reason: dict[str, str]
) -> None:
    report = verify_xml(tampered.encode("iso-8859-1"))

    assert not report.ok
    assert checks_of(report) == expected
    for name, text in reason.items():
        assert text in detail(report, name)


# --- The SII's official EnvioDTE example ---------------------------------------------------


def test_official_example_envelope_in_context_and_its_known_broken_document_signature() -> None:
    report = verify_xml(OFFICIAL_SAMPLE.read_bytes())

    assert report.kind == "EnvioDTE"
    assert report.check("xml") == report.checks[0] and report.checks[0].ok
    assert report.checks[1].name == "schema" and report.checks[1].ok
    # The SetDTE digest verifies in the envelope's context, and its SignatureValue verifies
    # with the sample's RSAKeyValue; but that key is not its X509Certificate's key (SOURCES.md),
    # so the certificate holder is not proven to have signed: the check fails and says why.
    envelope_signature = detail(report, "signature", None)
    assert "the digest matches" in envelope_signature
    assert "verifies only with the RSAKeyValue key" in envelope_signature
    # The Documento signature is known broken (digest over another C14N): exactly that fails.
    assert checks_of(report) == {"signature": False, "ted": True, "caf": True, "totals": True}
    assert "digest does not match" in detail(report, "signature")
    assert "IDK 100" in detail(report, "caf")
    assert not report.ok


# --- Documents signed here -----------------------------------------------------------------


def test_a_dte_signed_here_verifies(material: Material) -> None:
    dte = signed_dte(material)

    report = verify_xml(dte, sii_keys=material.sii_keys)

    assert report.ok, report.to_dict()
    assert "Juana Pérez Soto" in detail(report, "signature")
    assert validate(SchemaKind.DTE, dte) == []


def test_a_signed_dte_inside_an_envelope_still_verifies_standalone(material: Material) -> None:
    dte = signed_dte(material)
    data = envelope([dte, signed_dte(material, folio=2)], material)

    report = verify_xml(data, sii_keys=material.sii_keys)

    assert report.ok, report.to_dict()
    assert [c.name for c in report.checks] == ["xml", "schema", "signature"]
    assert [d.folio for d in report.documents] == [1, 2]
    # The rule matters: in the envelope's context (xmlns:xsi in scope) the digest differs.
    root = etree.fromstring(data)
    documento = root.find(f"{{{SII_NS}}}SetDTE/{{{SII_NS}}}DTE/{{{SII_NS}}}Documento")
    assert documento is not None
    in_context = etree.tostring(etree.fromstring(etree.tostring(documento)), method="c14n")
    digest_value = root.findtext(f".//{DS}DigestValue")
    assert b"xmlns:xsi" in in_context
    assert base64.b64encode(hashlib.sha1(in_context).digest()).decode() != digest_value


def test_a_dte_signed_with_its_own_xsi_declaration_keeps_it_standalone(
    material: Material,
) -> None:
    """Only the envelope's declarations are left out: the DTE's own ones were signed."""
    dte = signed_dte(material, declarations=f' xmlns:xsi="{XSI}"')
    assert verify_xml(dte, sii_keys=material.sii_keys).ok

    report = verify_xml(envelope([dte], material), sii_keys=material.sii_keys)

    assert report.ok, report.to_dict()


def test_an_envelope_with_a_tampered_document(material: Material) -> None:
    good = signed_dte(material, folio=1)
    bad = signed_dte(material, folio=2).replace(b"<RUTRecep>96790240-3", b"<RUTRecep>96790240-4")
    report = verify_xml(envelope([good, bad], material), sii_keys=material.sii_keys)

    assert [c.ok for c in report.checks] == [True, True, True]  # the envelope itself is fine
    assert report.documents[0].ok
    assert checks_of(report, 1) == {"signature": False, "ted": False, "caf": True, "totals": True}
    assert "DD/RR" in detail(report, "ted", 1)
    assert not report.ok


def test_a_boleta_envelope_verifies(material: Material) -> None:
    lines = (Line("Café en grano 1 kg", 2, 11_990), Line("Taza", 1, 4_500))
    dtes = [signed_dte(material, tipo=39, folio=n, lines=lines) for n in (7, 8)]
    data = envelope(dtes, material, kind="EnvioBOLETA")

    report = verify_xml(data, sii_keys=material.sii_keys)

    assert report.kind == "EnvioBOLETA"
    assert report.ok, report.to_dict()
    assert "EnvioBOLETA_v11" in detail(report, "schema", None)


def test_a_lone_boleta_is_validated_against_the_boleta_schema(material: Material) -> None:
    dte = signed_dte(material, tipo=39, lines=(Line("Taza", 1, 4_500),))

    report = verify_xml(dte, sii_keys=material.sii_keys)

    assert report.ok, report.to_dict()
    assert "boleta DTE type of EnvioBOLETA_v11" in detail(report, "schema", None)


def test_boleta_total_not_matching_its_lines_fails_totals(material: Material) -> None:
    lines = (Line("Café en grano 1 kg", 2, 11_990),)
    dte = signed_dte(material, tipo=39, lines=lines, totales={"MntTotal": 23_981})
    report = verify_xml(envelope([dte], material, kind="EnvioBOLETA"), sii_keys=material.sii_keys)

    assert checks_of(report) == {"signature": True, "ted": True, "caf": True, "totals": False}
    assert "MntTotal is 23981 but the detail lines give 23980" in detail(report, "totals")


def test_exempt_lines_and_a_global_discount_are_totalled(material: Material) -> None:
    lines = (Line("Asesoría", 1, 100_000), Line("Libro técnico", 2, 15_000, exempt=True))
    discount = "<DscRcgGlobal><NroLinDR>1</NroLinDR><TpoMov>D</TpoMov><TpoValor>%</TpoValor>"
    discount += "<ValorDR>10</ValorDR></DscRcgGlobal>"
    totales = factura_totales(lines, global_discount=10_000)
    dte = signed_dte(material, lines=lines, totales=totales, extra_after_detalle=discount)

    report = verify_xml(dte, sii_keys=material.sii_keys)

    assert report.ok, report.to_dict()
    assert totales == {
        "MntNeto": 90_000,
        "MntExe": 30_000,
        "TasaIVA": 19,
        "IVA": 17_100,
        "MntTotal": 137_100,
    }


def test_wrong_iva_fails_totals(material: Material) -> None:
    lines = (Line("Asesoría", 1, 100_000),)
    totales = {"MntNeto": 100_000, "TasaIVA": 19, "IVA": 19_001, "MntTotal": 119_001}
    report = verify_xml(
        signed_dte(material, lines=lines, totales=totales), sii_keys=material.sii_keys
    )

    assert checks_of(report) == {"signature": True, "ted": True, "caf": True, "totals": False}
    assert detail(report, "totals") == "IVA is 19001 but MntNeto × TasaIVA / 100 is 19000"


def test_iva_is_rounded_half_up(material: Material) -> None:
    lines = (Line("Asesoría", 1, 50),)  # 50 × 19 / 100 = 9.5 -> 10 (banker's rounding gives 10)
    lines_odd = (Line("Asesoría", 1, 150),)  # 28.5 -> 29 (banker's rounding would give 28)
    for items, iva in ((lines, 10), (lines_odd, 29)):
        neto = items[0].amount
        totales = {"MntNeto": neto, "TasaIVA": 19, "IVA": iva, "MntTotal": neto + iva}
        dte = signed_dte(material, lines=items, totales=totales)
        assert verify_xml(dte, sii_keys=material.sii_keys).ok


def test_factura_de_compra_with_iva_retained_in_full(material: Material) -> None:
    lines = (Line("Chatarra de cobre", 100, 1_000),)
    retained = "<TipoImp>15</TipoImp><TasaImp>19</TasaImp><MontoImp>19000</MontoImp>"
    totales: dict[str, int | str] = {
        "MntNeto": 100_000,
        "TasaIVA": 19,
        "IVA": 19_000,
        "ImptoReten": retained,
        "MntTotal": 100_000,
    }
    dte = signed_dte(material, tipo=46, lines=lines, totales=totales)

    report = verify_xml(dte, sii_keys=material.sii_keys)

    assert report.ok, report.to_dict()
    assert detail(report, "totals") == "Totales match the detail lines"


def test_unmodelled_features_skip_totals_as_ok(material: Material) -> None:
    documento = documento_xml(material).replace(
        "<NroLinDet>1</NroLinDet>", "<NroLinDet>1</NroLinDet>\n<IndExe>2</IndExe>"
    )
    root = etree.fromstring(dte_xml(documento))
    sign(root, "#F1T33", material)

    report = verify_xml(etree.tostring(root), sii_keys=material.sii_keys)

    assert report.documents[0].check("totals") is not None
    assert checks_of(report)["totals"] is True
    assert detail(report, "totals") == "not checked: IndExe=2"


def test_a_folio_outside_the_caf_range_fails_ted(material: Material) -> None:
    report = verify_xml(signed_dte(material, folio=5001), sii_keys=material.sii_keys)

    assert checks_of(report) == {"signature": True, "ted": False, "caf": True, "totals": True}
    assert "folio 5001 is outside the CAF range 1-5000" in detail(report, "ted")


def test_an_unsigned_dte_fails_signature(material: Material) -> None:
    report = verify_xml(dte_xml(documento_xml(material)), sii_keys=material.sii_keys)

    assert not report.checks[1].ok  # the schema requires the Signature
    assert checks_of(report) == {"signature": False, "ted": True, "caf": True, "totals": True}


def test_a_signature_over_another_element_is_refused(material: Material) -> None:
    """A valid signature that does not reference the Documento proves nothing about it."""
    dte = signed_dte(material).replace(b'URI="#F1T33"', b'URI="#F1T33x"')
    report = verify_xml(dte, sii_keys=material.sii_keys)

    assert not checks_of(report)["signature"]
    assert "one Reference to #F1T33" in detail(report, "signature")


# --- Hostile or wrong input ------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<DTE xmlns="http://www.sii.cl/SiiDte" version="1.0"><Documento ID="X">&lol9;</Documento></DTE>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE DTE [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<DTE xmlns="http://www.sii.cl/SiiDte" version="1.0"><Documento ID="X">&x;</Documento></DTE>"""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"<DTE><Documento></DTE>", "malformed XML", id="malformed"),
        pytest.param(b"", "empty document", id="empty"),
        pytest.param(b"\x00\xff garbage", "malformed XML", id="binary"),
        pytest.param(BILLION_LAUGHS, "", id="billion-laughs"),
        pytest.param(XXE, "DOCTYPE", id="external-entity"),
    ],
)
def test_bad_xml_gives_a_failed_report(data: bytes, message: str) -> None:
    report = verify_xml(data)

    assert not report.ok
    assert report.kind == "unknown"
    assert [(c.name, c.ok) for c in report.checks] == [("xml", False)]
    assert message in report.checks[0].detail
    assert report.documents == ()
    json.dumps(report.to_dict())


def test_an_unknown_root_element_gives_a_failed_report() -> None:
    report = verify_xml(b'<?xml version="1.0"?><Factura xmlns="urn:other"><DTE/></Factura>')

    assert not report.ok
    assert [(c.name, c.ok) for c in report.checks] == [("xml", True), ("schema", False)]
    assert "unknown root element" in report.checks[1].detail


def test_a_dte_without_documento_does_not_crash() -> None:
    report = verify_xml(f'<DTE xmlns="{SII_NS}" version="1.0"><Foo/></DTE>'.encode())

    assert not report.ok
    assert not report.documents[0].ok


def test_an_envelope_without_documents_is_not_ok(material: Material) -> None:
    report = verify_xml(envelope([], material), sii_keys=material.sii_keys)

    assert report.documents == ()
    assert not report.ok


# --- Independent check with the xmlsec1 command line tool ------------------------------------


def _xmlsec1_verifies(xml: bytes, public_key: RSAPublicKey, node: str, tmp_path: Path) -> bool:
    """xmlsec1 with the given key only (KeyInfo removed, so it cannot pick another key)."""
    root = etree.fromstring(xml)
    for key_info in root.iter(f"{DS}KeyInfo"):
        key_info.getparent().remove(key_info)
    document, key = tmp_path / "doc.xml", tmp_path / "key.pem"
    document.write_bytes(etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True))
    key.write_bytes(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    command = ["xmlsec1", "--verify", "--pubkey-pem", str(key), "--id-attr:ID", node, str(document)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


needs_xmlsec1 = pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 not installed")


@needs_xmlsec1
def test_xmlsec1_agrees_on_the_real_nota_de_credito(tmp_path: Path) -> None:
    from cryptography import x509

    text = sample_text(NC_SAMPLE)
    match = re.search(r"<X509Certificate>(.*?)</X509Certificate>", text, re.DOTALL)
    assert match is not None
    certificate = x509.load_der_x509_certificate(base64.b64decode("".join(match.group(1).split())))
    key = certificate.public_key()
    assert isinstance(key, RSAPublicKey)
    assert _xmlsec1_verifies(NC_SAMPLE.read_bytes(), key, "Documento", tmp_path)
    tampered = _tamper("<MntTotal>57347078</MntTotal>", "<MntTotal>57347079</MntTotal>")
    assert not _xmlsec1_verifies(tampered.encode("iso-8859-1"), key, "Documento", tmp_path)


@needs_xmlsec1
def test_xmlsec1_agrees_on_a_dte_signed_here(material: Material, tmp_path: Path) -> None:
    node = f"{SII_NS}:Documento"
    assert _xmlsec1_verifies(signed_dte(material), material.cert_key.public_key(), node, tmp_path)


# --- Performance ------------------------------------------------------------------------------


def test_a_1000_document_envelope_verifies_in_well_under_a_few_seconds(material: Material) -> None:
    lines = (Line("Servicio mensual", 1, 10_000), Line("Soporte", 3, 2_500))
    dtes = [signed_dte(material, folio=folio, lines=lines) for folio in range(1, 1001)]
    data = envelope(dtes, material)

    start = time.perf_counter()
    report = verify_xml(data, sii_keys=material.sii_keys)
    elapsed = time.perf_counter() - start

    assert report.ok
    assert len(report.documents) == 1000
    assert elapsed < 5, f"verification took {elapsed:.2f} s"
