"""Celery queues (issue 18): PDF, e-mail, AI and batch work never wait in the SII's queue.

The routes are by task name (ops/settings.py), so they hold for every way a task is queued:
`delay`, `apply_async` with a countdown, and dte.dispatch, which queues by name after the
commit (checked against a real Redis broker: the message lands in the queue's list). Then
compose.yaml: each queue has its workers in each colour, and no SII worker takes the others'.
"""

import inspect
import json
import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from ops.celery import app
from tests.ops.test_stack_files import (  # fixtures and helpers, not tests
    COLOURS,
    argv,
    environment,
    mounts,
    option,
    seconds,
    services,  # noqa: F401  (fixture)
    stack,  # noqa: F401  (fixture)
)

PGBOUNCER_INI = Path(__file__).resolve().parents[2] / "deploy" / "pgbouncer" / "pgbouncer.ini"
EXPECTED = {
    "dte.envelope_send": "sii",
    "dte.envelope_refresh": "sii",
    "dte.outbox_tick": "sii",
    "dte.libro_send": "sii",
    "dte.libro_refresh": "sii",
    "dte.dte_store_pdf": "pdf",
    "dte.dte_email": "email",
    "dte.received_answer_email": "email",
    "ai.ai_review_document": "ai",
    "ai.ai_review_period": "ai",
    "dte.mailbox_poll": "bulk",
    "dte.received_intake_run": "bulk",
    "dte.received_sync": "bulk",
    "dte.certification_run": "bulk",
    "f29.rcv_import_run": "bulk",
    "ops.heartbeat": "celery",
    "ops.ping": "celery",
}
# What each kind of worker takes, per colour (compose.yaml).
WORKER_QUEUES = {"": {"sii", "celery"}, "-aux": {"pdf", "email", "ai"}, "-bulk": {"bulk"}}


def routed(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


def test_each_task_goes_to_its_queue():
    assert settings.CELERY_TASK_DEFAULT_QUEUE == "celery"
    assert {name: routed(name) for name in EXPECTED} == EXPECTED


def test_every_task_of_the_apps_is_routed_on_purpose():
    """A new task must be placed in a queue (the default one would put it beside the SII's
    uploads); only ops' own small tasks use the default."""
    app.loader.import_default_modules()
    ours = {n for n in app.tasks if n.split(".")[0] in {"dte", "f29", "ai", "erp"}}
    assert ours, "no task registered"
    unrouted = sorted(n for n in ours if n not in settings.CELERY_TASK_ROUTES)
    assert unrouted == []
    named = {n for names in settings.TASK_QUEUES_BY_NAME.values() for n in names}
    assert named - set(app.tasks) == set(), "a route names a task that does not exist"


def test_the_sii_queue_holds_only_sending():
    sii = set(settings.TASK_QUEUES_BY_NAME["sii"])
    assert {n for n in sii if n.startswith(("dte.envelope_", "dte.libro_"))} | {
        "dte.outbox_tick"
    } == sii


# ---------------------------------------------------------------- through a real broker


@pytest.fixture
def redis_broker(settings):
    """This process publishes to the suite's Redis broker under a key prefix of its own
    (kombu's global_keyprefix: nothing consumes these queues, no other run sees them); the
    queues' lists are read, then the prefixed keys deleted."""
    import redis

    from tests.celery_utils import reset_pool

    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.skip("the queue lists are read from a Redis broker")
    prefix = f"test-queues-{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(url)
    previous_options = app.conf.broker_transport_options
    previous_eager = app.conf.task_always_eager
    app.conf.broker_transport_options = {**(previous_options or {}), "global_keyprefix": prefix}
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    reset_pool(app)
    try:
        yield client, prefix
    finally:
        app.conf.broker_transport_options = previous_options
        app.conf.task_always_eager = previous_eager
        reset_pool(app)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def _messages(broker, queue: str) -> list[tuple[str, str]]:
    client, prefix = broker
    found = []
    for raw in client.lrange(prefix + queue, 0, -1):
        message = json.loads(raw)
        found.append(
            (message["headers"]["task"], message["properties"]["delivery_info"]["routing_key"])
        )
    return found


def _arguments(name: str) -> list[int]:
    """An id for each required parameter (Celery checks the arguments when it queues)."""
    parameters = inspect.signature(app.tasks[name].run).parameters.values()
    required = [p for p in parameters if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    return [424242] * len(required)


@pytest.mark.broker
def test_dispatch_publishes_each_task_to_its_queue(redis_broker):
    """dte.dispatch.run_task, the path every service's after-commit task takes (by name,
    `delay` or `apply_async` with a countdown), lands in the routed queue's list."""
    from dte import dispatch

    for name in EXPECTED:
        if name.startswith("ops."):
            continue
        dispatch.run_task(name, *_arguments(name))
    dispatch.run_task(
        "dte.envelope_refresh", *_arguments("dte.envelope_refresh"), delay=5
    )  # a countdown: same queue
    landed = {
        queue: _messages(redis_broker, queue) for queue in ("sii", "pdf", "email", "ai", "bulk")
    }
    for name, queue in EXPECTED.items():
        if name.startswith("ops."):
            continue
        assert (name, queue) in landed[queue], (name, landed)
    assert ("dte.envelope_refresh", "sii") in landed["sii"]
    # Nothing of the SII's elsewhere, nothing else in the SII's.
    assert {task for task, _ in landed["sii"]} <= set(settings.TASK_QUEUES_BY_NAME["sii"])
    client, prefix = redis_broker
    assert client.llen(prefix + "celery") == 0


# ---------------------------------------------------------------- compose.yaml


def test_each_colour_has_a_worker_per_group_of_queues(services):  # noqa: F811
    routed_queues = {*settings.TASK_QUEUES_BY_NAME, settings.CELERY_TASK_DEFAULT_QUEUE}
    for colour in COLOURS:
        taken: dict[str, str] = {}
        for suffix, expected in WORKER_QUEUES.items():
            name = f"worker-{colour}{suffix}"
            command = services[name]["command"]
            assert argv(command)[:4] == ["celery", "-A", "ops", "worker"], name
            assert option(command, "-n") == f"{name}@%h", name
            queues = set((option(command, "-Q") or "").split(","))
            assert queues == expected, name
            for queue in queues:
                assert queue not in taken, (queue, name, taken.get(queue))
                taken[queue] = name
            # Drain budget, health check, colour, like the SII worker.
            hard = option(command, "--time-limit")
            assert hard and seconds(services[name]["stop_grace_period"]) >= float(hard), name
            check = services[name]["healthcheck"]
            assert f"{name}@" in " ".join(argv(check["test"])), name
            assert environment(services[name])["APP_COLOUR"] == colour, name
            assert "-B" not in argv(command) and "--beat" not in argv(command), name
        assert set(taken) == routed_queues, colour


def test_the_aux_and_bulk_workers_of_both_colours_match_but_for_the_image(services):  # noqa: F811
    def normalised(name: str) -> str:
        service = json.loads(json.dumps(services[name]))
        service.pop("image")
        return json.dumps(service, sort_keys=True).replace("green", "blue")

    for suffix in ("-aux", "-bulk"):
        blue, green = f"worker-blue{suffix}", f"worker-green{suffix}"
        assert normalised(blue) == normalised(green)
        assert services[blue]["image"] != services[green]["image"]
        assert services[blue]["image"] == services["worker-blue"]["image"]


# ---------------------------------------------------------------- PgBouncer


def test_pgbouncer_stands_between_the_app_and_postgres(services):  # noqa: F811
    bouncer = services["pgbouncer"]
    assert ("./deploy/pgbouncer/pgbouncer.ini", "/etc/pgbouncer/pgbouncer.ini", True) in mounts(
        bouncer
    )
    assert bouncer["depends_on"]["postgres"]["condition"] == "service_healthy"
    check = " ".join(argv(bouncer["healthcheck"]["test"]))
    assert "pg_isready" in check and "6432" in check
    assert not bouncer.get("ports"), "PgBouncer is reached on the backend network only"
    env = environment(bouncer)
    assert env["DB_PASSWORD"] == environment(services["postgres"])["POSTGRES_PASSWORD"]
    assert env["DB_USER"] == environment(services["postgres"])["POSTGRES_USER"]
    app_services = [
        name
        for name, service in services.items()
        if argv(service.get("command") or [])[:1] in (["celery"], ["gunicorn"])
        and "celery-exporter" not in name
    ]
    assert {"web-blue", "worker-green-aux", "beat"} <= set(app_services)
    for name in app_services:
        env = environment(services[name])
        # "...@pgbouncer:6432/<db>" (in the file, the password is still ${...?...}).
        assert re.search(r"@pgbouncer:6432/[^/]+$", env["DATABASE_URL"]), name
        assert env["DB_PGBOUNCER"] == "1", name
        assert services[name]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    # The exporter watches PostgreSQL itself, not the pooler.
    assert environment(services["postgres-exporter"])["DATA_SOURCE_URI"].startswith("postgres:")


def test_pgbouncer_pools_transactions_and_keeps_no_password():
    ini = PGBOUNCER_INI.read_text()
    settings_ = dict(
        line.split("=", 1)
        for line in (raw.strip() for raw in ini.splitlines())
        if line and not line.startswith((";", "[")) and "=" in line
    )
    settings_ = {k.strip(): v.strip() for k, v in settings_.items()}
    assert settings_["pool_mode"] == "transaction"
    assert settings_["listen_port"] == "6432"
    assert settings_["auth_file"] == "/etc/pgbouncer/userlist.txt"
    assert "timezone=UTC" in settings_["*"]  # Django then sends no session SET TIME ZONE
    assert not re.search(r"(?im)^\s*[^;#\s].*password\s*=", ini), "no password in deploy/"
    assert int(settings_["max_db_connections"]) < 100  # the postgres image's max_connections
