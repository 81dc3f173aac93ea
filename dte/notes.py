"""Notas de crédito and débito tied to the document they modify, and the SII's checks a document
must pass before a folio is spent on it (DOMAIN.md §5, §16).

A nota is an ordinary draft whose Referencia (with a CodRef) names the document it modifies. This
module drafts one from an issued document, finds the notas of a document and what remains of it,
and says what stops a draft from being issued:

- the receiver's giro, dirección and comuna, which the SII requires for facturas, guías and notas;
- a nota's referenced document exists: one of ours, issued and not rejected, with the same date
  and receiver (a document issued by someone else is named with its issuer, RUTOtr);
- a nota that corrects text (CodRef 2) carries no amounts;
- the notas de crédito of a document never add up to more than what remains of it (its total,
  plus its notas de débito that correct amounts, less its other notas de crédito).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from dte import errors
from dte.models import DteStatus
from erp import services as erp_services
from erp.doctypes import CodRef, SalesBox, TipoDte, codes
from erp.errors import DomainError
from erp.exports import format_in_currency
from erp.models import DocumentState, SalesDocument, SalesDocumentReference
from erp.money import format_clp

REASONS: Mapping[int, str] = {
    CodRef.ANULA: "Anula el documento",
    CodRef.CORRIGE_TEXTO: "Corrige texto",
    CodRef.CORRIGE_MONTOS: "Corrige montos",
}
_ISSUED = frozenset(int(t) for t in TipoDte)
# Notas de crédito subtract (F29 510, or 20 for exports); notas de débito add (the registry).
CREDIT_TYPES = (
    codes(
        lambda d: d.note and bool({SalesBox.NOTAS_CREDITO, SalesBox.EXPORT_RESTA} & d.sales_boxes)
    )
    & _ISSUED
)
NOTE_TYPES = tuple(sorted(codes(lambda d: d.note) & _ISSUED))


def note_types_for(document: SalesDocument) -> tuple[TipoDte, TipoDte]:
    """The nota de crédito and the nota de débito of a document: 112/111 for an export."""
    if document.tipo.is_export:
        return TipoDte.NOTA_CREDITO_EXPORTACION, TipoDte.NOTA_DEBITO_EXPORTACION
    return TipoDte.NOTA_CREDITO, TipoDte.NOTA_DEBITO


def amount_of(document: SalesDocument) -> Any:
    """What a nota is measured in: pesos, or an export's currency."""
    if document.tipo.is_export:
        return document.monto_total_moneda or Decimal(0)
    return document.monto_total


def money(document: SalesDocument, value: Any) -> str:
    if document.tipo.is_export and document.moneda:
        return format_in_currency(value, document.moneda)
    return format_clp(value)


# Types we issue electronically: a reference to one of these without RUTOtr must be ours.
OWN_ELECTRONIC_TYPES = frozenset(str(int(t)) for t in TipoDte)


def _label(tipo: int) -> str:
    try:
        return TipoDte(tipo).label
    except ValueError:
        return f"documento tipo {tipo}"


def _document_name(document: SalesDocument) -> str:
    return f"{_label(document.tipo_dte).lower()} N° {document.folio}"


# ---------------------------------------------------------------- notas of a document


@dataclass(frozen=True)
class NoteSummary:
    """A document's notas and what remains of it after the issued ones."""

    notes: list[SalesDocument] = field(default_factory=list)
    credited: int = 0
    debited: int = 0
    remaining: int = 0


def _counts(note: SalesDocument) -> bool:
    """Issued and not refused by the SII: a rejected nota never modified anything."""
    if note.state != DocumentState.ISSUED:
        return False
    dte = getattr(note, "dte", None)
    return dte is None or dte.status != DteStatus.REJECTED


def _referencing(document: SalesDocument) -> Q:
    return Q(
        references__tipo_doc_ref=str(document.tipo_dte),
        references__folio_ref=str(document.folio),
        references__rut_otr="",
        references__cod_ref__isnull=False,
    )


def notes_of(document: SalesDocument, *, exclude: SalesDocument | None = None) -> NoteSummary:
    """The notas (drafts too) that modify an issued document, and its remaining amount."""
    if document.folio is None:
        return NoteSummary(remaining=amount_of(document))
    notes = (
        SalesDocument.objects.filter(company_id=document.company_id, tipo_dte__in=NOTE_TYPES)
        .filter(_referencing(document))
        .select_related("dte", "partner")
        .prefetch_related("references")
        .distinct()
        .order_by("fecha_emision", "id")
    )
    if exclude is not None and exclude.pk:
        notes = notes.exclude(pk=exclude.pk)
    notes = list(notes)
    credited = debited = 0
    for note in notes:
        if not _counts(note):
            continue
        codes = {
            r.cod_ref
            for r in note.references.all()
            if r.tipo_doc_ref == str(document.tipo_dte) and r.folio_ref == str(document.folio)
        }
        if note.tipo_dte in CREDIT_TYPES and codes & {CodRef.ANULA, CodRef.CORRIGE_MONTOS}:
            credited += amount_of(note)
        elif note.tipo_dte not in CREDIT_TYPES and CodRef.CORRIGE_MONTOS in codes:
            debited += amount_of(note)
    remaining = amount_of(document) + debited - credited
    return NoteSummary(notes=notes, credited=credited, debited=debited, remaining=remaining)


# ---------------------------------------------------------------- drafting a nota


def note_draft(
    *,
    document: SalesDocument,
    actor: Any,
    tipo: int | str | None,
    cod_ref: int | str | None,
    razon: str = "",
    today: date | None = None,
) -> SalesDocument:
    """A draft nota de crédito or débito for an issued document, ready to edit and issue.

    Annulling (1) copies the document's lines and global discount or surcharge; correcting
    amounts (3) starts from the same lines for the user to set the returned quantities or the
    price difference; correcting text (2) is one line without amounts naming the correction.
    """
    try:
        note_type = TipoDte(int(tipo))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        note_type = None
    allowed = note_types_for(document)
    if note_type is None or note_type not in allowed:
        message = f"Elija nota de crédito ({int(allowed[0])}) o nota de débito ({int(allowed[1])})."
        raise DomainError(errors.NOT_ISSUABLE, message, {"tipo_dte": message})
    try:
        code = CodRef(int(cod_ref))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        message = "Elija si la nota anula, corrige texto o corrige montos."
        raise DomainError(errors.NOT_ISSUABLE, message, {"cod_ref": message}) from None
    if document.state != DocumentState.ISSUED or document.folio is None:
        message = "Solo se emiten notas sobre documentos emitidos."
        raise DomainError(errors.NOT_ISSUABLE, message, {"document": message})
    if not document.tipo.accepts_notes:
        message = f"Desde una {document.tipo.label.lower()} no se emiten notas aquí."
        raise DomainError(errors.NOT_ISSUABLE, message, {"document": message})
    razon = (razon or "").strip()
    if code is CodRef.CORRIGE_TEXTO and not razon:
        message = "Indique qué texto corrige la nota (p. ej. «Corrige giro del receptor»)."
        raise DomainError(errors.NOT_ISSUABLE, message, {"razon_ref": message})
    razon = razon or REASONS[code]
    exempt_only = note_type.exempt_only or document.tipo.exempt_only
    if code is CodRef.CORRIGE_TEXTO:
        lines: list[dict[str, Any]] = [
            {
                "name": razon[:80],
                "quantity": Decimal(1),
                "unit_price": Decimal(0),
                "is_exempt": exempt_only,
            }
        ]
        adjustments: dict[str, Any] = {}
    else:
        lines = [
            {
                "product": line.product_id,
                "name": line.name,
                "description": line.description,
                "quantity": line.quantity,
                "unit": line.unit,
                "unit_price": line.unit_price,
                "discount_pct": line.discount_pct,
                "is_exempt": line.is_exempt,
            }
            for line in document.lines.all()
        ]
        adjustments = {
            "global_discount_type": document.global_discount_type,
            "global_discount_value": document.global_discount_value,
            "global_surcharge_type": document.global_surcharge_type,
            "global_surcharge_value": document.global_surcharge_value,
        }
    if document.tipo.is_export:  # the same currency and customs data; the rate is to be checked
        aduana = dict(document.aduana or {})
        if code is not CodRef.ANULA:  # only an annulment gives back the freight and insurance
            aduana.pop("flete", None)
            aduana.pop("seguro", None)
        adjustments |= {
            "moneda": document.moneda,
            "tipo_cambio": document.tipo_cambio,
            "forma_pago_exportacion": document.forma_pago_exportacion,
            "ind_servicio": document.ind_servicio,
            "aduana": aduana,
        }
    data = {
        "tipo_dte": int(note_type),
        "fecha_emision": today or timezone.localdate(),
        "partner": document.partner_id,
        "notes": "",
        **adjustments,
        "lines": lines,
        "references": [
            {
                "tipo_doc_ref": str(document.tipo_dte),
                "folio_ref": str(document.folio),
                "fecha_ref": document.fecha_emision,
                "cod_ref": int(code),
                "razon_ref": razon[:90],
            }
        ],
    }
    return erp_services.sales_document_create(company=document.company, actor=actor, data=data)


# ---------------------------------------------------------------- before issuing


def _referenced(
    company_id: int, refs: Iterable[SalesDocumentReference]
) -> dict[tuple[str, str], SalesDocument]:
    keys = [(r.tipo_doc_ref, r.folio_ref) for r in refs if r.folio_ref.isdigit()]
    if not keys:
        return {}
    query = Q()
    for tipo, folio in keys:
        if tipo.isdigit():
            query |= Q(tipo_dte=int(tipo), folio=int(folio))
    if not query:
        return {}
    found = SalesDocument.objects.filter(query, company_id=company_id).select_related(
        "dte", "partner"
    )
    return {(str(d.tipo_dte), str(d.folio)): d for d in found}


def issue_problems(document: SalesDocument, *, lock: bool = False) -> dict[str, list[str]]:
    """What stops this draft from being issued, by field; empty when it may be issued.

    With `lock`, the documents a nota modifies are locked (inside the caller's transaction), so
    that two notas de crédito of one factura cannot both pass the remaining-amount check.
    """
    problems: dict[str, list[str]] = {}

    def add(field_name: str, message: str) -> None:
        problems.setdefault(field_name, []).append(message)

    tipo = document.tipo
    partner = document.partner
    if tipo.requires_receiver_details and partner is not None:
        missing = [
            label
            for label, value in (
                ("razón social", partner.razon_social),
                ("giro", partner.giro),
                ("dirección", partner.direccion),
                ("comuna", partner.comuna),
            )
            if not (value or "").strip()
        ]
        if missing:
            add(
                "partner",
                f"Al receptor {partner.razon_social} le falta {', '.join(missing)}: el SII "
                f"los exige en una {tipo.label.lower()}. Complételos en su ficha.",
            )
    if tipo.is_export:
        _export_problems(document, add)
    if not tipo.is_note:
        return problems

    refs = list(document.references.all())
    modifying = [r for r in refs if r.cod_ref is not None]
    if not modifying:
        add("references", "La nota debe referenciar, con un código, el documento que modifica.")
    if any(r.cod_ref == CodRef.CORRIGE_TEXTO for r in modifying) and (
        document.monto_total or any(line.unit_price for line in document.lines.all())
    ):
        add(
            "references",
            "Una nota que corrige texto (código 2) no lleva montos: deje los precios en 0.",
        )
    ours = [r for r in modifying if not r.rut_otr and r.tipo_doc_ref in OWN_ELECTRONIC_TYPES]
    found = _referenced(document.company_id, ours)
    for ref in ours:
        target = found.get((ref.tipo_doc_ref, ref.folio_ref))
        name = f"{_label(int(ref.tipo_doc_ref)).lower()} N° {ref.folio_ref}"
        if target is None or target.state != DocumentState.ISSUED:
            add(
                "references",
                f"La {name} no existe entre los documentos emitidos por la empresa. Si la "
                "emitió otro contribuyente, indique su RUT en la referencia.",
            )
            continue
        target_dte = getattr(target, "dte", None)
        if target_dte is not None and target_dte.status == DteStatus.REJECTED:
            add("references", f"La {name} fue rechazada por el SII: no se puede modificar.")
            continue
        if ref.fecha_ref != target.fecha_emision:
            add(
                "references",
                f"La fecha de la referencia ({ref.fecha_ref:%d-%m-%Y}) no es la de la {name} "
                f"({target.fecha_emision:%d-%m-%Y}).",
            )
        if target.partner_id != document.partner_id:
            add("partner", f"La nota debe ir al mismo receptor que la {name}.")
        if document.tipo_dte not in CREDIT_TYPES or ref.cod_ref == CodRef.CORRIGE_TEXTO:
            continue
        if lock:
            SalesDocument.objects.select_for_update(of=("self",)).filter(pk=target.pk).first()
        summary = notes_of(target, exclude=document)
        if amount_of(document) > summary.remaining:
            add(
                "monto_total",
                f"La nota de crédito ({money(document, amount_of(document))}) excede lo que "
                f"queda de la {_document_name(target)}: {money(target, summary.remaining)} "
                f"(total {money(target, amount_of(target))}"
                + (f", acreditado {money(target, summary.credited)}" if summary.credited else "")
                + (f", debitado {money(target, summary.debited)}" if summary.debited else "")
                + ").",
            )
    return problems


def _export_problems(document: SalesDocument, add: Callable[[str, str], None]) -> None:
    """What the SII requires of an export beyond its schema (EXPORTS.md §1.3): on a factura de
    exportación the receiver's address and city, the countries and the packages; for goods (no
    service indicator) the sale's mode, clause and its total, and the transport way."""
    if document.tipo_dte != TipoDte.FACTURA_EXPORTACION:
        return
    aduana = document.aduana or {}
    partner, company = document.partner, document.company
    if partner is not None and not (partner.direccion and partner.ciudad):
        add("partner", f"Indique la dirección y la ciudad de {partner.razon_social} en su ficha.")
    if not (company.direccion and company.ciudad):
        add("company", "La empresa necesita dirección y ciudad de origen para exportar.")
    required = [("pais_receptor", "el país receptor"), ("total_bultos", "el total de bultos")]
    if document.ind_servicio is None:
        required += [
            ("modalidad_venta", "la modalidad de venta"),
            ("clausula_venta", "la cláusula de venta"),
            ("total_clausula", "el total de la cláusula"),
            ("via_transporte", "la vía de transporte"),
        ]
    elif document.ind_servicio != 4:
        required += [("via_transporte", "la vía de transporte")]
    missing = [label for key, label in required if not aduana.get(key)]
    if missing:
        add("aduana", "Faltan datos de Aduana: " + ", ".join(missing) + ".")


def check_issuable(document: SalesDocument) -> None:
    """Refuse, before a folio is taken, a draft the SII would refuse or that makes no sense."""
    problems = issue_problems(document, lock=True)
    if problems:
        first = next(iter(problems.values()))[0]
        raise DomainError(errors.NOT_ISSUABLE, first, problems)
