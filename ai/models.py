from django.conf import settings
from django.db import models

from erp.models import Company, SalesDocument
from f29.models import F29Return


class AiReview(models.Model):
    """One review of a document or an F29 period: the deterministic rules always, Claude when
    a key is set and the budget allows. The newest review of a target is the one shown."""

    class Target(models.TextChoices):
        DOCUMENT = "document", "Documento"
        PERIOD = "period", "Período F29"

    class AiStatus(models.TextChoices):
        OK = "ok", "Revisado por la IA"
        CACHED = "cached", "Revisado por la IA (respuesta guardada)"
        OFF = "off", "Revisión con IA desactivada"
        FAILED = "failed", "La revisión con IA falló"
        BUDGET = "budget", "Presupuesto diario de IA agotado"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="ai_reviews")
    target = models.CharField(max_length=10, choices=Target)
    sales_document = models.ForeignKey(
        SalesDocument, null=True, blank=True, on_delete=models.CASCADE, related_name="ai_reviews"
    )
    f29 = models.ForeignKey(
        F29Return, null=True, blank=True, on_delete=models.CASCADE, related_name="ai_reviews"
    )
    ai_status = models.CharField("revisión con IA", max_length=8, choices=AiStatus)
    ai_reason = models.CharField("motivo", max_length=300, blank=True)
    explanation = models.TextField("explicación de la IA", blank=True)
    model = models.CharField("modelo", max_length=80, blank=True)
    input_hash = models.CharField(max_length=64, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "revisión"
        verbose_name_plural = "revisiones"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Revisión {self.get_target_display()} #{self.pk}"


class AiFinding(models.Model):
    class Source(models.TextChoices):
        RULES = "rules", "Reglas"
        AI = "ai", "IA"

    class State(models.TextChoices):
        OPEN = "open", "Pendiente"
        ACCEPTED = "accepted", "Aceptado"
        DISMISSED = "dismissed", "Descartado"

    review = models.ForeignKey(AiReview, on_delete=models.CASCADE, related_name="findings")
    source = models.CharField(max_length=5, choices=Source)
    code = models.CharField(max_length=60)
    severity = models.CharField(max_length=8)
    message = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "hallazgo"
        verbose_name_plural = "hallazgos"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.code} ({self.severity})"


class AiUsage(models.Model):
    """Tokens spent per company and day, for the daily budget."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="ai_usage")
    day = models.DateField()
    calls = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "day"], name="ai_usage_day")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.day}"
