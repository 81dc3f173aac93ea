"""RCV import of a large file: rows per second, peak memory and time per chunk.

    python bench/rcv_import.py [ROWS]          # default 400,000 rows, SQLite file in a temp dir
    DATABASE_URL=postgres://… python bench/rcv_import.py [ROWS]   # on PostgreSQL

Writes an RCV compras (registro) CSV of ROWS facturas from 500 suppliers, as the SII formats
it, and imports it with f29.services.rcv_import (the command's path: the file streamed, chunks
of services.CHUNK_LINES lines, each in its own transaction; the queued task runs the same code)
into a throwaway test database. Prints rows/s, peak RSS (ru_maxrss) and the time per chunk (max,
p95); the last line is one JSON object. Target: peak RSS under 300 MB for 400,000 rows.
"""

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import throwaway_keys  # noqa: E402

throwaway_keys.ensure()  # PostgreSQL (DATABASE_URL) runs the settings without DEBUG
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

HEADER = (ROOT / "tests/data/rcv/compras_registro_2026-10.csv").read_text().split("\n")[0]
COMPANY = "76086428-5"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_csv(path: Path, rows: int) -> None:
    from erp.rut import check_digit

    suppliers = [f"{body}-{check_digit(body)}" for body in range(76000001, 76000501)]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\r\n")
        for n in range(1, rows + 1):
            neto = 1000 + n % 997 * 100
            iva = round(neto * 0.19)
            day = 1 + n % 28
            out.write(
                f"{n};33;Del Giro;{suppliers[n % 500]};PROVEEDOR {n % 500} SPA;{n};"
                f"{day:02d}/10/2026;{day:02d}/10/2026 10:00:00;;0;{neto};{iva};;;{neto + iva};"
                ";;;;0;;;;0;;;;\r\n"
            )


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 400_000
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import override_settings, setup_databases, teardown_databases

    scratch = tempfile.TemporaryDirectory(prefix="bench-rcv-")
    folder = Path(scratch.name)
    if connection.vendor == "sqlite":
        connection.settings_dict["TEST"]["NAME"] = str(folder / "bench.sqlite3")
    media = override_settings(MEDIA_ROOT=str(folder / "media"), AI_REVIEW_ON_ISSUE=False)
    media.enable()
    csv_path = folder / "RCV_COMPRA_REGISTRO_76086428-5_202610.csv"
    t0 = time.perf_counter()
    write_csv(csv_path, rows)
    size = csv_path.stat().st_size
    print(f"wrote {rows:,} rows, {size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from erp.models import Company
        from f29 import services

        company = Company.objects.create(rut=COMPANY, razon_social="Empresa Demo SpA")
        chunk_times: list[float] = []
        original = services._import_chunk

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                chunk_times.append(time.perf_counter() - started)

        services._import_chunk = timed
        rss_before = rss_mb()
        started = time.perf_counter()
        last = [started]

        batch = services.rcv_import(
            company=company,
            actor=None,
            path=csv_path,
            filename=csv_path.name,
            kind="compras",
        )
        elapsed = time.perf_counter() - started
        del last
        assert batch.status == "done", batch.error
        ordered = sorted(chunk_times)
        p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)] if ordered else 0.0
        result = {
            "bench": "rcv_import",
            "database": connection.vendor,
            "rows": rows,
            "file_mb": round(size / 1e6, 1),
            "created": batch.created,
            "purchases_created": batch.purchases_created,
            "rejected": batch.rejected,
            "seconds": round(elapsed, 1),
            "rows_per_s": round(rows / elapsed, 1),
            "chunks": len(chunk_times),
            "chunk_lines": services.CHUNK_LINES,
            "chunk_s_max": round(max(chunk_times, default=0.0), 2),
            "chunk_s_p95": round(p95, 2),
            "rss_mb_before_import": round(rss_before, 1),
            "peak_rss_mb": round(rss_mb(), 1),
            "target_peak_rss_mb": 300,
        }
        print(
            f"{connection.vendor}: {rows:,} rows in {elapsed:.1f} s = "
            f"{result['rows_per_s']} rows/s;"
            f" {len(chunk_times)} chunks, max {result['chunk_s_max']} s, p95 "
            f"{result['chunk_s_p95']} s; peak RSS {result['peak_rss_mb']} MB "
            f"(before the import {result['rss_mb_before_import']} MB)"
        )
        print(json.dumps(result))
    finally:
        teardown_databases(old, verbosity=0)
        media.disable()
        scratch.cleanup()


if __name__ == "__main__":
    main()
