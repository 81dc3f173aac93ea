"""REST API over erp's services. The company comes from the URL and is checked against the
user's memberships by erp.tenancy; a company the user does not belong to is a 404."""

from types import SimpleNamespace

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from erp import selectors, services, tenancy
from erp.api.filtering import FILTER_BACKENDS, StrictFilterSet
from erp.api.serializers import (
    CompanySerializer,
    PartnerSerializer,
    ProductSerializer,
    PurchaseDocumentSerializer,
    SalesDocumentSerializer,
)
from erp.models import Partner, Product, PurchaseDocument, SalesDocument
from erp.tenancy import Perm


class FormatIsAParameter(DefaultContentNegotiation):
    """For endpoints whose own `format` parameter picks what to produce (a PDF's letter or
    thermal layout, a reconciliation's CSV): DRF would take `?format=` as a renderer override
    and answer 404 for a format it has no renderer for."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


COMPANY_PARAM = OpenApiParameter(
    "company_rut", str, OpenApiParameter.PATH, description="RUT de la empresa, p. ej. 76086428-5"
)


class CompanyViewSet(viewsets.ReadOnlyModelViewSet):
    """The companies the user belongs to, with the user's role in each."""

    serializer_class = CompanySerializer
    lookup_field = "rut"
    lookup_value_regex = r"[0-9.]+-[0-9Kk]"
    filter_backends = []

    def get_queryset(self):
        return tenancy.companies_for(self.request.user).order_by("razon_social")

    def get_object(self):
        return tenancy.membership_for(self.request.user, rut=self.kwargs["rut"]).company

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request and self.request.user.is_authenticated:
            context["roles"] = dict(
                tenancy.memberships_for(self.request.user).values_list("company_id", "role")
            )
        return context


class CompanyScopedAPI(viewsets.GenericViewSet):
    """One company's rows, the company taken from the URL and checked by erp.tenancy; a write
    needs `write_perm` in that company."""

    write_perm: Perm
    membership = None
    filter_backends = FILTER_BACKENDS

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.membership = tenancy.membership_for(request.user, rut=kwargs.get("company_rut"))
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            tenancy.require(self.membership, self.write_perm)

    @property
    def company(self):
        return self.membership.company

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False) or self.membership is None:
            return self.queryset.none()
        return self.company_queryset()

    def company_queryset(self):
        raise NotImplementedError

    def get_object(self):
        return self.get_one(self.kwargs["pk"])


class CompanyScopedViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    CompanyScopedAPI,
):
    """CRUD on one company's rows; writes go through the service named by the subclass."""

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        obj = self.service_create(data=serializer.validated_data)
        return Response(self.get_serializer(obj).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        obj = self.get_object()
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(obj, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        obj = self.service_update(obj, data=serializer.validated_data)
        return Response(self.get_serializer(self.get_one(obj.pk)).data)

    def destroy(self, request, *args, **kwargs):
        self.service_delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class PartnerFilter(StrictFilterSet):
    class Meta:
        model = Partner
        fields = ("is_customer", "is_supplier", "comuna")


@extend_schema_view(
    **{
        a: extend_schema(parameters=[COMPANY_PARAM])
        for a in ("list", "retrieve", "create", "update", "partial_update", "destroy")
    }
)
class PartnerViewSet(CompanyScopedViewSet):
    serializer_class = PartnerSerializer
    queryset = Partner.objects.all()
    write_perm = Perm.EDIT_MASTER_DATA
    filterset_class = PartnerFilter
    search_fields = ("razon_social", "rut", "contacto")
    ordering_fields = ("razon_social", "rut", "created_at", "updated_at")

    def company_queryset(self):
        return selectors.partner_list(company=self.company).select_related(
            "created_by", "updated_by"
        )

    def get_one(self, pk):
        return selectors.partner_get(company=self.company, pk=pk)

    def service_create(self, *, data):
        return services.partner_create(company=self.company, actor=self.request.user, data=data)

    def service_update(self, obj, *, data):
        return services.partner_update(partner=obj, actor=self.request.user, data=data)

    def service_delete(self, obj):
        services.partner_delete(partner=obj, actor=self.request.user)


class ProductFilter(StrictFilterSet):
    class Meta:
        model = Product
        fields = ("is_exempt", "is_active", "code")


@extend_schema_view(
    **{
        a: extend_schema(parameters=[COMPANY_PARAM])
        for a in ("list", "retrieve", "create", "update", "partial_update", "destroy")
    }
)
class ProductViewSet(CompanyScopedViewSet):
    serializer_class = ProductSerializer
    queryset = Product.objects.all()
    write_perm = Perm.EDIT_MASTER_DATA
    filterset_class = ProductFilter
    search_fields = ("code", "name", "description")
    ordering_fields = ("code", "name", "unit_price", "created_at")

    def company_queryset(self):
        return selectors.product_list(company=self.company).select_related(
            "created_by", "updated_by"
        )

    def get_one(self, pk):
        return selectors.product_get(company=self.company, pk=pk)

    def service_create(self, *, data):
        return services.product_create(company=self.company, actor=self.request.user, data=data)

    def service_update(self, obj, *, data):
        return services.product_update(product=obj, actor=self.request.user, data=data)

    def service_delete(self, obj):
        services.product_delete(product=obj, actor=self.request.user)


class SalesDocumentFilter(StrictFilterSet):
    fecha_desde = filters.DateFilter(field_name="fecha_emision", lookup_expr="gte")
    fecha_hasta = filters.DateFilter(field_name="fecha_emision", lookup_expr="lte")

    class Meta:
        model = SalesDocument
        fields = ("tipo_dte", "state", "partner", "folio")


@extend_schema_view(
    **{
        a: extend_schema(parameters=[COMPANY_PARAM])
        for a in ("list", "retrieve", "create", "update", "partial_update", "destroy")
    }
)
class SalesDocumentViewSet(CompanyScopedViewSet):
    """Sales documents with their lines and references. Drafts are editable; issued ones are
    read-only (an edit answers 400 `document_not_draft`)."""

    serializer_class = SalesDocumentSerializer
    queryset = SalesDocument.objects.all()
    write_perm = Perm.EDIT_DOCUMENTS
    filterset_class = SalesDocumentFilter
    search_fields = ("partner__razon_social", "partner__rut", "notes")
    ordering_fields = ("fecha_emision", "folio", "monto_total", "created_at", "id")

    def company_queryset(self):
        return (
            selectors.sales_document_list(company=self.company)
            .select_related("created_by", "updated_by")
            .prefetch_related("lines__product", "references", "commissions")
        )

    def get_one(self, pk):
        return selectors.sales_document_get(company=self.company, pk=pk)

    def service_create(self, *, data):
        return services.sales_document_create(
            company=self.company, actor=self.request.user, data=data
        )

    def service_update(self, obj, *, data):
        return services.sales_document_update(document=obj, actor=self.request.user, data=data)

    def service_delete(self, obj):
        services.sales_document_delete(document=obj, actor=self.request.user)


class PurchaseDocumentFilter(StrictFilterSet):
    fecha_desde = filters.DateFilter(field_name="fecha", lookup_expr="gte")
    fecha_hasta = filters.DateFilter(field_name="fecha", lookup_expr="lte")

    class Meta:
        model = PurchaseDocument
        fields = ("tipo_doc", "estado", "periodo", "partner", "folio", "is_fixed_asset")


@extend_schema_view(
    **{
        a: extend_schema(parameters=[COMPANY_PARAM])
        for a in ("list", "retrieve", "create", "update", "partial_update", "destroy")
    }
)
class PurchaseDocumentViewSet(CompanyScopedViewSet):
    """The purchase book: supplier invoices and notes, facturas de compra, DIN imports. Only
    those in "registro" give VAT credit in the F29. A document dated in a filed period answers
    400 `period_closed`."""

    serializer_class = PurchaseDocumentSerializer
    queryset = PurchaseDocument.objects.all()
    write_perm = Perm.EDIT_DOCUMENTS
    filterset_class = PurchaseDocumentFilter
    search_fields = ("partner__razon_social", "rut_emisor", "notes")
    ordering_fields = ("fecha", "folio", "monto_total", "created_at", "id")

    def company_queryset(self):
        return selectors.purchase_document_list(company=self.company).select_related(
            "created_by", "updated_by"
        )

    def get_one(self, pk):
        return selectors.purchase_document_get(company=self.company, pk=pk)

    def service_create(self, *, data):
        return services.purchase_document_create(
            company=self.company, actor=self.request.user, data=data
        )

    def service_update(self, obj, *, data):
        return services.purchase_document_update(document=obj, actor=self.request.user, data=data)

    def service_delete(self, obj):
        services.purchase_document_delete(document=obj, actor=self.request.user)
