"""Deterministic checks an experienced Chilean accountant would raise. Pure: no Django, no I/O.

Every check is a rule with a stable snake_case code, documented for users in `RULES` (Spanish).
The callers gather the facts (`DocumentFacts`, `PastDocument`, `FolioStock`, `CertificateFacts`)
and pass the date of today explicitly; the rules never read the clock.

Money is whole pesos (int); quantities, prices and statistics are Decimal, never float. Findings
carry a Spanish message with es-CL figures (`$ 1.234.567`, dd-mm-aaaa) and a JSON-serialisable
`evidence` mapping: ids, folios, amounts as int, dates as "YYYY-MM-DD", ratios and robust z-scores
as decimal strings ("7.42").

Three entry points:

- `review_document(doc, history, today=...)`: the document rules, always in the order of
  `DOCUMENT_RULE_ORDER` (arithmetic, references, receiver, lines vs products, history).
- `review_period(period, iva_determinado, previous)`: the month's VAT vs the last months.
- `review_resources(stocks, certificates, today=...)`: CAF folios and signing certificates.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Literal

from erp.doctypes import REGISTRY, TipoDte
from erp.money import HUNDRED, format_clp, format_decimal, round_clp

Severity = Literal["info", "warning", "error"]

# --- Thresholds -----------------------------------------------------------------------------

# duplicate_document: another document of the same partner and tipo family whose total differs
# by at most DUPLICATE_MAX_DIFFERENCE pesos or at most DUPLICATE_MAX_PCT percent of the larger
# total, dated at most DUPLICATE_MAX_DAYS days apart (either way). Zero totals (e.g. guías de
# traslado) are never duplicates.
DUPLICATE_MAX_DAYS = 7
DUPLICATE_MAX_PCT = Decimal(1)
DUPLICATE_MAX_DIFFERENCE = 1_000

# amount_outlier: robust z-score z = MAD_SCALE * (total - median) / MAD over the partner's past
# documents of the same tipo family. Needs OUTLIER_MIN_HISTORY of them; fires when |z| exceeds
# OUTLIER_MAX_Z and the total is more than OUTLIER_MIN_DIFFERENCE pesos away from the median.
# When MAD is 0 (identical amounts) the z-score is undefined: then the total must be more than
# OUTLIER_RATIO times the median, or less than the median divided by it (same peso floor).
MAD_SCALE = Decimal("0.6745")
OUTLIER_MIN_HISTORY = 8
OUTLIER_MAX_Z = Decimal(5)
OUTLIER_MIN_DIFFERENCE = 50_000
OUTLIER_RATIO = 10

# line_amount_mismatch: pesos a stored line amount may differ from the recomputed one (the SII
# rounds the discount and the gross amount separately, which may move the result by one peso).
LINE_AMOUNT_TOLERANCE = 1

# vat_swing: the month's IVA determinado vs the median of the previous VAT_SWING_WINDOW months
# (at least VAT_SWING_MIN_PERIODS of them); fires when it moves by more than VAT_SWING_MAX_PCT
# percent of that median and by more than VAT_SWING_MIN_DIFFERENCE pesos.
VAT_SWING_WINDOW = 6
VAT_SWING_MIN_PERIODS = 3
VAT_SWING_MAX_PCT = 50
VAT_SWING_MIN_DIFFERENCE = 200_000

# folios_running_out: FolioStock.used_last_30_days is the usage over FOLIO_USAGE_DAYS days;
# warns when the folios left last less than that window at that rate, or when fewer than
# FOLIO_MIN_REMAINING are left; an error when none is left.
FOLIO_USAGE_DAYS = 30
FOLIO_MIN_REMAINING = 50

# certificate_expiring: warns from CERTIFICATE_WARNING_DAYS days before not_after (the last valid
# day) through that day; an error once it has passed.
CERTIFICATE_WARNING_DAYS = 30

# --- Document types -------------------------------------------------------------------------

# What each type is comes from erp.doctypes.REGISTRY (the SII requires GiroRecep and DirRecep
# on the types marked receiver_details).
NOTA_CREDITO = int(TipoDte.NOTA_CREDITO)


def tipo_family(tipo: int) -> str:
    """Documents that may duplicate or be compared with one another: facturas (33, 34, 46),
    boletas (39, 41); guías, notas de débito and notas de crédito each on their own."""
    spec = REGISTRY.get(tipo)
    return spec.family.plural if spec else f"documentos tipo {tipo}"


def _with_article(tipo: int) -> str:
    spec = REGISTRY.get(tipo)
    return f"la {spec.noun}" if spec else f"el documento tipo {tipo}"


def _noun(tipo: int) -> str:
    spec = REGISTRY.get(tipo)
    return spec.noun if spec else f"documento tipo {tipo}"


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _doc_name(tipo: int, folio: int | str | None, doc_id: int | None = None) -> str:
    """ "la factura N° 12", or "la factura sin folio (id 7)" for a draft."""
    if folio not in (None, ""):
        return f"{_with_article(tipo)} N° {folio}"
    return f"{_with_article(tipo)} sin folio" + (f" (id {doc_id})" if doc_id is not None else "")


def format_date(day: date) -> str:
    """dd-mm-aaaa, as people read dates in Chile."""
    return f"{day.day:02d}-{day.month:02d}-{day.year:04d}"


def _month_label(period: date) -> str:
    return f"{period.month:02d}-{period.year:04d}"


def _to_partner(name: str) -> str:
    return f" a {name.strip()}" if name.strip() else ""


def _for_partner(name: str) -> str:
    return f" para {name.strip()}" if name.strip() else ""


def _decimal_text(value: Decimal, places: int = 2) -> str:
    """Machine-readable decimal for evidence: "7.42" (no float anywhere)."""
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"


# --- Types ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    # Read-only view of a JSON-serialisable mapping; not part of the hash.
    evidence: Mapping[str, object] = field(hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", MappingProxyType(dict(self.evidence)))

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "evidence": _plain(self.evidence),
        }


def _plain(value: object) -> object:
    """A deep copy made of dicts and lists, ready for json.dumps."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class RuleInfo:
    code: str
    severity: Severity  # the usual severity; the description says when it is raised to error
    title_es: str
    description_es: str


@dataclass(frozen=True)
class LineFacts:
    name: str
    quantity: Decimal
    unit_price: Decimal
    discount_pct: Decimal
    is_exempt: bool
    amount: int  # the stored line amount
    product_code: str | None = None
    product_is_exempt: bool | None = None  # what the product master says; None = free-text line
    gross_prices: bool = False  # boletas: prices include IVA (same amount formula)
    subtracts: bool = False  # a liquidación factura's line for a nota de crédito: negative


@dataclass(frozen=True)
class ReferenceFacts:
    tipo: str  # referenced document type, e.g. "33" (or "801", "SET", ...)
    folio: str
    cod_ref: int | None  # 1 anula, 2 corrige texto, 3 corrige montos
    referenced_id: int | None  # our document id when we have it
    referenced_total: int | None  # its monto_total when we have it
    already_credited: int = 0  # monto_total of OTHER notas de crédito already issued against it


@dataclass(frozen=True)
class DocumentFacts:
    id: int
    tipo: int  # 33, 34, 39, 41, 46, 52, 56, 61
    folio: int | None
    fecha: date
    partner_id: int | None
    partner_name: str
    partner_has_giro: bool
    partner_has_address: bool
    monto_neto: int
    monto_exento: int
    iva: int
    monto_total: int
    lines: tuple[LineFacts, ...]
    references: tuple[ReferenceFacts, ...] = ()
    comisiones: int = 0  # a liquidación factura's commissions with their IVA (MntTotal less)


@dataclass(frozen=True)
class PastDocument:
    """One of the same partner's other documents."""

    id: int
    tipo: int
    folio: int | None
    fecha: date
    monto_total: int


@dataclass(frozen=True)
class FolioStock:
    tipo: int
    remaining: int
    used_last_30_days: int


@dataclass(frozen=True)
class CertificateFacts:
    holder: str
    not_after: date  # last day it is valid


# --- Rule documentation ---------------------------------------------------------------------

_RULE_LIST = (
    RuleInfo(
        "total_mismatch",
        "error",
        "El total no cuadra",
        "El monto total debe ser la suma del neto, el exento y el IVA. En la factura de compra "
        "(tipo 46) el comprador retiene el IVA, así que el total es neto más exento.",
    ),
    RuleInfo(
        "line_amount_mismatch",
        "error",
        "Monto de línea mal calculado",
        "El monto de cada línea debe ser cantidad × precio unitario × (1 − descuento %), "
        f"redondeado a pesos (0,5 hacia arriba). Se acepta una diferencia de hasta "
        f"{format_clp(LINE_AMOUNT_TOLERANCE)} por el redondeo del descuento.",
    ),
    RuleInfo(
        "credit_note_without_reference",
        "error",
        "Nota sin documento de referencia",
        "Toda nota de crédito (61) o de débito (56) debe indicar el documento que anula o "
        "corrige; el SII la rechaza sin referencia.",
    ),
    RuleInfo(
        "credit_note_exceeds_reference",
        "error",
        "Nota de crédito mayor que el documento",
        "Una nota de crédito, sumada a las otras notas de crédito ya emitidas contra el mismo "
        "documento, no puede superar el total de ese documento. Solo se revisa cuando se "
        "conoce el total de todos los documentos tributarios referenciados.",
    ),
    RuleInfo(
        "factura_partner_incomplete",
        "warning",
        "Receptor sin giro o dirección",
        "Las facturas, guías de despacho y notas de crédito y débito deben llevar el giro "
        "(GiroRecep) y la dirección (DirRecep) del receptor. Complete la ficha del cliente o "
        "proveedor.",
    ),
    RuleInfo(
        "exempt_line_on_taxed_product",
        "warning",
        "Línea exenta con producto afecto",
        "La línea está marcada como exenta de IVA, pero en el maestro de productos el producto "
        "es afecto. Revise si la exención corresponde; si no, se está dejando de cobrar IVA.",
    ),
    RuleInfo(
        "taxed_line_on_exempt_product",
        "warning",
        "Línea afecta con producto exento",
        "La línea cobra IVA, pero en el maestro de productos el producto es exento. Revise si "
        "corresponde; si no, se está cobrando IVA de más al cliente.",
    ),
    RuleInfo(
        "duplicate_document",
        "warning",
        "Posible documento duplicado",
        "Hay otro documento del mismo receptor y de la misma familia (facturas 33, 34 y 46 "
        "juntas; boletas 39 y 41 juntas; guías, notas de débito y notas de crédito cada una por "
        f"separado) con un total que difiere en {format_clp(DUPLICATE_MAX_DIFFERENCE)} o menos, "
        f"o en {DUPLICATE_MAX_PCT} % o menos, y una fecha a {DUPLICATE_MAX_DAYS} días o menos. "
        "Los documentos de total cero no se comparan.",
    ),
    RuleInfo(
        "amount_outlier",
        "warning",
        "Monto inusual para este receptor",
        "El total se compara con los documentos anteriores del mismo receptor y familia "
        f"(al menos {OUTLIER_MIN_HISTORY}) usando la mediana y la desviación absoluta mediana "
        f"(MAD): se advierte si el puntaje z robusto (0,6745 × (total − mediana) / MAD) supera "
        f"{OUTLIER_MAX_Z} en valor absoluto y el total se aleja más de "
        f"{format_clp(OUTLIER_MIN_DIFFERENCE)} de la mediana. Si todos los montos anteriores "
        f"son iguales (MAD cero), se advierte cuando el total es más de {OUTLIER_RATIO} veces "
        f"la mediana o menos de su décima parte.",
    ),
    RuleInfo(
        "vat_swing",
        "warning",
        "Variación fuerte del IVA del mes",
        "El IVA determinado del período se compara con la mediana de hasta "
        f"{VAT_SWING_WINDOW} meses anteriores (se necesitan al menos {VAT_SWING_MIN_PERIODS}): "
        f"se advierte si cambia más de {VAT_SWING_MAX_PCT} % y más de "
        f"{format_clp(VAT_SWING_MIN_DIFFERENCE)}. Suele indicar documentos o compras faltantes "
        "o duplicados en el período.",
    ),
    RuleInfo(
        "folios_running_out",
        "warning",
        "Quedan pocos folios",
        f"Se advierte cuando quedan menos de {FOLIO_MIN_REMAINING} folios de un tipo, o cuando "
        f"al ritmo de uso de los últimos {FOLIO_USAGE_DAYS} días no alcanzan para otros "
        f"{FOLIO_USAGE_DAYS} días. Es un error cuando no queda ninguno: solicite un nuevo CAF "
        "al SII.",
    ),
    RuleInfo(
        "certificate_expiring",
        "warning",
        "Certificado digital por vencer",
        f"Se advierte desde {CERTIFICATE_WARNING_DAYS} días antes del vencimiento del "
        "certificado de firma; es un error cuando ya venció, porque no se pueden firmar "
        "documentos.",
    ),
)

RULES: Mapping[str, RuleInfo] = MappingProxyType({rule.code: rule for rule in _RULE_LIST})


def _finding(
    code: str, message: str, evidence: Mapping[str, object], *, error: bool = False
) -> Finding:
    severity: Severity = "error" if error else RULES[code].severity
    return Finding(code=code, severity=severity, message=message, evidence=evidence)


def _doc_evidence(doc: DocumentFacts) -> dict[str, object]:
    return {
        "document_id": doc.id,
        "tipo": doc.tipo,
        "folio": doc.folio,
        "fecha": doc.fecha.isoformat(),
    }


# --- Document rules -------------------------------------------------------------------------


def _total_mismatch(doc: DocumentFacts, history: Sequence[PastDocument]) -> list[Finding]:
    if not _in_pesos(doc):
        return []
    retains = doc.tipo in REGISTRY and REGISTRY[doc.tipo].retains_iva
    expected = doc.monto_neto + doc.monto_exento + (0 if retains else doc.iva) - doc.comisiones
    if doc.monto_total == expected:
        return []
    if doc.comisiones:
        parts = (
            f"neto {format_clp(doc.monto_neto)} + exento {format_clp(doc.monto_exento)} + "
            f"IVA {format_clp(doc.iva)} − comisiones {format_clp(doc.comisiones)} dan "
            f"{format_clp(expected)}"
        )
    elif retains:
        parts = (
            f"neto {format_clp(doc.monto_neto)} + exento {format_clp(doc.monto_exento)} suman "
            f"{format_clp(expected)} (el IVA de la factura de compra se retiene)"
        )
    else:
        parts = (
            f"neto {format_clp(doc.monto_neto)} + exento {format_clp(doc.monto_exento)} + "
            f"IVA {format_clp(doc.iva)} suman {format_clp(expected)}"
        )
    message = (
        f"El total de {_doc_name(doc.tipo, doc.folio, doc.id)} ({format_clp(doc.monto_total)}) "
        f"no cuadra: {parts}."
    )
    evidence = _doc_evidence(doc) | {
        "monto_neto": doc.monto_neto,
        "monto_exento": doc.monto_exento,
        "iva": doc.iva,
        "iva_retained": retains,
        "comisiones": doc.comisiones,
        "monto_total": doc.monto_total,
        "expected_total": expected,
        "difference": doc.monto_total - expected,
    }
    return [_finding("total_mismatch", message, evidence)]


def expected_line_amount(line: LineFacts) -> int:
    """round_half_up(quantity × unit price × (1 − discount/100)), in pesos; negative for a
    liquidated nota de crédito."""
    amount = round_clp(line.quantity * line.unit_price * (1 - line.discount_pct / HUNDRED))
    return -amount if line.subtracts else amount


def _line_label(index: int, line: LineFacts, *, with_product: bool = False) -> str:
    """ "línea 2 («Asesoría», producto ASE-02)": 1-based, as NroLinDet."""
    details = [f"«{line.name.strip()}»"] if line.name.strip() else []
    if with_product and line.product_code:
        details.append(f"producto {line.product_code}")
    return f"línea {index + 1}" + (f" ({', '.join(details)})" if details else "")


def _in_pesos(doc: DocumentFacts) -> bool:
    """An export's lines are priced in its currency: the peso arithmetic does not apply (its
    amounts are checked when it is built, dte.core.export)."""
    return not (doc.tipo in REGISTRY and REGISTRY[doc.tipo].foreign_currency)


def _line_amount_mismatch(doc: DocumentFacts, history: Sequence[PastDocument]) -> list[Finding]:
    if not _in_pesos(doc):
        return []
    findings = []
    for index, line in enumerate(doc.lines):
        expected = expected_line_amount(line)
        if abs(line.amount - expected) <= LINE_AMOUNT_TOLERANCE:
            continue
        discount = (
            f" con {format_decimal(line.discount_pct)} % de descuento" if line.discount_pct else ""
        )
        message = (
            f"La {_line_label(index, line)} tiene un monto de {format_clp(line.amount)}, pero "
            f"{format_decimal(line.quantity)} × $ {format_decimal(line.unit_price)}{discount} da "
            f"{format_clp(expected)}."
        )
        evidence = _doc_evidence(doc) | {
            "line_index": index,
            "line_number": index + 1,
            "product_code": line.product_code,
            "quantity": format(line.quantity, "f"),
            "unit_price": format(line.unit_price, "f"),
            "discount_pct": format(line.discount_pct, "f"),
            "gross_prices": line.gross_prices,
            "amount": line.amount,
            "expected_amount": expected,
            "difference": line.amount - expected,
        }
        findings.append(_finding("line_amount_mismatch", message, evidence))
    return findings


def _credit_note_without_reference(
    doc: DocumentFacts, history: Sequence[PastDocument]
) -> list[Finding]:
    if not (doc.tipo in REGISTRY and REGISTRY[doc.tipo].note) or doc.references:
        return []
    message = (
        f"{_capitalized(_doc_name(doc.tipo, doc.folio, doc.id))} no indica el documento que "
        "anula o corrige; el SII exige al menos una referencia."
    )
    return [_finding("credit_note_without_reference", message, _doc_evidence(doc))]


def _is_tax_document(tipo: str) -> bool:
    return tipo.strip().isdigit() and int(tipo) in REGISTRY


def _reference_name(ref: ReferenceFacts) -> str:
    if _is_tax_document(ref.tipo):
        return _doc_name(int(ref.tipo), ref.folio.strip() or None, ref.referenced_id)
    return f"el documento tipo {ref.tipo} N° {ref.folio}"


def _credit_note_exceeds_reference(
    doc: DocumentFacts, history: Sequence[PastDocument]
) -> list[Finding]:
    if doc.tipo != NOTA_CREDITO or doc.monto_total <= 0:
        return []
    refs: dict[tuple[str, str], ReferenceFacts] = {}
    for ref in doc.references:
        if _is_tax_document(ref.tipo) and ref.referenced_total is None:
            return []  # a credited document of unknown total: cannot tell
        if ref.referenced_total is not None:
            refs.setdefault((ref.tipo.strip(), ref.folio.strip()), ref)
    if not refs:
        return []
    referenced_total = sum(ref.referenced_total or 0 for ref in refs.values())
    already = sum(ref.already_credited for ref in refs.values())
    excess = doc.monto_total + already - referenced_total
    if excess <= 0:
        return []
    names = [_reference_name(ref) for ref in refs.values()]
    target = (
        names[0]
        if len(names) == 1
        else "los documentos referenciados ("
        + ", ".join(name.removeprefix("la ").removeprefix("el ") for name in names)
        + ")"
    )
    previous = (
        f", más {format_clp(already)} ya acreditados en otras notas de crédito," if already else ""
    )
    message = (
        f"{_capitalized(_doc_name(doc.tipo, doc.folio, doc.id))} por "
        f"{format_clp(doc.monto_total)}{previous} supera el total de {target} "
        f"({format_clp(referenced_total)}) en {format_clp(excess)}."
    )
    evidence = _doc_evidence(doc) | {
        "monto_total": doc.monto_total,
        "already_credited": already,
        "referenced_total": referenced_total,
        "excess": excess,
        "references": [
            {
                "tipo": ref.tipo,
                "folio": ref.folio,
                "cod_ref": ref.cod_ref,
                "referenced_id": ref.referenced_id,
                "referenced_total": ref.referenced_total,
                "already_credited": ref.already_credited,
            }
            for ref in refs.values()
        ],
    }
    return [_finding("credit_note_exceeds_reference", message, evidence)]


def _factura_partner_incomplete(
    doc: DocumentFacts, history: Sequence[PastDocument]
) -> list[Finding]:
    if not (doc.tipo in REGISTRY and REGISTRY[doc.tipo].receiver_details):
        return []
    missing = [
        label
        for label, present in (
            ("giro", doc.partner_has_giro),
            ("dirección", doc.partner_has_address),
        )
        if not present
    ]
    if not missing:
        return []
    receiver = (
        f"el receptor {doc.partner_name.strip()}" if doc.partner_name.strip() else "el receptor"
    )
    message = (
        f"{_capitalized(_doc_name(doc.tipo, doc.folio, doc.id))}: {receiver} no tiene "
        f"{' ni '.join(missing)}; el SII exige el giro y la dirección del receptor "
        f"(GiroRecep y DirRecep) en facturas y guías de despacho."
    )
    evidence = _doc_evidence(doc) | {
        "partner_id": doc.partner_id,
        "missing": ["giro" if item == "giro" else "address" for item in missing],
    }
    return [_finding("factura_partner_incomplete", message, evidence)]


def _exemption_mismatches(doc: DocumentFacts, history: Sequence[PastDocument]) -> list[Finding]:
    findings = []
    for index, line in enumerate(doc.lines):
        if line.product_is_exempt is None or line.product_is_exempt == line.is_exempt:
            continue
        label = _line_label(index, line, with_product=True)
        if line.is_exempt:
            code = "exempt_line_on_taxed_product"
            message = (
                f"La {label} está marcada como exenta, pero el "
                f"producto es afecto a IVA ({format_clp(line.amount)} sin IVA)."
            )
        else:
            code = "taxed_line_on_exempt_product"
            message = (
                f"La {label} está afecta a IVA, pero el producto "
                f"es exento ({format_clp(line.amount)} con IVA)."
            )
        evidence = _doc_evidence(doc) | {
            "line_index": index,
            "line_number": index + 1,
            "product_code": line.product_code,
            "line_is_exempt": line.is_exempt,
            "product_is_exempt": line.product_is_exempt,
            "amount": line.amount,
        }
        findings.append(_finding(code, message, evidence))
    return findings


def _comparable(doc: DocumentFacts, history: Sequence[PastDocument]) -> list[PastDocument]:
    """The partner's other documents of the same tipo family (none without a partner)."""
    if doc.partner_id is None:
        return []
    family = tipo_family(doc.tipo)
    return [past for past in history if past.id != doc.id and tipo_family(past.tipo) == family]


def _is_close_total(a: int, b: int) -> bool:
    difference = abs(a - b)
    if difference <= DUPLICATE_MAX_DIFFERENCE:
        return True
    return difference * HUNDRED <= DUPLICATE_MAX_PCT * max(abs(a), abs(b))


def _duplicate_document(doc: DocumentFacts, history: Sequence[PastDocument]) -> list[Finding]:
    if doc.monto_total == 0:
        return []
    candidates = [
        past
        for past in _comparable(doc, history)
        if past.monto_total != 0
        and abs((past.fecha - doc.fecha).days) <= DUPLICATE_MAX_DAYS
        and _is_close_total(doc.monto_total, past.monto_total)
    ]
    candidates.sort(
        key=lambda p: (abs((p.fecha - doc.fecha).days), abs(p.monto_total - doc.monto_total), p.id)
    )
    findings = []
    for past in candidates:
        same = "el mismo total" if past.monto_total == doc.monto_total else "un total similar"
        message = (
            f"Posible documento duplicado: {_doc_name(past.tipo, past.folio, past.id)} del "
            f"{format_date(past.fecha)}{_to_partner(doc.partner_name)} tiene {same} "
            f"({format_clp(past.monto_total)}; este documento: {format_clp(doc.monto_total)})."
        )
        evidence = _doc_evidence(doc) | {
            "partner_id": doc.partner_id,
            "monto_total": doc.monto_total,
            "other_id": past.id,
            "other_tipo": past.tipo,
            "other_folio": past.folio,
            "other_fecha": past.fecha.isoformat(),
            "other_total": past.monto_total,
            "days_apart": abs((past.fecha - doc.fecha).days),
            "difference": doc.monto_total - past.monto_total,
        }
        findings.append(_finding("duplicate_document", message, evidence))
    return findings


def _amount_outlier(doc: DocumentFacts, history: Sequence[PastDocument]) -> list[Finding]:
    past = _comparable(doc, history)
    if len(past) < OUTLIER_MIN_HISTORY:
        return []
    amounts = [Decimal(p.monto_total) for p in past]
    median = statistics.median(amounts)
    mad = statistics.median(abs(amount - median) for amount in amounts)
    total = Decimal(doc.monto_total)
    difference = total - median
    if abs(difference) <= OUTLIER_MIN_DIFFERENCE:
        return []
    z: Decimal | None = None
    if mad:
        z = MAD_SCALE * difference / mad
        if abs(z) <= OUTLIER_MAX_Z:
            return []
    elif median <= 0 or not (total > OUTLIER_RATIO * median or total * OUTLIER_RATIO < median):
        return []
    direction = "mucho mayor" if difference > 0 else "mucho menor"
    family = tipo_family(doc.tipo)
    message = (
        f"Monto inusual: el total de {_doc_name(doc.tipo, doc.folio, doc.id)} "
        f"({format_clp(doc.monto_total)}) es {direction} que lo habitual"
        f"{_for_partner(doc.partner_name)} "
        f"(mediana {format_clp(round_clp(median))} en {len(past)} {family} anteriores)."
    )
    evidence = _doc_evidence(doc) | {
        "partner_id": doc.partner_id,
        "monto_total": doc.monto_total,
        "median": round_clp(median),
        "mad": round_clp(mad),
        "z": None if z is None else _decimal_text(z),
        "ratio": _decimal_text(total / median) if median > 0 else None,
        "n": len(past),
    }
    return [_finding("amount_outlier", message, evidence)]


_DocumentRule = Callable[[DocumentFacts, Sequence[PastDocument]], list[Finding]]

# The order review_document runs them in (and the order of its findings).
DOCUMENT_RULE_ORDER: tuple[tuple[tuple[str, ...], _DocumentRule], ...] = (
    (("total_mismatch",), _total_mismatch),
    (("line_amount_mismatch",), _line_amount_mismatch),
    (("credit_note_without_reference",), _credit_note_without_reference),
    (("credit_note_exceeds_reference",), _credit_note_exceeds_reference),
    (("factura_partner_incomplete",), _factura_partner_incomplete),
    (("exempt_line_on_taxed_product", "taxed_line_on_exempt_product"), _exemption_mismatches),
    (("duplicate_document",), _duplicate_document),
    (("amount_outlier",), _amount_outlier),
)


def review_document(
    doc: DocumentFacts, history: Sequence[PastDocument], *, today: date
) -> list[Finding]:
    """Run the document rules in `DOCUMENT_RULE_ORDER`. `history` holds the same partner's other
    documents (any tipo; the rules pick the comparable ones). `today` is reserved for rules that
    depend on the date; none of today's rules do, so it does not change the result."""
    findings: list[Finding] = []
    for _codes, rule in DOCUMENT_RULE_ORDER:
        findings.extend(rule(doc, history))
    return findings


# --- Period rules ---------------------------------------------------------------------------


def _month(day: date) -> date:
    return day.replace(day=1)


def review_period(
    period: date, iva_determinado: int, previous: Sequence[tuple[date, int]]
) -> list[Finding]:
    """The month's IVA determinado vs the median of up to VAT_SWING_WINDOW earlier months.

    `previous` holds (period, IVA determinado) pairs in any order; months on or after `period`
    are ignored, and a month given twice keeps its last value."""
    current = _month(period)
    by_month: dict[date, int] = {}
    for month, value in previous:
        if _month(month) < current:
            by_month[_month(month)] = value
    recent = sorted(by_month.items(), reverse=True)[:VAT_SWING_WINDOW]
    if len(recent) < VAT_SWING_MIN_PERIODS:
        return []
    median = statistics.median(Decimal(value) for _, value in recent)
    difference = Decimal(iva_determinado) - median
    if abs(difference) <= VAT_SWING_MIN_DIFFERENCE:
        return []
    if abs(difference) * HUNDRED <= VAT_SWING_MAX_PCT * abs(median):
        return []
    change_pct = round_clp(difference * HUNDRED / abs(median)) if median else None
    direction = "sube" if difference > 0 else "baja"
    change = f" {abs(change_pct)} %" if change_pct is not None else ""
    message = (
        f"El IVA determinado de {_month_label(current)} ({format_clp(iva_determinado)}) "
        f"{direction}{change} respecto de la mediana de los {len(recent)} meses anteriores, "
        f"{_month_label(recent[-1][0])} a {_month_label(recent[0][0])} "
        f"({format_clp(round_clp(median))})."
    )
    evidence: dict[str, object] = {
        "period": current.isoformat(),
        "iva_determinado": iva_determinado,
        "median": round_clp(median),
        "difference": round_clp(difference),
        "change_pct": change_pct,
        "previous": [{"period": m.isoformat(), "iva_determinado": v} for m, v in sorted(recent)],
    }
    return [_finding("vat_swing", message, evidence)]


# --- Resource rules -------------------------------------------------------------------------


def _folios_running_out(stock: FolioStock) -> Finding | None:
    remaining = max(stock.remaining, 0)
    used = max(stock.used_last_30_days, 0)
    days_left = remaining * FOLIO_USAGE_DAYS // used if used else None
    what = f"{_noun(stock.tipo)} (tipo {stock.tipo})"
    evidence = {
        "tipo": stock.tipo,
        "remaining": remaining,
        "used_last_30_days": used,
        "days_left": days_left,
    }
    if remaining == 0:
        message = (
            f"No quedan folios de {what}: no se pueden emitir más hasta cargar un nuevo CAF "
            "del SII."
        )
        return _finding("folios_running_out", message, evidence, error=True)
    if remaining >= FOLIO_MIN_REMAINING and remaining >= used:
        return None
    folios = "folio" if remaining == 1 else "folios"
    pace = (
        f"; al ritmo de los últimos {FOLIO_USAGE_DAYS} días ({used} usados) alcanzan para unos "
        f"{days_left} días"
        if days_left is not None
        else ""
    )
    message = f"Quedan {remaining} {folios} de {what}{pace}. Solicite un nuevo CAF al SII."
    return _finding("folios_running_out", message, evidence)


def _certificate_expiring(certificate: CertificateFacts, today: date) -> Finding | None:
    days_left = (certificate.not_after - today).days
    if days_left > CERTIFICATE_WARNING_DAYS:
        return None
    holder = f" de {certificate.holder.strip()}" if certificate.holder.strip() else ""
    evidence = {
        "holder": certificate.holder,
        "not_after": certificate.not_after.isoformat(),
        "days_left": days_left,
    }
    when = format_date(certificate.not_after)
    if days_left < 0:
        message = (
            f"El certificado digital{holder} venció el {when}: no se pueden firmar documentos "
            "hasta cargar uno vigente."
        )
        return _finding("certificate_expiring", message, evidence, error=True)
    remaining = "hoy" if days_left == 0 else f"en {days_left} día" + ("s" if days_left > 1 else "")
    message = (
        f"El certificado digital{holder} vence el {when} ({remaining}); renuévelo para seguir "
        "firmando documentos."
    )
    return _finding("certificate_expiring", message, evidence)


def _present(findings: Iterable[Finding | None]) -> list[Finding]:
    return [finding for finding in findings if finding is not None]


def review_resources(
    stocks: Sequence[FolioStock], certificates: Sequence[CertificateFacts], *, today: date
) -> list[Finding]:
    """Folio stocks (in the given order), then certificates. Pass only the tipos the company
    issues: a tipo with no folios left is an error even if it was not used lately."""
    return _present(_folios_running_out(stock) for stock in stocks) + _present(
        _certificate_expiring(certificate, today) for certificate in certificates
    )
