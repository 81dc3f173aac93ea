"""The document's Observaciones are printed: wrapped inside the page (or the roll), bounded,
as typed (no markup), and the stamp stays readable under them."""

import io
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from dte import printing, services
from dte.pdf.render import NOTES_MAX_LINES, notes_text
from erp import services as erp_services
from tests.factories import PartnerFactory
from tests.pdfscan import scan, ted_of

pytestmark = pytest.mark.django_db


def issue(company, *, notes="", tipo=33):
    partner = None
    if tipo != 39:
        partner = PartnerFactory(
            company=company, rut="96790240-3", razon_social="Distribuidora Los Andes S.A."
        ).pk
    draft = erp_services.sales_document_create(
        company=company,
        actor=None,
        data={
            "tipo_dte": tipo,
            "fecha_emision": date(2026, 11, 20),
            "partner": partner,
            "notes": notes,
            "lines": [
                {"name": "Consultoría", "quantity": Decimal(2), "unit_price": Decimal(45000)}
            ],
        },
    )
    return services.dte_issue(document=draft, actor=None)


def text_of(pdf: bytes) -> str:
    pages = PdfReader(io.BytesIO(pdf)).pages
    return " ".join(" ".join(page.extract_text().split()) for page in pages)


def test_letter_prints_the_observaciones(issuer):
    notes = (
        "Entregar en bodega 3 <portón lateral> & avisar a Juana Pérez.\n"
        "Orden de compra N° 4.512; pago a 30 días. " + "Texto de relleno largo. " * 20
    )
    dte = issue(issuer, notes=notes)
    text = text_of(printing.render(dte))
    assert "Observaciones" in text
    assert "Entregar en bodega 3 <portón lateral> & avisar a Juana Pérez." in text
    assert "Orden de compra N° 4.512; pago a 30 días." in text
    assert text.count("Texto de relleno largo.") == 20  # wrapped, nothing lost


def test_no_observaciones_no_box(issuer):
    assert "Observaciones" not in text_of(printing.render(issue(issuer)))


def test_thermal_boleta_prints_them_too(issuer):
    dte = issue(issuer, tipo=39, notes="Retira en tienda el lunes.")
    text = text_of(printing.dte_pdf(dte))
    assert "Observaciones" in text and "Retira en tienda el lunes." in text


@pytest.mark.poppler
def test_long_observaciones_are_bounded_and_the_stamp_still_scans(issuer):
    notes = "\n".join(f"Línea de observación número {n}" for n in range(1, 61))
    dte = issue(issuer, notes=notes)
    pdf = printing.render(dte)
    text = text_of(pdf)
    assert f"Línea de observación número {NOTES_MAX_LINES} " in text + " "
    assert f"Línea de observación número {NOTES_MAX_LINES + 1}" not in text
    assert "…" in text
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    assert scan(pdf, page=pages)["pdf417"] == [ted_of(dte)]


def test_notes_text_bounds():
    assert notes_text("") == ""
    assert notes_text("a\r\n\r\n  \nb  ") == "a\nb"
    long = "x" * 5000
    assert len(notes_text(long)) <= 1202 and notes_text(long).endswith(" …")
