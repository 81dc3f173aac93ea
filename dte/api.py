"""REST API of dte: issue a draft, list and download DTEs and envelopes, upload CAFs and
certificates (admins), and the warnings about folios and certificates."""

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from dte import selectors, services
from dte.models import Caf, Certificate, Dte, Envelope
from dte.views import xml_download
from erp import selectors as erp_selectors
from erp import tenancy
from erp.api.serializers import SalesDocumentSerializer
from erp.api.views import COMPANY_PARAM, CompanyScopedAPI, FormatIsAParameter
from erp.tenancy import Perm

MAX_UPLOAD = 1024 * 1024


class DteSerializer(serializers.ModelSerializer):
    sales_document = serializers.IntegerField(source="sales_document_id", read_only=True)
    envelope = serializers.IntegerField(source="envelope_id", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    track_id = serializers.CharField(source="envelope.track_id", read_only=True, default="")
    envelope_status = serializers.CharField(source="envelope.status", read_only=True, default="")
    events = serializers.SerializerMethodField()

    class Meta:
        model = Dte
        fields = (
            "id",
            "tipo_dte",
            "folio",
            "fecha_emision",
            "rut_receptor",
            "monto_total",
            "status",
            "status_label",
            "sales_document",
            "envelope",
            "envelope_status",
            "track_id",
            "created_at",
            "events",
        )
        read_only_fields = fields

    def get_events(self, obj) -> list[dict]:
        return [
            {
                "status": e.status,
                "sii_code": e.sii_code,
                "message": e.message,
                "at": e.at.isoformat(),
            }
            for e in obj.events.all()
        ]


class EnvelopeSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    dtes = serializers.SerializerMethodField()
    events = serializers.SerializerMethodField()
    replaced_by = serializers.IntegerField(source="replaced_by_id", read_only=True)

    class Meta:
        model = Envelope
        fields = (
            "id",
            "kind",
            "status",
            "status_label",
            "track_id",
            "follow_documents",
            "attempts",
            "polls",
            "next_attempt_at",
            "sii_estado",
            "sii_glosa",
            "last_error",
            "replaced_by",
            "created_at",
            "dtes",
            "events",
        )
        read_only_fields = fields

    def get_dtes(self, obj) -> list[dict]:
        return [
            {"id": d.pk, "tipo_dte": d.tipo_dte, "folio": d.folio, "status": d.status}
            for d in obj.dtes.order_by("pk")
        ]

    def get_events(self, obj) -> list[dict]:
        return [
            {
                "from_status": e.from_status,
                "status": e.status,
                "sii_code": e.sii_code,
                "message": e.message,
                "at": e.at.isoformat(),
            }
            for e in obj.events.all()
        ]


class CafSerializer(serializers.ModelSerializer):
    remaining = serializers.IntegerField(read_only=True)
    file = serializers.FileField(
        write_only=True, help_text="El XML del CAF tal como lo entrega el SII."
    )

    class Meta:
        model = Caf
        fields = (
            "id",
            "tipo_dte",
            "folio_desde",
            "folio_hasta",
            "next_folio",
            "remaining",
            "fecha_autorizacion",
            "expires_on",
            "idk",
            "is_test",
            "created_at",
            "file",
        )
        read_only_fields = tuple(f for f in fields if f != "file")

    def validate_file(self, upload):
        if upload.size > MAX_UPLOAD:
            raise serializers.ValidationError("El archivo es demasiado grande (máximo 1 MB).")
        return upload.read()


class CertificateSerializer(serializers.ModelSerializer):
    file = serializers.FileField(write_only=True, help_text="Archivo .pfx / .p12")
    password = serializers.CharField(write_only=True, trim_whitespace=False)

    class Meta:
        model = Certificate
        fields = (
            "id",
            "holder_name",
            "holder_rut",
            "not_before",
            "not_after",
            "is_active",
            "is_test",
            "created_at",
            "file",
            "password",
        )
        read_only_fields = tuple(f for f in fields if f not in ("file", "password"))

    def validate_file(self, upload):
        if upload.size > MAX_UPLOAD:
            raise serializers.ValidationError("El archivo es demasiado grande (máximo 1 MB).")
        return upload.read()


class EmailQueuedSerializer(serializers.Serializer):
    to = serializers.EmailField(read_only=True)


_ALL = (
    "list",
    "retrieve",
    "create",
    "xml",
    "pdf",
    "issue",
    "warnings",
    "refresh",
    "retry",
    "reissue",
    "email",
)
_company_param = {a: extend_schema(parameters=[COMPANY_PARAM]) for a in _ALL}


@extend_schema_view(**_company_param)
class IssueViewSet(CompanyScopedAPI):
    """`POST …/sales-documents/{id}/issue/`: folio, TED, signature and envelope for a draft."""

    queryset = Dte.objects.all()
    serializer_class = DteSerializer
    write_perm = Perm.ISSUE_DOCUMENTS

    @extend_schema(request=None, responses={201: DteSerializer})
    @action(detail=True, methods=["post"])
    def issue(self, request, company_rut=None, pk=None):
        document = erp_selectors.sales_document_get(company=self.company, pk=pk)
        dte = services.dte_issue(document=document, actor=request.user)
        return Response(DteSerializer(dte).data, status=status.HTTP_201_CREATED)


@extend_schema_view(**_company_param)
class DteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CompanyScopedAPI):
    content_negotiation_class = FormatIsAParameter
    queryset = Dte.objects.all()
    serializer_class = DteSerializer
    write_perm = Perm.ISSUE_DOCUMENTS
    filterset_fields = ("tipo_dte", "status", "folio")
    ordering_fields = ("folio", "fecha_emision", "created_at")
    search_fields = ("rut_receptor",)

    def company_queryset(self):
        return (
            selectors.dte_list(company=self.company)
            .select_related("envelope")
            .prefetch_related("events")
        )

    def get_one(self, pk):
        return selectors.dte_get(company=self.company, pk=pk)

    @extend_schema(responses={(200, "application/xml"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def xml(self, request, company_rut=None, pk=None):
        dte = self.get_object()
        return xml_download(dte.xml, dte.filename)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["letter", "thermal"]),
            OpenApiParameter("cedible", bool),
        ],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def pdf(self, request, company_rut=None, pk=None):
        from dte import printing

        dte = self.get_object()
        pdf = printing.dte_pdf(
            dte,
            format=request.query_params.get("format") or None,
            cedible=request.query_params.get("cedible") in ("1", "true"),
        )
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{dte.filename[:-4]}.pdf"'
        return response

    @extend_schema(request=None, responses={202: EmailQueuedSerializer})
    @action(detail=True, methods=["post"])
    def email(self, request, company_rut=None, pk=None):
        """E-mail the XML (in an envelope for the receiver) and the PDF to the receiver's
        exchange address, in the background; the document's history records the delivery."""
        from dte import printing

        address = printing.dte_email_queue(self.get_object())
        return Response({"to": address}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: DteSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request, company_rut=None, pk=None):
        """Ask the SII for the verdict on this document, in the background: answers 202 at
        once with the document as it stands; poll it to see the SII's answer."""
        dte = self.get_object()
        services.dte_refresh(dte=dte, actor=request.user)
        return Response(DteSerializer(self.get_one(pk)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=DteSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, company_rut=None, pk=None):
        """Admins: send again a document whose sending needs attention."""
        tenancy.require(self.membership, Perm.MANAGE_CREDENTIALS)
        dte = self.get_object()
        services.dte_retry(dte=dte, actor=request.user)
        return Response(DteSerializer(self.get_one(pk)).data)

    @extend_schema(request=None, responses={201: SalesDocumentSerializer})
    @action(detail=True, methods=["post"])
    def reissue(self, request, company_rut=None, pk=None):
        """A rejected document: a new draft with its content, to correct and issue again."""
        tenancy.require(self.membership, Perm.EDIT_DOCUMENTS)
        draft = services.dte_reissue_draft(dte=self.get_object(), actor=request.user)
        return Response(SalesDocumentSerializer(draft).data, status=status.HTTP_201_CREATED)


@extend_schema_view(**_company_param)
class EnvelopeViewSet(mixins.RetrieveModelMixin, CompanyScopedAPI):
    """An envelope in the outbox: its state, documents and history; admins retry one that
    needs attention, or re-envelope its documents (same folios) once the cause is fixed."""

    queryset = Envelope.objects.all()
    write_perm = Perm.ISSUE_DOCUMENTS
    serializer_class = EnvelopeSerializer

    def company_queryset(self):
        return Envelope.objects.filter(company=self.company).prefetch_related("events")

    def get_one(self, pk):
        return selectors.envelope_get(company=self.company, pk=pk)

    @extend_schema(responses={(200, "application/xml"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def xml(self, request, company_rut=None, pk=None):
        envelope = selectors.envelope_get(company=self.company, pk=pk)
        return xml_download(envelope.xml, f"{envelope.kind}-{self.company.rut}-{envelope.pk}.xml")

    @extend_schema(request=None, responses=EnvelopeSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, company_rut=None, pk=None):
        """Admins: send again, as it is, an envelope that needs attention."""
        tenancy.require(self.membership, Perm.MANAGE_CREDENTIALS)
        envelope = selectors.envelope_get(company=self.company, pk=pk)
        services.envelope_retry(envelope=envelope, actor=request.user)
        return Response(EnvelopeSerializer(self.get_one(pk)).data)

    @extend_schema(request=None, responses={201: EnvelopeSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def reenvelope(self, request, company_rut=None, pk=None):
        """Admins: the pending documents of an envelope that needs attention go again in a new
        envelope, with the same signed bytes and folios, under the current carátula."""
        tenancy.require(self.membership, Perm.MANAGE_CREDENTIALS)
        envelope = selectors.envelope_get(company=self.company, pk=pk)
        new = services.envelope_reenvelope(envelope=envelope, actor=request.user)
        return Response(EnvelopeSerializer(new, many=True).data, status=status.HTTP_201_CREATED)


class _UploadViewSet(mixins.ListModelMixin, CompanyScopedAPI):
    parser_classes = (MultiPartParser, FormParser)
    write_perm = Perm.MANAGE_CREDENTIALS

    def create(self, request, company_rut=None):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = self.upload(serializer.validated_data)
        return Response(self.get_serializer(row).data, status=status.HTTP_201_CREATED)


@extend_schema_view(**_company_param)
class CafViewSet(_UploadViewSet):
    """The company's folio ranges; an admin uploads a CAF file (multipart field `file`)."""

    queryset = Caf.objects.all()
    serializer_class = CafSerializer

    def company_queryset(self):
        return selectors.caf_list(company=self.company)

    def upload(self, data):
        return services.caf_upload(company=self.company, actor=self.request.user, data=data["file"])


@extend_schema_view(**_company_param)
class CertificateViewSet(_UploadViewSet):
    """The company's signing certificates; an admin uploads one (`file` and `password`)."""

    queryset = Certificate.objects.all()
    serializer_class = CertificateSerializer

    def company_queryset(self):
        return selectors.certificate_list(company=self.company)

    def upload(self, data):
        return services.certificate_upload(
            company=self.company,
            actor=self.request.user,
            data=data["file"],
            password=data["password"],
        )


class WarningSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


@extend_schema_view(**_company_param)
class WarningViewSet(CompanyScopedAPI):
    """Folios running low and certificates expiring within 30 days."""

    queryset = Dte.objects.none()
    serializer_class = WarningSerializer
    write_perm = Perm.MANAGE_CREDENTIALS
    pagination_class = None

    @extend_schema(responses=WarningSerializer(many=True))
    def list(self, request, company_rut=None):
        warnings = selectors.dte_warnings(
            company=self.company, now=timezone.now(), today=timezone.localdate()
        )
        return Response(WarningSerializer(warnings, many=True).data)
