"""The liquidación-factura (43): the example input through the database, the API and the
command line to the SII sandbox's "accepted", its commissions, its printed copy and its F29
boxes 500/501 (issue 16)."""

import io
import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from lxml import etree
from pypdf import PdfReader

from dte import printing, services
from dte.core.domain import SIIDTE_NS
from dte.core.verify import verify_xml
from erp import services as erp_services
from erp.errors import DomainError
from tests.dte.sii.test_flow import run_outbox
from tests.dte.test_issue import ISSUE_DATA, draft_from_file

pytestmark = pytest.mark.django_db(transaction=True)
NS = {"d": SIIDTE_NS}
# tests/data/issue/43.json, by hand: the liquidated sales 1.500.000 + 500.000 − a returned
# 40.000 (a nota de crédito, so it subtracts) = 1.960.000 net, IVA 372.400; the commission is
# 5 % of the sales, 98.000 (IVA 18.620), and a freight charge 12.000 (IVA 2.280).
NETO, IVA = 1_960_000, 372_400
COMISION_NETO, COMISION_IVA = 110_000, 20_900
TOTAL = NETO + IVA - COMISION_NETO - COMISION_IVA  # 2.201.500


def mandante(company):
    from tests.factories import PartnerFactory

    return PartnerFactory(
        company=company,
        rut="96790240-3",
        razon_social="Distribuidora Los Andes S.A.",
        giro="Venta al por mayor",
        direccion="Av. Apoquindo 4501",
        comuna="Las Condes",
        ciudad="Santiago",
    )


def test_the_example_43_is_stored_with_its_commissions_and_accepted(sii, issuer, clerk):
    mandante(issuer)
    draft = draft_from_file(issuer, 43)
    assert [line.amount for line in draft.lines.all()] == [1_500_000, 500_000, -40_000]
    assert [line.tipo_doc_liq for line in draft.lines.all()] == ["33", "39", "61"]
    assert (draft.monto_neto, draft.iva, draft.monto_exento) == (NETO, IVA, 0)
    assert [(c.tipo_movim, c.tasa, c.neto, c.iva) for c in draft.commissions.all()] == [
        ("C", Decimal("5.00"), 98_000, 18_620),
        ("O", None, 12_000, 2_280),
    ]
    assert (draft.comision_neto, draft.comision_exento, draft.comision_iva) == (
        COMISION_NETO,
        0,
        COMISION_IVA,
    )
    assert draft.monto_total == TOTAL == 2_201_500

    dte = services.dte_issue(document=draft, actor=clerk)

    assert (dte.tipo_dte, dte.folio, dte.monto_total) == (43, 1, TOTAL)
    report = verify_xml(bytes(dte.xml), sii_keys=services.sii_keys())
    assert report.ok, report.to_dict()
    assert report.documents[0].check("totals").detail == "Totales match the detail lines"
    xml = etree.fromstring(bytes(dte.xml))
    liquidacion = xml.find("d:Liquidacion", NS)
    assert liquidacion is not None
    assert [e.text for e in liquidacion.iterfind("d:Detalle/d:TpoDocLiq", NS)] == [
        "33",
        "39",
        "61",
    ]
    assert liquidacion.findtext("d:Detalle[3]/d:MontoItem", namespaces=NS) == "-40000"
    totales = liquidacion.find("d:Encabezado/d:Totales", NS)
    assert totales.findtext("d:Comisiones/d:ValComNeto", namespaces=NS) == "110000"
    assert totales.findtext("d:Comisiones/d:ValComIVA", namespaces=NS) == "20900"
    assert totales.findtext("d:MntTotal", namespaces=NS) == "2201500"
    assert [e.text for e in liquidacion.iterfind("d:Comisiones/d:TipoMovim", NS)] == ["C", "O"]
    assert liquidacion.findtext("d:TED/d:DD/d:MNT", namespaces=NS) == "2201500"
    assert liquidacion.findtext("d:TED/d:DD/d:RR", namespaces=NS) == "96790240-3"

    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "accepted", list(dte.events.values_list("status", "message"))


def test_the_f29_declares_the_commission_iva_in_500_501(sii, issuer, clerk):
    from f29 import services as f29_services

    mandante(issuer)
    dte = services.dte_issue(document=draft_from_file(issuer, 43), actor=clerk)
    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "accepted"
    f29 = f29_services.f29_compute(company=issuer, actor=clerk, periodo=date(2026, 11, 1))
    assert (f29.box(500), f29.box(501)) == (1, COMISION_IVA)
    # the sales it liquidates are the mandante's débito, not ours
    assert f29.box(502) == 0 and f29.box(538) == COMISION_IVA
    assert f29.box(563) == COMISION_NETO


def test_the_api_creates_and_issues_a_43(api, issuer):
    mandante(issuer)
    base = f"/api/v1/companies/{issuer.rut}/sales-documents/"
    payload = json.loads((ISSUE_DATA / "43.json").read_text(encoding="utf-8"))
    created = api.post(base, payload, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["monto_total"], body["comision_iva"]) == (TOTAL, COMISION_IVA)
    assert [c["neto"] for c in body["commissions"]] == [98_000, 12_000]
    assert [ln["tipo_doc_liq"] for ln in body["lines"]] == ["33", "39", "61"]
    issued = api.post(f"{base}{body['id']}/issue/")
    assert issued.status_code == 201, issued.json()

    wrong = {**payload, "commissions": [{"glosa": "Sin monto"}]}
    refused = api.post(base, wrong, format="json")
    assert refused.status_code == 400
    assert "commissions.0.neto" in json.dumps(refused.json()), refused.json()


def test_the_command_line_issues_the_example_43(issuer, clerk, tmp_path, capsys):
    mandante(issuer)
    call_command(
        "issue",
        "--company",
        issuer.rut,
        "--file",
        str(ISSUE_DATA / "43.json"),
        "--out",
        str(tmp_path),
    )
    written = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.startswith("DTE--76086428-5--43--") for name in written), written
    signed = next(p for p in tmp_path.iterdir() if "--43--" in p.name and p.suffix == ".xml")
    assert verify_xml(signed.read_bytes(), sii_keys=services.sii_keys()).ok


BASE = {
    "tipo_dte": 43,
    "fecha_emision": date(2026, 11, 30),
    "lines": [{"tipo_doc_liq": "33", "name": "Ventas", "quantity": 1, "unit_price": 1000}],
    "commissions": [{"glosa": "Comisión", "neto": 100}],
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"commissions": []}, "commissions"),
        ({"commissions": [{"glosa": "", "neto": 1}]}, "commissions.0.glosa"),
        ({"commissions": [{"glosa": "X", "tasa": "101"}]}, "commissions.0.tasa"),
        ({"commissions": [{"glosa": "X", "neto": "1,5"}]}, "commissions.0.neto"),
        (
            {"commissions": [{"glosa": "X", "neto": 1, "tipo_movim": "Z"}]},
            "commissions.0.tipo_movim",
        ),
        ({"lines": [{"name": "Ventas", "quantity": 1, "unit_price": 1}]}, "lines.0.tipo_doc_liq"),
        (
            {"lines": [{"tipo_doc_liq": "7", "name": "V", "quantity": 1, "unit_price": 1}]},
            "lines.0.tipo_doc_liq",
        ),
        (
            {
                "lines": [
                    {
                        "tipo_doc_liq": "33",
                        "name": "V",
                        "quantity": 1,
                        "unit_price": 1,
                        "discount_pct": 5,
                    }
                ]
            },
            "lines.0.discount_pct",
        ),
        ({"global_discount_type": "%", "global_discount_value": 5}, "global_discount_value"),
        (
            {"lines": [{"tipo_doc_liq": "61", "name": "V", "quantity": 1, "unit_price": 1000}]},
            "lines",
        ),
        ({"commissions": [{"glosa": "X", "neto": -500}]}, "commissions"),
        ({"partner": None}, "partner"),
    ],
)
def test_what_a_43_draft_refuses(issuer, change, field):
    partner = mandante(issuer)
    data = {**BASE, "partner": partner.pk, **change}
    with pytest.raises(DomainError) as info:
        erp_services.sales_document_create(company=issuer, actor=None, data=data)
    assert field in info.value.fields, info.value.fields


def test_other_types_carry_no_commissions_or_liquidated_types(issuer):
    partner = mandante(issuer)
    data = {
        "tipo_dte": 33,
        "fecha_emision": date(2026, 11, 30),
        "partner": partner.pk,
        "lines": [{"tipo_doc_liq": "33", "name": "Venta", "quantity": 1, "unit_price": 1000}],
        "commissions": [{"glosa": "Comisión", "neto": 100}],
    }
    with pytest.raises(DomainError) as info:
        erp_services.sales_document_create(company=issuer, actor=None, data=data)
    assert {"commissions", "lines.0.tipo_doc_liq"} <= set(info.value.fields)


def test_a_43_changed_into_a_factura_drops_its_commissions(issuer):
    partner = mandante(issuer)
    draft = erp_services.sales_document_create(
        company=issuer, actor=None, data={**BASE, "partner": partner.pk}
    )
    assert draft.commissions.count() == 1 and draft.monto_total == 1000 + 190 - 100 - 19
    factura = erp_services.sales_document_update(
        document=draft,
        actor=None,
        data={
            "tipo_dte": 33,
            "commissions": [],
            "lines": [{"name": "Venta", "quantity": 1, "unit_price": 1000}],
        },
    )
    assert factura.commissions.count() == 0
    assert (factura.comision_neto, factura.comision_iva, factura.monto_total) == (0, 0, 1190)


def test_the_printed_43_shows_the_liquidated_documents_and_the_commissions(issuer, clerk):
    mandante(issuer)
    dte = services.dte_issue(document=draft_from_file(issuer, 43), actor=clerk)
    pdf = printing.render(dte, format="letter")
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    for expected in (
        "LIQUIDACIÓN FACTURA ELECTRÓNICA",
        "Distribuidora Los Andes S.A.",
        "-$ 40.000",
        "Comisión 5 % sobre ventas netas",
        "$ 98.000",
        "Comisiones neto -$ 110.000",
        "IVA comisiones -$ 20.900",
        "TOTAL $ 2.201.500",
    ):
        assert expected in text, (expected, text)
    cedible = printing.render(dte, format="letter", cedible=True)
    cedible_text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(cedible)).pages)
    assert "CEDIBLE" in cedible_text


def _form(partner, **extra):
    return {
        "tipo_dte": "43",
        "fecha_emision": "30-11-2026",
        "forma_pago": "2",
        "partner": str(partner.pk),
        "global_discount_value": "",
        "global_surcharge_value": "",
        "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "0",
        "lines-0-tipo_doc_liq": "33",
        "lines-0-name": "Ventas con factura, noviembre",
        "lines-0-quantity": "1",
        "lines-0-unit_price": "1.500.000",
        "lines-1-tipo_doc_liq": "61",
        "lines-1-name": "Devolución",
        "lines-1-quantity": "1",
        "lines-1-unit_price": "40.000",
        "refs-TOTAL_FORMS": "0",
        "refs-INITIAL_FORMS": "0",
        "commissions-TOTAL_FORMS": "1",
        "commissions-INITIAL_FORMS": "0",
        "commissions-0-tipo_movim": "C",
        "commissions-0-glosa": "Comisión 5 %",
        "commissions-0-tasa": "5",
        "commissions-0-neto": "",
        "commissions-0-exento": "",
        **extra,
    }


def test_the_web_form_drafts_and_issues_a_43_with_its_commissions(client, issuer, clerk):
    from django.urls import reverse

    from erp.models import SalesDocument

    partner = mandante(issuer)
    client.force_login(clerk)
    page = client.get(reverse("erp:document_create")).content.decode()
    assert 'id="liquidacion-fields"' in page and "99 · Anticipos y otras operaciones" in page

    preview = client.post(reverse("erp:document_preview"), _form(partner)).json()
    assert preview["ok"], preview
    # 1.460.000 net, IVA 277.400; commission 5 % = 73.000 with IVA 13.870
    assert preview["lines"] == ["$ 1.500.000", "-$ 40.000"]
    assert preview["totals"]["comisiones"] == "−$ 86.870"
    assert preview["totals"]["monto_total"] == "$ 1.650.530"

    response = client.post(reverse("erp:document_create"), _form(partner))
    assert response.status_code == 302, response.content.decode()[:3000]
    draft = SalesDocument.objects.get(tipo_dte=43)
    assert (draft.comision_neto, draft.comision_iva, draft.monto_total) == (
        73_000,
        13_870,
        1_650_530,
    )
    detail = client.get(reverse("erp:document_detail", args=[draft.pk])).content.decode()
    assert "61 · Nota de crédito electrónica" in detail and "Comisión 5 %" in detail
    assert "−$ 13.870" in detail

    edit = client.get(reverse("erp:document_edit", args=[draft.pk])).content.decode()
    assert 'class="card is-liquidacion"' in edit and 'value="Comisión 5 %"' in edit

    refused = client.post(
        reverse("erp:document_edit", args=[draft.pk]),
        _form(partner, **{"commissions-0-tasa": "", "lines-0-tipo_doc_liq": ""}),
    )
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "Indique el tipo del documento liquidado" in text
    assert "Indique el monto neto de la comisión" in text

    issued = client.post(reverse("dte:issue", args=[draft.pk]))
    assert issued.status_code == 302
    draft.refresh_from_db()
    assert draft.state == "issued" and draft.dte.tipo_dte == 43
