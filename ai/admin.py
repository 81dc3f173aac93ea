from django.contrib import admin

from ai.models import AiFinding, AiReview
from ai.services import OFF_ADMIN_HINT
from erp.admin import ReadOnlyTenantAdmin


class FindingInline(admin.TabularInline):
    model = AiFinding
    extra = 0
    can_delete = False
    fields = ("source", "code", "severity", "message", "state", "decided_by", "decided_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AiReview)
class AiReviewAdmin(ReadOnlyTenantAdmin):
    list_display = ("created_at", "company", "target", "sales_document", "f29", "ai_status")
    list_filter = ("target", "ai_status", ("company", admin.RelatedOnlyFieldListFilter))
    inlines = [FindingInline]
    readonly_fields = ("technical_note",)

    @admin.display(description="nota técnica")
    def technical_note(self, obj) -> str:
        """What staff see as "not configured" is, for whoever runs the installation, a
        variable to set."""
        return OFF_ADMIN_HINT if obj.ai_status == AiReview.AiStatus.OFF else "—"
