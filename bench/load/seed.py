"""Seed a scratch database for the load suite through the project's own services.

    python -m bench.load.seed OUT.json        (run by bench/load/run.py, with the stack's env)

One company in the sandbox environment (the demo company: erp.demo.load_demo, with its partners,
products, drafts and purchases), two CAFs of factura 33 made and signed by the sandbox's own
authority (a small first one, so that a run switches CAF under load, and a large second one),
the test certificate and the other types' CAFs (dte.demo.load_demo_material), users by role with
API tokens, some issued facturas for the reads, and the F29 of the previous and the current
month. Writes what the locust users need (ids, logins, tokens) to OUT.json.
"""

import json
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Folios of the first CAF of type 33 (the seed issues ISSUED_FOR_READS of them): a run that
# issues more than the rest switches to the second CAF under load.
FIRST_CAF_FOLIOS = 100
SECOND_CAF_FOLIOS = 200_000
ISSUED_FOR_READS = 40
# Accounts per role; locust users take them in turn.
ACCOUNTS = {"staff": 20, "accountant": 5, "integrator": 20, "reader": 20}
PASSWORD = "carga-" + secrets.token_urlsafe(12)


def seed(out: Path) -> dict:
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")
    django.setup()

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from dte import services as dte_services
    from dte.core.testmaterial import SANDBOX_IDK, make_caf
    from dte.demo import load_demo_material
    from erp import services as erp_services
    from erp.demo import DEMO_RUT, load_demo
    from erp.models import Company, Membership, Partner, Product, Role, SiiEnvironment
    from f29 import services as f29_services

    today, now = timezone.localdate(), timezone.now()
    load_demo(today=today)
    company = Company.objects.get(rut=DEMO_RUT)
    if company.sii_environment != SiiEnvironment.SANDBOX:
        raise SystemExit(f"the seeded company is in {company.sii_environment}, not the sandbox")

    # Two CAFs of type 33 before the demo material, which then skips the type.
    with transaction.atomic():
        sii_key = dte_services.sandbox_authority().private_key()
        start = 1
        for size in (FIRST_CAF_FOLIOS, SECOND_CAF_FOLIOS):
            caf = make_caf(
                sii_key=sii_key,
                idk=SANDBOX_IDK,
                rut_emisor=company.rut,
                razon_social=company.razon_social,
                tipo_dte=33,
                folio_desde=start,
                folio_hasta=start + size - 1,
                fecha_autorizacion=today,
            )
            dte_services.caf_upload(
                company=company, actor=None, data=caf, today=today, is_test=True
            )
            start += size
    load_demo_material(company=company, now=now, today=today)

    # Users by role. One password hash for every web login (the hasher is slow on purpose).
    User = get_user_model()
    hashed = make_password(PASSWORD)
    role_of = {
        "staff": Role.CLERK,
        "accountant": Role.ACCOUNTANT,
        "integrator": Role.CLERK,
        "reader": Role.VIEWER,
    }
    accounts: dict[str, list[dict]] = {}
    for kind, count in ACCOUNTS.items():
        rows = []
        for n in range(count):
            user = User.objects.create(username=f"load-{kind}-{n}", password=hashed)
            Membership.objects.create(user=user, company=company, role=role_of[kind])
            token = Token.objects.create(user=user)
            rows.append({"username": user.username, "password": PASSWORD, "token": token.key})
        accounts[kind] = rows

    partners = list(
        Partner.objects.filter(company=company, is_customer=True)
        .exclude(giro="")
        .exclude(direccion="")
        .exclude(comuna="")
        .exclude(rut="55555555-5")
        .values_list("pk", flat=True)
    )
    products = list(
        Product.objects.filter(company=company, is_exempt=False).values_list("pk", flat=True)
    )
    if not partners or not products:
        raise SystemExit("the demo data has no customer with giro/dirección/comuna or no product")

    issued = []
    for n in range(ISSUED_FOR_READS):
        draft = erp_services.sales_document_create(
            company=company,
            actor=None,
            data={
                "tipo_dte": 33,
                "fecha_emision": today,
                "partner": partners[n % len(partners)],
                "forma_pago": 1,
                "lines": [
                    {"product": products[n % len(products)], "quantity": n % 7 + 1},
                    {"product": products[(n + 1) % len(products)], "quantity": 2},
                ],
            },
        )
        dte = dte_services.dte_issue(document=draft, actor=None)
        issued.append({"document": draft.pk, "dte": dte.pk, "folio": dte.folio})

    periods = []
    current = today.replace(day=1)
    previous = (current - timedelta(days=1)).replace(day=1)
    for periodo in (previous, current):
        f29_services.f29_compute(company=company, periodo=periodo, actor=None)
        periods.append(periodo.strftime("%Y-%m"))

    data = {
        "company": company.rut,
        "partners": partners,
        "products": products,
        "accounts": accounts,
        "issued": issued,
        "periods": periods,
        "search": ["Andes", "Pacífico", "96790240", str(issued[0]["folio"])],
        "first_caf_folios": FIRST_CAF_FOLIOS,
    }
    out.write_text(json.dumps(data, indent=1))
    return data


def celery_queues() -> list[str]:
    """Every queue the settings declare: the default queue, CELERY_TASK_QUEUES, the queues named
    by CELERY_TASK_ROUTES (a mapping or a list of mappings; a value is a queue's name or
    {"queue": name}) and any task's own `queue`. The load suite's one worker consumes them all."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")
    django.setup()
    from ops.celery import app

    app.loader.import_default_modules()
    conf = app.conf
    names = {conf.task_default_queue or "celery"}
    for queue in conf.task_queues or ():
        names.add(getattr(queue, "name", None) or str(queue))
    routes = conf.task_routes or ()
    for router in routes if isinstance(routes, list | tuple) else (routes,):
        if not isinstance(router, dict):
            continue  # a router function or class: its queues are unknowable here
        for route in router.values():
            queue = route if isinstance(route, str) else (route or {}).get("queue")
            if queue:
                names.add(getattr(queue, "name", None) or str(queue))
    for task in app.tasks.values():
        if getattr(task, "queue", None):
            names.add(task.queue)
    return sorted(names)


if __name__ == "__main__":
    if sys.argv[1:] == ["--queues"]:
        print(json.dumps(celery_queues()))
    elif len(sys.argv) == 2:
        seed(Path(sys.argv[1]))
    else:
        raise SystemExit("usage: python -m bench.load.seed OUT.json | --queues")
