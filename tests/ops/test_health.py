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
