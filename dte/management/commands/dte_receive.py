"""python manage.py dte_receive --company RUT FILE [FILE ...] [--json] [--respond-to DIR]

Take in suppliers' DTEs from files (EnvioDTE, lone DTEs, ZIPs of them): each is verified for
the company, answered (RespuestaDTE with RecepcionEnvio) and kept; the SII's confirmation
follows in the background. Prints one line per document, or with --json one object
{"documents": [...]}. Exit status 1 when any file or document was refused.
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dte import receiving
from dte.management.arguments import company_by_rut, member
from dte.models import IntakeSource
from erp.background import EXIT_TIMEOUT, wait_for_background
from erp.tenancy import Perm

_LABELS = {
    "received": "recibido",
    "accepted": "aceptado",
    "claimed": "reclamado",
    "duplicate": "duplicado",
    "refused": "rechazado",
}


class Command(BaseCommand):
    help = "Receive suppliers' DTEs (XML or ZIP files): verify, answer and keep them."

    def add_arguments(self, parser):
        parser.add_argument("--company", required=True, help="RUT of the receiving company")
        parser.add_argument("files", nargs="+", metavar="FILE", help="XML or ZIP files")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--respond-to", metavar="DIR", help="write each RespuestaDTE produced into DIR"
        )
        parser.add_argument("--user", help="username receiving (default: the system)")

    def handle(self, *args, **options):
        try:
            self._receive(options)
        finally:
            if not wait_for_background(EXIT_TIMEOUT):
                self.stderr.write(
                    "aviso: quedaron tareas en segundo plano sin terminar (consultas al SII, "
                    "correos); las retoma el proceso periódico"
                )

    def _receive(self, options) -> None:
        company = company_by_rut(options["company"])
        actor = member(options.get("user"), company, Perm.RECEIVE_DOCUMENTS)
        respond_to = Path(options["respond_to"]) if options.get("respond_to") else None
        if respond_to is not None:
            try:
                respond_to.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                message = f"--respond-to: cannot create {respond_to}: {exc.strerror}"
                raise CommandError(message) from exc
        uploads = [(Path(name).name, self._read(name)) for name in options["files"]]
        result = receiving.receive(
            company=company, uploads=uploads, source=IntakeSource.COMMAND, actor=actor
        )
        if respond_to is not None:
            for envelope in result.envelopes:
                if envelope.response_xml and not envelope.repeated:
                    (respond_to / envelope.response_filename).write_bytes(envelope.response_xml)
        if options["json"]:
            payload = result.to_dict()
            self.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2))
        else:
            self._print(result)
        if result.any_refused:
            sys.exit(1)

    def _print(self, result: receiving.IntakeResult) -> None:
        for envelope in result.envelopes:
            if not envelope.documents:
                self.stdout.write(f"{envelope.name}: {envelope.glosa}")
            for document in envelope.documents:
                amount = (
                    f"$ {document.monto_total:,}".replace(",", ".")
                    if document.monto_total is not None
                    else "$ ?"
                )
                fecha = (
                    document.fecha_emision.strftime("%d-%m-%Y") if document.fecha_emision else "?"
                )
                line = (
                    f"{document.rut_emisor or '?'} tipo {document.tipo_dte or '?'} "
                    f"folio {document.folio or '?'} {fecha} {amount}: "
                    f"{_LABELS.get(document.status, document.status)}"
                )
                if document.reasons:
                    line += f" ({'; '.join(document.reasons)})"
                self.stdout.write(line)
        for problem in result.problems:
            self.stderr.write(problem)

    def _read(self, name: str) -> bytes:
        try:
            return Path(name).read_bytes()
        except FileNotFoundError as exc:
            raise CommandError(f"{name}: no existe") from exc
        except OSError as exc:
            raise CommandError(f"{name}: no se puede leer ({exc.strerror})") from exc
