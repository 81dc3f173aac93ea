"""Issuing throughput: build → TED → XML-DSig → envelope → XSD validation, in one process.

    python bench/issue_throughput.py            # pure pipeline + issuing through the database
    DATABASE_URL=postgres://… python bench/issue_throughput.py   # the database part on PostgreSQL

Prints documents per second for N = 1, 100, 1000 factura 33 documents of 3 lines (and for 1000
facturas de exportación 110 of 3 lines in dollars), the cost of
each stage, peak memory (RSS), and, with the same keys in the same run, the ceiling set by RSA
alone (one 512-bit CAF signature and one 2048-bit certificate signature per document). Then the
throughput of issuing through the database, in a throwaway test database: a batch
(`dte.services.dte_issue_many`, which the API's issue-batch and `manage.py issue` use) and its
ratio to the pipeline's rate in the same run (the target is >= 0.40), and single issues.
The last line is one JSON object for comparing runs.
"""

import json
import os
import resource
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import throwaway_keys  # noqa: E402

throwaway_keys.ensure()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

from ops.runtime import gc_thresholds, tune_gc  # noqa: E402

# The garbage collector as every process of the system runs it (ops.apps), for the pipeline as
# for the database path, so that their ratio compares like with like.
tune_gc(gc_thresholds(os.environ.get("PYTHON_GC_THRESHOLDS")))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from dte.core import schemas  # noqa: E402
from dte.core.caf import parse_caf  # noqa: E402
from dte.core.certificate import load_pkcs12  # noqa: E402
from dte.core.domain import Documento, Emisor, Linea, Receptor, Resolucion  # noqa: E402
from dte.core.envelope import EnvelopeItem, build_envelope  # noqa: E402
from dte.core.export import Aduana, Exportacion, build_exportacion  # noqa: E402
from dte.core.issue import canonical_caf  # noqa: E402
from dte.core.signing import sign_documento  # noqa: E402
from dte.core.ted import build_ted  # noqa: E402
from dte.core.xml import append_raw, build_documento, format_timestamp  # noqa: E402
from erp.doctypes import TipoDte  # noqa: E402
from erp.totals import GlobalAdjustment, Movement, ValueType  # noqa: E402

KEYS = ROOT / "tests" / "data" / "keys"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
EMISOR = Emisor(
    "76086428-5",
    "Empresa Demo Facturación SpA",
    "Desarrollo de software",
    (620200,),
    "Av. Providencia 1208",
    "Providencia",
    "Santiago",
)
RECEPTOR = Receptor(
    "96790240-3",
    "Distribuidora Los Andes S.A.",
    "Mayorista",
    "Av. Apoquindo 4501",
    "Las Condes",
    "Santiago",
)
LINES = (
    Linea("Servicio de consultoría", Decimal(12), Decimal(45000), unidad="HR"),
    Linea("Licencia de software anual", Decimal(1), Decimal(120000), Decimal(10)),
    Linea("Resma papel carta", Decimal("2.5"), Decimal("4290.5")),
)
STAGES = ("build", "ted", "xmldsig", "envelope", "validation")
FOREIGN_BUYER = Receptor(
    "55555555-5",
    "Pacific Fresh Imports LLC",
    direccion="1200 Harbor Blvd",
    ciudad="Los Angeles",
    nacionalidad="225",
)
EXPORT_LINES = (
    Linea("Uva de mesa Red Globe", Decimal(1200), Decimal("18.45"), unidad="U"),
    Linea("Cereza Lapins", Decimal("402.5"), Decimal("31.10"), Decimal(5), unidad="U"),
    Linea("Arándano orgánico", Decimal(800), Decimal("9.875"), unidad="U"),
)
EXPORT_ADUANA = Aduana(
    modalidad_venta=1,
    clausula_venta=5,
    total_clausula=Decimal("30276.00"),
    via_transporte=1,
    puerto_embarque=906,
    puerto_desembarque=221,
    total_bultos=1,
    flete=Decimal("1850.5"),
    pais_receptor=225,
    pais_destino=225,
)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def factura(folio: int) -> Documento:
    return Documento(
        TipoDte.FACTURA, folio, date(2026, 11, 23), EMISOR, RECEPTOR, LINES, forma_pago=1
    )


def factura_exportacion(folio: int) -> Exportacion:
    """A 110 of 3 lines in US dollars, with its customs data and the freight as a surcharge."""
    return Exportacion(
        tipo=110,
        folio=folio,
        fecha_emision=date(2026, 11, 23),
        emisor=EMISOR,
        receptor=FOREIGN_BUYER,
        lineas=EXPORT_LINES,
        moneda="DOLAR USA",
        tipo_cambio=Decimal("943.57"),
        aduana=EXPORT_ADUANA,
        ajustes=(GlobalAdjustment(Movement.SURCHARGE, ValueType.AMOUNT, Decimal("1850.50")),),
        forma_pago_exportacion=1,
    )


def pipeline(n: int, caf, cert, timings: dict[str, float], make=factura) -> bytes:
    """The same steps as dte.core.issue.stamp_and_sign, timed one by one."""
    clock = time.perf_counter
    caf_text, caf_key = canonical_caf(caf.caf_xml), caf.private_key()
    items = []
    for folio in range(1, n + 1):
        t0 = clock()
        doc = make(folio)
        documento = build_exportacion(doc) if isinstance(doc, Exportacion) else build_documento(doc)
        t1 = clock()
        ted = build_ted(
            doc,
            caf_xml=caf_text,
            caf_key=caf_key,
            caf_rut=caf.rut_emisor,
            caf_tipo=caf.tipo_dte,
            caf_desde=caf.folio_desde,
            caf_hasta=caf.folio_hasta,
            timestamp=NOW,
        )
        append_raw(documento, [ted.xml, f"<TmstFirma>{format_timestamp(NOW)}</TmstFirma>"])
        t2 = clock()
        items.append(EnvelopeItem(doc.tipo, sign_documento(documento, cert).xml))
        t3 = clock()
        timings["build"] += t1 - t0
        timings["ted"] += t2 - t1
        timings["xmldsig"] += t3 - t2
    t3 = clock()
    envelope = build_envelope(
        items,
        rut_emisor=EMISOR.rut,
        rut_envia=cert.rut,
        resolucion=Resolucion(date(2014, 8, 22), 80),
        timestamp=NOW,
        key=cert,
    )
    t4 = clock()
    problems = schemas.validate(schemas.SchemaKind.ENVIO_DTE, envelope)
    t5 = clock()
    if problems:
        raise SystemExit(f"invalid envelope: {problems[0]}")
    timings["envelope"] += t4 - t3
    timings["validation"] += t5 - t4
    return envelope


def rsa_ceiling(caf, cert, rounds: int = 2000) -> float:
    caf_key, cert_key = caf.private_key(), cert.private_key
    message = b"<DD>" + b"x" * 600 + b"</DD>"
    t0 = time.perf_counter()
    for _ in range(rounds):
        caf_key.sign(message, padding.PKCS1v15(), hashes.SHA1())
        cert_key.sign(message, padding.PKCS1v15(), hashes.SHA1())
    return rounds / (time.perf_counter() - t0)


def bench_pipeline(caf, cert) -> dict:
    pipeline(20, caf, cert, dict.fromkeys(STAGES, 0.0))  # warm-up: schema compile, caches
    results = {}
    for n in (1, 100, 1000):
        timings = dict.fromkeys(STAGES, 0.0)
        t0 = time.perf_counter()
        envelope = pipeline(n, caf, cert, timings)
        elapsed = time.perf_counter() - t0
        results[n] = (elapsed, timings, len(envelope))
        per_doc = " ".join(f"{s} {1000 * timings[s] / n:.3f}" for s in STAGES)
        print(
            f"N={n:<5} {n / elapsed:8.1f} docs/s  {1000 * elapsed:9.1f} ms total  "
            f"per doc ms: {per_doc}  envelope {len(envelope) / 1024:.0f} KiB"
        )
    return results


def bench_export(caf, cert, n: int = 1000) -> float:
    """The same pipeline for a factura de exportación (110) of 3 lines in dollars."""
    pipeline(20, caf, cert, dict.fromkeys(STAGES, 0.0), make=factura_exportacion)
    timings = dict.fromkeys(STAGES, 0.0)
    t0 = time.perf_counter()
    envelope = pipeline(n, caf, cert, timings, make=factura_exportacion)
    elapsed = time.perf_counter() - t0
    per_doc = " ".join(f"{s} {1000 * timings[s] / n:.3f}" for s in STAGES)
    print(
        f"110 N={n:<5} {n / elapsed:8.1f} docs/s  {1000 * elapsed:9.1f} ms total  "
        f"per doc ms: {per_doc}  envelope {len(envelope) / 1024:.0f} KiB"
    )
    return n / elapsed


def bench_database(n: int = 500, singles: int = 100) -> tuple[str, float, float]:
    """dte_issue_many (a batch of `n` drafts) and dte_issue (`singles` drafts one by one, each
    in its own transaction, as the web and the API issue) through the ORM, in a throwaway test
    database (DATABASE_URL's engine). Returns the vendor and both rates in documents/s.

    On SQLite the throwaway database is a file in a temporary directory, as the embedded default
    runs (WAL, immediate transactions, busy timeout), not Django's usual in-memory test
    database: that one is in shared-cache mode, whose table locks ("database table is locked")
    ignore the busy timeout and break as soon as a second thread writes. Reviews and sending
    are off: they are not issuing, and sending would reach whatever answers SII_SANDBOX_URL.
    """
    import tempfile

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import override_settings, setup_databases, teardown_databases

    from erp.background import wait_for_background

    scratch = None
    if connection.vendor == "sqlite":
        scratch = tempfile.TemporaryDirectory(prefix="bench-issue-")
        connection.settings_dict["TEST"]["NAME"] = str(Path(scratch.name) / "bench.sqlite3")
    quiet = override_settings(AI_REVIEW_ON_ISSUE=False, SII_AUTO_SEND=False, SII_ENVELOPE_WINDOW=0)
    quiet.enable()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from cryptography.hazmat.primitives import serialization

        from dte import services, vault
        from dte.core.testmaterial import SANDBOX_IDK
        from dte.models import SandboxAuthority
        from erp import services as erp_services
        from erp.models import Company, Partner

        sii_key = serialization.load_pem_private_key(
            (KEYS / "sandbox_sii_key.pem").read_bytes(), None
        )
        SandboxAuthority.objects.create(
            idk=SANDBOX_IDK,
            private_key_encrypted=vault.encrypt(
                sii_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            ),
        )
        company = Company.objects.create(
            rut=EMISOR.rut,
            razon_social=EMISOR.razon_social,
            giro=EMISOR.giro,
            actecos=[620200],
            direccion=EMISOR.direccion,
            comuna=EMISOR.comuna,
            ciudad=EMISOR.ciudad,
            resolution_number=80,
            resolution_date=date(2014, 8, 22),
        )
        services.certificate_upload(
            company=company,
            actor=None,
            password="clave-de-prueba",
            data=(KEYS / "firmante_12345678-5.p12").read_bytes(),
            now=NOW,
        )
        services.caf_upload(
            company=company,
            actor=None,
            today=date(2026, 11, 23),
            data=(KEYS / "caf_76086428-5_33_1-1000.xml").read_bytes(),
        )
        partner = Partner.objects.create(
            company=company,
            rut=RECEPTOR.rut,
            razon_social=RECEPTOR.razon_social,
            giro=RECEPTOR.giro,  # the SII requires giro, dirección and comuna on a factura
            direccion=RECEPTOR.direccion,
            comuna=RECEPTOR.comuna,
        )
        data = {
            "tipo_dte": 33,
            "fecha_emision": date(2026, 11, 23),
            "partner": partner.pk,
            "lines": [
                {
                    "name": ln.nombre,
                    "quantity": ln.cantidad,
                    "unit_price": ln.precio,
                    "discount_pct": ln.descuento_pct,
                }
                for ln in LINES
            ],
        }
        drafts = [
            erp_services.sales_document_create(company=company, actor=None, data=data)
            for _ in range(n + singles + 1)
        ]
        services.dte_issue(document=drafts.pop(), actor=None, now=NOW)  # warm: keys, caches
        ones, batch = drafts[:singles], drafts[singles:]
        t0 = time.perf_counter()
        outcomes, envelopes = services.dte_issue_many(documents=batch, actor=None, now=NOW)
        elapsed = time.perf_counter() - t0
        assert all(o.dte for o in outcomes) and len(envelopes) == 1
        t0 = time.perf_counter()
        for draft in ones:
            services.dte_issue(document=draft, actor=None, now=NOW)
        one_by_one = time.perf_counter() - t0
        return connection.vendor, n / elapsed, singles / one_by_one
    finally:
        wait_for_background(60)
        teardown_databases(old, verbosity=0)
        quiet.disable()
        if scratch is not None:
            scratch.cleanup()


def main() -> None:
    caf = parse_caf((KEYS / "caf_76086428-5_33_1-1000.xml").read_bytes())
    cert = load_pkcs12((KEYS / "firmante_12345678-5.p12").read_bytes(), "clave-de-prueba")
    print(
        f"CAF key {caf.private_key().key_size} bits, certificate key "
        f"{cert.private_key.key_size} bits; Python {sys.version.split()[0]}"
    )
    results = bench_pipeline(caf, cert)
    caf_110 = parse_caf((KEYS / "caf_76086428-5_110_1-1000.xml").read_bytes())
    export_rate = bench_export(caf_110, cert)
    peak = rss_mb()  # before Django and the database part are loaded
    ceiling = rsa_ceiling(caf, cert)
    elapsed, _, _ = results[1000]
    docs_per_s = 1000 / elapsed
    single_ms = 1000 * results[1][0]
    print(
        f"RSA ceiling: {ceiling:.0f} docs/s (512-bit TED + 2048-bit XML-DSig per document); "
        f"pipeline at N=1000 reaches {docs_per_s / ceiling:.0%} of it"
    )
    print(f"single document with its envelope: {single_ms:.2f} ms; peak RSS {peak:.1f} MB")
    vendor, db_rate, single_rate = bench_database()
    ratio = db_rate / docs_per_s
    print(
        f"dte_issue_many through the database ({vendor}), a batch of 500 with one envelope: "
        f"{db_rate:.1f} docs/s = {ratio:.2f} of the pipeline's {docs_per_s:.1f} in this run "
        f"(target >= 0.40: {'met' if ratio >= 0.4 else 'NOT met'})"
    )
    print(
        f"dte_issue one by one ({vendor}), each in its own transaction with its envelope: "
        f"{single_rate:.1f} docs/s"
    )
    print(
        json.dumps(
            {
                "docs_per_s": round(docs_per_s, 1),
                "export_110_docs_per_s": round(export_rate, 1),
                "single_doc_ms": round(single_ms, 3),
                "peak_mb": round(peak, 1),
                "rsa_ceiling_docs_per_s": round(ceiling, 1),
                "ratio_to_ceiling": round(docs_per_s / ceiling, 3),
                "db_docs_per_s": round(db_rate, 1),
                "db_ratio": round(ratio, 3),
                "db_single_docs_per_s": round(single_rate, 1),
                "db_vendor": vendor,
            }
        )
    )


if __name__ == "__main__":
    main()
