"""The boxes ("casillas") of the monthly VAT form F29, computed from a period's aggregates.

Pure: standard library only, no Django, no I/O, no clock. Amounts are integer pesos, never
float; rounding is half up to whole pesos (`decimal.ROUND_HALF_UP`). Every box keeps its trail:
boxes fed by documents or inputs carry `TrailPart`s (which document types, which field, how many
documents, the signed sum); derived boxes carry a formula and the codes it uses.

Box codes and names follow cl-sii's `cl_sii/cte/f29/data_models.py` and DOMAIN.md §15, which is
not marked [verified]. What follows is OUR READING of how each box is fed; every line of it is
an interpretation to check against the SII's F29 proposal before relying on it.

Débitos (issued sales DTEs accepted by the SII, `SalesAggregate`, one per tipo):
- 503 / 502: count / IVA of facturas 30, 33.
- 110 / 111: count / IVA of boletas 35, 39.
- 509 / 510: count / IVA of notas de crédito 60, 61. 510 is shown positive and subtracts in 538.
- 512 / 513: count / IVA of notas de débito 55, 56.
- 586: count of exempt sales documents 32, 34, 38, 41 (exempt lines inside facturas afectas do
  not add documents to 586).
- 142: exempt / non-taxed sales amount = `exento` of 30, 32, 33, 34, 35, 38, 39, 41, 55, 56
  minus `exento` of 60, 61 (the exempt part of afectas counts here too).
- 585 / 20: count of export invoices 110 / export amount = `total` of 110 + 111 − `total` of 112
  (amounts assumed already in pesos).
- 500 / 501: count of liquidaciones factura 43 / the IVA of their commissions
  (`comision_iva`): the comisionista who issues one owes IVA only on its commission (Reglamento
  DL 825 art. 22); the mandante declares the sales. Provisional, dte/core/EXPORTS.md §6.
- 538 = 502 + 111 + 513 + 501 − 510.

Créditos (the period's purchases in the register, `PurchaseAggregate`, one per tipo and
fixed-asset flag). The credit of a group is `iva_recuperable` + round_half_up(`iva_uso_comun`
× `uso_comun_factor`); the common-use VAT of the group is summed first and rounded once per box.
We apply that rule to every credit box (520, 525, 528, 532, 535, 553), not only 520 and 525:
a received nota de crédito gives back common-use credit in the same proportion.
- 519 / 520: facturas del giro 30, 33, 46 with fixed_asset False.
- 524 / 525: facturas activo fijo 30, 33, 46 with fixed_asset True.
- 527 / 528: notas de crédito received 60, 61, either flag; 528 is positive, subtracts in 537.
- 531 / 532: notas de débito received 55, 56, either flag.
- 534 / 535: DIN (914) del giro, fixed_asset False; 536 / 553: DIN activo fijo, True.
- 504: remanente de crédito fiscal of the previous month (its box 77, already adjusted by the
  caller), taken from the input as is.
- 537 = 520 + 525 − 528 + 532 + 535 + 553 + 504.

Impuesto determinado: 89 = 538 − 537 when positive, else 0; 77 = 537 − 538 when positive, else 0.

PPM: 563 base imponible = `neto` + `exento` of sales 30, 32, 33, 34, 35, 38, 39, 41, 55, 56, 110,
111, plus the commissions' `comision_neto` + `comision_exento` of 43 (a comisionista's
income is its commission, not the sales it liquidates), minus `neto` + `exento` of 60, 61, 112;
it may be negative and is kept so. 115 is the rate
(a percentage, Decimal) taken from the input. 62 = round_half_up(563 × 115 / 100), 0 when
563 ≤ 0.

Retenciones: 39 IVA retenido a terceros = `iva_retenido` of issued facturas de compra (46). Code
39 is not in cl-sii's code list, and DOMAIN.md §15 also names 515/587 (facturas de compra with
total retention) in the form; this module does not fill those.

Total: 595 = 89 + 62 + 39; 91 = 595 (no reajustes, intereses or multas here).

Aggregates of document types that feed no box (guías 52, for example) are ignored; several
aggregates for the same tipo (and flag) are summed. Amounts and counts in aggregates are the
sign-less amounts printed on the documents: this module applies the signs, and rejects negatives.

The trail: a part's `amount` is the field's sum times its `sign`, except for the common-use part
of a credit box (`field == "iva_uso_comun"`), whose amount is the credited share,
round_half_up(sum × uso_comun_factor). Parts of one box may share documents (a credit box has a
recoverable part and a common-use part over the same documents), so the documents of a box are
counted by its count box, not by adding up its parts' counts. Box 115 has no part: it is the
input rate itself, and a part's amount is an integer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from types import MappingProxyType

from erp.doctypes import PurchaseBox, SalesBox, codes

# --- Document-type groups (tipo_dte), so the app can list the documents behind a box --------

# Which types feed which box is the registry's (erp.doctypes, DocType.sales_boxes and
# purchase_boxes); these are its answers, in code order.


def _sales(box: SalesBox) -> tuple[int, ...]:
    return tuple(sorted(codes(lambda d: box in d.sales_boxes)))


def _purchases(box: PurchaseBox) -> tuple[int, ...]:
    return tuple(sorted(codes(lambda d: box in d.purchase_boxes)))


SALES_FACTURAS = _sales(SalesBox.FACTURAS)  # 503 / 502: 30, 33
SALES_BOLETAS = _sales(SalesBox.BOLETAS)  # 110 / 111: 35, 39
SALES_NOTAS_CREDITO = _sales(SalesBox.NOTAS_CREDITO)  # 509 / 510: 60, 61
SALES_NOTAS_DEBITO = _sales(SalesBox.NOTAS_DEBITO)  # 512 / 513: 55, 56
SALES_EXENTAS = _sales(SalesBox.EXENTAS)  # 586: 32, 34, 38, 41
SALES_EXENTO_SUMA = _sales(SalesBox.EXENTO_SUMA)  # 142, adds
SALES_EXENTO_RESTA = _sales(SalesBox.EXENTO_RESTA)  # 142, subtracts: 60, 61
SALES_EXPORTACIONES = _sales(SalesBox.EXPORTACIONES)  # 585: 110
SALES_EXPORT_SUMA = _sales(SalesBox.EXPORT_SUMA)  # 20, adds: 110, 111
SALES_EXPORT_RESTA = _sales(SalesBox.EXPORT_RESTA)  # 20, subtracts: 112
SALES_PPM_SUMA = SALES_EXENTO_SUMA + SALES_EXPORT_SUMA  # 563, adds
SALES_PPM_RESTA = SALES_NOTAS_CREDITO + SALES_EXPORT_RESTA  # 563, subtracts
SALES_FACTURAS_COMPRA = _sales(SalesBox.FACTURAS_COMPRA)  # 39: 46
SALES_LIQUIDACIONES = _sales(SalesBox.LIQUIDACIONES)  # 500 / 501: 43

PURCHASE_FACTURAS = _purchases(PurchaseBox.FACTURAS)  # 519/520, 524/525: 30, 33, 46
PURCHASE_NOTAS_CREDITO = _purchases(PurchaseBox.NOTAS_CREDITO)  # 527 / 528: 60, 61
PURCHASE_NOTAS_DEBITO = _purchases(PurchaseBox.NOTAS_DEBITO)  # 531 / 532: 55, 56
PURCHASE_DIN = _purchases(PurchaseBox.DIN)  # 534/535, 536/553: 914

# --- The boxes, in form order: code -> (label as on the form, section) ----------------------

DEBITOS = "Débitos"
CREDITOS = "Créditos"
IMPUESTO = "Impuesto determinado"
PPM = "PPM"
RETENCIONES = "Retenciones"
TOTAL = "Total"

_META: dict[int, tuple[str, str]] = {
    585: ("Cantidad de exportaciones", DEBITOS),
    20: ("Exportaciones", DEBITOS),
    586: ("Cantidad de ventas y servicios exentos o no gravados", DEBITOS),
    142: ("Ventas y/o servicios exentos o no gravados", DEBITOS),
    503: ("Cantidad de facturas emitidas", DEBITOS),
    502: ("Débitos facturas emitidas", DEBITOS),
    110: ("Cantidad de boletas", DEBITOS),
    111: ("Débitos boletas", DEBITOS),
    512: ("Cantidad de notas de débito emitidas", DEBITOS),
    513: ("Débitos notas de débito emitidas", DEBITOS),
    509: ("Cantidad de notas de crédito emitidas", DEBITOS),
    510: ("Débitos notas de crédito emitidas", DEBITOS),
    500: ("Cantidad de liquidaciones y liquidaciones factura", DEBITOS),
    501: ("Débitos liquidaciones y liquidaciones factura", DEBITOS),
    538: ("Total débitos", DEBITOS),
    519: ("Cantidad de facturas recibidas del giro", CREDITOS),
    520: ("Crédito facturas recibidas del giro", CREDITOS),
    524: ("Cantidad de facturas activo fijo", CREDITOS),
    525: ("Crédito facturas activo fijo", CREDITOS),
    527: ("Cantidad de notas de crédito recibidas", CREDITOS),
    528: ("Crédito notas de crédito recibidas", CREDITOS),
    531: ("Cantidad de notas de débito recibidas", CREDITOS),
    532: ("Crédito notas de débito recibidas", CREDITOS),
    534: ("Cantidad de DIN importaciones del giro", CREDITOS),
    535: ("Crédito DIN importaciones del giro", CREDITOS),
    536: ("Cantidad de DIN importaciones activo fijo", CREDITOS),
    553: ("Crédito DIN importaciones activo fijo", CREDITOS),
    504: ("Remanente crédito fiscal mes anterior", CREDITOS),
    537: ("Total créditos", CREDITOS),
    89: ("IVA determinado", IMPUESTO),
    77: ("Remanente de crédito fiscal para el mes siguiente", IMPUESTO),
    563: ("Base imponible PPM", PPM),
    115: ("Tasa PPM (%)", PPM),
    62: ("PPM neto determinado", PPM),
    39: ("IVA retenido a terceros", RETENCIONES),
    595: ("Subtotal impuesto determinado", TOTAL),
    91: ("Total a pagar dentro del plazo legal", TOTAL),
}

BOX_CODES: tuple[int, ...] = tuple(_META)
"""Every box this module computes, in form order."""

LABELS: Mapping[int, str] = MappingProxyType({code: meta[0] for code, meta in _META.items()})
SECTIONS: Mapping[int, str] = MappingProxyType({code: meta[1] for code, meta in _META.items()})


# --- Inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesAggregate:
    """The period's issued sales DTEs of one tipo_dte, accepted by the SII."""

    tipo: int
    count: int
    neto: int
    exento: int
    iva: int
    iva_retenido: int
    total: int
    # Liquidaciones factura (43): the commissions' sums (erp SalesDocument.comision_*).
    comision_neto: int = 0
    comision_exento: int = 0
    comision_iva: int = 0


@dataclass(frozen=True)
class PurchaseAggregate:
    """The period's purchases of one (tipo, fixed_asset) in the register ("registro")."""

    tipo: int
    fixed_asset: bool
    count: int
    neto: int
    exento: int
    iva_recuperable: int
    iva_no_recuperable: int
    iva_uso_comun: int
    total: int


@dataclass(frozen=True)
class F29Input:
    sales: tuple[SalesAggregate, ...] = ()
    purchases: tuple[PurchaseAggregate, ...] = ()
    remanente_anterior: int = 0  # box 504 (previous month's 77, already adjusted)
    ppm_rate: Decimal = Decimal(0)  # box 115, a percentage: Decimal("1.5") means 1.5 %
    uso_comun_factor: Decimal = Decimal(1)  # share (0..1) of common-use VAT that is credited


# --- Output ----------------------------------------------------------------------------------

# A trail part's `field` as people read it (the trail keeps the aggregate's field name).
FIELD_LABELS = {
    "count": "cantidad de documentos",
    "neto": "monto neto",
    "exento": "monto exento",
    "iva": "IVA",
    "iva_retenido": "IVA retenido",
    "total": "monto total",
    "comision_neto": "comisión neta",
    "comision_exento": "comisión exenta",
    "comision_iva": "IVA de la comisión",
    "iva_recuperable": "IVA recuperable",
    "iva_no_recuperable": "IVA no recuperable",
    "iva_uso_comun": "IVA de uso común (proporción acreditada)",
    "remanente_anterior": "remanente de crédito del mes anterior",
}


def field_label(field: str) -> str:
    """A trail field in Spanish; a field this table does not know is named in words."""
    return FIELD_LABELS.get(field, field.replace("_", " "))


@dataclass(frozen=True)
class TrailPart:
    source: str  # "sales" | "purchases" | "input"
    tipos: tuple[int, ...]  # document types summed ((), for "input")
    fixed_asset: bool | None  # purchases: which side of the flag; None = not filtered
    field: str  # the aggregate field summed ("iva", "count", "iva_recuperable", ...)
    count: int  # documents behind this part
    amount: int  # the sum, already signed
    sign: int = 1  # +1 adds, -1 subtracts


@dataclass(frozen=True)
class Box:
    code: int
    label: str  # Spanish, as on the form
    section: str  # "Débitos", "Créditos", "Impuesto determinado", "PPM", "Retenciones", "Total"
    value: int | Decimal  # int for everything except 115 (Decimal rate)
    parts: tuple[TrailPart, ...] = ()  # for boxes fed by documents or inputs
    formula: str = ""  # for derived boxes, e.g. "502 + 111 + 513 − 510"
    inputs: tuple[int, ...] = ()  # the box codes the formula uses


@dataclass(frozen=True)
class F29Result:
    boxes: Mapping[int, Box]  # in form order

    def value(self, code: int) -> int | Decimal:
        try:
            return self.boxes[code].value
        except KeyError:
            raise KeyError(f"F29 box {code} is not computed by f29.calc") from None

    def as_json(self) -> dict[str, int | Decimal]:
        """Every box as {"502": 190000, ...}, in form order; 115 stays a Decimal."""
        return {str(code): box.value for code, box in self.boxes.items()}


# --- Computation -----------------------------------------------------------------------------

_ONE = Decimal(1)


def _scaled(amount: int, factor: Decimal, divisor: int = 1) -> int:
    """round_half_up(amount × factor / divisor), exact before the rounding whatever the caller's
    decimal context says."""
    with localcontext() as ctx:
        ctx.prec = 60
        return int((Decimal(amount) * factor / divisor).quantize(_ONE, rounding=ROUND_HALF_UP))


def _int_field(aggregate: SalesAggregate | PurchaseAggregate, field: str) -> int:
    return int(getattr(aggregate, field))


def _sales_part(
    sales: Sequence[SalesAggregate], tipos: tuple[int, ...], field: str, sign: int = 1
) -> TrailPart:
    chosen = [a for a in sales if a.tipo in tipos]
    return TrailPart(
        source="sales",
        tipos=tipos,
        fixed_asset=None,
        field=field,
        count=sum(a.count for a in chosen),
        amount=sign * sum(_int_field(a, field) for a in chosen),
        sign=sign,
    )


def _chosen_purchases(
    purchases: Sequence[PurchaseAggregate], tipos: tuple[int, ...], fixed_asset: bool | None
) -> list[PurchaseAggregate]:
    return [
        a
        for a in purchases
        if a.tipo in tipos and (fixed_asset is None or a.fixed_asset is fixed_asset)
    ]


def _purchase_count_part(
    purchases: Sequence[PurchaseAggregate], tipos: tuple[int, ...], fixed_asset: bool | None
) -> TrailPart:
    count = sum(a.count for a in _chosen_purchases(purchases, tipos, fixed_asset))
    return TrailPart("purchases", tipos, fixed_asset, "count", count, count)


def _credit_parts(
    purchases: Sequence[PurchaseAggregate],
    tipos: tuple[int, ...],
    fixed_asset: bool | None,
    factor: Decimal,
) -> tuple[TrailPart, TrailPart]:
    """Recoverable VAT, and the credited share of common-use VAT (summed, then rounded once)."""
    chosen = _chosen_purchases(purchases, tipos, fixed_asset)
    count = sum(a.count for a in chosen)
    recuperable = sum(a.iva_recuperable for a in chosen)
    uso_comun = _scaled(sum(a.iva_uso_comun for a in chosen), factor)
    return (
        TrailPart("purchases", tipos, fixed_asset, "iva_recuperable", count, recuperable),
        TrailPart("purchases", tipos, fixed_asset, "iva_uso_comun", count, uso_comun),
    )


def _check_aggregate(aggregate: SalesAggregate | PurchaseAggregate) -> None:
    name = type(aggregate).__name__
    for f in dataclasses.fields(aggregate):
        value = getattr(aggregate, f.name)
        if f.name == "fixed_asset":
            if not isinstance(value, bool):
                raise TypeError(f"{name}.fixed_asset must be a bool, not {type(value).__name__}")
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"{name}.{f.name} must be an int (pesos or a count), not {type(value).__name__}"
            )
        if value < 0:
            what = "count" if f.name == "count" else "amount"
            raise ValueError(
                f"{name}(tipo={aggregate.tipo}).{f.name} must not be negative, got {value}: "
                f"aggregates carry the sign-less {what}s of the documents"
            )


def _check_decimal(name: str, value: object) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def _validate(data: F29Input) -> None:
    for sale in data.sales:
        if not isinstance(sale, SalesAggregate):
            raise TypeError(f"sales must hold SalesAggregate, not {type(sale).__name__}")
        _check_aggregate(sale)
    for purchase in data.purchases:
        if not isinstance(purchase, PurchaseAggregate):
            raise TypeError(f"purchases must hold PurchaseAggregate, not {type(purchase).__name__}")
        _check_aggregate(purchase)
    remanente = data.remanente_anterior
    if isinstance(remanente, bool) or not isinstance(remanente, int):
        raise TypeError(f"remanente_anterior must be an int, not {type(remanente).__name__}")
    if remanente < 0:
        raise ValueError(f"remanente_anterior (box 504) must not be negative, got {remanente}")
    rate = _check_decimal("ppm_rate", data.ppm_rate)
    if rate < 0:
        raise ValueError(f"ppm_rate (box 115, a percentage) must not be negative, got {rate}")
    factor = _check_decimal("uso_comun_factor", data.uso_comun_factor)
    if not 0 <= factor <= 1:
        raise ValueError(f"uso_comun_factor must be between 0 and 1, got {factor}")


def compute(data: F29Input) -> F29Result:
    """The F29 boxes of one period, each with its trail.

    Raises ValueError (negative counts or amounts, factor outside [0, 1], negative rate or
    remanente) or TypeError (a float, or anything but int/Decimal where those are due)."""
    _validate(data)
    sales = data.sales
    purchases = data.purchases
    factor = data.uso_comun_factor

    parts: dict[int, tuple[TrailPart, ...]] = {}

    def sales_pair(count_code: int, amount_code: int, tipos: tuple[int, ...], field: str) -> None:
        parts[count_code] = (_sales_part(sales, tipos, "count"),)
        parts[amount_code] = (_sales_part(sales, tipos, field),)

    # Débitos
    sales_pair(503, 502, SALES_FACTURAS, "iva")
    sales_pair(110, 111, SALES_BOLETAS, "iva")
    sales_pair(509, 510, SALES_NOTAS_CREDITO, "iva")
    sales_pair(512, 513, SALES_NOTAS_DEBITO, "iva")
    sales_pair(500, 501, SALES_LIQUIDACIONES, "comision_iva")
    parts[586] = (_sales_part(sales, SALES_EXENTAS, "count"),)
    parts[142] = (
        _sales_part(sales, SALES_EXENTO_SUMA, "exento"),
        _sales_part(sales, SALES_EXENTO_RESTA, "exento", sign=-1),
    )
    parts[585] = (_sales_part(sales, SALES_EXPORTACIONES, "count"),)
    parts[20] = (
        _sales_part(sales, SALES_EXPORT_SUMA, "total"),
        _sales_part(sales, SALES_EXPORT_RESTA, "total", sign=-1),
    )

    # Créditos
    def purchase_pair(
        count_code: int, amount_code: int, tipos: tuple[int, ...], fixed_asset: bool | None
    ) -> None:
        parts[count_code] = (_purchase_count_part(purchases, tipos, fixed_asset),)
        parts[amount_code] = _credit_parts(purchases, tipos, fixed_asset, factor)

    purchase_pair(519, 520, PURCHASE_FACTURAS, False)
    purchase_pair(524, 525, PURCHASE_FACTURAS, True)
    purchase_pair(527, 528, PURCHASE_NOTAS_CREDITO, None)
    purchase_pair(531, 532, PURCHASE_NOTAS_DEBITO, None)
    purchase_pair(534, 535, PURCHASE_DIN, False)
    purchase_pair(536, 553, PURCHASE_DIN, True)
    parts[504] = (TrailPart("input", (), None, "remanente_anterior", 0, data.remanente_anterior),)

    # PPM base and retention
    parts[563] = (
        _sales_part(sales, SALES_PPM_SUMA, "neto"),
        _sales_part(sales, SALES_PPM_SUMA, "exento"),
        _sales_part(sales, SALES_LIQUIDACIONES, "comision_neto"),
        _sales_part(sales, SALES_LIQUIDACIONES, "comision_exento"),
        _sales_part(sales, SALES_PPM_RESTA, "neto", sign=-1),
        _sales_part(sales, SALES_PPM_RESTA, "exento", sign=-1),
    )
    parts[39] = (_sales_part(sales, SALES_FACTURAS_COMPRA, "iva_retenido"),)

    v: dict[int, int] = {code: sum(p.amount for p in ps) for code, ps in parts.items()}

    # Derived boxes: code -> (value, formula, inputs)
    derived: dict[int, tuple[int, str, tuple[int, ...]]] = {}

    def derive(code: int, value: int, formula: str, inputs: tuple[int, ...]) -> None:
        v[code] = value
        derived[code] = (value, formula, inputs)

    derive(
        538,
        v[502] + v[111] + v[513] + v[501] - v[510],
        "502 + 111 + 513 + 501 − 510",
        (502, 111, 513, 501, 510),
    )
    derive(
        537,
        v[520] + v[525] - v[528] + v[532] + v[535] + v[553] + v[504],
        "520 + 525 − 528 + 532 + 535 + 553 + 504",
        (520, 525, 528, 532, 535, 553, 504),
    )
    derive(89, max(v[538] - v[537], 0), "máx(538 − 537, 0)", (538, 537))
    derive(77, max(v[537] - v[538], 0), "máx(537 − 538, 0)", (537, 538))
    rate = data.ppm_rate
    ppm = _scaled(v[563], rate, 100) if v[563] > 0 else 0
    derive(62, ppm, "563 × 115 / 100, redondeado; 0 si 563 ≤ 0", (563, 115))
    derive(595, v[89] + v[62] + v[39], "89 + 62 + 39", (89, 62, 39))
    derive(91, v[595], "595", (595,))

    boxes: dict[int, Box] = {}
    for code, (label, section) in _META.items():
        if code == 115:
            boxes[code] = Box(code, label, section, rate)
        elif code in derived:
            value, formula, inputs = derived[code]
            boxes[code] = Box(code, label, section, value, formula=formula, inputs=inputs)
        else:
            boxes[code] = Box(code, label, section, v[code], parts=parts[code])
    return F29Result(boxes=MappingProxyType(boxes))
