import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

app = Celery("facturacion")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The request id travels in task headers (ops.requestid connects Celery's signals).
import ops.requestid  # noqa: E402, F401


@app.task(name="ops.ping")
def ping() -> str:
    """A no-op round trip, used by health checks and the broker test."""
    return "pong"
