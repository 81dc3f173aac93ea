"""Notas from their factura, and the SII's checks before a folio is spent (issue 15, point 2)."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from lxml import etree

from dte import notes, printing, services
from dte.core.domain import SIIDTE_NS
from dte.core.verify import verify_xml
from dte.models import Caf, Dte, DteStatus
from erp import services as erp_services
from erp.errors import DomainError
from erp.models import DocumentState, SalesDocument
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 20)
NS = {"d": SIIDTE_NS}


@pytest.fixture
def customer(issuer):
    return PartnerFactory(
        company=issuer,
        rut="96790240-3",
        razon_social="Constructora Andes SpA",
        giro="Construcción",
        direccion="Av. Apoquindo 4500",
        comuna="Las Condes",
    )


def _factura(company, partner, clerk, **extra) -> SalesDocument:
    data = {
        "tipo_dte": 33,
        "fecha_emision": TODAY,
        "partner": partner.pk,
        "forma_pago": 1,
        "global_discount_type": "%",
        "global_discount_value": Decimal(3),
        "lines": [
            {"name": "Consultoría", "quantity": Decimal(10), "unit_price": Decimal(25000)},
            {"name": "Licencia", "quantity": Decimal(2), "unit_price": Decimal(15000)},
        ],
        **extra,
    }
    document = erp_services.sales_document_create(company=company, actor=clerk, data=data)
    services.dte_issue(document=document, actor=clerk)
    document.refresh_from_db()
    return document


def _nota(company, clerk, factura, *, tipo=61, cod_ref=3, lines, fecha_ref=None, **extra):
    return erp_services.sales_document_create(
        company=company,
        actor=clerk,
        data={
            "tipo_dte": tipo,
            "fecha_emision": TODAY,
            "partner": factura.partner_id,
            "lines": lines,
            "references": [
                {
                    "tipo_doc_ref": str(factura.tipo_dte),
                    "folio_ref": str(factura.folio),
                    "fecha_ref": fecha_ref or factura.fecha_emision,
                    "cod_ref": cod_ref,
                    "razon_ref": "Devolución",
                }
            ],
            **extra,
        },
    )


def _folios_left(company, tipo) -> int:
    return Caf.objects.get(company=company, tipo_dte=tipo).next_folio


def test_an_annulment_copies_the_factura_with_its_global_discount(issuer, customer, clerk):
    factura = _factura(issuer, customer, clerk)
    assert factura.monto_total == 323_204  # (250.000 + 30.000) − 3 % = 271.600, + IVA 51.604

    nota = notes.note_draft(document=factura, actor=clerk, tipo=61, cod_ref=1, today=TODAY)

    assert nota.is_draft and nota.tipo_dte == 61 and nota.partner_id == customer.pk
    assert (nota.global_discount_type, nota.global_discount_value) == ("%", Decimal(3))
    assert [(ln.name, ln.quantity) for ln in nota.lines.all()] == [
        ("Consultoría", 10),
        ("Licencia", 2),
    ]
    assert nota.monto_total == factura.monto_total
    ref = nota.references.get()
    assert (ref.tipo_doc_ref, ref.folio_ref, ref.fecha_ref, ref.cod_ref) == ("33", "1", TODAY, 1)
    assert ref.razon_ref == "Anula el documento"

    dte = services.dte_issue(document=nota, actor=clerk)
    xml = etree.fromstring(bytes(dte.xml))
    assert xml.findtext(".//d:Referencia/d:CodRef", namespaces=NS) == "1"
    assert xml.findtext(".//d:DscRcgGlobal/d:ValorDR", namespaces=NS) == "3"
    summary = notes.notes_of(factura)
    assert [n.pk for n in summary.notes] == [nota.pk]
    assert (summary.credited, summary.remaining) == (323_204, 0)


def test_a_nota_de_credito_beyond_what_remains_is_refused_before_its_folio(issuer, customer, clerk):
    factura = _factura(issuer, customer, clerk)
    first = _nota(
        issuer,
        clerk,
        factura,
        lines=[{"name": "Devolución licencia", "quantity": 2, "unit_price": 15000}],
    )
    services.dte_issue(document=first, actor=clerk)  # 35.700 of 323.204
    too_much = _nota(
        issuer,
        clerk,
        factura,
        lines=[{"name": "Consultoría", "quantity": 10, "unit_price": 25000}],
    )  # 297.500 > 287.504 left

    with pytest.raises(DomainError) as info:
        services.dte_issue(document=too_much, actor=clerk)

    assert info.value.code == "not_issuable"
    message = info.value.fields["monto_total"][0]
    assert (
        "$ 297.500" in message and "$ 287.504" in message and "factura electrónica N° 1" in message
    )
    assert _folios_left(issuer, 61) == 2  # the refused one spent no folio
    too_much.refresh_from_db()
    assert too_much.state == DocumentState.DRAFT
    assert notes.notes_of(factura).remaining == 287_504


def test_a_nota_de_debito_raises_what_remains_and_a_rejected_nota_gives_it_back(
    issuer, customer, clerk
):
    factura = _factura(issuer, customer, clerk)
    debit = _nota(
        issuer,
        clerk,
        factura,
        tipo=56,
        lines=[{"name": "Intereses", "quantity": 1, "unit_price": 10000}],
    )
    services.dte_issue(document=debit, actor=clerk)
    credit = _nota(
        issuer, clerk, factura, lines=[{"name": "Rebaja", "quantity": 1, "unit_price": 100000}]
    )
    services.dte_issue(document=credit, actor=clerk)
    summary = notes.notes_of(factura)
    assert (summary.debited, summary.credited) == (11_900, 119_000)
    assert summary.remaining == 323_204 + 11_900 - 119_000

    Dte.objects.filter(sales_document=credit).update(status=DteStatus.REJECTED)
    assert notes.notes_of(factura).remaining == 323_204 + 11_900


def test_a_nota_must_modify_a_document_that_exists(issuer, customer, clerk):
    factura = _factura(issuer, customer, clerk)
    ghost = SalesDocument(tipo_dte=33, folio=999, fecha_emision=TODAY, partner=customer)
    nota = _nota(issuer, clerk, ghost, lines=[{"name": "x", "quantity": 1, "unit_price": 1000}])

    with pytest.raises(DomainError) as info:
        services.dte_issue(document=nota, actor=clerk)
    assert "factura electrónica N° 999 no existe" in info.value.message
    assert _folios_left(issuer, 61) == 1

    # Issued by another taxpayer: named with its issuer (RUTOtr), it goes.
    ref = nota.references.get()
    ref.rut_otr = "77001234-1"
    ref.save()
    dte = services.dte_issue(document=nota, actor=clerk)
    xml = etree.fromstring(bytes(dte.xml))
    assert xml.findtext(".//d:Referencia/d:RUTOtr", namespaces=NS) == "77001234-1"
    assert factura.folio == 1


def test_the_referenced_date_and_receiver_must_match(issuer, customer, clerk):
    factura = _factura(issuer, customer, clerk)
    nota = _nota(
        issuer,
        clerk,
        factura,
        fecha_ref=date(2026, 11, 2),
        lines=[{"name": "x", "quantity": 1, "unit_price": 1000}],
    )
    other = PartnerFactory(company=issuer, giro="Otro", direccion="Calle 1", comuna="Maipú")
    nota.partner = other
    nota.save()

    problems = notes.issue_problems(nota)

    assert "02-11-2026" in problems["references"][0] and "20-11-2026" in problems["references"][0]
    assert problems["partner"] == [
        "La nota debe ir al mismo receptor que la factura electrónica N° 1."
    ]


def test_a_text_correction_carries_no_amounts(issuer, customer, clerk):
    factura = _factura(issuer, customer, clerk)
    with pytest.raises(DomainError) as info:
        notes.note_draft(document=factura, actor=clerk, tipo=61, cod_ref=2, today=TODAY)
    assert "razon_ref" in info.value.fields

    nota = notes.note_draft(
        document=factura,
        actor=clerk,
        tipo=61,
        cod_ref=2,
        razon="Corrige giro del receptor",
        today=TODAY,
    )
    assert nota.monto_total == 0 and nota.lines.get().name == "Corrige giro del receptor"
    dte = services.dte_issue(document=nota, actor=clerk)
    xml = etree.fromstring(bytes(dte.xml))
    assert xml.findtext(".//d:Totales/d:MntTotal", namespaces=NS) == "0"
    assert verify_xml(bytes(dte.xml), sii_keys=services.sii_keys()).ok
    assert printing.render(dte).startswith(b"%PDF")
    assert notes.notes_of(factura).remaining == factura.monto_total  # text fixes credit nothing

    with_amounts = _nota(
        issuer,
        clerk,
        factura,
        cod_ref=2,
        lines=[{"name": "Corrige dirección", "quantity": 1, "unit_price": 5000}],
    )
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=with_amounts, actor=clerk)
    assert "no lleva montos" in info.value.message


@pytest.mark.parametrize("tipo", [33, 34, 52, 56, 61])
def test_receiver_details_are_checked_before_a_folio_is_spent(issuer, clerk, tipo):
    partner = PartnerFactory(company=issuer, giro="", direccion="", comuna="Ñuñoa")
    lines = [{"name": "Servicio", "quantity": 1, "unit_price": 1000, "is_exempt": tipo == 34}]
    refs = (
        [
            {
                "tipo_doc_ref": "33",
                "folio_ref": "5",
                "rut_otr": "77001234-1",
                "fecha_ref": TODAY,
                "cod_ref": 3,
            }
        ]
        if tipo in (56, 61)
        else []
    )
    document = erp_services.sales_document_create(
        company=issuer,
        actor=clerk,
        data={
            "tipo_dte": tipo,
            "fecha_emision": TODAY,
            "partner": partner.pk,
            "lines": lines,
            "references": refs,
        },
    )
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=document, actor=clerk)
    assert "le falta giro, dirección" in info.value.fields["partner"][0]
    assert _folios_left(issuer, tipo) == 1

    partner.giro, partner.direccion = "Comercio", "Irarrázaval 1234"
    partner.save()
    assert services.dte_issue(document=document, actor=clerk).folio == 1


def test_a_boleta_needs_no_receiver_details(issuer, clerk):
    partner = PartnerFactory(company=issuer, giro="", direccion="", comuna="")
    document = erp_services.sales_document_create(
        company=issuer,
        actor=clerk,
        data={
            "tipo_dte": 39,
            "fecha_emision": TODAY,
            "partner": partner.pk,
            "lines": [{"name": "Café", "quantity": 1, "unit_price": 2500}],
        },
    )
    assert notes.issue_problems(document) == {}


# ---------------------------------------------------------------- the pages


def test_the_factura_page_offers_a_nota_and_lists_its_notas(client, issuer, customer, clerk):
    factura = _factura(issuer, customer, clerk)
    client.force_login(clerk)

    response = client.post(
        reverse("dte:note_create", args=[factura.pk]),
        {"tipo_dte": "61", "cod_ref": "3", "razon_ref": "Devolución de 1 licencia"},
    )

    nota = SalesDocument.objects.get(tipo_dte=61)
    assert response.status_code == 302 and response.url == reverse(
        "erp:document_edit", args=[nota.pk]
    )
    assert nota.references.get().razon_ref == "Devolución de 1 licencia"
    page = client.get(reverse("erp:document_detail", args=[factura.pk])).content.decode()
    assert "Notas de crédito y débito" in page and "(borrador)" in page
    assert "Corrige montos: Devolución de 1 licencia" in page
    assert 'id="notes-remaining"><strong>$ 323.204' in page


def test_a_draft_page_says_what_stops_it_before_issuing(client, issuer, customer, clerk):
    factura = _factura(issuer, customer, clerk)
    nota = _nota(
        issuer, clerk, factura, lines=[{"name": "x", "quantity": 100, "unit_price": 100000}]
    )
    client.force_login(clerk)
    page = client.get(reverse("erp:document_detail", args=[nota.pk])).content.decode()
    assert 'id="issue-problems"' in page and "excede lo que queda" in page

    response = client.post(reverse("dte:issue", args=[nota.pk]), follow=True)
    assert (
        "No se pudo emitir: La nota de crédito ($ 11.900.000) excede" in response.content.decode()
    )


def test_only_editors_of_the_company_draft_notas(client, issuer, customer, clerk, viewer, outsider):
    factura = _factura(issuer, customer, clerk)
    url = reverse("dte:note_create", args=[factura.pk])
    payload = {"tipo_dte": "61", "cod_ref": "1"}
    client.force_login(viewer)
    assert client.post(url, payload).status_code == 403
    client.force_login(outsider)
    assert client.post(url, payload).status_code == 404
    assert not SalesDocument.objects.filter(tipo_dte=61).exists()


def test_a_nota_from_a_draft_or_a_boleta_is_refused(client, issuer, customer, clerk):
    draft = erp_services.sales_document_create(
        company=issuer,
        actor=clerk,
        data={
            "tipo_dte": 33,
            "fecha_emision": TODAY,
            "partner": customer.pk,
            "lines": [{"name": "x", "quantity": 1, "unit_price": 1000}],
        },
    )
    client.force_login(clerk)
    response = client.post(
        reverse("dte:note_create", args=[draft.pk]), {"tipo_dte": "61", "cod_ref": "1"}, follow=True
    )
    assert "Solo se emiten notas sobre documentos emitidos." in response.content.decode()
    response = client.post(
        reverse("dte:note_create", args=[draft.pk]), {"tipo_dte": "33", "cod_ref": "1"}, follow=True
    )
    assert "Elija nota de crédito (61) o nota de débito (56)." in response.content.decode()


def test_the_api_refuses_an_excessive_nota_with_the_field(api, issuer, customer, clerk):
    factura = _factura(issuer, customer, clerk)
    payload = {
        "tipo_dte": 61,
        "fecha_emision": "2026-11-20",
        "partner": customer.rut,
        "lines": [{"name": "Rebaja", "quantity": "1", "unit_price": "999999"}],
        "references": [
            {
                "tipo_doc_ref": "33",
                "folio_ref": str(factura.folio),
                "fecha_ref": "2026-11-20",
                "cod_ref": 3,
                "razon_ref": "Rebaja",
            }
        ],
    }
    base = f"/api/v1/companies/{issuer.rut}/sales-documents/"
    created = api.post(base, payload, format="json")
    assert created.status_code == 201, created.json()

    response = api.post(f"{base}{created.json()['id']}/issue/")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "not_issuable"
    assert "excede lo que queda de la factura electrónica N° 1" in body["fields"]["monto_total"][0]
