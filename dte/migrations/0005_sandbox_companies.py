"""Companies whose CAFs are all the local sandbox's (IDK 900) were issuing against the sandbox
under the old global SII_ENV; with the environment now per company, they move to "sandbox"."""

from django.db import migrations

SANDBOX_IDK = 900


def forwards(apps, schema_editor):
    Company = apps.get_model("erp", "Company")
    sandbox_only = (
        Company.objects.exclude(sii_environment="sandbox")
        .filter(cafs__idk=SANDBOX_IDK)
        .exclude(cafs__idk__in=[100, 300])
        .distinct()
    )
    ids = list(sandbox_only.values_list("pk", flat=True))
    if ids:
        Company.objects.filter(pk__in=ids).update(sii_environment="sandbox")


class Migration(migrations.Migration):
    dependencies = [
        ("dte", "0004_envelope_states_events"),
        ("erp", "0005_company_sandbox_environment"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
