"""The printed representation of a DTE (DOMAIN.md §13): letter for facturas, notas and guías,
80 mm thermal for boletas. The stamp is the PDF417 of the TED (error correction level 5), with
"Timbre Electrónico SII", the resolution and "Verifique documento: www.sii.cl"; a QR carries the
document's public verification link. Pure: data in, PDF bytes out."""

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from dte.pdf.barcodes import pdf417_bitmap, qr_bitmap
from dte.pdf.data import PrintData
from erp.doctypes import TipoDte, codes, liquidated_label
from erp.exports import format_in_currency
from erp.money import format_clp, format_decimal
from erp.rut import format_rut

# Images go into the PDF Flate-compressed as binary: ASCII85 text encoding (reportlab's
# default, done in pure Python) is slower than drawing the rest of the page.
rl_config.useA85 = 0

RED = colors.HexColor("#c8102e")
FRAME_PADDING = 6  # points: reportlab's frames keep this much inside the page margins
GREY = colors.HexColor("#555555")
CEDIBLE_TYPES = codes(lambda d: d.cedible)
LEY_19983 = (
    "El acuse de recibo que se declara en este acto, de acuerdo a lo dispuesto en la letra b) "
    "del Art. 4°, y la letra c) del Art. 5° de la Ley 19.983, acredita que la entrega de "
    "mercaderías o servicio(s) prestado(s) ha(n) sido recibido(s)."
)
CODREF = {"1": "Anula documento", "2": "Corrige texto", "3": "Corrige montos"}


@dataclass(frozen=True)
class RenderOptions:
    format: str = "letter"  # letter | thermal
    cedible: bool = False
    resolution_date: date | None = None
    resolution_number: int = 0
    unidad_regional: str = "SANTIAGO CENTRO"
    logo: bytes | None = None
    verify_url: str = ""
    notes: str = ""  # the document's Observaciones (not part of the signed XML)


def _style(size: float = 8, *, bold: bool = False, align: int = 0, color=colors.black):
    return ParagraphStyle(
        "s",
        fontName="Helvetica-Bold" if bold else "Helvetica",
        fontSize=size,
        leading=size * 1.25,
        alignment=align,
        textColor=color,
    )


def _p(text: str, size: float = 8, **kw) -> Paragraph:
    safe = (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Paragraph(safe.replace("\n", "<br/>"), _style(size, **kw))


def _date(value: date | None) -> str:
    return value.strftime("%d-%m-%Y") if value else ""


def _qty(value: Decimal | None) -> str:
    return format_decimal(value) if value is not None else ""


def _rut(value: str) -> str:
    try:
        return format_rut(value)
    except ValueError:
        return value


class Bitmap(Flowable):
    """A barcode bitmap (one pixel per module) drawn at its printed size, not interpolated."""

    def __init__(self, image, width: float, height: float):
        super().__init__()
        self.reader = ImageReader(image)
        self.hAlign = "CENTER"
        self.width = width
        self.height = height

    def wrap(self, available_width, available_height):
        return self.width, self.height

    def draw(self):
        self.canv.drawImage(self.reader, 0, 0, self.width, self.height)


def pdf417_flowable(ted: bytes, width: float) -> Bitmap:
    image, ratio = pdf417_bitmap(ted)
    return Bitmap(image, width, width * ratio)


def qr_flowable(url: str, width: float) -> Bitmap:
    return Bitmap(qr_bitmap(url), width, width)


def _stamp(data: PrintData, options: RenderOptions, width: float) -> list[Flowable]:
    """PDF417 of the TED with its captions, centred under it (DOMAIN.md §13)."""
    year = options.resolution_date.year if options.resolution_date else ""
    center = {"align": TA_CENTER}
    parts = [
        pdf417_flowable(data.ted, width),
        _p("Timbre Electrónico SII", 7, bold=True, **center),
        _p(f"Res. N° {options.resolution_number} de {year}", 7, **center),
        _p("Verifique documento: www.sii.cl", 7, **center),
    ]
    stamp = Table([[part] for part in parts], colWidths=[width], hAlign="LEFT")
    stamp.setStyle(
        TableStyle(
            [
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return [stamp]


def _title(data: PrintData) -> str:
    try:
        return TipoDte(data.tipo).label.upper()
    except ValueError:
        return f"DOCUMENTO TRIBUTARIO ELECTRÓNICO {data.tipo}"


def _red_box(data: PrintData, options: RenderOptions, width: float) -> Table:
    box = Table(
        [
            [_p(f"R.U.T.: {_rut(data.emisor.rut)}", 11, bold=True, align=TA_CENTER, color=RED)],
            [_p(_title(data), 11, bold=True, align=TA_CENTER, color=RED)],
            [_p(f"N° {data.folio}", 11, bold=True, align=TA_CENTER, color=RED)],
        ],
        colWidths=[width],
    )
    box.setStyle(
        TableStyle([("BOX", (0, 0), (-1, -1), 2, RED), ("TOPPADDING", (0, 0), (-1, -1), 4)])
    )
    return Table(
        [
            [box],
            [_p(f"S.I.I. - {options.unidad_regional}", 8, bold=True, align=TA_CENTER, color=RED)],
        ],
        colWidths=[width],
    )


def _emisor_block(data: PrintData, options: RenderOptions, width: float) -> list[Flowable]:
    e = data.emisor
    parts: list[Flowable] = []
    if options.logo:
        try:
            reader = ImageReader(io.BytesIO(options.logo))
            w, h = reader.getSize()
            parts.append(
                Image(
                    reader,
                    width=min(40 * mm, 18 * mm * w / h),
                    height=min(18 * mm, 40 * mm * h / w),
                )
            )
        except (OSError, ValueError):  # an unreadable logo must not stop the document
            pass
    parts += [
        _p(e.razon_social, 12, bold=True),
        _p(e.giro, 8),
        _p(", ".join(x for x in (e.direccion, e.comuna, e.ciudad) if x), 8),
    ]
    if e.actecos:
        parts.append(_p("Actividad económica: " + ", ".join(e.actecos), 7, color=GREY))
    return parts


def _money(data: PrintData, value: int | Decimal) -> str:
    """Pesos as `$ 1.234`; an export's amounts in its currency: `US$ 43.902,25`."""
    return format_in_currency(value, data.moneda) if data.moneda else format_clp(value)


def _totals_rows(data: PrintData) -> list[tuple[str, str]]:
    rows = []
    for adj in data.adjustments:
        label = "Descuento global" if adj.movement == "D" else "Recargo global"
        value = (
            f"{format_decimal(adj.value)} %" if adj.value_type == "%" else _money(data, adj.value)
        )
        rows.append((label, value))
    if data.moneda:
        rows.append(("Monto exento", _money(data, data.exento)))
        rows.append((f"TOTAL {data.moneda}", _money(data, data.total)))
        if data.total_pesos is not None and data.tipo_cambio is not None:
            rate = format_decimal(data.tipo_cambio)
            rows.append((f"Total en pesos (tipo de cambio {rate})", format_clp(data.total_pesos)))
        return rows
    if data.neto or not data.exento:
        rows.append(("Monto neto", format_clp(data.neto)))
    if data.exento:
        rows.append(("Monto exento", format_clp(data.exento)))
    if data.iva or data.neto:
        rows.append((f"IVA {data.tasa_iva} %", format_clp(data.iva)))
    if data.iva_retenido:
        rows.append(("IVA retenido", f"-{format_clp(data.iva_retenido)}"))
    if data.commissions:  # a liquidación factura: the commissions are subtracted
        rows.append(("Comisiones neto", f"-{format_clp(data.comision_neto)}"))
        if data.comision_exento:
            rows.append(("Comisiones exento", f"-{format_clp(data.comision_exento)}"))
        rows.append(("IVA comisiones", f"-{format_clp(data.comision_iva)}"))
    rows.append(("TOTAL", format_clp(data.total)))
    return rows


COMMISSION_KINDS = {"C": "Comisión", "O": "Otros cargos"}


def _commissions(data: PrintData, width: float) -> list[Flowable]:
    """A liquidación factura's commissions and other charges, under the liquidated sales."""
    if not data.commissions:
        return []
    header = ["Tipo", "Glosa", "Tasa", "Neto", "Exento", "IVA"]
    rows = [[_p(h, 7, bold=True) for h in header]]
    for c in data.commissions:
        rows.append(
            [
                _p(COMMISSION_KINDS.get(c.kind, c.kind), 7),
                _p(c.glosa, 7),
                _p(f"{format_decimal(c.tasa)} %" if c.tasa is not None else "", 7, align=TA_RIGHT),
                _p(format_clp(c.neto), 7, align=TA_RIGHT),
                _p(format_clp(c.exento), 7, align=TA_RIGHT),
                _p(format_clp(c.iva), 7, align=TA_RIGHT),
            ]
        )
    fractions = (0.13, 0.43, 0.08, 0.12, 0.12, 0.12)
    table = Table(rows, colWidths=[width * f for f in fractions], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return [Spacer(1, 3 * mm), _p("Comisiones y otros cargos", 8, bold=True), table]


def _lines_table(data: PrintData, width: float) -> Table:
    liquidacion = any(line.liquidated for line in data.lines)
    first = "Doc. liquidado" if liquidacion else "Código"
    header = [first, "Descripción", "Cant.", "Unidad", "P. unitario", "Desc.", "Monto"]
    rows = [[_p(h, 7, bold=True) for h in header]]
    for line in data.lines:
        text = line.name + (f"\n{line.description}" if line.description else "")
        if line.exempt:
            text += " (exento)"
        discount = f"{format_decimal(line.discount_pct)} %" if line.discount_pct else ""
        rows.append(
            [
                _p(liquidated_label(line.liquidated) if liquidacion else line.code, 7),
                _p(text, 7),
                _p(_qty(line.quantity), 7, align=TA_RIGHT),
                _p(line.unit, 7),
                _p(_qty(line.price), 7, align=TA_RIGHT),
                _p(discount, 7, align=TA_RIGHT),
                _p(_money(data, line.amount), 7, align=TA_RIGHT),
            ]
        )
    fractions = (0.11, 0.41, 0.08, 0.07, 0.12, 0.08, 0.13)
    table = Table(rows, colWidths=[width * f for f in fractions], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _receptor_table(data: PrintData, width: float) -> Table:
    r = data.receptor
    rows = [
        (
            "Señor(es)",
            r.razon_social or "Consumidor final",
            "Fecha emisión",
            _date(data.fecha_emision),
        ),
        ("R.U.T.", _rut(r.rut), "Vencimiento", _date(data.fecha_vencimiento)),
        ("Giro", r.giro, "Forma de pago", data.forma_pago),
        ("Dirección", r.direccion, "Comuna", r.comuna),
        ("Contacto", r.contacto, "Ciudad", r.ciudad),
    ]
    table = Table(
        [[_p(a, 8, bold=True), _p(b, 8), _p(c, 8, bold=True), _p(d, 8)] for a, b, c, d in rows],
        colWidths=[width * 0.13, width * 0.47, width * 0.17, width * 0.23],
    )
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.6, colors.black),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def _traslado(data: PrintData, size: float = 7) -> list[Flowable]:
    """A guía's traslado, or an export's customs data, as printed lines under the detail."""
    lines = data.traslado + data.aduana
    if not lines:
        return []
    return [Spacer(1, 2 * mm), _p("\n".join(lines), size)]


def _references(data: PrintData, size: float = 7) -> list[Flowable]:
    if not data.references:
        return []
    lines = [
        "Ref.: "
        + " ".join(
            part
            for part in (
                r.tipo,
                f"N° {r.folio}" if r.folio else "",
                f"del {_date(r.fecha)}" if r.fecha else "",
            )
            if part
        )
        + (f" · {CODREF.get(r.cod_ref, r.cod_ref)}" if r.cod_ref else "")
        + (f" · {r.razon}" if r.razon else "")
        for r in data.references
    ]
    return [Spacer(1, 2 * mm), _p("\n".join(lines), size)]


NOTES_MAX_CHARS = 1200
NOTES_MAX_LINES = 15


def notes_text(notes: str) -> str:
    """The Observaciones as printed: blank lines and trailing spaces dropped, at most
    NOTES_MAX_LINES lines and NOTES_MAX_CHARS characters (an ellipsis says it was cut)."""
    lines = [line.rstrip() for line in (notes or "").replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line.strip()]
    text = "\n".join(lines[:NOTES_MAX_LINES])
    cut = len(lines) > NOTES_MAX_LINES
    if len(text) > NOTES_MAX_CHARS:
        text, cut = text[:NOTES_MAX_CHARS].rstrip(), True
    return text + (" …" if cut else "")


def _notes(options: RenderOptions, width: float, size: float = 8) -> list[Flowable]:
    """Observaciones in a box the width of the page (or the roll), wrapped."""
    text = notes_text(options.notes)
    if not text:
        return []
    box = Table([[_p("Observaciones", size, bold=True)], [_p(text, size)]], colWidths=[width])
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.6, colors.black),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return [Spacer(1, 3 * mm), box]


def _cedible(data: PrintData, width: float) -> list[Flowable]:
    fields = [
        ["Nombre:", "", "R.U.T.:", ""],
        ["Fecha:", "", "Recinto:", ""],
        ["Firma:", "", "", ""],
    ]
    table = Table(
        [[_p(c, 8, bold=True) for c in row] for row in fields],
        colWidths=[width * 0.12, width * 0.38, width * 0.12, width * 0.38],
        rowHeights=[7 * mm] * 3,
    )
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
                ("LINEBELOW", (1, 0), (1, -1), 0.4, colors.grey),
                ("LINEBELOW", (3, 0), (3, 1), 0.4, colors.grey),
            ]
        )
    )
    label = "CEDIBLE CON SU FACTURA" if data.tipo == 52 else "CEDIBLE"
    return [
        Spacer(1, 3 * mm),
        _p("ACUSE DE RECIBO", 8, bold=True),
        table,
        _p(LEY_19983, 6),
        _p(label, 14, bold=True, align=TA_RIGHT),
    ]


def _letter(data: PrintData, options: RenderOptions) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"{_title(data)} N° {data.folio}",
        author=data.emisor.razon_social,
    )
    width = doc.width - 2 * FRAME_PADDING
    header = Table(
        [[_emisor_block(data, options, width * 0.58), _red_box(data, options, width * 0.38)]],
        colWidths=[width * 0.6, width * 0.4],
    )
    header.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    totals = Table(
        [
            [_p(k, 9, bold=k == "TOTAL"), _p(v, 9, bold=k == "TOTAL", align=TA_RIGHT)]
            for k, v in _totals_rows(data)
        ],
        colWidths=[width * 0.19, width * 0.16],
    )
    totals.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.6, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
            ]
        )
    )
    # 70 mm keeps the PDF417's module near 0.24 mm: readable by ordinary scanners.
    stamp_cell = _stamp(data, options, 70 * mm)
    right: list[Flowable] = [totals]
    if options.verify_url:
        qr = Table(
            [
                [
                    qr_flowable(options.verify_url, 22 * mm),
                    _p("Verifique este documento en línea escaneando el código.", 7),
                ]
            ],
            colWidths=[26 * mm, width * 0.35 - 26 * mm],
        )
        qr.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
        right += [Spacer(1, 3 * mm), qr]
    bottom = Table([[stamp_cell, right]], colWidths=[width * 0.6, width * 0.4])
    bottom.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story: list[Flowable] = [
        header,
        Spacer(1, 4 * mm),
        _receptor_table(data, width),
        Spacer(1, 4 * mm),
        _lines_table(data, width),
        *_commissions(data, width),
        *_traslado(data),
        *_references(data),
        *_notes(options, width),
        Spacer(1, 5 * mm),
        KeepTogether([bottom]),
    ]
    if options.cedible and data.tipo in CEDIBLE_TYPES:
        story.append(KeepTogether(_cedible(data, width)))
    doc.build(story, onFirstPage=_page_number, onLaterPages=_page_number)
    return buffer.getvalue()


def _page_number(canvas, doc) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 7)
    canvas.drawRightString(doc.pagesize[0] - doc.rightMargin, 6 * mm, f"Página {doc.page}")
    canvas.restoreState()


THERMAL_WIDTH = 80 * mm


def _thermal(data: PrintData, options: RenderOptions) -> bytes:
    margin = 4 * mm
    width = THERMAL_WIDTH - 2 * margin - 2 * FRAME_PADDING
    center = {"align": TA_CENTER}
    story: list[Flowable] = [
        _p(data.emisor.razon_social, 10, bold=True, **center),
        _p(data.emisor.giro, 7, **center),
        _p(", ".join(x for x in (data.emisor.direccion, data.emisor.comuna) if x), 7, **center),
        Spacer(1, 2 * mm),
        _red_box(data, options, width),
        Spacer(1, 2 * mm),
        _p(f"Fecha: {_date(data.fecha_emision)}", 8),
    ]
    if data.receptor.rut and data.receptor.rut != "66666666-6":
        story.append(_p(f"Cliente: {data.receptor.razon_social} · {_rut(data.receptor.rut)}", 8))
    rows = []
    for line in data.lines:
        rows.append(
            [
                _p(line.name + (" (exento)" if line.exempt else ""), 8),
                _p(_money(data, line.amount), 8, align=TA_RIGHT),
            ]
        )
        rows.append(
            [
                _p(
                    f"{_qty(line.quantity)} x {_qty(line.price)}"
                    + (f" (-{format_decimal(line.discount_pct)} %)" if line.discount_pct else ""),
                    7,
                    color=GREY,
                ),
                "",
            ]
        )
    items = Table(rows, colWidths=[width * 0.68, width * 0.32])
    items.setStyle(
        TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)])
    )
    totals = Table(
        [
            [_p(k, 8, bold=k == "TOTAL"), _p(v, 8, bold=k == "TOTAL", align=TA_RIGHT)]
            for k, v in _totals_rows(data)
        ],
        colWidths=[width * 0.6, width * 0.4],
    )
    totals.setStyle(TableStyle([("LINEABOVE", (0, 0), (-1, 0), 0.6, colors.black)]))
    story += [
        Spacer(1, 2 * mm),
        items,
        totals,
        *_traslado(data, 7),
        *_references(data, 7),
        *_notes(options, width, 7),
        Spacer(1, 3 * mm),
        *_stamp(data, options, width),
    ]
    if options.verify_url:
        story += [
            Spacer(1, 2 * mm),
            qr_flowable(options.verify_url, 26 * mm),
            _p("Verifique en línea", 6, **center),
        ]
    if options.cedible and data.tipo in CEDIBLE_TYPES:
        story += _cedible(data, width)
    height = sum(f.wrap(width, 10_000)[1] for f in story) + 2 * margin + 20 * mm
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=(THERMAL_WIDTH, height),
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=f"{_title(data)} N° {data.folio}",
    )
    doc.build(story)
    return buffer.getvalue()


def render_pdf(data: PrintData, options: RenderOptions) -> bytes:
    if options.format == "thermal":
        return _thermal(data, options)
    if options.format == "letter":
        return _letter(data, options)
    raise ValueError(f"unknown format {options.format!r}: use letter or thermal")
