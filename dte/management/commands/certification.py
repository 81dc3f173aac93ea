"""python manage.py certification --company RUT --set FILE --out DIR [--json] [--rate M=V]

Reads the SII's set de pruebas, says what it understood (and every line it could not read),
and, when nothing is missing, issues every case with the company's certification CAFs, each set
in its own EnvioDTE written into DIR as EnvioDTE--<rut>--<set name>--<atención>.xml and sent to
the SII (the sandbox, or maullin when the company is configured so); then the libros
(Libro--<rut>--<VENTA|COMPRA|GUIAS>--<period>.xml) and the muestras impresas (a ZIP). With
--json the outcome is printed as {"sets": [{"name", "atencion", "envelope", "cases":
[{"caso", "tipo_dte", "folio", "mnt_neto", "mnt_exe", "iva", "mnt_total"}]}], "libros": [...]}.
Exit status 1 with a one-line reason per problem when the set cannot be issued whole.
--exchange FILE takes in the SII's test envelope of the intercambio and writes its three answers
(RespuestaDTE recepción and resultado, EnvioRecibos) into DIR.
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dte import certification, certification_exchange
from dte.management.arguments import company_by_rut, member
from dte.models import CertificationStatus
from erp.background import EXIT_TIMEOUT, wait_for_background
from erp.errors import DomainError
from erp.tenancy import Perm


class Command(BaseCommand):
    help = "Read the SII's set de pruebas and issue it with the certification CAFs."

    def add_arguments(self, parser):
        parser.add_argument("--company", required=True, help="RUT of the company to certify")
        parser.add_argument("--set", dest="set_file", help="the set de pruebas")
        parser.add_argument(
            "--exchange",
            metavar="FILE",
            help="the intercambio: the SII's test envelope, answered into DIR",
        )
        parser.add_argument("--out", required=True, help="directory for the envelopes")
        parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
        parser.add_argument(
            "--rate",
            action="append",
            default=[],
            metavar="MONEDA=VALOR",
            help='exchange rate for the export sets, e.g. --rate "DOLAR USA=943.57"',
        )
        parser.add_argument(
            "--simulation",
            action="store_true",
            help="then propose and issue the simulación from the company's customers and products",
        )
        parser.add_argument("--user", help="username acting (default: the system)")

    def handle(self, *args, **options):
        try:
            self._run(options)
        finally:
            if not wait_for_background(EXIT_TIMEOUT):
                self.stderr.write(
                    "aviso: quedaron envíos al SII sin terminar; los retoma manage.py dte_outbox"
                )

    def _run(self, options) -> None:
        company = company_by_rut(options["company"])
        actor = member(options.get("user"), company, Perm.MANAGE_CREDENTIALS)
        if not options["set_file"] and not options["exchange"]:
            raise CommandError("give --set (the set de pruebas) or --exchange (the SII's envelope)")
        out = Path(options["out"])
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"--out: cannot create {out}: {exc.strerror}") from exc
        if options["exchange"]:
            self._exchange(company, actor, Path(options["exchange"]), out)
        if options["set_file"]:
            self._set(company, actor, options, out)

    def _exchange(self, company, actor, path: Path, out: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"--exchange: cannot read {path}: {exc.strerror}") from exc
        try:
            outcome = certification_exchange.exchange_take_in(
                company=company, actor=actor, data=data, filename=path.name
            )
        except DomainError as exc:
            raise CommandError(f"--exchange: {exc.one_line()}") from exc
        for name, answer in outcome.files():
            (out / name).write_bytes(answer)
            self.stderr.write(f"Intercambio: {out / name}")
        for problem in outcome.problems:
            self.stderr.write(f"intercambio: {problem}")
        for document in outcome.documents:
            if document.problem:
                self.stderr.write(f"intercambio, folio {document.folio}: {document.problem}")
        if not outcome.complete:
            sys.exit(1)

    def _set(self, company, actor, options, out: Path) -> None:
        path = Path(options["set_file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"--set: cannot read {path}: {exc.strerror}") from exc
        rates = {}
        for text in options["rate"]:
            name, sep, value = text.partition("=")
            if not sep:
                raise CommandError(f'--rate: expected MONEDA=VALOR, got "{text}"')
            rates[name.strip()] = value.strip()
        try:
            run = certification.certification_read(
                company=company, actor=actor, data=data, filename=path.name, exchange_rates=rates
            )
        except DomainError as exc:
            raise CommandError(f"--set: {exc.one_line()}") from exc
        for line in run.unreadable:
            self.stderr.write(f"línea {line['line']} no leída: {line['text']} ({line['reason']})")
        for row in run.sets.all():
            self.stderr.write(f"{row.title} (atención {row.atencion}): {row.cases.count()} casos")
        if run.problems:
            for problem in run.problems:
                self.stderr.write(f"problema: {problem}")
            sys.exit(1)
        try:
            certification.certification_start(run=run, actor=actor, queue=False)
        except DomainError as exc:
            raise CommandError(exc.one_line()) from exc
        run = certification.certification_issue(run.pk)
        if options["simulation"] and run.status == CertificationStatus.ISSUED:
            try:
                drafts = certification.simulation_propose(run=run, actor=actor)
                certification.simulation_start(run=run, actor=actor, queue=False)
            except DomainError as exc:
                raise CommandError(f"--simulation: {exc.one_line()}") from exc
            run = certification.simulation_issue(run.pk) or run
            self.stderr.write(
                f"Simulación: {len(drafts)} documentos, {run.get_simulation_status_display()}"
            )
        summary = certification.run_summary(run)
        for row in run.sets.select_related("envelope"):
            if row.envelope_id:
                target = out / certification.envelope_filename(company, row)
                target.write_bytes(bytes(row.envelope.xml))
                if not options["json"]:
                    self.stdout.write(f"{row.title}: {target}")
        for libro in run.libros.select_related("company").order_by("id"):
            target = out / libro.filename
            target.write_bytes(bytes(libro.xml))
            if not options["json"]:
                self.stdout.write(f"{libro.get_kind_display()}: {target}")
        if run.samples:
            target = out / certification.samples_filename(run)
            target.write_bytes(bytes(run.samples))
            if not options["json"]:
                self.stdout.write(f"Muestras impresas: {target}")
        if options["json"]:
            shown = {"sets": summary["sets"], "libros": summary["libros"]}
            self.stdout.write(json.dumps(shown, ensure_ascii=False, indent=2))
        if run.status != CertificationStatus.ISSUED:
            for line in run.error.splitlines():
                self.stderr.write(f"error: {line}")
            sys.exit(1)
        if options["simulation"] and run.simulation_status != CertificationStatus.ISSUED:
            for line in run.simulation_error.splitlines():
                self.stderr.write(f"error: {line}")
            sys.exit(1)
