"""Web forms: they parse and type what people type; the rules live in erp.services."""

from decimal import Decimal

from django import forms

from erp import siicodes
from erp.doctypes import (
    LIQUIDATED_OTHER,
    PURCHASE_TYPES,
    Family,
    TipoDte,
    codes,
    liquidated_label,
)
from erp.errors import DomainError
from erp.exports import ADUANA_FIELDS
from erp.models import (
    CommissionKind,
    Partner,
    Product,
    PurchaseDocument,
    PurchaseState,
    SalesDocument,
)
from erp.money import NumberError, format_decimal, parse_decimal
from erp.rut import InvalidRut, normalize_rut
from erp.services import (
    EXPORT_FIELDS,
    GUIA_FIELDS,
    PARTNER_FIELDS,
    PRODUCT_FIELDS,
    PURCHASE_AMOUNTS,
    PURCHASE_FIELDS,
)

# dd-mm-aaaa whatever the browser's locale (a native date input follows the browser's own).
DATE_FORMATS = ["%d-%m-%Y", "%d/%m/%Y", "%Y-%m-%d"]
DATE_WIDGET = forms.DateInput(
    format="%d-%m-%Y", attrs={"placeholder": "dd-mm-aaaa", "inputmode": "numeric", "size": 10}
)


class ChileanDecimalField(forms.DecimalField):
    """A number typed as Chileans write it (`1.234.567`, `1.234,5`, `2,5`), in a text input so
    the browser does not reinterpret it; ambiguous text (`1,000`) is refused with a message."""

    widget = forms.TextInput

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})
        self.widget.attrs.pop("step", None)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, Decimal):
            return value
        try:
            return parse_decimal(str(value))
        except NumberError as exc:
            code = "ambiguous" if exc.ambiguous else "invalid"
            raise forms.ValidationError(str(exc), code=code) from exc

    def prepare_value(self, value):
        if isinstance(value, Decimal):
            return format_decimal(value)
        return value


class ChileanIntegerField(ChileanDecimalField):
    """Whole pesos typed as `1.234.567` (or `$ 1.234.567`)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("decimal_places", 0)
        kwargs.setdefault("max_digits", 18)
        super().__init__(**kwargs)
        self.widget.attrs["inputmode"] = "numeric"

    def to_python(self, value):
        number = super().to_python(value)
        if number is not None and number != number.to_integral_value():
            raise forms.ValidationError("Ingrese un monto en pesos, sin decimales.", code="invalid")
        return number

    def clean(self, value):
        number = super().clean(value)
        return int(number) if number is not None else None

    def prepare_value(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return format_decimal(Decimal(value))
        return super().prepare_value(value)


class RutFormField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 12)
        kwargs.setdefault("label", "RUT")
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        try:
            return normalize_rut(value)
        except InvalidRut as exc:
            raise forms.ValidationError(str(exc)) from exc


class PartnerForm(forms.ModelForm):
    rut = RutFormField(widget=forms.TextInput(attrs={"placeholder": "76.086.428-5"}))
    nacionalidad = forms.ChoiceField(
        label="Nacionalidad (clientes extranjeros)",
        required=False,
        choices=[],
        help_text="Solo con RUT 55.555.555-5: el país del cliente (tabla de Aduana).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["nacionalidad"].choices = [("", "—"), *siicodes.choices("paises")]
        self.fields["nacionalidad"].widget.attrs["data-searchable"] = "paises"

    class Meta:
        model = Partner
        fields = PARTNER_FIELDS


class ProductForm(forms.ModelForm):
    unit_price = ChileanDecimalField(
        label="Precio unitario neto",
        max_digits=18,
        decimal_places=6,
        help_text="Sin IVA. En facturas se usa tal cual; en boletas, con el IVA sumado.",
    )

    class Meta:
        model = Product
        fields = PRODUCT_FIELDS
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class DocumentForm(forms.ModelForm):
    class Meta:
        model = SalesDocument
        fields = (
            "tipo_dte",
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
            "moneda",
            "tipo_cambio",
            "forma_pago_exportacion",
            "ind_servicio",
        )
        widgets = {
            "fecha_emision": DATE_WIDGET,
            "fecha_vencimiento": DATE_WIDGET,
            "notes": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["partner"].queryset = Partner.objects.filter(company=company)
        self.fields["partner"].required = False
        self.fields["partner"].widget.attrs["data-searchable"] = "clientes"
        self.fields["partner"].empty_label = "— (boletas: consumidor final)"
        self.fields["fecha_emision"].input_formats = DATE_FORMATS
        self.fields["fecha_vencimiento"].input_formats = DATE_FORMATS
        self.fields["fecha_vencimiento"].help_text = "A crédito y vacío: vence a 30 días."
        self.fields[
            "ind_traslado"
        ].help_text = (
            "Traslado interno y entrega gratuita: el receptor es la propia empresa (déjelo vacío)."
        )
        for name in ("rut_transportista", "rut_chofer"):
            self.fields[name] = RutFormField(
                label=self.fields[name].label,
                required=False,
                widget=forms.TextInput(attrs={"placeholder": "12.345.678-5"}),
            )
        tipo = self.fields["tipo_dte"]
        tipo.choices = [c for c in tipo.choices if c[0] != ""]  # required: no empty choice
        self.fields["moneda"] = forms.ChoiceField(
            label="Moneda",
            required=False,
            choices=[("", "—"), *siicodes.choices("monedas")],
            help_text="Exportaciones: la moneda de la operación.",
        )
        self.fields["tipo_cambio"] = ChileanDecimalField(
            label="Tipo de cambio",
            required=False,
            max_digits=10,
            decimal_places=4,
            help_text="Pesos por unidad de la moneda (Banco Central, a la fecha de emisión).",
        )
        self.fields["forma_pago_exportacion"] = forms.TypedChoiceField(
            label="Forma de pago (exportación)",
            required=False,
            choices=_code_choices("formas_pago_exportacion"),
            coerce=int,
            empty_value=None,
        )
        for name, blank in (
            ("global_discount_type", "Sin descuento"),
            ("global_surcharge_type", "Sin recargo"),
            ("forma_pago", "—"),
            ("ind_traslado", "1 · Operación constituye venta (por omisión)"),
            ("tipo_despacho", "—"),
            ("ind_servicio", "— (bienes)"),
        ):
            field = self.fields[name]
            field.choices = [("", blank), *[c for c in field.choices if c[0] != ""]]
        for name in ("global_discount_value", "global_surcharge_value"):
            old = self.fields[name]
            self.fields[name] = ChileanDecimalField(
                label=old.label,
                required=False,
                max_digits=old.max_digits,
                decimal_places=old.decimal_places,
                help_text=old.help_text,
            )

    def main_fields(self):
        return [f for f in self if f.name not in GUIA_FIELDS and f.name not in EXPORT_FIELDS]

    def guia_fields(self):
        return [f for f in self if f.name in GUIA_FIELDS]

    def export_fields(self):
        return [f for f in self if f.name in EXPORT_FIELDS]

    def _post_clean(self):
        # The service checks the whole document; skip ModelForm's model validation here.
        pass


def _code_choices(table: str) -> list[tuple[str, str]]:
    return [("", "—"), *((int(code), label) for code, label in siicodes.choices(table))]


class AduanaForm(forms.Form):
    """Transporte/Aduana of an export (erp.exports.ADUANA_FIELDS), as Aduana codes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, spec in ADUANA_FIELDS.items():
            if spec.kind == "code":
                field: forms.Field = forms.TypedChoiceField(
                    choices=_code_choices(spec.table), coerce=int, empty_value=None
                )
                field.widget.attrs["data-searchable"] = spec.table
            elif spec.kind == "decimal":
                field = ChileanDecimalField(max_digits=18, decimal_places=spec.places)
            elif spec.kind == "int":
                field = forms.IntegerField(min_value=1)
            elif spec.kind == "rut":
                field = RutFormField()
            else:
                field = forms.CharField(max_length=spec.max_length)
            field.label, field.required = spec.label, False
            self.fields[name] = field

    def values(self) -> dict:
        """What was filled in, for the service (which checks it again)."""
        data = getattr(self, "cleaned_data", {}) or {}
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in data.items() if v}


def liquidated_type_choices() -> list[tuple[str, str]]:
    """TpoDocLiq of a liquidación factura's line: the sales documents a comisionista issues
    on the mandante's behalf, and 99 for advances and other operations."""
    sales = sorted(codes(lambda d: bool(d.sales_boxes) and d.family is not Family.LIQUIDACION))
    return [
        ("", "—"),
        *((str(code), liquidated_label(str(code))) for code in [*sales, LIQUIDATED_OTHER]),
    ]


class LineForm(forms.Form):
    tipo_doc_liq = forms.ChoiceField(label="Doc. liquidado", required=False, choices=())
    product = forms.ModelChoiceField(
        queryset=Product.objects.none(),
        required=False,
        empty_label="— (ítem libre)",
        widget=forms.Select(attrs={"data-searchable": "productos"}),
    )
    name = forms.CharField(label="Ítem", max_length=80, required=False)
    description = forms.CharField(label="Descripción", required=False, widget=forms.HiddenInput)
    quantity = ChileanDecimalField(label="Cantidad", max_digits=18, decimal_places=6)
    unit = forms.CharField(label="Unidad", max_length=4, required=False)
    unit_price = ChileanDecimalField(
        label="Precio", max_digits=18, decimal_places=6, required=False
    )
    discount_pct = ChileanDecimalField(
        label="Desc. %", max_digits=5, decimal_places=2, required=False
    )
    is_exempt = forms.BooleanField(label="Exento", required=False)

    def __init__(self, *args, company=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tipo_doc_liq"].choices = liquidated_type_choices()
        if company is not None:
            self.fields["product"].queryset = Product.objects.filter(company=company)


class CommissionForm(forms.Form):
    """A liquidación factura's Comisiones line: its net in pesos, or a rate of the sales."""

    tipo_movim = forms.ChoiceField(
        label="Tipo", choices=CommissionKind.choices, initial=CommissionKind.COMISION
    )
    glosa = forms.CharField(label="Glosa", max_length=60)
    tasa = ChileanDecimalField(label="Tasa %", max_digits=5, decimal_places=2, required=False)
    neto = ChileanIntegerField(label="Neto", required=False)
    exento = ChileanIntegerField(label="Exento", required=False)


class ReferenceForm(forms.Form):
    tipo_doc_ref = forms.CharField(label="Tipo doc.", max_length=3)
    folio_ref = forms.CharField(label="Folio", max_length=18)
    rut_otr = forms.CharField(
        label="RUT emisor",
        max_length=12,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Si no es suyo", "size": 11}),
    )
    fecha_ref = forms.DateField(label="Fecha", widget=DATE_WIDGET, input_formats=DATE_FORMATS)
    cod_ref = forms.TypedChoiceField(
        label="Código",
        choices=[
            ("", "—"),
            (1, "Anula el documento"),
            (2, "Corrige texto"),
            (3, "Corrige montos"),
        ],
        coerce=int,
        empty_value=None,
        required=False,
    )
    razon_ref = forms.CharField(label="Razón", max_length=90, required=False)


LineFormSet = forms.formset_factory(LineForm, extra=0, can_delete=True, max_num=1000)
ReferenceFormSet = forms.formset_factory(ReferenceForm, extra=0, can_delete=True, max_num=40)
CommissionFormSet = forms.formset_factory(CommissionForm, extra=0, can_delete=True, max_num=20)

TIPO_CHOICES = [("", "Todos")] + [(t.value, f"{t.value} · {t.label}") for t in TipoDte]


def apply_domain_error(error: DomainError, form: forms.BaseForm, **formsets) -> None:
    """Put each of the service's field messages next to its field (`lines.2.quantity` too)."""
    for key, messages in error.fields.items():
        head, _, rest = key.partition(".")
        target, field = form, key
        if head in formsets and rest:
            index, _, sub = rest.partition(".")
            forms_by_index = formsets[head]
            if index.isdigit() and int(index) < len(forms_by_index):
                target, field = forms_by_index[int(index)], sub or None
        elif head in formsets:
            target, field = form, None
        elif head == "aduana" and rest and hasattr(form, "aduana"):
            target, field = form.aduana, rest  # an export's customs data, in its sub-form
        for message in messages:
            if field and field in target.fields:
                target.add_error(field, message)
            else:
                target.add_error(None, message)
    if not error.fields:
        form.add_error(None, error.message)


PERIOD_FORMATS = ["%m-%Y", "%Y-%m", "%m/%Y"]


class PeriodField(forms.DateField):
    """A month, typed "mm-aaaa" (or "aaaa-mm"); the value is its first day."""

    widget = forms.TextInput(attrs={"placeholder": "mm-aaaa", "inputmode": "numeric", "size": 7})

    def __init__(self, **kwargs):
        super().__init__(input_formats=PERIOD_FORMATS, **kwargs)

    def prepare_value(self, value):
        if hasattr(value, "strftime"):
            return value.strftime("%m-%Y")
        return value


class PurchaseForm(forms.ModelForm):
    periodo = PeriodField(
        label="Período tributario",
        required=False,
        help_text="Mes en que se declara (vacío: el mes del documento).",
    )

    class Meta:
        model = PurchaseDocument
        fields = PURCHASE_FIELDS
        widgets = {"fecha": DATE_WIDGET, "notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["partner"].queryset = Partner.objects.filter(company=company).order_by(
            "razon_social"
        )
        self.fields["partner"].widget.attrs["data-searchable"] = "proveedores"
        self.fields["partner"].empty_label = "—"
        self.fields["fecha"].input_formats = DATE_FORMATS
        for name in (*PURCHASE_AMOUNTS, "monto_total"):
            old = self.fields[name]
            self.fields[name] = ChileanIntegerField(
                label=old.label, required=False, help_text=old.help_text
            )
        self.fields["monto_total"].help_text = "Vacío: se calcula."

    def _post_clean(self):
        # The service checks the whole document; skip ModelForm's model validation here.
        pass


class PurchaseFilterForm(forms.Form):
    tipo_doc = forms.TypedChoiceField(
        label="Tipo",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Todos"), *((k, f"{k} · {v}") for k, v in PURCHASE_TYPES.items())],
    )
    estado = forms.ChoiceField(
        label="Estado", required=False, choices=[("", "Todos"), *PurchaseState.choices]
    )
    periodo = PeriodField(label="Período", required=False)
    q = forms.CharField(label="Buscar", required=False)
