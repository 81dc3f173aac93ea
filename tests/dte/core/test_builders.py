from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from dte.core import text
from dte.core.domain import (
    Documento,
    DteStatus,
    Emisor,
    Linea,
    Receptor,
    Resolucion,
    can_transition,
)
from dte.core.envelope import EnvelopeItem, build_envelope, envelope_kind
from dte.core.ted import CafMismatch, build_ted
from dte.core.xml import build_documento, format_decimal, format_timestamp
from erp.doctypes import TipoDte


@pytest.mark.parametrize(
    ("raw", "limit", "expected"),
    [
        ("Comercial “El Ñandú” — Ltda…", None, 'Comercial "El Ñandú" - Ltda...'),
        ("  espacios \t  y\nsaltos  ", None, "espacios y saltos"),
        ("emoji 🍕 fuera", None, "emoji ? fuera"),
        ("Ǆemal ﬁ", None, "DZemal fi"),  # compatibility forms decomposed, marks dropped
        ("control\x00\x07chars", None, "controlchars"),
        ("x" * 120, 100, "x" * 100),
        ("precio 10€", None, "precio 10EUR"),
        (None, 10, ""),
    ],
)
def test_clean_keeps_latin1_and_cuts(raw, limit, expected):
    result = text.clean(raw, limit)
    assert result == expected
    result.encode("iso-8859-1")  # never raises


def test_clean_multiline_keeps_newlines():
    assert text.clean("línea 1\r\nlínea 2", multiline=True) == "línea 1\nlínea 2"


def test_escape_matches_c14n():
    assert text.escape('a & b < c > d "e"') == 'a &amp; b &lt; c &gt; d "e"'


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Decimal("2.500000"), 6, "2.5"),
        (Decimal("45000"), 6, "45000"),
        (Decimal("1E+3"), 6, "1000"),
        (Decimal("0.1234567"), 6, "0.123457"),
        (Decimal("10.00"), 2, "10"),
    ],
)
def test_format_decimal(value, places, expected):
    assert format_decimal(value, places) == expected


def test_timestamps_are_chile_local_time():
    winter = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # UTC-4
    summer = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # UTC-3
    assert format_timestamp(winter) == "2026-07-01T12:00:00"
    assert format_timestamp(summer) == "2026-12-01T13:00:00"


EMISOR = Emisor("76086428-5", "Demo", "Software", (620200,), "Calle 1", "Santiago")
RECEPTOR = Receptor("96790240-3", "Cliente")


def doc(tipo=TipoDte.FACTURA, folio=5, **kw):
    lines = kw.pop("lineas", (Linea("Servicio", Decimal(1), Decimal(1000)),))
    return Documento(tipo, folio, date(2026, 11, 23), EMISOR, RECEPTOR, lines, **kw)


def test_documento_id_and_order():
    root = build_documento(doc())
    assert root.get("ID") == "F5T33"
    names = [child.tag.split("}")[1] for child in root]
    assert names == ["Encabezado", "Detalle"]
    enc = [c.tag.split("}")[1] for c in root[0]]
    assert enc == ["IdDoc", "Emisor", "Receptor", "Totales"]


def test_guia_carries_ind_traslado_and_boleta_ind_servicio():
    guia = build_documento(doc(TipoDte.GUIA_DESPACHO))
    assert guia.find(".//{*}IndTraslado").text == "1"
    boleta = build_documento(doc(TipoDte.BOLETA))
    assert boleta.find(".//{*}IndServicio").text == "3"
    assert boleta.find(".//{*}RznSocEmisor") is not None and boleta.find(".//{*}Acteco") is None
    assert boleta.find(".//{*}TasaIVA") is None


def test_factura_de_compra_retains_iva():
    root = build_documento(doc(TipoDte.FACTURA_COMPRA))
    assert root.find(".//{*}ImptoReten/{*}TipoImp").text == "15"
    assert root.find(".//{*}ImptoReten/{*}MontoImp").text == "190"
    assert root.find(".//{*}CodImpAdic").text == "15"
    assert root.find(".//{*}MntTotal").text == "1000"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"caf_rut": "1-9"}, "no del emisor"),
        ({"caf_tipo": 34}, "no para 33"),
        ({"caf_desde": 10}, "fuera del rango"),
    ],
)
def test_ted_refuses_a_caf_that_does_not_fit(kw, message):
    from cryptography.hazmat.primitives.asymmetric import rsa

    args = {
        "caf_xml": "<CAF/>",
        "caf_key": rsa.generate_private_key(public_exponent=65537, key_size=1024),
        "caf_rut": "76086428-5",
        "caf_tipo": 33,
        "caf_desde": 1,
        "caf_hasta": 100,
        "timestamp": datetime(2026, 11, 23, tzinfo=UTC),
    }
    with pytest.raises(CafMismatch, match=message):
        build_ted(doc(), **{**args, **kw})


def test_boletas_and_other_dtes_never_share_an_envelope():
    assert envelope_kind([TipoDte.BOLETA, TipoDte.BOLETA_EXENTA]) == "EnvioBOLETA"
    assert envelope_kind([TipoDte.FACTURA, TipoDte.NOTA_CREDITO]) == "EnvioDTE"
    with pytest.raises(ValueError, match="sobre distinto"):
        envelope_kind([TipoDte.FACTURA, TipoDte.BOLETA])


def test_envelope_limits():
    with pytest.raises(ValueError, match="al menos un DTE"):
        build_envelope(
            [],
            rut_emisor="1-9",
            rut_envia="1-9",
            resolucion=Resolucion(date(2014, 1, 1), 0),
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
            key=None,
        )
    items = [EnvelopeItem(TipoDte.BOLETA, "<DTE/>")] * 501
    with pytest.raises(ValueError, match="hasta 500"):
        build_envelope(
            items,
            rut_emisor="1-9",
            rut_envia="1-9",
            resolucion=Resolucion(date(2014, 1, 1), 0),
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
            key=None,
        )


def test_status_transitions():
    assert can_transition(DteStatus.SIGNED, DteStatus.QUEUED)
    assert can_transition(DteStatus.QUEUED, DteStatus.SENT)
    assert can_transition(DteStatus.SENT, DteStatus.REJECTED)
    assert can_transition(DteStatus.NEEDS_ATTENTION, DteStatus.QUEUED)
    assert not can_transition(DteStatus.SIGNED, DteStatus.SENT)
    assert not can_transition(DteStatus.SIGNED, DteStatus.ACCEPTED)
    assert not can_transition(DteStatus.ACCEPTED, DteStatus.REJECTED)
    assert not can_transition(DteStatus.REJECTED, DteStatus.QUEUED)
