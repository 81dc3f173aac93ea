"""python manage.py dte_outbox: do now what the beat tick does (envelope stranded signed
documents, send what is queued and due, ask the SII about what it may have; certification
libros too), in this process.
For a laptop run without a worker, or cron."""

from django.core.management.base import BaseCommand

from dte import libro_sending, sending, services


class Command(BaseCommand):
    help = "Send due envelopes and ask the SII about the ones it may have, once."

    def handle(self, *args, **options):
        due = services.outbox_tick()
        if due.enveloped:
            self.stdout.write(f"{due.enveloped} signed document(s) put in an envelope")
        for envelope_id in due.to_send:
            step = sending.envelope_send(envelope_id)
            self.stdout.write(f"envelope {envelope_id}: {step.status} {step.message}".rstrip())
        for envelope_id in due.to_ask:
            step = sending.envelope_refresh(envelope_id)
            self.stdout.write(f"envelope {envelope_id}: {step.status} {step.message}".rstrip())
        for libro_id in due.libros_to_send:
            step = libro_sending.libro_send(libro_id)
            self.stdout.write(f"libro {libro_id}: {step.status} {step.message}".rstrip())
        for libro_id in due.libros_to_ask:
            step = libro_sending.libro_refresh(libro_id)
            self.stdout.write(f"libro {libro_id}: {step.status} {step.message}".rstrip())
        if not any((due.enveloped, due.to_send, due.to_ask, due.libros_to_send, due.libros_to_ask)):
            self.stdout.write("nothing due")
