"""dte.core.issue.with_folio: a document checked before its folio is known gets its folio
without its totals being computed again, and without changing the original."""

from datetime import date
from decimal import Decimal

from dte.core.domain import Documento, Emisor, Linea, Receptor
from dte.core.issue import with_folio
from erp.doctypes import TipoDte


def test_with_folio_keeps_the_totals_and_leaves_the_original_alone():
    original = Documento(
        TipoDte.FACTURA,
        0,
        date(2026, 11, 23),
        Emisor("76086428-5", "Emisora SpA", "Software", (620200,), "Calle 1", "Providencia"),
        Receptor("96790240-3", "Receptora S.A.", "Comercio", "Calle 2", "Las Condes"),
        (Linea("Servicio", Decimal(2), Decimal("1500.5"), Decimal(10)),),
    )
    numbered = with_folio(original, 7)
    assert (numbered.folio, original.folio) == (7, 0)
    assert numbered.totales is original.totales and numbered.totales.monto_total == 3214
    assert (numbered.id, original.id) == ("F7T33", "F0T33")
    assert numbered.lineas == original.lineas
