from django.apps import AppConfig


class SiiSandboxConfig(AppConfig):
    name = "dte.sandbox"
    label = "sii_sandbox"
    verbose_name = "SII de pruebas (sandbox)"
    default_auto_field = "django.db.models.BigAutoField"
