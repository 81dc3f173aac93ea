"""The real services behind the embedded defaults: PostgreSQL, Redis and a Celery broker.
Each test says what it needs with a marker; CI (REQUIRE_SERVICES=1) fails if it is missing."""

import os
import subprocess
import sys
import threading
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections

from erp import services
from erp.errors import DomainError
from erp.models import Partner
from tests.celery_utils import use_broker


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_partner_creation_keeps_rut_unique(company, clerk):
    """Eight writers race for one RUT: exactly one wins, the others get duplicate_rut."""
    assert connection.vendor == "postgresql"
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create():
        try:
            barrier.wait(timeout=10)
            services.partner_create(
                company=company,
                actor=clerk,
                data={"rut": "96790240-3", "razon_social": "Carrera"},
            )
            result = "created"
        except DomainError as exc:
            result = exc.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["created"] + ["duplicate_rut"] * 7
    assert Partner.objects.filter(company=company, rut="96790240-3").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_money_columns_round_trip_exactly(company, clerk):
    product = services.product_create(
        company=company,
        actor=clerk,
        data={"code": "D-1", "name": "Decimal", "unit_price": Decimal("18990.123456")},
    )
    product.refresh_from_db()
    assert product.unit_price == Decimal("18990.123456")


@pytest.mark.redis
def test_cache_is_redis():
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    cache.set("ci:probe", {"monto": 1190}, 30)
    assert cache.get("ci:probe") == {"monto": 1190}
    cache.delete("ci:probe")


@pytest.mark.redis
@pytest.mark.django_db
def test_sessions_live_in_redis(client, clerk):
    from django_redis import get_redis_connection

    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cache"
    client.force_login(clerk)
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    keys = get_redis_connection("default").keys(f"*{session_key}*")
    assert keys, "the session was not written to Redis"


def _broker_urls() -> list[str]:
    urls = [settings.CELERY_BROKER_URL, os.environ.get("TEST_AMQP_URL", "")]
    return [u for u in urls if u] or ["missing"]


@pytest.mark.broker
@pytest.mark.parametrize("broker", _broker_urls())
def test_celery_round_trip_through_the_broker(tmp_path, broker):
    """A real worker process consumes from the broker and answers ops.ping (Redis, and
    RabbitMQ when TEST_AMQP_URL names one)."""
    from ops.celery import app

    assert not app.conf.task_always_eager
    # Results come back through Redis (or the broker itself when it is Redis).
    backend = broker if broker.startswith("redis") else settings.REDIS_URL or "rpc://"
    queue = f"ci-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": backend}
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ops",
            "worker",
            "-P",
            "solo",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    previous = use_broker(app, broker)
    try:
        from celery.app.backends import by_url

        backend_cls, backend_url = by_url(backend, app.loader)
        results = backend_cls(app=app, url=backend_url)
        sent = app.send_task("ops.ping", queue=queue)
        result = app.AsyncResult(sent.id, backend=results)
        try:
            answer = result.get(timeout=30)
        except Exception as exc:
            raise AssertionError(f"no answer through {broker}: {log.read_text()[-3000:]}") from exc
        assert answer == "pong"
    finally:
        use_broker(app, previous)
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
