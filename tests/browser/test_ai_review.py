"""A demo document's review in the browser, without a key (the rules, and the page says the AI
review is off) and with one (Claude's findings and explanation, from the local stub)."""

import pytest

from tests.ai.stub import MessagesStub
from tests.browser.pages import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_findings_appear_without_and_with_a_key(page, live_server, clerk, issuer, settings):
    from datetime import date
    from decimal import Decimal

    from dte import services as dte_services
    from erp import services as erp_services
    from tests.factories import PartnerFactory

    partner = PartnerFactory(company=issuer)
    draft = erp_services.sales_document_create(
        company=issuer,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 11, 20),
            "partner": partner.pk,
            "lines": [{"name": "Asesoría", "quantity": Decimal(1), "unit_price": Decimal(90000)}],
        },
    )
    dte_services.dte_issue(document=draft, actor=None)
    # The customer's file loses its giro and dirección after the factura went out (issuing
    # refuses them missing): the review flags it.
    type(partner).objects.filter(pk=partner.pk).update(giro="", direccion="")
    login(page, live_server, clerk)
    page.goto(f"{live_server.url}/documentos/{draft.pk}/")
    page.click("#ai-review-button")
    page.wait_for_selector("#ai-findings")
    assert page.get_attribute("#ai-status", "data-status") == "off"
    assert "desactivada" in page.inner_text("#ai-status")
    assert page.locator('#ai-findings tr[data-code="factura_partner_incomplete"]').count() == 1

    with MessagesStub() as stub:
        stub.ok(
            [
                {
                    "code": "ai_giro_incoherente",
                    "severity": "info",
                    "message": "Confirme que la asesoría corresponde al giro del cliente.",
                    "evidence": {},
                }
            ],
            "Documento correcto; falta completar los datos del receptor.",
        )
        settings.ANTHROPIC_API_KEY = "sk-test-not-real"
        settings.ANTHROPIC_BASE_URL = stub.url
        settings.AI_MAX_RETRIES = 0
        page.click("#ai-review-button")
        page.wait_for_selector('#ai-findings tr[data-code="ai_giro_incoherente"]')
        assert page.get_attribute("#ai-status", "data-status") == "ok"
        assert "falta completar" in page.inner_text("#ai-explanation")
        assert len(stub.requests) == 1
