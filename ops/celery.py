import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

app = Celery("facturacion")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The request id travels in task headers (ops.requestid connects Celery's signals).
import ops.requestid  # noqa: E402, F401


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
