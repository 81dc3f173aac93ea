"""dte.core.exchange: the three answers to a supplier (RespuestaDTE for the reception and for the
commercial result, EnvioRecibos), checked against the official XSDs and verified by two
independent verifiers, python-xmlsec and the xmlsec1 command."""

import base64
import copy
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import xmlsec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from lxml import etree

from dte.core import testmaterial
from dte.core.certificate import Certificate, load_pkcs12
from dte.core.exchange import (
    DECLARACION,
    Caratula,
    DteRecibido,
    EstadoDTE,
    EstadoRecepDTE,
    EstadoRecepEnv,
    RecepcionDte,
    RecepcionEnvio,
    Recibo,
    ResultadoDte,
    build_envio_recibos,
    build_recepcion_envio,
    build_resultado_dte,
)
from dte.core.schemas import XSD_DIR, SchemaKind, validate

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
OFFICIAL_XSD = SHARED / "sii" / "xsd"

NS = "http://www.sii.cl/SiiDte"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
S = f"{{{NS}}}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
DECLARATION = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'

NOSOTROS = "76086428-5"  # the receptor of the supplier's DTEs: we answer
PROVEEDOR = "96790240-3"  # the supplier
FIRMANTE = "13456789-9"
WHEN = datetime(2026, 5, 4, 15, 30, tzinfo=UTC)  # 11:30 in Santiago
SET_DIGEST = "4OTWXyRl5fw3htjTyZXQtYEsC3E="

CARATULA = Caratula(
    rut_responde=NOSOTROS,
    rut_recibe=PROVEEDOR,
    nombre_contacto="Ñandú Álvarez",
    mail_contacto="intercambio@ejemplo.cl",
)


def dte(folio: int = 1501, tipo: int = 33, monto: int = 119_000) -> DteRecibido:
    return DteRecibido(
        tipo=tipo,
        folio=folio,
        fecha_emision=date(2026, 5, 2),
        rut_emisor=PROVEEDOR,
        rut_receptor=NOSOTROS,
        monto_total=monto,
    )


@dataclass(frozen=True)
class Signer:
    certificate: Certificate
    public_key: RSAPublicKey
    cert_pem: Path


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    return _signer(tmp_path_factory.mktemp("signer"), "Juana Núñez Pérez")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    return _signer(tmp_path_factory.mktemp("stranger"), "Otro Firmante")


def _signer(folder: Path, name: str) -> Signer:
    key: RSAPrivateKey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p12 = testmaterial.make_test_certificate(
        rut=FIRMANTE,
        holder_name=name,
        password="clave",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2028, 1, 1, tzinfo=UTC),
        key=key,
    )
    certificate = load_pkcs12(p12, "clave")
    pem = folder / "cert.pem"
    pem.write_bytes(certificate.certificate.public_bytes(serialization.Encoding.PEM))
    return Signer(certificate, key.public_key(), pem)


def recepcion(**changes: object) -> RecepcionEnvio:
    base = RecepcionEnvio(
        nombre_envio="EnvioDTE_96790240-3_F1501.xml",
        fecha_recepcion=datetime(2026, 5, 3, 9, 0, tzinfo=UTC),
        cod_envio=42,
        envio_id="SetDoc",
        estado=EstadoRecepEnv.OK,
        digest=SET_DIGEST,
        rut_emisor=PROVEEDOR,
        rut_receptor=NOSOTROS,
        documentos=(
            RecepcionDte(dte(1501), EstadoRecepDTE.OK),
            RecepcionDte(dte(1502), EstadoRecepDTE.DTE_REPETIDO, "Ya recibido el 2026-05-01"),
        ),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def recepcion_xml(signer: Signer) -> bytes:
    return build_recepcion_envio(
        recepcion(), caratula=CARATULA, id_respuesta=7, timestamp=WHEN, key=signer.certificate
    )


RESULTADOS = (
    ResultadoDte(dte(1501), cod_envio=42, estado=EstadoDTE.ACEPTADO),
    ResultadoDte(dte(1502), cod_envio=42, estado=EstadoDTE.ACEPTADO_CON_DISCREPANCIAS),
    ResultadoDte(
        dte(1503, tipo=61), 43, EstadoDTE.RECHAZADO, "Mercadería no solicitada", cod_rch_dsc=-7
    ),
)


@pytest.fixture(scope="module")
def resultado_xml(signer: Signer) -> bytes:
    return build_resultado_dte(
        RESULTADOS, caratula=CARATULA, id_respuesta=8, timestamp=WHEN, key=signer.certificate
    )


RECIBOS = (
    Recibo(dte(1501), recinto="Bodega central, Ñuñoa"),
    Recibo(dte(77, tipo=52, monto=0), recinto="Oficina de Peñalolén"),
)


@pytest.fixture(scope="module")
def recibos_xml(signer: Signer) -> bytes:
    return build_envio_recibos(
        RECIBOS, caratula=CARATULA, rut_firma=FIRMANTE, timestamp=WHEN, key=signer.certificate
    )


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def signatures(root: etree._Element) -> list[etree._Element]:
    return list(root.iter(f"{DS}Signature"))


# --- Python-xmlsec --------------------------------------------------------------------------


def key_value(signature: etree._Element) -> RSAPublicKey:
    """The RSAKeyValue key of a signature (which must be the certificate's)."""

    def number(tag: str) -> int:
        found = signature.findtext(f"{DS}KeyInfo/{DS}KeyValue/{DS}RSAKeyValue/{DS}{tag}")
        assert found is not None
        return int.from_bytes(base64.b64decode("".join(found.split())), "big")

    return rsa.RSAPublicNumbers(number("Exponent"), number("Modulus")).public_key()


def xmlsec_verifies(root: etree._Element, signature: etree._Element) -> bool:
    """As verify.py does: the KeyValue key, ID attributes registered, inclusive C14N only."""
    public = key_value(signature)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    xmlsec.tree.add_ids(root, ["ID"])
    ctx = xmlsec.SignatureContext()
    for transform in (xmlsec.constants.TransformInclC14N, xmlsec.constants.TransformRsaSha1):
        ctx.enable_reference_transform(transform)
        ctx.enable_signature_transform(transform)
    ctx.enable_reference_transform(xmlsec.constants.TransformSha1)
    ctx.key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
    try:
        ctx.verify(signature)
    except xmlsec.VerificationError:
        return False
    return True


def all_verify(data: bytes) -> list[bool]:
    root = parse(data)
    return [xmlsec_verifies(root, signature) for signature in signatures(root)]


def reference_ids(root: etree._Element) -> list[str]:
    return [
        str(ref.get("URI"))
        for ref in root.iterfind(f".//{DS}Signature/{DS}SignedInfo/{DS}Reference")
    ]


# --- xmlsec1 --------------------------------------------------------------------------------

needs_xmlsec1 = pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 not installed")
ID_NODES = ("Resultado", "SetRecibos", "DocumentoRecibo")


def xmlsec1_verifies(data: bytes, cert_pem: Path, index: int, tmp_path: Path) -> bool:
    """The command-line verifier on the `index`-th Signature (1-based), with the key of the
    given certificate only: `--enabled-key-data key-name` makes it ignore the KeyInfo."""
    document = tmp_path / f"doc{index}.xml"
    document.write_bytes(data)
    command = ["xmlsec1", "--verify", "--enabled-key-data", "key-name"]
    command += ["--pubkey-cert-pem", str(cert_pem)]
    for node in ID_NODES:
        command += ["--id-attr:ID", f"{NS}:{node}"]
    command += ["--node-xpath", f"(//*[local-name()='Signature'])[{index}]", str(document)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


# --- Encoding and schema --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["RespuestaEnvioDTE_v10.xsd", "EnvioRecibos_v10.xsd", "Recibos_v10.xsd"]
)
def test_the_xsds_are_byte_identical_to_the_official_files(name: str) -> None:
    source = OFFICIAL_XSD / name
    if not source.exists():
        pytest.skip(f"{source} is not available")
    assert (XSD_DIR / name).read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    ("fixture", "kind", "root_tag"),
    [
        ("recepcion_xml", SchemaKind.RESPUESTA_DTE, "RespuestaDTE"),
        ("resultado_xml", SchemaKind.RESPUESTA_DTE, "RespuestaDTE"),
        ("recibos_xml", SchemaKind.ENVIO_RECIBOS, "EnvioRecibos"),
    ],
)
def test_each_answer_is_iso_8859_1_and_valid_against_its_xsd(
    fixture: str, kind: SchemaKind, root_tag: str, request: pytest.FixtureRequest
) -> None:
    data: bytes = request.getfixturevalue(fixture)

    assert data.startswith(DECLARATION)
    assert validate(kind, data) == []
    root = parse(data)
    assert root.tag == f"{S}{root_tag}"
    assert root.getroottree().docinfo.encoding == "ISO-8859-1"
    assert root.get(f"{{{XSI}}}schemaLocation", "").startswith(f"{NS} ")


def test_latin1_names_round_trip(recepcion_xml: bytes, recibos_xml: bytes) -> None:
    assert "Ñandú Álvarez".encode("iso-8859-1") in recepcion_xml
    assert "Ñandú".encode() not in recepcion_xml  # not UTF-8 bytes
    assert parse(recepcion_xml).findtext(f".//{S}NmbContacto") == "Ñandú Álvarez"
    recintos = [el.text for el in parse(recibos_xml).iter(f"{S}Recinto")]
    assert recintos == ["Bodega central, Ñuñoa", "Oficina de Peñalolén"]


def test_text_outside_latin1_is_replaced_and_markup_is_escaped(signer: Signer) -> None:
    data = build_envio_recibos(
        [Recibo(dte(), recinto="“Bodega” <Sur> & Cía — 50€")],
        caratula=CARATULA,
        rut_firma=FIRMANTE,
        timestamp=WHEN,
        key=signer.certificate,
    )

    assert parse(data).findtext(f".//{S}Recinto") == '"Bodega" <Sur> & Cía - 50EUR'
    assert b"&lt;Sur&gt; &amp; C\xeda" in data
    assert validate(SchemaKind.ENVIO_RECIBOS, data) == []
    assert all(all_verify(data))


def test_the_same_input_gives_the_same_bytes(signer: Signer, recibos_xml: bytes) -> None:
    again = build_envio_recibos(
        RECIBOS, caratula=CARATULA, rut_firma=FIRMANTE, timestamp=WHEN, key=signer.certificate
    )
    assert again == recibos_xml


# --- 1. RecepcionEnvio ----------------------------------------------------------------------


def test_recepcion_envio_carries_the_envelope_and_each_dte(recepcion_xml: bytes) -> None:
    root = parse(recepcion_xml)
    caratula = root.find(f"{S}Resultado/{S}Caratula")
    assert caratula is not None
    assert [child.tag.removeprefix(S) for child in caratula] == [
        "RutResponde",
        "RutRecibe",
        "IdRespuesta",
        "NroDetalles",
        "NmbContacto",
        "MailContacto",
        "TmstFirmaResp",
    ]
    assert caratula.findtext(f"{S}NroDetalles") == "1"
    assert caratula.findtext(f"{S}TmstFirmaResp") == "2026-05-04T11:30:00"
    envio = root.find(f"{S}Resultado/{S}RecepcionEnvio")
    assert envio is not None
    assert envio.findtext(f"{S}EnvioDTEID") == "SetDoc"
    assert envio.findtext(f"{S}Digest") == SET_DIGEST
    assert envio.findtext(f"{S}FchRecep") == "2026-05-03T05:00:00"
    assert envio.findtext(f"{S}EstadoRecepEnv") == "0"
    assert envio.findtext(f"{S}RecepEnvGlosa") == "Envío recibido conforme"
    assert envio.findtext(f"{S}NroDTE") == "2"
    dtes = envio.findall(f"{S}RecepcionDTE")
    assert [(d.findtext(f"{S}Folio"), d.findtext(f"{S}EstadoRecepDTE")) for d in dtes] == [
        ("1501", "0"),
        ("1502", "4"),
    ]
    assert [d.findtext(f"{S}RecepDTEGlosa") for d in dtes] == [
        "DTE recibido OK",
        "Ya recibido el 2026-05-01",
    ]


def test_recepcion_envio_is_signed_over_resultado(recepcion_xml: bytes) -> None:
    root = parse(recepcion_xml)
    assert reference_ids(root) == ["#RespuestaRecepcion"]
    assert all_verify(recepcion_xml) == [True]


def test_an_unreadable_envelope_omits_what_the_xsd_lets_it_omit(signer: Signer) -> None:
    unreadable = RecepcionEnvio(
        nombre_envio="adjunto.xml",
        fecha_recepcion=WHEN,
        cod_envio=43,
        envio_id="",
        estado=EstadoRecepEnv.ARCHIVO_ILEGIBLE,
    )
    data = build_recepcion_envio(
        unreadable, caratula=CARATULA, id_respuesta=9, timestamp=WHEN, key=signer.certificate
    )

    assert validate(SchemaKind.RESPUESTA_DTE, data) == []
    envio = parse(data).find(f"{S}Resultado/{S}RecepcionEnvio")
    assert envio is not None
    assert [child.tag.removeprefix(S) for child in envio] == [
        "NmbEnvio",
        "FchRecep",
        "CodEnvio",
        "EnvioDTEID",
        "EstadoRecepEnv",
        "RecepEnvGlosa",
    ]
    assert envio.findtext(f"{S}EstadoRecepEnv") == "91"
    assert envio.findtext(f"{S}RecepEnvGlosa") == "Envío rechazado - archivo ilegible"
    assert all_verify(data) == [True]


def test_a_dte_with_a_wrong_check_digit_is_reported_as_written(signer: Signer) -> None:
    wrong = replace(dte(1600), rut_emisor="96.790.240-4")
    data = build_recepcion_envio(
        recepcion(
            estado=EstadoRecepEnv.OTROS,
            documentos=(RecepcionDte(wrong, EstadoRecepDTE.ERROR_RUT_EMISOR),),
        ),
        caratula=CARATULA,
        id_respuesta=10,
        timestamp=WHEN,
        key=signer.certificate,
    )

    assert validate(SchemaKind.RESPUESTA_DTE, data) == []
    assert parse(data).findtext(f".//{S}RecepcionDTE/{S}RUTEmisor") == "96790240-4"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"documentos": ()}, "RecepcionDTE"),
        ({"digest": "no es base64!"}, "base64"),
        ({"cod_envio": 0}, "CodEnvio"),
        ({"rut_receptor": "abc"}, "RutReceptor"),
        (
            {"documentos": (RecepcionDte(dte(tipo=39), EstadoRecepDTE.OK),)},
            "no admite respuesta",
        ),
    ],
)
def test_recepcion_envio_refuses_what_the_xsd_would(
    signer: Signer, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_recepcion_envio(
            recepcion(**changes),
            caratula=CARATULA,
            id_respuesta=1,
            timestamp=WHEN,
            key=signer.certificate,
        )


def test_a_caratula_rut_needs_a_valid_check_digit(signer: Signer) -> None:
    with pytest.raises(ValueError, match="RutResponde"):
        build_recepcion_envio(
            recepcion(),
            caratula=replace(CARATULA, rut_responde="76086428-0"),
            id_respuesta=1,
            timestamp=WHEN,
            key=signer.certificate,
        )


# --- 2. ResultadoDTE ------------------------------------------------------------------------


def test_resultado_dte_states_and_codes(resultado_xml: bytes) -> None:
    root = parse(resultado_xml)
    assert root.findtext(f"{S}Resultado/{S}Caratula/{S}NroDetalles") == "3"
    assert root.find(f"{S}Resultado/{S}RecepcionEnvio") is None
    rows = [
        (
            r.findtext(f"{S}TipoDTE"),
            r.findtext(f"{S}Folio"),
            r.findtext(f"{S}CodEnvio"),
            r.findtext(f"{S}EstadoDTE"),
            r.findtext(f"{S}EstadoDTEGlosa"),
            r.findtext(f"{S}CodRchDsc"),
        )
        for r in root.iterfind(f"{S}Resultado/{S}ResultadoDTE")
    ]
    assert rows == [
        ("33", "1501", "42", "0", "DTE aceptado OK", None),
        ("33", "1502", "42", "1", "DTE aceptado con discrepancias", "-1"),
        ("61", "1503", "43", "2", "Mercadería no solicitada", "-7"),
    ]


def test_resultado_dte_is_signed_over_resultado(resultado_xml: bytes) -> None:
    assert reference_ids(parse(resultado_xml)) == ["#RespuestaComercial"]
    assert all_verify(resultado_xml) == [True]


@pytest.mark.parametrize(
    ("resultado", "message"),
    [
        (ResultadoDte(dte(), 1, EstadoDTE.ACEPTADO, cod_rch_dsc=-1), "aceptado"),
        (ResultadoDte(dte(), 1, EstadoDTE.RECHAZADO, cod_rch_dsc=-1000), "CodRchDsc"),
        (ResultadoDte(dte(), 1, EstadoDTE.RECHAZADO, cod_rch_dsc=3), "CodRchDsc"),
        (
            ResultadoDte(replace(dte(), rut_receptor="11111111-1"), 1, EstadoDTE.ACEPTADO),
            "dirigido",
        ),
        (ResultadoDte(replace(dte(), rut_emisor="11111111-1"), 1, EstadoDTE.ACEPTADO), "emitido"),
        (ResultadoDte(dte(monto=-1), 1, EstadoDTE.ACEPTADO), "MntTotal"),
        (ResultadoDte(dte(folio=0), 1, EstadoDTE.ACEPTADO), "Folio"),
    ],
)
def test_resultado_dte_refuses_bad_input(
    signer: Signer, resultado: ResultadoDte, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_resultado_dte(
            [resultado], caratula=CARATULA, id_respuesta=1, timestamp=WHEN, key=signer.certificate
        )


def test_resultado_dte_needs_a_dte_and_no_repeats(signer: Signer) -> None:
    for resultados in ([], [RESULTADOS[0], RESULTADOS[0]]):
        with pytest.raises(ValueError):
            build_resultado_dte(
                resultados,
                caratula=CARATULA,
                id_respuesta=1,
                timestamp=WHEN,
                key=signer.certificate,
            )


# --- 3. EnvioRecibos ------------------------------------------------------------------------


def test_envio_recibos_layout(recibos_xml: bytes) -> None:
    root = parse(recibos_xml)
    caratula = root.find(f"{S}SetRecibos/{S}Caratula")
    assert caratula is not None
    assert caratula.findtext(f"{S}TmstFirmaEnv") == "2026-05-04T11:30:00"
    recibos = root.findall(f"{S}SetRecibos/{S}Recibo")
    assert [r.get("version") for r in recibos] == ["1.0", "1.0"]
    documentos = [r.find(f"{S}DocumentoRecibo") for r in recibos]
    assert [d.get("ID") for d in documentos if d is not None] == ["T33F1501", "T52F77"]
    for documento in documentos:
        assert documento is not None
        assert documento.findtext(f"{S}Declaracion") == DECLARACION
        assert documento.findtext(f"{S}RutFirma") == FIRMANTE
        assert documento.findtext(f"{S}TmstFirmaRecibo") == "2026-05-04T11:30:00"


def test_the_declaracion_is_the_xsd_fixed_text() -> None:
    xsd = etree.parse(str(XSD_DIR / "Recibos_v10.xsd"))
    fixed = xsd.xpath(
        "//xs:element[@name='Declaracion']/@fixed",
        namespaces={"xs": "http://www.w3.org/2001/XMLSchema"},
    )
    assert fixed == [DECLARACION]
    assert DECLARACION == (
        "El acuse de recibo que se declara en este acto, de acuerdo a lo dispuesto en la letra "
        "b) del Art. 4, y la letra c) del Art. 5 de la Ley 19.983, acredita que la entrega de "
        "mercaderias o servicio(s) prestado(s) ha(n) sido recibido(s)."
    )


def test_each_recibo_and_then_the_set_are_signed(recibos_xml: bytes) -> None:
    root = parse(recibos_xml)
    assert reference_ids(root) == ["#T33F1501", "#T52F77", "#SetRecibos"]
    assert [etree.QName(s.getparent()).localname for s in signatures(root)] == [
        "Recibo",
        "Recibo",
        "EnvioRecibos",
    ]
    assert all_verify(recibos_xml) == [True, True, True]


def test_a_recibo_copied_out_of_the_set_still_verifies_and_validates(recibos_xml: bytes) -> None:
    for recibo in parse(recibos_xml).iterfind(f"{S}SetRecibos/{S}Recibo"):
        alone = etree.fromstring(etree.tostring(copy.deepcopy(recibo)))
        assert validate(SchemaKind.RECIBO, alone) == []
        signature = alone.find(f"{DS}Signature")
        assert signature is not None
        assert xmlsec_verifies(alone, signature)


@pytest.mark.parametrize(
    ("recibos", "message"),
    [
        ([], "al menos un recibo"),
        ([RECIBOS[0], RECIBOS[0]], "repetido"),
        ([Recibo(dte(), recinto="   ")], "recinto"),
        ([Recibo(replace(dte(), rut_receptor="11111111-1"), "Bodega")], "dirigido"),
        ([Recibo(dte(tipo=43), "Bodega")], "no admite respuesta"),
    ],
)
def test_envio_recibos_refuses_bad_input(
    signer: Signer, recibos: list[Recibo], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_envio_recibos(
            recibos, caratula=CARATULA, rut_firma=FIRMANTE, timestamp=WHEN, key=signer.certificate
        )


def test_rut_firma_needs_a_valid_check_digit(signer: Signer) -> None:
    with pytest.raises(ValueError, match="RutFirma"):
        build_envio_recibos(
            RECIBOS,
            caratula=CARATULA,
            rut_firma="13456789-0",
            timestamp=WHEN,
            key=signer.certificate,
        )


# --- Signatures: digests in context, tampering, the second verifier -------------------------


def _canonical_in_context(element: etree._Element) -> bytes:
    """DOMAIN.md §9's workaround for lxml's sub-element C14N: serialise, re-parse, C14N."""
    return bytes(etree.tostring(etree.fromstring(etree.tostring(element)), method="c14n"))


@pytest.mark.parametrize("fixture", ["recepcion_xml", "resultado_xml", "recibos_xml"])
def test_each_digest_is_over_the_element_with_the_inherited_namespaces(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    root = parse(request.getfixturevalue(fixture))
    for signature in signatures(root):
        reference = signature.find(f"{DS}SignedInfo/{DS}Reference")
        assert reference is not None
        signed_id = str(reference.get("URI")).removeprefix("#")
        (signed,) = root.xpath("//*[@ID=$id]", id=signed_id)
        canonical = _canonical_in_context(signed)
        assert canonical.startswith(
            f'<{etree.QName(signed).localname} xmlns="{NS}" xmlns:xsi="{XSI}" ID='.encode()
        )
        digest = base64.b64encode(hashlib.sha1(canonical).digest()).decode()
        assert reference.findtext(f"{DS}DigestValue") == digest


@pytest.mark.parametrize(
    ("fixture", "original", "altered", "expected"),
    [
        ("recepcion_xml", b"<Folio>1502<", b"<Folio>1503<", [False]),
        ("resultado_xml", b"<EstadoDTE>2<", b"<EstadoDTE>0<", [False]),
        ("recibos_xml", b"Bodega central", b"Bodega centrak", [False, True, False]),
        ("recibos_xml", b"<TmstFirmaEnv>2026", b"<TmstFirmaEnv>2027", [True, True, False]),
    ],
)
def test_a_tampered_byte_breaks_the_signatures_that_cover_it(
    fixture: str,
    original: bytes,
    altered: bytes,
    expected: list[bool],
    request: pytest.FixtureRequest,
) -> None:
    data: bytes = request.getfixturevalue(fixture)
    assert data.count(original) == 1
    assert all_verify(data.replace(original, altered)) == expected


def test_a_signature_does_not_verify_with_another_key(recibos_xml: bytes, stranger: Signer) -> None:
    root = parse(recibos_xml)
    signature = signatures(root)[0]
    pem = stranger.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    xmlsec.tree.add_ids(root, ["ID"])
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
    with pytest.raises(xmlsec.VerificationError):
        ctx.verify(signature)


def test_the_key_value_is_the_certificate_key(recibos_xml: bytes, signer: Signer) -> None:
    for signature in signatures(parse(recibos_xml)):
        assert key_value(signature).public_numbers() == signer.public_key.public_numbers()
        der = base64.b64decode("".join(str(signature.findtext(f".//{DS}X509Certificate")).split()))
        assert base64.b64encode(der).decode() == signer.certificate.der_b64


@needs_xmlsec1
@pytest.mark.parametrize(
    ("fixture", "count"), [("recepcion_xml", 1), ("resultado_xml", 1), ("recibos_xml", 3)]
)
def test_xmlsec1_verifies_every_signature(
    fixture: str, count: int, signer: Signer, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    data: bytes = request.getfixturevalue(fixture)
    assert len(signatures(parse(data))) == count
    for index in range(1, count + 1):
        assert xmlsec1_verifies(data, signer.cert_pem, index, tmp_path)


@needs_xmlsec1
def test_xmlsec1_refuses_a_tampered_byte_and_another_key(
    recibos_xml: bytes, signer: Signer, stranger: Signer, tmp_path: Path
) -> None:
    tampered = recibos_xml.replace(b"Oficina de Pe", b"Oficina de Pa")
    assert not xmlsec1_verifies(tampered, signer.cert_pem, 2, tmp_path)
    assert not xmlsec1_verifies(tampered, signer.cert_pem, 3, tmp_path)
    assert xmlsec1_verifies(tampered, signer.cert_pem, 1, tmp_path)  # the other Recibo
    for index in (1, 2, 3):
        assert not xmlsec1_verifies(recibos_xml, stranger.cert_pem, index, tmp_path)


# --- Codes ----------------------------------------------------------------------------------


def _xsd_enumeration(element: str) -> set[int]:
    xsd = etree.parse(str(XSD_DIR / "RespuestaEnvioDTE_v10.xsd"))
    values = xsd.xpath(
        f"//xs:element[@name='{element}']//xs:enumeration/@value",
        namespaces={"xs": "http://www.w3.org/2001/XMLSchema"},
    )
    return {int(value) for value in values}


@pytest.mark.parametrize(
    ("enum", "element"),
    [
        (EstadoRecepEnv, "EstadoRecepEnv"),
        (EstadoRecepDTE, "EstadoRecepDTE"),
        (EstadoDTE, "EstadoDTE"),
    ],
)
def test_the_codes_are_the_xsd_enumerations_each_with_a_spanish_glosa(
    enum: type[EstadoRecepEnv] | type[EstadoRecepDTE] | type[EstadoDTE], element: str
) -> None:
    assert {int(member) for member in enum} == _xsd_enumeration(element)
    glosas = [member.glosa for member in enum]
    assert all(glosas) and len(set(glosas)) == len(glosas)
    assert all(len(glosa) <= 256 for glosa in glosas)
    assert re.search(r"rechazad|no recibido", " ".join(glosas))
