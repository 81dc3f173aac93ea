import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

app = Celery("facturacion")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="ops.ping")
def ping() -> str:
    """A no-op round trip, used by health checks and the broker test."""
    return "pong"
