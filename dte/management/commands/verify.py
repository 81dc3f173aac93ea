"""python manage.py verify FILE.xml [...]: schema, signatures, TEDs and CAFs of any DTE or
envelope, ours or a supplier's. Prints a JSON report; exit 0 only if everything verifies.

It needs no database: the SII's official keys ship as files, and the sandbox's key (IDK 900) is
read from the database only when a CAF of IDK 900 is checked, and only if it can be read (an
unmigrated or missing database makes that CAF "not verifiable", with the reason). Every file
that does not verify gets one line on stderr saying why; never a traceback.
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from dte.core.verify import Report, verify_xml
from dte.sii_keys import verification_keys


def _reason(report: Report) -> str:
    """The first thing that failed, in one line, and how many more there are."""
    problems = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    for document in report.documents:
        where = f"DTE tipo {document.tipo_dte} folio {document.folio}"
        problems += [f"{where}: {c.name}: {c.detail}" for c in document.checks if not c.ok]
    if not problems:
        problems = ["el archivo no contiene ningún DTE"]
    first = " ".join(problems[0].split())
    more = len(problems) - 1
    return first + (f" (y {more} problema{'s' if more > 1 else ''} más)" if more else "")


class Command(BaseCommand):
    help = "Verify DTE / EnvioDTE / EnvioBOLETA files and print a JSON report."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE.xml")

    def handle(self, *args, **options):
        keys = verification_keys()
        reports, failures = [], []
        for name in options["files"]:
            try:
                data = Path(name).read_bytes()
            except OSError as exc:
                reason = f"no se puede leer el archivo: {exc.strerror or exc}"
                reports.append({"file": name, "ok": False, "error": reason})
                failures.append(f"{name}: {reason}")
                continue
            try:
                report = verify_xml(data, sii_keys=keys)
            except Exception as exc:  # verify_xml turns bad input into checks; this is a bug
                reason = f"no se pudo verificar: {type(exc).__name__}: {exc}"
                reports.append({"file": name, "ok": False, "error": reason})
                failures.append(f"{name}: {' '.join(reason.split())}")
                continue
            reports.append({"file": name, **report.to_dict()})
            if not report.ok:
                failures.append(f"{name}: no verifica: {_reason(report)}")
        self.stdout.write(
            json.dumps(reports if len(reports) > 1 else reports[0], indent=2, ensure_ascii=False)
        )
        for line in failures:
            self.stderr.write(line)
        if failures:
            sys.exit(1)
