from django.conf import settings
from django.db import models

from erp.models import Company, RutField


class RcvKind(models.TextChoices):
    COMPRAS = "compras", "Compras"
    VENTAS = "ventas", "Ventas"


class RcvEstado(models.TextChoices):
    REGISTRO = "registro", "Registro"
    PENDIENTE = "pendiente", "Pendiente"
    NO_INCLUIR = "no_incluir", "No incluir"
    RECLAMADO = "reclamado", "Reclamado"


class RcvImportStatus(models.TextChoices):
    QUEUED = "queued", "En cola"
    RUNNING = "running", "Procesando"
    DONE = "done", "Terminado"
    FAILED = "failed", "Fallido"


def rcv_upload_path(instance: "RcvImport", filename: str) -> str:
    return f"rcv/{instance.company_id}/{filename}"


class RcvImport(models.Model):
    """One RCV file imported: what it was, and what it did. The upload is stored (`file`) and
    imported by a task, chunk by chunk, which keeps the progress and the counts here; the file
    is deleted once imported."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="rcv_imports")
    kind = models.CharField("registro", max_length=8, choices=RcvKind)
    estado = models.CharField(max_length=12, choices=RcvEstado)
    periodo = models.DateField("período", null=True, blank=True)
    filename = models.CharField("archivo", max_length=200)
    sha256 = models.CharField(max_length=64)
    created = models.PositiveIntegerField("creados", default=0)
    updated = models.PositiveIntegerField("actualizados", default=0)
    unchanged = models.PositiveIntegerField("sin cambios", default=0)
    rejected = models.PositiveIntegerField("rechazados", default=0)
    purchases_created = models.PositiveIntegerField("compras creadas", default=0)
    purchases_updated = models.PositiveIntegerField("compras actualizadas", default=0)
    partners_created = models.PositiveIntegerField("proveedores creados", default=0)
    rejected_rows = models.JSONField(
        "filas rechazadas", default=list, blank=True, help_text="Las primeras 1.000."
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        "estado de la importación",
        max_length=8,
        choices=RcvImportStatus,
        default=RcvImportStatus.DONE,
    )
    file = models.FileField("archivo subido", upload_to=rcv_upload_path, max_length=300, blank=True)
    size = models.PositiveBigIntegerField("tamaño (bytes)", default=0)
    bytes_read = models.PositiveBigIntegerField("bytes leídos", default=0)
    lines_read = models.PositiveIntegerField("líneas leídas", default=0)
    error = models.TextField("error", blank=True)
    started_at = models.DateTimeField("inicio", null=True, blank=True)
    finished_at = models.DateTimeField("término", null=True, blank=True)

    class Meta:
        verbose_name = "importación RCV"
        verbose_name_plural = "importaciones RCV"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"RCV {self.kind} {self.estado} · {self.filename}"

    @property
    def finished(self) -> bool:
        return self.status in (RcvImportStatus.DONE, RcvImportStatus.FAILED)

    @property
    def percent(self) -> int:
        if self.status == RcvImportStatus.DONE:
            return 100
        return min(99, self.bytes_read * 100 // self.size) if self.size else 0


class RcvEntry(models.Model):
    """One document as the SII's purchase and sales register (RCV) shows it."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="rcv_entries")
    kind = models.CharField("registro", max_length=8, choices=RcvKind)
    estado = models.CharField(max_length=12, choices=RcvEstado)
    periodo = models.DateField("período")
    tipo = models.PositiveSmallIntegerField("tipo de documento")
    folio = models.PositiveBigIntegerField()
    rut = RutField("RUT contraparte")
    razon_social = models.CharField("razón social", max_length=200, blank=True)
    fecha = models.DateField("fecha del documento")
    fecha_recepcion = models.DateTimeField(null=True, blank=True)
    fecha_reclamo = models.DateTimeField(null=True, blank=True)
    tipo_compra = models.CharField(max_length=40, blank=True)
    monto_exento = models.BigIntegerField(default=0)
    monto_neto = models.BigIntegerField(default=0)
    monto_iva = models.BigIntegerField(default=0)
    monto_iva_no_recuperable = models.BigIntegerField(default=0)
    codigo_iva_no_rec = models.CharField(max_length=4, blank=True)
    monto_neto_activo_fijo = models.BigIntegerField(default=0)
    iva_activo_fijo = models.BigIntegerField(default=0)
    iva_uso_comun = models.BigIntegerField(default=0)
    otros_impuestos = models.BigIntegerField(default=0)
    monto_total = models.BigIntegerField(default=0)
    last_import = models.ForeignKey(
        RcvImport, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "documento en el RCV"
        verbose_name_plural = "documentos en el RCV"
        ordering = ["tipo", "folio"]
        # A register's period in its order (tipo, folio): the reconciliation and the list read
        # it without a sort (issue 18; it replaces the index without tipo and folio).
        indexes = [
            models.Index(
                fields=["company", "kind", "periodo", "tipo", "folio"], name="rcv_entry_period"
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "kind", "tipo", "folio", "rut"], name="rcv_entry_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"RCV {self.kind} {self.tipo} N° {self.folio} ({self.rut})"


class F29State(models.TextChoices):
    DRAFT = "draft", "Borrador"
    REVIEWED = "reviewed", "Revisado"
    FILED = "filed", "Presentado"


class F29Return(models.Model):
    """One company's F29 for one month: the boxes as last computed, with their trail."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="f29_returns")
    periodo = models.DateField("período", help_text="Primer día del mes.")
    state = models.CharField("estado", max_length=10, choices=F29State, default=F29State.DRAFT)
    boxes = models.JSONField("casillas", default=dict)
    trail = models.JSONField("trazabilidad", default=dict)
    remanente_override = models.BigIntegerField(
        "remanente mes anterior (504) ingresado",
        null=True,
        blank=True,
        help_text="Vacío: se toma la casilla 77 del período anterior.",
    )
    ppm_rate = models.DecimalField("tasa PPM (%)", max_digits=6, decimal_places=3, default=0)
    uso_comun_factor = models.DecimalField(
        "factor de proporcionalidad IVA uso común",
        max_digits=7,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Vacío: ventas afectas / ventas totales del período.",
    )
    computed_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filed_at = models.DateTimeField(null=True, blank=True)
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    folio_sii = models.CharField("folio del F29 en el SII", max_length=20, blank=True)

    class Meta:
        verbose_name = "declaración F29"
        verbose_name_plural = "declaraciones F29"
        ordering = ["-periodo"]
        constraints = [
            models.UniqueConstraint(fields=["company", "periodo"], name="f29_unique_period")
        ]

    def __str__(self) -> str:
        return f"F29 {self.periodo:%m-%Y}"

    def box(self, code: int) -> int:
        return int(self.boxes.get(str(code), 0))


class F29Event(models.Model):
    """The history of a period: computed, reviewed, filed, reopened (with who and why)."""

    class Action(models.TextChoices):
        COMPUTED = "computed", "Calculado"
        REVIEWED = "reviewed", "Revisado"
        FILED = "filed", "Presentado"
        REOPENED = "reopened", "Reabierto"

    f29 = models.ForeignKey(F29Return, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=10, choices=Action)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField("motivo", blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.at:%d-%m-%Y %H:%M}"
