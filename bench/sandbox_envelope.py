"""The sandbox SII's cost per document of receiving an envelope and answering for it.

    python bench/sandbox_envelope.py [--sizes 50,200,500]
    DATABASE_URL=postgres://… python bench/sandbox_envelope.py   # on PostgreSQL

For each size N it builds an EnvioDTE of N facturas 33 (signed with the test keys; not timed),
then times, in a throwaway test database, what the sandbox does with it:

  receive   dte.sandbox.processing.envelope_receive: verification, verdict, rows
  estup     a QueryEstUp answer for the envelope (mean of 20)
  estdte    one QueryEstDte per document (the documents' state, one query each)
  repeat    receiving a second envelope with the same N folios (all "DTE Repetido")

and prints milliseconds per document with the database queries each step made. Linear means
ms/doc stays about the same as N grows and the envelope's queries do not grow with N (bulk
inserts excepted: SQLite splits them in batches). The last line is one JSON object.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import throwaway_keys  # noqa: E402

throwaway_keys.ensure()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")


WARM_UP_FOLIO = 1000
ESTUP_CALLS = 20  # QueryEstUp answers timed together (one is too short to time)


def build(sizes: list[int]) -> dict[int, tuple[list, bytes, bytes]]:
    from tests.dte.sandbox.material import NOW, envelope, issue

    built, folio = {0: ([], envelope([issue(33, WARM_UP_FOLIO)]), b"")}, 1
    for n in sizes:
        docs = [issue(33, f) for f in range(folio, folio + n)]
        folio += n
        later = envelope(docs, timestamp=NOW + timedelta(minutes=5))
        built[n] = (docs, envelope(docs), later)
    return built


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50,200,500", help="documents per envelope")
    sizes = [int(n) for n in parser.parse_args().sizes.split(",")]
    if sum(sizes) >= WARM_UP_FOLIO:
        raise SystemExit("the test CAF (tests/data/keys) has folios 1-1000: sum of sizes < 1000")

    import django

    django.setup()
    from cryptography.hazmat.primitives import serialization
    from django.db import connection
    from django.test.utils import (
        CaptureQueriesContext,
        override_settings,
        setup_databases,
        teardown_databases,
    )

    scratch = None
    if connection.vendor == "sqlite":
        scratch = tempfile.TemporaryDirectory(prefix="bench-sandbox-")
        connection.settings_dict["TEST"]["NAME"] = str(Path(scratch.name) / "bench.sqlite3")
    print(f"building envelopes of {sizes} documents …", flush=True)
    built = build(sizes)
    immediate = override_settings(SII_SANDBOX_POLLS_BEFORE_DONE=0, SII_SANDBOX_PROCESSING_SECONDS=0)
    immediate.enable()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from dte import vault
        from dte.core.testmaterial import SANDBOX_IDK
        from dte.models import SandboxAuthority
        from dte.sandbox import operations, processing
        from dte.sandbox.models import Channel
        from tests.dte.sandbox.conftest import make_token
        from tests.dte.sandbox.material import EMISOR_RUT, RECEPTOR, SIGNER_RUT, sandbox_key

        pem = sandbox_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        SandboxAuthority.objects.create(idk=SANDBOX_IDK, private_key_encrypted=vault.encrypt(pem))
        token = make_token()
        rut, dv = EMISOR_RUT.split("-")
        rut_r, dv_r = RECEPTOR.rut.split("-")

        def receive(data: bytes):
            return processing.envelope_receive(
                channel=Channel.DTE,
                rut_sender=SIGNER_RUT,
                rut_company=EMISOR_RUT,
                file_name="EnvioDTE.xml",
                data=data,
            ).envelope

        def timed(step):
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                value = step()
                elapsed = time.perf_counter() - t0
            return value, elapsed, len(queries.captured_queries)

        receive(built[0][1])  # warm-up: schemas, keys
        results: dict[str, dict[str, float]] = {}
        print(f"database: {connection.vendor}")
        for n in sizes:
            docs, data, later = built[n]
            envelope, t_receive, q_receive = timed(lambda data=data: receive(data))
            params = {"RutCompania": rut, "DvCompania": dv, "TrackId": str(envelope.track_id)}
            answers, t_estup, q_estup = timed(
                lambda params=params: [
                    operations.get_est_up({**params, "Token": token}) for _ in range(ESTUP_CALLS)
                ]
            )
            assert "EPR" in answers[0], answers[0]
            t_estup, q_estup = t_estup / ESTUP_CALLS, q_estup // ESTUP_CALLS

            def estdte_all(docs=docs) -> None:
                for doc in docs:
                    state = operations.get_est_dte(
                        {
                            "RutCompania": rut,
                            "DvCompania": dv,
                            "RutReceptor": rut_r,
                            "DvReceptor": dv_r,
                            "TipoDte": "33",
                            "FolioDte": str(doc.folio),
                            "FechaEmisionDte": "23-11-2026",
                            "MontoDte": str(doc.monto_total),
                            "Token": token,
                        }
                    )
                    assert "DOK" in state, state

            _, t_estdte, q_estdte = timed(estdte_all)
            repeated, t_repeat, q_repeat = timed(lambda later=later: receive(later))
            assert repeated.stats[0]["rechazados"] == n, repeated.stats
            row = {
                "receive_ms_per_doc": 1000 * t_receive / n,
                "estup_ms": 1000 * t_estup,
                "estdte_ms_per_doc": 1000 * t_estdte / n,
                "repeat_ms_per_doc": 1000 * t_repeat / n,
                "receive_queries": q_receive,
                "repeat_queries": q_repeat,
                "estdte_queries_per_doc": q_estdte / n,
            }
            results[str(n)] = row
            print(
                f"N={n:<4} receive {row['receive_ms_per_doc']:6.2f} ms/doc ({q_receive} queries)  "
                f"estup {row['estup_ms']:5.2f} ms ({q_estup} q)  "
                f"estdte {row['estdte_ms_per_doc']:5.2f} ms/doc "
                f"({row['estdte_queries_per_doc']:.0f} q/doc)  "
                f"repeat {row['repeat_ms_per_doc']:6.2f} ms/doc ({q_repeat} queries)",
                flush=True,
            )
    finally:
        teardown_databases(old, verbosity=0)
        immediate.disable()
        if scratch is not None:
            scratch.cleanup()
    print(json.dumps({"database": connection.vendor, "sizes": results}))


if __name__ == "__main__":
    main()
