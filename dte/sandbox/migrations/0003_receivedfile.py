# The uploaded file moves out of the envelope's row: status queries never read it, and on SQLite
# a large value inside the row is read through for every column after it.

import django.db.models.deletion
from django.db import migrations, models


def files_apart(apps, schema_editor):
    ReceivedEnvelope = apps.get_model("sii_sandbox", "ReceivedEnvelope")
    ReceivedFile = apps.get_model("sii_sandbox", "ReceivedFile")
    for envelope_id, data in ReceivedEnvelope.objects.values_list("id", "data").iterator():
        ReceivedFile.objects.create(envelope_id=envelope_id, data=data)


def files_back(apps, schema_editor):
    ReceivedEnvelope = apps.get_model("sii_sandbox", "ReceivedEnvelope")
    ReceivedFile = apps.get_model("sii_sandbox", "ReceivedFile")
    for envelope_id, data in ReceivedFile.objects.values_list("envelope_id", "data").iterator():
        ReceivedEnvelope.objects.filter(id=envelope_id).update(data=data)


class Migration(migrations.Migration):

    dependencies = [
        ("sii_sandbox", "0002_receivedenvelope_ready_at"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReceivedFile",
            fields=[
                (
                    "envelope",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="file",
                        serialize=False,
                        to="sii_sandbox.receivedenvelope",
                    ),
                ),
                ("data", models.BinaryField()),
            ],
            options={
                "verbose_name": "archivo recibido",
                "verbose_name_plural": "archivos recibidos",
            },
        ),
        # A default, so that migrating back can re-add the column before filling it.
        migrations.AlterField(
            model_name="receivedenvelope",
            name="data",
            field=models.BinaryField(default=b""),
        ),
        migrations.RunPython(files_apart, files_back),
        migrations.RemoveField(
            model_name="receivedenvelope",
            name="data",
        ),
    ]
