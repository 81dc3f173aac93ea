"""Django admin for every erp model. Non-superusers see only their companies' rows (through
erp.tenancy); issued documents are read-only; saves are audited like any other write."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q

from erp import services, tenancy
from erp.errors import DomainError
from erp.forms import RutFormField
from erp.models import (
    AuditEvent,
    Company,
    Membership,
    Partner,
    Product,
    PurchaseDocument,
    SalesDocument,
    SalesDocumentLine,
    SalesDocumentReference,
)
from erp.tenancy import Perm


class RutAdminForm(forms.ModelForm):
    rut = RutFormField()


class TenantAdmin(admin.ModelAdmin):
    """Admin gated by company roles (erp.tenancy), not by Django's model permissions: a staff
    user sees the rows of the companies they belong to and changes what their role allows."""

    perm = Perm.EDIT_MASTER_DATA
    company_path = "company"  # how a row reaches its company

    def company_id_of(self, obj) -> int:
        return obj.company_id

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if not self.company_path:
            return qs if request.user.is_superuser else tenancy.companies_for(request.user)
        return tenancy.scoped_for_user(qs, request.user, path=self.company_path)

    def _allowed(self, request, obj, perm: Perm) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if obj is None:
            return tenancy.user_has_perm_anywhere(user, perm)
        return tenancy.user_can_in_object_company(user, self.company_id_of(obj), perm)

    def has_module_permission(self, request):
        return self._allowed(request, None, Perm.VIEW)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj, Perm.VIEW)

    def has_add_permission(self, request):
        return self._allowed(request, None, self.perm)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj, self.perm)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj, self.perm)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            if db_field.name == "company":
                kwargs["queryset"] = tenancy.companies_for(request.user)
            elif db_field.name in ("partner", "product"):
                kwargs["queryset"] = tenancy.scoped_for_user(
                    db_field.related_model.objects.all(), request.user
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyTenantAdmin(TenantAdmin):
    """Rows that are a record (audit events, signed documents): seen, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Company)
class CompanyAdmin(TenantAdmin):
    form = RutAdminForm
    perm = Perm.MANAGE_MEMBERS
    company_path = ""
    list_display = ("rut", "razon_social", "comuna", "sii_environment", "resolution_number")
    list_filter = ("sii_environment",)
    search_fields = ("rut", "razon_social")

    def company_id_of(self, obj) -> int:
        return obj.pk

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    perm = Perm.MANAGE_MEMBERS
    list_display = ("user", "company", "role")
    list_filter = ("role",)
    search_fields = ("user__username", "company__rut", "company__razon_social")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            # Colleagues, and accounts not yet in any company; never other companies' staff.
            kwargs["queryset"] = (
                get_user_model()
                .objects.filter(
                    Q(memberships__company__in=tenancy.companies_for(request.user))
                    | Q(memberships__isnull=True)
                )
                .distinct()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)

        class MembershipForm(form_class):
            def clean(self):
                cleaned = super().clean()
                company = cleaned.get(("company", admin.RelatedOnlyFieldListFilter))
                if company and not tenancy.user_can_in_object_company(
                    request.user, company.pk, Perm.MANAGE_MEMBERS
                ):
                    raise forms.ValidationError(
                        "Solo un administrador de la empresa puede hacerlo."
                    )
                return cleaned

        return MembershipForm


class ServiceBackedAdmin(TenantAdmin):
    """Saves and deletes go through erp.services, so admin edits obey the same rules and are
    audited. A DomainError is shown on the form instead of saving."""

    service_fields: tuple[str, ...] = ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        admin_self = self

        class ServiceForm(form_class):
            def clean(self):
                cleaned = super().clean()
                if self.errors:
                    return cleaned
                company = cleaned.get("company") or getattr(self.instance, "company", None)
                if company and not tenancy.user_can_in_object_company(
                    request.user, company.pk, admin_self.perm
                ):
                    raise forms.ValidationError("Su rol no permite modificar datos de esa empresa.")
                return cleaned

        return ServiceForm

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in self.service_fields if f in form.cleaned_data}
        try:
            saved = self.service_save(request, obj, change, data)
        except DomainError as exc:  # checked in clean() already; a race lands here
            raise forms.ValidationError(exc.message) from exc
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        self.service_delete(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.service_delete(request, obj)


@admin.register(Partner)
class PartnerAdmin(ServiceBackedAdmin):
    form = RutAdminForm
    service_fields = services.PARTNER_FIELDS
    list_display = ("rut", "razon_social", "company", "comuna", "is_customer", "is_supplier")
    list_filter = ("is_customer", "is_supplier", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("rut", "razon_social", "contacto")
    readonly_fields = ("created_at", "created_by", "updated_at", "updated_by")

    def service_save(self, request, obj, change, data):
        if change:
            current = Partner.objects.get(pk=obj.pk)
            return services.partner_update(partner=current, actor=request.user, data=data)
        return services.partner_create(company=obj.company, actor=request.user, data=data)

    def service_delete(self, request, obj):
        services.partner_delete(partner=obj, actor=request.user)


@admin.register(Product)
class ProductAdmin(ServiceBackedAdmin):
    service_fields = services.PRODUCT_FIELDS
    list_display = ("code", "name", "company", "unit_price", "is_exempt", "is_active")
    list_filter = ("is_exempt", "is_active", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("code", "name")
    readonly_fields = ("created_at", "created_by", "updated_at", "updated_by")

    def service_save(self, request, obj, change, data):
        if change:
            current = Product.objects.get(pk=obj.pk)
            return services.product_update(product=current, actor=request.user, data=data)
        return services.product_create(company=obj.company, actor=request.user, data=data)

    def service_delete(self, request, obj):
        services.product_delete(product=obj, actor=request.user)


class ReadOnlyInline(admin.TabularInline):
    """Lines and references, shown with their document (whose admin already checked access)."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LineInline(ReadOnlyInline):
    model = SalesDocumentLine
    fields = (
        "line_number",
        "product",
        "name",
        "quantity",
        "unit",
        "unit_price",
        "discount_pct",
        "is_exempt",
        "amount",
    )
    readonly_fields = fields


class ReferenceInline(ReadOnlyInline):
    model = SalesDocumentReference
    fields = ("line_number", "tipo_doc_ref", "folio_ref", "fecha_ref", "cod_ref", "razon_ref")
    readonly_fields = fields


@admin.register(SalesDocument)
class SalesDocumentAdmin(TenantAdmin):
    """Documents are listed, searched and inspected here; lines are edited in the web UI or the
    API, where totals are computed. Header fields of drafts can be changed; issued documents
    are entirely read-only."""

    perm = Perm.EDIT_DOCUMENTS
    inlines = (LineInline, ReferenceInline)
    list_display = (
        "id",
        "tipo_dte",
        "folio",
        "state",
        "fecha_emision",
        "partner",
        "monto_total",
        "company",
    )
    list_filter = (
        "tipo_dte",
        "state",
        ("company", admin.RelatedOnlyFieldListFilter),
        "fecha_emision",
    )
    search_fields = ("folio", "partner__razon_social", "partner__rut")
    date_hierarchy = "fecha_emision"
    editable_when_draft = ("fecha_emision", "fecha_vencimiento", "forma_pago", "partner", "notes")

    def has_add_permission(self, request):
        return False  # documents are created with their lines in the web UI or the API

    def get_readonly_fields(self, request, obj=None):
        every = [f.name for f in SalesDocument._meta.fields if f.name != "id"]
        if obj is not None and obj.is_draft:
            return [f for f in every if f not in self.editable_when_draft]
        return every

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.is_draft:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not obj.is_draft:
            return False
        return super().has_delete_permission(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)

        class DocumentServiceForm(form_class):
            def clean(self):
                cleaned = super().clean()
                if obj is not None and obj.is_draft and not self.errors:
                    data = {
                        f: cleaned[f]
                        for f in SalesDocumentAdmin.editable_when_draft
                        if f in cleaned
                    }
                    if "partner" in data:
                        data["partner"] = data["partner"].pk if data["partner"] else None
                    try:
                        services.sales_document_prepare(
                            company=obj.company, data=data, document=obj
                        )
                    except DomainError as exc:
                        for field, messages in exc.fields.items():
                            for message in messages:
                                self.add_error(field if field in self.fields else None, message)
                    self.service_data = data
                return cleaned

        return DocumentServiceForm

    def save_model(self, request, obj, form, change):
        services.sales_document_update(
            document=obj, actor=request.user, data=getattr(form, "service_data", {})
        )

    def delete_model(self, request, obj):
        services.sales_document_delete(document=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for document in queryset:
            services.sales_document_delete(document=document, actor=request.user)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ("at", "company", "actor", "action", "entity", "entity_repr")
    list_filter = ("action", "entity", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("entity_repr", "actor__username")
    date_hierarchy = "at"


@admin.register(PurchaseDocument)
class PurchaseDocumentAdmin(ServiceBackedAdmin):
    perm = Perm.EDIT_DOCUMENTS
    service_fields = services.PURCHASE_FIELDS
    list_display = ("tipo_doc", "folio", "rut_emisor", "company", "fecha", "periodo", "estado")
    list_filter = (
        "estado",
        "tipo_doc",
        "is_fixed_asset",
        ("company", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("folio", "rut_emisor", "partner__razon_social")
    readonly_fields = (
        "rut_emisor",
        "source",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
    )

    def service_save(self, request, obj, change, data):
        if change:
            current = PurchaseDocument.objects.get(pk=obj.pk)
            return services.purchase_document_update(
                document=current, actor=request.user, data=data
            )
        return services.purchase_document_create(company=obj.company, actor=request.user, data=data)

    def service_delete(self, request, obj):
        services.purchase_document_delete(document=obj, actor=request.user)
