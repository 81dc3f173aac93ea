"""Books against the SII's register (RCV), document by document. Pure: no Django.

A document is identified by (tipo, folio, RUT of the other party). Each one ends in exactly one
category: in both and equal ("matched"), only in our books, only in the RCV, in both with
different amounts (the fields are named), or in both with the same amounts but a different
state (e.g. claimed in the RCV, or not yet accepted by the SII in our books).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Category(StrEnum):
    MATCHED = "matched"
    ONLY_BOOKS = "only_books"
    ONLY_RCV = "only_rcv"
    AMOUNTS_DIFFER = "amounts_differ"
    STATE_DIFFERS = "state_differs"


CATEGORY_LABELS = {
    Category.MATCHED: "Cuadra",
    Category.ONLY_BOOKS: "Solo en libros",
    Category.ONLY_RCV: "Solo en el RCV",
    Category.AMOUNTS_DIFFER: "Montos distintos",
    Category.STATE_DIFFERS: "Estado distinto",
}
AMOUNT_FIELDS = ("monto_exento", "monto_neto", "monto_iva", "monto_total")
FIELD_LABELS = {
    "monto_exento": "exento",
    "monto_neto": "neto",
    "monto_iva": "IVA",
    "monto_total": "total",
    "estado": "estado",
}


@dataclass(frozen=True)
class LedgerDoc:
    """One document as one side sees it. `estado` is comparable across sides: "registro",
    "pendiente", "no_incluir", "reclamado", or (sales in our books) the DTE's state when the SII
    has not accepted it."""

    tipo: int
    folio: int
    rut: str
    razon_social: str
    fecha: date
    monto_exento: int
    monto_neto: int
    monto_iva: int
    monto_total: int
    estado: str
    ref: int | None = None  # the row's id on its side

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.tipo, self.folio, self.rut)


@dataclass(frozen=True)
class ReconLine:
    category: Category
    books: LedgerDoc | None
    rcv: LedgerDoc | None
    differences: tuple[str, ...] = ()  # field names that differ ("estado" for the state)

    @property
    def doc(self) -> LedgerDoc:
        found = self.books or self.rcv
        assert found is not None
        return found

    @property
    def key(self) -> tuple[int, int, str]:
        return self.doc.key


@dataclass(frozen=True)
class CategoryTotals:
    count: int
    books_total: int
    rcv_total: int


def reconcile(books: Iterable[LedgerDoc], rcv: Iterable[LedgerDoc]) -> list[ReconLine]:
    """Every document of either side once, ordered by type, folio and RUT."""
    ours = {doc.key: doc for doc in books}
    theirs = {doc.key: doc for doc in rcv}
    lines = []
    for key in sorted(ours.keys() | theirs.keys()):
        mine, sii = ours.get(key), theirs.get(key)
        if sii is None:
            lines.append(ReconLine(Category.ONLY_BOOKS, mine, None))
            continue
        if mine is None:
            lines.append(ReconLine(Category.ONLY_RCV, None, sii))
            continue
        amounts = tuple(f for f in AMOUNT_FIELDS if getattr(mine, f) != getattr(sii, f))
        state = ("estado",) if mine.estado != sii.estado else ()
        if amounts:
            lines.append(ReconLine(Category.AMOUNTS_DIFFER, mine, sii, amounts + state))
        elif state:
            lines.append(ReconLine(Category.STATE_DIFFERS, mine, sii, state))
        else:
            lines.append(ReconLine(Category.MATCHED, mine, sii))
    return lines


def summarize(lines: Iterable[ReconLine]) -> dict[Category, CategoryTotals]:
    """Per category: how many documents, and the sum of their totals on each side."""
    count = dict.fromkeys(Category, 0)
    books = dict.fromkeys(Category, 0)
    sii = dict.fromkeys(Category, 0)
    for line in lines:
        count[line.category] += 1
        books[line.category] += line.books.monto_total if line.books else 0
        sii[line.category] += line.rcv.monto_total if line.rcv else 0
    return {c: CategoryTotals(count[c], books[c], sii[c]) for c in Category}
