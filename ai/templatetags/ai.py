"""`{% ai_panel document %}` / `{% ai_panel f29 %}`: the latest review's findings on a page
that belongs to another app (the document's, the period's)."""

from django import template

from ai import services
from erp.models import SalesDocument
from erp.periods import period_key

register = template.Library()


@register.inclusion_tag("ai/_panel.html", takes_context=True)
def ai_panel(context, target):
    is_document = isinstance(target, SalesDocument)
    review = services.latest_review(
        company=target.company,
        document=target if is_document else None,
        f29=None if is_document else target,
    )
    return {
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
        "can_edit": context.get("can_edit"),
        "review": review,
        "findings": list(review.findings.all()) if review else [],
        "review_url": (
            f"/ia/documentos/{target.pk}/revisar/"
            if is_document
            else f"/ia/periodos/{period_key(target.periodo)}/revisar/"
        ),
    }
