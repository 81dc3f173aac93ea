from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from erp.doctypes import (
    FOREIGN_RECEIVER_RUT,
    IND_TRASLADO_LABELS,
    IVA_NO_RECUPERABLE_CODES,
    PURCHASE_TYPES,
    TIPO_DESPACHO_LABELS,
    CodRef,
    FormaPago,
    TipoDte,
)
from erp.rut import InvalidRut, normalize_rut


def validate_rut(value: str) -> None:
    from django.core.exceptions import ValidationError

    try:
        canonical = normalize_rut(value)
    except InvalidRut as exc:
        raise ValidationError(str(exc), code="invalid_rut") from exc
    if canonical != value:
        raise ValidationError("El RUT debe guardarse normalizado (76086428-5).", code="rut_format")


class RutField(models.CharField):
    """A RUT stored canonical: digits, hyphen, check digit (`76086428-5`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 10)
        kwargs.setdefault("validators", [validate_rut])
        super().__init__(*args, **kwargs)


class SiiEnvironment(models.TextChoices):
    SANDBOX = "sandbox", "SII de pruebas local"
    CERTIFICATION = "certification", "Certificación (maullin)"
    PRODUCTION = "production", "Producción (palena)"


class Role(models.TextChoices):
    ADMIN = "admin", "Administrador"
    ACCOUNTANT = "accountant", "Contador"
    CLERK = "clerk", "Operador"
    VIEWER = "viewer", "Consulta"


def default_sii_environment() -> str:
    """A new company starts in the first environment the deployment allows (the sandbox on a
    laptop, certification on a production deployment)."""
    return settings.SII_ENVIRONMENTS[0]


class Company(models.Model):
    """An issuer: the company whose DTEs this system signs and sends."""

    rut = RutField("RUT", unique=True)
    razon_social = models.CharField("razón social", max_length=100)
    giro = models.CharField(max_length=80)
    actecos = models.JSONField(
        "códigos de actividad económica",
        default=list,
        help_text="De 1 a 4 códigos Acteco del SII (6 dígitos).",
    )
    direccion = models.CharField("dirección", max_length=70)
    comuna = models.CharField(max_length=20)
    ciudad = models.CharField(max_length=20, blank=True)
    cdg_sii_sucur = models.PositiveIntegerField(
        "código de sucursal SII", null=True, blank=True, validators=[MaxValueValidator(999999999)]
    )
    email = models.EmailField("correo", blank=True)
    telefono = models.CharField("teléfono", max_length=20, blank=True)
    resolution_number = models.PositiveIntegerField("número de resolución SII", default=0)
    resolution_date = models.DateField("fecha de resolución SII", null=True, blank=True)
    sii_unidad_regional = models.CharField(
        "unidad regional del SII",
        max_length=40,
        default="SANTIAGO CENTRO",
        help_text="Se imprime bajo el recuadro: «S.I.I. - <unidad regional>».",
    )
    sii_environment = models.CharField(
        "ambiente SII",
        max_length=16,
        choices=SiiEnvironment,
        default=default_sii_environment,
        help_text="El SII con el que habla la empresa: sus servidores, tokens y llaves de CAF.",
    )
    logo = models.ImageField(upload_to="logos/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "empresa"
        verbose_name_plural = "empresas"
        ordering = ["razon_social"]

    def __str__(self) -> str:
        return f"{self.razon_social} ({self.rut})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        codes = self.actecos or []
        if not isinstance(codes, list) or not 1 <= len(codes) <= 4:
            raise ValidationError(
                {"actecos": "Indique entre 1 y 4 códigos de actividad económica."}
            )
        for code in codes:
            if not (isinstance(code, int) and 1 <= code <= 999999):
                raise ValidationError({"actecos": f"Código de actividad inválido: {code!r}."})
        if self.sii_environment not in settings.SII_ENVIRONMENTS:
            allowed = ", ".join(SiiEnvironment(e).label for e in settings.SII_ENVIRONMENTS)
            raise ValidationError(
                {"sii_environment": f"Esta instalación solo habla con: {allowed}."}
            )


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField("rol", max_length=16, choices=Role, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "membresía"
        verbose_name_plural = "membresías"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "company"], name="membership_unique_user_company"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.company.rut} ({self.get_role_display()})"


class Audited(models.Model):
    """Who created and last changed a row, and when; the full history is in AuditEvent."""

    created_at = models.DateTimeField("creado", auto_now_add=True)
    updated_at = models.DateTimeField("modificado", auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        abstract = True


class Partner(Audited):
    """A customer or supplier (receptor or emisor of the other side)."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="partners")
    rut = RutField("RUT")
    razon_social = models.CharField("razón social", max_length=100)
    giro = models.CharField(max_length=40, blank=True)
    direccion = models.CharField("dirección", max_length=70, blank=True)
    comuna = models.CharField(max_length=20, blank=True)
    ciudad = models.CharField(max_length=20, blank=True)
    email_dte = models.EmailField("correo de intercambio DTE", blank=True)
    contacto = models.CharField(max_length=80, blank=True)
    telefono = models.CharField("teléfono", max_length=20, blank=True)
    # A customer abroad (RUT 55.555.555-5): Receptor/Extranjero of an export.
    num_id = models.CharField(
        "N° de identificación extranjero",
        max_length=20,
        blank=True,
        help_text="Solo clientes extranjeros (RUT 55.555.555-5): su identificación tributaria.",
    )
    nacionalidad = models.CharField(
        "nacionalidad",
        max_length=3,
        blank=True,
        help_text="Solo clientes extranjeros: país, con el código de Aduana.",
    )
    is_customer = models.BooleanField("cliente", default=True)
    is_supplier = models.BooleanField("proveedor", default=False)

    class Meta:
        verbose_name = "cliente/proveedor"
        verbose_name_plural = "clientes y proveedores"
        ordering = ["razon_social"]
        # The partner list and pickers: one company's partners by name (issue 18).
        indexes = [models.Index(fields=["company", "razon_social"], name="partner_company_name")]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "rut"],
                condition=~models.Q(rut=FOREIGN_RECEIVER_RUT),
                name="partner_unique_company_rut",
            ),
            # Customers abroad share the RUT 55.555.555-5: told apart by name and NumId.
            models.UniqueConstraint(
                fields=["company", "razon_social", "num_id"],
                condition=models.Q(rut=FOREIGN_RECEIVER_RUT),
                name="partner_unique_company_foreign",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.razon_social} ({self.rut})"


class Product(Audited):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="products")
    code = models.CharField("código", max_length=35)
    name = models.CharField("nombre", max_length=80)
    description = models.TextField("descripción", max_length=1000, blank=True)
    unit = models.CharField("unidad", max_length=4, blank=True, default="UN")
    unit_price = models.DecimalField(
        "precio unitario", max_digits=18, decimal_places=6, validators=[MinValueValidator(0)]
    )
    is_exempt = models.BooleanField("exento", default=False)
    is_active = models.BooleanField("activo", default=True)

    class Meta:
        verbose_name = "producto o servicio"
        verbose_name_plural = "productos y servicios"
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["company", "code"], name="product_unique_company_code")
        ]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"


class DocumentState(models.TextChoices):
    DRAFT = "draft", "Borrador"
    ISSUED = "issued", "Emitido"


class AdjustmentType(models.TextChoices):
    PERCENT = "%", "Porcentaje"
    AMOUNT = "$", "Monto"


class SalesDocument(Audited):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="sales_documents")
    tipo_dte = models.PositiveSmallIntegerField(
        "tipo de documento", choices=[(t.value, f"{t.value} · {t.label}") for t in TipoDte]
    )
    state = models.CharField(
        "estado", max_length=16, choices=DocumentState, default=DocumentState.DRAFT
    )
    folio = models.PositiveBigIntegerField(null=True, blank=True)
    fecha_emision = models.DateField("fecha de emisión")
    fecha_vencimiento = models.DateField("fecha de vencimiento", null=True, blank=True)
    forma_pago = models.PositiveSmallIntegerField(
        "forma de pago",
        choices=[
            (FormaPago.CONTADO, "Contado"),
            (FormaPago.CREDITO, "Crédito"),
            (FormaPago.SIN_COSTO, "Sin costo"),
        ],
        null=True,
        blank=True,
    )
    partner = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sales_documents",
        verbose_name="receptor",
    )
    global_discount_type = models.CharField(
        "tipo de descuento global", max_length=1, choices=AdjustmentType, blank=True
    )
    global_discount_value = models.DecimalField(
        "descuento global", max_digits=18, decimal_places=2, default=0
    )
    global_surcharge_type = models.CharField(
        "tipo de recargo global", max_length=1, choices=AdjustmentType, blank=True
    )
    global_surcharge_value = models.DecimalField(
        "recargo global", max_digits=18, decimal_places=2, default=0
    )
    notes = models.TextField("observaciones", blank=True)
    # Guías de despacho (52): why the goods move, who carries them, and where to.
    ind_traslado = models.PositiveSmallIntegerField(
        "motivo del traslado",
        choices=[(k.value, f"{k.value} · {v}") for k, v in IND_TRASLADO_LABELS.items()],
        null=True,
        blank=True,
    )
    tipo_despacho = models.PositiveSmallIntegerField(
        "tipo de despacho",
        choices=[(k.value, v) for k, v in TIPO_DESPACHO_LABELS.items()],
        null=True,
        blank=True,
    )
    patente = models.CharField("patente del vehículo", max_length=8, blank=True)
    rut_transportista = RutField("RUT del transportista", blank=True)
    rut_chofer = RutField("RUT del chofer", blank=True)
    nombre_chofer = models.CharField("nombre del chofer", max_length=30, blank=True)
    dir_destino = models.CharField("dirección de destino", max_length=70, blank=True)
    comuna_destino = models.CharField("comuna de destino", max_length=20, blank=True)
    ciudad_destino = models.CharField("ciudad de destino", max_length=20, blank=True)
    # Exports (110–112): the operation's currency and its rate, and the customs data (Aduana).
    moneda = models.CharField(
        "moneda", max_length=30, blank=True, help_text="Exportaciones: TpoMoneda (DOLAR USA…)."
    )
    tipo_cambio = models.DecimalField(
        "tipo de cambio",
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Pesos por unidad de la moneda (Banco Central, a la fecha de emisión).",
    )
    forma_pago_exportacion = models.PositiveSmallIntegerField(
        "forma de pago de exportación", null=True, blank=True
    )
    ind_servicio = models.PositiveSmallIntegerField(
        "indicador de servicio",
        null=True,
        blank=True,
        choices=[
            (3, "3 · Servicios calificados por Aduana"),
            (4, "4 · Servicios de hotelería"),
            (5, "5 · Transporte terrestre internacional"),
        ],
    )
    aduana = models.JSONField("datos de Aduana", default=dict, blank=True)
    monto_total_moneda = models.DecimalField(
        "total en la moneda", max_digits=18, decimal_places=4, null=True, blank=True
    )
    # Totals are derived by erp.totals and stored so that lists and SQL aggregates need no Python.
    monto_neto = models.BigIntegerField(default=0)
    monto_exento = models.BigIntegerField(default=0)
    tasa_iva = models.PositiveSmallIntegerField(default=0)
    iva = models.BigIntegerField(default=0)
    iva_retenido = models.BigIntegerField(default=0)
    monto_total = models.BigIntegerField(default=0)
    # Liquidación factura (43): the commissions' sums (Totales/Comisiones), which MntTotal
    # subtracts; the commission's IVA is the comisionista's débito in the F29 (box 501).
    comision_neto = models.BigIntegerField("comisión neta", default=0)
    comision_exento = models.BigIntegerField("comisión exenta", default=0)
    comision_iva = models.BigIntegerField("IVA de la comisión", default=0)
    issued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "documento de venta"
        verbose_name_plural = "documentos de venta"
        ordering = ["-fecha_emision", "-id"]
        indexes = [
            models.Index(fields=["company", "tipo_dte", "state", "fecha_emision"]),
            # Issue 18: one company's documents newest first (the API list, "Documentos", the
            # dashboard's recent ones: a LIMIT without a sort) and a period of them (the
            # dashboard's month and chart, the F29's sales, the books) without a type filter.
            models.Index(
                fields=["company", "-fecha_emision", "-id"], name="salesdoc_company_fecha"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "tipo_dte", "folio"],
                condition=models.Q(folio__isnull=False),
                name="sales_document_unique_folio",
            )
        ]

    def __str__(self) -> str:
        number = f"N° {self.folio}" if self.folio else f"borrador #{self.pk}"
        return f"{self.get_tipo_dte_display()} {number}"

    @property
    def tipo(self) -> TipoDte:
        return TipoDte(self.tipo_dte)

    @property
    def is_draft(self) -> bool:
        return self.state == DocumentState.DRAFT


class SalesDocumentLine(models.Model):
    document = models.ForeignKey(SalesDocument, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveSmallIntegerField("N° línea")
    product = models.ForeignKey(
        Product,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="producto",
    )
    name = models.CharField("nombre", max_length=80)
    description = models.TextField("descripción", max_length=1000, blank=True)
    quantity = models.DecimalField("cantidad", max_digits=18, decimal_places=6)
    unit = models.CharField("unidad", max_length=4, blank=True)
    unit_price = models.DecimalField("precio unitario", max_digits=18, decimal_places=6)
    discount_pct = models.DecimalField(
        "descuento %",
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    is_exempt = models.BooleanField("exento", default=False)
    tipo_doc_liq = models.CharField(
        "tipo de documento liquidado",
        max_length=3,
        blank=True,
        help_text="Liquidación factura: TpoDocLiq, el tipo del documento de venta liquidado "
        "(33, 39, 61…) o 99 para anticipos y otras operaciones.",
    )
    discount_amount = models.BigIntegerField(default=0)
    amount = models.BigIntegerField("monto", default=0)
    amount_moneda = models.DecimalField(
        "monto en la moneda", max_digits=18, decimal_places=4, null=True, blank=True
    )

    class Meta:
        ordering = ["line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "line_number"], name="sales_line_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.line_number}. {self.name}"


class CommissionKind(models.TextChoices):
    """TipoMovim of a liquidación factura's Comisiones line."""

    COMISION = "C", "Comisión"
    OTROS_CARGOS = "O", "Otros cargos"


class SalesDocumentCommission(models.Model):
    """One Comisiones line of a liquidación factura (43): what the comisionista charges."""

    document = models.ForeignKey(
        SalesDocument, on_delete=models.CASCADE, related_name="commissions"
    )
    line_number = models.PositiveSmallIntegerField("N° comisión")
    tipo_movim = models.CharField(
        "tipo", max_length=1, choices=CommissionKind, default=CommissionKind.COMISION
    )
    glosa = models.CharField("glosa", max_length=60)
    tasa = models.DecimalField("tasa %", max_digits=5, decimal_places=2, null=True, blank=True)
    neto = models.BigIntegerField("neto")
    exento = models.BigIntegerField("exento", default=0)
    iva = models.BigIntegerField("IVA", default=0)

    class Meta:
        ordering = ["line_number"]
        verbose_name = "comisión"
        verbose_name_plural = "comisiones"
        constraints = [
            models.UniqueConstraint(
                fields=["document", "line_number"], name="sales_commission_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.line_number}. {self.glosa}"


class SalesDocumentReference(models.Model):
    document = models.ForeignKey(SalesDocument, on_delete=models.CASCADE, related_name="references")
    line_number = models.PositiveSmallIntegerField("N° referencia")
    tipo_doc_ref = models.CharField("tipo de documento referenciado", max_length=3)
    folio_ref = models.CharField("folio referenciado", max_length=18)
    rut_otr = RutField(
        "RUT del emisor referenciado",
        blank=True,
        help_text="Solo si el documento referenciado lo emitió otro contribuyente (RUTOtr).",
    )
    fecha_ref = models.DateField("fecha del documento referenciado")
    cod_ref = models.PositiveSmallIntegerField(
        "código de referencia",
        choices=[
            (CodRef.ANULA, "1 · Anula documento"),
            (CodRef.CORRIGE_TEXTO, "2 · Corrige texto"),
            (CodRef.CORRIGE_MONTOS, "3 · Corrige montos"),
        ],
        null=True,
        blank=True,
    )
    razon_ref = models.CharField("razón", max_length=90, blank=True)

    class Meta:
        ordering = ["line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "line_number"], name="sales_reference_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"Ref. {self.tipo_doc_ref} N° {self.folio_ref}"


class AuditEvent(models.Model):
    """One change to an audited row: who, when, what, and the changed values."""

    class Action(models.TextChoices):
        CREATE = "create", "Creación"
        UPDATE = "update", "Modificación"
        DELETE = "delete", "Eliminación"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=8, choices=Action)
    entity = models.CharField(max_length=40)
    entity_id = models.PositiveBigIntegerField()
    entity_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "evento de auditoría"
        verbose_name_plural = "auditoría"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["company", "entity", "entity_id"])]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.entity} {self.entity_repr}"


class PurchaseState(models.TextChoices):
    """Where a received document stands in the SII's purchase register (RCV)."""

    REGISTRO = "registro", "Registro"
    PENDIENTE = "pendiente", "Pendiente"
    NO_INCLUIR = "no_incluir", "No incluir"
    RECLAMADO = "reclamado", "Reclamado"


class PurchaseSource(models.TextChoices):
    MANUAL = "manual", "Ingresado"
    RCV = "rcv", "Importado del RCV"
    DTE = "dte", "DTE recibido"


class PurchaseDocument(Audited):
    """A document received from a supplier (or a customs DIN): the purchase book. Only those in
    "registro" give VAT credit in the F29."""

    company = models.ForeignKey(
        Company, on_delete=models.PROTECT, related_name="purchase_documents"
    )
    tipo_doc = models.PositiveSmallIntegerField(
        "tipo de documento", choices=[(k, f"{k} · {v}") for k, v in PURCHASE_TYPES.items()]
    )
    folio = models.PositiveBigIntegerField()
    partner = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        related_name="purchase_documents",
        verbose_name="proveedor",
    )
    rut_emisor = RutField(
        "RUT del proveedor"
    )  # the partner's, kept here for matching and uniqueness
    fecha = models.DateField("fecha del documento")
    periodo = models.DateField(
        "período tributario", help_text="Primer día del mes en que se declara."
    )
    estado = models.CharField(
        "estado en el RCV", max_length=12, choices=PurchaseState, default=PurchaseState.REGISTRO
    )
    source = models.CharField("origen", max_length=8, choices=PurchaseSource, default="manual")
    monto_exento = models.BigIntegerField("monto exento", default=0)
    monto_neto = models.BigIntegerField("monto neto", default=0)
    iva_recuperable = models.BigIntegerField("IVA recuperable", default=0)
    iva_no_recuperable = models.BigIntegerField("IVA no recuperable", default=0)
    codigo_iva_no_rec = models.CharField(
        "código IVA no recuperable",
        max_length=1,
        blank=True,
        choices=list(IVA_NO_RECUPERABLE_CODES.items()),
    )
    iva_uso_comun = models.BigIntegerField("IVA de uso común", default=0)
    is_fixed_asset = models.BooleanField("activo fijo", default=False)
    otros_impuestos = models.BigIntegerField("otros impuestos", default=0)
    monto_total = models.BigIntegerField("monto total", default=0)
    notes = models.TextField("observaciones", blank=True)

    class Meta:
        verbose_name = "documento de compra"
        verbose_name_plural = "documentos de compra"
        ordering = ["-fecha", "-id"]
        indexes = [
            models.Index(fields=["company", "periodo", "estado", "tipo_doc"]),
            # Issue 18: the purchase book's list (API and page), newest first.
            models.Index(fields=["company", "-fecha", "-id"], name="purchase_company_fecha"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "tipo_doc", "folio", "rut_emisor"],
                name="purchase_document_unique_key",
            )
        ]

    def __str__(self) -> str:
        name = PURCHASE_TYPES.get(self.tipo_doc, str(self.tipo_doc))
        return f"{name} N° {self.folio} de {self.rut_emisor}"


class PurchaseDocumentLine(models.Model):
    """A line of a purchase booked from a received DTE (its Detalle)."""

    document = models.ForeignKey(PurchaseDocument, on_delete=models.CASCADE, related_name="lines")
    numero = models.PositiveSmallIntegerField("N°")
    nombre = models.CharField("ítem", max_length=80)
    descripcion = models.TextField("descripción", blank=True)
    cantidad = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    unidad = models.CharField(max_length=4, blank=True)
    precio = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    descuento = models.BigIntegerField(default=0)
    monto = models.BigIntegerField()
    exento = models.BooleanField(default=False)

    class Meta:
        ordering = ["document", "numero"]
        verbose_name = "línea de compra"
        verbose_name_plural = "líneas de compra"

    def __str__(self) -> str:
        return f"{self.numero}. {self.nombre}"


class PurchaseDocumentReference(models.Model):
    """A reference of a purchase (its Referencia): a nota's to the factura it adjusts."""

    document = models.ForeignKey(
        PurchaseDocument, on_delete=models.CASCADE, related_name="references"
    )
    tipo = models.CharField("tipo referido", max_length=3)
    folio = models.CharField("folio referido", max_length=18, blank=True)
    fecha = models.DateField("fecha referida", null=True, blank=True)
    codigo = models.PositiveSmallIntegerField("código", null=True, blank=True)
    razon = models.CharField("razón", max_length=90, blank=True)
    referenced = models.ForeignKey(
        PurchaseDocument,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="adjusted_by",
        verbose_name="compra ajustada",
    )

    class Meta:
        verbose_name = "referencia de compra"
        verbose_name_plural = "referencias de compra"

    def __str__(self) -> str:
        return f"{self.tipo} N° {self.folio}"


class ClosedPeriod(models.Model):
    """A month whose F29 was filed: documents dated in it are frozen until it is reopened."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="closed_periods")
    periodo = models.DateField("período", help_text="Primer día del mes.")
    closed_at = models.DateTimeField(auto_now_add=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "período cerrado"
        verbose_name_plural = "períodos cerrados"
        constraints = [
            models.UniqueConstraint(fields=["company", "periodo"], name="closed_period_unique")
        ]

    def __str__(self) -> str:
        return f"{self.periodo:%m-%Y}"
