"""REST API of the AI checks: the reviews of a document or a period (newest first), a review on
demand, and staff's accept/dismiss on each finding."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from ai import selectors, services
from ai.models import AiFinding, AiReview
from erp import selectors as erp_selectors
from erp.api.views import COMPANY_PARAM, CompanyScopedAPI
from erp.errors import DomainError
from erp.periods import InvalidPeriod, parse_period, period_key
from erp.tenancy import Perm
from f29 import selectors as f29_selectors


class AiFindingSerializer(serializers.ModelSerializer):
    decided_by = serializers.CharField(
        source="decided_by.get_username", read_only=True, default=None
    )

    class Meta:
        model = AiFinding
        fields = (
            "id",
            "source",
            "code",
            "severity",
            "message",
            "evidence",
            "state",
            "decided_by",
            "decided_at",
        )
        read_only_fields = fields


class AiReviewSerializer(serializers.ModelSerializer):
    findings = AiFindingSerializer(many=True, read_only=True)
    ai_status_label = serializers.CharField(source="get_ai_status_display", read_only=True)
    # null for a period's review.
    document = serializers.IntegerField(source="sales_document_id", read_only=True, allow_null=True)
    period = serializers.SerializerMethodField()

    class Meta:
        model = AiReview
        fields = (
            "id",
            "target",
            "document",
            "period",
            "ai_status",
            "ai_status_label",
            "ai_reason",
            "explanation",
            "model",
            "input_tokens",
            "output_tokens",
            "created_at",
            "findings",
        )
        read_only_fields = fields

    def get_period(self, obj) -> str | None:
        return period_key(obj.f29.periodo) if obj.f29_id else None


def _period(text: str):
    try:
        return parse_period(text)
    except InvalidPeriod as exc:
        raise DomainError("invalid_input", str(exc), {"period": str(exc)}) from exc


_ACTIONS = ("list", "review_document", "review_period")


@extend_schema_view(**{a: extend_schema(parameters=[COMPANY_PARAM]) for a in _ACTIONS})
class AiReviewViewSet(CompanyScopedAPI):
    """`GET ?document=ID` or `?period=YYYY-MM`: that target's reviews, newest first. `POST
    document/{id}/` or `period/{YYYY-MM}/`: review it now (rules always; Claude when a key is
    set: the answer's `ai_status` says whether it ran, was off, failed or ran out of budget)."""

    queryset = AiReview.objects.none()
    serializer_class = AiReviewSerializer
    write_perm = Perm.EDIT_DOCUMENTS

    def company_queryset(self):
        return selectors.review_list(company=self.company).select_related("f29")

    @extend_schema(
        parameters=[
            COMPANY_PARAM,
            OpenApiParameter("document", int),
            OpenApiParameter("period", str, description="AAAA-MM"),
        ]
    )
    def list(self, request, company_rut=None):
        qs = self.get_queryset()
        if request.query_params.get("document"):
            document = erp_selectors.sales_document_get(
                company=self.company, pk=request.query_params["document"]
            )
            qs = qs.filter(sales_document=document)
        if request.query_params.get("period"):
            qs = qs.filter(f29__periodo=_period(request.query_params["period"]))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=None, responses={201: AiReviewSerializer})
    @action(detail=False, methods=["post"], url_path=r"document/(?P<document_id>\d+)")
    def review_document(self, request, company_rut=None, document_id=None):
        document = erp_selectors.sales_document_get(company=self.company, pk=document_id)
        review = services.ai_review_document(document=document, actor=request.user)
        return Response(self.get_serializer(review).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: AiReviewSerializer})
    @action(detail=False, methods=["post"], url_path=r"period/(?P<period>\d{4}-\d{2})")
    def review_period(self, request, company_rut=None, period=None):
        f29 = f29_selectors.f29_get(company=self.company, periodo=_period(period))
        review = services.ai_review_period(f29=f29, actor=request.user)
        return Response(self.get_serializer(review).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    accept=extend_schema(parameters=[COMPANY_PARAM]),
    dismiss=extend_schema(parameters=[COMPANY_PARAM]),
)
class AiFindingViewSet(CompanyScopedAPI):
    """Staff's decision on a finding: `POST {id}/accept/` or `{id}/dismiss/`."""

    queryset = AiFinding.objects.none()
    serializer_class = AiFindingSerializer
    write_perm = Perm.EDIT_DOCUMENTS

    def company_queryset(self):
        return AiFinding.objects.filter(review__company=self.company)

    def _decide(self, request, pk, decision):
        finding = selectors.finding_get(company=self.company, pk=pk)
        finding = services.finding_decide(finding=finding, actor=request.user, decision=decision)
        return Response(self.get_serializer(finding).data)

    @extend_schema(request=None, responses=AiFindingSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, company_rut=None, pk=None):
        return self._decide(request, pk, "accept")

    @extend_schema(request=None, responses=AiFindingSerializer)
    @action(detail=True, methods=["post"])
    def dismiss(self, request, company_rut=None, pk=None):
        return self._decide(request, pk, "dismiss")
