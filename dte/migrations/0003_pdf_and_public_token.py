import secrets

from django.db import migrations, models

import dte.models


def fill_tokens(apps, schema_editor):
    Dte = apps.get_model("dte", "Dte")
    for row in Dte.objects.filter(public_token__isnull=True).only("pk"):
        row.public_token = secrets.token_urlsafe(24)
        row.save(update_fields=["public_token"])


class Migration(migrations.Migration):
    dependencies = [("dte", "0002_outbox")]

    operations = [
        migrations.AddField(
            model_name="dte", name="pdf", field=models.BinaryField(blank=True, editable=False, null=True)
        ),
        migrations.AddField(
            model_name="dte", name="pdf_at", field=models.DateTimeField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="dte", name="public_token", field=models.CharField(max_length=40, null=True)
        ),
        migrations.RunPython(fill_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="dte",
            name="public_token",
            field=models.CharField(default=dte.models.public_token, max_length=40, unique=True),
        ),
    ]
