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
def worker_env():
    """Settings of the worker beyond the fixture's (a test parametrizes it)."""
    return {}


@pytest.fixture
def worker(live_server, tmp_path, settings, worker_env):
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
        **worker_env,
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


PRODUCTION_TIMINGS = {
    # The defaults of ops/settings.py, and a beat too slow to help: the countdown tasks alone
    # must take the documents through.
    "SII_POLL_INTERVAL": "20",
    "SII_POLL_FIRST": "1",
    "SII_BACKOFF_BASE": "5",
    "SII_BACKOFF_MAX": "900",
    "SII_OUTBOX_TICK": "120",
    "SII_ENVELOPE_WINDOW": "1",
}


@pytest.mark.parametrize("worker_env", [PRODUCTION_TIMINGS])
def test_an_idle_system_takes_documents_to_accepted_in_seconds(worker, issuer, clerk, settings):
    """Issue three documents one by one on an idle system: they share one envelope, uploaded
    once, asked about soon after, and are accepted within 10 s of the last issue."""
    from dte import services
    from dte.models import Dte, Envelope
    from tests.dte.sii.conftest import make_drafts

    settings.SII_ENVELOPE_WINDOW = 1  # this process issues, as a web worker would
    (warm,) = make_drafts(issuer, clerk)  # the worker's first task loads Django and the keys
    warm_id = services.dte_issue(document=warm, actor=clerk).pk
    wait_for(lambda: Dte.objects.get(pk=warm_id).status == "accepted", timeout=60, log=worker)
    drafts = make_drafts(issuer, clerk, n=3)
    time.sleep(1.5)  # a window of its own
    ids = [services.dte_issue(document=d, actor=clerk).pk for d in drafts]
    issued_at = time.monotonic()
    wait_for(
        lambda: Dte.objects.filter(pk__in=ids, status="accepted").count() == 3,
        timeout=30,
        log=worker,
    )
    elapsed = time.monotonic() - issued_at
    assert elapsed < 10, elapsed
    envelopes = set(Dte.objects.filter(pk__in=ids).values_list("envelope_id", flat=True))
    assert len(envelopes) == 1
    envelope = Envelope.objects.get(pk=envelopes.pop())
    assert envelope.attempts == 1 and envelope.polls <= 3
    print(f"issue to accepted: {elapsed:.1f} s, {envelope.polls} polls")
