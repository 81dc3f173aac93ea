import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

app = Celery("facturacion")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The request id travels in task headers (ops.requestid connects Celery's signals).
import ops.requestid  # noqa: E402, F401


@signals.worker_ready.connect
def _serve_worker_metrics(**kwargs) -> None:
    """Workers record the SII and AI metrics (uploads, polls and reviews run here), so each
    worker serves them for Prometheus on WORKER_METRICS_PORT; its pool processes write to
    PROMETHEUS_MULTIPROC_DIR and this server merges them."""
    port = os.environ.get("WORKER_METRICS_PORT")
    if not port:
        return
    import prometheus_client
    from prometheus_client import multiprocess

    registry = prometheus_client.REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    prometheus_client.start_http_server(int(port), registry=registry)


@app.task(name="ops.heartbeat", ignore_result=True)
def heartbeat() -> float:
    """Beat, every minute: proves the beat is alive (alert CeleryBeatSilent reads its age)."""
    import time

    from django.core.cache import cache

    now = time.time()
    cache.set("ops:beat:heartbeat", now, None)
    return now


@app.task(name="ops.ping")
def ping() -> str:
    """A no-op round trip, used by health checks and the broker test."""
    return "pong"
