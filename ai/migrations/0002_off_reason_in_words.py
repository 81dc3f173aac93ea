"""Reviews stored while the reason named the missing variable read in words a clerk
understands (the technical hint is in admin and the log)."""

from django.db import migrations

OLD = "Sin ANTHROPIC_API_KEY: la revisión con IA está desactivada; las reglas sí corren."
NEW = (
    "La revisión con IA no está configurada en esta instalación; "
    "las reglas automáticas sí se aplicaron."
)


def reword(apps, schema_editor):
    AiReview = apps.get_model("ai", "AiReview")
    AiReview.objects.filter(ai_status="off", ai_reason=OLD).update(ai_reason=NEW)


class Migration(migrations.Migration):
    dependencies = [("ai", "0001_initial")]

    operations = [migrations.RunPython(reword, migrations.RunPython.noop)]
