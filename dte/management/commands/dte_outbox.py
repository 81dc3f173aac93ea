"""python manage.py dte_outbox: do now what the beat tick does (send what is queued and due,
poll what the SII is processing), in this process. For a laptop run without a worker, or cron."""

from django.core.management.base import BaseCommand

from dte import sending


class Command(BaseCommand):
    help = "Send due envelopes and poll the SII for the ones in progress, once."

    def handle(self, *args, **options):
        to_send, to_poll = sending.outbox_claim()
        for envelope_id in to_send:
            step = sending.envelope_send(envelope_id)
            self.stdout.write(f"envelope {envelope_id}: {step.status} {step.message}".rstrip())
        for envelope_id in to_poll:
            step = sending.envelope_refresh(envelope_id)
            self.stdout.write(f"envelope {envelope_id}: {step.status} {step.message}".rstrip())
        if not to_send and not to_poll:
            self.stdout.write("nothing due")
