import pytest
from django.core.exceptions import ImproperlyConfigured

from ops.settings import env_bool, env_list


def test_live(client):
    assert client.get("/health/live").json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_database_and_cache(client):
    body = client.get("/health/ready").json()
    assert body == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


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
