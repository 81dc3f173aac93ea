"""A factura de exportación (110) and its nota de crédito (112), from the example input through
the database to the SII sandbox's "accepted", in dollars with their pesos (issue 16)."""

from decimal import Decimal

import pytest
from lxml import etree

from dte import services
from dte.core.domain import SIIDTE_NS
from dte.core.verify import verify_xml
from erp import services as erp_services
from erp.errors import DomainError
from erp.models import Partner
from tests.dte.sii.test_flow import run_outbox
from tests.dte.test_issue import draft_from_file

pytestmark = pytest.mark.django_db(transaction=True)
NS = {"d": SIIDTE_NS}


@pytest.fixture
def buyer(issuer):
    return erp_services.partner_create(
        company=issuer,
        actor=None,
        data={
            "rut": "55555555-5",
            "razon_social": "Pacific Fresh Imports LLC",
            "num_id": "US-EIN 12-3456789",
            "nacionalidad": "225",
            "direccion": "1200 Harbor Blvd",
            "ciudad": "Los Angeles",
        },
    )


def test_the_example_110_is_issued_in_dollars_and_accepted(sii, issuer, buyer, clerk):
    draft = draft_from_file(issuer, 110)
    assert draft.monto_total_moneda == Decimal("43902.25")  # lines + freight + insurance
    assert draft.monto_total == draft.monto_exento == 41_424_846  # × 943,57, in pesos
    assert [line.amount_moneda for line in draft.lines.all()] == [
        Decimal("22140.00"),
        Decimal("11891.75"),
        Decimal("7900.00"),
    ]

    dte = services.dte_issue(document=draft, actor=clerk)

    assert (dte.tipo_dte, dte.folio, dte.monto_total) == (110, 1, 41_424_846)
    report = verify_xml(bytes(dte.xml), sii_keys=services.sii_keys())
    assert report.ok, report.to_dict()
    xml = etree.fromstring(bytes(dte.xml))
    assert xml.findtext(".//d:Totales/d:MntTotal", namespaces=NS) == "43902.25"
    assert xml.findtext(".//d:Receptor/d:Extranjero/d:NumId", namespaces=NS) == (
        "US-EIN 12-3456789"
    )
    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "accepted", list(dte.events.values_list("status", "message"))

    nota = erp_services.sales_document_create(
        company=issuer,
        actor=clerk,
        data={
            "tipo_dte": 112,
            "fecha_emision": draft.fecha_emision,
            "partner": buyer.pk,
            "moneda": "DOLAR USA",
            "tipo_cambio": Decimal("943.57"),
            "lines": [{"name": "Devolución cereza", "quantity": 10, "unit_price": "31.10"}],
            "references": [
                {
                    "tipo_doc_ref": "110",
                    "folio_ref": "1",
                    "fecha_ref": draft.fecha_emision,
                    "cod_ref": 3,
                    "razon_ref": "Devolución",
                }
            ],
        },
    )
    assert nota.monto_total_moneda == Decimal("311.00")
    credit = services.dte_issue(document=nota, actor=clerk)
    run_outbox()
    credit.refresh_from_db()
    assert credit.status == "accepted", list(credit.events.values_list("status", "message"))


def test_the_api_creates_and_issues_a_110(api, issuer, buyer):
    base = f"/api/v1/companies/{issuer.rut}/sales-documents/"
    payload = {
        "tipo_dte": 110,
        "fecha_emision": "2026-11-20",
        "partner": buyer.pk,
        "moneda": "EURO",
        "tipo_cambio": "1021.3",
        "ind_servicio": 3,
        "aduana": {"pais_receptor": 563, "total_bultos": 1, "via_transporte": 4},
        "lines": [{"name": "Asesoría en enología", "quantity": "1", "unit_price": "4500"}],
    }
    created = api.post(base, payload, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["monto_total_moneda"], body["monto_total"]) == ("4500.0000", 4_595_850)
    issued = api.post(f"{base}{body['id']}/issue/")
    assert issued.status_code == 201, issued.json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"moneda": "PESO CL"}, "moneda"),
        ({"tipo_cambio": None}, "tipo_cambio"),
        ({"ind_servicio": 1}, "ind_servicio"),
        ({"aduana": {"puerto_embarque": 99999}}, "aduana.puerto_embarque"),
        ({"partner": "local"}, "partner"),
    ],
)
def test_what_an_export_draft_refuses(issuer, buyer, change, field):
    from tests.factories import PartnerFactory

    data = {
        "tipo_dte": 110,
        "fecha_emision": "2026-11-20",
        "partner": buyer.pk,
        "moneda": "DOLAR USA",
        "tipo_cambio": Decimal("943.57"),
        "lines": [{"name": "Uva", "quantity": 1, "unit_price": 10}],
        **change,
    }
    if data["partner"] == "local":
        data["partner"] = PartnerFactory(company=issuer).pk
    from datetime import date

    data["fecha_emision"] = date(2026, 11, 20)
    with pytest.raises(DomainError) as info:
        erp_services.sales_document_create(company=issuer, actor=None, data=data)
    assert field in info.value.fields, info.value.fields


def test_a_110_missing_its_customs_data_is_stopped_before_its_folio(issuer, buyer, clerk):
    from datetime import date

    draft = erp_services.sales_document_create(
        company=issuer,
        actor=clerk,
        data={
            "tipo_dte": 110,
            "fecha_emision": date(2026, 11, 20),
            "partner": buyer.pk,
            "moneda": "DOLAR USA",
            "tipo_cambio": Decimal("943.57"),
            "lines": [{"name": "Uva", "quantity": 1, "unit_price": 10}],
        },
    )
    with pytest.raises(DomainError) as info:
        services.dte_issue(document=draft, actor=clerk)
    assert "Faltan datos de Aduana: el país receptor, el total de bultos" in info.value.message
    assert not Partner.objects.filter(rut="55555555-5").count() > 1


def test_the_printed_110_is_in_dollars_with_its_pesos_and_customs(issuer, buyer, clerk):
    import io

    from pypdf import PdfReader

    from dte import printing

    dte = services.dte_issue(document=draft_from_file(issuer, 110), actor=clerk)
    pdf = printing.render(dte, format="letter")
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    for expected in (
        "FACTURA DE EXPORTACIÓN ELECTRÓNICA",
        "US$ 22.140,00",
        "TOTAL DOLAR USA US$ 43.902,25",
        "Total en pesos (tipo de cambio 943,57) $ 41.424.846",
        "Cláusula de venta: FOB",
        "Total cláusula: US$ 30.276,00",
        "Flete: US$ 1.850,50",
        "Peso bruto: 25.400,5",
        "Puerto de embarque: SAN ANTONIO",
        "País receptor: U.S.A.",
        "55.555.555-5",
    ):
        assert expected in text, (expected, text)
    assert "COPIA CEDIBLE" not in printing.render(dte, format="letter", cedible=True).decode(
        "latin-1"
    )


def test_the_example_notas_modify_the_example_110_and_the_f29_counts_the_exports(
    sii, issuer, buyer, clerk
):
    from f29 import services as f29_services

    folios = {}
    for tipo in (110, 111, 112):
        dte = services.dte_issue(document=draft_from_file(issuer, tipo), actor=clerk)
        folios[tipo] = (dte.folio, dte.monto_total)
    run_outbox()
    assert folios == {110: (1, 41_424_846), 111: (1, 169_843), 112: (1, 293_450)}
    from datetime import date

    f29 = f29_services.f29_compute(company=issuer, actor=clerk, periodo=date(2026, 11, 1))
    assert f29.box(585) == 1
    assert f29.box(20) == 41_424_846 + 169_843 - 293_450  # pesos at each document's rate


def test_notas_from_a_110_are_112_and_111_in_its_currency(issuer, buyer, clerk):
    from dte import notes

    factura = draft_from_file(issuer, 110)
    services.dte_issue(document=factura, actor=clerk)
    factura.refresh_from_db()
    with pytest.raises(DomainError) as info:
        notes.note_draft(document=factura, actor=clerk, tipo=61, cod_ref=1)
    assert info.value.message == "Elija nota de crédito (112) o nota de débito (111)."

    annul = notes.note_draft(document=factura, actor=clerk, tipo=112, cod_ref=1)
    assert (annul.tipo_dte, annul.moneda) == (112, "DOLAR USA")
    assert annul.monto_total_moneda == factura.monto_total_moneda  # freight and insurance too
    partial = notes.note_draft(document=factura, actor=clerk, tipo=112, cod_ref=3)
    assert partial.monto_total_moneda == Decimal("41931.75")  # the lines, without the freight
    services.dte_issue(document=annul, actor=clerk)
    summary = notes.notes_of(factura)
    assert (summary.credited, summary.remaining) == (Decimal("43902.25"), Decimal("0.00"))
    problems = notes.issue_problems(partial)
    assert problems["monto_total"][0].startswith(
        "La nota de crédito (US$ 41.931,75) excede lo que queda de la factura de exportación "
        "electrónica N° 1: US$ 0,00"
    )
