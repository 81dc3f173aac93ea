"""Intake throughput: a ZIP of supplier DTEs taken in by dte.receiving.receive, against the pure
reading of the same files in the same run.

    python bench/receive_zip.py [DOCS] [PER_ENVELOPE]      # default 1,000 documents, 1 per file
    DATABASE_URL=postgres://… python bench/receive_zip.py   # on PostgreSQL (the figure asked)

A make-believe supplier (dte.sandbox.supplier) signs DOCS facturas to the company, PER_ENVELOPE
per EnvioDTE, zipped. Then, timed: (1) the pure core alone (unzip, verify, read:
dte.core.intake), (2) the whole intake (that, plus the rows, the duplicate checks and the signed
RespuestaDTE per file, each file in its own transaction). The follow-up work the intake queues
(SII confirmation, e-mail) is not run here. Prints documents per second for both, their ratio
and peak RSS; the last line is one JSON object.
"""

import io
import json
import os
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import throwaway_keys  # noqa: E402

throwaway_keys.ensure()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

COMPANY = "76086428-5"
KEYS = ROOT / "tests" / "data" / "keys"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    docs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    per_envelope = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import override_settings, setup_databases, teardown_databases
    from django.utils import timezone

    scratch = tempfile.TemporaryDirectory(prefix="bench-receive-")
    folder = Path(scratch.name)
    if connection.vendor == "sqlite":
        connection.settings_dict["TEST"]["NAME"] = str(folder / "bench.sqlite3")
    overrides = override_settings(MEDIA_ROOT=str(folder / "media"), SII_ENVIRONMENTS=("sandbox",))
    overrides.enable()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from dte import dispatch, receiving, services
        from dte.core import intake
        from dte.core.domain import Receptor
        from dte.models import IntakeSource
        from dte.sandbox.supplier import Supplier, default_supplier, envelope_for, supply
        from dte.sii_keys import verification_keys
        from erp.models import Company

        company = Company.objects.create(
            rut=COMPANY,
            razon_social="Empresa Demo SpA",
            giro="Desarrollo de software",
            actecos=[620200],
            direccion="Av. Providencia 1208",
            comuna="Providencia",
            sii_environment="sandbox",
        )
        services.certificate_upload(
            company=company,
            actor=None,
            data=(KEYS / "firmante_12345678-5.p12").read_bytes(),
            password="clave-de-prueba",
        )
        now = timezone.now()
        supplier = Supplier(default_supplier(), services.sandbox_authority().private_key(), now)
        receptor = Receptor(company.rut, company.razon_social, company.giro, company.direccion)
        t0 = time.perf_counter()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for start in range(0, docs, per_envelope):
                n = min(per_envelope, docs - start)
                batch = supply(supplier, receptor, count=n, now=now)
                envelope = envelope_for(supplier, batch, rut_receptor=company.rut, now=now)
                archive.writestr(f"EnvioDTE-{batch[0].folio}.xml", envelope)
        data = buffer.getvalue()
        print(
            f"built {docs:,} documents, ZIP {len(data) / 1e6:.1f} MB in "
            f"{time.perf_counter() - t0:.1f} s"
        )

        keys = dict(verification_keys())
        started = time.perf_counter()
        unpacked = intake.unpack("compras.zip", data)
        pure_docs = sum(
            len(
                intake.read_envelope(
                    f.name, f.data, receptor_rut=company.rut, sii_keys=keys
                ).documents
            )
            for f in unpacked.files
        )
        pure_s = time.perf_counter() - started
        assert pure_docs == docs

        dispatch.after_commit = lambda name, *args: None  # the queued follow-up is not timed
        rss_before = rss_mb()
        started = time.perf_counter()
        result = receiving.receive(
            company=company, uploads=[("compras.zip", data)], source=IntakeSource.UPLOAD
        )
        whole_s = time.perf_counter() - started
        statuses = {d.status for d in result.documents}
        assert statuses == {"received"} and len(result.documents) == docs, statuses
        figures = {
            "bench": "receive_zip",
            "database": connection.vendor,
            "documents": docs,
            "per_envelope": per_envelope,
            "files": len(unpacked.files),
            "zip_mb": round(len(data) / 1e6, 2),
            "pure_docs_per_s": round(docs / pure_s, 1),
            "intake_docs_per_s": round(docs / whole_s, 1),
            "intake_seconds": round(whole_s, 1),
            "intake_vs_pure": round(pure_s / whole_s, 2),
            "rss_mb_before": round(rss_before, 1),
            "peak_rss_mb": round(rss_mb(), 1),
        }
        print(
            f"{connection.vendor}: {docs:,} documents in {len(unpacked.files):,} files: pure "
            f"reading {figures['pure_docs_per_s']} docs/s, whole intake "
            f"{figures['intake_docs_per_s']} docs/s ({figures['intake_vs_pure']:.0%} of the "
            f"pure reading); peak RSS {figures['peak_rss_mb']} MB"
        )
        print(json.dumps(figures))
    finally:
        teardown_databases(old, verbosity=0)
        overrides.disable()
        scratch.cleanup()


if __name__ == "__main__":
    main()
