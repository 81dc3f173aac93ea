"""python manage.py sandbox_supplier_send --to RUT [--count N] [--type 33] [--out FILE]

The offline stand-in for a supplier: signs an EnvioDTE of N documents addressed to the company
(its own certificate, CAFs signed by the sandbox SII key), records the documents as received by
the sandbox SII (as the supplier's upload would), and mails the envelope into the company's
exchange mailbox (IMAP APPEND, unseen), where the beat job takes it in. --out also writes the
envelope to a file (the only delivery when the company has no mailbox)."""

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max
from django.utils import timezone

from dte import receiving, services, vault
from dte.core.domain import Receptor
from dte.mailbox import MailboxError, append_message
from dte.management.arguments import company_by_rut
from dte.models import ExchangeMailbox
from dte.sandbox.models import ReceivedDocument
from dte.sandbox.rcv import register_supplier_envelope
from dte.sandbox.supplier import Supplier, default_supplier, envelope_for, supply
from erp.doctypes import codes

# What a supplier sends and its customer answers; the factura de compra is the buyer's own.
TYPES = tuple(sorted(codes(lambda d: d.exchange_answer and not d.retains_iva)))


class Command(BaseCommand):
    help = "Un proveedor de prueba envía un EnvioDTE firmado a la casilla de intercambio."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, help="RUT de la empresa receptora")
        parser.add_argument("--count", type=int, default=1, help="documentos en el sobre (1)")
        parser.add_argument("--type", type=int, default=33, choices=TYPES, help="tipo (33)")
        parser.add_argument("--out", help="escribir también el sobre en este archivo")

    def handle(self, *args: Any, **options: Any) -> None:
        if "sandbox" not in settings.SII_ENVIRONMENTS:
            raise CommandError("Esta instalación no tiene el SII de pruebas (SII_ENVIRONMENTS).")
        company = company_by_rut(str(options["to"]), flag="--to")
        count = int(options["count"])
        if not 1 <= count <= 500:
            raise CommandError("--count: entre 1 y 500 documentos.")
        tipo = int(options["type"])
        mailbox = ExchangeMailbox.objects.filter(company=company, is_active=True).first()
        if mailbox is None and not options.get("out"):
            raise CommandError(
                f"{company.rut} no tiene casilla de intercambio activa: indique --out ARCHIVO."
            )
        now = timezone.now()
        supplier = Supplier(default_supplier(), services.sandbox_authority().private_key(), now)
        used = ReceivedDocument.objects.filter(
            rut_emisor=supplier.emisor.rut, tipo_dte=tipo
        ).aggregate(last=Max("folio"))["last"]
        supplier.caf(tipo, first_folio=(used or 0) + 1)
        receptor = Receptor(
            company.rut, company.razon_social, company.giro[:40], company.direccion, company.comuna
        )
        documents = supply(supplier, receptor, count=count, tipo=tipo, now=now)
        envelope = envelope_for(supplier, documents, rut_receptor=company.rut, now=now)
        try:
            config = receiving.mailbox_config(mailbox) if mailbox is not None else None
        except vault.VaultError as exc:
            raise CommandError(f"La contraseña de la casilla no se puede leer: {exc}") from exc
        register_supplier_envelope(envelope, received_at=now)
        name = f"EnvioDTE--{supplier.emisor.rut}--{company.rut}--{documents[0].folio}.xml"
        delivered = []
        if options.get("out"):
            Path(options["out"]).write_bytes(envelope)
            delivered.append(str(options["out"]))
        if mailbox is not None and config is not None:
            message = _message(supplier, mailbox, name, envelope)
            try:
                append_message(config, message)
            except MailboxError as exc:
                raise CommandError(f"No se pudo dejar el correo en la casilla: {exc}") from exc
            delivered.append(f"casilla {mailbox.username}@{mailbox.host}/{mailbox.folder}")
        for document in documents:
            self.stdout.write(
                f"{supplier.emisor.rut} tipo {document.tipo} folio {document.folio} "
                f"$ {document.monto_total:,}".replace(",", ".")
            )
        self.stdout.write(f"Enviado a {', '.join(delivered)}")


def _message(supplier: Supplier, mailbox: ExchangeMailbox, name: str, envelope: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = f"{supplier.emisor.razon_social} <{supplier.emisor.correo}>"
    message["To"] = mailbox.address or f"{mailbox.username}@{mailbox.host}"
    message["Subject"] = f"Envío de DTE de {supplier.emisor.razon_social}"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="proveedora-austral.cl")
    message.set_content("Adjuntamos documentos tributarios electrónicos.\n")
    message.add_attachment(envelope, maintype="application", subtype="xml", filename=name)
    return message.as_bytes()
