"""/api/v1/companies/{rut}/received-dtes/: intake by upload (multipart `files`), the list and its
filters, a document with its checks and history, its XML and PDF, and the decisions (accept,
claim, goods receipt, bulk accept). The SII's RCV is stubbed; the answers are checked against
the published schema as well (schemathesis, over these operations only, with data behind)."""

from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from dte import receiving
from dte.models import IntakeSource, ReceivedDte, ReceivedStatus
from dte.sii.errors import SiiRetryableError
from erp.models import PurchaseDocument
from tests.api.test_schema_conformance import CHECKS, UNTYPED_BODIES
from tests.dte.test_received_web import (
    confirm,
    make_supplier,
    receive_from,
    stub_rcv,
    supplier_envelope,
    zipped,
)

pytestmark = pytest.mark.django_db

RUT = "76086428-5"
BASE = f"/api/v1/companies/{RUT}/received-dtes"


@pytest.fixture(scope="session")
def received_supplier(sii_key):
    return make_supplier(sii_key)


@pytest.fixture
def rcv_calls(monkeypatch):
    return stub_rcv(monkeypatch)


def _upload(api, *files: tuple[str, bytes]):
    return api.post(
        f"{BASE}/",
        {"files": [SimpleUploadedFile(name, data) for name, data in files]},
        format="multipart",
    )


def test_upload_one_or_many_files(api, clerk, issuer, received_supplier):
    one = supplier_envelope(received_supplier, issuer, count=1)
    two = supplier_envelope(received_supplier, issuer, count=2)
    response = _upload(api, ("envio1.xml", one), ("lote.zip", zipped(("envio2.xml", two))))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [d["status"] for d in body["documents"]] == ["received"] * 3
    assert [f["estado_recep_env"] for f in body["files"]] == [0, 0]
    assert body["problems"] == []
    row = ReceivedDte.objects.get(pk=body["documents"][0]["id"])
    assert row.company == issuer and row.envelope.source == IntakeSource.API
    assert row.envelope.actor == clerk

    # Everything received before: 200, nothing new.
    again = _upload(api, ("envio1.xml", one))
    assert again.status_code == 200
    assert [d["status"] for d in again.json()["documents"]] == ["duplicate"]
    assert ReceivedDte.objects.count() == 3


def test_upload_refusals(api, api_for, viewer, issuer, received_supplier):
    nothing = _upload(api, ("nada.zip", zipped(("leeme.txt", b"hola"))))
    assert nothing.status_code == 400 and nothing.json()["code"] == "invalid_input"
    assert "files" in nothing.json()["fields"]
    missing = api.post(f"{BASE}/", {}, format="multipart")
    assert missing.status_code == 400 and "files" in missing.json()["fields"]
    as_json = api.post(f"{BASE}/", {"files": []}, format="json")
    assert as_json.status_code == 415
    # A broken XML is still answered to the supplier: stored with its reception state.
    broken = _upload(api, ("roto.xml", b"<EnvioDTE><SetDTE>"))
    assert broken.status_code == 201
    assert broken.json()["files"][0]["estado_recep_env"] != 0
    envelope = supplier_envelope(received_supplier, issuer)
    refused = _upload(api_for(viewer), ("envio.xml", envelope))
    assert refused.status_code == 403 and not ReceivedDte.objects.exists()


def test_list_and_filters(api, issuer, received_supplier):
    rows = receive_from(received_supplier, issuer, count=3)
    confirm(rows[0], days_left=1)
    confirm(rows[1], days_left=-2)
    ReceivedDte.objects.filter(pk=rows[2].pk).update(
        status=ReceivedStatus.ACCEPTED, fecha_emision=rows[2].fecha_emision - timedelta(days=40)
    )
    every = {r.pk for r in rows}

    def ids(query: str = "") -> set[int]:
        response = api.get(f"{BASE}/?{query}")
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    listing = api.get(f"{BASE}/").json()
    assert listing["count"] == 3 and set(listing) >= {"count", "next", "previous", "results"}
    first = next(r for r in listing["results"] if r["id"] == rows[0].pk)
    assert first["days_left"] == 1 and first["status_label"] == "Recibido"
    assert first["tipo_label"] == "Factura electrónica" and first["source"] == "upload"
    assert [c["label"] for c in first["checks"]] == ["Firma", "Timbre (TED)", "CAF", "Totales"]
    assert first["answers"] == ["respuesta", "sobre"]
    assert ids() == every
    assert ids("status=accepted") == {rows[2].pk}
    assert ids("rut_emisor=77.123.456-9") == every
    assert ids("rut_emisor=76086428-5") == set()
    today = timezone.localdate()
    assert ids(f"desde={today:%Y-%m-%d}") == {rows[0].pk, rows[1].pk}
    assert ids(f"hasta={today - timedelta(days=1):%Y-%m-%d}") == {rows[2].pk}
    assert ids("days_left_lte=1") == {rows[0].pk, rows[1].pk}  # overdue included
    assert ids("days_left_lte=-1") == {rows[1].pk}
    assert ids("search=austral") == every
    assert ids("page_size=1&ordering=folio") == {min(rows, key=lambda r: r.folio).pk}
    for bad in ("rut_emisor=12.345.678-0", "status=perdido", "days_left_lte=pronto", "desde=ayer"):
        response = api.get(f"{BASE}/?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["code"] == "invalid_input"


def test_detail_xml_and_pdf(api, issuer, received_supplier):
    (row,) = receive_from(received_supplier, issuer)
    body = api.get(f"{BASE}/{row.pk}/").json()
    assert body["folio"] == row.folio and body["rut_emisor"] == "77123456-9"
    assert body["razon_social"] == "Proveedora Austral de Insumos SpA"
    assert body["days_left"] is None and body["claim_deadline"] is None
    assert body["sii_confirmation"] == "" and body["purchase"] is None
    assert all(c["ok"] for c in body["checks"]) and body["reasons"] == []
    assert body["events"][0]["kind"] == "intake" and body["events"][0]["code"] == "0"
    assert body["lines"][0]["nombre"] == "Resma papel carta 75 g"
    xml = api.get(f"{BASE}/{row.pk}/xml/")
    assert xml.status_code == 200 and xml.content == bytes(row.xml)
    pdf = api.get(f"{BASE}/{row.pk}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert api.get(f"{BASE}/999999/").status_code == 404


def test_accept(api, issuer, received_supplier, rcv_calls):
    (row,) = receive_from(received_supplier, issuer)
    refused = api.post(f"{BASE}/{row.pk}/accept/", {}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "not_confirmed"
    confirm(row, days_left=5)
    bad = api.post(f"{BASE}/{row.pk}/accept/", {"periodo": "2026-13"}, format="json")
    assert bad.status_code == 400 and "periodo" in bad.json()["fields"]
    early = api.post(f"{BASE}/{row.pk}/accept/", {"periodo": "2020-01"}, format="json")
    assert early.status_code == 400 and "periodo" in early.json()["fields"]
    assert rcv_calls == []

    response = api.post(
        f"{BASE}/{row.pk}/accept/", {"discrepancies": "Despacho incompleto"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "accepted" and body["commercial_result"] == "1"
    assert body["commercial_glosa"] == "Despacho incompleto" and body["days_left"] is None
    assert body["purchase"] == PurchaseDocument.objects.get(folio=row.folio).pk
    assert "resultado" in body["answers"] and rcv_calls == [(row.pk, "ACD")]
    again = api.post(f"{BASE}/{row.pk}/accept/", {}, format="json")
    assert again.status_code == 400 and again.json()["code"] == "not_receivable"


def test_sii_unavailable_is_a_503_and_records_nothing(api, issuer, received_supplier, monkeypatch):
    (row,) = receive_from(received_supplier, issuer)
    confirm(row)

    def down(*args, **kwargs):
        raise SiiRetryableError("tiempo de espera agotado")

    monkeypatch.setattr(receiving, "_sii_session", down)
    response = api.post(f"{BASE}/{row.pk}/accept/", {}, format="json")
    assert response.status_code == 503 and response.json()["code"] == "sii_unavailable"
    row.refresh_from_db()
    assert row.status == ReceivedStatus.RECEIVED


def test_claim_and_goods_receipt(api, issuer, received_supplier, rcv_calls):
    claimed, received = receive_from(received_supplier, issuer, count=2)
    confirm(claimed, days_left=4)
    confirm(received, days_left=4)
    wrong = api.post(f"{BASE}/{claimed.pk}/claim/", {"action": "ACD"}, format="json")
    assert wrong.status_code == 400 and "action" in wrong.json()["fields"]
    response = api.post(
        f"{BASE}/{claimed.pk}/claim/", {"action": "RCD", "reason": "Precio errado"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "claimed"
    assert response.json()["commercial_result"] == "2"

    empty = api.post(f"{BASE}/{received.pk}/goods-receipt/", {}, format="json")
    assert empty.status_code == 400 and "recinto" in empty.json()["fields"]
    goods = api.post(
        f"{BASE}/{received.pk}/goods-receipt/", {"recinto": "Bodega Maipú"}, format="json"
    )
    assert goods.status_code == 200 and goods.json()["goods_received_at"]
    assert "recibo" in goods.json()["answers"]
    assert rcv_calls == [(claimed.pk, "RCD"), (received.pk, "ERM")]
    late = api.post(
        f"{BASE}/{claimed.pk}/goods-receipt/", {"recinto": "Bodega Maipú"}, format="json"
    )
    assert late.status_code == 400 and late.json()["code"] == "not_receivable"


def test_bulk_accept(api, issuer, other_company, received_supplier, rcv_calls):
    ok, unconfirmed = receive_from(received_supplier, issuer, count=2)
    confirm(ok)
    (foreign,) = receive_from(received_supplier, other_company)
    confirm(foreign)
    response = api.post(
        f"{BASE}/bulk-accept/", {"ids": [ok.pk, unconfirmed.pk, foreign.pk, ok.pk]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    results = {r["id"]: r for r in body["results"]}
    assert list(results) == [ok.pk, unconfirmed.pk, foreign.pk]
    assert results[ok.pk] == {
        "id": ok.pk,
        "ok": True,
        "status": "accepted",
        "code": None,
        "message": "Aceptado.",
    }
    assert results[unconfirmed.pk]["code"] == "not_confirmed"
    assert results[unconfirmed.pk]["status"] == "received"
    assert results[foreign.pk]["code"] == "not_found" and results[foreign.pk]["status"] is None
    foreign.refresh_from_db()
    assert foreign.status == ReceivedStatus.RECEIVED and rcv_calls == [(ok.pk, "ACD")]
    assert api.post(f"{BASE}/bulk-accept/", {"ids": []}, format="json").status_code == 400
    too_many = {"ids": list(range(1, 202))}
    assert api.post(f"{BASE}/bulk-accept/", too_many, format="json").status_code == 400


def test_viewer_reads_but_cannot_decide(api_for, viewer, issuer, received_supplier):
    (row,) = receive_from(received_supplier, issuer)
    confirm(row)
    client = api_for(viewer)
    assert client.get(f"{BASE}/{row.pk}/").status_code == 200
    for path, body in (
        ("accept/", {}),
        ("claim/", {"action": "RCD"}),
        ("goods-receipt/", {"recinto": "x"}),
    ):
        response = client.post(f"{BASE}/{row.pk}/{path}", body, format="json")
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert client.post(f"{BASE}/bulk-accept/", {"ids": [row.pk]}, format="json").status_code == 403
    row.refresh_from_db()
    assert row.status == ReceivedStatus.RECEIVED


# --- The schema tells the truth for these operations, with documents behind them -------------

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application()).include(
    path_regex="received-dtes"
)


@pytest.fixture
def received_data(db, issuer, clerk, settings, received_supplier, monkeypatch):
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    settings.API_THROTTLE_USER = None
    settings.API_THROTTLE_ANON = None
    cache.clear()
    stub_rcv(monkeypatch)
    rows = receive_from(received_supplier, issuer, count=2)
    confirm(rows[0], days_left=3)
    token, _ = Token.objects.get_or_create(user=clerk)
    yield {"headers": {"Authorization": f"Token {token.key}"}, "ids": [r.pk for r in rows]}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_received_api_answers_as_documented(case, received_data, company):
    path = case.path_parameters or {}
    if "company_rut" in path:
        path["company_rut"] = company.rut
    if "id" in path:
        path["id"] = received_data["ids"][0]
    checks = CHECKS
    if case.media_type in UNTYPED_BODIES:
        checks = [check for check in CHECKS if check.__name__ != "negative_data_rejection"]
    case.call_and_validate(headers=received_data["headers"], checks=checks)


def test_a_large_upload_is_answered_202_and_followed_as_a_batch(
    api, issuer, received_supplier, eager_tasks, django_capture_on_commit_callbacks
):
    files = [
        (f"envio{n}.xml", supplier_envelope(received_supplier, issuer))
        for n in range(receiving.INLINE_FILES + 1)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(api, ("lote.zip", zipped(*files)))
    assert response.status_code == 202, response.json()
    location = response["Location"]
    assert location.startswith(f"/api/v1/companies/{RUT}/received-dte-batches/")
    assert response.json()["files_total"] == receiving.INLINE_FILES + 1
    batch = api.get(location).json()
    assert batch["status"] == "done" and batch["finished"] and batch["percent"] == 100
    assert (batch["documents"], batch["received"], batch["refused"]) == (21, 21, 0)
    assert {d["status"] for d in batch["outcomes"]} == {"received"}
    listed = api.get(f"/api/v1/companies/{RUT}/received-dte-batches/").json()
    assert [b["id"] for b in listed["results"]] == [batch["id"]]
