"""python manage.py sandbox_caf --company RUT --type 33 --from 1 --to 500 [--out FILE] [--load]

Issue a CAF signed by the sandbox SII's own key (IDK 900, test material): write it to --out
(default: standard output) and, with --load, upload it to the company as any CAF."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dte import services
from dte.core.testmaterial import SANDBOX_IDK, make_caf
from erp.doctypes import TipoDte
from erp.errors import DomainError
from erp.models import Company
from erp.rut import InvalidRut, normalize_rut

TEST_RAZON_SOCIAL = "CONTRIBUYENTE DE PRUEBA"


class Command(BaseCommand):
    help = "Emite un CAF de prueba firmado por el SII de pruebas (IDK 900)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="RUT del emisor, p. ej. 76086428-5")
        parser.add_argument("--type", required=True, help="tipo de documento (33, 39, 61, …)")
        parser.add_argument("--from", dest="desde", type=int, required=True, help="primer folio")
        parser.add_argument("--to", dest="hasta", type=int, required=True, help="último folio")
        parser.add_argument("--out", help="archivo de salida (por omisión, la salida estándar)")
        parser.add_argument("--load", action="store_true", help="cargar el CAF a la empresa")

    def handle(self, *args: Any, **options: Any) -> None:
        rut = _rut(str(options["company"]))
        tipo = _tipo(str(options["type"]))
        desde, hasta = int(options["desde"]), int(options["hasta"])
        if desde < 1 or desde > hasta:
            raise CommandError(f"Rango de folios inválido: {desde}-{hasta} (desde ≥ 1 y ≤ hasta).")
        company = Company.objects.filter(rut=rut).first()
        if options["load"] and company is None:
            raise CommandError(f"La empresa {rut} no existe: no se puede cargar el CAF.")
        data = make_caf(
            sii_key=services.sandbox_authority().private_key(),
            idk=SANDBOX_IDK,
            rut_emisor=rut,
            razon_social=company.razon_social if company else TEST_RAZON_SOCIAL,
            tipo_dte=tipo,
            folio_desde=desde,
            folio_hasta=hasta,
            fecha_autorizacion=timezone.localdate(),
        )
        self._write(data, options.get("out"))
        if options["load"]:
            assert company is not None
            self._load(company, data)

    def _write(self, data: bytes, out: object) -> None:
        if not out:
            self.stdout.write(data.decode("iso-8859-1"), ending="")
            return
        try:
            Path(str(out)).write_bytes(data)
        except OSError as exc:
            raise CommandError(f"No se pudo escribir {out}: {exc.strerror}") from None
        self.stderr.write(f"CAF escrito en {out}")

    def _load(self, company: Company, data: bytes) -> None:
        try:
            caf = services.caf_upload(company=company, actor=None, data=data, is_test=True)
        except DomainError as exc:
            raise CommandError(f"No se pudo cargar el CAF: {exc.message}") from None
        self.stderr.write(
            f"CAF cargado a {company.rut}: tipo {caf.tipo_dte}, folios "
            f"{caf.folio_desde}-{caf.folio_hasta}"
        )


def _rut(value: str) -> str:
    try:
        return normalize_rut(value)
    except InvalidRut as exc:
        raise CommandError(f"RUT de empresa inválido {value!r}: {exc}") from None


def _tipo(value: str) -> int:
    valid = sorted(int(t) for t in TipoDte)
    if not value.isdigit() or int(value) not in valid:
        shown = ", ".join(str(t) for t in valid)
        raise CommandError(f"Tipo de documento desconocido {value!r}; use uno de: {shown}.")
    return int(value)
