"""python manage.py rcv_import --company RUT --kind compras|ventas FILE.csv
[--estado registro|pendiente|no_incluir|reclamado] [--period YYYY-MM]

Imports the CSV as the SII's RCV exports it and prints created / updated / unchanged / rejected
counts (and why each rejected row was). The file is streamed and written in chunks, as the
queued import does, never read whole. Re-importing the same file changes nothing. Exit status
1 when the file is refused, 2 on bad arguments."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from erp.errors import DomainError
from f29 import services
from f29.management.commands._common import company_arg, period_arg, reason

MAX_BYTES = 50 * 1024 * 1024


class Command(BaseCommand):
    help = "Import an RCV CSV (compras or ventas) as the SII exports it."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file")
        parser.add_argument("--company", required=True, help="RUT of the company")
        parser.add_argument("--kind", required=True, choices=("compras", "ventas"))
        parser.add_argument(
            "--estado",
            choices=("registro", "pendiente", "no_incluir", "reclamado"),
            help="compras only: which register the file is (default: read from its header)",
        )
        parser.add_argument(
            "--period", help="YYYY-MM the file belongs to (default: each document's month)"
        )

    def handle(self, *args, **options):
        company = company_arg(options["company"])
        periodo = period_arg(options["period"]) if options.get("period") else None
        path = Path(options["file"])
        try:
            if path.stat().st_size > MAX_BYTES:
                raise CommandError(f"{path}: larger than 50 MB")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            batch = services.rcv_import(
                company=company,
                actor=None,
                path=path,
                filename=path.name,
                kind=options["kind"],
                estado=options.get("estado"),
                periodo=periodo,
            )
        except DomainError as exc:
            raise CommandError(f"{path.name}: {reason(exc)}") from exc
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        if batch.status == "failed":
            raise CommandError(f"{path.name}: {batch.error}")
        self.stdout.write(
            f"{path.name} ({batch.kind}, {batch.estado}): created {batch.created}, "
            f"updated {batch.updated}, unchanged {batch.unchanged}, rejected {batch.rejected}"
        )
        if batch.kind == "compras":
            self.stdout.write(
                f"purchase book: {batch.purchases_created} created, "
                f"{batch.purchases_updated} updated, {batch.partners_created} new suppliers"
            )
        for row in batch.rejected_rows:
            self.stdout.write(f"  line {row['line']}: {row['reason']}")
