"""python manage.py pdf --company RUT --type 33 --folio N --out FILE.pdf
[--format letter|thermal] [--cedible]"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dte import printing
from dte.models import Dte
from erp.errors import DomainError
from erp.rut import InvalidRut, normalize_rut


class Command(BaseCommand):
    help = "Write the printed representation (PDF) of an issued document."

    def add_arguments(self, parser):
        parser.add_argument("--company", required=True)
        parser.add_argument("--type", required=True, type=int, dest="tipo")
        parser.add_argument("--folio", required=True, type=int)
        parser.add_argument("--out", required=True)
        parser.add_argument("--format", choices=printing.FORMATS)
        parser.add_argument("--cedible", action="store_true")

    def handle(self, *args, **options):
        try:
            rut = normalize_rut(options["company"])
        except InvalidRut as exc:
            raise CommandError(f"--company: {exc}") from exc
        dte = (
            Dte.objects.select_related("company")
            .filter(company__rut=rut, tipo_dte=options["tipo"], folio=options["folio"])
            .first()
        )
        if dte is None:
            raise CommandError(
                f"no document {options['tipo']} N° {options['folio']} issued by {rut}"
            )
        try:
            pdf = printing.dte_pdf(dte, format=options["format"], cedible=options["cedible"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        out = Path(options["out"])
        try:
            out.write_bytes(pdf)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror}") from exc
        self.stdout.write(f"{out} ({len(pdf) // 1024} KiB)")
