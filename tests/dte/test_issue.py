"""Issuing: folio, TED, signature, envelope, validation, and what happens when any step fails."""

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from dte import services
from dte.core.verify import verify_xml
from dte.models import Caf, Dte, DteEvent, Envelope
from erp import services as erp_services
from erp.api.serializers import SalesDocumentSerializer
from erp.doctypes import TipoDte
from erp.errors import DomainError
from erp.models import DocumentState, SalesDocument
from tests.dte.fixtures import CERT_PASSWORD, fresh_certificate
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

ISSUE_DATA = Path(__file__).resolve().parents[1] / "data" / "issue"
TYPES = [33, 34, 39, 41, 46, 52, 56, 61]


def draft_from_file(company, tipo: int) -> SalesDocument:
    payload = json.loads((ISSUE_DATA / f"{tipo}.json").read_text(encoding="utf-8"))
    serializer = SalesDocumentSerializer(data=payload)
    assert serializer.is_valid(), serializer.errors
    return erp_services.sales_document_create(
        company=company, actor=None, data=serializer.validated_data
    )


@pytest.mark.parametrize("tipo", TYPES)
def test_every_type_issues_and_verifies(issuer, demo_catalog, clerk, tipo, sandbox):
    if tipo in (56, 61):  # the example notas modify the example factura, folio 1
        services.dte_issue(document=draft_from_file(issuer, 33), actor=clerk)
    document = draft_from_file(issuer, tipo)
    dte = services.dte_issue(document=document, actor=clerk)
    assert (dte.tipo_dte, dte.folio, dte.status) == (tipo, 1, "queued")
    document.refresh_from_db()
    assert document.state == DocumentState.ISSUED and document.folio == 1
    assert dte.monto_total == document.monto_total
    keys = services.sii_keys()
    for xml in (bytes(dte.xml), bytes(dte.envelope.xml)):
        report = verify_xml(xml, sii_keys=keys)
        assert report.ok, report.to_dict()
    assert bytes(dte.envelope.xml).startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    expected_kind = "EnvioBOLETA" if tipo in (39, 41) else "EnvioDTE"
    assert dte.envelope.kind == expected_kind
    assert list(DteEvent.objects.filter(dte=dte).values_list("status", flat=True)) == [
        "signed",
        "queued",
    ]
    assert dte.envelope.status == "queued"


def test_folios_are_consecutive(issuer, demo_catalog, clerk):
    folios = [
        services.dte_issue(document=draft_from_file(issuer, 33), actor=clerk).folio
        for _ in range(5)
    ]
    assert folios == [1, 2, 3, 4, 5]
    assert Caf.objects.get(company=issuer, tipo_dte=33).next_folio == 6


def test_issuing_twice_is_refused(issuer, demo_catalog, clerk):
    document = draft_from_file(issuer, 33)
    services.dte_issue(document=document, actor=clerk)
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=document, actor=clerk)
    assert info.value.code == "document_not_draft"
    assert Dte.objects.count() == 1


def test_a_failed_build_burns_no_folio(issuer, demo_catalog, clerk):
    document = draft_from_file(issuer, 33)
    issuer.comuna = ""
    issuer.save()
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=document, actor=clerk)
    assert info.value.code == "not_issuable" and "comuna" in info.value.fields
    assert Caf.objects.get(company=issuer, tipo_dte=33).next_folio == 1
    assert not Dte.objects.exists() and not Envelope.objects.exists()
    document.refresh_from_db()
    assert document.state == DocumentState.DRAFT and document.folio is None
    issuer.comuna = "Providencia"
    issuer.save()
    assert services.dte_issue(document=document, actor=clerk).folio == 1


def test_exhausted_caf_moves_to_the_next_range(issuer, demo_catalog, clerk, make_caf_file):
    Caf.objects.filter(company=issuer, tipo_dte=33).update(next_folio=100)
    services.caf_upload(company=issuer, actor=None, data=make_caf_file(33, 101, 200))
    folios = [
        services.dte_issue(document=draft_from_file(issuer, 33), actor=clerk).folio
        for _ in range(2)
    ]
    assert folios == [100, 101]


def test_no_folios_left(issuer, demo_catalog, clerk):
    Caf.objects.filter(company=issuer, tipo_dte=33).update(next_folio=101)
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=draft_from_file(issuer, 33), actor=clerk)
    assert info.value.code == "no_folios"


def test_expired_caf_is_not_used(issuer, demo_catalog, clerk):
    Caf.objects.filter(company=issuer, tipo_dte=33).update(
        expires_on=timezone.localdate() - timedelta(days=1)
    )
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=draft_from_file(issuer, 33), actor=clerk)
    assert info.value.code == "no_folios"
    # a boleta's CAF does not expire
    assert services.dte_issue(document=draft_from_file(issuer, 39), actor=clerk).folio == 1


def test_no_certificate(company, sandbox, make_caf_file, demo_catalog, clerk):
    services.caf_upload(company=company, actor=None, data=make_caf_file(33))
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=draft_from_file(company, 33), actor=clerk)
    assert info.value.code == "no_certificate"
    assert Caf.objects.get(company=company).next_folio == 1


def test_expired_certificate(issuer, demo_catalog, clerk):
    from dte.models import Certificate

    Certificate.objects.filter(company=issuer).update(not_after=timezone.now() - timedelta(days=1))
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=draft_from_file(issuer, 33), actor=clerk)
    assert info.value.code == "certificate_expired"


def test_certificate_restricted_to_some_users(issuer, demo_catalog, clerk, admin_user):
    from dte.models import Certificate

    Certificate.objects.get(company=issuer).allowed_users.set([admin_user])
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=draft_from_file(issuer, 33), actor=clerk)
    assert info.value.code == "no_certificate"
    assert services.dte_issue(document=draft_from_file(issuer, 33), actor=admin_user).folio == 1


def test_batch_issue_one_envelope_per_kind(issuer, demo_catalog, clerk):
    documents = [draft_from_file(issuer, t) for t in (33, 39, 61, 39)]
    broken = draft_from_file(issuer, 34)
    Caf.objects.filter(company=issuer, tipo_dte=34).update(next_folio=101)  # no folios for 34
    outcomes, envelopes = services.dte_issue_many(
        documents=[*documents, broken], actor=clerk, now=timezone.now()
    )
    assert [o.error.code for o in outcomes if o.error] == ["no_folios"]
    assert sorted(e.kind for e in envelopes) == ["EnvioBOLETA", "EnvioDTE"]
    keys = services.sii_keys()
    for envelope in envelopes:
        report = verify_xml(bytes(envelope.xml), sii_keys=keys)
        assert report.ok, report.to_dict()
    boletas = next(e for e in envelopes if e.kind == "EnvioBOLETA")
    assert sorted(boletas.dtes.values_list("folio", flat=True)) == [1, 2]


def test_tampered_stored_dte_fails_verification(issuer, demo_catalog, clerk):
    dte = services.dte_issue(document=draft_from_file(issuer, 33), actor=clerk)
    xml = bytes(dte.xml)
    total = f"<MntTotal>{dte.monto_total}</MntTotal>".encode()
    tampered = xml.replace(total, f"<MntTotal>{dte.monto_total + 1}</MntTotal>".encode())
    report = verify_xml(tampered, sii_keys=services.sii_keys())
    assert not report.ok
    failed = {c.name for d in report.documents for c in d.checks if not c.ok}
    assert {"signature", "ted"} <= failed


def test_certificate_upload_errors(company, sandbox, cert_pfx):
    with pytest.raises(DomainError) as info:
        services.certificate_upload(company=company, actor=None, data=cert_pfx, password="mala")
    assert "password" in info.value.fields
    with pytest.raises(DomainError) as info:
        services.certificate_upload(company=company, actor=None, data=b"no soy pfx", password="x")
    assert "file" in info.value.fields
    services.certificate_upload(company=company, actor=None, data=cert_pfx, password=CERT_PASSWORD)
    with pytest.raises(DomainError) as info:
        services.certificate_upload(
            company=company, actor=None, data=cert_pfx, password=CERT_PASSWORD
        )
    assert info.value.code == "certificate_duplicate"


def test_expired_certificate_upload_is_refused(company, sandbox):
    with pytest.raises(DomainError) as info:
        services.certificate_upload(
            company=company,
            actor=None,
            data=fresh_certificate(days_valid=-2),
            password=CERT_PASSWORD,
        )
    assert "file" in info.value.fields and "venc" in info.value.message.lower()


def test_caf_upload_checks(company, other_company, sandbox, make_caf_file):
    from dte.core.testmaterial import generate_sii_key

    cases = [
        (make_caf_file(33, rut=other_company.rut), "caf_invalid"),
        (make_caf_file(33, key=generate_sii_key()), "caf_invalid"),  # FRMA by another key
        (b"<AUTORIZACION>roto", "caf_invalid"),
        (make_caf_file(33, fecha=timezone.localdate() - timedelta(days=200)), "caf_invalid"),
    ]
    for data, code in cases:
        with pytest.raises(DomainError) as info:
            services.caf_upload(company=company, actor=None, data=data)
        assert info.value.code == code and "file" in info.value.fields
    services.caf_upload(company=company, actor=None, data=make_caf_file(33, 1, 100))
    with pytest.raises(DomainError) as info:
        services.caf_upload(company=company, actor=None, data=make_caf_file(33, 50, 150))
    assert info.value.code == "caf_overlap"
    assert Caf.objects.count() == 1


def test_caf_of_the_wrong_environment(company, settings, make_caf_file, sii_key):
    settings.SII_ENVIRONMENTS = ("certification", "production")
    company.sii_environment = "certification"
    company.save()
    with pytest.raises(DomainError) as info:
        services.caf_upload(company=company, actor=None, data=make_caf_file(33))
    assert info.value.code == "caf_invalid"  # IDK 900 is unknown outside the sandbox


def test_a_company_takes_only_the_cafs_of_its_own_environment(issuer, settings, clerk):
    """The deployment allows the sandbox and certification; the company moves to
    certification, whose key is IDK 100: its sandbox CAFs (IDK 900) no longer issue."""
    from erp import services as erp_services

    settings.SII_ENVIRONMENTS = ("sandbox", "certification")
    issuer.sii_environment = "certification"
    issuer.save()
    partner = PartnerFactory(company=issuer)
    draft = erp_services.sales_document_create(
        company=issuer,
        actor=clerk,
        data={
            "tipo_dte": 33,
            "fecha_emision": timezone.localdate(),
            "partner": partner.pk,
            "lines": [{"name": "Servicio", "quantity": Decimal(1), "unit_price": Decimal(1000)}],
        },
    )
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=draft, actor=clerk)
    assert info.value.code == "caf_invalid" and "IDK 900" in info.value.message
    assert Caf.objects.get(company=issuer, tipo_dte=33).next_folio == 1  # nothing burned
    settings.SII_ENVIRONMENTS = ("sandbox",)  # certification not allowed here at all
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=draft, actor=clerk)
    assert "no está habilitado" in info.value.message


def test_warnings(issuer, settings):
    from dte import selectors
    from dte.models import IssuerSettings

    IssuerSettings.objects.create(company=issuer, caf_low_threshold=200)
    Caf.objects.filter(company=issuer, tipo_dte=52).update(next_folio=101)
    now = timezone.now()
    codes = [w.code for w in selectors.dte_warnings(company=issuer, now=now, today=now.date())]
    # every type with a CAF of 100 folios is low under 200, but the exhausted one
    assert codes.count("caf_low") == len(TipoDte) - 1 and codes.count("caf_exhausted") == 1
    from dte.models import Certificate

    Certificate.objects.filter(company=issuer).update(not_after=now + timedelta(days=10))
    warnings = selectors.dte_warnings(company=issuer, now=now, today=now.date())
    assert any(w.code == "certificate_expiring" and "10 días" in w.message for w in warnings)


def test_secrets_are_encrypted_at_rest(issuer, cert_pfx):
    from dte.models import Certificate

    cert = Certificate.objects.get(company=issuer)
    assert CERT_PASSWORD.encode() not in bytes(cert.password_encrypted)
    assert bytes(cert.pfx_encrypted) != cert_pfx
    caf = Caf.objects.filter(company=issuer).first()
    assert b"PRIVATE KEY" not in bytes(caf.file_encrypted)
    assert b"PRIVATE KEY" not in bytes(caf.caf_xml)
