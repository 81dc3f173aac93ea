"""Review on demand from the document's and the period's pages, and staff's decisions."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from ai import selectors, services
from erp import selectors as erp_selectors
from erp.errors import DomainError
from erp.models import Membership
from erp.periods import InvalidPeriod, parse_period, period_key
from erp.tenancy import Perm
from erp.web import company_view
from f29 import selectors as f29_selectors


@require_POST
@company_view(Perm.EDIT_DOCUMENTS)
def review_document(request, membership: Membership, pk: int):
    document = erp_selectors.sales_document_get(company=membership.company, pk=pk)
    review = services.ai_review_document(document=document, actor=request.user)
    messages.info(request, f"Revisión lista: {review.findings.count()} hallazgo(s).")
    return redirect("erp:document_detail", pk=pk)


@require_POST
@company_view(Perm.EDIT_DOCUMENTS)
def review_period(request, membership: Membership, period: str):
    try:
        periodo = parse_period(period)
    except InvalidPeriod as exc:
        raise Http404(str(exc)) from exc
    f29 = f29_selectors.f29_get(company=membership.company, periodo=periodo)
    review = services.ai_review_period(f29=f29, actor=request.user)
    messages.info(request, f"Revisión lista: {review.findings.count()} hallazgo(s).")
    return redirect("f29:f29_detail", period=period)


@require_POST
@company_view(Perm.EDIT_DOCUMENTS)
def decide(request, membership: Membership, pk: int, decision: str):
    finding = selectors.finding_get(company=membership.company, pk=pk)
    try:
        services.finding_decide(finding=finding, actor=request.user, decision=decision)
    except DomainError as exc:
        messages.error(request, exc.message)
    review = finding.review
    if review.sales_document_id:
        return redirect("erp:document_detail", pk=review.sales_document_id)
    return redirect("f29:f29_detail", period=period_key(review.f29.periodo))
