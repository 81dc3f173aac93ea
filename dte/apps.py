from django.apps import AppConfig


class DteConfig(AppConfig):
    name = "dte"

    def ready(self) -> None:
        # Register the tasks: services run them by name (dte.dispatch), never by import.
        from dte import tasks  # noqa: F401
