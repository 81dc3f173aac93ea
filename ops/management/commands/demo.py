from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from dte.demo import load_demo_material
from erp.demo import DEMO_RUT, load_demo


class Command(BaseCommand):
    help = (
        "Create the demo company (RUT 76086428-5), its users, partners, products and drafts, "
        "and (with the SII sandbox) a test certificate and CAFs so that issuing works at once."
    )

    def handle(self, *args, **options):
        logins = load_demo(today=timezone.localdate())
        self.stdout.write(self.style.SUCCESS(f"Demo company {DEMO_RUT} ready."))
        for login in logins:
            self.stdout.write(f"  login: {login.username} / {login.password}  ({login.role})")
        if "sandbox" not in settings.SII_ENVIRONMENTS:
            self.stdout.write(
                "  SII_ENVIRONMENTS has no 'sandbox': no test CAFs or certificate were made; "
                "upload real ones in 'Folios y certificados'."
            )
            return
        from erp.models import Company

        load_demo_material(
            company=Company.objects.get(rut=DEMO_RUT),
            now=timezone.now(),
            today=timezone.localdate(),
        )
        self.stdout.write("  test certificate and CAFs (sandbox, IDK 900) for every type: ready")
