"""python manage.py rotate_encryption_key: re-encrypt every stored secret under the first key
of FIELD_ENCRYPTION_KEY.

Rotation: put the new key first and keep the old one after it
(FIELD_ENCRYPTION_KEY=new,old), restart, run this command, then drop the old key. While both
are listed everything stays readable (MultiFernet), so the switch needs no downtime. Rows are
re-encrypted in chunks, each in its own transaction; the command can be run again at any time.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dte import vault
from dte.models import Caf, Certificate, ExchangeMailbox, SandboxAuthority

ENCRYPTED = (
    (Certificate, ("pfx_encrypted", "password_encrypted")),
    (Caf, ("file_encrypted",)),
    (SandboxAuthority, ("private_key_encrypted",)),
    (ExchangeMailbox, ("password_encrypted",)),
)
CHUNK = 200


class Command(BaseCommand):
    help = (
        "Re-encrypt certificates, passwords, CAF keys and mailbox passwords under the first "
        "FIELD_ENCRYPTION_KEY."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Only check that every secret decrypts."
        )

    def handle(self, *args, check=False, **options):
        total = 0
        for model, fields in ENCRYPTED:
            ids = list(model.objects.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(ids), CHUNK):
                total += self._chunk(model, fields, ids[start : start + CHUNK], check=check)
            self.stdout.write(f"{model._meta.verbose_name_plural}: {len(ids)}")
        verb = "decrypt" if check else "re-encrypted"
        self.stdout.write(self.style.SUCCESS(f"{total} secret(s) {verb} under the current keys."))

    def _chunk(self, model, fields, ids, *, check: bool) -> int:
        done = 0
        with transaction.atomic():
            for row in model.objects.select_for_update().filter(pk__in=ids):
                for field in fields:
                    token = bytes(getattr(row, field))
                    try:
                        if check:
                            vault.decrypt(token)
                        else:
                            setattr(row, field, vault.rotate(token))
                    except vault.VaultError as exc:
                        raise CommandError(
                            f"{model.__name__} {row.pk}.{field}: {exc} Nothing of this chunk "
                            "was changed."
                        ) from exc
                    done += 1
                if not check:
                    row.save(update_fields=list(fields))
        return done
