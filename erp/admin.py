"""Django admin for every erp model. Non-superusers see only their companies' rows (through
erp.tenancy); issued documents are read-only; saves are audited like any other write."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
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
    SalesDocumentCommission,
    SalesDocumentLine,
    SalesDocumentReference,
)
from erp.tenancy import Perm


class RutAdminForm(forms.ModelForm):
    rut = RutFormField()


def _company_scoped(model) -> bool:
    """Whether each row of `model` belongs to one company through its `company` foreign key."""
    try:
        field = model._meta.get_field("company")
    except FieldDoesNotExist:
        return False
    return field.is_relation and field.related_model is Company


class TenantAdmin(admin.ModelAdmin):
    """Admin gated by company roles (erp.tenancy), not by Django's model permissions: a staff
    user sees the rows of the companies they belong to and changes what their role allows.

    The role that counts is the one in the row's company: being an admin in one company gives
    nothing in another. Forms offer only the companies (and their rows) where the user has
    `perm`; forms, saves and deletes check `perm` in the row's company as stored and, for a
    change that moves the row, in the company it moves to."""

    perm = Perm.EDIT_MASTER_DATA
    company_path = "company"  # how a row reaches its company
    company_field = "company"  # the form field that sets a row's company ("" when none)

    def company_id_of(self, obj) -> int | None:
        return obj.company_id

    def acting_companies(self, request):
        """The companies where the user's role grants this admin's `perm`."""
        return tenancy.companies_with_perm(request.user, self.perm)

    def may_act_in(self, request, company_id: int | None) -> bool:
        return tenancy.user_can_in_object_company(request.user, company_id, self.perm)

    def require_in_companies(self, request, obj) -> None:
        """PermissionDenied unless the role allows `perm` in the company `obj` belongs to now
        (as the form left it) and in the one it belongs to in the database."""
        company_ids = {self.company_id_of(obj)}
        if obj.pk is not None:
            stored = self.model._default_manager.filter(pk=obj.pk).first()
            if stored is not None:
                company_ids.add(self.company_id_of(stored))
        for company_id in company_ids:
            if not self.may_act_in(request, company_id):
                raise PermissionDenied

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

    def _choices(self, db_field, request):
        """Companies, and rows of companies, the user may act in; None: Django's default."""
        if request.user.is_superuser:
            return None
        model = db_field.related_model
        if model is Company:
            return self.acting_companies(request)
        if _company_scoped(model):
            return model._default_manager.filter(company__in=self.acting_companies(request))
        return None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        choices = self._choices(db_field, request)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        choices = self._choices(db_field, request)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        return self.tenant_form(form_class, request, obj)

    def tenant_form(self, form_class, request, obj=None):
        """`form_class` offering only the companies where the user may act, and refusing, before
        any other check of the form (uploads, services) runs, a row whose company (as stored,
        or as chosen in the form) is not one of them."""
        admin_self = self
        stored_company_id = self.company_id_of(obj) if obj is not None and obj.pk else None

        class TenantForm(form_class):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                field = self.fields.get(admin_self.company_field)
                if field is not None and not request.user.is_superuser:
                    field.queryset = admin_self.acting_companies(request)

            def clean(self):
                chosen = self.cleaned_data.get(admin_self.company_field)
                company_ids = {stored_company_id, chosen.pk if chosen else None} - {None}
                if not all(admin_self.may_act_in(request, pk) for pk in company_ids):
                    raise forms.ValidationError("Su rol no permite modificar datos de esa empresa.")
                return super().clean()

        return TenantForm

    def save_form(self, request, form, change):
        self.require_in_companies(request, form.instance)
        return super().save_form(request, form, change)

    def delete_model(self, request, obj):
        self.require_in_companies(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.require_in_companies(request, obj)
        super().delete_queryset(request, queryset)


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
    company_field = ""  # the row is the company
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
            # People of the companies the user administers, and accounts not yet in any
            # company; never those of companies where the user may not manage members.
            kwargs["queryset"] = (
                get_user_model()
                .objects.filter(
                    Q(memberships__company__in=self.acting_companies(request))
                    | Q(memberships__isnull=True)
                )
                .distinct()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ServiceBackedAdmin(TenantAdmin):
    """Saves and deletes go through erp.services, so admin edits obey the same rules and are
    audited. A DomainError is shown on the form instead of saving."""

    service_fields: tuple[str, ...] = ()

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in self.service_fields if f in form.cleaned_data}
        try:
            saved = self.service_save(request, obj, change, data)
        except DomainError as exc:  # checked in clean() already; a race lands here
            raise forms.ValidationError(exc.message) from exc
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        self.require_in_companies(request, obj)
        self.service_delete(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.require_in_companies(request, obj)
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
        "tipo_doc_liq",
        "amount",
    )
    readonly_fields = fields


class ReferenceInline(ReadOnlyInline):
    model = SalesDocumentReference
    fields = ("line_number", *services.REFERENCE_FIELDS)
    readonly_fields = fields


class CommissionInline(ReadOnlyInline):
    """A liquidación factura's commissions."""

    model = SalesDocumentCommission
    fields = ("line_number", *services.COMMISSION_FIELDS, "iva")
    readonly_fields = fields


@admin.register(SalesDocument)
class SalesDocumentAdmin(TenantAdmin):
    """Documents are listed, searched and inspected here; lines are edited in the web UI or the
    API, where totals are computed. Header fields of drafts can be changed; issued documents
    are entirely read-only."""

    perm = Perm.EDIT_DOCUMENTS
    inlines = (LineInline, ReferenceInline, CommissionInline)
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
        self.require_in_companies(request, obj)
        services.sales_document_delete(document=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for document in queryset:
            self.require_in_companies(request, document)
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
