"""/metrics: request metrics, the SII and AI counters, and the business gauges from the
database; and the request id that follows a request into its logs and Celery tasks."""

import json
import logging
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from ops import requestid

pytestmark = pytest.mark.django_db


TOKEN = "prometheus-test-token"


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client: Client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_metrics_carry_the_business_gauges(issuer, client):
    from ai.models import AiUsage
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
            "lines": [{"name": "X", "quantity": Decimal(1), "unit_price": Decimal(1000)}],
        },
    )
    dte_services.dte_issue(document=draft, actor=None)
    from django.utils import timezone

    AiUsage.objects.create(
        company=issuer,
        day=timezone.localdate(),
        calls=2,
        input_tokens=1_000_000,
        output_tokens=100_000,
    )
    client.get("/health/live")
    body = scrape(client)
    assert 'dte_documents{status="queued",tipo="33"} 1.0' in body
    assert 'dte_sii_queue_envelopes{status="queued"} 1.0' in body
    assert "dte_caf_folios_left{caf=" in body and 'tipo="33"} 99.0' in body
    assert "dte_certificate_days_left{" in body
    assert 'ai_usage_today{kind="calls"} 2.0' in body
    assert "ai_cost_usd_today 4.5" in body  # 1 M in × $3 + 0,1 M out × $15
    assert "django_http_requests_total_by_method_total" in body
    assert "# TYPE sii_requests_total counter" in body
    assert "# TYPE ai_calls_total counter" in body


def test_request_id_is_echoed_or_made(client):
    made = client.get("/health/live")["X-Request-ID"]
    assert len(made) == 32
    assert client.get("/health/live", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    forged = client.get("/health/live", HTTP_X_REQUEST_ID="bad id\nInjected: 1")
    assert forged["X-Request-ID"] != "bad id\nInjected: 1" and "\n" not in forged["X-Request-ID"]


def test_json_log_lines_carry_the_request_id():
    record = logging.LogRecord("dte.sending", logging.INFO, __file__, 1, "subido %s", ("x",), None)
    token = requestid.REQUEST_ID.set("req-42")
    try:
        requestid.RequestIdFilter().filter(record)
    finally:
        requestid.REQUEST_ID.reset(token)
    line = json.loads(requestid.JsonFormatter().format(record))
    assert line == {
        "time": line["time"],
        "level": "INFO",
        "logger": "dte.sending",
        "message": "subido x",
        "request_id": "req-42",
    }


def test_tasks_carry_the_request_id_to_the_worker():
    headers: dict = {}
    token = requestid.REQUEST_ID.set("req-77")
    try:
        requestid._carry_request_id(headers=headers)
    finally:
        requestid.REQUEST_ID.reset(token)
    assert headers == {"request_id": "req-77"}

    class Request:
        request_id = "req-77"

    class Task:
        request = Request()

    requestid._adopt_request_id(task_id="t1", task=Task())
    assert requestid.REQUEST_ID.get() == "req-77"
    requestid._forget_request_id(task_id="t1")
    assert requestid.REQUEST_ID.get() == ""


def test_a_worker_serves_its_own_metrics(monkeypatch):
    import socket
    import urllib.request

    from ops.celery import _serve_worker_metrics

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("WORKER_METRICS_PORT", str(port))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    _serve_worker_metrics()
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "# TYPE sii_requests_total counter" in body


def test_the_colour_answers_in_a_header_when_set(settings):
    settings.APP_COLOUR = "green"
    response = Client().get("/health/live")
    assert response["X-App-Colour"] == "green"
    settings.APP_COLOUR = ""
    assert "X-App-Colour" not in Client().get("/health/live")


def test_json_log_lines_carry_the_colour(monkeypatch):
    record = logging.LogRecord("dte.sending", logging.INFO, __file__, 1, "hola", (), None)
    monkeypatch.setenv("APP_COLOUR", "blue")
    assert json.loads(requestid.JsonFormatter().format(record))["colour"] == "blue"
    monkeypatch.delenv("APP_COLOUR")
    assert "colour" not in json.loads(requestid.JsonFormatter().format(record))
