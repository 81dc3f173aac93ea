"""Guías de despacho by traslado type, with despacho and transport (issue 15, point 3)."""

from datetime import date

import pytest
from django.urls import reverse
from lxml import etree

from dte import services
from dte.core.domain import SIIDTE_NS
from dte.core.verify import verify_xml
from erp import services as erp_services
from erp.doctypes import IndTraslado
from erp.errors import DomainError
from erp.models import SalesDocument
from tests.dte.test_issue import draft_from_file
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 20)
NS = {"d": SIIDTE_NS}


def _guia(company, actor, partner=None, *, lines=None, **extra) -> SalesDocument:
    return erp_services.sales_document_create(
        company=company,
        actor=actor,
        data={
            "tipo_dte": 52,
            "fecha_emision": TODAY,
            "partner": partner.pk if partner else None,
            "lines": lines or [{"name": "Resma carta", "quantity": 40, "unit_price": 4290}],
            **extra,
        },
    )


def _xml(dte) -> etree._Element:
    return etree.fromstring(bytes(dte.xml))


def test_the_example_guia_carries_despacho_and_transport(issuer, demo_catalog, clerk):
    dte = services.dte_issue(document=draft_from_file(issuer, 52), actor=clerk)
    xml = _xml(dte)
    id_doc = xml.find(".//d:IdDoc", NS)
    assert [c.tag.split("}")[1] for c in id_doc][:5] == [
        "TipoDTE",
        "Folio",
        "FchEmis",
        "TipoDespacho",
        "IndTraslado",
    ]
    assert (
        id_doc.findtext("d:TipoDespacho", namespaces=NS),
        id_doc.findtext("d:IndTraslado", namespaces=NS),
    ) == ("2", "1")
    transporte = xml.find(".//d:Encabezado/d:Transporte", NS)
    assert transporte.getprevious().tag.endswith("Receptor")
    assert transporte.findtext("d:Patente", namespaces=NS) == "KJTR45"
    assert transporte.findtext("d:Chofer/d:RUTChofer", namespaces=NS) == "12345678-5"
    assert transporte.findtext("d:Chofer/d:NombreChofer", namespaces=NS) == "Juan Pérez Soto"
    assert transporte.findtext("d:CmnaDest", namespaces=NS) == "Maipú"
    assert verify_xml(bytes(dte.envelope.xml), sii_keys=services.sii_keys()).ok


@pytest.mark.parametrize("traslado", list(IndTraslado))
def test_every_traslado_issues_valid(issuer, clerk, traslado):
    partner = None if traslado.receiver_is_issuer else PartnerFactory(company=issuer)
    document = _guia(issuer, clerk, partner, ind_traslado=int(traslado), tipo_despacho=3)
    dte = services.dte_issue(document=document, actor=clerk)
    xml = _xml(dte)
    assert xml.findtext(".//d:IndTraslado", namespaces=NS) == str(int(traslado))
    receptor = xml.findtext(".//d:Receptor/d:RUTRecep", namespaces=NS)
    assert receptor == (issuer.rut if traslado.receiver_is_issuer else partner.rut)
    assert verify_xml(bytes(dte.envelope.xml), sii_keys=services.sii_keys()).ok


def test_a_traslado_interno_needs_no_prices(issuer, clerk):
    document = _guia(
        issuer,
        clerk,
        ind_traslado=5,
        forma_pago=1,
        lines=[{"name": "Estantería metálica", "quantity": 3}],
        dir_destino="Av. Vicuña Mackenna 3000",
        comuna_destino="San Joaquín",
    )
    assert document.monto_total == 0 and document.partner is None
    assert document.forma_pago is None  # the goods move, nothing is paid
    dte = services.dte_issue(document=document, actor=clerk)
    xml = _xml(dte)
    assert xml.find(".//d:Detalle/d:PrcItem", NS) is None
    assert xml.findtext(".//d:Totales/d:MntTotal", namespaces=NS) == "0"
    assert xml.findtext(".//d:Transporte/d:DirDest", namespaces=NS) == "Av. Vicuña Mackenna 3000"
    assert xml.find(".//d:Transporte/d:Chofer", NS) is None


def test_a_sale_guia_still_needs_its_prices(issuer, clerk):
    partner = PartnerFactory(company=issuer)
    with pytest.raises(DomainError) as info:
        _guia(issuer, clerk, partner, lines=[{"name": "Resma", "quantity": 1}])
    assert info.value.fields["lines.0.unit_price"] == ["Indique el precio unitario."]


def test_traslado_checks(issuer, clerk):
    partner = PartnerFactory(company=issuer)
    cases = [
        ({"ind_traslado": 12}, "ind_traslado", "Motivo del traslado inválido"),
        ({"tipo_despacho": 4}, "tipo_despacho", "Tipo de despacho inválido"),
        ({"rut_chofer": "12345678-5"}, "nombre_chofer", "RUT y el nombre del chofer"),
        ({"rut_transportista": "12345678-9"}, "rut_transportista", "dígito verificador"),
        ({"patente": "ABCDEFGHIJ"}, "patente", "Máximo 8"),
        ({"ind_traslado": 5}, "partner", "el receptor es la propia empresa"),
    ]
    for extra, field, text in cases:
        with pytest.raises(DomainError) as info:
            _guia(issuer, clerk, partner, **extra)
        assert text in info.value.fields[field][0], (extra, info.value.fields)


def test_only_guias_carry_traslado_data(issuer, clerk):
    partner = PartnerFactory(company=issuer)
    with pytest.raises(DomainError) as info:
        erp_services.sales_document_create(
            company=issuer,
            actor=clerk,
            data={
                "tipo_dte": 33,
                "fecha_emision": TODAY,
                "partner": partner.pk,
                "ind_traslado": 1,
                "patente": "KJTR45",
                "lines": [{"name": "x", "quantity": 1, "unit_price": 1000}],
            },
        )
    assert set(info.value.fields) == {"ind_traslado", "patente"}


def test_the_form_issues_a_guia_with_its_traslado(client, issuer, clerk):
    partner = PartnerFactory(company=issuer)
    client.force_login(clerk)
    form = {
        "tipo_dte": "52",
        "fecha_emision": "20-11-2026",
        "partner": str(partner.pk),
        "ind_traslado": "3",
        "tipo_despacho": "2",
        "patente": "kj tr 45",
        "rut_chofer": "12.345.678-5",
        "nombre_chofer": "Juan Pérez",
        "global_discount_value": "",
        "global_surcharge_value": "",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0",
        "lines-0-name": "Toner",
        "lines-0-quantity": "6",
        "lines-0-unit_price": "18.990",
        "refs-TOTAL_FORMS": "0",
        "refs-INITIAL_FORMS": "0",
    }
    response = client.post(reverse("erp:document_create"), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    guia = SalesDocument.objects.get(tipo_dte=52)
    assert (guia.ind_traslado, guia.tipo_despacho, guia.patente) == (3, 2, "KJTR45")
    assert guia.rut_chofer == "12345678-5"
    page = client.get(reverse("erp:document_edit", args=[guia.pk])).content.decode()
    assert 'id="guia-fields" data-tipo="52">' in page

    # The same form as a factura: the hidden traslado block is dropped, not refused.
    response = client.post(reverse("erp:document_edit", args=[guia.pk]), {**form, "tipo_dte": "33"})
    assert response.status_code == 302
    guia.refresh_from_db()
    assert (guia.tipo_dte, guia.ind_traslado, guia.patente) == (33, None, "")


# ---------------------------------------------------------------- facturar guías


def _issued_guia(company, actor, partner, day, quantity, **extra):
    document = _guia(
        company,
        actor,
        partner,
        lines=[{"name": "Resma carta", "quantity": quantity, "unit_price": 4290}],
        **extra,
    )
    document.fecha_emision = date(2026, 11, day)
    document.save()
    services.dte_issue(document=document, actor=actor)
    document.refresh_from_db()
    return document


def test_facturar_guias_makes_one_factura_referencing_each(issuer, clerk):
    from dte import guias

    customer, other = PartnerFactory(company=issuer), PartnerFactory(company=issuer)
    first = _issued_guia(issuer, clerk, customer, 3, 10)
    second = _issued_guia(issuer, clerk, customer, 17, 5, tipo_despacho=2)
    _issued_guia(issuer, clerk, other, 5, 1)
    _issued_guia(issuer, clerk, None, 6, 1, ind_traslado=5)  # an internal move is no sale
    rows = guias.guias_of(company=issuer, partner=customer, periodo=date(2026, 11, 1))
    assert [(r.guia.folio, r.invoiced_by) for r in rows] == [(1, None), (2, None)]

    factura = guias.invoice_guias(
        company=issuer,
        actor=clerk,
        partner=customer,
        guia_ids=[first.pk, second.pk],
        fecha_emision=date(2026, 11, 30),
    )

    assert factura.tipo_dte == 33 and factura.is_draft
    assert [(ln.name, ln.quantity) for ln in factura.lines.all()] == [("Resma carta", 15)]
    assert factura.monto_total == first.monto_total + second.monto_total
    refs = [(r.tipo_doc_ref, r.folio_ref, r.fecha_ref, r.cod_ref) for r in factura.references.all()]
    assert refs == [("52", "1", date(2026, 11, 3), None), ("52", "2", date(2026, 11, 17), None)]
    rows = guias.guias_of(company=issuer, partner=customer, periodo=date(2026, 11, 1))
    assert {r.invoiced_by.pk for r in rows} == {factura.pk}

    with pytest.raises(DomainError) as info:  # a guía is never invoiced twice, even by a draft
        guias.invoice_guias(company=issuer, actor=clerk, partner=customer, guia_ids=[first.pk])
    assert info.value.message == "La guía N° 1 ya está en la factura en borrador."

    dte = services.dte_issue(document=factura, actor=clerk)
    xml = _xml(dte)
    assert [
        r.findtext("d:TpoDocRef", namespaces=NS) for r in xml.iterfind(".//d:Referencia", NS)
    ] == ["52", "52"]
    assert xml.find(".//d:Referencia/d:CodRef", NS) is None
    assert verify_xml(bytes(dte.envelope.xml), sii_keys=services.sii_keys()).ok


def test_facturar_guias_refuses_what_is_not_a_sale_guia_of_the_customer(issuer, clerk):
    from dte import guias

    customer, other = PartnerFactory(company=issuer), PartnerFactory(company=issuer)
    theirs = _issued_guia(issuer, clerk, other, 5, 1)
    consignment = _issued_guia(issuer, clerk, customer, 6, 1, ind_traslado=3)
    for ids in ([theirs.pk], [consignment.pk], []):
        with pytest.raises(DomainError):
            guias.invoice_guias(company=issuer, actor=clerk, partner=customer, guia_ids=ids)
    mine = _issued_guia(issuer, clerk, customer, 20, 2)
    with pytest.raises(DomainError) as info:
        guias.invoice_guias(
            company=issuer,
            actor=clerk,
            partner=customer,
            guia_ids=[mine.pk],
            fecha_emision=date(2026, 11, 19),
        )
    assert "anterior a la última guía" in info.value.message
    assert not SalesDocument.objects.filter(tipo_dte=33).exists()


def test_the_facturar_guias_page(client, issuer, clerk, viewer):
    customer = PartnerFactory(company=issuer)
    guia = _issued_guia(issuer, clerk, customer, 3, 10)
    url = reverse("dte:guias_invoice") + f"?partner={customer.pk}&periodo=11-2026"
    client.force_login(viewer)
    assert client.get(url).status_code == 403
    client.force_login(clerk)
    page = client.get(url).content.decode()
    assert f'name="guia" value="{guia.pk}" checked' in page

    response = client.post(url, {"guia": [str(guia.pk)]})

    factura = SalesDocument.objects.get(tipo_dte=33)
    assert response.status_code == 302
    assert response.url == reverse("erp:document_detail", args=[factura.pk])
    page = client.get(url).content.decode()
    assert 'name="guia"' not in page and "borrador" in page
    listing = client.get(reverse("dte:document_list")).content.decode()
    assert f'href="{reverse("dte:guias_invoice")}">Facturar guías</a>' in listing
    detail = client.get(reverse("erp:document_detail", args=[guia.pk])).content.decode()
    assert "Facturar guías" in detail and "Operación constituye venta" in detail


@pytest.mark.parametrize("fmt", ["letter", "thermal"])
def test_the_printed_guia_says_why_and_how_the_goods_move(issuer, demo_catalog, clerk, fmt):
    import io

    from pypdf import PdfReader

    from dte import printing

    dte = services.dte_issue(document=draft_from_file(issuer, 52), actor=clerk)
    pdf = printing.render(dte, format=fmt)
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    text = " ".join(text.split())
    for expected in (
        "Motivo del traslado: Operación constituye venta",
        "Despacho: Emisor a instalaciones del receptor",
        "Transporte: Patente KJTR45",
        "Chofer: Juan Pérez Soto, 12345678-5",
        "Destino: Camino a Melipilla 12500, bodega 3, Maipú, Santiago",
    ):
        assert expected in text, (expected, text)
