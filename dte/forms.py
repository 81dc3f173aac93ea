from django import forms

from dte.models import ExchangeMailbox, ReceivedStatus
from dte.receiving import CLAIM_ACTIONS
from erp.forms import DATE_FORMATS, DATE_WIDGET, ChileanDecimalField, PeriodField

MAX_UPLOAD = 1024 * 1024


class _Upload(forms.Form):
    file = forms.FileField(label="Archivo")

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            raise forms.ValidationError("El archivo es demasiado grande (máximo 1 MB).")
        return upload.read()


class CafUploadForm(_Upload):
    file = forms.FileField(label="Archivo CAF (XML descargado del SII)")


class CertificateUploadForm(_Upload):
    file = forms.FileField(label="Certificado digital (.pfx o .p12)")
    password = forms.CharField(label="Contraseña", widget=forms.PasswordInput, strip=False)


# --- Receiving suppliers' DTEs --------------------------------------------------------------

MAX_RECEIVED_FILE = 10 * 1024 * 1024
MAX_RECEIVED_FILES = 50


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """One or more files from one input; the value is the list of uploads."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        uploads = [d for d in data if d] if isinstance(data, (list, tuple)) else [data]
        if not any(uploads):
            super().clean(None, initial)  # "required", in the field's words
            return []
        return [super(MultipleFileField, self).clean(upload, initial) for upload in uploads]


class ReceivedUploadForm(forms.Form):
    """XML or ZIP files a supplier sent (an EnvioDTE, a lone DTE, or a ZIP of them)."""

    files = MultipleFileField(
        label="Archivos XML o ZIP del proveedor",
        widget=MultipleFileInput(attrs={"accept": ".xml,.zip,application/xml,application/zip"}),
    )

    def clean_files(self) -> list[tuple[str, bytes]]:
        return read_received_uploads(self.cleaned_data["files"], forms.ValidationError)


def read_received_uploads(uploads, error) -> list[tuple[str, bytes]]:
    """(name, bytes) of each uploaded file, within the limits; `error` is the exception to raise
    (the form's or the API's ValidationError)."""
    if len(uploads) > MAX_RECEIVED_FILES:
        raise error(f"Suba a lo más {MAX_RECEIVED_FILES} archivos a la vez.")
    read: list[tuple[str, bytes]] = []
    for upload in uploads:
        if upload.size > MAX_RECEIVED_FILE:
            raise error(f"{upload.name}: el archivo es demasiado grande (máximo 10 MB).")
        read.append((upload.name or "archivo.xml", upload.read()))
    return read


class ReceivedFilterForm(forms.Form):
    estado = forms.ChoiceField(label="Estado", required=False)
    proveedor = forms.CharField(
        label="Proveedor",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "Razón social o RUT"}),
    )
    desde = forms.DateField(label="Desde", required=False, widget=DATE_WIDGET)
    hasta = forms.DateField(label="Hasta", required=False, widget=DATE_WIDGET)
    vence = forms.IntegerField(
        label="Vence en (días)",
        required=False,
        min_value=0,
        max_value=365,
        widget=forms.NumberInput(attrs={"size": 4, "inputmode": "numeric"}),
        help_text="Documentos por aceptar o reclamar cuyo plazo vence en N días o menos "
        "(incluye los vencidos).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["estado"].choices = [("", "Todos"), *ReceivedStatus.choices]
        for name in ("desde", "hasta"):
            self.fields[name].input_formats = DATE_FORMATS


class AcceptForm(forms.Form):
    discrepancies = forms.CharField(
        label="Reparos",
        required=False,
        max_length=256,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    periodo = PeriodField(
        label="Período tributario",
        required=False,
        help_text="Mes del libro de compras (vacío: el mes de la recepción).",
    )


class ClaimForm(forms.Form):
    action = forms.ChoiceField(label="Motivo del reclamo")
    reason = forms.CharField(
        label="Detalle", max_length=256, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [(k, f"{k} · {v}") for k, v in CLAIM_ACTIONS.items()]


class GoodsReceiptForm(forms.Form):
    recinto = forms.CharField(
        label="Lugar de recepción (recinto)",
        max_length=80,
        widget=forms.TextInput(attrs={"placeholder": "Bodega central, Av. …"}),
    )


class MailboxForm(forms.ModelForm):
    password = forms.CharField(
        label="Contraseña",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Se guarda cifrada. Déjela en blanco para conservar la actual.",
    )

    class Meta:
        model = ExchangeMailbox
        fields = ("address", "host", "port", "security", "username", "folder", "is_active")


# --- Facturar guías -------------------------------------------------------------------------


class GuiaInvoiceForm(forms.Form):
    partner = forms.ModelChoiceField(queryset=None, label="Cliente")
    periodo = PeriodField(label="Mes de las guías")
    forma_pago = forms.TypedChoiceField(
        label="Forma de pago",
        choices=[(1, "Contado"), (2, "Crédito"), (3, "Sin costo")],
        coerce=int,
        required=False,
        empty_value=None,
    )

    def __init__(self, *args, company, **kwargs):
        from erp.models import Partner

        super().__init__(*args, **kwargs)
        self.fields["partner"].queryset = Partner.objects.filter(company=company)
        self.fields["partner"].widget.attrs["data-searchable"] = "clientes"


# --- Certification --------------------------------------------------------------------------


class CertificationUploadForm(forms.Form):
    """The SII's set de pruebas, and the day's exchange rates its export sets need."""

    file = forms.FileField(label="Set de pruebas (archivo de texto descargado del SII)")
    rate_usd = ChileanDecimalField(
        label="Tipo de cambio dólar",
        required=False,
        max_digits=10,
        decimal_places=4,
        help_text="Pesos por dólar para los sets de exportación (por omisión 950).",
    )
    rate_eur = ChileanDecimalField(
        label="Tipo de cambio euro",
        required=False,
        max_digits=10,
        decimal_places=4,
        help_text="Pesos por euro (por omisión 1.030).",
    )

    def rates(self) -> dict[str, str]:
        data = self.cleaned_data
        given = {"DOLAR USA": data.get("rate_usd"), "EURO": data.get("rate_eur")}
        return {name: str(value) for name, value in given.items() if value is not None}


class ExchangeUploadForm(_Upload):
    """The SII's test envelope of the intercambio stage, and where its goods are received."""

    file = forms.FileField(label="Sobre de intercambio enviado por el SII (XML)")
    recinto = forms.CharField(
        label="Recinto de recepción de las mercaderías",
        max_length=80,
        required=False,
        initial="Oficina central",
    )
