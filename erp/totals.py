"""Totals of a document by the SII's rules (DOMAIN.md §8 and §5). Pure: no Django.

Line:   MontoItem = round(QtyItem × PrcItem) − DescuentoMonto,
        DescuentoMonto = round(QtyItem × PrcItem × DescuentoPct / 100).
Global: DscRcgGlobal discounts/surcharges apply to the affected (or, flagged, exempt) subtotal;
        a percentage is taken of that subtotal and rounded half up.
Header: MntNeto = affected subtotal after globals; MntExe = exempt subtotal after globals;
        IVA = round(MntNeto × 19 / 100); MntTotal = MntNeto + MntExe + IVA − retained IVA.
Boleta: prices include IVA: MntNeto = round(gross / 1.19), IVA = gross − MntNeto.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from erp.doctypes import TASA_IVA, Family, TipoDte, codes
from erp.money import HUNDRED, percent_of, round_clp

ZERO = Decimal(0)
# Every amount in the XSD (MontoImpType, MontoItem) has at most 18 digits.
MAX_MONTO = 10**18 - 1


class Movement(StrEnum):
    DISCOUNT = "D"
    SURCHARGE = "R"


class ValueType(StrEnum):
    PERCENT = "%"
    AMOUNT = "$"


class TotalsError(ValueError):
    """Input that no SII document can carry (negative quantity, discount over 100 %, …)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class LineInput:
    quantity: Decimal
    unit_price: Decimal
    discount_pct: Decimal = ZERO
    exempt: bool = False


@dataclass(frozen=True, slots=True)
class GlobalAdjustment:
    movement: Movement
    value_type: ValueType
    value: Decimal
    exempt: bool = False  # IndExeDR: applies to the exempt subtotal instead of the affected one


@dataclass(frozen=True, slots=True)
class LineAmounts:
    gross: int  # round(QtyItem × PrcItem)
    discount: int  # DescuentoMonto
    amount: int  # MontoItem
    exempt: bool


@dataclass(frozen=True, slots=True)
class AdjustmentAmount:
    adjustment: GlobalAdjustment
    amount: int  # always positive; the movement says the sign


@dataclass(frozen=True, slots=True)
class Totals:
    lines: tuple[LineAmounts, ...]
    adjustments: tuple[AdjustmentAmount, ...]
    monto_neto: int
    monto_exento: int
    tasa_iva: int
    iva: int
    iva_retenido: int
    monto_total: int


def check_line(line: LineInput) -> None:
    if line.quantity <= ZERO:
        raise TotalsError("La cantidad debe ser mayor que cero.", "quantity")
    if line.unit_price < ZERO:
        raise TotalsError("El precio unitario no puede ser negativo.", "unit_price")
    if not ZERO <= line.discount_pct <= HUNDRED:
        raise TotalsError("El descuento debe estar entre 0 y 100 %.", "discount_pct")


def line_amounts(line: LineInput, *, exempt: bool) -> LineAmounts:
    check_line(line)
    subtotal = line.quantity * line.unit_price
    gross = round_clp(subtotal)
    discount = percent_of(subtotal, line.discount_pct) if line.discount_pct else 0
    return LineAmounts(gross=gross, discount=discount, amount=gross - discount, exempt=exempt)


def adjustment_amount(adj: GlobalAdjustment, *, base: int) -> int:
    """The pesos one DscRcgGlobal moves; a percentage is taken of the subtotal it applies to."""
    if adj.value < ZERO:
        raise TotalsError("El descuento o recargo global no puede ser negativo.", "adjustments")
    if adj.value_type is ValueType.AMOUNT:
        return round_clp(adj.value)
    if adj.movement is Movement.DISCOUNT and adj.value > HUNDRED:
        raise TotalsError("El descuento global no puede superar el 100 %.", "adjustments")
    return percent_of(base, adj.value)


def compute_totals(
    lines: Sequence[LineInput],
    *,
    tipo_dte: TipoDte,
    adjustments: Sequence[GlobalAdjustment] = (),
) -> Totals:
    """Compute line and header amounts for one document; raise TotalsError on impossible input."""
    exempt_only = tipo_dte.exempt_only
    amounts = tuple(line_amounts(ln, exempt=ln.exempt or exempt_only) for ln in lines)
    affected = sum(a.amount for a in amounts if not a.exempt)
    exempt = sum(a.amount for a in amounts if a.exempt)

    applied = []
    subtotals = {False: affected, True: exempt}
    for adj in adjustments:
        on_exempt = adj.exempt or tipo_dte.exempt_only
        amount = adjustment_amount(adj, base=subtotals[on_exempt])
        if on_exempt:
            exempt += amount if adj.movement is Movement.SURCHARGE else -amount
        else:
            affected += amount if adj.movement is Movement.SURCHARGE else -amount
        applied.append(AdjustmentAmount(adjustment=adj, amount=amount))
    if affected < 0 or exempt < 0:
        raise TotalsError("Los descuentos globales superan el monto del documento.", "adjustments")

    if tipo_dte.gross_prices:
        neto = round_clp(Decimal(affected) * HUNDRED / (HUNDRED + TASA_IVA))
        iva = affected - neto
    else:
        neto = affected
        iva = percent_of(neto, Decimal(TASA_IVA))
    retenido = iva if tipo_dte.retains_iva else 0
    total = neto + exempt + iva - retenido
    if max(total, neto + exempt + iva, *(a.gross for a in amounts), 0) > MAX_MONTO:
        raise TotalsError("Los montos superan el máximo que admite el SII (18 dígitos).", "lines")
    return Totals(
        lines=amounts,
        adjustments=tuple(applied),
        monto_neto=neto,
        monto_exento=exempt,
        tasa_iva=0 if tipo_dte.exempt_only else TASA_IVA,
        iva=iva,
        iva_retenido=retenido,
        monto_total=total,
    )


# --- Exports (110, 111, 112): amounts in the operation's currency ----------------------------
#
# dte/core/EXPORTS.md §1.2 and §1.6: MontoItem, MntExe and MntTotal carry up to 4 decimals; each is
# rounded half up to the currency's minor unit (2 for the dollar and the euro, 0 for the yen).
# DescuentoMonto is the XSD's MntImpType, a whole number even on a dollar line, so the line's
# amount is its gross less that rounded discount. Every line and every DscRcgGlobal is exempt
# (IndExe, IndExeDR): MntExe = MntTotal = Σ MontoItem ± DscRcgGlobal. OtraMoneda carries the
# total in pesos at the document's exchange rate, rounded half up to whole pesos.

EXPORT_FRACTION_DIGITS = 4  # MontoItem, MntExe, MntTotal: xs:decimal fractionDigits 4
EXPORT_MAX = Decimal("99999999999999.9999")  # their maxInclusive


@dataclass(frozen=True, slots=True)
class ExportLineAmounts:
    gross: Decimal  # round(QtyItem × PrcItem) in the currency
    discount: int  # DescuentoMonto: a whole number (MntImpType)
    amount: Decimal  # MontoItem


@dataclass(frozen=True, slots=True)
class ExportAdjustmentAmount:
    adjustment: GlobalAdjustment
    amount: Decimal  # always positive; the movement says the sign


@dataclass(frozen=True, slots=True)
class ExportTotals:
    lines: tuple[ExportLineAmounts, ...]
    adjustments: tuple[ExportAdjustmentAmount, ...]
    decimals: int
    monto_exento: Decimal  # MntExe
    monto_total: Decimal  # MntTotal (= MntExe: exports carry no IVA)
    tipo_cambio: Decimal | None  # OtraMoneda/TpoCambio: pesos per unit of the currency
    monto_total_pesos: int | None  # OtraMoneda/MntTotOtrMnda (= MntExeOtrMnda)


def _in_currency(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def compute_export_totals(
    lines: Sequence[LineInput],
    *,
    decimals: int,
    adjustments: Sequence[GlobalAdjustment] = (),
    tipo_cambio: Decimal | None = None,
) -> ExportTotals:
    """Line and header amounts of an export in its currency (`decimals`: its minor unit), and
    the total in pesos when the exchange rate is known; TotalsError on impossible input."""
    if not 0 <= decimals <= EXPORT_FRACTION_DIGITS:
        raise TotalsError("La moneda no admite esos decimales.", "moneda")
    if tipo_cambio is not None and tipo_cambio <= ZERO:
        raise TotalsError("El tipo de cambio debe ser mayor que cero.", "tipo_cambio")
    amounts = []
    for line in lines:
        check_line(line)
        gross = _in_currency(line.quantity * line.unit_price, decimals)
        discount = round_clp(gross * line.discount_pct / HUNDRED) if line.discount_pct else 0
        amounts.append(ExportLineAmounts(gross=gross, discount=discount, amount=gross - discount))
    total = sum((a.amount for a in amounts), ZERO)
    applied = []
    for adj in adjustments:
        if adj.value < ZERO:
            raise TotalsError("El descuento o recargo global no puede ser negativo.", "adjustments")
        if adj.value_type is ValueType.AMOUNT:
            amount = _in_currency(adj.value, min(decimals, 2))  # ValorDR: Dec16_2
        else:
            if adj.movement is Movement.DISCOUNT and adj.value > HUNDRED:
                raise TotalsError("El descuento global no puede superar el 100 %.", "adjustments")
            amount = _in_currency(total * adj.value / HUNDRED, decimals)
        total += amount if adj.movement is Movement.SURCHARGE else -amount
        applied.append(ExportAdjustmentAmount(adjustment=adj, amount=amount))
    if total < ZERO:
        raise TotalsError("Los descuentos globales superan el monto del documento.", "adjustments")
    if max((total, *(a.gross for a in amounts))) > EXPORT_MAX:
        raise TotalsError("Los montos superan el máximo que admite el SII.", "lines")
    pesos = round_clp(total * tipo_cambio) if tipo_cambio is not None else None
    return ExportTotals(
        lines=tuple(amounts),
        adjustments=tuple(applied),
        decimals=decimals,
        monto_exento=total,
        monto_total=total,
        tipo_cambio=tipo_cambio,
        monto_total_pesos=pesos,
    )


# --- The liquidación-factura (43): liquidated sales less the commissions -------------------
#
# dte/core/EXPORTS.md §6 (DTE_v10.xsd LIQType; the SII's worked example): each Detalle is one
# liquidated document or group of them, its MontoItem a whole amount that is negative for a
# return (a nota de crédito liquidated); there are no line or global discounts. IVA is 19 % of
# the liquidated net; each commission's IVA is 19 % of its net, rounded half up per commission.
# MntTotal = MntNeto + MntExe + IVA − ValComNeto − ValComExe − ValComIVA.

CREDIT_NOTE_TYPES = codes(lambda d: d.family is Family.NOTA_CREDITO)


@dataclass(frozen=True, slots=True)
class CommissionInput:
    neto: int  # ValComNeto (may be negative: an adjustment of an earlier commission)
    exento: int = 0  # ValComExe


@dataclass(frozen=True, slots=True)
class LiquidacionTotals:
    lines: tuple[int, ...]  # MontoItem per line, signed
    monto_neto: int
    monto_exento: int
    iva: int
    comision_neto: int
    comision_exento: int
    comision_iva: int
    monto_total: int


def commission_iva(neto: int) -> int:
    """ValComIVA: the commission's net at the IVA rate, half up."""
    return percent_of(neto, Decimal(TASA_IVA))


def liquidated_amount(line: LineInput, *, tipo_doc_liq: str) -> int:
    """MontoItem of one liquidated line: quantity × price, negative when the liquidated
    document is a nota de crédito (a return reduces the mandante's sales)."""
    check_line(line)
    if line.discount_pct:
        raise TotalsError("Una liquidación factura no lleva descuentos por línea.", "discount_pct")
    amount = round_clp(line.quantity * line.unit_price)
    return -amount if liquidated_credit(tipo_doc_liq) else amount


def liquidated_credit(tipo_doc_liq: str) -> bool:
    """A liquidated nota de crédito: its line subtracts from the liquidated sales."""
    code = tipo_doc_liq.strip()
    return code.isdigit() and int(code) in CREDIT_NOTE_TYPES


def compute_liquidacion_totals(
    lines: Sequence[tuple[int, bool]], commissions: Sequence[CommissionInput]
) -> LiquidacionTotals:
    """Totals of a liquidación-factura from its lines' (MontoItem, exempt) and commissions."""
    neto = sum(amount for amount, exempt in lines if not exempt)
    exento = sum(amount for amount, exempt in lines if exempt)
    iva = percent_of(neto, Decimal(TASA_IVA))
    com_neto = sum(c.neto for c in commissions)
    com_exento = sum(c.exento for c in commissions)
    com_iva = sum(commission_iva(c.neto) for c in commissions)
    total = neto + exento + iva - com_neto - com_exento - com_iva
    largest = max((abs(a) for a, _ in lines), default=0)
    if max(largest, abs(total), abs(neto + exento + iva)) > MAX_MONTO:
        raise TotalsError("Los montos superan el máximo que admite el SII (18 dígitos).", "lines")
    return LiquidacionTotals(
        lines=tuple(amount for amount, _ in lines),
        monto_neto=neto,
        monto_exento=exento,
        iva=iva,
        comision_neto=com_neto,
        comision_exento=com_exento,
        comision_iva=com_iva,
        monto_total=total,
    )
