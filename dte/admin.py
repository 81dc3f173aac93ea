"""Django admin for dte. CAFs and certificates are added through the upload services (so every
check runs and secrets are encrypted); signed documents and envelopes, and the documents
received from suppliers, are read-only; the exchange mailbox's password is stored encrypted."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model

from dte import services, vault
from dte.models import (
    Caf,
    Certificate,
    Dte,
    DteEvent,
    Envelope,
    EnvelopeEvent,
    ExchangeMailbox,
    IssuerSettings,
    ReceivedDte,
    ReceivedDteEvent,
    ReceivedEnvelope,
)
from erp import tenancy
from erp.admin import ReadOnlyTenantAdmin, TenantAdmin
from erp.errors import DomainError
from erp.tenancy import Perm


class _UploadForm(forms.ModelForm):
    upload = forms.FileField(label="Archivo")

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean(self):
        cleaned = super().clean()
        company = cleaned.get("company")
        upload = cleaned.get("upload")
        if self.errors or company is None or upload is None:
            return cleaned
        if not tenancy.user_can_in_object_company(
            self.request.user, company.pk, Perm.MANAGE_CREDENTIALS
        ):
            raise forms.ValidationError("Solo un administrador de la empresa puede hacerlo.")
        try:
            self.instance = self.upload(company, upload.read())
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc
        return cleaned


class CafAdminForm(_UploadForm):
    class Meta:
        model = Caf
        fields = ("company",)

    def upload(self, company, data):
        return services.caf_upload(company=company, actor=self.request.user, data=data)


class CertificateAdminForm(_UploadForm):
    password = forms.CharField(widget=forms.PasswordInput, strip=False, label="Contraseña")

    class Meta:
        model = Certificate
        fields = ("company",)

    def upload(self, company, data):
        return services.certificate_upload(
            company=company,
            actor=self.request.user,
            data=data,
            password=self.cleaned_data.get("password", ""),
        )


class UploadAdmin(TenantAdmin):
    perm = Perm.MANAGE_CREDENTIALS
    add_form_class: type[_UploadForm]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            form_class = self.add_form_class

            class RequestForm(form_class):
                def __init__(self, *args, **kw):
                    super().__init__(*args, request=request, **kw)

            # offers only companies the user administers; refuses others before the upload
            return self.tenant_form(RequestForm, request)
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return [f for f in self.add_form_class.base_fields] + ["company"]
        return super().get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        # on add, the upload service already saved the row in the form's clean()

    def has_delete_permission(self, request, obj=None):
        return False  # folios and signatures already used must stay on record


@admin.register(Caf)
class CafAdmin(UploadAdmin):
    add_form_class = CafAdminForm
    list_display = ("tipo_dte", "folio_desde", "folio_hasta", "next_folio", "expires_on", "company")
    list_filter = ("tipo_dte", "is_test", ("company", admin.RelatedOnlyFieldListFilter))
    readonly_fields = (
        "company",
        "tipo_dte",
        "folio_desde",
        "folio_hasta",
        "next_folio",
        "fecha_autorizacion",
        "expires_on",
        "idk",
        "is_test",
        "uploaded_by",
        "created_at",
    )


@admin.register(Certificate)
class CertificateAdmin(UploadAdmin):
    add_form_class = CertificateAdminForm
    list_display = ("holder_name", "holder_rut", "not_after", "is_active", "company")
    list_filter = ("is_active", "is_test", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("holder_name", "holder_rut")
    fields = (
        "company",
        "holder_name",
        "holder_rut",
        "not_before",
        "not_after",
        "is_active",
        "allowed_users",
        "is_test",
    )
    readonly_fields = ("company", "holder_name", "holder_rut", "not_before", "not_after", "is_test")
    filter_horizontal = ("allowed_users",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        if obj is None or request.user.is_superuser:
            return form_class
        # Those who may sign with it are people of the certificate's company, none other.
        members = get_user_model().objects.filter(memberships__company_id=obj.company_id)

        class CertificateForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                if "allowed_users" in self.fields:
                    self.fields["allowed_users"].queryset = members.distinct()

        return CertificateForm


class EventInline(admin.TabularInline):
    model = DteEvent
    extra = 0
    can_delete = False
    fields = ("at", "status", "message", "actor")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True


@admin.register(Dte)
class DteAdmin(ReadOnlyTenantAdmin):
    perm = Perm.ISSUE_DOCUMENTS
    inlines = (EventInline,)
    list_display = ("tipo_dte", "folio", "fecha_emision", "rut_receptor", "monto_total", "status")
    list_filter = ("tipo_dte", "status", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("folio", "rut_receptor")
    exclude = ("xml", "ted")


class EnvelopeEventInline(admin.TabularInline):
    model = EnvelopeEvent
    extra = 0
    can_delete = False
    fields = ("at", "desde", "hacia", "sii_code", "message", "actor")
    readonly_fields = fields

    @admin.display(description="desde")
    def desde(self, obj):
        return obj.from_status_label

    @admin.display(description="hacia")
    def hacia(self, obj):
        return obj.status_label

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True


@admin.register(Envelope)
class EnvelopeAdmin(ReadOnlyTenantAdmin):
    perm = Perm.ISSUE_DOCUMENTS
    inlines = (EnvelopeEventInline,)
    list_display = ("id", "kind", "company", "status", "track_id", "sii_estado", "created_at")
    list_filter = ("status", "kind", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("track_id",)
    exclude = ("xml",)
    actions = ("retry_envelopes", "reenvelope_envelopes")

    def _each_as_admin(self, request, queryset, act, done: str) -> None:
        """Run `act` on each envelope whose company the user administers; report each one."""
        for envelope in queryset:
            if not tenancy.user_can_in_object_company(
                request.user, envelope.company_id, Perm.MANAGE_CREDENTIALS
            ):
                self.message_user(
                    request,
                    f"Sobre #{envelope.pk}: solo un administrador de la empresa puede hacerlo.",
                    messages.ERROR,
                )
                continue
            try:
                result = act(envelope)
            except DomainError as exc:
                self.message_user(request, f"Sobre #{envelope.pk}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Sobre #{envelope.pk}: {done.format(result=result)}")

    @admin.action(description="Reintentar el envío (sobres que requieren atención)")
    def retry_envelopes(self, request, queryset):
        self._each_as_admin(
            request,
            queryset,
            lambda e: services.envelope_retry(envelope=e, actor=request.user).get_status_display(),
            "reintento en curso ({result}).",
        )

    @admin.action(description="Reensobrar con los mismos folios (sobres que requieren atención)")
    def reenvelope_envelopes(self, request, queryset):
        self._each_as_admin(
            request,
            queryset,
            lambda e: ", ".join(
                f"#{n.pk}" for n in services.envelope_reenvelope(envelope=e, actor=request.user)
            ),
            "documentos reensobrados en {result}.",
        )


@admin.register(IssuerSettings)
class IssuerSettingsAdmin(TenantAdmin):
    perm = Perm.MANAGE_CREDENTIALS
    list_display = ("company", "caf_low_threshold")


# --- Received documents (suppliers' DTEs) ---------------------------------------------------


class ReceivedDteEventInline(admin.TabularInline):
    model = ReceivedDteEvent
    extra = 0
    can_delete = False
    fields = ("at", "kind", "code", "message", "actor")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True


@admin.register(ReceivedDte)
class ReceivedDteAdmin(ReadOnlyTenantAdmin):
    """A record of what a supplier sent and what was answered: decisions are taken in the
    "Recibidos" pages or the API (they go to the SII), never edited here."""

    perm = Perm.RECEIVE_DOCUMENTS
    inlines = (ReceivedDteEventInline,)
    list_display = (
        "tipo_dte",
        "folio",
        "rut_emisor",
        "razon_social",
        "fecha_emision",
        "monto_total",
        "status",
        "sii_confirmation",
        "claim_deadline",
        "company",
    )
    list_filter = (
        "status",
        "sii_confirmation",
        "tipo_dte",
        ("company", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("rut_emisor", "razon_social", "folio")
    list_select_related = ("company",)
    date_hierarchy = "received_at"


@admin.register(ReceivedEnvelope)
class ReceivedEnvelopeAdmin(ReadOnlyTenantAdmin):
    perm = Perm.RECEIVE_DOCUMENTS
    list_display = (
        "name",
        "rut_emisor",
        "source",
        "estado_recep_env",
        "sender_email",
        "received_at",
        "company",
    )
    list_filter = ("source", "estado_recep_env", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "rut_emisor", "envio_id", "sender_email")
    list_select_related = ("company",)


class ExchangeMailboxAdminForm(forms.ModelForm):
    password = forms.CharField(
        label="Contraseña",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Se guarda cifrada. En blanco conserva la actual.",
    )

    class Meta:
        model = ExchangeMailbox
        fields = (
            "company",
            "address",
            "host",
            "port",
            "security",
            "username",
            "password",
            "folder",
            "is_active",
        )

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("password"):
            self.add_error("password", "Ingrese la contraseña de la casilla.")
        return cleaned

    def save(self, commit=True):
        password = self.cleaned_data.get("password")
        if password:
            self.instance.password_encrypted = vault.encrypt(password.encode("utf-8"))
        return super().save(commit)


@admin.register(ExchangeMailbox)
class ExchangeMailboxAdmin(TenantAdmin):
    """The company's exchange mailbox; the password is written (encrypted), never shown."""

    perm = Perm.MANAGE_CREDENTIALS
    form = ExchangeMailboxAdminForm
    list_display = ("company", "address", "host", "username", "is_active", "last_polled_at")
    list_filter = ("is_active", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("address", "host", "username")

    def get_readonly_fields(self, request, obj=None):
        fields = ["last_polled_at", "last_error"]
        if obj is not None and obj.pk:
            fields.insert(0, "company")  # one mailbox per company: it does not move
        return fields
