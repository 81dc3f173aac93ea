"""The audit trail shows each change by its Spanish field name, with short values in es-CL,
never the model's English field names."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from dte import services as dte_services
from erp import services
from erp.models import AuditEvent
from erp.templatetags.audit import audit_changes, change_texts
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db


def test_issuing_reads_state_and_folio_in_spanish():
    event = AuditEvent(
        entity="salesdocument",
        action="update",
        changes={"state": ["draft", "issued"], "folio": [None, 123]},
    )
    assert audit_changes(event) == "Estado: Borrador → Emitido · Folio: — → 123"


def test_values_in_es_cl_and_long_or_related_values_named_only():
    texts = change_texts(
        "salesdocument",
        {
            "fecha_emision": ["2026-11-20", "2026-12-01"],
            "forma_pago": [1, 2],
            "monto_total": [1190000, 2380000],
            "global_discount_value": ["0.00", "2.50"],
            "partner": [3, 4],
            "notes": ["", "Entregar en bodega 3, portón lateral, de lunes a viernes de 9 a 18"],
            "lines": [1, 2],
        },
    )
    assert texts == [  # in the model's field order, whatever order the JSON keeps
        "Fecha de emisión: 20-11-2026 → 01-12-2026",
        "Forma de pago: Contado → Crédito",
        "Receptor",
        "Descuento global: 0 → 2,5",
        "Observaciones",
        "Monto total: $ 1.190.000 → $ 2.380.000",
        "Líneas: 1 → 2",
    ]


def test_partner_flags_and_unknown_entities():
    assert change_texts("partner", {"is_customer": [True, False], "giro": ["", "Minería"]}) == [
        "Giro: — → Minería",
        "Cliente: Sí → No",
    ]
    assert change_texts("nosuchmodel", {"algo_raro": [1, 2]}) == ["Algo raro: 1 → 2"]


def test_document_page_and_partner_form_show_the_changes_in_spanish(issuer, clerk, client):
    partner = PartnerFactory(company=issuer, razon_social="Antes S.A.", email_dte="a@b.example")
    services.partner_update(
        partner=partner, actor=None, data={"razon_social": "Después S.A.", "is_supplier": True}
    )
    draft = services.sales_document_create(
        company=issuer,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 11, 20),
            "partner": partner.pk,
            "lines": [{"name": "Consultoría", "quantity": Decimal(1), "unit_price": Decimal(1000)}],
        },
    )
    dte = dte_services.dte_issue(document=draft, actor=None)
    client.force_login(clerk)
    page = client.get(reverse("erp:document_detail", args=[draft.pk])).content.decode()
    changes = " ".join(re.findall(r'class="muted audit-changes">\((.*?)\)</span>', page))
    assert f"Estado: Borrador → Emitido · Folio: — → {dte.folio}" in changes
    assert "state" not in changes and "folio," not in changes
    form = client.get(reverse("erp:partner_edit", args=[partner.pk])).content.decode()
    assert "Razón social: Antes S.A. → Después S.A. · Proveedor: No → Sí" in form
