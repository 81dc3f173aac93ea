"""The F29 through the REST API: the purchase book (field-level 400s, the lock of a filed
period and its reopening), RCV imports, the proposal with its trail and documents, the
reconciliation (JSON and CSV) and who may do what."""

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import TestCase

from dte import services as dte_services
from dte.models import Dte
from erp import services as erp_services
from erp.models import ClosedPeriod, PurchaseDocument, Role, SalesDocument
from f29.models import F29Return, RcvEntry, RcvImport
from tests.factories import MembershipFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db

RCV = Path(__file__).resolve().parents[1] / "data" / "rcv"
BASE = "/api/v1/companies/76086428-5"
PURCHASES = f"{BASE}/purchase-documents/"
SALES = f"{BASE}/sales-documents/"
IMPORTS = f"{BASE}/rcv-imports/"
OCTOBER = f"{BASE}/f29/2026-10/"


@pytest.fixture
def accountant(company):
    user = UserFactory()
    MembershipFactory(user=user, company=company, role=Role.ACCOUNTANT)
    return user


@pytest.fixture
def supplier(company):
    return PartnerFactory(
        company=company, rut="76354771-K", razon_social="Distribuidora Los Andes SpA"
    )


@pytest.fixture
def customer(company):
    return PartnerFactory(company=company, rut="96790240-3", razon_social="Andina Ltda.")


def purchase(supplier, **overrides) -> dict:
    return {
        "tipo_doc": 33,
        "folio": 1001,
        "partner": supplier.rut,
        "fecha": "2026-10-05",
        "monto_neto": 100000,
        "iva_recuperable": 19000,
        **overrides,
    }


def sales_draft(customer, **overrides) -> dict:
    return {
        "tipo_dte": 33,
        "fecha_emision": "2026-10-20",
        "partner": customer.pk,
        "lines": [{"name": "Consultoría", "quantity": "1", "unit_price": "50000"}],
        **overrides,
    }


class Uploaded:
    """The POST's answer (202, the import queued); json() is the import once its task ran."""

    def __init__(self, client, posted):
        self.posted, self.status_code = posted, posted.status_code
        self._final = None
        if posted.status_code == 202:
            self._final = client.get(posted["Location"])

    def json(self):
        return self._final.json() if self._final is not None else self.posted.json()


def post_import(client, data):
    """POST an import and run what its commit started (the task, in this thread: no broker)."""
    with TestCase.captureOnCommitCallbacks(execute=True) as callbacks:
        posted = client.post(IMPORTS, data, format="multipart")
    if posted.status_code == 202:
        assert callbacks, "the import's task was not started after the commit"
        queued = posted.json()
        assert (queued["status"], queued["finished"], queued["created"]) == ("queued", False, 0)
    return Uploaded(client, posted)


def upload(client, name: str, kind: str = "compras", **extra):
    with (RCV / name).open("rb") as handle:
        return post_import(client, {"file": handle, "kind": kind, **extra})


# ---------------------------------------------------------------- purchase documents


def test_purchase_crud_computes_total_and_period(api_for, clerk, supplier):
    api = api_for(clerk)
    created = api.post(PURCHASES, purchase(supplier), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["monto_total"], body["periodo"], body["rut_emisor"]) == (
        119000,
        "2026-10-01",
        "76354771-K",
    )
    assert body["source"] == "manual" and body["created_by"] == clerk.username
    pk = body["id"]
    assert api.get(f"{PURCHASES}{pk}/").json()["folio"] == 1001

    patched = api.patch(
        f"{PURCHASES}{pk}/",
        {"monto_neto": 200000, "iva_recuperable": 38000, "notes": "corregida"},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["monto_total"], patched.json()["notes"]) == (238000, "corregida")
    listed = api.get(f"{PURCHASES}?periodo=2026-10-01").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == pk

    assert api.delete(f"{PURCHASES}{pk}/").status_code == 204
    assert not PurchaseDocument.objects.exists()


def test_purchase_partner_by_id_or_rut_with_dots(api_for, clerk, supplier):
    api = api_for(clerk)
    by_id = api.post(PURCHASES, purchase(supplier, partner=supplier.pk), format="json")
    assert by_id.status_code == 201 and by_id.json()["partner"] == supplier.pk
    dotted = api.post(
        PURCHASES, purchase(supplier, folio=1002, partner="76.354.771-k"), format="json"
    )
    assert dotted.status_code == 201, dotted.json()
    assert dotted.json()["partner"] == supplier.pk


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"partner": "76.354.771-9"}, "partner", "Proveedor desconocido"),  # bad check digit
        ({"partner": "11111111-1"}, "partner", "Proveedor desconocido"),  # nobody we know
        ({"monto_total": 120000}, "monto_total", "119000"),  # 100.000 + 19.000
        ({"iva_no_recuperable": 5000}, "codigo_iva_no_rec", "no es recuperable"),
        ({"codigo_iva_no_rec": "7", "iva_no_recuperable": 10}, "codigo_iva_no_rec", "7"),
        ({"codigo_iva_no_rec": "1"}, "iva_no_recuperable", "Falta el monto"),
        ({"tipo_doc": 39}, "tipo_doc", ""),  # boletas do not enter the purchase book
        ({"folio": 0}, "folio", "mayor que cero"),
        ({"monto_neto": -1}, "monto_neto", "negativo"),
        ({"fecha": "05-10-2026"}, "fecha", ""),  # the API speaks ISO dates
        ({"tipo_doc": 34, "monto_exento": 50000}, "monto_neto", "exento"),
        ({"periodo": "2026-09-01"}, "periodo", "anterior"),
    ],
)
def test_purchase_field_errors(api_for, clerk, supplier, overrides, field, fragment):
    response = api_for(clerk).post(PURCHASES, purchase(supplier, **overrides), format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "invalid_input" and body["message"]
    assert field in body["fields"], body
    assert fragment in " ".join(body["fields"][field])
    assert not PurchaseDocument.objects.exists()


def test_purchase_duplicate_type_folio_supplier(api_for, clerk, supplier, company):
    api = api_for(clerk)
    assert api.post(PURCHASES, purchase(supplier), format="json").status_code == 201
    again = api.post(PURCHASES, purchase(supplier, partner=supplier.pk), format="json")
    assert again.status_code == 400
    assert again.json()["code"] == "duplicate_document"
    assert "folio" in again.json()["fields"]
    # Same folio from another supplier, or another type from the same one, is another document.
    other = PartnerFactory(company=company, rut="76981123-0")
    assert api.post(PURCHASES, purchase(other), format="json").status_code == 201
    nota = purchase(supplier, tipo_doc=61)
    assert api.post(PURCHASES, nota, format="json").status_code == 201
    # A PATCH that makes one document clash with another is refused the same way.
    pk = api.post(PURCHASES, purchase(supplier, folio=1003), format="json").json()["id"]
    clash = api.patch(f"{PURCHASES}{pk}/", {"folio": 1001}, format="json")
    assert clash.status_code == 400 and clash.json()["code"] == "duplicate_document"
    assert PurchaseDocument.objects.get(pk=pk).folio == 1003


def test_purchase_of_another_company_is_not_found(api_for, clerk, outsider, supplier):
    pk = api_for(clerk).post(PURCHASES, purchase(supplier), format="json").json()["id"]
    intruder = api_for(outsider)
    assert intruder.get(f"{PURCHASES}{pk}/").status_code == 404
    theirs = "/api/v1/companies/77879240-0/purchase-documents/"
    assert intruder.get(f"{theirs}{pk}/").status_code == 404


def test_viewer_reads_purchases_but_cannot_write(api_for, viewer, supplier):
    api = api_for(viewer)
    assert api.get(PURCHASES).status_code == 200
    refused = api.post(PURCHASES, purchase(supplier), format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"


# ---------------------------------------------------------------- the period lock


def _file_october(api) -> dict:
    assert api.post(f"{OCTOBER}compute/", {}, format="json").status_code == 200
    assert api.post(f"{OCTOBER}review/", {}, format="json").status_code == 200
    filed = api.post(f"{OCTOBER}file/", {"folio_sii": "8812345"}, format="json")
    assert filed.status_code == 200, filed.json()
    return filed.json()


def test_filing_locks_october_and_reopening_unlocks_it(
    api_for, admin_user, supplier, customer, company
):
    api = api_for(admin_user)
    bought = api.post(PURCHASES, purchase(supplier), format="json").json()
    sold = api.post(SALES, sales_draft(customer), format="json")
    assert sold.status_code == 201, sold.json()
    sold = sold.json()
    november = api.post(
        PURCHASES, purchase(supplier, folio=2001, fecha="2026-11-03"), format="json"
    ).json()

    filed = _file_october(api)
    assert filed["state"] == "filed" and filed["folio_sii"] == "8812345"
    assert ClosedPeriod.objects.filter(company=company, periodo=date(2026, 10, 1)).exists()

    def closed(response, field):
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "period_closed" and "10-2026" in body["message"]
        assert field in body["fields"]

    closed(api.post(PURCHASES, purchase(supplier, folio=1500), format="json"), "periodo")
    closed(api.patch(f"{PURCHASES}{bought['id']}/", {"notes": "x"}, format="json"), "periodo")
    closed(api.delete(f"{PURCHASES}{bought['id']}/"), "periodo")
    # Declaring a late September invoice in October, or moving November's into October.
    late = purchase(supplier, folio=1501, fecha="2026-09-28", periodo="2026-10-01")
    closed(api.post(PURCHASES, late, format="json"), "periodo")
    move = {"periodo": "2026-10-01", "fecha": "2026-10-30"}
    closed(api.patch(f"{PURCHASES}{november['id']}/", move, format="json"), "periodo")
    closed(api.post(SALES, sales_draft(customer), format="json"), "fecha_emision")
    closed(api.patch(f"{SALES}{sold['id']}/", {"notes": "x"}, format="json"), "fecha_emision")
    closed(api.delete(f"{SALES}{sold['id']}/"), "fecha_emision")
    # Nothing changed, and November stays open.
    assert PurchaseDocument.objects.get(pk=bought["id"]).notes == ""
    assert SalesDocument.objects.filter(pk=sold["id"]).exists()
    assert PurchaseDocument.objects.get(pk=november["id"]).periodo == date(2026, 11, 1)
    nov = api.post(PURCHASES, purchase(supplier, folio=2002, fecha="2026-11-04"), format="json")
    assert nov.status_code == 201
    # A filed period is not recomputed nor reviewed again.
    recompute = api.post(f"{OCTOBER}compute/", {}, format="json")
    assert recompute.status_code == 400 and recompute.json()["code"] == "f29_not_draft"
    review = api.post(f"{OCTOBER}review/", {}, format="json")
    assert review.status_code == 400 and review.json()["code"] == "f29_not_draft"
    assert "reabrirlo" in review.json()["message"]

    # Reopening needs a reason.
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        refused = api.post(f"{OCTOBER}reopen/", body, format="json")
        assert refused.status_code == 400 and "reason" in refused.json()["fields"]
    assert F29Return.objects.get(company=company).state == "filed"
    reopened = api.post(
        f"{OCTOBER}reopen/", {"reason": "Factura de proveedor recibida tarde"}, format="json"
    )
    assert reopened.status_code == 200, reopened.json()
    body = reopened.json()
    assert body["state"] == "draft"
    assert body["events"][0] == {
        "action": "reopened",
        "actor": admin_user.username,
        "reason": "Factura de proveedor recibida tarde",
        "at": body["events"][0]["at"],
    }
    assert [e["action"] for e in body["events"]] == ["reopened", "filed", "reviewed", "computed"]
    assert body["events"][1]["reason"] == "Folio SII 8812345"
    assert api.get(OCTOBER).json()["events"][0]["reason"] == "Factura de proveedor recibida tarde"

    # Open again: the same writes go through.
    patched = api.patch(f"{PURCHASES}{bought['id']}/", {"notes": "x"}, format="json")
    assert patched.status_code == 200 and patched.json()["notes"] == "x"
    again = api.patch(f"{SALES}{sold['id']}/", {"notes": "x"}, format="json")
    assert again.status_code == 200
    assert api.post(PURCHASES, purchase(supplier, folio=1500), format="json").status_code == 201
    assert api.delete(f"{SALES}{sold['id']}/").status_code == 204
    assert api.delete(f"{PURCHASES}{bought['id']}/").status_code == 204
    assert api.post(f"{OCTOBER}compute/", {}, format="json").status_code == 200


# ---------------------------------------------------------------- RCV imports


def test_rcv_import_counts_and_is_idempotent(api_for, clerk, company):
    api = api_for(clerk)
    first = upload(api, "compras_registro_2026-10.csv")
    assert first.status_code == 202, first.json()
    body = first.json()
    assert (body["kind"], body["estado"], body["filename"]) == (
        "compras",
        "registro",
        "compras_registro_2026-10.csv",
    )
    assert (body["created"], body["updated"], body["unchanged"], body["rejected"]) == (11, 0, 0, 0)
    assert (body["purchases_created"], body["partners_created"]) == (11, 9)
    assert body["actor"] == clerk.username and body["periodo"] is None
    assert len(body["sha256"]) == 64 and "file" not in body
    assert PurchaseDocument.objects.filter(company=company, source="rcv").count() == 11

    again = upload(api, "compras_registro_2026-10.csv")
    assert again.status_code == 202
    body = again.json()
    assert (body["created"], body["updated"], body["unchanged"], body["rejected"]) == (0, 0, 11, 0)
    assert (body["purchases_created"], body["purchases_updated"], body["partners_created"]) == (
        0,
        0,
        0,
    )
    assert RcvEntry.objects.filter(company=company).count() == 11
    assert PurchaseDocument.objects.filter(company=company).count() == 11
    assert body["sha256"] == first.json()["sha256"]

    listed = api.get(IMPORTS).json()
    assert listed["count"] == 2 and [r["id"] for r in listed["results"]] == [
        body["id"],
        first.json()["id"],
    ]


def with_cell(content: bytes, folio: int, column: str, value: str) -> bytes:
    """The RCV file with one cell of the row of `folio` changed."""
    lines = content.decode().split("\n")
    header = lines[0].split(";")
    for i, line in enumerate(lines):
        cells = line.split(";")
        if len(cells) > 5 and cells[5] == str(folio):
            cells[header.index(column)] = value
            lines[i] = ";".join(cells)
    return "\n".join(lines).encode()


def test_notes_patch_keeps_the_total_of_an_imported_purchase(api_for, clerk, company):
    content = (RCV / "compras_registro_2026-10.csv").read_bytes()
    content = with_cell(content, 88123, "Impto. Sin Derecho a Credito", "5000")
    content = with_cell(content, 88123, "Monto Total", "540500")
    api = api_for(clerk)
    response = post_import(api, {"file": io.BytesIO(content), "kind": "compras"})
    assert response.status_code == 202, response.json()
    doc = PurchaseDocument.objects.get(company=company, folio=88123)
    assert doc.monto_total == 540500  # as the SII has it
    patched = api.patch(f"{PURCHASES}{doc.pk}/", {"notes": "revisar"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["monto_total"] == 540500


def test_rcv_import_latin1_file_is_the_same_data(api_for, clerk):
    api = api_for(clerk)
    assert upload(api, "compras_registro_2026-10.csv").json()["created"] == 11
    latin1 = upload(api, "compras_registro_2026-10_latin1.csv").json()
    assert (latin1["created"], latin1["updated"], latin1["unchanged"]) == (0, 0, 11)


def test_rcv_import_reports_rejected_rows(api_for, clerk):
    response = upload(api_for(clerk), "compras_registro_filas_malas.csv")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["rejected"] == 2 and body["created"] == 2
    by_line = {r["line"]: r for r in body["rejected_rows"]}
    assert set(by_line) == {3, 4}
    assert "RUT" in by_line[3]["reason"] and by_line[3]["folio"] == 10461
    assert "Fecha Docto" in by_line[4]["reason"]


def test_rcv_import_ventas_and_estado_and_period(api_for, clerk, company):
    api = api_for(clerk)
    ventas = upload(api, "ventas_2026-10.csv", kind="ventas")
    assert ventas.status_code == 202, ventas.json()
    assert ventas.json()["kind"] == "ventas" and ventas.json()["created"] > 0
    assert not PurchaseDocument.objects.exists()  # sales do not enter the purchase book
    pending = upload(api, "compras_pendiente_2026-10.csv", estado="pendiente", periodo="2026-11")
    assert pending.status_code == 202, pending.json()
    assert pending.json()["estado"] == "pendiente" and pending.json()["periodo"] == "2026-11"
    assert set(
        RcvEntry.objects.filter(company=company, kind="compras").values_list("periodo", flat=True)
    ) == {date(2026, 11, 1)}


@pytest.mark.parametrize(
    "name", ["basura_binaria.csv", "compras_encabezado_incorrecto.csv", "ventas_2026-10.csv"]
)
def test_malformed_rcv_file_is_a_400_under_file_and_writes_nothing(api_for, clerk, name):
    # ventas_2026-10.csv sent as compras: the columns are not the purchase register's.
    response = upload(api_for(clerk), name)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "rcv_invalid" and body["message"]
    assert body["fields"]["file"] and "\n" not in body["fields"]["file"][0]
    assert not RcvImport.objects.exists() and not RcvEntry.objects.exists()
    assert not PurchaseDocument.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "otros"}, "kind"),
        ({"kind": "compras", "periodo": "2026-13"}, "periodo"),
        ({"kind": "compras", "estado": "aceptado"}, "estado"),
        ({}, "kind"),
    ],
)
def test_rcv_import_bad_arguments(api_for, clerk, data, field):
    with (RCV / "compras_registro_2026-10.csv").open("rb") as handle:
        response = api_for(clerk).post(IMPORTS, {"file": handle, **data}, format="multipart")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert not RcvImport.objects.exists()


def test_rcv_import_without_file(api_for, clerk):
    response = api_for(clerk).post(IMPORTS, {"kind": "compras"}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["fields"]


def test_viewer_cannot_import(api_for, viewer):
    api = api_for(viewer)
    assert upload(api, "compras_registro_2026-10.csv").status_code == 403
    assert api.get(IMPORTS).status_code == 200
    assert not RcvImport.objects.exists()


# ---------------------------------------------------------------- the proposal


def _issue(company, partner, tipo, day, net):
    draft = erp_services.sales_document_create(
        company=company,
        actor=None,
        data={
            "tipo_dte": tipo,
            "fecha_emision": date(2026, 10, day),
            "partner": partner.pk,
            "lines": [{"name": "Servicio", "quantity": Decimal(1), "unit_price": Decimal(net)}],
        },
    )
    dte = dte_services.dte_issue(document=draft, actor=None)
    Dte.objects.filter(pk=dte.pk).update(status="accepted")
    return dte


@pytest.fixture
def books(issuer, api_for, admin_user, supplier, customer):
    """October: two accepted facturas (100.000 + 50.000 net), one still waiting for the SII;
    purchases: a factura del giro (200.000 net), a machine (1.000.000 net, activo fijo) and one
    only "pendiente" in the RCV (no credit)."""
    _issue(issuer, customer, 33, 3, 100000)
    _issue(issuer, customer, 33, 10, 50000)
    draft = erp_services.sales_document_create(
        company=issuer,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 10, 12),
            "partner": customer.pk,
            "lines": [{"name": "Espera", "quantity": Decimal(1), "unit_price": Decimal(70000)}],
        },
    )
    dte_services.dte_issue(document=draft, actor=None)  # no verdict yet: not in the F29
    api = api_for(admin_user)
    for payload in (
        purchase(supplier, folio=501, monto_neto=200000, iva_recuperable=38000),
        purchase(
            supplier, folio=502, monto_neto=1000000, iva_recuperable=190000, is_fixed_asset=True
        ),
        purchase(supplier, folio=503, monto_neto=10000, iva_recuperable=1900, estado="pendiente"),
    ):
        response = api.post(PURCHASES, payload, format="json")
        assert response.status_code == 201, response.json()
    return issuer


def test_compute_then_retrieve_shows_boxes_and_trail(api_for, clerk, books):
    api = api_for(clerk)
    assert api.get(OCTOBER).status_code == 404  # not computed yet
    computed = api.post(f"{OCTOBER}compute/", {"ppm_rate": "1.5"}, format="json")
    assert computed.status_code == 200, computed.json()
    body = api.get(OCTOBER).json()
    assert body == computed.json()
    assert (body["period"], body["state"], body["state_label"]) == ("2026-10", "draft", "Borrador")
    boxes = body["boxes"]
    expected = {
        "503": 2,
        "502": 28500,
        "538": 28500,
        "519": 1,
        "520": 38000,
        "524": 1,
        "525": 190000,
        "537": 228000,
        "77": 228000 - 28500,
        "89": 0,
        "563": 150000,
        "62": 2250,
        "91": 2250,
    }
    assert {k: boxes[k] for k in expected} == expected
    assert Decimal(boxes["115"]) == Decimal("1.5")
    assert Decimal(body["ppm_rate"]) == Decimal("1.5")
    trail = body["trail"]
    assert "_inputs" not in trail and set(trail) <= set(boxes)
    assert trail["520"]["label"] == "Crédito facturas recibidas del giro"
    assert trail["520"]["section"] == "Créditos"
    assert trail["538"]["inputs"] == [502, 111, 513, 501, 510] and trail["538"]["formula"]
    part = next(p for p in trail["520"]["parts"] if p["field"] == "iva_recuperable")
    assert (part["count"], part["amount"], part["fixed_asset"]) == (1, 38000, False)
    assert [e["action"] for e in body["events"]] == ["computed"]
    assert body["events"][0]["actor"] == clerk.username

    listed = api.get(f"{BASE}/f29/").json()
    assert listed["count"] == 1 and listed["results"][0]["period"] == "2026-10"

    # Recomputing keeps the rate unless told otherwise; the remanente can be set by hand.
    again = api.post(f"{OCTOBER}compute/", {"remanente": 1000}, format="json").json()
    assert again["boxes"]["504"] == 1000 and again["boxes"]["537"] == 229000
    assert Decimal(again["boxes"]["115"]) == Decimal("1.5")


@pytest.mark.parametrize(
    "payload",
    [{"ppm_rate": "-1"}, {"ppm_rate": "abc"}, {"remanente": -5}, {"uso_comun_factor": "1.5"}],
)
def test_compute_bad_options_are_400(api_for, clerk, company, payload):
    response = api_for(clerk).post(f"{OCTOBER}compute/", payload, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == set(payload)
    assert not F29Return.objects.exists()


def test_box_lists_the_documents_behind_it(api_for, viewer, clerk, books, supplier):
    assert api_for(clerk).post(f"{OCTOBER}compute/", {}, format="json").status_code == 200
    api = api_for(viewer)  # reading needs no more than viewing
    box = api.get(f"{OCTOBER}boxes/520/")
    assert box.status_code == 200, box.json()
    body = box.json()
    assert (body["code"], body["value"]) == (520, 38000)
    docs = [d for part in body["parts"] for d in part["documents"]]
    assert {(d["tipo"], d["folio"], d["rut"]) for d in docs} == {(33, 501, supplier.rut)}
    recoverable = next(p for p in body["parts"] if p["field"] == "iva_recuperable")
    assert recoverable["documents"][0]["iva_recuperable"] == 38000
    assert recoverable["documents"][0]["fecha"] == "2026-10-05"

    machine = api.get(f"{OCTOBER}boxes/525/").json()
    assert [d["folio"] for p in machine["parts"] for d in p["documents"]] == [502] * len(
        machine["parts"]
    )
    debits = api.get(f"{OCTOBER}boxes/502/").json()
    sold = sorted(d["monto_neto"] for p in debits["parts"] for d in p["documents"])
    assert sold == [50000, 100000] and debits["value"] == 28500
    derived = api.get(f"{OCTOBER}boxes/538/").json()
    assert derived["formula"] and derived["inputs"] == [502, 111, 513, 501, 510]


def test_unknown_box_is_not_found(api_for, clerk, company):
    api = api_for(clerk)
    api.post(f"{OCTOBER}compute/", {}, format="json")
    response = api.get(f"{OCTOBER}boxes/999/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert api.get(f"{BASE}/f29/2026-09/boxes/520/").status_code == 404


def test_bad_period_in_url(api_for, clerk, company):
    api = api_for(clerk)
    response = api.post(f"{BASE}/f29/2026-13/compute/", {}, format="json")
    assert response.status_code == 400 and "period" in response.json()["fields"]
    assert not F29Return.objects.exists()


# ---------------------------------------------------------------- reconciliation


@pytest.fixture
def reconciled(api_for, clerk, company):
    """The purchase book filled from the SII's registro file, then: one amount changed by hand,
    one purchase the SII does not have, and the SII saying one was claimed."""
    api = api_for(clerk)
    assert upload(api, "compras_registro_2026-10.csv").status_code == 202
    PurchaseDocument.objects.filter(company=company, folio=55021).update(
        monto_neto=999999, source="manual"
    )
    supplier = PurchaseDocument.objects.get(company=company, folio=88123).partner
    extra = purchase(supplier, folio=999, fecha="2026-10-30", monto_neto=1000, iva_recuperable=190)
    assert api.post(PURCHASES, extra, format="json").status_code == 201
    RcvEntry.objects.filter(company=company, folio=88123).update(estado="reclamado")
    return api


def test_reconciliation_summary_and_lines(reconciled):
    response = reconciled.get(f"{OCTOBER}reconciliation/?kind=compras")
    assert response.status_code == 200, response.json()
    body = response.json()["results"]
    assert (body["period"], body["kind"], body["rcv_imported"]) == ("2026-10", "compras", True)
    counts = {c: t["count"] for c, t in body["summary"].items()}
    assert counts == {
        "matched": 9,
        "only_books": 1,
        "only_rcv": 0,
        "amounts_differ": 1,
        "state_differs": 1,
    }
    assert body["summary"]["only_books"] == {"count": 1, "books_total": 1190, "rcv_total": 0}
    assert response.json()["count"] == 12 and len(body["lines"]) == 12
    by_folio = {line["folio"]: line for line in body["lines"]}
    assert by_folio[55021]["category"] == "amounts_differ"
    assert by_folio[55021]["differences"] == ["monto_neto"]
    assert by_folio[55021]["books"]["monto_neto"] == 999999
    assert by_folio[55021]["rcv"]["monto_neto"] == 1000000
    assert by_folio[999]["rcv"] is None and by_folio[999]["books"]["monto_total"] == 1190
    assert by_folio[88123]["differences"] == ["estado"]

    only = reconciled.get(f"{OCTOBER}reconciliation/?kind=compras&category=amounts_differ")
    assert [line["folio"] for line in only.json()["results"]["lines"]] == [55021]
    bad = reconciled.get(f"{OCTOBER}reconciliation/?kind=compras&category=todo")
    assert bad.status_code == 400 and "category" in bad.json()["fields"]
    wrong_kind = reconciled.get(f"{OCTOBER}reconciliation/?kind=boletas")
    assert wrong_kind.status_code == 400 and "kind" in wrong_kind.json()["fields"]

    ventas = reconciled.get(f"{OCTOBER}reconciliation/?kind=ventas").json()["results"]
    assert ventas["rcv_imported"] is False and ventas["lines"] == []


def test_reconciliation_csv(reconciled):
    response = reconciled.get(
        f"{OCTOBER}reconciliation/?kind=compras&category=only_books&format=csv"
    )
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/csv")
    assert "conciliacion-compras-2026-10.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8")), delimiter=";"))
    assert rows[0][:4] == ["categoria", "tipo", "folio", "rut"]
    assert len(rows) == 2 and rows[1][:3] == ["only_books", "33", "999"]
    header = dict(zip(rows[0], rows[1], strict=True))
    assert header["libros_total"] == "1190" and header["rcv_total"] == ""
    everything = reconciled.get(f"{OCTOBER}reconciliation/?kind=compras&format=csv")
    assert everything.status_code == 200
    assert len(everything.content.decode().strip().splitlines()) == 1 + 12


# ---------------------------------------------------------------- who may do what


def test_viewer_reads_but_cannot_compute(api_for, viewer, clerk, company):
    assert api_for(clerk).post(f"{OCTOBER}compute/", {}, format="json").status_code == 200
    api = api_for(viewer)
    assert api.get(OCTOBER).status_code == 200
    assert api.get(f"{OCTOBER}reconciliation/").status_code == 200
    for action in ("compute", "review", "file", "reopen"):
        response = api.post(f"{OCTOBER}{action}/", {"reason": "porque sí"}, format="json")
        assert response.status_code == 403, action
        assert response.json()["code"] == "permission_denied"
    assert api.post(f"{BASE}/f29/2026-11/compute/", {}, format="json").status_code == 403
    assert F29Return.objects.count() == 1


def test_clerk_computes_but_cannot_review_file_or_reopen(api_for, clerk, admin_user, company):
    api = api_for(clerk)
    assert api.post(f"{OCTOBER}compute/", {}, format="json").status_code == 200
    assert api.post(f"{OCTOBER}review/", {}, format="json").status_code == 403
    assert F29Return.objects.get().state == "draft"
    assert api_for(admin_user).post(f"{OCTOBER}review/", {}, format="json").status_code == 200
    assert api.post(f"{OCTOBER}file/", {}, format="json").status_code == 403
    reopen = api.post(f"{OCTOBER}reopen/", {"reason": "me equivoqué"}, format="json")
    assert reopen.status_code == 403
    assert F29Return.objects.get().state == "reviewed"


@pytest.mark.parametrize("role", ["accountant", "admin_user"])
def test_accountant_and_admin_run_the_whole_cycle(request, api_for, company, role):
    user = request.getfixturevalue(role)
    api = api_for(user)
    _file_october(api)
    reopened = api.post(f"{OCTOBER}reopen/", {"reason": "Rectificación"}, format="json")
    assert reopened.status_code == 200 and reopened.json()["state"] == "draft"
    assert reopened.json()["events"][0]["actor"] == user.username
    f29 = F29Return.objects.get()
    assert f29.reviewed_by == user and f29.filed_by == user


def test_outsider_cannot_see_or_touch_the_f29(api_for, clerk, outsider, company):
    api_for(clerk).post(f"{OCTOBER}compute/", {}, format="json")
    intruder = api_for(outsider)
    assert intruder.get(OCTOBER).status_code == 404
    assert intruder.post(f"{OCTOBER}compute/", {}, format="json").status_code == 404
    assert intruder.get(IMPORTS).status_code == 404
