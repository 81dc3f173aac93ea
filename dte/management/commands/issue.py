"""python manage.py issue --company RUT --file docs.json --out DIR

docs.json holds one document or a list, in the JSON shape of the API's create payload
(README.md). Each is saved as a draft and issued; the signed DTEs and the EnvioDTE/EnvioBOLETA
go to DIR. Exit status 1 when any document was rejected, with a one-line reason for each.
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dte import services
from dte.management.arguments import company_by_rut, member
from erp import services as erp_services
from erp.api.errors import _flatten
from erp.api.serializers import SalesDocumentSerializer
from erp.background import EXIT_TIMEOUT, wait_for_background
from erp.errors import DomainError


class Command(BaseCommand):
    help = "Issue documents from a JSON file and write the signed XML to a directory."

    def add_arguments(self, parser):
        parser.add_argument("--company", required=True, help="RUT of the issuing company")
        parser.add_argument("--file", required=True, help="JSON: one document or a list")
        parser.add_argument("--out", required=True, help="directory for the signed XML")
        parser.add_argument("--user", help="username issuing (default: the system)")

    def handle(self, *args, **options):
        try:
            self._issue(options)
        finally:
            # Without a broker, reviews and sending run in background threads (erp.background):
            # finish them before exiting.
            if not wait_for_background(EXIT_TIMEOUT):
                self.stderr.write(
                    "aviso: quedaron tareas en segundo plano sin terminar (revisiones, envíos al "
                    "SII); los envíos pendientes los retoma manage.py dte_outbox"
                )

    def _issue(self, options) -> None:
        company = company_by_rut(options["company"])
        actor = member(options.get("user"), company)
        payloads = self._payloads(options["file"])
        out = Path(options["out"])
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot create {out}: {exc.strerror}") from exc

        rejected: list[str] = []
        drafts = []
        for n, payload in enumerate(payloads, start=1):
            serializer = SalesDocumentSerializer(data=payload)
            if not serializer.is_valid():
                fields = _flatten(serializer.errors)
                detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
                rejected.append(f"document {n}: {detail}")
                continue
            try:
                drafts.append(
                    (
                        n,
                        erp_services.sales_document_create(
                            company=company, actor=actor, data=serializer.validated_data
                        ),
                    )
                )
            except DomainError as exc:
                rejected.append(f"document {n}: {exc.one_line()}")

        position = {doc.pk: n for n, doc in drafts}
        progress = _Progress(len(drafts), self.stderr) if len(drafts) > 1 else None
        outcomes, envelopes = services.dte_issue_many(
            documents=[doc for _, doc in drafts],
            actor=actor,
            now=timezone.now(),
            progress=progress.step if progress else None,
        )
        if progress:
            progress.done()
        for outcome in outcomes:
            n = position[outcome.document.pk]
            if outcome.error is not None:
                rejected.append(f"document {n}: {outcome.error.one_line()}")
                erp_services.sales_document_delete(document=outcome.document, actor=actor)
                continue
            dte = outcome.dte
            path = out / dte.filename
            path.write_bytes(bytes(dte.xml))
            self.stdout.write(f"{dte.tipo_dte} folio {dte.folio}  {path}")
        for envelope in envelopes:
            stamp = timezone.localtime(envelope.created_at).strftime("%Y%m%d-%H%M%S")
            path = out / f"{envelope.kind}--{company.rut}--{stamp}--{envelope.pk}.xml"
            path.write_bytes(bytes(envelope.xml))
            self.stdout.write(f"{envelope.kind} ({envelope.dtes.count()} DTE)  {path}")
        for line in rejected:
            self.stderr.write(f"rejected {line}")
        if rejected:
            sys.exit(1)

    def _payloads(self, filename: str) -> list:
        try:
            data = json.loads(Path(filename).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CommandError(f"--file: {filename} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"--file: cannot read {filename}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"--file: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        items = data if isinstance(data, list) else [data]
        if not items or not all(isinstance(i, dict) for i in items):
            raise CommandError("--file: expected a JSON object or a non-empty list of objects")
        return items


class _Progress:
    WIDTH = 30

    def __init__(self, total: int, stream) -> None:
        self.total, self.count, self.stream = total, 0, stream

    def step(self, outcome) -> None:
        self.count += 1
        filled = self.WIDTH * self.count // self.total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {self.count}/{self.total}", ending="")
        self.stream.flush()

    def done(self) -> None:
        self.stream.write("")
