import pytest

from erp.models import AuditEvent, DocumentState, Partner
from tests.factories import PartnerFactory, SalesDocumentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_every_model_has_an_admin_page(admin_client):
    for model in (
        "company",
        "membership",
        "partner",
        "product",
        "salesdocument",
        "auditevent",
    ):
        assert admin_client.get(f"/admin/erp/{model}/").status_code == 200, model
    assert admin_client.get("/admin/erp/partner/?q=Cliente").status_code == 200


def test_partner_added_in_admin_is_normalized_and_audited(admin_client, admin_user, company):
    response = admin_client.post(
        "/admin/erp/partner/add/",
        {
            "company": company.pk,
            "rut": "96.790.240-3",
            "razon_social": "Desde admin",
            "is_customer": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    partner = Partner.objects.get()
    assert partner.rut == "96790240-3" and partner.created_by == admin_user
    assert AuditEvent.objects.get(entity="partner").actor == admin_user


def test_admin_rejects_invalid_rut(admin_client, company):
    response = admin_client.post(
        "/admin/erp/partner/add/",
        {"company": company.pk, "rut": "96.790.240-4", "razon_social": "X"},
    )
    assert response.status_code == 200
    assert "dígito verificador" in response.content.decode()
    assert not Partner.objects.exists()


def test_issued_document_is_read_only_in_admin(admin_client, company):
    issued = SalesDocumentFactory(company=company, state=DocumentState.ISSUED, folio=9)
    page = admin_client.get(f"/admin/erp/salesdocument/{issued.pk}/change/")
    assert page.status_code == 200
    assert b'name="notes"' not in page.content  # shown, not editable
    post = admin_client.post(f"/admin/erp/salesdocument/{issued.pk}/change/", {"notes": "x"})
    assert post.status_code == 403
    delete = admin_client.post(f"/admin/erp/salesdocument/{issued.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    issued.refresh_from_db()
    assert issued.notes == ""


def test_draft_header_edit_in_admin_goes_through_the_service(admin_client, company, admin_user):
    draft = SalesDocumentFactory(company=company)
    response = admin_client.post(
        f"/admin/erp/salesdocument/{draft.pk}/change/",
        {
            "fecha_emision": "2026-11-21",
            "partner": draft.partner_id,
            "notes": "desde admin",
            "forma_pago": "1",
            "lines-TOTAL_FORMS": "0",
            "lines-INITIAL_FORMS": "0",
            "references-TOTAL_FORMS": "0",
            "references-INITIAL_FORMS": "0",
            "commissions-TOTAL_FORMS": "0",
            "commissions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    draft.refresh_from_db()
    assert draft.notes == "desde admin" and draft.lines.count() == 1
    assert AuditEvent.objects.get(entity="salesdocument").actor == admin_user


def test_viewer_sees_but_cannot_change(client, viewer, company):
    partner = PartnerFactory(company=company)
    client.force_login(viewer)
    assert client.get("/admin/erp/partner/").status_code == 200
    post = client.post(f"/admin/erp/partner/{partner.pk}/change/", {"razon_social": "X"})
    assert post.status_code == 403
