"""python manage.py f29 --company RUT --period YYYY-MM [--json] [--ppm-rate 1.5]

Computes the period's F29 from the books (recomputing the draft; a reviewed or filed period is
shown as it stands) and prints the boxes; with --json, one JSON object mapping each box code to
its value, e.g. {"502": 190000, "503": 12, ...} (115, the PPM rate, is a decimal number)."""

from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from erp.errors import DomainError
from erp.money import format_clp, format_decimal
from erp.periods import period_label
from f29 import calc, selectors, services
from f29.management.commands._common import company_arg, period_arg, reason
from f29.models import F29State


def json_object(boxes: dict) -> str:
    """Box values as JSON numbers: integers as they are, the rate as an exact decimal."""
    items = []
    for code, value in boxes.items():
        number = format(Decimal(value), "f") if isinstance(value, str) else str(int(value))
        items.append(f'"{code}": {number}')
    return "{" + ", ".join(items) + "}"


class Command(BaseCommand):
    help = "Compute a month's F29 from the books and print its boxes."

    def add_arguments(self, parser):
        parser.add_argument("--company", required=True, help="RUT of the company")
        parser.add_argument("--period", required=True, help="YYYY-MM")
        parser.add_argument("--json", action="store_true", help="one JSON object: code → value")
        parser.add_argument("--ppm-rate", help="PPM rate in percent (box 115), e.g. 1.5")

    def handle(self, *args, **options):
        company = company_arg(options["company"])
        periodo = period_arg(options["period"])
        existing = selectors.f29_find(company=company, periodo=periodo)
        try:
            if existing is not None and existing.state != F29State.DRAFT:
                f29 = existing
                if not options["json"]:
                    self.stderr.write(
                        f"F29 {period_label(periodo)} is {existing.state}: shown as it stands"
                    )
            else:
                f29 = services.f29_compute(
                    company=company, periodo=periodo, actor=None, ppm_rate=options.get("ppm_rate")
                )
        except DomainError as exc:
            raise CommandError(reason(exc)) from exc
        if options["json"]:
            self.stdout.write(json_object(f29.boxes))
            return
        self.stdout.write(f"F29 {company.razon_social} ({company.rut}) · {period_label(periodo)}")
        section = None
        for code in calc.BOX_CODES:
            box = f29.trail.get(str(code))
            if box is None:
                continue
            if box["section"] != section:
                section = box["section"]
                self.stdout.write(f"\n{section}")
            value = f29.boxes[str(code)]
            shown = (
                f"{format_decimal(Decimal(value))} %"
                if isinstance(value, str)
                else (
                    str(value) if box["label"].lower().startswith("cantidad") else format_clp(value)
                )
            )
            self.stdout.write(f"  [{code:>3}] {box['label']:<58} {shown:>16}")
