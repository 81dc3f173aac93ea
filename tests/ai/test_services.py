"""AI reviews through the app: rules always, Claude through the local stub when a key is set,
with its cache, budget and failures; after issuing and computing; in the UI, API and command."""

import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.management import call_command

from ai import services
from ai.models import AiFinding, AiReview, AiUsage
from dte import services as dte_services
from erp import services as erp_services
from f29 import services as f29_services
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

AI_FINDING = {
    "code": "ai_precio_inusual",
    "severity": "warning",
    "message": "El precio de la consultoría es muy superior al habitual.",
    "evidence": {"linea": 1},
}


def issue(company, partner, *, price=45000, day=2):
    draft = erp_services.sales_document_create(
        company=company,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 11, day),
            "partner": partner.pk,
            "lines": [
                {"name": "Consultoría", "quantity": Decimal(2), "unit_price": Decimal(price)}
            ],
        },
    )
    dte_services.dte_issue(document=draft, actor=None)
    draft.refresh_from_db()
    return draft


@pytest.fixture
def customer(issuer):
    return PartnerFactory(
        company=issuer, rut="96790240-3", razon_social="Andina Secreta Ltda.", giro="Comercio"
    )


@pytest.fixture
def with_key(settings, ai_stub):
    settings.ANTHROPIC_API_KEY = "sk-test-not-real"
    settings.ANTHROPIC_BASE_URL = ai_stub.url
    settings.AI_MAX_RETRIES = 0
    settings.AI_TIMEOUT = 5
    cache.clear()
    return ai_stub


def test_without_a_key_the_rules_run_and_the_page_says_why(issuer, customer):
    issue(issuer, customer)
    twin = issue(issuer, customer, day=3)  # same partner, same total, a day later
    review = services.ai_review_document(document=twin)
    assert review.ai_status == "off" and review.ai_reason == services.OFF_REASON
    assert "ANTHROPIC" not in review.ai_reason and "no está configurada" in review.ai_reason
    codes = set(review.findings.values_list("code", flat=True))
    assert "duplicate_document" in codes
    assert set(review.findings.values_list("source", flat=True)) == {"rules"}


def test_with_a_key_claude_adds_findings_and_is_cached(issuer, customer, with_key):
    document = issue(issuer, customer)
    with_key.ok([AI_FINDING], "La factura parece correcta salvo el precio.")
    review = services.ai_review_document(document=document)
    assert review.ai_status == "ok" and review.explanation.startswith("La factura")
    ai = review.findings.get(source="ai")
    assert ai.code == "ai_precio_inusual" and ai.severity == "warning"
    usage = AiUsage.objects.get(company=issuer)
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (1, 321, 45)

    # Only what the check needs went out: no RUTs, names or keys.
    sent = with_key.requests[0].user_text + with_key.requests[0].system
    for secret in ("96790240-3", "Andina Secreta", issuer.rut, "sk-test-not-real", "PRIVATE"):
        assert secret not in sent
    assert "Consultoría" in sent and "Comercio" in sent

    again = services.ai_review_document(document=document)
    assert again.ai_status == "cached" and len(with_key.requests) == 1
    assert again.findings.filter(source="ai").count() == 1


def test_api_failure_keeps_the_rules_and_says_so(issuer, customer, with_key):
    document = issue(issuer, customer)
    with_key.server_error(500)
    review = services.ai_review_document(document=document)
    assert review.ai_status == "failed" and "HTTP 500" in review.ai_reason
    assert not review.findings.filter(source="ai").exists()
    assert not AiUsage.objects.filter(company=issuer).exists()


def test_malformed_answer_is_a_clean_failure(issuer, customer, with_key):
    document = issue(issuer, customer)
    with_key.text_only()
    review = services.ai_review_document(document=document)
    assert review.ai_status == "failed" and "formato" in review.ai_reason


def test_the_daily_budget_stops_calls(issuer, customer, with_key, settings):
    settings.AI_DAILY_TOKEN_BUDGET = 100
    from django.utils import timezone

    AiUsage.objects.create(company=issuer, day=timezone.localdate(), input_tokens=100)
    review = services.ai_review_document(document=issue(issuer, customer))
    assert review.ai_status == "budget" and "presupuesto" in review.ai_reason
    assert with_key.requests == []


def test_review_runs_after_issuing_and_after_computing(
    issuer, customer, settings, eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    from ai import receivers

    monkeypatch.setattr(receivers, "IN_THREAD", False)  # here, in the test's transaction
    settings.AI_REVIEW_ON_ISSUE = True
    with django_capture_on_commit_callbacks(execute=True):
        document = issue(issuer, customer)
    assert AiReview.objects.filter(sales_document=document, target="document").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        f29 = f29_services.f29_compute(company=issuer, periodo=date(2026, 11, 1), actor=None)
    assert AiReview.objects.filter(f29=f29, target="period").count() == 1


def test_period_review_flags_a_vat_swing(issuer):
    from f29.models import F29Return

    for month, iva in ((7, 1_000_000), (8, 1_100_000), (9, 950_000)):
        F29Return.objects.create(
            company=issuer, periodo=date(2026, month, 1), state="filed", boxes={"89": iva}
        )
    october = F29Return.objects.create(
        company=issuer, periodo=date(2026, 10, 1), boxes={"89": 3_000_000}
    )
    review = services.ai_review_period(f29=october)
    assert review.findings.filter(code="vat_swing").exists()


def test_ui_shows_findings_and_staff_decide(issuer, customer, clerk, client):
    issue(issuer, customer)
    twin = issue(issuer, customer, day=3)
    client.force_login(clerk)
    response = client.post(f"/ia/documentos/{twin.pk}/revisar/", follow=True)
    page = response.content.decode()
    assert "Revisión automática" in page and "duplicate_document" in page
    assert "desactivada" in page and "las reglas automáticas sí se aplicaron" in page
    assert "ANTHROPIC" not in page  # the technical hint is for admins (admin, logs)
    finding = AiFinding.objects.get(review__sales_document=twin, code="duplicate_document")
    client.post(f"/ia/hallazgos/{finding.pk}/dismiss/")
    finding.refresh_from_db()
    assert finding.state == "dismissed" and finding.decided_by == clerk


def test_api_reviews_lists_and_decides(issuer, customer, clerk, viewer, api_for):
    document = issue(issuer, customer)
    base = f"/api/v1/companies/{issuer.rut}"
    created = api_for(clerk).post(f"{base}/ai-reviews/document/{document.pk}/")
    assert created.status_code == 201 and created.json()["ai_status"] == "off"
    listed = api_for(viewer).get(f"{base}/ai-reviews/?document={document.pk}").json()
    assert listed["count"] == 1
    assert api_for(viewer).post(f"{base}/ai-reviews/document/{document.pk}/").status_code == 403
    finding = AiFinding.objects.create(
        review=AiReview.objects.get(pk=created.json()["id"]),
        source="rules",
        code="total_mismatch",
        severity="error",
        message="x",
    )
    accepted = api_for(clerk).post(f"{base}/ai-findings/{finding.pk}/accept/")
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"


def test_command_prints_findings_as_json(issuer, customer, capsys):
    issue(issuer, customer)
    twin = issue(issuer, customer, day=3)
    call_command("ai_review", company=issuer.rut, tipo=33, folio=twin.folio, json=True)
    findings = json.loads(capsys.readouterr().out)
    assert isinstance(findings, list) and findings
    assert {"code", "severity", "message"} <= set(findings[0])
    assert "duplicate_document" in {f["code"] for f in findings}


def test_a_failing_review_never_breaks_issuing(
    issuer, customer, settings, eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    from ai import receivers

    monkeypatch.setattr(receivers, "IN_THREAD", False)
    settings.AI_REVIEW_ON_ISSUE = True

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "ai_review_document", broken)
    with django_capture_on_commit_callbacks(execute=True):
        document = issue(issuer, customer)
    document.refresh_from_db()
    assert document.state == "issued" and not AiReview.objects.exists()


def test_without_a_key_admins_get_the_technical_hint(issuer, customer, admin_client, caplog):
    document = issue(issuer, customer)
    with caplog.at_level("INFO", logger="ai.services"):
        services._off_logged = False
        review = services.ai_review_document(document=document)
        services.ai_review_document(document=document)
    assert [r.getMessage() for r in caplog.records if "ANTHROPIC_API_KEY" in r.getMessage()] == [
        "AI review is off: ANTHROPIC_API_KEY is not set (only the rules run)"
    ]  # once per process, not per review
    page = admin_client.get(f"/admin/ai/aireview/{review.pk}/change/").content.decode()
    assert "ANTHROPIC_API_KEY" in page and "nota técnica" in page.lower()


def test_reviews_stored_with_the_old_reason_are_reworded(issuer, customer):
    import importlib

    from django.apps import apps

    document = issue(issuer, customer)
    old = "Sin ANTHROPIC_API_KEY: la revisión con IA está desactivada; las reglas sí corren."
    review = services.ai_review_document(document=document)
    AiReview.objects.filter(pk=review.pk).update(ai_reason=old)
    importlib.import_module("ai.migrations.0002_off_reason_in_words").reword(apps, None)
    review.refresh_from_db()
    assert review.ai_reason == services.OFF_REASON
