"""Liveness (the process answers) and readiness (its database, cache and, when configured, the
Celery broker answer too). Fast, and the body names only what failed and the error's type:
never a URL, a host or a password."""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse


def live(request):
    return JsonResponse({"status": "ok"})


def ready(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        cache.set("health:ready", "1", 5)
        checks["cache"] = "ok" if cache.get("health:ready") == "1" else "error: read back"
    except Exception as exc:
        checks["cache"] = f"error: {type(exc).__name__}"
    if settings.CELERY_BROKER_URL:
        checks["broker"] = _broker()
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "error", "checks": checks}, status=200 if ok else 503
    )


def _broker() -> str:
    from ops.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
            connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
        return "ok"
    except Exception as exc:  # any transport error means not ready
        return f"error: {type(exc).__name__}"


BROKER_TIMEOUT = 1.0  # seconds: a readiness probe must answer fast
