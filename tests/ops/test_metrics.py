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


@pytest.fixture(autouse=True)
def _no_cached_documents_count():
    """dte_documents is cached for the whole stack (ops.metrics.documents_counts): no test may
    see the count another one left in the (process-wide) cache."""
    from django.core.cache import cache

    from ops import metrics

    cache.delete_many([metrics.DOCUMENTS_KEY, metrics.DOCUMENTS_LOCK])
    yield
    cache.delete_many([metrics.DOCUMENTS_KEY, metrics.DOCUMENTS_LOCK])


def scrape(client: Client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def issue_one(company) -> None:
    from dte import services as dte_services
    from erp import services as erp_services
    from tests.factories import PartnerFactory

    partner = PartnerFactory(company=company)
    draft = erp_services.sales_document_create(
        company=company,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 11, 20),
            "partner": partner.pk,
            "lines": [{"name": "X", "quantity": Decimal(1), "unit_price": Decimal(1000)}],
        },
    )
    dte_services.dte_issue(document=draft, actor=None)


def test_metrics_carry_the_business_gauges(issuer, client):
    from ai.models import AiUsage

    issue_one(issuer)
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


# dte_documents: the whole of dte_dte counted at most once every DOCUMENTS_TTL seconds --------


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_documents_are_counted_at_most_once_per_ttl(monkeypatch):
    from ops import metrics

    counts = []

    def count():
        counts.append(1)
        return [(33, "accepted", len(counts))]

    monkeypatch.setattr(metrics, "count_documents", count)
    t0 = 1_800_000_000.0
    assert metrics.documents_counts(now=t0) == [(33, "accepted", 1)]
    for later in (0.0, 1.0, metrics.DOCUMENTS_TTL - 0.1):
        assert metrics.documents_counts(now=t0 + later) == [(33, "accepted", 1)]
    assert len(counts) == 1
    assert metrics.documents_counts(now=t0 + metrics.DOCUMENTS_TTL) == [(33, "accepted", 2)]
    assert len(counts) == 2
    # A count "from the future" (another host's clock ahead) is not trusted for long.
    assert metrics.documents_counts(now=t0) == [(33, "accepted", 3)]


def test_a_stale_count_is_served_while_another_process_recounts(monkeypatch, settings):
    from django.core.cache import cache

    from ops import metrics

    settings.METRICS_DOCUMENTS_TTL, settings.METRICS_DOCUMENTS_MAX_AGE = 30, 300
    monkeypatch.setattr(metrics, "count_documents", lambda: [(39, "queued", 7)])
    t0 = 1_800_000_000.0
    assert metrics.documents_counts(now=t0) == [(39, "queued", 7)]
    monkeypatch.setattr(metrics, "count_documents", lambda: [(39, "queued", 8)])
    assert cache.add(metrics.DOCUMENTS_LOCK, "another replica", timeout=30)  # it recounts
    assert metrics.documents_counts(now=t0 + 31) == [(39, "queued", 7)]
    assert metrics.documents_counts(now=t0 + 299) == [(39, "queued", 7)]
    # Never older than the maximum age, lock or not (a replica killed while counting).
    assert metrics.documents_counts(now=t0 + 300) == [(39, "queued", 8)]
    cache.delete(metrics.DOCUMENTS_LOCK)


def test_the_process_that_recounts_takes_the_lock_and_leaves_it(monkeypatch):
    from django.core.cache import cache

    from ops import metrics

    held = []

    def count():
        held.append(cache.get(metrics.DOCUMENTS_LOCK) is not None)
        if len(held) == 3:
            raise RuntimeError("database gone")
        return []

    monkeypatch.setattr(metrics, "count_documents", count)
    t0 = 1_800_000_000.0
    metrics.documents_counts(now=t0)  # nothing cached: counted without the lock
    metrics.documents_counts(now=t0 + metrics.DOCUMENTS_TTL)  # stale: under the lock
    assert held == [False, True]
    assert cache.get(metrics.DOCUMENTS_LOCK) is None
    with pytest.raises(RuntimeError):
        metrics.documents_counts(now=t0 + 2 * metrics.DOCUMENTS_TTL)
    assert cache.get(metrics.DOCUMENTS_LOCK) is None  # a failed count does not keep it


def test_the_documents_gauge_follows_the_table_within_the_ttl(issuer, client, monkeypatch):
    """End to end through /metrics: scrapes within the TTL read no DTE table at all and give
    the count made at the first one; the first scrape after the TTL gives the new count."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ops import metrics

    clock = Clock()
    monkeypatch.setattr(metrics, "clock", clock)
    series = 'dte_documents{status="queued",tipo="33"}'
    issue_one(issuer)
    with CaptureQueriesContext(connection) as first:
        assert f"{series} 1.0" in scrape(client)
    assert any('"dte_dte"' in query["sql"] for query in first.captured_queries)

    issue_one(issuer)
    clock.now += metrics.DOCUMENTS_TTL - 1
    with CaptureQueriesContext(connection) as cached:
        body = scrape(client)
    assert f"{series} 1.0" in body  # up to DOCUMENTS_TTL old, by design
    assert not any('"dte_dte"' in query["sql"] for query in cached.captured_queries)
    # The gauges the alerts read are still read at this scrape.
    assert any('"dte_envelope"' in query["sql"] for query in cached.captured_queries)

    clock.now += 1
    assert f"{series} 2.0" in scrape(client)
