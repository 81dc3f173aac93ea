"""REST API of dte: issue a draft, list and download DTEs and envelopes, upload CAFs and
certificates (admins), the warnings about folios and certificates, and the documents suppliers
send (received DTEs: intake, acceptance, claims, receipt of goods)."""

import django_filters
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from dte import receiving, selectors, services, views
from dte.forms import read_received_uploads
from dte.models import (
    Caf,
    Certificate,
    Dte,
    Envelope,
    IntakeBatch,
    IntakeSource,
    ReceivedDte,
    ReceivedDteEvent,
)
from dte.sii.errors import SiiError
from dte.views import xml_download
from erp import selectors as erp_selectors
from erp import tenancy
from erp.api.filtering import IntegerFilter, StrictFilterSet
from erp.api.serializers import SalesDocumentSerializer
from erp.api.views import COMPANY_PARAM, CompanyScopedAPI, FormatIsAParameter
from erp.errors import DomainError, NotFound
from erp.forms import RutFormField
from erp.periods import InvalidPeriod, parse_period
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


# Drafts one batch request may issue: a few seconds at most (bench/issue_throughput.py); more
# go in several requests.
MAX_ISSUE_BATCH = 500


class IssueBatchSerializer(serializers.Serializer):
    documents = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),  # BigAutoField
        min_length=1,
        max_length=MAX_ISSUE_BATCH,
        help_text=f"Ids of drafts of this company, up to {MAX_ISSUE_BATCH}.",
    )

    def validate_documents(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Hay ids repetidos en la lista.")
        return value


class IssueBatchItemSerializer(serializers.Serializer):
    document = serializers.IntegerField()
    issued = serializers.BooleanField()
    dte = serializers.IntegerField(allow_null=True)
    tipo_dte = serializers.IntegerField()
    folio = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(allow_blank=True)
    error = serializers.DictField(allow_null=True)


class IssueBatchResultSerializer(serializers.Serializer):
    issued = serializers.IntegerField()
    refused = serializers.IntegerField()
    envelopes = serializers.ListField(child=serializers.IntegerField())
    results = IssueBatchItemSerializer(many=True)


def _batch_item(outcome) -> dict:
    dte, error = outcome.dte, outcome.error
    return {
        "document": outcome.document.pk,
        "issued": dte is not None,
        "dte": dte.pk if dte else None,
        "tipo_dte": outcome.document.tipo_dte,
        "folio": dte.folio if dte else None,
        "status": dte.status if dte else "",
        "error": (
            {"code": error.code, "message": error.message, "fields": error.fields}
            if error
            else None
        ),
    }


@extend_schema_view(**_company_param)
class IssueViewSet(CompanyScopedAPI):
    """`POST …/sales-documents/{id}/issue/`: folio, TED, signature and envelope for a draft."""

    queryset = Dte.objects.all()
    serializer_class = DteSerializer
    write_perm = Perm.ISSUE_DOCUMENTS

    @extend_schema(request=None, responses={201: DteSerializer})
    @action(detail=True, methods=["post"])
    def issue(self, request, company_rut=None, pk=None):
        document = erp_selectors.sales_document_ref(company=self.company, pk=pk)
        dte = services.dte_issue(document=document, actor=request.user)
        return Response(DteSerializer(dte).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=IssueBatchSerializer, responses={200: IssueBatchResultSerializer})
    @action(detail=False, methods=["post"], url_path="issue-batch")
    def issue_batch(self, request, company_rut=None):
        """Issue up to 500 drafts in one request: each gets its folio or its own refusal (one
        refusal never stops the others), and the issued ones go to the SII in shared envelopes.
        Results come in the order asked. An id that is not a draft of this company is refused
        as not found."""
        serializer = IssueBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ids = serializer.validated_data["documents"]
        found = erp_selectors.sales_document_list(company=self.company).filter(pk__in=ids)
        found = found.prefetch_related(None)
        drafts = {d.pk: d for d in found}
        outcomes, envelopes = services.dte_issue_many(
            documents=[drafts[pk] for pk in ids if pk in drafts], actor=request.user
        )
        by_pk = {o.document.pk: _batch_item(o) for o in outcomes}
        missing = {"code": "not_found", "message": "No existe en esta empresa.", "fields": {}}
        results = [
            by_pk.get(pk)
            or {
                "document": pk,
                "issued": False,
                "dte": None,
                "tipo_dte": 0,
                "folio": None,
                "status": "",
                "error": missing,
            }
            for pk in ids
        ]
        issued = sum(1 for r in results if r["issued"])
        body = {
            "issued": issued,
            "refused": len(results) - issued,
            "envelopes": [e.pk for e in envelopes],
            "results": results,
        }
        return Response(IssueBatchResultSerializer(body).data)


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


# --- Received documents (suppliers' DTEs) ---------------------------------------------------


class SiiUnavailable(DomainError):
    """The SII could not be reached (or did not answer) while recording a decision: nothing was
    recorded; try again later."""

    status = 503

    def __init__(self, exc: SiiError) -> None:
        super().__init__(
            "sii_unavailable",
            f"No se pudo contactar al SII ({exc.message}); no se registró nada, intente más tarde.",
        )


ERROR_REF = {"$ref": "#/components/schemas/Error"}
SII_UNAVAILABLE = OpenApiResponse(
    ERROR_REF,
    description="The SII did not answer (`sii_unavailable`): nothing was recorded; try again.",
)


def _sii_call(act):
    try:
        return act()
    except SiiError as exc:
        raise SiiUnavailable(exc) from exc


class ReceivedCheckSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="signature, ted, caf, totals, schema or xml")
    label = serializers.CharField(help_text="En español: Firma, Timbre (TED), CAF, …")
    ok = serializers.BooleanField()
    detail = serializers.CharField(allow_blank=True)


class ReceivedEventSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    actor = serializers.CharField(
        source="actor.get_username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = ReceivedDteEvent
        fields = ("kind", "kind_label", "code", "message", "actor", "at")
        read_only_fields = fields


class ReceivedLineSerializer(serializers.Serializer):
    numero = serializers.IntegerField()
    nombre = serializers.CharField(allow_blank=True)
    descripcion = serializers.CharField(allow_blank=True)
    cantidad = serializers.CharField(allow_null=True, help_text="Decimal, como texto.")
    unidad = serializers.CharField(allow_blank=True)
    precio = serializers.CharField(allow_null=True, help_text="Decimal, como texto.")
    descuento = serializers.IntegerField()
    monto = serializers.IntegerField()
    exento = serializers.BooleanField()


class ReceivedReferenceSerializer(serializers.Serializer):
    tipo = serializers.CharField(allow_blank=True)
    folio = serializers.CharField(allow_blank=True)
    fecha = serializers.DateField(allow_null=True)
    codigo = serializers.IntegerField(allow_null=True)
    razon = serializers.CharField(allow_blank=True)


class ReceivedDteSerializer(serializers.ModelSerializer):
    tipo_label = serializers.SerializerMethodField()
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    sii_confirmation_label = serializers.CharField(
        source="get_sii_confirmation_display", read_only=True
    )
    commercial_result_label = serializers.CharField(
        source="get_commercial_result_display", read_only=True
    )
    days_left = serializers.SerializerMethodField()
    envelope = serializers.IntegerField(source="envelope_id", read_only=True)
    source = serializers.CharField(source="envelope.source", read_only=True)
    purchase = serializers.IntegerField(source="purchase_id", read_only=True, allow_null=True)
    checks = serializers.SerializerMethodField()
    events = ReceivedEventSerializer(many=True, read_only=True)
    lines = serializers.SerializerMethodField()
    references = serializers.SerializerMethodField()
    reasons = serializers.ListField(child=serializers.CharField(), read_only=True)
    answers = serializers.SerializerMethodField()

    class Meta:
        model = ReceivedDte
        fields = (
            "id",
            "tipo_dte",
            "tipo_label",
            "folio",
            "rut_emisor",
            "razon_social",
            "fecha_emision",
            "fecha_vencimiento",
            "monto_neto",
            "monto_exento",
            "iva",
            "otros_impuestos",
            "monto_total",
            "status",
            "status_label",
            "sii_confirmation",
            "sii_confirmation_label",
            "sii_received_at",
            "claim_deadline",
            "days_left",
            "commercial_result",
            "commercial_result_label",
            "commercial_glosa",
            "rcv_action",
            "goods_received_at",
            "tax_period",
            "purchase",
            "envelope",
            "source",
            "received_at",
            "giro",
            "correo_emisor",
            "estado_recep_dte",
            "signed_form",
            "reasons",
            "checks",
            "lines",
            "references",
            "answers",
            "events",
        )
        read_only_fields = fields

    def get_tipo_label(self, obj) -> str:
        return views.tipo_label(obj.tipo_dte)

    def get_days_left(self, obj) -> int | None:
        """Calendar days left to accept or claim (0 on the last day, negative when past); null
        once decided, or before the SII's reception date is known."""
        return views.claim_window(obj)["days"]

    @extend_schema_field(ReceivedCheckSerializer(many=True))
    def get_checks(self, obj):
        return [
            {
                "name": str(check.get("name", "")),
                "label": views.CHECK_LABELS.get(check.get("name", ""), check.get("name", "")),
                "ok": bool(check.get("ok")),
                "detail": str(check.get("detail", "")),
            }
            for check in (obj.checks or [])
        ]

    @extend_schema_field(ReceivedLineSerializer(many=True))
    def get_lines(self, obj):
        return (obj.facts or {}).get("lines", [])

    @extend_schema_field(ReceivedReferenceSerializer(many=True))
    def get_references(self, obj):
        return (obj.facts or {}).get("references", [])

    @extend_schema_field(
        serializers.ListField(
            child=serializers.ChoiceField(choices=views.ANSWER_KINDS),
            help_text="Stored answers and files (respuesta: RespuestaDTE of the envelope; "
            "resultado: ResultadoDTE; recibo: EnvioRecibos; sobre: the supplier's file).",
        )
    )
    def get_answers(self, obj):
        return views.answer_kinds(obj)


class ReceivedUploadSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(),
        allow_empty=False,
        help_text="One or more XML (EnvioDTE or a lone DTE) or ZIP files; repeat the field.",
    )

    def validate_files(self, uploads):
        return read_received_uploads(uploads, serializers.ValidationError)


class IntakeDocumentSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="The received document, if stored.")
    rut_emisor = serializers.CharField(allow_blank=True)
    tipo_dte = serializers.IntegerField(allow_null=True)
    folio = serializers.IntegerField(allow_null=True)
    fecha_emision = serializers.DateField(allow_null=True)
    monto_total = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=receiving.RECEIVED_OUTCOMES)
    reasons = serializers.ListField(child=serializers.CharField())
    purchase_id = serializers.IntegerField(allow_null=True)


class IntakeFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    estado_recep_env = serializers.IntegerField(help_text="0: envío recibido conforme.")
    glosa = serializers.CharField(allow_blank=True)


class IntakeResultSerializer(serializers.Serializer):
    documents = IntakeDocumentSerializer(many=True)
    files = IntakeFileSerializer(many=True)
    problems = serializers.ListField(child=serializers.CharField())


class IntakeBatchSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    percent = serializers.IntegerField(read_only=True)
    finished = serializers.BooleanField(read_only=True)
    actor = serializers.CharField(
        source="actor.get_username", read_only=True, default=None, allow_null=True
    )
    outcomes = IntakeDocumentSerializer(many=True, read_only=True)
    problems = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = IntakeBatch
        fields = (
            "id",
            "status",
            "status_label",
            "finished",
            "percent",
            "filename",
            "size",
            "files_total",
            "files_done",
            "documents",
            "received",
            "duplicates",
            "refused",
            "outcomes",
            "problems",
            "error",
            "actor",
            "created_at",
            "started_at",
            "finished_at",
        )
        read_only_fields = fields


class AcceptSerializer(serializers.Serializer):
    discrepancies = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=256,
        default="",
        help_text="Reparos: present, the document is accepted with discrepancies.",
    )
    periodo = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="AAAA-MM: the purchase book's period; empty: the month it was received.",
    )

    def validate_periodo(self, value):
        if not value:
            return None
        try:
            return parse_period(value)
        except InvalidPeriod as exc:
            raise serializers.ValidationError(str(exc)) from exc


class ClaimSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=list(receiving.CLAIM_ACTIONS),
        help_text="RCD: contenido del documento; RFP: falta parcial de mercaderías; "
        "RFT: falta total de mercaderías.",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=256,
        default="",
        help_text="Sent to the supplier; empty: the action's description.",
    )


class GoodsReceiptSerializer(serializers.Serializer):
    recinto = serializers.CharField(max_length=80, help_text="Where the goods were received.")


class BulkAcceptSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),  # a BigAutoField
        allow_empty=False,
        max_length=200,
    )


class BulkAcceptResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ok = serializers.BooleanField()
    status = serializers.CharField(allow_null=True, help_text="The document's status after.")
    code = serializers.CharField(allow_null=True, help_text="The error's code when not ok.")
    message = serializers.CharField(allow_blank=True)


class BulkAcceptAnswerSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    results = BulkAcceptResultSerializer(many=True)


class RutFilter(django_filters.CharFilter):
    field_class = RutFormField


class ReceivedDteFilter(StrictFilterSet):
    rut_emisor = RutFilter(help_text="RUT del proveedor, p. ej. 77123456-9")
    desde = django_filters.DateFilter(field_name="fecha_emision", lookup_expr="gte")
    hasta = django_filters.DateFilter(field_name="fecha_emision", lookup_expr="lte")
    days_left_lte = IntegerFilter(
        method="filter_days_left",
        min_value=-3650,
        max_value=3650,
        help_text="Still open, with at most this many days left to claim (overdue included).",
    )

    class Meta:
        model = ReceivedDte
        fields = ("status", "tipo_dte", "folio", "sii_confirmation")

    def filter_days_left(self, queryset, name, value):
        return views.deadline_within(queryset, int(value))


_RECEIVED_ACTIONS = ("list", "retrieve", "create", "xml", "pdf", "accept", "claim")
_RECEIVED_ACTIONS += ("goods_receipt", "bulk_accept")


@extend_schema_view(**{a: extend_schema(parameters=[COMPANY_PARAM]) for a in _RECEIVED_ACTIONS})
class ReceivedDteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CompanyScopedAPI):
    """Suppliers' DTEs received by the company. `POST` takes in files (multipart, field `files`
    repeated: XML or ZIP) as the exchange mailbox does: each file gets its RespuestaDTE, each
    document is verified and stored (refused ones with their reasons), and the SII is asked
    about the new ones in the background. The answer is `201` with each document's outcome when
    something new was stored, `200` when every file had been received before (nothing changed),
    and `400` when no XML could be read from the upload. Decisions (`accept/`, `claim/`,
    `goods-receipt/`, `bulk-accept/`) are recorded at the SII's RCV and answered to the
    supplier; a document the SII has not confirmed yet (`sii_confirmation` DOK) cannot be
    accepted. Claims are possible for 8 days after the SII received it (`days_left`)."""

    queryset = ReceivedDte.objects.all()
    serializer_class = ReceivedDteSerializer
    write_perm = Perm.RECEIVE_DOCUMENTS
    filterset_class = ReceivedDteFilter
    search_fields = ("razon_social", "rut_emisor")
    ordering_fields = ("received_at", "fecha_emision", "folio", "monto_total", "claim_deadline")

    def get_parsers(self):
        """Files come as multipart; decisions as JSON. (DRF asks for the parsers before it
        sets `action`, so the action is looked up from the method when not set yet.)"""
        action = getattr(self, "action", None)
        request = getattr(self, "request", None)
        if action is None and request is not None and getattr(self, "action_map", None):
            action = self.action_map.get(request.method.lower())
        if action == "create":
            return [MultiPartParser(), FormParser()]
        return [JSONParser()]

    def company_queryset(self):
        return views.received_rows(self.company).prefetch_related("events__actor")

    def get_one(self, pk):
        return views.received_get(self.company, pk)

    def _detail(self, pk) -> Response:
        row = self.get_one(pk)
        return Response(ReceivedDteSerializer(row).data)

    def retrieve(self, request, company_rut=None, pk=None):
        return self._detail(pk)

    @extend_schema(
        request={"multipart/form-data": ReceivedUploadSerializer},
        responses={
            201: IntakeResultSerializer,
            200: OpenApiResponse(
                IntakeResultSerializer, description="Every file had been received before."
            ),
            202: OpenApiResponse(
                IntakeBatchSerializer,
                description=(
                    "More than 20 files: taken in by a task; follow it at the `Location` "
                    "(received-dte-batches/{id}/)."
                ),
            ),
        },
    )
    def create(self, request, company_rut=None):
        serializer = ReceivedUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = receiving.intake_start(
            company=self.company,
            uploads=serializer.validated_data["files"],
            source=IntakeSource.API,
            actor=request.user,
        )
        if isinstance(result, IntakeBatch):
            base = request.path.rstrip("/").rsplit("/", 1)[0]
            return Response(
                IntakeBatchSerializer(result).data,
                status=status.HTTP_202_ACCEPTED,
                headers={"Location": f"{base}/received-dte-batches/{result.pk}/"},
            )
        body = result.to_dict()
        if not result.envelopes:
            problems = body["problems"] or ["No se encontró ningún archivo XML."]
            raise DomainError(
                "invalid_input",
                "No se pudo leer ningún documento: " + "; ".join(problems),
                {"files": problems},
            )
        fresh = any(not envelope.repeated for envelope in result.envelopes)
        return Response(
            IntakeResultSerializer(body).data,
            status=status.HTTP_201_CREATED if fresh else status.HTTP_200_OK,
        )

    @extend_schema(responses={(200, "application/xml"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def xml(self, request, company_rut=None, pk=None):
        """The document as the supplier signed it (ISO-8859-1)."""
        row = self.get_one(pk)
        return xml_download(row.xml, row.filename)

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            400: OpenApiResponse(ERROR_REF, description="The document cannot be printed."),
        }
    )
    @action(detail=True, methods=["get"])
    def pdf(self, request, company_rut=None, pk=None):
        """The document printed from its signed XML, with its PDF417 stamp."""
        row = self.get_one(pk)
        response = HttpResponse(views.received_pdf_bytes(row), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{row.filename[:-4]}.pdf"'
        return response

    @extend_schema(
        request=AcceptSerializer,
        responses={200: ReceivedDteSerializer, 503: SII_UNAVAILABLE},
    )
    @action(detail=True, methods=["post"])
    def accept(self, request, company_rut=None, pk=None):
        """Accept (ACD at the SII; ResultadoDTE to the supplier; booked as a purchase), with
        `discrepancies` to accept with reparos."""
        row = self.get_one(pk)
        serializer = AcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        _sii_call(
            lambda: receiving.accept(
                received=row,
                actor=request.user,
                discrepancies=data["discrepancies"].strip(),
                periodo=data["periodo"],
            )
        )
        return self._detail(pk)

    @extend_schema(
        request=ClaimSerializer,
        responses={200: ReceivedDteSerializer, 503: SII_UNAVAILABLE},
    )
    @action(detail=True, methods=["post"])
    def claim(self, request, company_rut=None, pk=None):
        """Claim at the SII (RCD, RFP or RFT) within the 8 days; ResultadoDTE rejected."""
        row = self.get_one(pk)
        serializer = ClaimSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        _sii_call(
            lambda: receiving.claim(
                received=row, actor=request.user, action=data["action"], reason=data["reason"]
            )
        )
        return self._detail(pk)

    @extend_schema(
        request=GoodsReceiptSerializer,
        responses={200: ReceivedDteSerializer, 503: SII_UNAVAILABLE},
    )
    @action(detail=True, methods=["post"], url_path="goods-receipt")
    def goods_receipt(self, request, company_rut=None, pk=None):
        """The receipt of goods or services (Ley 19.983): ERM at the SII and the EnvioRecibos
        to the supplier."""
        row = self.get_one(pk)
        serializer = GoodsReceiptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _sii_call(
            lambda: receiving.acknowledge_goods(
                received=row, actor=request.user, recinto=serializer.validated_data["recinto"]
            )
        )
        return self._detail(pk)

    @extend_schema(request=BulkAcceptSerializer, responses={200: BulkAcceptAnswerSerializer})
    @action(detail=False, methods=["post"], url_path="bulk-accept")
    def bulk_accept(self, request, company_rut=None):
        """Accept each listed document; one's refusal never stops the others. The answer has a
        result per id (`ok`, or the error's `code` and `message`)."""
        serializer = BulkAcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = []
        for pk in dict.fromkeys(serializer.validated_data["ids"]):
            results.append(self._accept_one(pk))
        accepted = sum(1 for r in results if r["ok"])
        return Response({"accepted": accepted, "results": results})

    def _accept_one(self, pk: int) -> dict:
        try:
            row = self.get_one(pk)
        except NotFound as exc:
            return {"id": pk, "ok": False, "status": None, "code": exc.code, "message": exc.message}
        try:
            row = _sii_call(lambda: receiving.accept(received=row, actor=self.request.user))
        except DomainError as exc:
            current = ReceivedDte.objects.filter(pk=pk).values_list("status", flat=True).first()
            return {
                "id": pk,
                "ok": False,
                "status": current,
                "code": exc.code,
                "message": exc.message,
            }
        return {"id": pk, "ok": True, "status": row.status, "code": None, "message": "Aceptado."}


@extend_schema_view(
    list=extend_schema(parameters=[COMPANY_PARAM]),
    retrieve=extend_schema(parameters=[COMPANY_PARAM]),
)
class ReceivedBatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CompanyScopedAPI):
    """Large uploads of suppliers' DTEs (more than 20 files) taken in by a task: `status`
    (queued, running, done, failed), `percent`, `files_done` of `files_total`, the counts
    received / duplicates / refused as they grow, and, when done, each document's outcome."""

    queryset = IntakeBatch.objects.all()
    serializer_class = IntakeBatchSerializer
    write_perm = Perm.RECEIVE_DOCUMENTS  # nothing to write here: other methods are refused

    def company_queryset(self):
        return IntakeBatch.objects.filter(company=self.company).select_related("actor")

    def get_one(self, pk):
        batch = self.company_queryset().filter(pk=int(pk) if str(pk).isdigit() else None)
        row = batch.first()
        if row is None:
            raise NotFound("Carga no encontrada.")
        return row

    def retrieve(self, request, company_rut=None, pk=None):
        return Response(self.get_serializer(self.get_one(pk)).data)
