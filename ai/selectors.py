"""Reads of the AI reviews, always for one company."""

from django.db.models import QuerySet

from ai.models import AiFinding, AiReview
from erp.errors import NotFound
from erp.models import Company
from erp.tenancy import scoped


def review_list(*, company: Company) -> QuerySet[AiReview]:
    return scoped(AiReview.objects.all(), company).prefetch_related("findings")


def finding_get(*, company: Company, pk) -> AiFinding:
    try:
        return AiFinding.objects.select_related("review", "review__f29").get(
            pk=int(pk), review__company=company
        )
    except (ValueError, TypeError, AiFinding.DoesNotExist) as exc:
        raise NotFound("Hallazgo no encontrado.") from exc
