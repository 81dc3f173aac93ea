"""Finding 4 of the security review: what is exposed where. The sandbox SII is served only
when asked for outside DEBUG and the embedded SQLite; gunicorn believes X-Forwarded-* only from
the proxy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _setting(name: str, tmp_path, **env) -> str:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SII_", "DEBUG", "DATABASE_URL"))
    }
    base.update(
        DJANGO_SETTINGS_MODULE="ops.settings",
        VAR_DIR=str(tmp_path),
        SECRET_KEY="s" * 50,
        FIELD_ENCRYPTION_KEY="x3Zq0y9E2v6o6mWmY1a0vQWqH4W2cq6L5s3sI6ZJ2tQ=",
        **env,
    )
    code = (
        f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "served"),
    [
        ({"DATABASE_URL": "postgres://x@127.0.0.1:1/x", "DEBUG": "0"}, "False"),
        (
            {"DATABASE_URL": "postgres://x@127.0.0.1:1/x", "DEBUG": "0", "SII_SANDBOX_SERVE": "1"},
            "True",
        ),
        ({"DATABASE_URL": "postgres://x@127.0.0.1:1/x", "DEBUG": "1"}, "True"),
        ({"DEBUG": "0"}, "True"),  # the embedded SQLite: a laptop
        ({"DEBUG": "1", "SII_ENV": "production"}, "False"),  # no sandbox environment at all
    ],
)
def test_the_sandbox_is_served_only_when_asked_for(tmp_path, env, served):
    assert _setting("SII_SANDBOX_SERVE", tmp_path, **env) == served


def test_gunicorn_believes_forwarded_headers_only_from_the_proxy(monkeypatch):
    import runpy

    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    conf = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert conf["forwarded_allow_ips"] == "127.0.0.1"
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    traefik_ip = compose["services"]["traefik"]["networks"]["edge"]["ipv4_address"]
    web_env = compose["x-web"]["environment"]
    assert web_env["FORWARDED_ALLOW_IPS"] == traefik_ip


@pytest.mark.django_db
def test_metrics_only_for_prometheus_whatever_the_host(client, settings):
    settings.METRICS_TOKEN = "el-token-de-prometheus"
    ip_host = {"HTTP_HOST": "172.18.0.5:8000"}  # a replica scraped by address
    assert client.get("/metrics", **ip_host).status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer otro", **ip_host)
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer el-token-de-prometheus", **ip_host)
    assert right.status_code == 200 and b"dte_" in right.content
    posted = client.post("/metrics", HTTP_AUTHORIZATION="Bearer el-token-de-prometheus")
    assert posted.status_code == 405
    # Without a token a deployment does not serve it at all (a laptop does).
    settings.METRICS_TOKEN = ""
    settings.METRICS_OPEN_WITHOUT_TOKEN = False
    assert client.get("/metrics", **ip_host).status_code == 404
    assert client.get("/metrics/", **ip_host).status_code == 404
