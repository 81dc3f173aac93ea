"""Documents per minute from "issued" to "accepted by the SII", through a real Celery worker
(with its beat) and the local SII sandbox served by gunicorn, on this machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/12 python bench/sii_end_to_end.py [--n 300]

It makes a throwaway database, migrates it, loads the demo company (test certificate and
sandbox CAFs), issues N facturas with one envelope each (the UI's path: the worst case), then
lets the worker send and follow them, and prints the rate. The last line is JSON.
"""

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
sys.path.insert(0, str(ROOT))
from bench import throwaway_keys  # noqa: E402

throwaway_keys.ensure()
WORKER_LOG = open(os.environ.get("BENCH_WORKER_LOG", os.devnull), "w")  # noqa: SIM115


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server at {url} did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--per-envelope",
        type=int,
        default=1,
        help="documents per envelope: 1 is the UI's path, more is manage.py issue's",
    )
    args = parser.parse_args()
    admin_url, broker = os.environ.get("DATABASE_URL"), os.environ.get("CELERY_BROKER_URL")
    if not admin_url or not admin_url.startswith("postgres") or not broker:
        raise SystemExit("needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis)")

    import psycopg

    name = f"fe_e2e_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    db_url = urlunparse(urlparse(admin_url)._replace(path=f"/{name}"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SII_ENV": "sandbox",
        "SII_SANDBOX_URL": f"http://127.0.0.1:{port}/_sii",
        "SII_POLL_INTERVAL": "1",
        "SII_OUTBOX_TICK": "1",
        "SII_AUTO_SEND": "0",
        "SII_SANDBOX_POLLS_BEFORE_DONE": "1",
        "DEBUG": "0",
    }
    processes: list[subprocess.Popen] = []
    try:
        # Start from an empty queue: tasks left by an earlier run would be measured too.
        subprocess.run(
            [PYTHON, "-m", "celery", "-A", "ops", "purge", "-f"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run(
            [PYTHON, "manage.py", "demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )
        processes.append(
            subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "gunicorn",
                    "ops.wsgi",
                    "-b",
                    f"127.0.0.1:{port}",
                    "-w",
                    "2",
                    "--threads",
                    "4",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        wait_http(f"http://127.0.0.1:{port}/health/live")

        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")
        import django

        django.setup()
        from decimal import Decimal

        from django.utils import timezone

        from dte import services
        from dte.models import Dte
        from erp import services as erp_services
        from erp.models import Company, Partner

        company = Company.objects.get(rut="76086428-5")
        partner = Partner.objects.filter(company=company).first()
        t0 = time.perf_counter()
        drafts = []
        for n in range(args.n):
            draft = erp_services.sales_document_create(
                company=company,
                actor=None,
                data={
                    "tipo_dte": 33,
                    "fecha_emision": timezone.localdate(),
                    "partner": partner.pk,
                    "lines": [
                        {
                            "name": f"Servicio {n}",
                            "quantity": Decimal(1),
                            "unit_price": Decimal(1000 + n),
                        }
                    ],
                },
            )
            if args.per_envelope == 1:
                services.dte_issue(document=draft, actor=None)
            else:
                drafts.append(draft)
        for start in range(0, len(drafts), args.per_envelope):
            services.dte_issue_many(documents=drafts[start : start + args.per_envelope], actor=None)
        issue_s = time.perf_counter() - t0

        t1 = time.perf_counter()
        processes.append(
            subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "celery",
                    "-A",
                    "ops",
                    "worker",
                    "-B",
                    "-c",
                    str(args.worker_concurrency),
                    "--without-gossip",
                    "--without-mingle",
                    "-l",
                    os.environ.get("BENCH_WORKER_LOG_LEVEL", "warning"),
                    "-s",
                    f"/tmp/{name}-beat",
                ],
                cwd=ROOT,
                env=env,
                stdout=WORKER_LOG,
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = Dte.objects.filter(status="accepted").count()
            if done >= args.n:
                break
            time.sleep(0.5)
        send_s = time.perf_counter() - t1
        accepted = Dte.objects.filter(status="accepted").count()
        from dte.models import DteEvent, Envelope

        retries = DteEvent.objects.filter(message__contains="fallido").count()
        polls = sum(Envelope.objects.values_list("polls", flat=True))
        errors = list(
            DteEvent.objects.filter(message__contains="fallido").values_list("message", flat=True)[
                :3
            ]
        )
        print(f"failed attempts retried: {retries}; status polls: {polls}; e.g. {errors}")
        per_min = 60 * accepted / send_s
        print(
            f"issued {args.n} facturas ({args.per_envelope} per envelope) in {issue_s:.1f} s "
            f"({60 * args.n / issue_s:.0f}/min through the database)"
        )
        print(
            f"worker + sandbox: {accepted}/{args.n} accepted in {send_s:.1f} s "
            f"= {per_min:.0f} documents per minute (target 1000/min)"
        )
        print(
            json.dumps(
                {
                    "n": args.n,
                    "accepted": accepted,
                    "send_seconds": round(send_s, 1),
                    "docs_per_min": round(per_min),
                    "issue_per_min": round(60 * args.n / issue_s),
                }
            )
        )
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        from django.db import connections

        with contextlib.suppress(Exception):  # Django is not set up if migrate failed
            connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
