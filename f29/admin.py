from django.contrib import admin

from erp.admin import ReadOnlyTenantAdmin
from f29.models import F29Return, RcvEntry, RcvImport


@admin.register(F29Return)
class F29ReturnAdmin(ReadOnlyTenantAdmin):
    """The F29 is computed and moved along in the app (UI, API, commands), never edited here."""

    list_display = ("periodo", "company", "state", "computed_at", "filed_at")
    list_filter = ("state", ("company", admin.RelatedOnlyFieldListFilter))


@admin.register(RcvImport)
class RcvImportAdmin(ReadOnlyTenantAdmin):
    list_display = ("at", "company", "kind", "estado", "filename", "created", "updated", "rejected")
    list_filter = ("kind", "estado", ("company", admin.RelatedOnlyFieldListFilter))


@admin.register(RcvEntry)
class RcvEntryAdmin(ReadOnlyTenantAdmin):
    list_display = (
        "kind",
        "tipo",
        "folio",
        "rut",
        "razon_social",
        "periodo",
        "estado",
        "monto_total",
    )
    list_filter = ("kind", "estado", "tipo", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("folio", "rut", "razon_social")
