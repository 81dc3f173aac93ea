from django.conf import settings
from django.db import models
from django.db.models import F, Q

from dte.core.domain import DteStatus, EnvelopeState
from erp.doctypes import TipoDte
from erp.models import Company, RutField, SalesDocument

TIPO_CHOICES = [(t.value, f"{t.value} · {t.label}") for t in TipoDte]
STATUS_LABELS = {
    DteStatus.SIGNED: "Firmado",
    DteStatus.QUEUED: "En cola para el SII",
    DteStatus.SENT: "Enviado al SII",
    DteStatus.ACCEPTED: "Aceptado por el SII",
    DteStatus.ACCEPTED_WITH_OBJECTIONS: "Aceptado con reparos",
    DteStatus.REJECTED: "Rechazado por el SII",
    DteStatus.NEEDS_ATTENTION: "Requiere atención",
}


class SandboxAuthority(models.Model):
    """The local SII sandbox's own CAF-signing key (test material, encrypted like any secret)."""

    idk = models.PositiveIntegerField(unique=True)
    private_key_encrypted = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "autoridad del SII de pruebas"
        verbose_name_plural = "autoridad del SII de pruebas"

    def __str__(self) -> str:
        return f"SII sandbox IDK {self.idk}"

    def private_key(self):
        from cryptography.hazmat.primitives import serialization

        from dte import vault

        return serialization.load_pem_private_key(vault.decrypt(self.private_key_encrypted), None)


class IssuerSettings(models.Model):
    """DTE settings of one issuer."""

    company = models.OneToOneField(Company, on_delete=models.CASCADE, related_name="dte_settings")
    caf_low_threshold = models.PositiveIntegerField(
        "aviso de folios bajos", default=50, help_text="Avisar cuando queden menos folios."
    )

    class Meta:
        verbose_name = "configuración DTE"
        verbose_name_plural = "configuraciones DTE"

    def __str__(self) -> str:
        return f"DTE · {self.company.rut}"


class Certificate(models.Model):
    """A digital certificate (PKCS#12) that signs for the company; file and password encrypted."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="certificates")
    holder_name = models.CharField("titular", max_length=200)
    holder_rut = RutField("RUT del titular")
    not_before = models.DateTimeField("válido desde")
    not_after = models.DateTimeField("válido hasta")
    fingerprint = models.CharField("huella SHA-256", max_length=64)
    pfx_encrypted = models.BinaryField(editable=False)
    password_encrypted = models.BinaryField(editable=False)
    allowed_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="+",
        verbose_name="usuarios autorizados",
        help_text="Vacío: cualquier usuario de la empresa que pueda emitir.",
    )
    is_active = models.BooleanField("activo", default=True)
    is_test = models.BooleanField("material de prueba", default=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "certificado digital"
        verbose_name_plural = "certificados digitales"
        ordering = ["-not_after"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "fingerprint"], name="certificate_unique_per_company"
            )
        ]

    def __str__(self) -> str:
        return f"{self.holder_name} ({self.holder_rut}) hasta {self.not_after:%d-%m-%Y}"


class Caf(models.Model):
    """A range of folios authorized by the SII for one company and document type."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="cafs")
    tipo_dte = models.PositiveSmallIntegerField("tipo de documento", choices=TIPO_CHOICES)
    folio_desde = models.PositiveBigIntegerField("desde")
    folio_hasta = models.PositiveBigIntegerField("hasta")
    next_folio = models.PositiveBigIntegerField("próximo folio")
    fecha_autorizacion = models.DateField("fecha de autorización")
    expires_on = models.DateField("vence", null=True, blank=True)
    idk = models.PositiveIntegerField("IDK")
    caf_xml = models.BinaryField(editable=False)  # the public <CAF> element (DA + FRMA)
    file_encrypted = models.BinaryField(editable=False)  # the whole file, RSASK included
    is_test = models.BooleanField("material de prueba", default=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "CAF (rango de folios)"
        verbose_name_plural = "CAF (rangos de folios)"
        ordering = ["tipo_dte", "folio_desde"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "tipo_dte", "folio_desde"], name="caf_unique_range_start"
            ),
            models.CheckConstraint(
                condition=Q(folio_hasta__gte=F("folio_desde")), name="caf_range_ordered"
            ),
            models.CheckConstraint(
                condition=Q(next_folio__gte=F("folio_desde"))
                & Q(next_folio__lte=F("folio_hasta") + 1),
                name="caf_next_folio_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"CAF {self.tipo_dte} {self.folio_desde}-{self.folio_hasta}"

    @property
    def remaining(self) -> int:
        return self.folio_hasta - self.next_folio + 1


ENVELOPE_STATE_LABELS = {
    EnvelopeState.QUEUED: "En cola",
    EnvelopeState.UPLOADING: "Subiendo",
    EnvelopeState.UNCERTAIN: "Subido sin respuesta: consultando al SII",
    EnvelopeState.SENT: "Enviado, esperando al SII",
    EnvelopeState.PROCESSED: "Procesado por el SII",
    EnvelopeState.REJECTED: "Rechazado por el SII",
    EnvelopeState.NEEDS_ATTENTION: "Requiere atención",
    EnvelopeState.SUPERSEDED: "Reemplazado por otro sobre",
}


class Envelope(models.Model):
    """An EnvioDTE or EnvioBOLETA as signed and validated; the outbox row for sending.

    Its states and their allowed transitions are dte.core.domain.EnvelopeState and
    ENVELOPE_TRANSITIONS; dte.sending moves it and records each step as an EnvelopeEvent.
    """

    class Kind(models.TextChoices):
        ENVIO_DTE = "EnvioDTE", "EnvioDTE"
        ENVIO_BOLETA = "EnvioBOLETA", "EnvioBOLETA"

    Status = EnvelopeState

    company = models.ForeignKey(
        Company, on_delete=models.PROTECT, related_name="envelopes", verbose_name="empresa"
    )
    kind = models.CharField("tipo de sobre", max_length=16, choices=Kind)
    xml = models.BinaryField(editable=False)
    rut_receptor = RutField("RUT receptor del sobre", default="60803000-K")
    certificate = models.ForeignKey(
        Certificate, on_delete=models.PROTECT, related_name="envelopes", verbose_name="certificado"
    )
    track_id = models.CharField("track id del SII", max_length=32, blank=True)
    status = models.CharField(
        "estado",
        max_length=16,
        choices=[(s.value, ENVELOPE_STATE_LABELS[s]) for s in EnvelopeState],
        default=EnvelopeState.QUEUED,
    )
    # The SII has the documents but no track id to poll (an upload it had already received,
    # or an envelope it reported repeated): each document is followed with QueryEstDte.
    follow_documents = models.BooleanField("seguir documento por documento", default=False)
    attempts = models.PositiveIntegerField("intentos de envío", default=0)
    polls = models.PositiveIntegerField("consultas de estado", default=0)
    next_attempt_at = models.DateTimeField("próximo intento", null=True, blank=True)
    upload_started_at = models.DateTimeField("inicio de la última subida", null=True, blank=True)
    # When an upload went without answer: the SII is given until then + SII_RECOVERY_WINDOW
    # to report its documents before the same envelope is uploaded again.
    uncertain_since = models.DateTimeField("sin respuesta desde", null=True, blank=True)
    sent_at = models.DateTimeField("enviado el", null=True, blank=True)
    sii_estado = models.CharField("estado SII", max_length=16, blank=True)
    sii_glosa = models.TextField("glosa SII", blank=True)
    last_error = models.TextField("último error", blank=True)
    replaced_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replaces",
        verbose_name="reemplazado por",
    )
    created_at = models.DateTimeField("creado el", auto_now_add=True)

    class Meta:
        verbose_name = "sobre de envío"
        verbose_name_plural = "sobres de envío"
        ordering = ["-created_at", "-id"]
        indexes = [
            # Issue 18: the outbox (dte.sending.outbox_claim, the queue gauge) asks only for
            # envelopes that are not final; most rows are final (processed, superseded), so
            # the index holds the open ones alone and stays small however many were sent.
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(
                    status__in=["queued", "uploading", "uncertain", "sent", "needs_attention"]
                ),
                name="envelope_outbox_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class EnvelopeEvent(models.Model):
    """One step of an envelope in the outbox, with the SII's code and glosa when it spoke."""

    envelope = models.ForeignKey(
        Envelope, on_delete=models.CASCADE, related_name="events", verbose_name="sobre"
    )
    from_status = models.CharField("estado anterior", max_length=16, blank=True)
    status = models.CharField("estado", max_length=16)
    sii_code = models.CharField("código SII", max_length=16, blank=True)
    message = models.TextField("mensaje", blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="usuario",
    )
    at = models.DateTimeField("fecha", auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = "evento de sobre"
        verbose_name_plural = "eventos de sobre"

    def __str__(self) -> str:
        return f"{self.envelope}: {self.status_label}"

    @property
    def status_label(self) -> str:
        return ENVELOPE_STATE_LABELS.get(EnvelopeState(self.status), self.status)

    @property
    def from_status_label(self) -> str:
        if not self.from_status:
            return ""
        return ENVELOPE_STATE_LABELS.get(EnvelopeState(self.from_status), self.from_status)


def public_token() -> str:
    import secrets

    return secrets.token_urlsafe(24)


class Dte(models.Model):
    """A signed electronic tax document."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="dtes")
    sales_document = models.OneToOneField(
        SalesDocument, on_delete=models.PROTECT, related_name="dte", null=True, blank=True
    )
    tipo_dte = models.PositiveSmallIntegerField("tipo", choices=TIPO_CHOICES)
    folio = models.PositiveBigIntegerField()
    caf = models.ForeignKey(Caf, on_delete=models.PROTECT, related_name="dtes")
    envelope = models.ForeignKey(
        Envelope, on_delete=models.SET_NULL, null=True, blank=True, related_name="dtes"
    )
    fecha_emision = models.DateField()
    rut_receptor = RutField()
    monto_total = models.BigIntegerField()
    xml = models.BinaryField(editable=False)  # the DTE alone, ISO-8859-1 with its declaration
    signature_value = models.TextField(editable=False)
    ted = models.BinaryField(editable=False)  # for the PDF417 barcode
    # The QR's public verification link: unguessable, one per document.
    public_token = models.CharField(max_length=40, unique=True, default=public_token)
    pdf = models.BinaryField(null=True, blank=True, editable=False)
    pdf_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        "estado", max_length=32, choices=[(s.value, STATUS_LABELS[s]) for s in DteStatus]
    )
    # Issued one by one, waiting for the next shared envelope (dte.services.envelope_collect).
    # Documents signed without it (a certification set, a batch's fallback) are enveloped by
    # whoever signed them, and only the beat's stranded sweep takes them if that fails.
    collect = models.BooleanField("espera sobre compartido", default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "DTE"
        verbose_name_plural = "DTE"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "tipo_dte", "folio"], name="dte_unique_folio"
            )
        ]
        indexes = [
            models.Index(fields=["company", "status"]),
            # Issue 18: the API's DTE list, one company's newest first.
            models.Index(fields=["company", "-created_at", "-id"], name="dte_company_recent"),
            # (The beat tick's stranded documents, signed and without an envelope, are found
            # through the envelope's own index: `envelope_id IS NULL` is an index search.)
        ]

    def __str__(self) -> str:
        return f"DTE {self.tipo_dte} N° {self.folio}"

    @property
    def filename(self) -> str:
        rut = self.company.rut
        return f"DTE--{rut}--{self.tipo_dte}--{self.folio}.xml"

    def signed_element(self) -> str:
        """The DTE element exactly as signed: the stored file without its XML declaration."""
        text = bytes(self.xml).decode("iso-8859-1")
        return text[text.index("<DTE") :]


class DteEventKind(models.TextChoices):
    """What an event row records: the state it moved to, a step that left the state as it was
    (a failed attempt, a poll still in progress), or the e-mail to the receiver."""

    STATE = "state", "Cambio de estado"
    NOTE = "note", "Aviso"
    EMAIL = "email", "Enviado por correo"
    EMAIL_FAILED = "email_failed", "Correo no enviado"


class DteEvent(models.Model):
    """One step in a DTE's life, with the SII's own words when it was the SII that spoke.
    `status` is the document's state after the step; `kind` says what the step was, so that an
    e-mail row does not read as the SII's verdict."""

    dte = models.ForeignKey(Dte, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(
        "estado", max_length=32, choices=[(s.value, STATUS_LABELS[s]) for s in DteStatus]
    )
    kind = models.CharField(
        "tipo de evento", max_length=16, choices=DteEventKind, default=DteEventKind.STATE
    )
    sii_code = models.CharField("código SII", max_length=16, blank=True)
    message = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = "evento DTE"
        verbose_name_plural = "eventos DTE"

    def __str__(self) -> str:
        return f"{self.dte} → {self.status_label}"

    @property
    def status_label(self) -> str:
        """What the history's "Estado" column says: the state for a state change or a note,
        what happened for an e-mail (whom it went to is in the message)."""
        if self.kind in (DteEventKind.EMAIL, DteEventKind.EMAIL_FAILED):
            return DteEventKind(self.kind).label
        try:
            return STATUS_LABELS[DteStatus(self.status)]
        except ValueError:
            return "Estado desconocido"


# --- Receiving: suppliers' DTEs (DOMAIN.md §12) --------------------------------------------


class MailboxSecurity(models.TextChoices):
    SSL = "ssl", "SSL/TLS (IMAPS, puerto 993)"
    STARTTLS = "starttls", "STARTTLS (puerto 143)"
    NONE = "none", "Sin cifrado (solo red local)"


class ExchangeMailbox(models.Model):
    """The company's "correo de intercambio": where suppliers mail their DTEs, read over IMAP."""

    company = models.OneToOneField(
        Company, on_delete=models.CASCADE, related_name="exchange_mailbox"
    )
    address = models.EmailField(
        "correo de intercambio",
        blank=True,
        help_text="La dirección registrada en el SII; se usa como remitente de las respuestas.",
    )
    host = models.CharField("servidor IMAP", max_length=200)
    port = models.PositiveIntegerField("puerto", default=993)
    security = models.CharField(
        "seguridad", max_length=8, choices=MailboxSecurity, default=MailboxSecurity.SSL
    )
    username = models.CharField("usuario", max_length=200)
    password_encrypted = models.BinaryField(editable=False)
    folder = models.CharField("carpeta", max_length=200, default="INBOX")
    is_active = models.BooleanField("activa", default=True)
    last_polled_at = models.DateTimeField("última revisión", null=True, blank=True)
    last_error = models.TextField("último error", blank=True)

    class Meta:
        verbose_name = "casilla de intercambio"
        verbose_name_plural = "casillas de intercambio"

    def __str__(self) -> str:
        return f"{self.username}@{self.host} ({self.company.rut})"


class IntakeSource(models.TextChoices):
    MAIL = "mail", "Correo de intercambio"
    UPLOAD = "upload", "Subido en la web"
    API = "api", "API"
    COMMAND = "command", "Línea de comandos"


class ReceivedEnvelope(models.Model):
    """One file a supplier sent (an EnvioDTE or a lone DTE), as taken in, with the
    RecepcionEnvio answer (RespuestaDTE) it got."""

    company = models.ForeignKey(
        Company, on_delete=models.PROTECT, related_name="received_envelopes"
    )
    source = models.CharField("origen", max_length=8, choices=IntakeSource)
    name = models.CharField("archivo", max_length=255)
    sha256 = models.CharField(max_length=64)
    kind = models.CharField("tipo de archivo", max_length=16)
    envio_id = models.CharField("ID del envío", max_length=80, blank=True)
    digest = models.CharField(max_length=100, blank=True)
    rut_emisor = models.CharField("RUT emisor", max_length=12, blank=True)
    rut_envia = models.CharField("RUT de quien envía", max_length=12, blank=True)
    sender_email = models.CharField("remitente", max_length=254, blank=True)
    message_id = models.CharField("Message-ID", max_length=998, blank=True)
    estado_recep_env = models.PositiveSmallIntegerField("EstadoRecepEnv")
    glosa = models.TextField("glosa", blank=True)
    xml = models.BinaryField(editable=False)
    response_xml = models.BinaryField("RespuestaDTE", null=True, blank=True, editable=False)
    response_sent_at = models.DateTimeField("respuesta enviada", null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField("recibido", auto_now_add=True)

    class Meta:
        verbose_name = "envío recibido"
        verbose_name_plural = "envíos recibidos"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "sha256"], name="received_envelope_unique_file"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.rut_emisor or '?'})"

    @property
    def response_filename(self) -> str:
        return f"RespuestaDTE--{self.company.rut}--{self.pk}.xml"


class IntakeBatchStatus(models.TextChoices):
    QUEUED = "queued", "En cola"
    RUNNING = "running", "Procesando"
    DONE = "done", "Terminado"
    FAILED = "failed", "Fallido"


def intake_upload_path(instance: "IntakeBatch", filename: str) -> str:
    return f"recibidos/{instance.company_id}/{filename}"


class IntakeBatch(models.Model):
    """A large upload (many files, a big ZIP) taken in by a task, outside the request: the
    upload is stored, the task reads it file by file and keeps the progress and the outcome
    here; the stored upload is deleted once taken in."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="intake_batches")
    source = models.CharField("origen", max_length=8, choices=IntakeSource)
    filename = models.CharField("archivo", max_length=255)
    file = models.FileField(upload_to=intake_upload_path, max_length=300, blank=True)
    size = models.PositiveBigIntegerField("tamaño (bytes)", default=0)
    status = models.CharField(
        "estado", max_length=8, choices=IntakeBatchStatus, default=IntakeBatchStatus.QUEUED
    )
    files_total = models.PositiveIntegerField("archivos", default=0)
    files_done = models.PositiveIntegerField("archivos leídos", default=0)
    documents = models.PositiveIntegerField("documentos", default=0)
    received = models.PositiveIntegerField("recibidos", default=0)
    duplicates = models.PositiveIntegerField("duplicados", default=0)
    refused = models.PositiveIntegerField("rechazados", default=0)
    outcomes = models.JSONField("resultado por documento", default=list, blank=True)
    problems = models.JSONField("problemas", default=list, blank=True)
    error = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "carga de documentos recibidos"
        verbose_name_plural = "cargas de documentos recibidos"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"

    @property
    def finished(self) -> bool:
        return self.status in (IntakeBatchStatus.DONE, IntakeBatchStatus.FAILED)

    @property
    def percent(self) -> int:
        if self.status == IntakeBatchStatus.DONE:
            return 100
        return min(99, self.files_done * 100 // self.files_total) if self.files_total else 0


class ReceivedStatus(models.TextChoices):
    RECEIVED = "received", "Recibido"
    ACCEPTED = "accepted", "Aceptado"
    CLAIMED = "claimed", "Reclamado"
    REFUSED = "refused", "Rechazado en la recepción"


class SiiConfirmation(models.TextChoices):
    PENDING = "", "Sin consultar"
    DOK = "DOK", "El SII lo tiene (DOK)"
    DNK = "DNK", "El SII lo tiene con otros datos (DNK)"
    FAU = "FAU", "El SII no lo ha recibido (FAU)"
    OTHER = "OTHER", "Otra respuesta del SII"


class CommercialResult(models.TextChoices):
    NONE = "", "Sin respuesta"
    ACCEPTED = "0", "Aceptado"
    DISCREPANCIES = "1", "Aceptado con reparos"
    REJECTED = "2", "Rechazado"


class ReceivedDte(models.Model):
    """A supplier's DTE received by the company: verified, confirmed with the SII, answered,
    accepted or claimed at the SII's RCV and, once accepted, booked as a purchase."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="received_dtes")
    envelope = models.ForeignKey(
        ReceivedEnvelope, on_delete=models.PROTECT, related_name="documents"
    )
    tipo_dte = models.PositiveSmallIntegerField("tipo")
    folio = models.PositiveBigIntegerField()
    rut_emisor = RutField("RUT emisor")
    razon_social = models.CharField("razón social del emisor", max_length=100, blank=True)
    giro = models.CharField("giro del emisor", max_length=80, blank=True)
    correo_emisor = models.CharField("correo del emisor", max_length=80, blank=True)
    fecha_emision = models.DateField("fecha de emisión")
    fecha_vencimiento = models.DateField("vencimiento", null=True, blank=True)
    monto_neto = models.BigIntegerField("neto", default=0)
    monto_exento = models.BigIntegerField("exento", default=0)
    iva = models.BigIntegerField("IVA", default=0)
    otros_impuestos = models.BigIntegerField("otros impuestos", default=0)
    monto_total = models.BigIntegerField("total")
    facts = models.JSONField("detalle y referencias", default=dict)
    xml = models.BinaryField(editable=False)  # the DTE alone, ISO-8859-1
    checks = models.JSONField("verificaciones", default=list)
    signed_form = models.CharField("forma firmada", max_length=40, blank=True)
    estado_recep_dte = models.PositiveSmallIntegerField("EstadoRecepDTE")
    reasons = models.JSONField("motivos", default=list)
    status = models.CharField(
        "estado", max_length=10, choices=ReceivedStatus, default=ReceivedStatus.RECEIVED
    )
    sii_confirmation = models.CharField(
        "confirmación del SII", max_length=5, choices=SiiConfirmation, blank=True, default=""
    )
    sii_confirmation_glosa = models.CharField(max_length=200, blank=True)
    sii_checked_at = models.DateTimeField(null=True, blank=True)
    sii_received_at = models.DateTimeField("recepción en el SII", null=True, blank=True)
    claim_deadline = models.DateTimeField("plazo para reclamar", null=True, blank=True)
    commercial_result = models.CharField(
        "respuesta comercial", max_length=1, choices=CommercialResult, blank=True, default=""
    )
    commercial_glosa = models.CharField(max_length=256, blank=True)
    result_xml = models.BinaryField("ResultadoDTE", null=True, blank=True, editable=False)
    receipt_xml = models.BinaryField("EnvioRecibos", null=True, blank=True, editable=False)
    goods_received_at = models.DateTimeField("mercaderías recibidas", null=True, blank=True)
    rcv_action = models.CharField("acción en el RCV", max_length=3, blank=True)
    tax_period = models.DateField("período tributario", null=True, blank=True)
    purchase = models.OneToOneField(
        "erp.PurchaseDocument",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="received_dte",
        verbose_name="compra",
    )
    received_at = models.DateTimeField("recibido", auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "DTE recibido"
        verbose_name_plural = "DTE recibidos"
        ordering = ["-received_at", "-id"]
        constraints = [
            # A refused copy (tampered, addressed elsewhere) never blocks the genuine one.
            models.UniqueConstraint(
                fields=["company", "rut_emisor", "tipo_dte", "folio"],
                condition=~Q(status="refused"),
                name="received_dte_unique_document",
            )
        ]
        indexes = [
            models.Index(fields=["company", "status", "received_at"]),
            # Issue 18: the inbox unfiltered, newest first (page and API).
            models.Index(fields=["company", "-received_at", "-id"], name="received_company_recent"),
            # The open ones by claim deadline: the dashboard's panel (sorted, first few), the
            # warning (a deadline range) and the `days_left` filter. Replaces (company,
            # claim_deadline), which could not select the open ones.
            models.Index(
                fields=["company", "status", "claim_deadline", "received_at"],
                name="received_open_deadline",
            ),
            # The beat's sync with the SII (receiving.sync_open): the open documents of every
            # company, a few among the accepted and claimed ones; sorted in memory (NULLS
            # FIRST, which SQLite cannot index).
            models.Index(
                fields=["sii_checked_at", "received_at"],
                condition=Q(status="received"),
                name="received_sync_due",
            ),
        ]

    def __str__(self) -> str:
        return f"DTE {self.tipo_dte} N° {self.folio} de {self.rut_emisor}"

    @property
    def filename(self) -> str:
        return f"DTE--{self.rut_emisor}--{self.tipo_dte}--{self.folio}.xml"

    def signed_element(self) -> str:
        text = bytes(self.xml).decode("iso-8859-1")
        return text[text.index("<DTE") :]


class ReceivedEventKind(models.TextChoices):
    INTAKE = "intake", "Recepción"
    SII_CHECK = "sii_check", "Consulta al SII"
    ANSWER = "answer", "Respuesta al proveedor"
    RCV = "rcv", "Registro en el SII (RCV)"
    RCV_SYNC = "rcv_sync", "Eventos en el SII"
    BOOKED = "booked", "Registro de compra"
    MAIL = "mail", "Correo"


class ReceivedDteEvent(models.Model):
    """The document's history with the SII and the supplier, with the SII's codes."""

    received_dte = models.ForeignKey(ReceivedDte, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=ReceivedEventKind)
    code = models.CharField("código", max_length=16, blank=True)
    message = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = "evento de DTE recibido"
        verbose_name_plural = "eventos de DTE recibidos"

    def __str__(self) -> str:
        return f"{self.received_dte} · {self.get_kind_display()}"


# ---------------------------------------------------------------- certification (DOMAIN.md §16)


class CertificationStatus(models.TextChoices):
    READ = "read", "Set leído"
    QUEUED = "queued", "En cola"
    RUNNING = "running", "Emitiendo"
    ISSUED = "issued", "Todo enviado"
    FAILED = "failed", "Con errores"


class CertificationRun(models.Model):
    """A set de pruebas uploaded by a company, read and planned; its sets issued and sent by a
    task outside the request, with the progress here. The file itself is kept: the plan is
    computed from it again (dte.core.certification) whenever it is needed."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="certification_runs"
    )
    filename = models.CharField("archivo", max_length=255)
    set_file = models.BinaryField("set de pruebas", editable=False)
    parsed = models.JSONField("set leído", default=dict, blank=True)
    unreadable = models.JSONField("líneas no leídas", default=list, blank=True)
    problems = models.JSONField("problemas", default=list, blank=True)
    exchange_rates = models.JSONField("tipos de cambio", default=dict, blank=True)
    status = models.CharField(
        "estado", max_length=8, choices=CertificationStatus, default=CertificationStatus.READ
    )
    cases_total = models.PositiveIntegerField("casos", default=0)
    cases_done = models.PositiveIntegerField("casos emitidos", default=0)
    error = models.TextField(blank=True)
    # The muestras impresas: a ZIP of every document's PDF (and cedible copy), built by the task.
    samples = models.BinaryField("muestras impresas", null=True, blank=True, editable=False)
    # The simulación: drafts proposed from the company's own customers and products, editable
    # like any draft, then issued together and sent in one envelope.
    simulation = models.ManyToManyField(
        SalesDocument, blank=True, related_name="+", verbose_name="simulación"
    )
    simulation_status = models.CharField(
        "estado de la simulación",
        max_length=8,
        choices=CertificationStatus,
        blank=True,
    )
    simulation_error = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "set de pruebas"
        verbose_name_plural = "sets de pruebas"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"

    @property
    def finished(self) -> bool:
        return self.status in (CertificationStatus.ISSUED, CertificationStatus.FAILED)

    @property
    def percent(self) -> int:
        if self.status == CertificationStatus.ISSUED:
            return 100
        return min(99, self.cases_done * 100 // self.cases_total) if self.cases_total else 0


class CertificationSet(models.Model):
    """One set of the file that is issued as documents, sent in its own EnvioDTE."""

    run = models.ForeignKey(CertificationRun, on_delete=models.CASCADE, related_name="sets")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField("tipo de set", max_length=20)
    name = models.CharField("nombre", max_length=120)
    title = models.CharField("título", max_length=200)
    atencion = models.CharField("número de atención", max_length=20)
    envelope = models.ForeignKey(
        Envelope, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    problems = models.JSONField("problemas", default=list, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="certification_set_position")
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.atencion})"


class CertificationCase(models.Model):
    cset = models.ForeignKey(CertificationSet, on_delete=models.CASCADE, related_name="cases")
    caso = models.CharField("caso", max_length=30)
    tipo_dte = models.PositiveSmallIntegerField("tipo de documento", choices=TIPO_CHOICES)
    document = models.ForeignKey(
        SalesDocument, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assumptions = models.JSONField("supuestos", default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["cset", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cset", "caso"], name="certification_case_unique")
        ]

    def __str__(self) -> str:
        return f"Caso {self.caso}"


class LibroKind(models.TextChoices):
    VENTA = "VENTA", "Libro de ventas"
    COMPRA = "COMPRA", "Libro de compras"
    GUIAS = "GUIAS", "Libro de guías"


class LibroStatus(models.TextChoices):
    QUEUED = "queued", "En cola para el SII"
    SENT = "sent", "Enviado, esperando al SII"
    ACCEPTED = "accepted", "Aceptado por el SII"
    REJECTED = "rejected", "Rechazado por el SII"
    NEEDS_ATTENTION = "needs_attention", "Requiere atención"


class CertificationLibro(models.Model):
    """A libro of the certification (LibroCompraVenta or LibroGuia, dte.core.libro), signed,
    uploaded to the SII like an envelope and followed to its state (LOK, or a rejection)."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="certification_libros"
    )
    run = models.ForeignKey(
        CertificationRun, on_delete=models.CASCADE, related_name="libros", null=True, blank=True
    )
    kind = models.CharField("libro", max_length=6, choices=LibroKind)
    periodo = models.CharField("período tributario", max_length=7)  # AAAA-MM
    xml = models.BinaryField(editable=False)
    certificate = models.ForeignKey(
        Certificate, on_delete=models.PROTECT, related_name="+", verbose_name="certificado"
    )
    status = models.CharField(
        "estado", max_length=16, choices=LibroStatus, default=LibroStatus.QUEUED
    )
    track_id = models.CharField("track id del SII", max_length=32, blank=True)
    sii_estado = models.CharField("estado SII", max_length=16, blank=True)
    sii_glosa = models.TextField("glosa SII", blank=True)
    attempts = models.PositiveIntegerField("intentos de envío", default=0)
    polls = models.PositiveIntegerField("consultas de estado", default=0)
    next_attempt_at = models.DateTimeField("próximo intento", null=True, blank=True)
    sent_at = models.DateTimeField("enviado el", null=True, blank=True)
    last_error = models.TextField("último error", blank=True)
    created_at = models.DateTimeField("creado el", auto_now_add=True)

    class Meta:
        verbose_name = "libro de certificación"
        verbose_name_plural = "libros de certificación"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.periodo}"

    @property
    def filename(self) -> str:
        return f"Libro--{self.company.rut}--{self.kind}--{self.periodo}.xml"
