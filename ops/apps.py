from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operación"

    def ready(self) -> None:
        from django.conf import settings

        from ops import checks  # noqa: F401  (registers the deploy checks)
        from ops.runtime import tune_gc

        tune_gc(settings.PYTHON_GC_THRESHOLDS)
