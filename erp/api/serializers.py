from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from erp.doctypes import IND_TRASLADO_LABELS, TipoDte
from erp.models import (
    Company,
    Partner,
    Product,
    PurchaseDocument,
    SalesDocument,
    SalesDocumentCommission,
    SalesDocumentLine,
    SalesDocumentReference,
)
from erp.services import (
    COMMISSION_FIELDS,
    EXPORT_FIELDS,
    GUIA_FIELDS,
    PARTNER_FIELDS,
    PRODUCT_FIELDS,
    PURCHASE_FIELDS,
    REFERENCE_FIELDS,
)

AUDIT_FIELDS = ("created_at", "created_by", "updated_at", "updated_by")


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True})
class RelatedRefField(serializers.Field):
    """A related row by id (a JSON integer) or by natural key (a JSON string: RUT for a partner,
    code for a product). The service resolves it within the request's company."""

    default_error_messages = {"invalid": "Use un id (número) o un texto (RUT o código)."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and not data.strip():
            return None
        return data

    def to_representation(self, value):
        return getattr(value, "pk", value)


class UserNameField(serializers.CharField):
    """The username of the user who made or last changed a row: null when there is none (a row
    made by a command or an import, or whose user was deleted)."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value):
        return value.get_username() if value else None


@extend_schema_field(
    {"anyOf": [{"type": "string", "format": "email"}, {"type": "string", "maxLength": 0}]}
)
class BlankableEmailField(serializers.EmailField):
    """An e-mail address, or "" when the company has none."""


class CompanySerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    email = BlankableEmailField(read_only=True)

    class Meta:
        model = Company
        fields = (
            "id",
            "rut",
            "razon_social",
            "giro",
            "actecos",
            "direccion",
            "comuna",
            "ciudad",
            "cdg_sii_sucur",
            "email",
            "resolution_number",
            "resolution_date",
            "sii_environment",
            "role",
        )
        read_only_fields = fields

    def get_role(self, obj) -> str | None:
        return self.context.get("roles", {}).get(obj.pk)


class AuditedSerializer(serializers.ModelSerializer):
    created_by = UserNameField()
    updated_by = UserNameField()


class PartnerSerializer(AuditedSerializer):
    rut = serializers.CharField(max_length=12, help_text="RUT con o sin puntos: 76.086.428-5")

    class Meta:
        model = Partner
        fields = ("id", *PARTNER_FIELDS, *AUDIT_FIELDS)
        read_only_fields = AUDIT_FIELDS


class ProductSerializer(AuditedSerializer):
    class Meta:
        model = Product
        fields = ("id", *PRODUCT_FIELDS, *AUDIT_FIELDS)
        read_only_fields = AUDIT_FIELDS


class LineSerializer(serializers.ModelSerializer):
    product = RelatedRefField(
        allow_null=True, required=False, help_text="Id (número) o código (texto) del producto."
    )
    name = serializers.CharField(
        max_length=80, required=False, allow_blank=True, help_text="Por omisión, el del producto."
    )
    unit_price = serializers.DecimalField(
        max_digits=18, decimal_places=6, required=False, allow_null=True
    )
    is_exempt = serializers.BooleanField(required=False, allow_null=True, default=None)

    class Meta:
        model = SalesDocumentLine
        fields = (
            "line_number",
            "product",
            "name",
            "description",
            "quantity",
            "unit",
            "unit_price",
            "discount_pct",
            "is_exempt",
            "tipo_doc_liq",
            "discount_amount",
            "amount",
            "amount_moneda",
        )
        read_only_fields = ("line_number", "discount_amount", "amount", "amount_moneda")
        extra_kwargs = {"discount_pct": {"validators": []}}


class ReferenceSerializer(serializers.ModelSerializer):
    rut_otr = serializers.CharField(
        max_length=12,
        required=False,
        allow_blank=True,
        help_text="RUT del emisor del documento referenciado, si no es la empresa (RUTOtr).",
    )

    class Meta:
        model = SalesDocumentReference
        fields = ("line_number", *REFERENCE_FIELDS)
        read_only_fields = ("line_number",)


class CommissionSerializer(serializers.ModelSerializer):
    """A liquidación factura's Comisiones line: `neto` in pesos, or only `tasa` (a percentage of
    the liquidated sales) and the net is computed; `iva` is always computed."""

    neto = serializers.IntegerField(required=False, allow_null=True)
    tasa = serializers.DecimalField(max_digits=5, decimal_places=2, required=False, allow_null=True)

    class Meta:
        model = SalesDocumentCommission
        fields = ("line_number", *COMMISSION_FIELDS, "iva")
        read_only_fields = ("line_number", "iva")


class SalesDocumentSerializer(AuditedSerializer):
    tipo_dte = serializers.ChoiceField(choices=[(t.value, t.label) for t in TipoDte])
    partner = RelatedRefField(
        allow_null=True, required=False, help_text="Id (número) o RUT (texto) del receptor."
    )
    lines = LineSerializer(many=True)
    references = ReferenceSerializer(many=True, required=False)
    commissions = CommissionSerializer(
        many=True,
        required=False,
        help_text="Liquidación factura (43): las comisiones y otros cargos del comisionista.",
    )
    ind_traslado = serializers.ChoiceField(
        choices=[(k.value, v) for k, v in IND_TRASLADO_LABELS.items()],
        required=False,
        allow_null=True,
        help_text="Guías: motivo del traslado (1 venta … 5 traslado interno … 9). Por omisión 1.",
    )
    aduana = serializers.JSONField(
        required=False,
        help_text="Exportaciones: datos de Aduana (códigos de las tablas de Aduana), p. ej. "
        '{"clausula_venta": 5, "total_clausula": "30276.00", "pais_receptor": 225}.',
    )
    rut_transportista = serializers.CharField(max_length=12, required=False, allow_blank=True)
    rut_chofer = serializers.CharField(max_length=12, required=False, allow_blank=True)

    class Meta:
        model = SalesDocument
        fields = (
            "id",
            "tipo_dte",
            "state",
            "folio",
            "fecha_emision",
            "fecha_vencimiento",
            "forma_pago",
            "partner",
            "global_discount_type",
            "global_discount_value",
            "global_surcharge_type",
            "global_surcharge_value",
            "notes",
            *GUIA_FIELDS,
            *EXPORT_FIELDS,
            "monto_total_moneda",
            "lines",
            "references",
            "commissions",
            "monto_neto",
            "monto_exento",
            "tasa_iva",
            "iva",
            "iva_retenido",
            "comision_neto",
            "comision_exento",
            "comision_iva",
            "monto_total",
            "issued_at",
            *AUDIT_FIELDS,
        )
        read_only_fields = (
            "state",
            "folio",
            "monto_total_moneda",
            "monto_neto",
            "monto_exento",
            "tasa_iva",
            "iva",
            "iva_retenido",
            "comision_neto",
            "comision_exento",
            "comision_iva",
            "monto_total",
            "issued_at",
            *AUDIT_FIELDS,
        )


class PurchaseDocumentSerializer(serializers.ModelSerializer):
    """A purchase in the books. `partner` is the supplier's id or RUT; `periodo` is any day of
    the tax month (stored as its first day; default: the document's month); `monto_total` is
    computed when left out and must add up when given."""

    partner = RelatedRefField()
    rut_emisor = serializers.CharField(read_only=True)
    periodo = serializers.DateField(required=False, allow_null=True)
    monto_total = serializers.IntegerField(required=False, allow_null=True)
    created_by = UserNameField()
    updated_by = UserNameField()

    class Meta:
        model = PurchaseDocument
        fields = ("id", *PURCHASE_FIELDS, "rut_emisor", "source", *AUDIT_FIELDS)
        read_only_fields = ("id", "rut_emisor", "source", *AUDIT_FIELDS)
        # Uniqueness and totals are the service's rules, reported with field-level messages.
        validators = []
