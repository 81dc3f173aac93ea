"""python manage.py dte_outbox: do now what the beat tick does (envelope stranded signed
documents, send what is queued and due, ask the SII about what it may have), in this process.
For a laptop run without a worker, or cron."""

from django.core.management.base import BaseCommand

from dte import sending, services


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
        if not due.enveloped and not due.to_send and not due.to_ask:
            self.stdout.write("nothing due")
