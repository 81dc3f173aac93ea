"""Django admin checks the actor's role in the company of each row it touches (issue 13, finding
1). The actor is a staff user who is a VIEWER in company A (`company`) and an ADMIN in company B
(`other_company`): being an admin somewhere must not let them add, change, move or delete A's
rows, nor offer A (or A's people and rows) as a choice; in B everything keeps working."""

from datetime import date

import pytest
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from ai.models import AiReview
from dte import services as dte_services
from dte.models import Caf, Certificate, Envelope, IssuerSettings
from erp.models import Company, Membership, Partner, Role
from f29.models import F29Return
from tests.dte.fixtures import CERT_PASSWORD
from tests.factories import MembershipFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db


def _member(company, role):
    user = UserFactory()
    MembershipFactory(user=user, company=company, role=role)
    return user


@pytest.fixture
def actor(client, company, other_company):
    """Viewer in A, admin in B, logged in."""
    user = UserFactory()
    MembershipFactory(user=user, company=company, role=Role.VIEWER)
    MembershipFactory(user=user, company=other_company, role=Role.ADMIN)
    client.force_login(user)
    return user


def _choices(page, field: str) -> set[int]:
    assert page.status_code == 200, page.content.decode()[:2000]
    return {obj.pk for obj in page.context["adminform"].form.fields[field].queryset}


def _refused(response) -> bool:
    """Not saved: the form came back with an error (200) or the request was forbidden (403)."""
    return response.status_code in (200, 403)


# ---------------------------------------------------------------- memberships


def test_membership_choices_are_companies_and_people_the_actor_administers(
    client, actor, company, other_company
):
    colleague_in_a = _member(company, Role.CLERK)
    colleague_in_b = _member(other_company, Role.CLERK)
    newcomer = UserFactory()
    page = client.get("/admin/erp/membership/add/")
    assert _choices(page, "company") == {other_company.pk}
    users = _choices(page, "user")
    assert colleague_in_b.pk in users and newcomer.pk in users
    assert colleague_in_a.pk not in users


def test_viewer_cannot_make_a_third_user_admin_of_company_a(client, actor, company, other_company):
    newcomer = UserFactory()
    response = client.post(
        "/admin/erp/membership/add/",
        {"user": newcomer.pk, "company": company.pk, "role": Role.ADMIN},
    )
    assert _refused(response)
    assert not Membership.objects.filter(user=newcomer, company=company).exists()

    response = client.post(
        "/admin/erp/membership/add/",
        {"user": newcomer.pk, "company": other_company.pk, "role": Role.ADMIN},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.get(user=newcomer, company=other_company).role == Role.ADMIN


def test_membership_of_b_cannot_be_moved_into_company_a(client, actor, company, other_company):
    newcomer = UserFactory()
    membership = MembershipFactory(user=newcomer, company=other_company, role=Role.VIEWER)
    response = client.post(
        f"/admin/erp/membership/{membership.pk}/change/",
        {"user": newcomer.pk, "company": company.pk, "role": Role.ADMIN},
    )
    assert _refused(response)
    membership.refresh_from_db()
    assert (membership.company, membership.role) == (other_company, Role.VIEWER)


def test_viewer_cannot_change_or_delete_memberships_of_company_a(
    client, actor, company, other_company
):
    own = Membership.objects.get(user=actor, company=company)
    colleague = Membership.objects.get(user=_member(company, Role.VIEWER))
    for membership in (own, colleague):
        response = client.post(
            f"/admin/erp/membership/{membership.pk}/change/",
            {"user": membership.user_id, "company": company.pk, "role": Role.ADMIN},
        )
        assert response.status_code == 403
        delete = client.post(f"/admin/erp/membership/{membership.pk}/delete/", {"post": "yes"})
        assert delete.status_code == 403
    client.post(
        "/admin/erp/membership/",
        {"action": "delete_selected", "_selected_action": [colleague.pk], "post": "yes"},
    )
    assert set(Membership.objects.filter(company=company).values_list("role", flat=True)) == {
        Role.VIEWER
    }
    assert Membership.objects.filter(company=company).count() == 2

    in_b = Membership.objects.get(user=_member(other_company, Role.VIEWER))
    response = client.post(
        f"/admin/erp/membership/{in_b.pk}/change/",
        {"user": in_b.user_id, "company": other_company.pk, "role": Role.ACCOUNTANT},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    in_b.refresh_from_db()
    assert in_b.role == Role.ACCOUNTANT
    assert (
        client.post(f"/admin/erp/membership/{in_b.pk}/delete/", {"post": "yes"}).status_code == 302
    )
    assert not Membership.objects.filter(pk=in_b.pk).exists()


def test_superuser_keeps_full_access(client, company, other_company):
    root = UserFactory(is_superuser=True)
    client.force_login(root)
    page = client.get("/admin/erp/membership/add/")
    assert _choices(page, "company") == set(Company.objects.values_list("pk", flat=True))
    newcomer = UserFactory()
    response = client.post(
        "/admin/erp/membership/add/",
        {"user": newcomer.pk, "company": company.pk, "role": Role.ADMIN},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.get(user=newcomer).company == company


# ---------------------------------------------------------------- companies


def _company_data(company, **changes):
    data = {
        "rut": company.rut,
        "razon_social": company.razon_social,
        "giro": company.giro,
        "actecos": "[620200]",
        "direccion": company.direccion,
        "comuna": company.comuna,
        "ciudad": company.ciudad,
        "resolution_number": company.resolution_number,
        "resolution_date": "2014-08-22",
        "sii_unidad_regional": company.sii_unidad_regional,
        "sii_environment": company.sii_environment,
    }
    return data | changes


def test_company_a_is_read_only_for_its_viewer(client, actor, company, other_company):
    page = client.get(f"/admin/erp/company/{company.pk}/change/")
    assert page.status_code == 200 and b'name="razon_social"' not in page.content
    response = client.post(
        f"/admin/erp/company/{company.pk}/change/", _company_data(company, razon_social="Robada")
    )
    assert response.status_code == 403
    assert client.post(f"/admin/erp/company/{company.pk}/delete/", {"post": "yes"}).status_code in (
        403,
        302,
    )
    company.refresh_from_db()
    assert company.razon_social == "Empresa Demo SpA"

    response = client.post(
        f"/admin/erp/company/{other_company.pk}/change/",
        _company_data(other_company, razon_social="Otra Renombrada"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    other_company.refresh_from_db()
    assert other_company.razon_social == "Otra Renombrada"


# ---------------------------------------------------------------- partners, products, purchases


@pytest.mark.parametrize("model", ["partner", "product", "purchasedocument"])
def test_company_data_choices_are_companies_where_the_actor_may_edit(
    client, actor, company, other_company, model
):
    PartnerFactory(company=company)
    in_b = PartnerFactory(company=other_company)
    page = client.get(f"/admin/erp/{model}/add/")
    assert _choices(page, "company") == {other_company.pk}
    if model == "purchasedocument":
        assert _choices(page, "partner") == {in_b.pk}


def test_partner_cannot_be_added_to_company_a(client, actor, company, other_company):
    data = {"rut": "96.790.240-3", "razon_social": "Colado", "is_customer": "on"}
    assert _refused(client.post("/admin/erp/partner/add/", data | {"company": company.pk}))
    assert not Partner.objects.filter(company=company).exists()
    response = client.post("/admin/erp/partner/add/", data | {"company": other_company.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Partner.objects.get().company == other_company


# ---------------------------------------------------------------- CAFs and certificates


def test_caf_upload_only_in_companies_the_actor_administers(
    client, actor, company, other_company, sandbox, make_caf_file
):
    assert _choices(client.get("/admin/dte/caf/add/"), "company") == {other_company.pk}
    caf = SimpleUploadedFile("caf.xml", make_caf_file(52))
    response = client.post("/admin/dte/caf/add/", {"company": company.pk, "upload": caf})
    assert _refused(response)
    assert not Caf.objects.filter(company=company).exists()

    caf = SimpleUploadedFile("caf.xml", make_caf_file(52, rut=other_company.rut))
    response = client.post("/admin/dte/caf/add/", {"company": other_company.pk, "upload": caf})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Caf.objects.get().company == other_company

    in_a = dte_services.caf_upload(company=company, actor=None, data=make_caf_file(33))
    assert client.post(f"/admin/dte/caf/{in_a.pk}/change/", {}).status_code == 403


def test_certificate_upload_only_in_companies_the_actor_administers(
    client, actor, company, other_company, cert_pfx
):
    assert _choices(client.get("/admin/dte/certificate/add/"), "company") == {other_company.pk}
    upload = {"upload": SimpleUploadedFile("firma.p12", cert_pfx), "password": CERT_PASSWORD}
    response = client.post("/admin/dte/certificate/add/", upload | {"company": company.pk})
    assert _refused(response)
    assert not Certificate.objects.filter(company=company).exists()

    upload = {"upload": SimpleUploadedFile("firma.p12", cert_pfx), "password": CERT_PASSWORD}
    response = client.post("/admin/dte/certificate/add/", upload | {"company": other_company.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Certificate.objects.get().company == other_company

    in_a = dte_services.certificate_upload(
        company=company, actor=None, data=cert_pfx, password=CERT_PASSWORD
    )
    response = client.post(f"/admin/dte/certificate/{in_a.pk}/change/", {"allowed_users": []})
    assert response.status_code == 403
    in_a.refresh_from_db()
    assert in_a.is_active


def test_certificate_allowed_users_are_members_of_its_company(
    client, actor, company, other_company, cert_pfx
):
    cert = dte_services.certificate_upload(
        company=other_company, actor=None, data=cert_pfx, password=CERT_PASSWORD
    )
    only_in_a = _member(company, Role.CLERK)
    in_b = _member(other_company, Role.CLERK)
    url = f"/admin/dte/certificate/{cert.pk}/change/"
    users = _choices(client.get(url), "allowed_users")
    assert in_b.pk in users and only_in_a.pk not in users

    response = client.post(url, {"is_active": "on", "allowed_users": [only_in_a.pk]})
    assert response.status_code == 200
    assert not cert.allowed_users.exists()
    response = client.post(url, {"is_active": "on", "allowed_users": [in_b.pk]})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(cert.allowed_users.all()) == [in_b]


# ---------------------------------------------------------------- issuer settings


def test_issuer_settings_only_in_companies_the_actor_administers(
    client, actor, company, other_company
):
    assert _choices(client.get("/admin/dte/issuersettings/add/"), "company") == {other_company.pk}
    response = client.post(
        "/admin/dte/issuersettings/add/", {"company": company.pk, "caf_low_threshold": 1}
    )
    assert _refused(response)
    assert not IssuerSettings.objects.filter(company=company).exists()

    in_b = IssuerSettings.objects.create(company=other_company, caf_low_threshold=50)
    url = f"/admin/dte/issuersettings/{in_b.pk}/change/"
    assert _refused(client.post(url, {"company": company.pk, "caf_low_threshold": 1}))
    in_b.refresh_from_db()
    assert (in_b.company, in_b.caf_low_threshold) == (other_company, 50)
    response = client.post(url, {"company": other_company.pk, "caf_low_threshold": 7})
    assert response.status_code == 302, response.content.decode()[:2000]
    in_b.refresh_from_db()
    assert in_b.caf_low_threshold == 7

    in_a = IssuerSettings.objects.create(company=company, caf_low_threshold=50)
    url = f"/admin/dte/issuersettings/{in_a.pk}/change/"
    assert client.post(url, {"company": company.pk, "caf_low_threshold": 1}).status_code == 403
    delete = client.post(f"/admin/dte/issuersettings/{in_a.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    in_a.refresh_from_db()
    assert in_a.caf_low_threshold == 50


# ---------------------------------------------------------------- envelopes


def _envelope(company):
    now = timezone.now()
    certificate = Certificate.objects.create(
        company=company,
        holder_name="FIRMANTE",
        holder_rut="12345678-5",
        not_before=now,
        not_after=now,
        fingerprint=f"{company.pk:064d}",
        pfx_encrypted=b"-",
        password_encrypted=b"-",
    )
    return Envelope.objects.create(
        company=company,
        kind=Envelope.Kind.ENVIO_DTE,
        xml=b"<EnvioDTE/>",
        certificate=certificate,
        status=Envelope.Status.QUEUED,
    )


@pytest.mark.parametrize("action", ["retry_envelopes", "reenvelope_envelopes"])
def test_envelope_actions_check_the_role_in_each_envelopes_company(
    client, actor, company, other_company, action
):
    in_a, in_b = _envelope(company), _envelope(other_company)
    response = client.post(
        "/admin/dte/envelope/",
        {"action": action, "_selected_action": [in_a.pk, in_b.pk]},
        follow=True,
    )
    said = [str(m) for m in response.context["messages"]]
    assert f"Sobre #{in_a.pk}: solo un administrador de la empresa puede hacerlo." in said
    # B's envelope reached the service, which refused it for its state, not for the role
    assert any(m.startswith(f"Sobre #{in_b.pk}: Solo se re") for m in said), said
    assert Envelope.objects.get(pk=in_a.pk).status == Envelope.Status.QUEUED


# ---------------------------------------------------------------- records (read-only)


def test_records_are_read_only_in_every_company(client, actor, company, other_company):
    for target in (company, other_company):
        rows = {
            "f29/f29return": F29Return.objects.create(company=target, periodo=date(2026, 10, 1)),
            "ai/aireview": AiReview.objects.create(
                company=target, target=AiReview.Target.PERIOD, ai_status=AiReview.AiStatus.OFF
            ),
        }
        for model, row in rows.items():
            assert client.get(f"/admin/{model}/add/").status_code == 403
            change = client.post(f"/admin/{model}/{row.pk}/change/", {"state": "filed"})
            assert change.status_code == 403
            delete = client.post(f"/admin/{model}/{row.pk}/delete/", {"post": "yes"})
            assert delete.status_code == 403
    assert F29Return.objects.count() == 2 and AiReview.objects.count() == 2


def test_saves_and_deletes_check_the_stored_and_the_new_company(rf, actor, company, other_company):
    """Behind the forms: saving or deleting a row checks the role in its company as stored and
    as changed, whatever form (or none) brought it there."""
    model_admin = admin.site.get_model_admin(Membership)
    request = rf.post("/")
    request.user = actor
    in_b = MembershipFactory(company=other_company)
    model_admin.require_in_companies(request, in_b)
    in_b.company = company  # moved into A
    with pytest.raises(PermissionDenied):
        model_admin.require_in_companies(request, in_b)
    in_a = MembershipFactory(company=company)
    in_a.company = other_company  # moved out of A
    with pytest.raises(PermissionDenied):
        model_admin.require_in_companies(request, in_a)
    with pytest.raises(PermissionDenied):
        model_admin.delete_model(request, Membership.objects.get(pk=in_a.pk))
    with pytest.raises(PermissionDenied):
        model_admin.delete_queryset(request, Membership.objects.filter(pk=in_a.pk))
    assert Membership.objects.filter(pk=in_a.pk, company=company).exists()
