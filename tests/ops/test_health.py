import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from ops.settings import env_bool, env_list


def test_live(client):
    assert client.get("/health/live").json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_database_and_cache(client, settings):
    settings.CELERY_BROKER_URL = ""
    body = client.get("/health/ready").json()
    assert body == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


@pytest.mark.django_db
def test_ready_fails_fast_without_the_broker_and_leaks_nothing(client, settings):
    settings.CELERY_BROKER_URL = "redis://:s3cret@127.0.0.1:9/0"  # discard port: refused
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["broker"].startswith("error: ")
    assert (
        "s3cret" not in response.content.decode() and "127.0.0.1" not in response.content.decode()
    )


@pytest.mark.broker
@pytest.mark.django_db
def test_ready_sees_the_real_broker(client, settings):
    import os

    if not os.environ.get("CELERY_BROKER_URL"):
        pytest.skip("CELERY_BROKER_URL is not set")
    settings.CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
    assert client.get("/health/ready").json()["checks"]["broker"] == "ok"


def test_env_bool(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "0")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_FLAG", False)


def test_env_list(monkeypatch):
    monkeypatch.setenv("X_HOSTS", "a.cl, b.cl,,")
    assert env_list("X_HOSTS", "") == ["a.cl", "b.cl"]


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'ops.settings'; "
        "from django.conf import settings; "
        "print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None), settings.APP_COLOUR)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("APP_COLOUR", "BEHIND_HTTPS_PROXY")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )


def test_proxy_ssl_header_only_when_behind_an_https_proxy():
    assert _settings_in_a_fresh_process().stdout.split() == ["None"]
    on = _settings_in_a_fresh_process(BEHIND_HTTPS_PROXY="1", APP_COLOUR="blue")
    assert on.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https') blue", on.stderr


def test_an_unknown_colour_stops_the_start():
    result = _settings_in_a_fresh_process(APP_COLOUR="purple")
    assert result.returncode != 0
    assert "APP_COLOUR must be blue, green or empty" in result.stderr
