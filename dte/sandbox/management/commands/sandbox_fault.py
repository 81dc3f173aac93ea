"""python manage.py sandbox_fault OPERATION KIND [--count N] [--code CODE] [--glosa TEXT]
[--document] | --clear | --list

Make the next N calls of one sandbox SII operation misbehave (see dte.sandbox.faults)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dte.sandbox import faults
from dte.sandbox.models import Fault


class Command(BaseCommand):
    help = (
        "Programa fallas del SII de pruebas: OPERATION ("
        + ", ".join(faults.OPERATIONS)
        + " o '*') y KIND ("
        + ", ".join(faults.KINDS)
        + "). Ver dte/sandbox/faults.py."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("operation", nargs="?", help="operación, o '*' para cualquiera")
        parser.add_argument("kind", nargs="?", choices=faults.KINDS, help="tipo de falla")
        parser.add_argument("--count", type=int, default=1, help="cuántas llamadas (default 1)")
        parser.add_argument("--code", default="", help="reject: código (RCT, RSC, …; RCH/RPR/RLV)")
        parser.add_argument("--glosa", default="", help="reject: glosa de la respuesta")
        parser.add_argument(
            "--document",
            action="store_true",
            help="reject: rechaza los próximos N documentos en vez del envío completo",
        )
        parser.add_argument("--clear", action="store_true", help="borra todas las fallas")
        parser.add_argument("--list", action="store_true", help="muestra las fallas pendientes")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["clear"]:
            self.stdout.write(f"Fallas borradas: {faults.faults_clear()}")
            return
        if options["list"]:
            self._list()
            return
        if not options["operation"] or not options["kind"]:
            raise CommandError("Indique OPERATION y KIND, o use --clear o --list.")
        spec = faults.FaultSpec(
            operation=str(options["operation"]),
            kind=str(options["kind"]),
            count=int(options["count"]),
            code=str(options["code"]),
            glosa=str(options["glosa"]),
            per_document=bool(options["document"]),
        )
        try:
            fault = faults.fault_add(spec)
        except faults.FaultError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Falla programada: {_describe(fault)}")

    def _list(self) -> None:
        pending = faults.faults_pending()
        if not pending:
            self.stdout.write("No hay fallas pendientes.")
        for fault in pending:
            self.stdout.write(_describe(fault))


def _describe(fault: Fault) -> str:
    extra = ""
    if fault.kind == "reject":
        target = "documentos" if fault.per_document else "envío"
        extra = f" ({target}: {fault.code} {fault.glosa})"
    return f"{fault.operation} {fault.kind} ×{fault.remaining}{extra}"
