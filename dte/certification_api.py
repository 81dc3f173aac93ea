"""/api/v1/companies/{rut}/certification-runs/: the SII's set de pruebas read, planned, issued
and followed (issue 17; DOMAIN.md §16). Thin over dte.certification."""

import json

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from dte import certification, certification_exchange
from dte.models import CertificationRun
from dte.views import zip_download
from erp.api.views import COMPANY_PARAM, CompanyScopedAPI
from erp.errors import INVALID_INPUT, DomainError, NotFound
from erp.tenancy import Perm


class CertificationUploadSerializer(serializers.Serializer):
    set_file = serializers.FileField(help_text="El set de pruebas del SII (texto ISO-8859-1).")
    exchange_rates = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='Tipos de cambio para los sets de exportación, JSON: {"DOLAR USA": "943.57"}.',
    )


class ExchangeUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="El sobre de intercambio que envió el SII (XML).")
    recinto = serializers.CharField(
        required=False, allow_blank=True, help_text="Recinto de recepción de las mercaderías."
    )


class CertificationRunSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    percent = serializers.IntegerField(read_only=True)
    finished = serializers.BooleanField(read_only=True)
    actor = serializers.CharField(
        source="actor.get_username", read_only=True, default=None, allow_null=True
    )
    sets = serializers.SerializerMethodField()
    libros = serializers.SerializerMethodField()
    simulation = serializers.SerializerMethodField()

    class Meta:
        model = CertificationRun
        fields = (
            "id",
            "filename",
            "status",
            "status_label",
            "finished",
            "percent",
            "cases_total",
            "cases_done",
            "parsed",
            "unreadable",
            "problems",
            "exchange_rates",
            "error",
            "sets",
            "libros",
            "simulation_status",
            "simulation",
            "simulation_error",
            "actor",
            "created_at",
            "started_at",
            "finished_at",
        )

    def _summary(self, run: CertificationRun) -> dict:
        """run_summary once per run, for both fields that show it."""
        cache = self.__dict__.setdefault("_summaries", {})
        if run.pk not in cache:
            cache[run.pk] = certification.run_summary(run)
        return cache[run.pk]

    def get_sets(self, run: CertificationRun) -> list[dict]:
        return self._summary(run)["sets"]

    def get_libros(self, run: CertificationRun) -> list[dict]:
        return self._summary(run)["libros"]

    def get_simulation(self, run: CertificationRun) -> list[dict]:
        return [
            {
                "id": doc.pk,
                "tipo_dte": doc.tipo_dte,
                "partner": doc.partner_id,
                "state": doc.state,
                "folio": doc.folio,
                "monto_total": doc.monto_total,
            }
            for doc in run.simulation.order_by("id")
        ]


@extend_schema_view(
    list=extend_schema(parameters=[COMPANY_PARAM]),
    retrieve=extend_schema(parameters=[COMPANY_PARAM]),
    create=extend_schema(
        parameters=[COMPANY_PARAM],
        request={"multipart/form-data": CertificationUploadSerializer},
        responses={201: CertificationRunSerializer},
    ),
    samples=extend_schema(
        parameters=[COMPANY_PARAM],
        responses={(200, "application/zip"): OpenApiResponse(description="ZIP de PDF")},
    ),
    simulation=extend_schema(
        parameters=[COMPANY_PARAM], request=None, responses={201: CertificationRunSerializer}
    ),
    simulation_start=extend_schema(
        parameters=[COMPANY_PARAM], request=None, responses={202: CertificationRunSerializer}
    ),
    exchange=extend_schema(
        parameters=[COMPANY_PARAM],
        request={"multipart/form-data": ExchangeUploadSerializer},
        responses={201: OpenApiResponse(description="El sobre recibido y sus respuestas.")},
    ),
    exchange_answers=extend_schema(
        parameters=[COMPANY_PARAM],
        responses={(200, "application/zip"): OpenApiResponse(description="ZIP de respuestas")},
    ),
    start=extend_schema(
        parameters=[COMPANY_PARAM],
        request=None,
        responses={
            202: OpenApiResponse(
                CertificationRunSerializer, description="Queued: follow it at its own URL."
            )
        },
    ),
)
class CertificationRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CompanyScopedAPI):
    """A set de pruebas: POST the file (what was read, every line that could not be, the
    problems that stop it), then POST `start/` to issue every case with the certification CAFs
    and send each set in its own EnvioDTE; GET follows `percent` and each set's envelope."""

    queryset = CertificationRun.objects.all()
    serializer_class = CertificationRunSerializer
    write_perm = Perm.MANAGE_CREDENTIALS

    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def company_queryset(self):
        return CertificationRun.objects.filter(company=self.company).select_related("actor")

    def get_one(self, pk) -> CertificationRun:
        row = self.company_queryset().filter(pk=int(pk) if str(pk).isdigit() else None).first()
        if row is None:
            raise NotFound("Set de pruebas no encontrado.")
        return row

    def retrieve(self, request, company_rut=None, pk=None):
        return Response(self.get_serializer(self.get_one(pk)).data)

    def create(self, request, company_rut=None):
        upload = CertificationUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        rates_text = upload.validated_data.get("exchange_rates") or ""
        try:
            rates = json.loads(rates_text) if rates_text.strip() else {}
        except json.JSONDecodeError:
            rates = None
        if not isinstance(rates, dict):
            message = 'Use JSON: {"DOLAR USA": "943.57"}.'
            raise DomainError(INVALID_INPUT, message, {"exchange_rates": message})
        file = upload.validated_data["set_file"]
        run = certification.certification_read(
            company=self.company,
            actor=request.user,
            data=certification.read_upload(file),
            filename=file.name,
            exchange_rates=rates,
        )
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def samples(self, request, company_rut=None, pk=None):
        """The muestras impresas: a ZIP of every document's PDF and cedible copy."""
        run = self.get_one(pk)
        if not run.samples:
            raise NotFound("Las muestras impresas aún no están listas.")
        return zip_download(run.samples, certification.samples_filename(run))

    @action(detail=True, methods=["post"])
    def simulation(self, request, company_rut=None, pk=None):
        """Propose the simulación: drafts from the company's customers and products, editable
        through sales-documents/ before they are issued with `simulation/start/`."""
        run = self.get_one(pk)
        certification.simulation_propose(run=run, actor=request.user)
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], url_path="simulation/start")
    def simulation_start(self, request, company_rut=None, pk=None):
        run = certification.simulation_start(run=self.get_one(pk), actor=request.user)
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=False, methods=["post"], url_path="exchange")
    def exchange(self, request, company_rut=None):
        """The intercambio: the SII's test envelope taken in and answered (RespuestaDTE with
        the reception and with the commercial result, EnvioRecibos)."""
        upload = ExchangeUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        outcome = certification_exchange.exchange_take_in(
            company=self.company,
            actor=request.user,
            data=certification.read_upload(file),
            filename=file.name,
            recinto=upload.validated_data.get("recinto") or certification_exchange.DEFAULT_RECINTO,
        )
        code = status.HTTP_200_OK if outcome.repeated else status.HTTP_201_CREATED
        return Response(outcome.to_dict(), status=code)

    @action(
        detail=False,
        methods=["get"],
        url_path=r"exchange/(?P<envelope>[0-9]+)/answers",
        url_name="exchange-answers",
    )
    def exchange_answers(self, request, company_rut=None, envelope=None):
        """The three answers of an intercambio as a ZIP, to upload to the SII's site."""
        row = (
            certification_exchange.exchange_envelopes(company=self.company)
            .filter(pk=int(envelope))
            .first()
        )
        if row is None:
            raise NotFound("Sobre de intercambio no encontrado.")
        data = certification_exchange.exchange_answers_zip(company=self.company, envelope=row)
        return zip_download(data, certification_exchange.exchange_zip_filename(self.company, row))

    @action(detail=True, methods=["post"])
    def start(self, request, company_rut=None, pk=None):
        run = certification.certification_start(run=self.get_one(pk), actor=request.user)
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)
