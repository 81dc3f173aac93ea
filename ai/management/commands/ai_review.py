"""python manage.py ai_review --company RUT --type 33 --folio N [--json]

Reviews one issued document (the rules always; Claude when ANTHROPIC_API_KEY is set) and prints
its findings; with --json, a list of objects with code, severity, message, evidence and source.
The review is stored, as from the UI. Exit 0 whatever the findings; 1 when the document is not
found or the arguments are wrong."""

import json

from django.core.management.base import BaseCommand, CommandError

from ai import services
from erp.models import SalesDocument
from erp.rut import InvalidRut, normalize_rut


class Command(BaseCommand):
    help = "Review one issued document and print its findings."

    def add_arguments(self, parser):
        parser.add_argument("--company", required=True)
        parser.add_argument("--type", required=True, type=int, dest="tipo")
        parser.add_argument("--folio", required=True, type=int)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            rut = normalize_rut(options["company"])
        except InvalidRut as exc:
            raise CommandError(f"--company: {exc}") from exc
        document = (
            SalesDocument.objects.select_related("company")
            .filter(company__rut=rut, tipo_dte=options["tipo"], folio=options["folio"])
            .first()
        )
        if document is None:
            raise CommandError(
                f"no document {options['tipo']} N° {options['folio']} issued by {rut}"
            )
        review = services.ai_review_document(document=document)
        findings = list(review.findings.all())
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    [
                        {
                            "code": f.code,
                            "severity": f.severity,
                            "message": f.message,
                            "evidence": f.evidence,
                            "source": f.source,
                        }
                        for f in findings
                    ],
                    ensure_ascii=False,
                )
            )
            return
        self.stdout.write(f"{document} · {review.get_ai_status_display()}")
        if review.ai_reason:
            self.stdout.write(f"  {review.ai_reason}")
        if review.explanation:
            self.stdout.write(f"  IA: {review.explanation}")
        for f in findings:
            self.stdout.write(f"  [{f.severity}] {f.code}: {f.message}")
        if not findings:
            self.stdout.write("  sin observaciones")
