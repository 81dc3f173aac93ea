# An envelope is processed (its verdict shown) from ready_at on; earlier rows were processed at
# once, so they are ready from their reception.

from django.db import migrations, models


def ready_at_reception(apps, schema_editor):
    ReceivedEnvelope = apps.get_model("sii_sandbox", "ReceivedEnvelope")
    ReceivedEnvelope.objects.update(ready_at=models.F("received_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("sii_sandbox", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="receivedenvelope",
            name="ready_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(ready_at_reception, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="receivedenvelope",
            name="ready_at",
            field=models.DateTimeField(db_index=True),
        ),
    ]
