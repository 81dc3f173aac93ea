"""What the sandbox SII remembers between calls (in the database, so that every process that
talks to it, e.g. a Celery worker and a test, sees the same SII)."""

from django.db import models


class Channel(models.TextChoices):
    """Where a token or an envelope came in: the SOAP/CGI services, or the boletas REST API."""

    DTE = "dte", "DTE (SOAP y DTEUpload)"
    BOLETA = "boleta", "Boletas (REST)"


class Seed(models.Model):
    """A seed (semilla) handed out by getSeed or boleta.electronica.semilla; used once."""

    value = models.CharField(max_length=20, unique=True)
    channel = models.CharField(max_length=8, choices=Channel)
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "semilla"
        verbose_name_plural = "semillas"

    def __str__(self) -> str:
        return self.value


class Token(models.Model):
    """A session token bound to the RUT of the certificate that signed the seed."""

    value = models.CharField(max_length=32, unique=True)
    channel = models.CharField(max_length=8, choices=Channel)
    rut = models.CharField(max_length=12)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = "token"
        verbose_name_plural = "tokens"

    def __str__(self) -> str:
        return f"{self.channel} {self.rut}"


class ReceivedKind(models.TextChoices):
    """What an upload was: an envelope of DTEs (EnvioDTE or EnvioBOLETA, by its channel), or a
    libro (uploaded through DTEUpload like an EnvioDTE, judged with its own L… states)."""

    ENVIO = "envio", "EnvioDTE o EnvioBOLETA"
    LIBRO_CV = "LibroCompraVenta", "Libro de compras o ventas"
    LIBRO_GUIA = "LibroGuia", "Libro de guías"


LIBRO_KINDS = (ReceivedKind.LIBRO_CV, ReceivedKind.LIBRO_GUIA)


class ReceivedEnvelope(models.Model):
    """An uploaded EnvioDTE/EnvioBOLETA, or libro (`kind`), and the outcome of processing it:
    decided at upload, shown from `ready_at` on (conf.processing_time() after the upload), as
    the SII's processing takes a while. A libro has no documents and no stats."""

    track_id = models.BigIntegerField(unique=True)
    channel = models.CharField(max_length=8, choices=Channel)
    kind = models.CharField(max_length=20, choices=ReceivedKind, default=ReceivedKind.ENVIO)
    company_rut = models.CharField(max_length=12, db_index=True)
    sender_rut = models.CharField(max_length=12)
    file_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, unique=True)  # of the file (ReceivedFile)
    set_digest = models.CharField(max_length=100, blank=True, db_index=True)
    # EPR or RSC, RFR, RCT, RPT, RCO, …; a libro's LOK, LRS, LRC, LRF
    outcome_code = models.CharField(max_length=4)
    outcome_glosa = models.TextField(blank=True)
    # [{"tipo": 33, "informados": 1, "aceptados": 1, "rechazados": 0, "reparos": 0}, …]
    stats = models.JSONField(default=list)
    polls = models.PositiveIntegerField(default=0)  # status queries answered so far
    received_at = models.DateTimeField()
    ready_at = models.DateTimeField(db_index=True)  # processed from then on

    class Meta:
        verbose_name = "envío recibido"
        verbose_name_plural = "envíos recibidos"
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.track_id} {self.outcome_code}"


class ReceivedFile(models.Model):
    """The uploaded file of an envelope, kept apart from it: status queries never read it (and
    on SQLite a large value inside the envelope's row is read through for the columns after
    it, which made every status query as slow as the envelope is large)."""

    envelope = models.OneToOneField(
        ReceivedEnvelope, on_delete=models.CASCADE, primary_key=True, related_name="file"
    )
    data = models.BinaryField()

    class Meta:
        verbose_name = "archivo recibido"
        verbose_name_plural = "archivos recibidos"

    def __str__(self) -> str:
        return f"{self.envelope_id}"


class DocumentStatus(models.TextChoices):
    """A document's fate, with the codes of the boletas API's detalle_rep_rech."""

    ACCEPTED = "DOK", "Aceptado"
    OBJECTIONS = "RPR", "Aceptado con reparos"
    LIGHT_OBJECTIONS = "RLV", "Aceptado con reparos leves"
    REJECTED = "RCH", "Rechazado"


ACCEPTED_STATUSES = (
    DocumentStatus.ACCEPTED,
    DocumentStatus.OBJECTIONS,
    DocumentStatus.LIGHT_OBJECTIONS,
)


class ReceivedDocument(models.Model):
    """One DTE of an envelope: what QueryEstDte and the boleta estado answer from, once its
    envelope is ready."""

    envelope = models.ForeignKey(
        ReceivedEnvelope, on_delete=models.CASCADE, related_name="documents"
    )
    rut_emisor = models.CharField(max_length=12)
    tipo_dte = models.PositiveSmallIntegerField()
    folio = models.PositiveBigIntegerField()
    fecha_emision = models.DateField(null=True, blank=True)
    rut_receptor = models.CharField(max_length=12, blank=True)
    monto_total = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=3, choices=DocumentStatus)
    glosa = models.TextField(blank=True)
    # [{"seccion", "linea", "nivel", "codigo", "descripcion", "detalle"}, …] as the boletas API
    errors = models.JSONField(default=list)
    # When the SII received it, if not when its envelope came in: a supplier's document recorded
    # by rcv.register_supplier_document, or one aged by _control/reception (the RCV's 8 days).
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "documento recibido"
        verbose_name_plural = "documentos recibidos"
        indexes = [models.Index(fields=["rut_emisor", "tipo_dte", "folio"])]

    def __str__(self) -> str:
        return f"{self.rut_emisor} {self.tipo_dte} {self.folio} {self.status}"


class RcvAction(models.TextChoices):
    """What a receptor records in the RCV (ingresarAceptacionReclamoDoc's accionDoc)."""

    ACD = "ACD", "Acepta Contenido del Documento"
    RCD = "RCD", "Reclamo al Contenido del Documento"
    ERM = "ERM", "Otorga Recibo de Mercaderías o Servicios"
    RFP = "RFP", "Reclamo por Falta Parcial de Mercaderías"
    RFT = "RFT", "Reclamo por Falta Total de Mercaderías"


class RcvEvent(models.Model):
    """An acceptance or claim recorded on a received document (dte/sandbox/rcv.py): what
    listarEventosHistDoc lists. The SII never records the same event twice on a document."""

    document = models.ForeignKey(
        ReceivedDocument, on_delete=models.CASCADE, related_name="rcv_events"
    )
    code = models.CharField(max_length=3, choices=RcvAction)
    rut_responsable = models.CharField(max_length=12)  # the token's holder
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "evento RCV"
        verbose_name_plural = "eventos RCV"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["document", "code"], name="rcv_event_once_per_document")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.rut_responsable}"


class Fault(models.Model):
    """A pending simulated failure: the next `remaining` calls of `operation` misbehave."""

    operation = models.CharField(max_length=40)  # getSeed, …, the RCV operations or "*" (faults.py)
    kind = models.CharField(max_length=10)  # timeout, slow, html503, http500, lost, … (faults.py)
    remaining = models.PositiveIntegerField(default=1)
    code = models.CharField(max_length=4, blank=True)
    glosa = models.TextField(blank=True)
    per_document = models.BooleanField(default=False)  # reject: documents, not the envelope
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "falla simulada"
        verbose_name_plural = "fallas simuladas"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.operation} {self.kind} ×{self.remaining}"
