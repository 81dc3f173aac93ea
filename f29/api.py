"""REST API of the F29: RCV imports, the monthly proposal with its trail and lifecycle, and the
reconciliation against the RCV (JSON or CSV). Periods are spelled YYYY-MM in the URL."""

from django.core.paginator import Paginator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from erp import tenancy
from erp.api.views import COMPANY_PARAM, CompanyScopedAPI, FormatIsAParameter
from erp.errors import DomainError, NotFound
from erp.periods import InvalidPeriod, parse_period, period_key
from erp.tenancy import Perm
from f29 import calc, selectors, services
from f29.models import F29Return, RcvImport, RcvKind
from f29.reconcile import Category
from f29.views import reconciliation_csv

MAX_UPLOAD = 50 * 1024 * 1024
BOX_PAGE_SIZE = 100
PERIOD_PARAM = OpenApiParameter(
    "period", str, OpenApiParameter.PATH, description="Período AAAA-MM, p. ej. 2026-10"
)


def _int_or_none(text) -> int | None:
    return int(text) if str(text).isdigit() else None


def _period(text: str):
    try:
        return services.period_from_key(text)
    except InvalidPeriod as exc:
        raise DomainError("invalid_input", str(exc), {"period": str(exc)}) from exc


class RcvImportSerializer(serializers.ModelSerializer):
    file = serializers.FileField(
        write_only=True, help_text="CSV del RCV tal como lo entrega el SII"
    )
    estado = serializers.ChoiceField(
        choices=["registro", "pendiente", "no_incluir", "reclamado"],
        required=False,
        allow_blank=True,
        help_text="Solo compras; vacío: según el encabezado del archivo.",
    )
    periodo = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="AAAA-MM; vacío: el mes de cada documento.",
    )
    actor = serializers.CharField(
        source="actor.get_username", read_only=True, default=None, allow_null=True
    )
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    percent = serializers.IntegerField(read_only=True)
    finished = serializers.BooleanField(read_only=True)

    class Meta:
        model = RcvImport
        fields = (
            "id",
            "status",
            "status_label",
            "finished",
            "percent",
            "size",
            "bytes_read",
            "lines_read",
            "error",
            "started_at",
            "finished_at",
            "kind",
            "estado",
            "periodo",
            "file",
            "filename",
            "sha256",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "rejected_rows",
            "purchases_created",
            "purchases_updated",
            "partners_created",
            "actor",
            "at",
        )
        read_only_fields = tuple(
            f for f in fields if f not in ("kind", "estado", "periodo", "file")
        )

    def validate_file(self, upload):
        if upload.size > MAX_UPLOAD:
            raise serializers.ValidationError("El archivo es demasiado grande (máximo 50 MB).")
        return upload

    def validate_periodo(self, value):
        if not value:
            return None
        try:
            return parse_period(value)
        except InvalidPeriod as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["periodo"] = period_key(instance.periodo) if instance.periodo else None
        return data


@extend_schema_view(
    list=extend_schema(parameters=[COMPANY_PARAM]),
    create=extend_schema(parameters=[COMPANY_PARAM], responses={202: RcvImportSerializer}),
    retrieve=extend_schema(parameters=[COMPANY_PARAM]),
)
class RcvImportViewSet(CompanyScopedAPI):
    """`POST` a CSV of the SII's RCV (multipart: `file`, `kind` compras|ventas, optional
    `estado` and `periodo`). The file is checked at once (a file that is not an RCV CSV of that
    kind is refused whole: 400, nothing stored) and imported in the background: the answer is
    `202` with the import (`status` queued, `Location` its URL). `GET …/rcv-imports/{id}/`
    follows it: status (queued, running, done, failed), `percent`, `lines_read`, and the counts
    created / updated / unchanged / rejected as they grow. Importing the same file again
    changes nothing."""

    queryset = RcvImport.objects.none()
    serializer_class = RcvImportSerializer
    parser_classes = (MultiPartParser, FormParser)
    write_perm = Perm.PREPARE_TAX

    def company_queryset(self):
        return selectors.rcv_import_list(company=self.company)

    def list(self, request, company_rut=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, company_rut=None):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        batch = services.rcv_import_create(
            company=self.company,
            actor=request.user,
            upload=data["file"],
            kind=data["kind"],
            estado=data.get("estado") or None,
            periodo=data.get("periodo"),
        )
        location = f"{request.path.rstrip('/')}/{batch.pk}/"
        return Response(
            self.get_serializer(batch).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": location},
        )

    def get_one(self, pk):
        batch = selectors.rcv_import_list(company=self.company).filter(pk=_int_or_none(pk)).first()
        if batch is None:
            raise NotFound("Importación no encontrada.")
        return batch

    def retrieve(self, request, company_rut=None, pk=None):
        return Response(self.get_serializer(self.get_object()).data)


class F29Serializer(serializers.ModelSerializer):
    period = serializers.SerializerMethodField()
    state_label = serializers.CharField(source="get_state_display", read_only=True)
    events = serializers.SerializerMethodField()
    trail = serializers.SerializerMethodField()

    class Meta:
        model = F29Return
        fields = (
            "period",
            "state",
            "state_label",
            "boxes",
            "trail",
            "ppm_rate",
            "remanente_override",
            "uso_comun_factor",
            "computed_at",
            "reviewed_at",
            "filed_at",
            "folio_sii",
            "events",
        )
        read_only_fields = fields

    def get_period(self, obj) -> str:
        return period_key(obj.periodo)

    def get_trail(self, obj) -> dict:
        return {k: v for k, v in obj.trail.items() if not k.startswith("_")}

    def get_events(self, obj) -> list[dict]:
        return [
            {
                "action": e.action,
                "actor": e.actor.get_username() if e.actor else None,
                "reason": e.reason,
                "at": e.at.isoformat(),
            }
            for e in obj.events.select_related("actor")
        ]


class ComputeSerializer(serializers.Serializer):
    ppm_rate = serializers.DecimalField(
        max_digits=6, decimal_places=3, required=False, allow_null=True, min_value=0
    )
    remanente = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    uso_comun_factor = serializers.DecimalField(
        max_digits=7, decimal_places=6, required=False, allow_null=True, min_value=0, max_value=1
    )


class TransitionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True)
    folio_sii = serializers.CharField(required=False, allow_blank=True, max_length=20)


_F29_ACTIONS = ("list", "retrieve", "compute", "review", "file", "reopen", "box", "reconciliation")


@extend_schema_view(
    **{
        a: extend_schema(parameters=[COMPANY_PARAM] + ([PERIOD_PARAM] if a != "list" else []))
        for a in _F29_ACTIONS
    }
)
class F29ViewSet(CompanyScopedAPI):
    """The monthly F29 proposal. `POST {period}/compute/` computes or recomputes the draft;
    `review/`, `file/` (locks the period) and `reopen/` (with `reason`) move it along;
    `boxes/{code}/` is a box's trail with its documents; `reconciliation/` compares the books
    with the imported RCV (`?kind=compras|ventas&category=…`, `&format=csv` for a file)."""

    content_negotiation_class = FormatIsAParameter
    queryset = F29Return.objects.none()
    serializer_class = F29Serializer
    lookup_field = "period"
    lookup_value_regex = r"\d{4}-\d{2}"
    write_perm = Perm.PREPARE_TAX

    def company_queryset(self):
        return selectors.f29_list(company=self.company)

    def _get(self, period):
        return selectors.f29_get(company=self.company, periodo=_period(period))

    def list(self, request, company_rut=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, company_rut=None, period=None):
        return Response(self.get_serializer(self._get(period)).data)

    @extend_schema(request=ComputeSerializer, responses=F29Serializer)
    @action(detail=True, methods=["post"])
    def compute(self, request, company_rut=None, period=None):
        serializer = ComputeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        options = {k: v for k, v in serializer.validated_data.items() if k != "ppm_rate"}
        f29 = services.f29_compute(
            company=self.company,
            periodo=_period(period),
            actor=request.user,
            ppm_rate=serializer.validated_data.get("ppm_rate"),
            **options,
        )
        return Response(self.get_serializer(f29).data)

    def _transition(self, request, period, apply):
        tenancy.require(self.membership, Perm.FILE_TAX)
        serializer = TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        f29 = apply(self._get(period), serializer.validated_data)
        return Response(self.get_serializer(f29).data)

    @extend_schema(request=None, responses=F29Serializer)
    @action(detail=True, methods=["post"])
    def review(self, request, company_rut=None, period=None):
        return self._transition(
            request, period, lambda f29, _: services.f29_review(f29=f29, actor=request.user)
        )

    @extend_schema(request=TransitionSerializer, responses=F29Serializer)
    @action(detail=True, methods=["post"])
    def file(self, request, company_rut=None, period=None):
        return self._transition(
            request,
            period,
            lambda f29, data: services.f29_file(
                f29=f29, actor=request.user, folio_sii=data.get("folio_sii", "")
            ),
        )

    @extend_schema(request=TransitionSerializer, responses=F29Serializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, company_rut=None, period=None):
        return self._transition(
            request,
            period,
            lambda f29, data: services.f29_reopen(
                f29=f29, actor=request.user, reason=data.get("reason", "")
            ),
        )

    @extend_schema(
        parameters=[OpenApiParameter("code", int, OpenApiParameter.PATH)],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"], url_path=r"boxes/(?P<code>\d+)")
    def box(self, request, company_rut=None, period=None, code=None):
        """A box: its value, how it is made, and the documents behind each part, 100 a page
        (`?page=`; each part says its `page` and `pages`)."""
        f29 = self._get(period)
        box = f29.trail.get(str(code))
        if box is None:
            raise NotFound("Casilla desconocida.")
        parts = []
        for part in box["parts"]:
            docs = selectors.box_documents(company=self.company, periodo=f29.periodo, part=part)
            # Each part pages on its own; a page past a part's last shows its last page.
            page = Paginator(docs, BOX_PAGE_SIZE).get_page(request.query_params.get("page"))
            parts.append(
                {
                    **part,
                    "field_label": calc.field_label(part["field"]),
                    "page": page.number,
                    "pages": page.paginator.num_pages,
                    "documents": [_doc_row(d) for d in page],
                }
            )
        return Response({**box, "value": f29.boxes.get(str(code)), "parts": parts})

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=RcvKind.values),
            OpenApiParameter("category", str, enum=[c.value for c in Category]),
            OpenApiParameter(
                "format",
                str,
                description="`csv`: the lines as a CSV file; anything else (`json`): JSON.",
            ),
        ],
        # `format=csv` answers the lines as a CSV file.
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    @action(detail=True, methods=["get"])
    def reconciliation(self, request, company_rut=None, period=None):
        periodo = _period(period)
        kind = request.query_params.get("kind") or RcvKind.COMPRAS
        result = services.f29_reconcile(company=self.company, periodo=periodo, kind=kind)
        category = request.query_params.get("category") or ""
        if category and category not in {c.value for c in Category}:
            message = "Use matched, only_books, only_rcv, amounts_differ o state_differs."
            raise DomainError("invalid_input", message, {"category": message})
        lines = [ln for ln in result.lines if not category or ln.category == category]
        if request.query_params.get("format") == "csv":
            return reconciliation_csv(lines, kind=kind, period=period)
        page = self.paginate_queryset(lines) or []
        return self.get_paginated_response(
            {
                "period": period,
                "kind": kind,
                "rcv_imported": result.rcv_imported,
                "summary": {
                    c.value: {
                        "count": t.count,
                        "books_total": t.books_total,
                        "rcv_total": t.rcv_total,
                    }
                    for c, t in result.summary.items()
                },
                "lines": [_recon_row(line) for line in page],
            }
        )


def _doc_row(doc) -> dict:
    if hasattr(doc, "tipo_dte"):
        return {
            "id": doc.pk,
            "tipo": doc.tipo_dte,
            "folio": doc.folio,
            "rut": doc.partner.rut if doc.partner else "66666666-6",
            "fecha": doc.fecha_emision.isoformat(),
            "monto_exento": doc.monto_exento,
            "monto_neto": doc.monto_neto,
            "iva": doc.iva,
            "monto_total": doc.monto_total,
        }
    return {
        "id": doc.pk,
        "tipo": doc.tipo_doc,
        "folio": doc.folio,
        "rut": doc.rut_emisor,
        "fecha": doc.fecha.isoformat(),
        "monto_exento": doc.monto_exento,
        "monto_neto": doc.monto_neto,
        "iva_recuperable": doc.iva_recuperable,
        "iva_uso_comun": doc.iva_uso_comun,
        "monto_total": doc.monto_total,
    }


def _side(doc) -> dict | None:
    if doc is None:
        return None
    return {
        "monto_exento": doc.monto_exento,
        "monto_neto": doc.monto_neto,
        "monto_iva": doc.monto_iva,
        "monto_total": doc.monto_total,
        "estado": doc.estado,
        "id": doc.ref,
    }


def _recon_row(line) -> dict:
    doc = line.doc
    return {
        "category": line.category.value,
        "tipo": doc.tipo,
        "folio": doc.folio,
        "rut": doc.rut,
        "razon_social": doc.razon_social,
        "fecha": doc.fecha.isoformat(),
        "differences": list(line.differences),
        "books": _side(line.books),
        "rcv": _side(line.rcv),
    }
