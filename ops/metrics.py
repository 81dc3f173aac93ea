"""Prometheus metrics at /metrics: django-prometheus's request and database metrics, the SII
client's latency and outcomes, the AI calls, and the business gauges read from the database at
scrape time (a handful of aggregate queries). Under gunicorn the counters of all workers are
merged through PROMETHEUS_MULTIPROC_DIR. Traefik does not route /metrics: Prometheus scrapes
the web containers on the internal network (deploy/).

Every web replica of both colours is scraped every 15 s and each runs the business gauges'
queries. All of them read small sets through an index (the open envelopes, the CAFs, the
active certificates, today's AI usage) except `dte_documents`, which counts every DTE ever
issued by type and state: a GROUP BY over the whole of dte_dte, whose cost grows with the
table. So that count is made at most once every DOCUMENTS_TTL seconds for the whole stack
(`documents_counts`): it lives in the shared cache (Redis in production) with the time it was
made, one process recounts when it is older than that (a lock in the cache; the others keep
serving the previous count meanwhile), and a count older than DOCUMENTS_MAX_AGE is never
served (it is counted again in the scrape). Only a dashboard panel reads this gauge (DTEs by
state, deploy/grafana), no alert, so a count up to a minute old is exact enough; the gauges the
alerts read (the SII queue, folios, certificates) are still read at every scrape."""

import hmac
import os
import time
from datetime import timedelta

import prometheus_client
from django.conf import settings
from django.db.models import Count, F, Sum
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily

# dte_documents is counted at most this often (seconds) for the whole stack, and a count older
# than DOCUMENTS_MAX_AGE (a recount that keeps failing, a lock left by a killed process) is
# never served. Settings METRICS_DOCUMENTS_TTL / METRICS_DOCUMENTS_MAX_AGE override them.
DOCUMENTS_TTL = 60
DOCUMENTS_MAX_AGE = 600
DOCUMENTS_KEY = "ops:metrics:dte_documents"
DOCUMENTS_LOCK = "ops:metrics:dte_documents:lock"
clock = time.time  # the count's age (a test moves it without moving the process's time)


def count_documents() -> list[tuple[int, str, int]]:
    """(tipo, status, how many) for every DTE: the whole table, so not at every scrape."""
    from dte.models import Dte

    rows = Dte.objects.order_by().values_list("tipo_dte", "status").annotate(n=Count("id"))
    return [(tipo, status, n) for tipo, status, n in rows]


def documents_counts(now: float | None = None) -> list[tuple[int, str, int]]:
    """count_documents(), made at most once every DOCUMENTS_TTL seconds across every process
    that shares the cache; between two counts, every scrape gets the last one."""
    from django.core.cache import cache

    ttl = getattr(settings, "METRICS_DOCUMENTS_TTL", DOCUMENTS_TTL)
    max_age = max(ttl, getattr(settings, "METRICS_DOCUMENTS_MAX_AGE", DOCUMENTS_MAX_AGE))
    now = clock() if now is None else now
    cached = cache.get(DOCUMENTS_KEY)
    locked = False
    if cached is not None:
        age = now - cached["at"]
        if 0 <= age < ttl:
            return cached["rows"]
        # Stale: one process recounts (the lock expires by itself should it die meanwhile);
        # the others serve the previous count, as long as it is not too old.
        locked = cache.add(DOCUMENTS_LOCK, now, timeout=ttl)
        if not locked and 0 <= age < max_age:
            return cached["rows"]
    try:
        rows = count_documents()
        cache.set(DOCUMENTS_KEY, {"at": now, "rows": rows}, timeout=max_age)
    finally:
        if locked:
            cache.delete(DOCUMENTS_LOCK)
    return rows


class BusinessCollector:
    """Gauges that are facts in the database, not events in one process."""

    def collect(self):
        from ai.models import AiUsage
        from dte.models import Caf, Certificate, Envelope

        documents = GaugeMetricFamily(
            "dte_documents",
            "Issued DTEs by type and state (counted at most once a minute for every replica)",
            labels=["tipo", "status"],
        )
        for tipo, status, n in documents_counts():
            documents.add_metric([str(tipo), status], n)
        yield documents

        queue = GaugeMetricFamily(
            "dte_sii_queue_envelopes", "Envelopes waiting on the SII, by state", labels=["status"]
        )
        pending = ("queued", "uploading", "sent", "needs_attention")
        counts = dict(
            Envelope.objects.filter(status__in=pending)
            .values("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        for status in pending:
            queue.add_metric([status], counts.get(status, 0))
        yield queue

        folios = GaugeMetricFamily(
            "dte_caf_folios_left", "Folios left per CAF", labels=["company", "tipo", "caf"]
        )
        for caf in Caf.objects.select_related("company").filter(next_folio__lte=F("folio_hasta")):
            folios.add_metric(
                [caf.company.rut, str(caf.tipo_dte), str(caf.pk)],
                caf.folio_hasta - caf.next_folio + 1,
            )
        yield folios

        now = timezone.now()
        certificates = GaugeMetricFamily(
            "dte_certificate_days_left",
            "Days until the signing certificate expires",
            labels=["company", "certificate"],
        )
        for cert in Certificate.objects.select_related("company").filter(is_active=True):
            days = (cert.not_after - now) / timedelta(days=1)
            certificates.add_metric([cert.company.rut, str(cert.pk)], round(days, 2))
        yield certificates

        today = timezone.localdate()
        usage = AiUsage.objects.filter(day=today).aggregate(
            calls=Sum("calls"), input=Sum("input_tokens"), output=Sum("output_tokens")
        )
        tokens_in, tokens_out = usage["input"] or 0, usage["output"] or 0
        ai = GaugeMetricFamily("ai_usage_today", "AI usage today, all companies", labels=["kind"])
        ai.add_metric(["calls"], usage["calls"] or 0)
        ai.add_metric(["input_tokens"], tokens_in)
        ai.add_metric(["output_tokens"], tokens_out)
        yield ai
        cost = GaugeMetricFamily(
            "ai_cost_usd_today", "Estimated AI spend today (AI_PRICE_* per million tokens)"
        )
        cost.add_metric(
            [],
            (tokens_in * settings.AI_PRICE_INPUT + tokens_out * settings.AI_PRICE_OUTPUT) / 1e6,
        )
        yield cost

        from django.core.cache import cache

        beat = GaugeMetricFamily(
            "ops_beat_heartbeat_age_seconds",
            "Seconds since the beat's last heartbeat task ran (-1: never seen)",
        )
        last = cache.get("ops:beat:heartbeat")
        beat.add_metric([], round(time.time() - last, 1) if last else -1)
        yield beat


BUSINESS = BusinessCollector()


def metrics(request):
    """The exposition: every process's counters (multiprocess mode) plus the business gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.CollectorRegistry()
        registry.register(_Default())
    registry.register(BUSINESS)
    return HttpResponse(
        prometheus_client.generate_latest(registry),
        content_type=prometheus_client.CONTENT_TYPE_LATEST,
    )


def scrape_allowed(request) -> bool:
    """Only Prometheus reads /metrics (every company's RUT, folios, certificates, AI cost): it
    presents METRICS_TOKEN as a bearer token. Without a token configured, /metrics is open only
    on a laptop (DEBUG or the embedded SQLite) and closed everywhere else."""
    token = settings.METRICS_TOKEN
    if not token:
        return settings.METRICS_OPEN_WITHOUT_TOKEN
    given = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip(), token)


class ScrapeMiddleware:
    """/metrics answered here, before anything reads the Host header, and only to Prometheus.

    Prometheus finds every web replica by DNS (deploy/prometheus/prometheus.yml) and scrapes it
    by address, so the Host it sends is the container's IP (172.18.0.5:8000), which
    ALLOWED_HOSTS cannot list; what guards it is the bearer token (scrape_allowed), whatever the
    Host. Traefik never routes it either."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.rstrip("/") != "/metrics":
            return self.get_response(request)
        if not scrape_allowed(request):
            if not settings.METRICS_TOKEN:
                return HttpResponse(status=404)
            response = HttpResponse("Se requiere el token de Prometheus.", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(status=405)
        return metrics(request)


class _Default:
    """This process's own registry, seen through another registry."""

    def collect(self):
        yield from prometheus_client.REGISTRY.collect()
