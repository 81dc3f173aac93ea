"""A user of another company never sees or touches this company's data, through any door."""

from datetime import date

import pytest
from django.urls import get_resolver
from django.urls.resolvers import URLResolver

from ai.models import AiFinding, AiReview
from dte.models import (
    CertificationRun,
    IntakeBatch,
    ReceivedDte,
    ReceivedDteEvent,
    ReceivedEnvelope,
)
from erp.models import AuditEvent, Partner, Product, PurchaseDocument, SalesDocument
from f29.models import F29Return, RcvImport
from tests.factories import PartnerFactory, ProductFactory, SalesDocumentFactory

pytestmark = pytest.mark.django_db

RUT = "76086428-5"


@pytest.fixture
def victim_data(company):
    partner = PartnerFactory(company=company, razon_social="Cliente Secreto S.A.")
    product = ProductFactory(company=company, name="Producto Secreto")
    document = SalesDocumentFactory(company=company, partner=partner, notes="nota secreta")
    purchase = PurchaseDocument.objects.create(
        company=company,
        tipo_doc=33,
        folio=777,
        partner=partner,
        rut_emisor=partner.rut,
        fecha=date(2026, 10, 5),
        periodo=date(2026, 10, 1),
        monto_neto=1000,
        iva_recuperable=190,
        monto_total=1190,
        notes="compra secreta",
    )
    f29 = F29Return.objects.create(
        company=company, periodo=date(2026, 10, 1), boxes={"91": 4242}, trail={}
    )
    rcv_import = RcvImport.objects.create(
        company=company, kind="compras", estado="registro", filename="secreto.csv", sha256="0"
    )
    review = AiReview.objects.create(
        company=company, target="document", sales_document=document, ai_status="off"
    )
    finding = AiFinding.objects.create(
        review=review, source="rules", code="total_mismatch", severity="error", message="secreto"
    )
    received = _received_for(company)
    batch = IntakeBatch.objects.create(
        company=company, source="api", filename="secreto.zip", status="done"
    )
    certification_run = CertificationRun.objects.create(
        company=company, filename="set-secreto.txt", set_file=b"SET BASICO", cases_total=1
    )
    return {
        "partner": partner,
        "product": product,
        "document": document,
        "purchase": purchase,
        "f29": f29,
        "finding": finding,
        "rcv_import": rcv_import,
        "received": received,
        "batch": batch,
        "certification_run": certification_run,
    }


def _received_for(company) -> ReceivedDte:
    """A supplier's document received by `company`, confirmed by the SII (ready to accept)."""
    envelope = ReceivedEnvelope.objects.create(
        company=company,
        source="upload",
        name="envio-secreto.xml",
        sha256="0" * 64,
        kind="EnvioDTE",
        rut_emisor="77123456-9",
        estado_recep_env=0,
        xml=b"<EnvioDTE/>",
    )
    return ReceivedDte.objects.create(
        company=company,
        envelope=envelope,
        tipo_dte=33,
        folio=4321,
        rut_emisor="77123456-9",
        razon_social="Proveedor Secreto SpA",
        fecha_emision=date(2026, 10, 5),
        monto_total=1190,
        xml=b"<DTE/>",
        estado_recep_dte=0,
        sii_confirmation="DOK",
    )


def api_cases(d):
    p, pr, doc, pu = d["partner"].pk, d["product"].pk, d["document"].pk, d["purchase"].pk
    fi = d["finding"].pk
    rd = d["received"].pk
    base = f"/api/v1/companies/{RUT}"
    line = [{"name": "X", "quantity": "1", "unit_price": "1"}]
    return {
        "company-detail": [("get", f"/api/v1/companies/{RUT}/", None)],
        "partner-list": [
            ("get", f"{base}/partners/", None),
            ("post", f"{base}/partners/", {"rut": "96790240-3", "razon_social": "X"}),
        ],
        "partner-detail": [
            ("get", f"{base}/partners/{p}/", None),
            ("patch", f"{base}/partners/{p}/", {"razon_social": "Robado"}),
            ("put", f"{base}/partners/{p}/", {"rut": "96790240-3", "razon_social": "Robado"}),
            ("delete", f"{base}/partners/{p}/", None),
        ],
        "product-list": [
            ("get", f"{base}/products/", None),
            ("post", f"{base}/products/", {"code": "Z", "name": "Z", "unit_price": "1"}),
        ],
        "product-detail": [
            ("get", f"{base}/products/{pr}/", None),
            ("patch", f"{base}/products/{pr}/", {"name": "Robado"}),
            ("delete", f"{base}/products/{pr}/", None),
        ],
        "sales-document-list": [
            ("get", f"{base}/sales-documents/", None),
            (
                "post",
                f"{base}/sales-documents/",
                {"tipo_dte": 39, "fecha_emision": "2026-11-20", "lines": line},
            ),
        ],
        "sales-document-detail": [
            ("get", f"{base}/sales-documents/{doc}/", None),
            ("patch", f"{base}/sales-documents/{doc}/", {"notes": "robado", "lines": line}),
            ("delete", f"{base}/sales-documents/{doc}/", None),
        ],
        # dte (ids need not exist: the company is refused before any id is looked at)
        "sales-document-issue-issue": [("post", f"{base}/sales-documents/{doc}/issue/", None)],
        "sales-document-issue-issue-batch": [
            ("post", f"{base}/sales-documents/issue-batch/", {"documents": [doc]})
        ],
        "dte-list": [("get", f"{base}/dtes/", None)],
        "dte-detail": [("get", f"{base}/dtes/1/", None)],
        "dte-xml": [("get", f"{base}/dtes/1/xml/", None)],
        "dte-refresh": [("post", f"{base}/dtes/1/refresh/", None)],
        "dte-pdf": [("get", f"{base}/dtes/1/pdf/", None)],
        "dte-retry": [("post", f"{base}/dtes/1/retry/", None)],
        "dte-reissue": [("post", f"{base}/dtes/1/reissue/", None)],
        "dte-email": [("post", f"{base}/dtes/1/email/", None)],
        "envelope-xml": [("get", f"{base}/envelopes/1/xml/", None)],
        "envelope-detail": [("get", f"{base}/envelopes/1/", None)],
        "envelope-retry": [("post", f"{base}/envelopes/1/retry/", None)],
        "envelope-reenvelope": [("post", f"{base}/envelopes/1/reenvelope/", None)],
        "caf-list": [("get", f"{base}/cafs/", None), ("post", f"{base}/cafs/", {})],
        "certificate-list": [
            ("get", f"{base}/certificates/", None),
            ("post", f"{base}/certificates/", {}),
        ],
        "dte-warning-list": [("get", f"{base}/dte-warnings/", None)],
        # erp purchases and f29
        "purchase-document-list": [
            ("get", f"{base}/purchase-documents/", None),
            ("post", f"{base}/purchase-documents/", {"tipo_doc": 33, "folio": 1}),
        ],
        "purchase-document-detail": [
            ("get", f"{base}/purchase-documents/{pu}/", None),
            ("patch", f"{base}/purchase-documents/{pu}/", {"notes": "robado"}),
            ("delete", f"{base}/purchase-documents/{pu}/", None),
        ],
        "rcv-import-list": [
            ("get", f"{base}/rcv-imports/", None),
            ("post", f"{base}/rcv-imports/", {}),
        ],
        "rcv-import-detail": [("get", f"{base}/rcv-imports/{d['rcv_import'].pk}/", None)],
        "f29-list": [("get", f"{base}/f29/", None)],
        "f29-detail": [("get", f"{base}/f29/2026-10/", None)],
        "f29-compute": [("post", f"{base}/f29/2026-10/compute/", {})],
        "f29-review": [("post", f"{base}/f29/2026-10/review/", {})],
        "f29-file": [("post", f"{base}/f29/2026-10/file/", {})],
        "f29-reopen": [("post", f"{base}/f29/2026-10/reopen/", {"reason": "robar datos"})],
        "f29-box": [("get", f"{base}/f29/2026-10/boxes/91/", None)],
        "f29-reconciliation": [("get", f"{base}/f29/2026-10/reconciliation/", None)],
        # ai
        "ai-review-list": [("get", f"{base}/ai-reviews/", None)],
        "ai-review-review-document": [("post", f"{base}/ai-reviews/document/{doc}/", None)],
        "ai-review-review-period": [("post", f"{base}/ai-reviews/period/2026-10/", None)],
        "ai-finding-accept": [("post", f"{base}/ai-findings/{fi}/accept/", None)],
        "ai-finding-dismiss": [("post", f"{base}/ai-findings/{fi}/dismiss/", None)],
        # received documents (suppliers' DTEs)
        "received-dte-list": [
            ("get", f"{base}/received-dtes/", None),
            ("post", f"{base}/received-dtes/", {}),
        ],
        "received-dte-detail": [("get", f"{base}/received-dtes/{rd}/", None)],
        "received-dte-xml": [("get", f"{base}/received-dtes/{rd}/xml/", None)],
        "received-dte-pdf": [("get", f"{base}/received-dtes/{rd}/pdf/", None)],
        "received-dte-accept": [("post", f"{base}/received-dtes/{rd}/accept/", {})],
        "received-dte-claim": [
            ("post", f"{base}/received-dtes/{rd}/claim/", {"action": "RCD", "reason": "robo"})
        ],
        "received-dte-goods-receipt": [
            ("post", f"{base}/received-dtes/{rd}/goods-receipt/", {"recinto": "Bodega"})
        ],
        "received-dte-bulk-accept": [("post", f"{base}/received-dtes/bulk-accept/", {"ids": [rd]})],
        "received-dte-batch-list": [("get", f"{base}/received-dte-batches/", None)],
        "received-dte-batch-detail": [
            ("get", f"{base}/received-dte-batches/{d['batch'].pk}/", None)
        ],
        # the SII's certification
        "certification-run-list": [
            ("get", f"{base}/certification-runs/", None),
            ("post", f"{base}/certification-runs/", {}),
        ],
        "certification-run-detail": [
            ("get", f"{base}/certification-runs/{d['certification_run'].pk}/", None)
        ],
        "certification-run-samples": [
            ("get", f"{base}/certification-runs/{d['certification_run'].pk}/samples/", None)
        ],
        "certification-run-simulation": [
            ("post", f"{base}/certification-runs/{d['certification_run'].pk}/simulation/", {})
        ],
        "certification-run-simulation-start": [
            (
                "post",
                f"{base}/certification-runs/{d['certification_run'].pk}/simulation/start/",
                {},
            )
        ],
        "certification-run-exchange": [
            ("post", f"{base}/certification-runs/exchange/", {}),
        ],
        "certification-run-exchange-answers": [
            (
                "get",
                f"{base}/certification-runs/exchange/{d['received'].envelope_id}/answers/",
                None,
            )
        ],
        "certification-run-start": [
            ("post", f"{base}/certification-runs/{d['certification_run'].pk}/start/", {})
        ],
    }


def web_cases(d):
    p, pr, doc, pu = d["partner"].pk, d["product"].pk, d["document"].pk, d["purchase"].pk
    fi = d["finding"].pk
    rd = d["received"].pk
    return {
        "partner_edit": [("get", f"/clientes/{p}/", None), ("post", f"/clientes/{p}/", {})],
        "product_edit": [("get", f"/productos/{pr}/", None), ("post", f"/productos/{pr}/", {})],
        "document_detail": [("get", f"/documentos/{doc}/", None)],
        "document_edit": [
            ("get", f"/documentos/{doc}/editar/", None),
            ("post", f"/documentos/{doc}/editar/", {}),
        ],
        "document_delete": [("post", f"/documentos/{doc}/eliminar/", {})],
        "company_switch": [("post", "/empresa/cambiar/", {"company": d["document"].company_id})],
        # dte pages: a foreign document or DTE id is not found under the user's own company
        "issue": [("post", f"/documentos/{doc}/emitir/", {})],
        "note_create": [("post", f"/documentos/{doc}/nota/", {"tipo_dte": "61", "cod_ref": "1"})],
        "dte_xml": [("get", "/dte/1/xml/", None)],
        "refresh": [("post", "/dte/1/actualizar/", {})],
        "dte_pdf": [("get", "/dte/1/pdf/", None)],
        "email": [("post", "/dte/1/correo/", {})],
        "retry": [("post", "/dte/1/reintentar/", {})],
        "reissue": [("post", "/dte/1/reemitir/", {})],
        "envelope_xml": [("get", "/sobres/1/xml/", None)],
        "reenvelope": [("post", "/dte/1/reensobrar/", {})],
        "purchase_edit": [("get", f"/compras/{pu}/", None), ("post", f"/compras/{pu}/", {})],
        "purchase_delete": [("post", f"/compras/{pu}/eliminar/", {})],
        # the victim's F29 of 2026-10 is not the outsider's: their own company has none
        "f29_detail": [("get", "/f29/2026-10/", None)],
        "rcv_import_detail": [("get", f"/rcv/importar/{d['rcv_import'].pk}/", None)],
        "f29_box": [("get", "/f29/2026-10/casilla/91/", None)],
        "f29_transition": [
            ("post", "/f29/2026-10/estado/revisar/", {}),
            ("post", "/f29/2026-10/estado/reabrir/", {"reason": "robar datos"}),
        ],
        "review_document": [("post", f"/ia/documentos/{doc}/revisar/", {})],
        "review_period": [("post", "/ia/periodos/2026-10/revisar/", {})],
        "finding_decide": [("post", f"/ia/hallazgos/{fi}/accept/", {})],
        # received documents: a foreign id is not found under the user's own company
        "received_detail": [("get", f"/recibidos/{rd}/", None)],
        "received_pdf": [("get", f"/recibidos/{rd}/pdf/", None)],
        "received_xml": [("get", f"/recibidos/{rd}/xml/", None)],
        "received_answer": [
            ("get", f"/recibidos/{rd}/archivos/sobre/", None),
            ("get", f"/recibidos/{rd}/archivos/respuesta/", None),
        ],
        "received_accept": [("post", f"/recibidos/{rd}/aceptar/", {})],
        "received_claim": [
            ("post", f"/recibidos/{rd}/reclamar/", {"action": "RCD", "reason": "robo"})
        ],
        "received_goods": [("post", f"/recibidos/{rd}/mercaderias/", {"recinto": "Bodega"})],
        "received_check_sii": [("post", f"/recibidos/{rd}/consultar-sii/", {})],
        "received_batch": [("get", f"/recibidos/cargas/{d['batch'].pk}/", None)],
        # another company's set de pruebas is not found under the user's own company
        "certification_run": [("get", f"/certificacion/{d['certification_run'].pk}/", None)],
        "certification_samples": [
            ("get", f"/certificacion/{d['certification_run'].pk}/muestras.zip", None)
        ],
        "certification_libros": [
            ("post", f"/certificacion/{d['certification_run'].pk}/libros/", {})
        ],
        "certification_libro_xml": [
            ("get", f"/certificacion/{d['certification_run'].pk}/libros/1/xml/", None)
        ],
        "certification_simulation_propose": [
            ("post", f"/certificacion/{d['certification_run'].pk}/simulacion/proponer/", {})
        ],
        "certification_simulation_start": [
            ("post", f"/certificacion/{d['certification_run'].pk}/simulacion/emitir/", {})
        ],
        "certification_exchange_zip": [
            ("get", f"/certificacion/intercambio/{d['received'].envelope_id}/respuestas.zip", None)
        ],
        "certification_start": [
            ("post", f"/certificacion/{d['certification_run'].pk}/emitir/", {})
        ],
    }


# Pages that take no id: the outsider gets their own company's (empty) view, checked below.
UNSCOPED_WEB = {
    "dashboard",
    "partner_list",
    "partner_create",
    "product_list",
    "product_create",
    "document_list",
    "document_export",  # the current company's list (checked below)
    "document_bulk_send",  # ids looked up in the current company only (checked below)
    "document_bulk_email",  # idem
    "document_bulk_print",  # idem
    "document_create",
    "document_preview",
    "api_token",  # the user's own token, no company data
    "signing_material",  # the current company's CAFs and certificates (checked below)
    "public",  # the QR's page: by unguessable token, no login (tests/dte/test_printing.py)
    "purchase_list",
    "purchase_create",
    "f29_list",
    "f29_compute_new",  # computes the user's own company's period
    "f29_compute",
    "reconciliation",  # the user's own company's books and RCV (checked below)
    "rcv_import",
    "received_list",  # the current company's inbox (checked below)
    "received_upload",  # takes files into the current company
    "received_bulk_accept",  # ids looked up in the current company only (checked below)
    "received_mailbox",  # the current company's exchange mailbox
    "guias_invoice",  # customers and guías looked up in the current company only (checked below)
    "certification",  # the current company's certification (its latest set de pruebas)
    "certification_exchange",  # takes the SII's test envelope into the current company
}
UNSCOPED_API = {"company-list", "api-root"}


def _names(namespace_pattern: str) -> set[str]:
    names = set()

    def walk(patterns, inside):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, inside or namespace_pattern in str(p.pattern))
            elif inside and p.name:
                names.add(p.name)

    walk(get_resolver().url_patterns, False)
    return names


def test_every_endpoint_has_a_tenancy_case(victim_data):
    assert _names("api/v1/") - UNSCOPED_API == set(api_cases(victim_data))
    modules = ("erp.urls", "dte.urls", "f29.urls", "ai.urls")
    web = {p.name for m in modules for p in get_resolver(m).url_patterns}
    assert web - UNSCOPED_WEB == set(web_cases(victim_data))


def _unchanged(d):
    partner = Partner.objects.get(pk=d["partner"].pk)
    assert partner.razon_social == "Cliente Secreto S.A."
    assert Product.objects.get(pk=d["product"].pk).name == "Producto Secreto"
    document = SalesDocument.objects.get(pk=d["document"].pk)
    assert document.notes == "nota secreta" and document.lines.count() == 1
    assert not AuditEvent.objects.filter(company=d["document"].company).exists()
    assert PurchaseDocument.objects.get(pk=d["purchase"].pk).notes == "compra secreta"
    f29 = F29Return.objects.get(pk=d["f29"].pk)
    assert f29.state == "draft" and f29.boxes == {"91": 4242} and not f29.events.exists()
    assert AiReview.objects.filter(company=d["document"].company).count() == 1
    assert AiFinding.objects.get(pk=d["finding"].pk).state == "open"
    received = ReceivedDte.objects.get(pk=d["received"].pk)
    assert received.status == "received" and received.purchase_id is None
    assert not ReceivedDteEvent.objects.filter(received_dte=received).exists()


def test_api_foreign_company_is_404_everywhere(api_for, outsider, victim_data):
    client = api_for(outsider)
    for name, calls in api_cases(victim_data).items():
        for method, url, body in calls:
            response = getattr(client, method)(url, body, format="json")
            assert response.status_code == 404, (name, method, url, response.status_code)
            assert response.json()["code"] == "not_found"
    _unchanged(victim_data)


def test_api_foreign_ids_under_own_company_are_404(api_for, outsider, other_company, victim_data):
    client = api_for(outsider)
    base = f"/api/v1/companies/{other_company.rut}"
    for kind, obj in (
        ("partners", victim_data["partner"]),
        ("products", victim_data["product"]),
        ("sales-documents", victim_data["document"]),
    ):
        assert client.get(f"{base}/{kind}/{obj.pk}/").status_code == 404
        assert client.delete(f"{base}/{kind}/{obj.pk}/").status_code == 404
        listing = client.get(f"{base}/{kind}/").json()
        assert listing["count"] == 0
    _unchanged(victim_data)


def test_web_foreign_objects_are_404(client, outsider, victim_data):
    client.force_login(outsider)
    for name, calls in web_cases(victim_data).items():
        for method, url, body in calls:
            response = getattr(client, method)(url, body or {})
            assert response.status_code == 404, (name, method, url, response.status_code)
    pages = (
        "/",
        "/clientes/",
        "/productos/",
        "/documentos/",
        "/clientes/?q=Secreto",
        "/folios-y-certificados/",
        "/compras/",
        "/f29/",
        "/f29/2026-10/conciliacion/?kind=compras",
        "/rcv/importar/",
    )
    for url in pages:
        page = client.get(url)
        assert page.status_code == 200
        assert b"Cliente Secreto" not in page.content
        assert b"Producto Secreto" not in page.content and b"secreta" not in page.content
        assert b"4.242" not in page.content and b">777<" not in page.content
    _unchanged(victim_data)


def test_session_cannot_select_a_foreign_company(client, outsider, victim_data, company):
    client.force_login(outsider)
    session = client.session
    session["company_id"] = company.pk
    session.save()
    page = client.get("/clientes/")
    assert b"Secreto" not in page.content


def test_admin_hides_and_refuses_foreign_rows(client, outsider, victim_data, company):
    client.force_login(outsider)
    for model, obj in (
        ("partner", victim_data["partner"]),
        ("product", victim_data["product"]),
        ("salesdocument", victim_data["document"]),
        ("company", company),
    ):
        listing = client.get(f"/admin/erp/{model}/")
        assert listing.status_code == 200
        assert b"Secreto" not in listing.content and company.rut.encode() not in listing.content
        change = client.get(f"/admin/erp/{model}/{obj.pk}/change/")
        assert change.status_code in (302, 403, 404)  # admin redirects to its index for a miss
        post = client.post(f"/admin/erp/{model}/{obj.pk}/change/", {"razon_social": "Robado"})
        assert post.status_code in (302, 403, 404)
        delete = client.post(f"/admin/erp/{model}/{obj.pk}/delete/", {"post": "yes"})
        assert delete.status_code in (302, 403, 404)
    memberships = client.get("/admin/erp/membership/")
    assert company.rut.encode() not in memberships.content
    _unchanged(victim_data)


# --- Received documents (suppliers' DTEs) -----------------------------------------------------


def test_received_documents_of_another_company_stay_hidden(
    client, api_for, outsider, other_company, victim_data, company
):
    received = victim_data["received"]
    client.force_login(outsider)
    for url in ("/recibidos/", "/recibidos/?proveedor=Secreto", "/recibidos/?estado=received"):
        page = client.get(url)
        assert page.status_code == 200 and b"Proveedor Secreto" not in page.content
        assert b">4321<" not in page.content
    bulk = client.post("/recibidos/aceptar/", {"ids": [received.pk]})
    assert bulk.status_code == 302
    assert f"Documento #{received.pk}: no encontrado." in [
        str(m) for m in client.get(bulk.url).context["messages"]
    ]
    assert client.get("/recibidos/casilla/").status_code == 200  # their own, empty
    assert company.rut.encode() not in client.get("/recibidos/casilla/").content

    api = api_for(outsider)
    base = f"/api/v1/companies/{other_company.rut}/received-dtes"
    assert api.get(f"{base}/").json()["count"] == 0
    assert api.get(f"{base}/?search=Secreto").json()["count"] == 0
    for path in ("", "xml/", "pdf/"):
        assert api.get(f"{base}/{received.pk}/{path}").status_code == 404
    for path, body in (
        ("accept/", {}),
        ("claim/", {"action": "RCD", "reason": "robo"}),
        ("goods-receipt/", {"recinto": "Bodega"}),
    ):
        response = api.post(f"{base}/{received.pk}/{path}", body, format="json")
        assert response.status_code == 404, path
    bulk = api.post(f"{base}/bulk-accept/", {"ids": [received.pk]}, format="json")
    assert bulk.status_code == 200
    assert bulk.json()["results"][0]["code"] == "not_found" and bulk.json()["accepted"] == 0

    for model in ("receiveddte", "receivedenvelope"):
        listing = client.get(f"/admin/dte/{model}/")
        assert listing.status_code == 200 and b"Secreto" not in listing.content
    change = client.get(f"/admin/dte/receiveddte/{received.pk}/change/")
    assert change.status_code in (302, 403, 404)
    _unchanged(victim_data)


def test_a_viewer_cannot_accept_a_received_document(client, api_for, viewer, victim_data, company):
    received = victim_data["received"]
    client.force_login(viewer)
    assert client.get(f"/recibidos/{received.pk}/").status_code == 200
    assert client.post(f"/recibidos/{received.pk}/aceptar/", {}).status_code == 403
    assert client.post("/recibidos/aceptar/", {"ids": [received.pk]}).status_code == 403
    assert client.get("/recibidos/casilla/").status_code == 403
    api = api_for(viewer)
    base = f"/api/v1/companies/{company.rut}/received-dtes"
    assert api.get(f"{base}/{received.pk}/").status_code == 200
    response = api.post(f"{base}/{received.pk}/accept/", {}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    response = api.post(f"{base}/bulk-accept/", {"ids": [received.pk]}, format="json")
    assert response.status_code == 403
    _unchanged(victim_data)


# --- The sales document list: search, export and bulk actions ---------------------------------


def test_document_list_export_and_bulk_actions_stay_in_the_own_company(
    client, outsider, victim_data, company
):
    document = victim_data["document"]
    client.force_login(outsider)
    for url in (
        "/documentos/?q=Secreto",
        f"/documentos/?q={company.rut}",
        f"/documentos/?partner={victim_data['partner'].pk}",
        "/documentos/?sii_state=accepted&sort=-total&per_page=100",
    ):
        page = client.get(url)
        assert page.status_code == 200 and page.context["page"].paginator.count == 0, url
        assert b"Cliente Secreto" not in page.content
    for fmt in ("csv", "xlsx"):
        export = client.get(f"/documentos/exportar/{fmt}/")
        assert export.status_code == 200
        assert b"Secreto" not in b"".join(export.streaming_content)
    for path in ("enviar-al-sii", "enviar-por-correo", "imprimir"):
        response = client.post(f"/documentos/{path}/", {"ids": [document.pk]})
        assert response.status_code == 302, path
        shown = [str(m) for m in client.get(response.url).context["messages"]]
        assert f"no encontrado (#{document.pk})" in shown[0], path
    _unchanged(victim_data)


def test_a_viewer_cannot_send_or_email_from_the_list(client, viewer, victim_data):
    document = victim_data["document"]
    client.force_login(viewer)
    assert client.get("/documentos/").status_code == 200
    assert client.get("/documentos/exportar/csv/").status_code == 200
    for path in ("enviar-al-sii", "enviar-por-correo"):
        assert client.post(f"/documentos/{path}/", {"ids": [document.pk]}).status_code == 403
    _unchanged(victim_data)


def test_facturar_guias_sees_and_invoices_only_the_own_company(client, outsider, victim_data):
    document = victim_data["document"]
    client.force_login(outsider)
    url = f"/documentos/facturar-guias/?partner={victim_data['partner'].pk}&periodo=11-2026"
    page = client.get(url)
    assert page.status_code == 200 and b"Cliente Secreto" not in page.content
    assert page.context["rows"] == []
    response = client.post(url, {"guia": [document.pk]})
    assert response.status_code == 200
    assert SalesDocument.objects.count() == 1
    _unchanged(victim_data)
