"""python manage.py verify FILE.xml [...]: schema, signatures, TEDs and CAFs of any DTE or
envelope, ours or a supplier's. Prints a JSON report; exit 0 only if everything verifies."""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dte import services
from dte.core.verify import verify_xml


class Command(BaseCommand):
    help = "Verify DTE / EnvioDTE / EnvioBOLETA files and print a JSON report."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE.xml")

    def handle(self, *args, **options):
        keys = services.sii_keys()
        reports = []
        for name in options["files"]:
            try:
                data = Path(name).read_bytes()
            except OSError as exc:
                raise CommandError(f"{name}: {exc.strerror}") from exc
            report = verify_xml(data, sii_keys=keys)
            reports.append({"file": name, **report.to_dict()})
        self.stdout.write(
            json.dumps(reports if len(reports) > 1 else reports[0], indent=2, ensure_ascii=False)
        )
        if not all(r["ok"] for r in reports):
            sys.exit(1)
