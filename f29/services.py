"""F29 writes: RCV imports, the monthly proposal and its lifecycle (draft → reviewed → filed,
and reopening, with who and why), and the reconciliation of the books against the RCV."""

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from erp import services as erp_services
from erp.background import run_in_background
from erp.doctypes import PURCHASE_TYPES
from erp.errors import INVALID_INPUT, DomainError
from erp.models import ClosedPeriod, Company, Partner, PurchaseDocument, PurchaseSource
from erp.periods import InvalidPeriod, month_start, period_label, previous_period
from f29 import calc, rcv, selectors, signals
from f29.models import (
    F29Event,
    F29Return,
    F29State,
    RcvEntry,
    RcvImport,
    RcvImportStatus,
    RcvKind,
)
from f29.reconcile import Category, ReconLine, reconcile, summarize

log = logging.getLogger(__name__)

F29_NOT_DRAFT = "f29_not_draft"
F29_WRONG_STATE = "f29_wrong_state"
RCV_INVALID = "rcv_invalid"

ENTRY_FIELDS = (
    "estado",
    "periodo",
    "razon_social",
    "fecha",
    "fecha_recepcion",
    "fecha_reclamo",
    "tipo_compra",
    "monto_exento",
    "monto_neto",
    "monto_iva",
    "monto_iva_no_recuperable",
    "codigo_iva_no_rec",
    "monto_neto_activo_fijo",
    "iva_activo_fijo",
    "iva_uso_comun",
    "otros_impuestos",
    "monto_total",
)


# ---------------------------------------------------------------- RCV import


def _entry_values(row: rcv.RcvRow, periodo: date) -> dict[str, Any]:
    values = {f: getattr(row, f) for f in ENTRY_FIELDS if f != "periodo"}
    values["periodo"] = periodo
    values["razon_social"] = row.razon_social[:200]
    return values


def _purchase_values(row: rcv.RcvRow, periodo: date) -> dict[str, Any]:
    """An RCV compras row as a purchase in the books. The RCV splits fixed-asset purchases into
    their own columns (Monto Neto / IVA Activo Fijo); when the IVA recuperable column is empty
    the fixed-asset IVA is the recoverable one."""
    fixed = bool(row.monto_neto_activo_fijo or row.iva_activo_fijo) or (
        row.tipo_compra.strip().lower() == "activo fijo"
    )
    iva_recuperable = row.monto_iva or (row.iva_activo_fijo if fixed else 0)
    known = (
        row.monto_exento
        + row.monto_neto
        + iva_recuperable
        + row.monto_iva_no_recuperable
        + row.iva_uso_comun
    )
    return {
        "fecha": row.fecha,
        "periodo": periodo,
        "estado": row.estado,
        "monto_exento": row.monto_exento,
        "monto_neto": row.monto_neto,
        "iva_recuperable": iva_recuperable,
        "iva_no_recuperable": row.monto_iva_no_recuperable,
        "codigo_iva_no_rec": (row.codigo_iva_no_rec or "")[:1],
        "iva_uso_comun": row.iva_uso_comun,
        "is_fixed_asset": fixed,
        # Whatever the total carries beyond the book's columns (other taxes, tax without
        # credit right, …) is kept as other taxes, so that the purchase adds up.
        "otros_impuestos": max(row.otros_impuestos, row.monto_total - known),
        "monto_total": row.monto_total,
    }


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    purchases_created: int = 0
    purchases_updated: int = 0
    partners_created: int = 0


class _Books:
    """The purchase book's side of one chunk of compras rows: the chunk's existing purchases and
    suppliers are read in two queries, not two per row."""

    def __init__(self, company: Company, actor, rows: list[rcv.RcvRow]) -> None:
        self.company, self.actor = company, actor
        folios = {row.folio for row in rows}
        ruts = {row.rut for row in rows}
        self.purchases = {
            (p.tipo_doc, p.folio, p.rut_emisor): p
            for p in PurchaseDocument.objects.filter(company=company, folio__in=folios)
        }
        self.partners = {p.rut: p for p in Partner.objects.filter(company=company, rut__in=ruts)}

    def supplier(self, row: rcv.RcvRow, counts: _Counts) -> Partner:
        partner = self.partners.get(row.rut)
        if partner is not None:
            if not partner.is_supplier:
                Partner.objects.filter(pk=partner.pk).update(is_supplier=True)
                partner.is_supplier = True
            return partner
        counts.partners_created += 1
        partner = erp_services.partner_create(
            company=self.company,
            actor=self.actor,
            data={
                "rut": row.rut,
                "razon_social": (row.razon_social or row.rut)[:100],
                "is_customer": False,
                "is_supplier": True,
            },
        )
        self.partners[row.rut] = partner
        return partner

    def book(self, row: rcv.RcvRow, periodo: date, counts: _Counts) -> None:
        """Create the purchase in the books when missing; keep an imported one in step with the
        RCV; never overwrite one that staff entered (the reconciliation shows the differences)."""
        values = _purchase_values(row, periodo)
        key = (row.tipo, row.folio, row.rut)
        existing = self.purchases.get(key)
        if existing is None:
            partner = self.supplier(row, counts)
            self.purchases[key] = erp_services.purchase_document_create(
                company=self.company,
                actor=self.actor,
                data={"tipo_doc": row.tipo, "folio": row.folio, "partner": partner, **values},
                source=PurchaseSource.RCV,
            )
            counts.purchases_created += 1
        elif existing.source == PurchaseSource.RCV:
            changed = {k: v for k, v in values.items() if getattr(existing, k) != v}
            if changed:
                self.purchases[key] = erp_services.purchase_document_update(
                    document=existing, actor=self.actor, data=changed, check_total=False
                )
                counts.purchases_updated += 1


RCV_IMPORT_TASK = "f29.rcv_import_run"
# Lines of the file per chunk: each chunk is parsed, written and counted in its own transaction.
CHUNK_LINES = 2000
# Rejected rows kept with their reason (the count covers them all).
MAX_REJECTED_KEPT = 1000


def _kind_ok(kind: str) -> None:
    if kind not in RcvKind.values:
        message = "Indique compras o ventas."
        raise DomainError(INVALID_INPUT, message, {"kind": message})


def _open_stream(source, *, company: Company, kind: str, estado: str | None) -> rcv.RcvStream:
    try:
        return rcv.RcvStream(source, kind=kind, contribuyente_rut=company.rut, estado=estado)
    except rcv.RcvFileError as exc:
        raise DomainError(RCV_INVALID, exc.message, {"file": exc.message}) from exc
    except ValueError as exc:
        raise DomainError(INVALID_INPUT, str(exc), {"estado": str(exc)}) from exc


def _sha256(source) -> str:
    digest = hashlib.sha256()
    source.seek(0)
    while block := source.read(1024 * 1024):
        digest.update(block)
    source.seek(0)
    return digest.hexdigest()


def rcv_import_create(
    *,
    company: Company,
    actor,
    upload: File,
    kind: str,
    estado: str | None = None,
    periodo: date | None = None,
    dispatch: bool = True,
) -> RcvImport:
    """Check an uploaded RCV file cheaply (one pass over its bytes and its header: no row is
    parsed) and queue its import: a file that is not an RCV CSV of this kind is refused whole
    (DomainError rcv_invalid, nothing stored). The import runs in the task RCV_IMPORT_TASK once
    this commits (`dispatch`; the command runs it itself); follow it on the RcvImport."""
    _kind_ok(kind)
    upload.seek(0)
    stream = _open_stream(upload, company=company, kind=kind, estado=estado)
    sha256 = _sha256(upload)
    name = Path(upload.name or "rcv.csv").name[:200]
    with transaction.atomic():
        batch = RcvImport.objects.create(
            company=company,
            kind=kind,
            estado=stream.estado,
            periodo=month_start(periodo) if periodo else None,
            filename=name,
            sha256=sha256,
            actor=erp_services.user_or_none(actor),
            status=RcvImportStatus.QUEUED,
            size=stream.size,
        )
        batch.file.save(f"{batch.pk}-{sha256[:12]}.csv", upload, save=False)
        RcvImport.objects.filter(pk=batch.pk).update(file=batch.file.name)
        if dispatch:
            transaction.on_commit(lambda: _queue_import(batch.pk), robust=True)
    return batch


def _queue_import(import_id: int) -> None:
    """Queue the import's task; without a broker, or with one that is down, run it in a
    background thread of this process (never inside the request)."""
    try:
        task = current_app.tasks[RCV_IMPORT_TASK]
        if settings.CELERY_TASK_ALWAYS_EAGER:
            run_in_background(task.run, import_id, name=RCV_IMPORT_TASK)
            return
        task.delay(import_id)
    except Exception:  # kombu raises its transports' own errors
        log.warning(
            "could not queue %s(%s); running it in this process", RCV_IMPORT_TASK, import_id
        )
        run_in_background(rcv_import_run, import_id=import_id, name=RCV_IMPORT_TASK)


def rcv_import_run(*, import_id: int, chunk_lines: int | None = None) -> RcvImport | None:
    """The import itself (the task's body). Streams the stored file and writes it chunk by
    chunk, each chunk in its own transaction with the import's counts and progress; safe to run
    again (a redelivered task): chunks already written are skipped, and every write is
    idempotent anyway. A file refused on the way, or an error, leaves the import "fallido" with
    its reason; what earlier chunks wrote stays (importing the file again is harmless)."""
    with transaction.atomic():
        batch = RcvImport.objects.select_for_update().filter(pk=import_id).first()
        if batch is None or batch.finished:
            return batch
        batch.status = RcvImportStatus.RUNNING
        batch.started_at = batch.started_at or timezone.now()
        batch.save(update_fields=["status", "started_at"])
    company = batch.company
    try:
        with batch.file.open("rb") as source:
            stream = _open_stream(source, company=company, kind=batch.kind, estado=batch.estado)
            closed = set(
                ClosedPeriod.objects.filter(company=company).values_list("periodo", flat=True)
            )
            for chunk in stream.chunks(size=chunk_lines or CHUNK_LINES):
                if chunk.last_line <= batch.lines_read:
                    continue  # written by an earlier run of this task
                batch = _import_chunk(batch, chunk, closed)
                if batch is None:
                    return None
    except DomainError as exc:
        return _finish(import_id, RcvImportStatus.FAILED, exc.message)
    except Exception:
        log.exception("RCV import %s failed", import_id)
        return _finish(
            import_id,
            RcvImportStatus.FAILED,
            "Error interno al importar el archivo; lo ya importado se conserva. Inténtelo de "
            "nuevo más tarde (importar el mismo archivo otra vez no duplica nada).",
        )
    return _finish(import_id, RcvImportStatus.DONE, "")


def _finish(import_id: int, status: str, error: str) -> RcvImport | None:
    with transaction.atomic():
        batch = RcvImport.objects.select_for_update().filter(pk=import_id).first()
        if batch is None:
            return None
        batch.status, batch.error, batch.finished_at = status, error[:2000], timezone.now()
        if status == RcvImportStatus.DONE:
            batch.bytes_read = batch.size
        stored = batch.file.name if status == RcvImportStatus.DONE else ""
        if stored:
            batch.file = ""
        batch.save()
    if stored:  # imported: the upload is not needed any more (its sha256 stays)
        try:
            batch.file.storage.delete(stored)
        except OSError:
            log.warning("could not delete %s", stored)
    return batch


def _import_chunk(batch: RcvImport, chunk: rcv.RcvChunk, closed: set[date]) -> RcvImport | None:
    with transaction.atomic():
        batch = RcvImport.objects.select_for_update().filter(pk=batch.pk).first()
        if batch is None or batch.status != RcvImportStatus.RUNNING:
            return None
        if chunk.last_line <= batch.lines_read:  # another run of the task got here first
            return batch
        rejected = _write_rows(batch, chunk.rows, chunk.rejected, closed)
        batch.rejected += len(rejected)
        room = MAX_REJECTED_KEPT - len(batch.rejected_rows)
        if room > 0:
            batch.rejected_rows = [*batch.rejected_rows, *rejected[:room]]
        batch.lines_read = chunk.last_line
        batch.bytes_read = min(batch.size, chunk.bytes_read)
        batch.save()
    return batch


def _write_rows(
    batch: RcvImport,
    rows: tuple[rcv.RcvRow, ...],
    parse_rejected: tuple[rcv.RejectedRow, ...],
    closed: set[date],
) -> list[dict[str, Any]]:
    """Write one chunk's rows (RCV entries, and purchases for compras); count into `batch`;
    return the chunk's rejected rows (the parser's and ours) by line."""
    company, kind, actor = batch.company, batch.kind, batch.actor
    rejected = [
        {"line": r.line, "tipo": r.tipo, "folio": r.folio, "reason": r.reason}
        for r in parse_rejected
    ]
    keep = []
    for row in rows:
        row_period = batch.periodo or month_start(row.fecha)
        if row_period in closed:
            reason = (
                f"El período {period_label(row_period)} está cerrado (F29 presentado): "
                "reábralo para importar sus documentos."
            )
        elif kind == RcvKind.COMPRAS and row.tipo not in PURCHASE_TYPES:
            reason = f"Tipo de documento {row.tipo}: no va al libro de compras."
        else:
            keep.append((row, row_period))
            continue
        rejected.append({"line": row.line, "tipo": row.tipo, "folio": row.folio, "reason": reason})
    existing = {
        (e.tipo, e.folio, e.rut): e
        for e in RcvEntry.objects.filter(
            company=company, kind=kind, folio__in={row.folio for row, _ in keep}
        ).only("id", "tipo", "folio", "rut", *ENTRY_FIELDS)
    }
    counts = _Counts()
    books = _Books(company, actor, [row for row, _ in keep]) if kind == RcvKind.COMPRAS else None
    to_create = []
    for row, row_period in keep:
        values = _entry_values(row, row_period)
        entry = existing.get(row.key)
        if entry is None:
            to_create.append(
                RcvEntry(
                    company=company,
                    kind=kind,
                    tipo=row.tipo,
                    folio=row.folio,
                    rut=row.rut,
                    last_import=batch,
                    **values,
                )
            )
            counts.created += 1
        else:
            changed = [f for f, v in values.items() if getattr(entry, f) != v]
            if changed:
                for field in changed:
                    setattr(entry, field, values[field])
                entry.last_import = batch
                entry.save(update_fields=[*changed, "last_import", "updated_at"])
                counts.updated += 1
            else:
                counts.unchanged += 1
        if books is not None:
            books.book(row, row_period, counts)
    RcvEntry.objects.bulk_create(to_create, batch_size=500)
    batch.created += counts.created
    batch.updated += counts.updated
    batch.unchanged += counts.unchanged
    batch.purchases_created += counts.purchases_created
    batch.purchases_updated += counts.purchases_updated
    batch.partners_created += counts.partners_created
    rejected.sort(key=lambda r: r["line"])
    return rejected


def rcv_import(
    *,
    company: Company,
    actor,
    content: bytes | None = None,
    filename: str = "rcv.csv",
    kind: str,
    estado: str | None = None,
    periodo: date | None = None,
    path: Path | None = None,
) -> RcvImport:
    """Import one RCV CSV here and now (the command, tests): the same checks, chunks and counts
    as the queued import. `content` (bytes) or `path` (read as a stream). Idempotent: the same
    file again changes nothing. A malformed file is refused whole; a bad row is reported and
    skipped. Compras rows also enter the purchase book (creating missing suppliers)."""
    _kind_ok(kind)
    if path is not None:
        with Path(path).open("rb") as handle:
            upload = File(handle, name=filename or Path(path).name)
            batch = rcv_import_create(
                company=company,
                actor=actor,
                upload=upload,
                kind=kind,
                estado=estado,
                periodo=periodo,
                dispatch=False,
            )
    else:
        upload = ContentFile(content or b"", name=filename)
        batch = rcv_import_create(
            company=company,
            actor=actor,
            upload=upload,
            kind=kind,
            estado=estado,
            periodo=periodo,
            dispatch=False,
        )
    rcv_import_run(import_id=batch.pk)
    batch.refresh_from_db()
    return batch


# ---------------------------------------------------------------- the proposal


def _decimal(value: Any, field: str, *, low: Decimal, high: Decimal | None = None) -> Decimal:
    try:
        number = Decimal(str(value).replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise DomainError(
            INVALID_INPUT, "Ingrese un número.", {field: "Ingrese un número."}
        ) from exc
    if not number.is_finite() or number < low or (high is not None and number > high):
        limits = f"entre {low} y {high}" if high is not None else f"mayor o igual a {low}"
        message = f"Debe ser un número {limits}."
        raise DomainError(INVALID_INPUT, message, {field: message})
    return number


def default_uso_comun_factor(sales: tuple[calc.SalesAggregate, ...]) -> Decimal:
    """Our reading of the proportional credit (Art. 43 of the VAT regulation) for a month on its
    own: taxed sales over total sales of the period, net of notas de crédito; 1 with no sales.
    Staff can set the factor of the year instead on the period."""
    taxed = exempt = 0
    for s in sales:
        sign = -1 if s.tipo in calc.SALES_NOTAS_CREDITO else 1
        taxed += sign * s.neto
        exempt += sign * s.exento
    if taxed <= 0 and exempt <= 0:
        return Decimal(1)
    if taxed <= 0:
        return Decimal(0)
    return (Decimal(taxed) / Decimal(taxed + max(exempt, 0))).quantize(Decimal("0.000001"))


def _jsonable(value: int | Decimal) -> int | str:
    return str(value) if isinstance(value, Decimal) else value


def _trail(result: calc.F29Result) -> dict[str, Any]:
    return {
        str(code): {
            "code": code,
            "label": box.label,
            "section": box.section,
            "value": _jsonable(box.value),
            "formula": box.formula,
            "inputs": list(box.inputs),
            "parts": [
                {
                    "source": p.source,
                    "tipos": list(p.tipos),
                    "fixed_asset": p.fixed_asset,
                    "field": p.field,
                    "count": p.count,
                    "amount": p.amount,
                    "sign": p.sign,
                }
                for p in box.parts
            ],
        }
        for code, box in result.boxes.items()
    }


def _event(f29: F29Return, action: str, actor, reason: str = "") -> None:
    F29Event.objects.create(
        f29=f29, action=action, actor=erp_services.user_or_none(actor), reason=reason
    )


def _require_state(f29: F29Return, *states: str, action: str) -> None:
    if f29.state not in states:
        if f29.state == F29State.DRAFT:
            message = (
                f"El F29 de {period_label(f29.periodo)} está en borrador: no se puede {action}."
            )
        else:
            message = (
                f"El F29 de {period_label(f29.periodo)} está {f29.get_state_display().lower()}: "
                f"no se puede {action} sin reabrirlo."
            )
        raise DomainError(
            F29_NOT_DRAFT if F29State.DRAFT in states else F29_WRONG_STATE,
            message,
            {"state": message},
        )


_PERIOD_KEY = re.compile(r"^(\d{4})-(\d{2})$")


def period_from_key(text: str) -> date:
    """A period as the URLs spell it ("2026-10"), for any period that may have been stored:
    the range a new period must fall in is check_new_period's, not the reader's."""
    match = _PERIOD_KEY.match(text or "")
    month = int(match.group(2)) if match else 0
    year = int(match.group(1)) if match else 0
    if not (1 <= month <= 12 and year >= 1):
        raise InvalidPeriod(f"Período inválido «{text}»: use AAAA-MM, p. ej. 2026-10.")
    return date(year, month, 1)


# The first period an F29 can be proposed for: the books of electronic documents (DTE) start in
# 2003; a month earlier than that, or one that has not begun, is a typing mistake.
FIRST_PERIOD = date(2003, 1, 1)


def check_new_period(periodo: date, *, today: date | None = None) -> None:
    """Refuse a period no F29 can be proposed for, with a message for the period field."""
    periodo = month_start(periodo)
    current = month_start(today or timezone.localdate())
    message = ""
    if periodo < FIRST_PERIOD:
        message = (
            f"El período {period_label(periodo)} es anterior a la facturación electrónica: "
            f"el primero posible es {period_label(FIRST_PERIOD)}."
        )
    elif periodo > current:
        message = (
            f"El período {period_label(periodo)} aún no comienza: "
            f"el último posible es {period_label(current)}."
        )
    if message:
        raise DomainError(INVALID_INPUT, message, {"periodo": message})


def _proposal(
    f29: F29Return, previous: F29Return | None
) -> tuple[calc.F29Result, Decimal, list[calc.SalesAggregate]]:
    """The boxes the books give now, with the period's stored inputs (rate, overrides)."""
    sales = selectors.sales_aggregates(company=f29.company, periodo=f29.periodo)
    purchases = selectors.purchase_aggregates(company=f29.company, periodo=f29.periodo)
    if f29.remanente_override is not None:
        remanente_value = f29.remanente_override
    else:
        remanente_value = previous.box(77) if previous else 0
    factor = (
        f29.uso_comun_factor
        if f29.uso_comun_factor is not None
        else default_uso_comun_factor(sales)
    )
    result = calc.compute(
        calc.F29Input(
            sales=sales,
            purchases=purchases,
            remanente_anterior=remanente_value,
            ppm_rate=Decimal(f29.ppm_rate),
            uso_comun_factor=Decimal(factor),
        )
    )
    return result, Decimal(factor), list(sales)


@transaction.atomic
def f29_compute(
    *,
    company: Company,
    periodo: date,
    actor,
    ppm_rate: Any = None,
    remanente: Any = ...,
    uso_comun_factor: Any = ...,
    now=None,
) -> F29Return:
    """Compute (or recompute) the draft of one month from the books. `remanente` and
    `uso_comun_factor`: a value overrides, None goes back to the computed default, and leaving
    them out keeps what the period had. A new period must be one an F29 exists for
    (check_new_period)."""
    periodo = month_start(periodo)
    previous = selectors.f29_find(company=company, periodo=previous_period(periodo))
    if selectors.f29_find(company=company, periodo=periodo) is None:
        check_new_period(periodo, today=timezone.localdate(now) if now else None)
    f29, _ = F29Return.objects.select_for_update().get_or_create(
        company=company,
        periodo=periodo,
        defaults={"ppm_rate": previous.ppm_rate if previous else Decimal(0)},
    )
    _require_state(f29, F29State.DRAFT, action="recalcular")
    if ppm_rate is not None and ppm_rate != "":
        f29.ppm_rate = _decimal(ppm_rate, "ppm_rate", low=Decimal(0), high=Decimal(100))
    if remanente is not ...:
        f29.remanente_override = (
            None
            if remanente in (None, "")
            else int(_decimal(remanente, "remanente", low=Decimal(0)))
        )
    if uso_comun_factor is not ...:
        f29.uso_comun_factor = (
            None
            if uso_comun_factor in (None, "")
            else _decimal(uso_comun_factor, "uso_comun_factor", low=Decimal(0), high=Decimal(1))
        )
    result, factor, _ = _proposal(f29, previous)
    f29.boxes = {k: _jsonable(v) for k, v in result.as_json().items()}
    f29.trail = _trail(result)
    f29.trail["_inputs"] = {
        "uso_comun_factor": str(factor),
        "uso_comun_factor_default": f29.uso_comun_factor is None,
        "remanente_from_previous": f29.remanente_override is None and previous is not None,
    }
    f29.computed_at = now or timezone.now()
    f29.save()
    _event(f29, F29Event.Action.COMPUTED, actor)
    signals.f29_computed.send(sender=F29Return, f29=f29)
    return f29


@dataclass(frozen=True)
class BoxChange:
    """A box whose value the books no longer give: as computed, and as it would be now."""

    code: int
    label: str
    computed: int | str
    now: int | str


def f29_outdated(*, f29: F29Return) -> list[BoxChange]:
    """The boxes a recomputation would change: sales issued or accepted, purchases recorded,
    changed or removed, received DTEs booked in the period (or the previous period's
    remanente) since the proposal was computed. Empty when the proposal is up to date. Reads
    only: two aggregate queries and the previous period."""
    if f29.computed_at is None:
        return []
    previous = selectors.f29_find(company=f29.company, periodo=previous_period(f29.periodo))
    result, _, _ = _proposal(f29, previous)
    changes = []
    for code, box in result.boxes.items():
        now, computed = _jsonable(box.value), f29.boxes.get(str(code), 0)
        if Decimal(str(now)) != Decimal(str(computed)):  # 115 is a rate: "0" == "0.000"
            changes.append(BoxChange(code, box.label, computed, now))
    return changes


@transaction.atomic
def f29_review(*, f29: F29Return, actor) -> F29Return:
    f29 = F29Return.objects.select_for_update().get(pk=f29.pk)
    _require_state(f29, F29State.DRAFT, action="marcar como revisado")
    f29.state = F29State.REVIEWED
    f29.reviewed_at, f29.reviewed_by = timezone.now(), erp_services.user_or_none(actor)
    f29.save(update_fields=["state", "reviewed_at", "reviewed_by"])
    _event(f29, F29Event.Action.REVIEWED, actor)
    return f29


@transaction.atomic
def f29_file(*, f29: F29Return, actor, folio_sii: str = "") -> F29Return:
    """Filed: the period is locked; documents dated in it cannot be created or changed."""
    f29 = F29Return.objects.select_for_update().get(pk=f29.pk)
    _require_state(f29, F29State.REVIEWED, action="presentar (revíselo primero)")
    f29.state = F29State.FILED
    f29.filed_at, f29.filed_by = timezone.now(), erp_services.user_or_none(actor)
    f29.folio_sii = (folio_sii or "").strip()[:20]
    f29.save(update_fields=["state", "filed_at", "filed_by", "folio_sii"])
    ClosedPeriod.objects.get_or_create(
        company=f29.company,
        periodo=f29.periodo,
        defaults={"closed_by": erp_services.user_or_none(actor)},
    )
    _event(f29, F29Event.Action.FILED, actor, f"Folio SII {f29.folio_sii}" if f29.folio_sii else "")
    return f29


@transaction.atomic
def f29_reopen(*, f29: F29Return, actor, reason: str) -> F29Return:
    """Back to draft, unlocking the period. The reason is required and kept with who did it."""
    reason = (reason or "").strip()
    if len(reason) < 5:
        message = "Explique por qué se reabre el período."
        raise DomainError(INVALID_INPUT, message, {"reason": message})
    f29 = F29Return.objects.select_for_update().get(pk=f29.pk)
    _require_state(f29, F29State.REVIEWED, F29State.FILED, action="reabrir")
    f29.state = F29State.DRAFT
    f29.save(update_fields=["state"])
    ClosedPeriod.objects.filter(company=f29.company, periodo=f29.periodo).delete()
    _event(f29, F29Event.Action.REOPENED, actor, reason)
    return f29


def f29_draft_previous_month(*, today: date, actor=None) -> dict[str, str]:
    """The beat job: draft last month's F29 for every company that has not reviewed or filed
    it. One company's failure does not stop the others."""
    periodo = previous_period(month_start(today))
    outcome: dict[str, str] = {}
    for company in Company.objects.order_by("rut"):
        existing = selectors.f29_find(company=company, periodo=periodo)
        if existing is not None and existing.state != F29State.DRAFT:
            outcome[company.rut] = existing.state
            continue
        try:
            f29_compute(company=company, periodo=periodo, actor=actor)
        except DomainError as exc:
            outcome[company.rut] = f"error: {exc.message}"
        else:
            outcome[company.rut] = "draft"
    return outcome


# ---------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class Reconciliation:
    periodo: date
    kind: str
    lines: list[ReconLine]
    summary: dict[Category, Any]
    rcv_imported: bool


def f29_reconcile(*, company: Company, periodo: date, kind: str) -> Reconciliation:
    if kind not in RcvKind.values:
        message = "Indique compras o ventas."
        raise DomainError(INVALID_INPUT, message, {"kind": message})
    periodo = month_start(periodo)
    books = selectors.books_side(company=company, periodo=periodo, kind=kind)
    sii = selectors.rcv_side(company=company, periodo=periodo, kind=kind)
    lines = reconcile(books, sii)
    return Reconciliation(
        periodo=periodo,
        kind=kind,
        lines=lines,
        summary=summarize(lines),
        rcv_imported=bool(sii),
    )
