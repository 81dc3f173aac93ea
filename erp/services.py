"""Every write to erp's data goes through here: validation against the rules, the transaction,
the audit row. Views, the API, admin and commands parse input and call one of these.

Inputs are plain mappings of already-typed values (Decimal, date, int ids); a rule that says no
raises DomainError with field-level messages, and nothing is written.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from erp import exports, siicodes
from erp.doctypes import (
    FOREIGN_RECEIVER_RUT,
    IVA_NO_RECUPERABLE_CODES,
    PURCHASE_TYPES,
    TASA_IVA,
    CodRef,
    FormaPago,
    IndTraslado,
    TipoDte,
    catalog_price,
    codes,
    liquidable,
)
from erp.errors import (
    DOCUMENT_NOT_DRAFT,
    DUPLICATE_CODE,
    DUPLICATE_DOCUMENT,
    DUPLICATE_RUT,
    IN_USE,
    INVALID_INPUT,
    PERIOD_CLOSED,
    DomainError,
)
from erp.models import (
    AdjustmentType,
    AuditEvent,
    ClosedPeriod,
    CommissionKind,
    Company,
    DocumentState,
    Partner,
    Product,
    PurchaseDocument,
    PurchaseSource,
    PurchaseState,
    SalesDocument,
    SalesDocumentCommission,
    SalesDocumentLine,
    SalesDocumentReference,
)
from erp.money import percent_of, round_clp
from erp.periods import month_start, period_label
from erp.rut import InvalidRut, normalize_rut
from erp.totals import (
    CommissionInput,
    ExportTotals,
    GlobalAdjustment,
    LineInput,
    LiquidacionTotals,
    Movement,
    Totals,
    TotalsError,
    ValueType,
    commission_iva,
    compute_export_totals,
    compute_liquidacion_totals,
    compute_totals,
    liquidated_amount,
)

PARTNER_FIELDS = (
    "rut",
    "razon_social",
    "giro",
    "direccion",
    "comuna",
    "ciudad",
    "email_dte",
    "contacto",
    "telefono",
    "num_id",
    "nacionalidad",
    "is_customer",
    "is_supplier",
)
PRODUCT_FIELDS = ("code", "name", "description", "unit", "unit_price", "is_exempt", "is_active")
GUIA_FIELDS = (
    "ind_traslado",
    "tipo_despacho",
    "patente",
    "rut_transportista",
    "rut_chofer",
    "nombre_chofer",
    "dir_destino",
    "comuna_destino",
    "ciudad_destino",
)
EXPORT_FIELDS = ("moneda", "tipo_cambio", "forma_pago_exportacion", "ind_servicio", "aduana")
DOCUMENT_FIELDS = (
    "tipo_dte",
    "fecha_emision",
    "fecha_vencimiento",
    "forma_pago",
    "partner",
    "global_discount_type",
    "global_discount_value",
    "global_surcharge_type",
    "global_surcharge_value",
    "notes",
    *GUIA_FIELDS,
    *EXPORT_FIELDS,
)
LINE_FIELDS = (
    "product",
    "name",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "discount_pct",
    "is_exempt",
    "tipo_doc_liq",
)
COMMISSION_FIELDS = ("tipo_movim", "glosa", "tasa", "neto", "exento")
MAX_COMMISSIONS = 20  # Comisiones occurrences in DTE_v10.xsd
REFERENCE_FIELDS = ("tipo_doc_ref", "folio_ref", "rut_otr", "fecha_ref", "cod_ref", "razon_ref")
MAX_REFERENCES = 40
CERTIFICATION_REFERENCE = "SET"  # TpoDocRef of the SII's set de pruebas case (DOMAIN.md §16)
# A sale on credit with no due date falls due this many days after it is issued.
CREDIT_DAYS = 30
INVALID_MESSAGE = "Revise los datos ingresados."


# ---------------------------------------------------------------- audit


def user_or_none(actor):
    """The acting user for a foreign key: None for the system (commands, tasks, demo data)."""
    return actor if getattr(actor, "is_authenticated", False) else None


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str | dict | list):
        return value  # JSON already (the customs data of an export is a JSON object)
    if isinstance(value, Decimal | date):
        return str(value)
    if hasattr(value, "pk"):
        return value.pk
    return str(value)


def _snapshot(obj, fields: Iterable[str]) -> dict[str, Any]:
    """Field values as JSON-safe scalars; a foreign key as its id, without loading the row."""
    return {f: _plain(getattr(obj, obj._meta.get_field(f).attname)) for f in fields}


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def update_rows(model, objects: Sequence[Any], fields: Sequence[str]) -> None:
    """Write `fields` of many rows, each with its own values, as one prepared UPDATE run for all
    (executemany: one round trip with psycopg's pipeline, none with SQLite). Django's
    bulk_update builds a CASE per field and row, which costs more than the rows themselves."""
    if not objects:
        return
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    params = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns] + [obj.pk]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


@contextmanager
def server_bound() -> Iterator[None]:
    """On PostgreSQL, the statements of the block send their values apart from the SQL
    (server-side binding) instead of quoted into it. Django's default, client-side binding,
    escapes every byte of a bytea value into the text of the statement: for a batch's 2.5 MB
    of signed XML, most of the insert's time. Only for plain INSERTs and UPDATEs: a parameter
    repeated in a GROUP BY is one reason Django does not bind this way by default."""
    if connection.vendor != "postgresql":
        yield
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    raw = connection.connection
    previous = raw.cursor_factory
    raw.cursor_factory = ServerBindingCursor
    try:
        yield
    finally:
        raw.cursor_factory = previous


def audit_event(
    *, company: Company, actor, action: str, obj, changes: Mapping[str, Any] | None = None
) -> AuditEvent:
    """The audit row of one change, unsaved: a batch writes many in one bulk_create."""
    return AuditEvent(
        company=company,
        actor=user_or_none(actor),
        action=action,
        entity=obj._meta.model_name,
        entity_id=obj.pk,
        entity_repr=str(obj)[:200],
        changes=dict(changes or {}),
    )


def audit_record(
    *, company: Company, actor, action: str, obj, changes: Mapping[str, Any] | None = None
) -> AuditEvent:
    event = audit_event(company=company, actor=actor, action=action, obj=obj, changes=changes)
    event.save(force_insert=True)
    return event


# ---------------------------------------------------------------- helpers


def _full_clean(obj, *, exclude: Iterable[str] = ()) -> None:
    try:
        obj.full_clean(exclude=list(exclude), validate_constraints=False)
    except ValidationError as exc:
        raise DomainError(INVALID_INPUT, INVALID_MESSAGE, exc.message_dict) from exc


def _unknown_fields(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise DomainError(
            INVALID_INPUT, INVALID_MESSAGE, {k: "Campo desconocido." for k in unknown}
        )


def _rut_or_error(value: Any, field: str = "rut") -> str:
    try:
        return normalize_rut(value or "")
    except InvalidRut as exc:
        raise DomainError(INVALID_INPUT, str(exc), {field: str(exc)}) from exc


def _decimal(value: Any, field: str, errors: dict[str, list[str]]) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.setdefault(field, []).append("Ingrese un número válido.")
        return None
    if not number.is_finite():
        errors.setdefault(field, []).append("Ingrese un número válido.")
        return None
    return number


def _require_draft(document: SalesDocument) -> None:
    if document.state != DocumentState.DRAFT:
        raise DomainError(
            DOCUMENT_NOT_DRAFT,
            "El documento ya fue emitido y no puede modificarse.",
            {"state": "Solo los borradores pueden modificarse."},
        )


def period_guard(company: Company, *days: date | None, field: str = "fecha_emision") -> None:
    """No document dated in a month whose F29 was filed may be created, changed or issued until
    the period is reopened (which is recorded, with who and why)."""
    closed = sorted(closed_months(company, days))
    if closed:
        raise period_closed(closed[0], field=field)


def closed_months(company: Company, days: Iterable[date | None]) -> set[date]:
    """The months among `days` whose F29 was filed (first days), in one query."""
    months = {month_start(d) for d in days if d is not None}
    if not months:
        return set()
    return set(
        ClosedPeriod.objects.filter(company=company, periodo__in=months).values_list(
            "periodo", flat=True
        )
    )


def period_closed(month: date, *, field: str = "fecha_emision") -> DomainError:
    label = period_label(month)
    message = (
        f"El período {label} está cerrado (F29 presentado): reábralo para crear o modificar "
        "documentos de ese mes."
    )
    return DomainError(PERIOD_CLOSED, message, {field: message})


# ---------------------------------------------------------------- partners


def _partner_apply(partner: Partner, data: Mapping[str, Any]) -> None:
    _unknown_fields(data, PARTNER_FIELDS)
    for field in PARTNER_FIELDS:
        if field in data:
            value = data[field]
            if field == "rut":
                value = _rut_or_error(value)
            elif isinstance(value, str):
                value = value.strip()
            setattr(partner, field, value)
    _foreign_receiver_check(partner)
    _full_clean(partner, exclude=["company", "created_by", "updated_by"])
    clash = Partner.objects.filter(company=partner.company, rut=partner.rut).exclude(pk=partner.pk)
    if partner.rut == FOREIGN_RECEIVER_RUT:
        clash = clash.filter(razon_social=partner.razon_social, num_id=partner.num_id)
        if clash.exists():
            message = "Ya existe un cliente extranjero con ese nombre y N° de identificación."
            raise DomainError(DUPLICATE_RUT, message, {"num_id": message})
    if clash.exists():
        raise DomainError(
            DUPLICATE_RUT,
            "Ya existe un cliente o proveedor con ese RUT.",
            {"rut": "Ya existe un cliente o proveedor con ese RUT en esta empresa."},
        )


def _foreign_receiver_check(partner: Partner) -> None:
    """NumId and Nacionalidad belong to a receiver abroad (RUT 55.555.555-5), and the country
    is an Aduana code (erp.siicodes "paises")."""
    errors: dict[str, str] = {}
    if partner.rut != FOREIGN_RECEIVER_RUT:
        for field in ("num_id", "nacionalidad"):
            if getattr(partner, field):
                errors[field] = (
                    "Solo un cliente extranjero (RUT 55.555.555-5) lleva identificación y "
                    "nacionalidad extranjeras."
                )
    elif partner.nacionalidad:
        if not siicodes.is_valid("paises", partner.nacionalidad):
            errors["nacionalidad"] = (
                "País desconocido: use el código de país de Aduana (p. ej. 225)."
            )
        else:
            partner.nacionalidad = siicodes.normalize_code(partner.nacionalidad)
    if errors:
        raise DomainError(INVALID_INPUT, INVALID_MESSAGE, errors)


def _save_unique(obj, *, code: str, field: str, message: str) -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:  # a concurrent insert won the race for the unique key
        raise DomainError(code, message, {field: message}) from exc


@transaction.atomic
def partner_create(*, company: Company, actor, data: Mapping[str, Any]) -> Partner:
    partner = Partner(
        company=company, created_by=user_or_none(actor), updated_by=user_or_none(actor)
    )
    _partner_apply(partner, data)
    _save_unique(partner, code=DUPLICATE_RUT, field="rut", message="RUT ya registrado.")
    audit_record(
        company=company,
        actor=actor,
        action=AuditEvent.Action.CREATE,
        obj=partner,
        changes=_snapshot(partner, PARTNER_FIELDS),
    )
    return partner


@transaction.atomic
def partner_update(*, partner: Partner, actor, data: Mapping[str, Any]) -> Partner:
    before = _snapshot(partner, PARTNER_FIELDS)
    _partner_apply(partner, data)
    partner.updated_by = user_or_none(actor)
    _save_unique(partner, code=DUPLICATE_RUT, field="rut", message="RUT ya registrado.")
    changes = _diff(before, _snapshot(partner, PARTNER_FIELDS))
    if changes:
        audit_record(
            company=partner.company,
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            obj=partner,
            changes=changes,
        )
    return partner


@transaction.atomic
def partner_delete(*, partner: Partner, actor) -> None:
    if partner.sales_documents.exists() or partner.purchase_documents.exists():
        raise DomainError(
            IN_USE,
            "No se puede eliminar: tiene documentos asociados.",
            {"partner": "Tiene documentos asociados."},
        )
    audit_record(
        company=partner.company,
        actor=actor,
        action=AuditEvent.Action.DELETE,
        obj=partner,
        changes=_snapshot(partner, PARTNER_FIELDS),
    )
    partner.delete()


# ---------------------------------------------------------------- products


def _product_apply(product: Product, data: Mapping[str, Any]) -> None:
    _unknown_fields(data, PRODUCT_FIELDS)
    errors: dict[str, list[str]] = {}
    for field in PRODUCT_FIELDS:
        if field not in data:
            continue
        value = data[field]
        if field == "unit_price":
            value = _decimal(value, field, errors)
            if value is not None and value < 0:
                errors.setdefault(field, []).append("El precio no puede ser negativo.")
        elif isinstance(value, str):
            value = value.strip()
        setattr(product, field, value)
    if errors:
        raise DomainError(INVALID_INPUT, INVALID_MESSAGE, errors)
    _full_clean(product, exclude=["company", "created_by", "updated_by"])
    if (
        Product.objects.filter(company=product.company, code=product.code)
        .exclude(pk=product.pk)
        .exists()
    ):
        raise DomainError(
            DUPLICATE_CODE,
            "Ya existe un producto con ese código.",
            {"code": "Ya existe un producto con ese código en esta empresa."},
        )


@transaction.atomic
def product_create(*, company: Company, actor, data: Mapping[str, Any]) -> Product:
    product = Product(
        company=company, created_by=user_or_none(actor), updated_by=user_or_none(actor)
    )
    _product_apply(product, data)
    _save_unique(product, code=DUPLICATE_CODE, field="code", message="Código ya registrado.")
    audit_record(
        company=company,
        actor=actor,
        action=AuditEvent.Action.CREATE,
        obj=product,
        changes=_snapshot(product, PRODUCT_FIELDS),
    )
    return product


@transaction.atomic
def product_update(*, product: Product, actor, data: Mapping[str, Any]) -> Product:
    before = _snapshot(product, PRODUCT_FIELDS)
    _product_apply(product, data)
    product.updated_by = user_or_none(actor)
    _save_unique(product, code=DUPLICATE_CODE, field="code", message="Código ya registrado.")
    changes = _diff(before, _snapshot(product, PRODUCT_FIELDS))
    if changes:
        audit_record(
            company=product.company,
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            obj=product,
            changes=changes,
        )
    return product


@transaction.atomic
def product_delete(*, product: Product, actor) -> None:
    if SalesDocumentLine.objects.filter(product=product).exists():
        raise DomainError(
            IN_USE,
            "No se puede eliminar: aparece en documentos. Puede desactivarlo.",
            {"product": "Aparece en documentos."},
        )
    audit_record(
        company=product.company,
        actor=actor,
        action=AuditEvent.Action.DELETE,
        obj=product,
        changes=_snapshot(product, PRODUCT_FIELDS),
    )
    product.delete()


# ---------------------------------------------------------------- sales documents


@dataclass(frozen=True)
class PreparedDocument:
    """A document checked against every rule, with its totals, ready to be written."""

    header: dict[str, Any]
    lines: list[dict[str, Any]]
    references: list[dict[str, Any]]
    totals: Totals | ExportTotals | LiquidacionTotals
    commissions: list[dict[str, Any]] = dataclass_field(default_factory=list)


def _existing_lines(document: SalesDocument) -> list[dict[str, Any]]:
    return [
        {f: (line.product_id if f == "product" else getattr(line, f)) for f in LINE_FIELDS}
        for line in document.lines.all()
    ]


def _existing_references(document: SalesDocument) -> list[dict[str, Any]]:
    return [{f: getattr(ref, f) for f in REFERENCE_FIELDS} for ref in document.references.all()]


def _existing_commissions(document: SalesDocument) -> list[dict[str, Any]]:
    return [{f: getattr(c, f) for f in COMMISSION_FIELDS} for c in document.commissions.all()]


def _adjustments(header: Mapping[str, Any]) -> list[GlobalAdjustment]:
    result = []
    for prefix, movement in (("discount", Movement.DISCOUNT), ("surcharge", Movement.SURCHARGE)):
        kind = header.get(f"global_{prefix}_type") or ""
        value = header.get(f"global_{prefix}_value") or Decimal(0)
        if kind and value:
            result.append(GlobalAdjustment(movement, ValueType(kind), value))
    return result


def _prepare_header(
    company: Company, header: dict[str, Any], errors: dict[str, list[str]]
) -> TipoDte | None:
    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    tipo = None
    try:
        tipo = TipoDte(int(header.get("tipo_dte")))
    except (TypeError, ValueError):
        err("tipo_dte", "Tipo de documento no soportado.")
    header["tipo_dte"] = int(tipo) if tipo else header.get("tipo_dte")

    if not isinstance(header.get("fecha_emision"), date):
        err("fecha_emision", "Indique la fecha de emisión.")
    due = header.get("fecha_vencimiento")
    if due is not None and not isinstance(due, date):
        err("fecha_vencimiento", "Fecha inválida.")
    elif due and isinstance(header.get("fecha_emision"), date) and due < header["fecha_emision"]:
        err("fecha_vencimiento", "El vencimiento no puede ser anterior a la emisión.")
    if header.get("forma_pago") not in (None, "", 1, 2, 3):
        err("forma_pago", "Forma de pago inválida (1 contado, 2 crédito, 3 sin costo).")
    header["forma_pago"] = header.get("forma_pago") or None
    if (
        header["forma_pago"] == FormaPago.CREDITO
        and due is None
        and isinstance(header.get("fecha_emision"), date)
    ):
        header["fecha_vencimiento"] = header["fecha_emision"] + timedelta(days=CREDIT_DAYS)

    traslado = _prepare_guia(company, tipo, header, errors)
    _prepare_export(tipo, header, errors)
    reference = header.get("partner")
    if isinstance(reference, Partner):
        reference = reference.pk
    if reference in (None, ""):
        header["partner"] = None
        if tipo and not tipo.receiver_optional and not (traslado and traslado.receiver_is_issuer):
            err("partner", "Indique el receptor del documento.")
    else:
        partner = _partner_by_reference(company, reference)
        if partner is None:
            err("partner", "Cliente o proveedor desconocido.")
        elif tipo and tipo.is_export and partner.rut != FOREIGN_RECEIVER_RUT:
            err(
                "partner",
                "El receptor de una exportación es un cliente extranjero (RUT 55.555.555-5).",
            )
        elif traslado and traslado.receiver_is_issuer and partner.rut != company.rut:
            err(
                "partner",
                f"En un {traslado.label.lower()} el receptor es la propia empresa: deje el "
                "receptor vacío.",
            )
        header["partner"] = partner

    for prefix, label in (("discount", "descuento"), ("surcharge", "recargo")):
        kind_field, value_field = f"global_{prefix}_type", f"global_{prefix}_value"
        kind = header.get(kind_field) or ""
        value = _decimal(header.get(value_field), value_field, errors) or Decimal(0)
        if kind not in ("", *AdjustmentType.values):
            err(kind_field, "Use % o $.")
        if value < 0:
            err(value_field, f"El {label} global no puede ser negativo.")
        if value and not kind:
            err(kind_field, f"Indique si el {label} global es % o $.")
        header[kind_field], header[value_field] = kind, value
    header["notes"] = (header.get("notes") or "").strip()
    return tipo


def _prepare_export(
    tipo: TipoDte | None, header: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """An export's currency, rate, payment form, service indicator and customs data; other
    types carry none of them."""

    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    header["moneda"] = (header.get("moneda") or "").strip().upper()
    header["aduana"] = header.get("aduana") or {}
    if tipo is None or not tipo.is_export:
        for field in EXPORT_FIELDS:
            if header.get(field) not in (None, "", {}):
                err(field, "Solo los documentos de exportación llevan estos datos.")
        header.update(moneda="", tipo_cambio=None, forma_pago_exportacion=None, aduana={})
        header["ind_servicio"] = None
        return
    problem = exports.currency_problem(header["moneda"])
    if problem:
        err("moneda", problem)
    rate = _decimal(header.get("tipo_cambio"), "tipo_cambio", errors)
    if rate is None and "tipo_cambio" not in errors:
        err("tipo_cambio", "Indique el tipo de cambio del día (pesos por unidad de la moneda).")
    elif rate is not None and not (0 < rate <= Decimal("999999.9999")):
        err("tipo_cambio", "El tipo de cambio debe ser mayor que cero (máximo 999.999,9999).")
    elif rate is not None and rate != rate.quantize(Decimal("0.0001")):
        err("tipo_cambio", "Máximo 4 decimales.")
    header["tipo_cambio"] = rate
    fma = _int_or_none(header.get("forma_pago_exportacion"))
    if header.get("forma_pago_exportacion") not in (None, "") and (
        fma is None or not siicodes.is_valid("formas_pago_exportacion", fma)
    ):
        err("forma_pago_exportacion", "Forma de pago de exportación desconocida (tabla de Aduana).")
    header["forma_pago_exportacion"] = fma
    servicio = _int_or_none(header.get("ind_servicio"))
    if header.get("ind_servicio") not in (None, "") and servicio not in exports.IND_SERVICIO:
        err("ind_servicio", "Indicador de servicio de exportación: 3, 4 o 5.")
    header["ind_servicio"] = servicio
    aduana, problems = exports.clean_aduana(header.get("aduana"))
    for field, message in problems.items():
        err(field, message)
    header["aduana"] = aduana


GUIA_TEXT_LIMITS = {
    "patente": 8,
    "nombre_chofer": 30,
    "dir_destino": 70,
    "comuna_destino": 20,
    "ciudad_destino": 20,
}


def _prepare_guia(
    company: Company, tipo: TipoDte | None, header: dict[str, Any], errors: dict[str, list[str]]
) -> IndTraslado | None:
    """A guía's traslado, despacho and transport; other types carry none of them."""

    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    for field in GUIA_TEXT_LIMITS | {"rut_transportista": 0, "rut_chofer": 0}:
        value = header.get(field)
        header[field] = value.strip() if isinstance(value, str) else (value or "")
    if tipo is not TipoDte.GUIA_DESPACHO:
        given = [f for f in GUIA_FIELDS if header.get(f) not in (None, "")]
        for field in given:
            err(field, "Solo las guías de despacho llevan datos de traslado.")
        header["ind_traslado"] = header["tipo_despacho"] = None
        return None
    traslado = None
    raw = header.get("ind_traslado")
    try:
        traslado = IndTraslado(int(raw)) if raw not in (None, "") else IndTraslado.VENTA
    except (TypeError, ValueError):
        err("ind_traslado", "Motivo del traslado inválido: use un código del 1 al 9.")
    header["ind_traslado"] = int(traslado) if traslado else None
    if traslado and not traslado.is_sale and traslado is not IndTraslado.VENTA_EXPORTACION:
        header["forma_pago"] = None  # nothing is paid for goods that only move
    despacho = header.get("tipo_despacho")
    despacho = _int_or_none(despacho) if despacho not in (None, "") else None
    if despacho is not None and despacho not in (1, 2, 3):
        err("tipo_despacho", "Tipo de despacho inválido: 1, 2 o 3.")
    header["tipo_despacho"] = despacho
    for field, limit in GUIA_TEXT_LIMITS.items():
        if len(header[field]) > limit:
            err(field, f"Máximo {limit} caracteres.")
    header["patente"] = header["patente"].upper().replace(" ", "").replace("-", "")
    for field in ("rut_transportista", "rut_chofer"):
        if header[field]:
            try:
                header[field] = normalize_rut(header[field])
            except InvalidRut as exc:
                err(field, str(exc))
    if bool(header["rut_chofer"]) != bool(header["nombre_chofer"]):
        field = "nombre_chofer" if header["rut_chofer"] else "rut_chofer"
        err(field, "Indique el RUT y el nombre del chofer, o ninguno.")
    return traslado


def _partner_by_reference(company: Company, reference: Any) -> Partner | None:
    """A partner by id (an integer) or by RUT (text, with or without dots)."""
    partners = Partner.objects.filter(company=company)
    if isinstance(reference, int) and not isinstance(reference, bool):
        return partners.filter(pk=reference).first()
    try:
        found = list(partners.filter(rut=normalize_rut(str(reference)))[:2])
    except InvalidRut:
        return None
    # Customers abroad share one RUT: by RUT, only an unambiguous one is found (else use the id).
    return found[0] if len(found) == 1 else None


def _products_by_reference(company: Company, references: Iterable[Any]) -> dict[Any, Product]:
    """Products by id (integers) or by code (text)."""
    refs = [r for r in references if r not in (None, "")]
    ids = {r for r in refs if isinstance(r, int) and not isinstance(r, bool)}
    codes = {str(r) for r in refs if not isinstance(r, int)}
    found: dict[Any, Product] = {}
    for product in Product.objects.filter(company=company).filter(
        Q(pk__in=ids) | Q(code__in=codes)
    ):
        if product.pk in ids:
            found[product.pk] = product
        if product.code in codes:
            found[product.code] = product
    return found


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _prepare_lines(
    company: Company,
    tipo: TipoDte | None,
    lines: list[Any],
    errors: dict[str, list[str]],
    *,
    priced: bool = True,
) -> list[dict[str, Any]]:
    """Typed, checked lines. Unless `priced` (a guía that is not a sale), a line may go
    without a price: the goods move, nothing is sold."""
    if not lines:
        errors.setdefault("lines", []).append("El documento debe tener al menos una línea.")
        return []
    limit = tipo.max_lines if tipo else 60
    if len(lines) > limit:
        errors.setdefault("lines", []).append(f"Máximo {limit} líneas por documento.")
    products = _products_by_reference(
        company, [ln.get("product") for ln in lines if isinstance(ln, Mapping)]
    )
    prepared = []
    for i, raw in enumerate(lines):

        def err(field: str, message: str, i: int = i) -> None:
            errors.setdefault(f"lines.{i}.{field}", []).append(message)

        if not isinstance(raw, Mapping):
            errors.setdefault(f"lines.{i}", []).append("Cada línea debe ser un objeto.")
            continue
        unknown = set(raw) - set(LINE_FIELDS) - {"id", "line_number"}
        for field in sorted(unknown):
            err(field, "Campo desconocido.")
        product = None
        reference = raw.get("product")
        if isinstance(reference, Product):
            reference = reference.pk
        if reference not in (None, ""):
            product = products.get(reference if isinstance(reference, int) else str(reference))
            if product is None:
                err("product", "Producto desconocido.")
        name = (raw.get("name") or (product.name if product else "")).strip()
        if not name:
            err("name", "Indique el nombre del ítem.")
        elif len(name) > 80:
            err("name", "Máximo 80 caracteres.")
        description = (raw.get("description") or "").strip()
        if len(description) > 1000:
            err("description", "Máximo 1000 caracteres.")
        unit = (raw.get("unit") or (product.unit if product else "")).strip()
        if len(unit) > 4:
            err("unit", "Máximo 4 caracteres.")
        quantity = _decimal(raw.get("quantity"), f"lines.{i}.quantity", errors)
        if quantity is None and f"lines.{i}.quantity" not in errors:
            err("quantity", "Indique la cantidad.")
        elif quantity is not None and quantity <= 0:
            err("quantity", "La cantidad debe ser mayor que cero.")
        price = _decimal(raw.get("unit_price"), f"lines.{i}.unit_price", errors)
        if price is None and product is not None and raw.get("unit_price") in (None, ""):
            price = catalog_price(product.unit_price, tipo, exempt=product.is_exempt)
        if price is None and not priced and f"lines.{i}.unit_price" not in errors:
            price = Decimal(0)
        if price is None and f"lines.{i}.unit_price" not in errors:
            err("unit_price", "Indique el precio unitario.")
        elif price is not None and price < 0:
            err("unit_price", "El precio unitario no puede ser negativo.")
        discount = _decimal(raw.get("discount_pct"), f"lines.{i}.discount_pct", errors)
        discount = discount or Decimal(0)
        if not 0 <= discount <= 100:
            err("discount_pct", "El descuento debe estar entre 0 y 100 %.")
        exempt = raw.get("is_exempt")
        if exempt is None:
            exempt = product.is_exempt if product else False
        if tipo and tipo.exempt_only:
            exempt = True
        tipo_liq = str(raw.get("tipo_doc_liq") or "").strip()
        if tipo and tipo.is_liquidacion:
            if not tipo_liq:
                err("tipo_doc_liq", "Indique el tipo del documento liquidado (33, 39, 61… o 99).")
            elif not liquidable(tipo_liq):
                err("tipo_doc_liq", "Tipo de documento liquidado desconocido (use 99 para otros).")
            if discount:
                err("discount_pct", "Una liquidación factura no lleva descuentos por línea.")
        elif tipo_liq:
            err("tipo_doc_liq", "Solo las líneas de una liquidación factura llevan este tipo.")
        prepared.append(
            {
                "product": product,
                "name": name,
                "description": description,
                "quantity": quantity,
                "unit": unit,
                "unit_price": price,
                "discount_pct": discount,
                "is_exempt": bool(exempt),
                "tipo_doc_liq": tipo_liq,
            }
        )
    all_exempt = all(ln["is_exempt"] for ln in prepared)
    if tipo and tipo.requires_affected_line and prepared and all_exempt:
        errors.setdefault("lines", []).append(
            f"Una {tipo.label.lower()} debe tener al menos una línea afecta a IVA."
        )
    return prepared


def _prepare_references(
    tipo: TipoDte | None, refs: list[Any], errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
    if len(refs) > MAX_REFERENCES:
        errors.setdefault("references", []).append(f"Máximo {MAX_REFERENCES} referencias.")
    prepared = []
    for i, raw in enumerate(refs):

        def err(field: str, message: str, i: int = i) -> None:
            errors.setdefault(f"references.{i}.{field}", []).append(message)

        if not isinstance(raw, Mapping):
            errors.setdefault(f"references.{i}", []).append("Cada referencia debe ser un objeto.")
            continue
        for field in sorted(set(raw) - set(REFERENCE_FIELDS) - {"id", "line_number"}):
            err(field, "Campo desconocido.")
        tipo_ref = str(raw.get("tipo_doc_ref") or "").strip().upper()
        if not tipo_ref or len(tipo_ref) > 3 or not (tipo_ref.isalnum()):
            err("tipo_doc_ref", "Tipo de documento referenciado inválido (p. ej. 33, 801, SET).")
        folio = str(raw.get("folio_ref") or "").strip()
        if not folio or len(folio) > 18:
            err("folio_ref", "Indique el folio referenciado (máximo 18 caracteres).")
        rut_otr = str(raw.get("rut_otr") or "").strip()
        if rut_otr:
            try:
                rut_otr = normalize_rut(rut_otr)
            except InvalidRut as exc:
                err("rut_otr", str(exc))
        fecha = raw.get("fecha_ref")
        if not isinstance(fecha, date):
            err("fecha_ref", "Indique la fecha del documento referenciado.")
        cod = raw.get("cod_ref")
        cod = _int_or_none(cod) if cod not in (None, "") else None
        if cod is not None and cod not in tuple(CodRef):
            err("cod_ref", "Código de referencia inválido (1, 2 o 3).")
        # The SII's certification reference (TpoDocRef SET, DOMAIN.md §16) carries no CodRef.
        if tipo and tipo.is_note and cod is None and tipo_ref != CERTIFICATION_REFERENCE:
            err("cod_ref", "Una nota debe indicar si anula (1), corrige texto (2) o montos (3).")
        razon = (raw.get("razon_ref") or "").strip()
        if len(razon) > 90:
            err("razon_ref", "Máximo 90 caracteres.")
        prepared.append(
            {
                "tipo_doc_ref": tipo_ref,
                "folio_ref": folio,
                "rut_otr": rut_otr,
                "fecha_ref": fecha,
                "cod_ref": cod,
                "razon_ref": razon,
            }
        )
    modified = [r for r in prepared if r["tipo_doc_ref"] != CERTIFICATION_REFERENCE]
    if tipo and tipo.is_note and not modified and len(prepared) == len(refs):
        errors.setdefault("references", []).append(
            "Una nota de crédito o débito debe referenciar el documento que modifica."
        )
    return prepared


def _whole_amount(value: Any, field: str, errors: dict[str, list[str]]) -> int | None:
    """Whole pesos (which may be negative) from an int, a Decimal or text; None if absent."""
    if value in (None, ""):
        return None
    number = _decimal(value, field, errors)
    if number is None:
        return None
    if number != number.to_integral_value():
        errors.setdefault(field, []).append("Ingrese un monto en pesos, sin decimales.")
        return None
    return int(number)


def _prepare_commissions(
    tipo: TipoDte | None, raw: Any, errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """A liquidación factura's Comisiones lines; no other type carries any."""
    if not isinstance(raw, list):
        errors.setdefault("commissions", []).append("Debe ser una lista de comisiones.")
        return []
    if tipo is None or not tipo.is_liquidacion:
        if raw:
            errors.setdefault("commissions", []).append(
                "Solo las liquidaciones factura llevan comisiones."
            )
        return []
    if not raw:
        errors.setdefault("commissions", []).append(
            "Una liquidación factura indica la comisión que cobra (o un cargo)."
        )
    elif len(raw) > MAX_COMMISSIONS:
        errors.setdefault("commissions", []).append(f"Máximo {MAX_COMMISSIONS} comisiones.")
    prepared = []
    for i, item in enumerate(raw):

        def err(field: str, message: str, i: int = i) -> None:
            errors.setdefault(f"commissions.{i}.{field}", []).append(message)

        if not isinstance(item, Mapping):
            errors.setdefault(f"commissions.{i}", []).append("Cada comisión debe ser un objeto.")
            continue
        for name in sorted(set(item) - set(COMMISSION_FIELDS) - {"id", "line_number", "iva"}):
            err(name, "Campo desconocido.")
        kind = item.get("tipo_movim") or CommissionKind.COMISION
        if kind not in CommissionKind.values:
            err("tipo_movim", "Use C (comisión) u O (otros cargos).")
        glosa = str(item.get("glosa") or "").strip()
        if not glosa:
            err("glosa", "Indique la glosa de la comisión.")
        elif len(glosa) > 60:
            err("glosa", "Máximo 60 caracteres.")
        tasa = _decimal(item.get("tasa"), f"commissions.{i}.tasa", errors)
        if tasa is not None and not (0 <= tasa <= 100 and tasa == tasa.quantize(Decimal("0.01"))):
            err("tasa", "La tasa es un porcentaje entre 0 y 100, con hasta 2 decimales.")
        neto = _whole_amount(item.get("neto"), f"commissions.{i}.neto", errors)
        exento = _whole_amount(item.get("exento"), f"commissions.{i}.exento", errors) or 0
        if neto is None and tasa is None and f"commissions.{i}.neto" not in errors:
            err("neto", "Indique el monto neto de la comisión, o su tasa sobre las ventas.")
        prepared.append(
            {"tipo_movim": kind, "glosa": glosa, "tasa": tasa, "neto": neto, "exento": exento}
        )
    return prepared


def resolved_commissions(
    commissions: Iterable[Mapping[str, Any]], *, base: int
) -> list[dict[str, Any]]:
    """Commissions with their net (a rate's share of the liquidated sales, `base`, when no net
    was given) and their IVA."""
    resolved = []
    for c in commissions:
        neto = c["neto"] if c.get("neto") is not None else percent_of(base, c["tasa"])
        resolved.append({**c, "neto": neto, "exento": c.get("exento") or 0})
        resolved[-1]["iva"] = commission_iva(neto)
    return resolved


def _liquidacion_totals(
    lines: Iterable[Mapping[str, Any]], commissions: Iterable[Mapping[str, Any]]
) -> tuple[LiquidacionTotals, list[dict[str, Any]]]:
    amounts = [
        (
            liquidated_amount(
                LineInput(ln["quantity"], ln["unit_price"], ln.get("discount_pct") or Decimal(0)),
                tipo_doc_liq=ln.get("tipo_doc_liq") or "",
            ),
            bool(ln.get("is_exempt")),
        )
        for ln in lines
    ]
    resolved = resolved_commissions(commissions, base=sum(a for a, _ in amounts))
    inputs = [CommissionInput(c["neto"], c["exento"]) for c in resolved]
    return compute_liquidacion_totals(amounts, inputs), resolved


def _liquidacion_signs(totals: LiquidacionTotals) -> None:
    """A line or a commission may be negative (a return, an adjustment), but the sums the
    books and the F29 read may not: the SII's XSD allows them, the F29 has no negative box."""
    if min(totals.monto_neto, totals.monto_exento, totals.monto_total) < 0:
        message = (
            "Las devoluciones y comisiones superan las ventas liquidadas: el total es negativo."
        )
        raise DomainError(INVALID_INPUT, message, {"lines": message})
    if min(totals.comision_neto, totals.comision_exento) < 0:
        message = "La suma de las comisiones no puede ser negativa."
        raise DomainError(INVALID_INPUT, message, {"commissions": message})


def sales_document_totals(
    *,
    tipo_dte: int,
    lines: Iterable[Mapping[str, Any]],
    header: Mapping[str, Any],
    commissions: Iterable[Mapping[str, Any]] = (),
) -> Totals | ExportTotals | LiquidacionTotals:
    """Totals of typed lines and a header's global discount/surcharge, by erp.totals; an
    export's in its currency, with its freight and insurance (erp.exports); a liquidación
    factura's less its commissions."""
    try:
        tipo = TipoDte(int(tipo_dte))
    except (TypeError, ValueError) as exc:
        message = "Tipo de documento no soportado."
        raise DomainError(INVALID_INPUT, message, {"tipo_dte": message}) from exc
    inputs = [
        LineInput(
            ln["quantity"],
            ln["unit_price"],
            ln.get("discount_pct") or Decimal(0),
            bool(ln.get("is_exempt")),
        )
        for ln in lines
    ]
    try:
        if tipo.is_liquidacion:
            return _liquidacion_totals(lines, commissions)[0]
        if tipo.is_export:
            problem = exports.currency_problem(header.get("moneda") or "")
            if problem:
                raise DomainError(INVALID_INPUT, problem, {"moneda": problem})
            return compute_export_totals(
                inputs,
                decimals=siicodes.currency(header["moneda"]).decimals,
                adjustments=export_adjustments(tipo, header),
                tipo_cambio=header.get("tipo_cambio"),
            )
        return compute_totals(inputs, tipo_dte=tipo, adjustments=_adjustments(header))
    except TotalsError as exc:
        raise DomainError(INVALID_INPUT, str(exc), {exc.field: str(exc)}) from exc


def export_adjustments(tipo: TipoDte, header: Mapping[str, Any]) -> list[GlobalAdjustment]:
    """An export's global adjustments: the header's, then the freight and insurance its
    customs data declares (a nota that annuls a factura carries them again)."""
    return _adjustments(header) + exports.freight_and_insurance(header.get("aduana") or {})


def sales_document_prepare(
    *, company: Company, data: Mapping[str, Any], document: SalesDocument | None = None
) -> PreparedDocument:
    """Check a document against every rule and compute its totals, writing nothing.

    With `document`, `data` may be partial: what it leaves out keeps the document's values.
    """
    _unknown_fields(data, (*DOCUMENT_FIELDS, "lines", "references", "commissions"))
    errors: dict[str, list[str]] = {}
    if document is not None:
        header = _snapshot(document, DOCUMENT_FIELDS)
        header["fecha_emision"] = document.fecha_emision
        header["fecha_vencimiento"] = document.fecha_vencimiento
        header["global_discount_value"] = document.global_discount_value
        header["global_surcharge_value"] = document.global_surcharge_value
        header["tipo_cambio"], header["aduana"] = document.tipo_cambio, document.aduana
        header.update({k: v for k, v in data.items() if k in DOCUMENT_FIELDS})
        raw_lines = data["lines"] if "lines" in data else _existing_lines(document)
        raw_refs = data["references"] if "references" in data else _existing_references(document)
        raw_commissions = (
            data["commissions"] if "commissions" in data else _existing_commissions(document)
        )
    else:
        header = {k: data.get(k) for k in DOCUMENT_FIELDS}
        raw_lines = data.get("lines") or []
        raw_refs = data.get("references") or []
        raw_commissions = data.get("commissions") or []
    if not isinstance(raw_lines, list):
        errors["lines"] = ["Debe ser una lista de líneas."]
        raw_lines = []
    if not isinstance(raw_refs, list):
        errors["references"] = ["Debe ser una lista de referencias."]
        raw_refs = []
    tipo = _prepare_header(company, header, errors)
    priced = tipo is not TipoDte.GUIA_DESPACHO or header.get("ind_traslado") == IndTraslado.VENTA
    lines = _prepare_lines(company, tipo, raw_lines, errors, priced=priced)
    refs = _prepare_references(tipo, raw_refs, errors)
    commissions = _prepare_commissions(tipo, raw_commissions, errors)
    if tipo and tipo.is_liquidacion:
        for prefix in ("discount", "surcharge"):
            if header[f"global_{prefix}_value"]:
                errors.setdefault(f"global_{prefix}_value", []).append(
                    "Una liquidación factura no lleva descuentos ni recargos globales."
                )
    if errors:
        raise DomainError(INVALID_INPUT, INVALID_MESSAGE, errors)
    if tipo and tipo.is_liquidacion:
        try:
            totals, commissions = _liquidacion_totals(lines, commissions)
        except TotalsError as exc:
            raise DomainError(INVALID_INPUT, str(exc), {exc.field: str(exc)}) from exc
        _liquidacion_signs(totals)
    else:
        totals = sales_document_totals(tipo_dte=tipo, lines=lines, header=header)
    return PreparedDocument(
        header=header, lines=lines, references=refs, totals=totals, commissions=commissions
    )


def _document_state(document: SalesDocument, lines: int | None = None) -> dict[str, Any]:
    state = _snapshot(document, (*DOCUMENT_FIELDS, "monto_total"))
    state["lines"] = document.lines.count() if lines is None else lines
    return state


def _write(document: SalesDocument, prepared: PreparedDocument) -> None:
    existed = document.pk is not None
    for field, value in prepared.header.items():
        setattr(document, field, value)
    t = prepared.totals
    if isinstance(t, ExportTotals):
        # Lists, books and the F29 read pesos: the total at the document's rate (OtraMoneda);
        # the amounts in the operation's currency are kept beside them.
        pesos = t.monto_total_pesos or 0
        document.monto_neto, document.monto_exento, document.tasa_iva = 0, pesos, 0
        document.iva = document.iva_retenido = 0
        document.monto_total, document.monto_total_moneda = pesos, t.monto_total
        rate = document.tipo_cambio or Decimal(0)
        rows = [
            {
                "discount_amount": a.discount,
                "amount": round_clp(a.amount * rate),
                "amount_moneda": a.amount,
            }
            for a in t.lines
        ]
    elif isinstance(t, LiquidacionTotals):
        document.monto_neto, document.monto_exento, document.iva = (
            t.monto_neto,
            t.monto_exento,
            t.iva,
        )
        document.tasa_iva, document.iva_retenido = TASA_IVA, 0
        document.monto_total, document.monto_total_moneda = t.monto_total, None
        rows = [{"discount_amount": 0, "amount": amount} for amount in t.lines]
    else:
        document.monto_neto, document.monto_exento = t.monto_neto, t.monto_exento
        document.tasa_iva, document.iva, document.iva_retenido = t.tasa_iva, t.iva, t.iva_retenido
        document.monto_total, document.monto_total_moneda = t.monto_total, None
        rows = [{"discount_amount": a.discount, "amount": a.amount} for a in t.lines]
    liquidacion = t if isinstance(t, LiquidacionTotals) else None
    document.comision_neto = liquidacion.comision_neto if liquidacion else 0
    document.comision_exento = liquidacion.comision_exento if liquidacion else 0
    document.comision_iva = liquidacion.comision_iva if liquidacion else 0
    _full_clean(document, exclude=["company", "partner", "created_by", "updated_by"])
    document.save()
    if existed:
        document.lines.all().delete()
        document.references.all().delete()
    SalesDocumentLine.objects.bulk_create(
        SalesDocumentLine(document=document, line_number=n, **amounts, **line)
        for n, (line, amounts) in enumerate(zip(prepared.lines, rows, strict=True), start=1)
    )
    SalesDocumentReference.objects.bulk_create(
        SalesDocumentReference(document=document, line_number=n, **ref)
        for n, ref in enumerate(prepared.references, start=1)
    )
    if existed:
        document.commissions.all().delete()
    if prepared.commissions:
        SalesDocumentCommission.objects.bulk_create(
            SalesDocumentCommission(document=document, line_number=n, **commission)
            for n, commission in enumerate(prepared.commissions, start=1)
        )


@transaction.atomic
def sales_document_create(*, company: Company, actor, data: Mapping[str, Any]) -> SalesDocument:
    prepared = sales_document_prepare(company=company, data=data)
    period_guard(company, prepared.header["fecha_emision"])
    document = SalesDocument(
        company=company,
        state=DocumentState.DRAFT,
        created_by=user_or_none(actor),
        updated_by=user_or_none(actor),
    )
    _write(document, prepared)
    audit_record(
        company=company,
        actor=actor,
        action=AuditEvent.Action.CREATE,
        obj=document,
        changes=_document_state(document, lines=len(prepared.lines)),
    )
    return document


@transaction.atomic
def sales_document_update(
    *, document: SalesDocument, actor, data: Mapping[str, Any]
) -> SalesDocument:
    # Lock the row: an edit must not interleave with issuing the same document.
    document = SalesDocument.objects.select_for_update().get(pk=document.pk)
    _require_draft(document)
    before = _document_state(document)
    prepared = sales_document_prepare(company=document.company, data=data, document=document)
    period_guard(document.company, document.fecha_emision, prepared.header["fecha_emision"])
    document.updated_by = user_or_none(actor)
    _write(document, prepared)
    changes = _diff(before, _document_state(document))
    if changes:
        audit_record(
            company=document.company,
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            obj=document,
            changes=changes,
        )
    return document


@transaction.atomic
def sales_document_delete(*, document: SalesDocument, actor) -> None:
    document = SalesDocument.objects.select_for_update().get(pk=document.pk)
    _require_draft(document)
    period_guard(document.company, document.fecha_emision)
    audit_record(
        company=document.company,
        actor=actor,
        action=AuditEvent.Action.DELETE,
        obj=document,
        changes=_document_state(document),
    )
    document.delete()


# ---------------------------------------------------------------- purchases

PURCHASE_FIELDS = (
    "tipo_doc",
    "folio",
    "partner",
    "fecha",
    "periodo",
    "estado",
    "monto_exento",
    "monto_neto",
    "iva_recuperable",
    "iva_no_recuperable",
    "codigo_iva_no_rec",
    "iva_uso_comun",
    "is_fixed_asset",
    "otros_impuestos",
    "monto_total",
    "notes",
)
PURCHASE_AMOUNTS = (
    "monto_exento",
    "monto_neto",
    "iva_recuperable",
    "iva_no_recuperable",
    "iva_uso_comun",
    "otros_impuestos",
)
EXEMPT_PURCHASE_TYPES = codes(lambda d: d.purchase_book and d.exempt_only)


def purchase_total(values: Mapping[str, int]) -> int:
    return sum(int(values.get(f) or 0) for f in PURCHASE_AMOUNTS)


def _purchase_apply(
    document: PurchaseDocument, data: Mapping[str, Any], *, check_total: bool = True
) -> None:
    """Validate and set a purchase's fields; partial data keeps the document's other values."""
    _unknown_fields(data, PURCHASE_FIELDS)
    errors: dict[str, list[str]] = {}

    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    company = document.company
    old_fecha = document.fecha if document.pk else None
    old_amounts = {f: getattr(document, f) for f in (*PURCHASE_AMOUNTS, "monto_total")}
    if "partner" in data:
        partner = (
            data["partner"]
            if isinstance(data["partner"], Partner)
            else _partner_by_reference(company, data["partner"])
        )
        if partner is None or partner.company_id != company.id:
            err("partner", "Proveedor desconocido.")
        else:
            document.partner = partner
            document.rut_emisor = partner.rut
    elif document.partner_id is None:
        err("partner", "Indique el proveedor.")
    for field in ("tipo_doc", "folio", "fecha", "estado", "codigo_iva_no_rec", "notes"):
        if field in data and data[field] is not None:
            value = data[field]
            setattr(document, field, value.strip() if isinstance(value, str) else value)
    if "is_fixed_asset" in data:
        document.is_fixed_asset = bool(data["is_fixed_asset"])
    for field in PURCHASE_AMOUNTS:
        if field in data:
            value = data[field] if data[field] is not None else 0
            if isinstance(value, bool) or not isinstance(value, int):
                try:
                    value = int(Decimal(str(value)))
                except (InvalidOperation, ValueError):
                    err(field, "Ingrese un monto en pesos, sin decimales.")
                    continue
            if value < 0:
                err(field, "El monto no puede ser negativo.")
            setattr(document, field, value)
    if data.get("periodo") is not None:
        document.periodo = month_start(data["periodo"])
    elif document.fecha is not None and (
        document.periodo is None or (old_fecha and document.periodo == month_start(old_fecha))
    ):
        # A period that followed the document's date keeps following it.
        document.periodo = month_start(document.fecha)

    if document.tipo_doc not in PURCHASE_TYPES:
        err("tipo_doc", "Tipo de documento de compra no soportado.")
    if not document.folio or document.folio <= 0:
        err("folio", "El folio debe ser un número mayor que cero.")
    if document.estado not in PurchaseState.values:
        err("estado", "Use registro, pendiente, no_incluir o reclamado.")
    if document.fecha and document.periodo and document.periodo < month_start(document.fecha):
        err("periodo", "El período no puede ser anterior al mes del documento.")
    if document.tipo_doc in EXEMPT_PURCHASE_TYPES and (
        document.monto_neto or document.iva_recuperable or document.iva_no_recuperable
    ):
        err("monto_neto", "Un documento exento no lleva monto neto ni IVA.")
    if document.iva_no_recuperable and not document.codigo_iva_no_rec:
        err("codigo_iva_no_rec", "Indique por qué el IVA no es recuperable.")
    if document.codigo_iva_no_rec and document.codigo_iva_no_rec not in IVA_NO_RECUPERABLE_CODES:
        err("codigo_iva_no_rec", "Código desconocido: use 1, 2, 3, 4 o 9.")
    if document.codigo_iva_no_rec and not document.iva_no_recuperable:
        err("iva_no_recuperable", "Falta el monto del IVA no recuperable.")
    computed = purchase_total({f: getattr(document, f) for f in PURCHASE_AMOUNTS})
    given = data.get("monto_total")
    amounts_changed = any(getattr(document, f) != old_amounts[f] for f in PURCHASE_AMOUNTS)
    if document.pk and not amounts_changed and given in (None, "", old_amounts["monto_total"]):
        # Amounts untouched (a note, a state, a date): the total stays as it was, even an
        # imported one that carries taxes the book does not break out.
        pass
    elif given in (None, ""):
        document.monto_total = computed
    else:
        try:
            document.monto_total = int(Decimal(str(given)))
        except (InvalidOperation, ValueError):
            err("monto_total", "Ingrese un monto en pesos, sin decimales.")
        else:
            if check_total and document.monto_total != computed:
                err(
                    "monto_total",
                    f"El total no cuadra: exento + neto + IVA + otros impuestos = {computed}.",
                )
    if errors:
        raise DomainError(INVALID_INPUT, INVALID_MESSAGE, errors)
    _full_clean(document, exclude=["company", "partner", "created_by", "updated_by"])


def _purchase_state(document: PurchaseDocument) -> dict[str, Any]:
    state = _snapshot(document, [f for f in PURCHASE_FIELDS if f != "partner"])
    state["rut_emisor"] = document.rut_emisor
    return state


def _purchase_save(document: PurchaseDocument) -> None:
    message = "Ya está registrado ese documento (tipo, folio y proveedor)."
    clash = PurchaseDocument.objects.filter(
        company=document.company,
        tipo_doc=document.tipo_doc,
        folio=document.folio,
        rut_emisor=document.rut_emisor,
    ).exclude(pk=document.pk)
    if clash.exists():
        raise DomainError(DUPLICATE_DOCUMENT, message, {"folio": message})
    _save_unique(document, code=DUPLICATE_DOCUMENT, field="folio", message=message)


@transaction.atomic
def purchase_document_create(
    *, company: Company, actor, data: Mapping[str, Any], source: str = PurchaseSource.MANUAL
) -> PurchaseDocument:
    document = PurchaseDocument(
        company=company,
        source=source,
        created_by=user_or_none(actor),
        updated_by=user_or_none(actor),
    )
    _purchase_apply(document, data, check_total=source == PurchaseSource.MANUAL)
    period_guard(company, document.periodo, field="periodo")
    _purchase_save(document)
    audit_record(
        company=company,
        actor=actor,
        action=AuditEvent.Action.CREATE,
        obj=document,
        changes=_purchase_state(document),
    )
    return document


@transaction.atomic
def purchase_document_update(
    *, document: PurchaseDocument, actor, data: Mapping[str, Any], check_total: bool = True
) -> PurchaseDocument:
    document = PurchaseDocument.objects.select_for_update().get(pk=document.pk)
    before = _purchase_state(document)
    old_period = document.periodo
    _purchase_apply(document, data, check_total=check_total)
    period_guard(document.company, old_period, document.periodo, field="periodo")
    changes = _diff(before, _purchase_state(document))
    if changes:
        document.updated_by = user_or_none(actor)
        _purchase_save(document)
        audit_record(
            company=document.company,
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            obj=document,
            changes=changes,
        )
    return document


@transaction.atomic
def purchase_document_delete(*, document: PurchaseDocument, actor) -> None:
    document = PurchaseDocument.objects.select_for_update().get(pk=document.pk)
    period_guard(document.company, document.periodo, field="periodo")
    audit_record(
        company=document.company,
        actor=actor,
        action=AuditEvent.Action.DELETE,
        obj=document,
        changes=_purchase_state(document),
    )
    document.delete()


# ---------------------------------------------------------------- API access


@transaction.atomic
def api_token_rotate(*, user) -> str:
    """Replace the user's API token with a new one; the old one stops working at once."""
    from rest_framework.authtoken.models import Token

    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user).key
