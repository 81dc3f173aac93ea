"""With a real Celery worker (and its embedded beat) on Redis, and the sandbox over HTTP:
issued documents reach the SII and come back accepted with nobody watching; with the SII down
for a while they wait, and then go, each exactly once."""

import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from tests.celery_utils import use_broker
from tests.factories import PartnerFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def worker(live_server, tmp_path, settings):
    """A worker process on the test database, Redis as broker, beat ticking every second."""
    from ops.celery import app

    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/13"
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "SII_ENV": "sandbox",
        "SII_SANDBOX_URL": f"{live_server.url}/_sii",
        "SII_POLL_INTERVAL": "0.5",
        "SII_BACKOFF_BASE": "0.3",
        "SII_BACKOFF_MAX": "1",
        "SII_UPLOAD_GRACE": "2",
        "SII_OUTBOX_TICK": "1",
        "SII_AUTO_SEND": "1",
    }
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ops",
            "worker",
            "-B",
            "-P",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
            "-s",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    # This process sends its tasks to the same broker as the worker.
    previous_eager = app.conf.task_always_eager
    previous = use_broker(app, broker)
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.SII_AUTO_SEND = True
    settings.SII_SANDBOX_URL = env["SII_SANDBOX_URL"]
    try:
        yield log
    finally:
        app.conf.task_always_eager = previous_eager
        use_broker(app, previous)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate, timeout: float, log) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out; worker log:\n{log.read_text()[-4000:]}")


def test_worker_sends_and_follows_to_acceptance(worker, issuer, clerk):
    from dte import services
    from dte.models import Dte
    from dte.sandbox.models import ReceivedDocument
    from erp import services as erp_services

    call_command("sandbox_fault", "upload", "html503", count=2)  # the SII is down for a moment
    partner = PartnerFactory(company=issuer)
    dtes = []
    for n in range(5):
        draft = erp_services.sales_document_create(
            company=issuer,
            actor=clerk,
            data={
                "tipo_dte": 33 if n % 2 else 39,
                "fecha_emision": timezone.localdate(),
                "partner": partner.pk,
                "lines": [
                    {"name": "Servicio", "quantity": Decimal(1), "unit_price": Decimal(1000 + n)}
                ],
            },
        )
        dtes.append(services.dte_issue(document=draft, actor=clerk))
    ids = [d.pk for d in dtes]
    wait_for(
        lambda: Dte.objects.filter(pk__in=ids, status="accepted").count() == len(ids),
        timeout=90,
        log=worker,
    )
    for dte in Dte.objects.filter(pk__in=ids):
        assert ReceivedDocument.objects.filter(tipo_dte=dte.tipo_dte, folio=dte.folio).count() == 1
