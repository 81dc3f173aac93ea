"""Event messages written before the SII's reception stamp was formatted read as staff write
dates: "Recibido el 2026-12-05 23:02:08." becomes "Recibido el 05-12-2026 23:02."."""

import re

from django.db import migrations

ISO = re.compile(r"Recibido el (\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):\d{2}")
SLASHES = re.compile(r"Recibido el (\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):\d{2}")
WITH_SECONDS = re.compile(r"Recibido el (\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2}):\d{2}")


def es_cl(message: str) -> str:
    message = ISO.sub(r"Recibido el \3-\2-\1 \4:\5", message)
    message = SLASHES.sub(r"Recibido el \1-\2-\3 \4:\5", message)
    return WITH_SECONDS.sub(r"Recibido el \1-\2-\3 \4:\5", message)


def reword(apps, schema_editor):
    for name in ("DteEvent", "EnvelopeEvent"):
        model = apps.get_model("dte", name)
        rows = model.objects.filter(message__contains="Recibido el ").only("pk", "message")
        for row in rows.iterator():
            new = es_cl(row.message)
            if new != row.message:
                model.objects.filter(pk=row.pk).update(message=new)


class Migration(migrations.Migration):
    dependencies = [("dte", "0008_dte_event_kind")]

    operations = [migrations.RunPython(reword, migrations.RunPython.noop)]
