"""The sales document list ("Documentos"): which documents match a search, filters and a sort,
with the SII's state of each, and the whole matching list written as CSV or XLSX.

The list belongs to dte, not erp, because it shows and filters by the state of each document's
DTE. Reads only, for one company (the caller resolved it and checked the role). Exports iterate
the database in chunks and write as they go, so 50.000 rows take bounded memory.
"""

import contextlib
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Lower

from dte.core.domain import DteStatus
from dte.models import STATUS_LABELS
from erp.csvsafe import SafeWriter
from erp.doctypes import TipoDte
from erp.models import Company, DocumentState, SalesDocument
from erp.rut import InvalidRut, format_rut, normalize_rut
from erp.tenancy import scoped

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = PAGE_SIZES[0]
DEFAULT_SORT = "-fecha"
SORT_COLUMNS = ("folio", "fecha", "cliente", "total", "estado")
EXPORT_CHUNK = 2000
SEARCH_MAX = 100
# A list never needs a DTE's files: only its state (and its id, for links).
_DTE_FILES = ("dte__xml", "dte__ted", "dte__pdf", "dte__signature_value")
SII_STATE_CHOICES = [(s.value, STATUS_LABELS[s]) for s in DteStatus]
STATE_LABELS = dict(DocumentState.choices)


@dataclass(frozen=True)
class Criteria:
    """What the list is asked for; every field optional (None or empty: no filter)."""

    q: str = ""
    tipo_dte: int | None = None
    state: str | None = None
    sii_state: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    partner_id: int | None = None


def sort_key(value: str | None) -> str:
    """The sort asked for if it is one of the columns (`folio`, `-total`…), else the default:
    anything else in `?sort=` is ignored, never passed to the database."""
    if value and value.removeprefix("-") in SORT_COLUMNS:
        return value
    return DEFAULT_SORT


def page_size(value: str | None) -> int:
    """25, 50 or 100 rows a page; anything else is the default."""
    try:
        size = int(value or "")
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE


def _state_rank() -> Case:
    """Drafts first, then the DTE's states in the order a document lives them."""
    whens = [When(dte__status=status, then=Value(i)) for i, status in enumerate(DteStatus, 1)]
    return Case(*whens, default=Value(0), output_field=IntegerField())


def _ordering(sort: str) -> list[Any]:
    descending = sort.startswith("-")
    column = sort.removeprefix("-")
    expressions: dict[str, list[Any]] = {
        "folio": [F("folio")],
        "fecha": [F("fecha_emision")],
        "cliente": [Lower("partner__razon_social")],
        "total": [F("monto_total")],
        "estado": [F("state"), _state_rank()],
    }
    keys = [*expressions[column], F("id")]
    # Documents without the value (drafts have no folio, boletas no customer) go last both ways.
    nulls = {"nulls_last": True} if column in ("folio", "cliente") else {}
    return [k.desc(**nulls) if descending else k.asc(**nulls) for k in keys]


def search_condition(text: str) -> Q | None:
    """One box for a folio, a RUT (with or without dots and hyphen) or the receiver's name.

    Digits alone are a folio (or the start of a RUT, from six digits on); a RUT-shaped text
    is that RUT; anything else is part of the name. None when there is nothing to search."""
    text = (text or "").strip()[:SEARCH_MAX]
    if not text:
        return None
    compact = re.sub(r"[\s.]", "", text).upper()
    if re.fullmatch(r"\d{1,18}", compact):
        condition = Q(folio=int(compact))
        if len(compact) >= 6:
            condition |= Q(partner__rut__startswith=compact) | Q(
                dte__rut_receptor__startswith=compact
            )
        with contextlib.suppress(InvalidRut):  # the check digit typed without a hyphen
            if len(compact) >= 7:
                rut = normalize_rut(compact)
                condition |= Q(partner__rut=rut) | Q(dte__rut_receptor=rut)
        return condition
    if re.fullmatch(r"\d{1,8}-?[\dK]", compact):
        try:
            rut = normalize_rut(compact)
        except InvalidRut:
            return Q(partner__rut__startswith=compact)
        return Q(partner__rut=rut) | Q(dte__rut_receptor=rut)
    return Q(partner__razon_social__icontains=text)


def sales_documents(
    *, company: Company, criteria: Criteria = Criteria(), sort: str = DEFAULT_SORT
) -> QuerySet[SalesDocument]:
    """The company's sales documents matching `criteria`, sorted by `sort` (see sort_key),
    each with its partner and its DTE's state in the same query."""
    qs = scoped(SalesDocument.objects.all(), company)
    if criteria.tipo_dte:
        qs = qs.filter(tipo_dte=criteria.tipo_dte)
    if criteria.state:
        qs = qs.filter(state=criteria.state)
    if criteria.sii_state:
        qs = qs.filter(dte__status=criteria.sii_state)
    if criteria.date_from:
        qs = qs.filter(fecha_emision__gte=criteria.date_from)
    if criteria.date_to:
        qs = qs.filter(fecha_emision__lte=criteria.date_to)
    if criteria.partner_id:
        qs = qs.filter(partner_id=criteria.partner_id)
    condition = search_condition(criteria.q)
    if condition is not None:
        qs = qs.filter(condition)
    return qs.order_by(*_ordering(sort_key(sort)))


def page_rows(qs: QuerySet[SalesDocument]) -> QuerySet[SalesDocument]:
    """What one page shows: the partner and the DTE joined, the DTE's files left behind."""
    return qs.select_related("partner", "dte").defer(*_DTE_FILES)


# ---------------------------------------------------------------- export

HEADERS = (
    "Tipo",
    "Documento",
    "Folio",
    "Fecha emisión",
    "RUT receptor",
    "Razón social receptor",
    "Estado",
    "Estado SII",
    "Neto",
    "Exento",
    "IVA",
    "Total",
)
_EXPORT_FIELDS = (
    "tipo_dte",
    "folio",
    "fecha_emision",
    "partner__rut",
    "partner__razon_social",
    "dte__rut_receptor",
    "state",
    "dte__status",
    "monto_neto",
    "monto_exento",
    "iva",
    "monto_total",
)
AMOUNT_COLUMNS = (8, 9, 10, 11)  # zero-based: Neto, Exento, IVA, Total
DATE_COLUMN = 3
# Excel's codes; each spreadsheet shows its locale's separators ($ 1.234.567 in es-CL).
CLP_FORMAT = '"$ "#,##0'
DATE_FORMAT = "dd-mm-yyyy"


def _tipo_label(tipo: int) -> str:
    try:
        return str(TipoDte(tipo).label)
    except ValueError:
        return f"Tipo {tipo}"


def _status_label(status: str | None) -> str:
    if not status:
        return ""
    try:
        return str(STATUS_LABELS[DteStatus(status)])
    except ValueError:
        return status


def export_rows(qs: QuerySet[SalesDocument]) -> Iterator[tuple[Any, ...]]:
    """The documents as typed rows (numbers as int, the date as a date), in HEADERS' order,
    read from the database EXPORT_CHUNK rows at a time."""
    values = qs.values_list(*_EXPORT_FIELDS).iterator(chunk_size=EXPORT_CHUNK)
    for tipo, folio, fecha, rut, name, dte_rut, state, status, neto, exento, iva, total in values:
        receiver = rut or dte_rut or ""
        with contextlib.suppress(InvalidRut, ValueError):
            receiver = format_rut(receiver) if receiver else ""
        yield (
            tipo,
            _tipo_label(tipo),
            folio,
            fecha,
            receiver,
            name or "",
            STATE_LABELS.get(state, state),
            _status_label(status),
            neto,
            exento,
            iva,
            total,
        )


class _Echo:
    """A file-like object whose write() hands back what it is given (csv → a generator)."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(rows: Iterable[tuple[Any, ...]]) -> Iterator[bytes]:
    """CSV for a spreadsheet in es-CL: UTF-8 with a BOM (Excel then reads the accents), `;`
    between cells (the comma is the decimal mark), dates dd-mm-aaaa, amounts as plain
    integers, and no cell a spreadsheet would run as a formula (erp.csvsafe)."""
    writer = SafeWriter(_Echo(), delimiter=";")
    yield ("\ufeff" + writer.writerow(HEADERS)).encode("utf-8")
    buffer: list[str] = []
    for row in rows:
        cells = list(row)
        if isinstance(cells[DATE_COLUMN], date):
            cells[DATE_COLUMN] = cells[DATE_COLUMN].strftime("%d-%m-%Y")
        cells = ["" if c is None else c for c in cells]
        buffer.append(writer.writerow(cells))
        if len(buffer) >= 500:
            yield "".join(buffer).encode("utf-8")
            buffer = []
    if buffer:
        yield "".join(buffer).encode("utf-8")


def write_xlsx(rows: Iterable[tuple[Any, ...]], *, title: str = "Documentos") -> IO[bytes]:
    """An XLSX workbook of the rows, written by openpyxl in write-only mode (rows go to disk as
    they come), returned as a temporary file positioned at its start. Amounts are numbers in
    a CLP format, the date a date; text cells are neutralised as in the CSV."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from erp.csvsafe import cell as safe_cell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    widths = (6, 30, 10, 13, 14, 40, 10, 22, 14, 14, 14, 14)
    for index, width in enumerate(widths):
        sheet.column_dimensions[get_column_letter(index + 1)].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for text in HEADERS:
        c = WriteOnlyCell(sheet, value=text)
        c.font = bold
        header.append(c)
    sheet.append(header)
    count = 0
    for row in rows:
        cells: list[Any] = []
        for index, value in enumerate(row):
            if index in AMOUNT_COLUMNS and value is not None:
                c = WriteOnlyCell(sheet, value=value)
                c.number_format = CLP_FORMAT
                cells.append(c)
            elif index == DATE_COLUMN and value is not None:
                c = WriteOnlyCell(sheet, value=value)
                c.number_format = DATE_FORMAT
                cells.append(c)
            else:
                cells.append(safe_cell(value))
        sheet.append(cells)
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(HEADERS))}{count + 1}"
    output = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 (returned)
    workbook.save(output)
    output.seek(0)
    return output
