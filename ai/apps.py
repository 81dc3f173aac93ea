from django.apps import AppConfig


class AiConfig(AppConfig):
    name = "ai"
    verbose_name = "Revisión con IA"

    def ready(self) -> None:
        from ai import receivers
        from dte.signals import dte_issued
        from f29.signals import f29_computed

        dte_issued.connect(receivers.on_dte_issued, dispatch_uid="ai.on_dte_issued")
        f29_computed.connect(receivers.on_f29_computed, dispatch_uid="ai.on_f29_computed")
