"""Customers abroad: they share the RUT 55.555.555-5 and are told apart by name and their own
identification (Extranjero/NumId), with their country as an Aduana code (issue 16)."""

import pytest
from django.urls import reverse
from lxml import etree

from dte.core.domain import SIIDTE_NS
from erp import services
from erp.errors import DomainError
from erp.models import Partner

pytestmark = pytest.mark.django_db

FOREIGN = "55555555-5"


def _foreign(company, name, num_id="", nacionalidad="225"):
    return services.partner_create(
        company=company,
        actor=None,
        data={
            "rut": "55.555.555-5",
            "razon_social": name,
            "num_id": num_id,
            "nacionalidad": nacionalidad,
        },
    )


def test_customers_abroad_share_the_foreign_rut(company):
    acme = _foreign(company, "ACME Imports LLC", "US-EIN 12-3456789")
    hansa = _foreign(company, "Hansa Handel GmbH", "DE811234567", "0563")
    assert (acme.rut, hansa.rut) == (FOREIGN, FOREIGN)
    assert hansa.nacionalidad == "563"  # Germany; Aduana codes are kept without leading zeros
    with pytest.raises(DomainError) as info:
        _foreign(company, "ACME Imports LLC", "US-EIN 12-3456789")
    assert "num_id" in info.value.fields
    # By RUT alone a customer abroad is ambiguous: a document must name it by id.
    with pytest.raises(DomainError) as info:
        services.sales_document_create(
            company=company,
            actor=None,
            data={
                "tipo_dte": 33,
                "fecha_emision": "2026-11-20",
                "partner": "55.555.555-5",
                "lines": [{"name": "x", "quantity": 1, "unit_price": 1}],
            },
        )
    assert info.value.fields["partner"] == ["Cliente o proveedor desconocido."]


def test_foreign_fields_are_checked(company):
    with pytest.raises(DomainError) as info:
        _foreign(company, "Nowhere Ltd", nacionalidad="1234")
    assert "código de país de Aduana" in info.value.fields["nacionalidad"][0]
    with pytest.raises(DomainError) as info:
        services.partner_create(
            company=company,
            actor=None,
            data={"rut": "76.543.210-3", "razon_social": "Local SpA", "num_id": "X1"},
        )
    assert "Solo un cliente extranjero" in info.value.fields["num_id"][0]
    assert not Partner.objects.exists()


def test_the_receptor_carries_extranjero(company):
    from dte.core.xml import build_documento
    from dte.mapping import receptor_from

    receptor = receptor_from(_foreign(company, "ACME Imports LLC", "US-EIN 12-3456789"))
    assert (receptor.num_id, receptor.nacionalidad) == ("US-EIN 12-3456789", "225")
    from datetime import date
    from decimal import Decimal

    from dte.core.domain import Documento, Emisor, Linea
    from erp.doctypes import TipoDte

    documento = Documento(
        tipo=TipoDte.FACTURA_EXENTA,
        folio=1,
        fecha_emision=date(2026, 11, 20),
        emisor=Emisor(
            rut="76086428-5",
            razon_social="Empresa Demo SpA",
            giro="Servicios",
            actecos=(620200,),
            direccion="Calle 1",
            comuna="Santiago",
        ),
        receptor=receptor,
        lineas=(Linea(nombre="Servicio", cantidad=Decimal(1), precio=Decimal(100)),),
    )
    xml = build_documento(documento)
    ns = {"d": SIIDTE_NS}
    assert xml.findtext(".//d:Receptor/d:Extranjero/d:NumId", namespaces=ns) == "US-EIN 12-3456789"
    tags = [etree.QName(e).localname for e in xml.find(".//d:Receptor", ns)]
    assert tags[:3] == ["RUTRecep", "RznSocRecep", "Extranjero"]


def test_the_partner_form_offers_countries(client, company, clerk):
    client.force_login(clerk)
    page = client.get(reverse("erp:partner_create")).content.decode()
    assert '<option value="225">' in page and "Nacionalidad (clientes extranjeros)" in page
    response = client.post(
        reverse("erp:partner_create"),
        {
            "rut": "55.555.555-5",
            "razon_social": "ACME Imports LLC",
            "num_id": "12-3456789",
            "nacionalidad": "225",
            "is_customer": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Partner.objects.get(company=company).nacionalidad == "225"
