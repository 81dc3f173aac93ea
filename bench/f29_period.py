"""The F29 of a company with 200,000 documents in one month: time and SQL queries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
        python bench/f29_period.py [--total 200000]

In a throwaway test database (DATABASE_URL's engine; PostgreSQL is what counts) it loads one
month of documents with bulk inserts: 75 % sales (facturas, boletas, notas de crédito y débito,
facturas exentas, each with its DTE accepted by the SII) and 25 % purchases in the register,
plus the same purchases as the SII's RCV. Then it computes the F29 (aggregates in SQL) at a
tenth of the documents and at all of them, and reconciles the purchases against the RCV. It
prints seconds and SQL queries for each, and the query counts must not grow with the documents.
The last line is one JSON object for comparing runs.
"""

import argparse
import json
import os
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import throwaway_keys  # noqa: E402

throwaway_keys.ensure()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402

OCTOBER = date(2026, 10, 1)
SALES_MIX = ((33, 0.62), (39, 0.30), (61, 0.04), (56, 0.02), (34, 0.02))
PURCHASE_MIX = ((33, 0.85), (61, 0.06), (56, 0.04), (914, 0.03), (34, 0.02))


def rut_for(n: int) -> str:
    body = 10_000_000 + n
    total, factor = 0, 2
    for digit in reversed(str(body)):
        total += int(digit) * factor
        factor = 2 if factor == 7 else factor + 1
    dv = 11 - total % 11
    return f"{body}-{'0' if dv == 11 else 'K' if dv == 10 else dv}"


def _mix(mix, count: int) -> list[int]:
    tipos = []
    for tipo, share in mix:
        tipos += [tipo] * round(count * share)
    return (tipos + [mix[0][0]] * count)[:count]


def load(
    company, caf, partners, *, sales: int, purchases: int, rng: random.Random, folios: dict
) -> None:
    """Insert the documents; `folios` carries the last folio per type between calls."""
    from dte.models import Dte
    from erp.models import PurchaseDocument, SalesDocument
    from f29.models import RcvEntry

    docs = []
    for tipo in _mix(SALES_MIX, sales):
        folios[tipo] = folios.get(tipo, 0) + 1
        neto = rng.randrange(1_000, 2_000_000)
        exento = 0 if tipo != 34 else neto
        neto = 0 if tipo == 34 else neto
        iva = round(neto * 0.19)
        docs.append(
            SalesDocument(
                company=company,
                tipo_dte=tipo,
                state="issued",
                folio=folios[tipo],
                fecha_emision=OCTOBER.replace(day=rng.randrange(1, 29)),
                partner=None if tipo == 39 else rng.choice(partners),
                monto_neto=neto,
                monto_exento=exento,
                tasa_iva=19,
                iva=iva,
                monto_total=neto + exento + iva,
            )
        )
    created = SalesDocument.objects.bulk_create(docs, batch_size=5000)
    Dte.objects.bulk_create(
        (
            Dte(
                company=company,
                sales_document=d,
                tipo_dte=d.tipo_dte,
                folio=d.folio,
                caf=caf,
                fecha_emision=d.fecha_emision,
                rut_receptor=d.partner.rut if d.partner else "66666666-6",
                monto_total=d.monto_total,
                xml=b"",
                signature_value="",
                ted=b"",
                status="accepted",
            )
            for d in created
        ),
        batch_size=5000,
    )
    books, register = [], []
    first = folios.get(0, 0) + 1
    folios[0] = first + purchases - 1
    for n, tipo in enumerate(_mix(PURCHASE_MIX, purchases), start=first):
        partner = rng.choice(partners)
        neto = rng.randrange(1_000, 5_000_000)
        exento = neto if tipo == 34 else 0
        neto = 0 if tipo == 34 else neto
        iva = round(neto * 0.19)
        fecha = OCTOBER.replace(day=rng.randrange(1, 29))
        fields = {"monto_exento": exento, "monto_neto": neto, "monto_total": neto + exento + iva}
        books.append(
            PurchaseDocument(
                company=company,
                tipo_doc=tipo,
                folio=n,
                partner=partner,
                rut_emisor=partner.rut,
                fecha=fecha,
                periodo=OCTOBER,
                iva_recuperable=iva,
                is_fixed_asset=rng.random() < 0.02,
                **fields,
            )
        )
        register.append(
            RcvEntry(
                company=company,
                kind="compras",
                estado="registro",
                periodo=OCTOBER,
                tipo=tipo,
                folio=n,
                rut=partner.rut,
                razon_social=partner.razon_social,
                fecha=fecha,
                monto_iva=iva,
                # one in a hundred differs, as in real life
                **(fields if n % 100 else {**fields, "monto_total": fields["monto_total"] + 1}),
            )
        )
    PurchaseDocument.objects.bulk_create(books, batch_size=5000)
    RcvEntry.objects.bulk_create(register, batch_size=5000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def measure(label: str, fn) -> tuple[float, int, object]:
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    print(f"{label:<42} {elapsed:8.3f} s  {len(queries):3d} SQL queries")
    return elapsed, len(queries), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total", type=int, default=200_000)
    args = parser.parse_args()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        run(args.total)
    finally:
        teardown_databases(old, verbosity=0)


def run(total: int) -> None:
    from dte.models import Caf
    from erp.models import Company, Partner
    from f29 import services

    rng = random.Random(29)
    company = Company.objects.create(
        rut="76086428-5",
        razon_social="Empresa Bench SpA",
        giro="Comercio",
        direccion="Av. Providencia 1208",
        comuna="Providencia",
    )
    caf = Caf.objects.create(
        company=company,
        tipo_dte=33,
        folio_desde=1,
        folio_hasta=10**9,
        next_folio=1,
        fecha_autorizacion=OCTOBER,
        idk=900,
        caf_xml=b"",
        file_encrypted=b"",
        is_test=True,
    )
    partners = Partner.objects.bulk_create(
        Partner(company=company, rut=rut_for(n), razon_social=f"Cliente {n} Ltda.")
        for n in range(1, 501)
    )
    print(f"database: {connection.vendor}; documents in 10-2026: {total:,}".replace(",", "."))
    tenth = total // 10
    start = time.perf_counter()
    folios: dict[int, int] = {}
    load(company, caf, partners, sales=tenth * 3 // 4, purchases=tenth // 4, rng=rng, folios=folios)
    services.f29_compute(company=company, periodo=OCTOBER, actor=None, ppm_rate="1")  # the row
    small_time, small_queries, _ = measure(
        f"F29 with {tenth:,} documents".replace(",", "."),
        lambda: services.f29_compute(company=company, periodo=OCTOBER, actor=None, ppm_rate="1"),
    )
    rest = total - tenth
    load(
        company,
        caf,
        partners,
        sales=rest * 3 // 4,
        purchases=rest - rest * 3 // 4,
        rng=rng,
        folios=folios,
    )
    print(f"loaded in {time.perf_counter() - start:.1f} s")
    services.f29_compute(company=company, periodo=OCTOBER, actor=None)  # warm the caches
    big_time, big_queries, f29 = measure(
        f"F29 with {total:,} documents".replace(",", "."),
        lambda: services.f29_compute(company=company, periodo=OCTOBER, actor=None),
    )
    recon_time, recon_queries, recon = measure(
        "reconciliation of purchases vs RCV",
        lambda: services.f29_reconcile(company=company, periodo=OCTOBER, kind="compras"),
    )
    counted = f29.box(503) + f29.box(110) + f29.box(509) + f29.box(512) + f29.box(586)
    print(f"sales documents in the boxes: {counted:,}; total a pagar [91]: {f29.box(91):,}")
    print(
        f"reconciliation lines: {len(recon.lines):,}; amounts differ: "
        f"{recon.summary['amounts_differ'].count:,}"
    )
    if big_queries != small_queries:
        print("QUERY COUNT GREW WITH THE DOCUMENTS", file=sys.stderr)
        sys.exit(1)
    print(
        json.dumps(
            {
                "database": connection.vendor,
                "documents": total,
                "f29_seconds": round(big_time, 3),
                "f29_queries": big_queries,
                "f29_queries_at_a_tenth": small_queries,
                "f29_seconds_at_a_tenth": round(small_time, 3),
                "reconciliation_seconds": round(recon_time, 3),
                "reconciliation_queries": recon_queries,
            }
        )
    )


if __name__ == "__main__":
    main()
