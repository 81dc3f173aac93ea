"""The sales document list (/documentos/, dte.list_views): search by folio, RUT or name, the SII
state column and filter, sort by column (whitelisted), page size and pager, export of the whole
filtered list as CSV and XLSX, and the bulk actions (send again, e-mail, one merged PDF) with
their permissions."""

import csv
import io
from datetime import date

import pytest
from django.contrib.messages import get_messages
from django.urls import resolve, reverse
from openpyxl import load_workbook
from pypdf import PdfReader

from dte import bulk, list_views, lists, services
from dte.core.domain import DteStatus, EnvelopeState
from dte.models import Caf, Dte, Envelope
from erp.models import DocumentState, Role, SalesDocument
from tests.factories import (
    MembershipFactory,
    PartnerFactory,
    SalesDocumentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

URL = "/documentos/"


def issued(company, *, folio, partner=None, status=DteStatus.ACCEPTED, **fields):
    """An issued document with a DTE row in `status` (no signing: the list only reads it)."""
    document = SalesDocumentFactory(
        company=company,
        partner=partner or PartnerFactory(company=company),
        state=DocumentState.ISSUED,
        folio=folio,
        **fields,
    )
    caf = Caf.objects.filter(company=company, tipo_dte=document.tipo_dte).first()
    Dte.objects.create(
        company=company,
        sales_document=document,
        tipo_dte=document.tipo_dte,
        folio=folio,
        caf=caf,
        fecha_emision=document.fecha_emision,
        rut_receptor=document.partner.rut if document.partner else "66666666-6",
        monto_total=document.monto_total,
        xml=b"",
        signature_value="",
        ted=b"",
        status=status,
    )
    return document


def issue(company, partner=None):
    """A document really issued (signed, with its XML), to a customer of its own."""
    from tests.dte.test_printing import issue as issue_one

    return issue_one(company, partner=partner or PartnerFactory(company=company))


def ids_on(response) -> list[int]:
    return [d.pk for d in response.context["page"]]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def web(client, clerk):
    client.force_login(clerk)
    return client


@pytest.fixture
def admin_web(client, admin_user):
    client.force_login(admin_user)
    return client


# ---------------------------------------------------------------- routing


def test_documentos_is_served_by_dte_and_erp_name_is_its_alias():
    assert resolve(URL).func is list_views.document_list
    assert resolve(URL).view_name == "dte:document_list"
    assert reverse("erp:document_list") == reverse("dte:document_list") == URL


# ---------------------------------------------------------------- search


def test_search_by_folio_rut_and_name(web, issuer):
    andes = PartnerFactory(company=issuer, rut="96790240-3", razon_social="Los Andes S.A.")
    sur = PartnerFactory(company=issuer, rut="77001234-1", razon_social="Ferretería del Sur")
    a = issued(issuer, folio=15, partner=andes)
    b = issued(issuer, folio=1500, partner=sur)
    draft = SalesDocumentFactory(company=issuer, partner=sur)

    assert ids_on(web.get(URL, {"q": "15"})) == [a.pk]  # a folio, exact
    assert ids_on(web.get(URL, {"q": " 1.500 "})) == [b.pk]
    for rut in ("96.790.240-3", "96790240-3", "967902403", "96790240"):
        assert ids_on(web.get(URL, {"q": rut})) == [a.pk], rut
    assert set(ids_on(web.get(URL, {"q": "77.001.234-1"}))) == {b.pk, draft.pk}
    assert set(ids_on(web.get(URL, {"q": "ferretería"}))) == {b.pk, draft.pk}
    assert ids_on(web.get(URL, {"q": "andes"})) == [a.pk]
    assert ids_on(web.get(URL, {"q": "nadie"})) == []
    page = web.get(URL, {"q": "96.790.240-3"}).content.decode()
    assert 'value="96.790.240-3"' in page and "96.790.240-3</td>" in page


def test_search_combines_with_the_other_filters(web, issuer):
    andes = PartnerFactory(company=issuer, razon_social="Los Andes S.A.")
    a = issued(issuer, folio=3, partner=andes, fecha_emision=date(2026, 10, 5))
    issued(issuer, folio=4, partner=andes, fecha_emision=date(2026, 11, 5))
    issued(issuer, folio=5, partner=andes, tipo_dte=34)
    query = {"q": "andes", "tipo_dte": "33", "date_from": "01-10-2026", "date_to": "31-10-2026"}
    assert ids_on(web.get(URL, query)) == [a.pk]


# ---------------------------------------------------------------- SII state


def test_sii_state_column_and_filter(web, issuer):
    accepted = issued(issuer, folio=1, status=DteStatus.ACCEPTED)
    rejected = issued(issuer, folio=2, status=DteStatus.REJECTED)
    attention = issued(issuer, folio=3, status=DteStatus.NEEDS_ATTENTION)
    draft = SalesDocumentFactory(company=issuer)

    html = web.get(URL).content.decode()
    assert "Aceptado por el SII" in html and "Rechazado por el SII" in html
    assert "Requiere atención" in html and 'data-sii-state="accepted"' in html

    assert ids_on(web.get(URL, {"sii_state": "accepted"})) == [accepted.pk]
    assert ids_on(web.get(URL, {"sii_state": "rejected"})) == [rejected.pk]
    assert ids_on(web.get(URL, {"sii_state": "needs_attention"})) == [attention.pk]
    assert ids_on(web.get(URL, {"state": "draft"})) == [draft.pk]
    # An unknown state is shown as an error next to its field and ignored, never a 500.
    response = web.get(URL, {"sii_state": "nope"})
    assert response.status_code == 200 and len(ids_on(response)) == 4
    assert "nope no es una de las opciones" in response.content.decode()


def test_bad_filter_values_are_ignored_with_their_message(web, issuer):
    SalesDocumentFactory(company=issuer)
    response = web.get(URL, {"tipo_dte": "zz", "date_from": "ayer", "partner": "999999"})
    assert response.status_code == 200 and len(ids_on(response)) == 1
    assert "Introduzca una fecha válida" in response.content.decode()


# ---------------------------------------------------------------- sort


def test_sort_by_each_column_both_ways(web, issuer):
    zeta = PartnerFactory(company=issuer, razon_social="Zeta Ltda.")
    alfa = PartnerFactory(company=issuer, razon_social="alfa SpA")
    small = issued(issuer, folio=9, partner=zeta, fecha_emision=date(2026, 10, 1), monto_total=50)
    big = issued(
        issuer,
        folio=2,
        partner=alfa,
        fecha_emision=date(2026, 11, 1),
        monto_total=9000,
        status=DteStatus.REJECTED,
    )
    draft = SalesDocumentFactory(
        company=issuer, partner=None, fecha_emision=date(2026, 10, 15), monto_total=700
    )

    assert ids_on(web.get(URL, {"sort": "folio"})) == [big.pk, small.pk, draft.pk]
    assert ids_on(web.get(URL, {"sort": "-folio"})) == [small.pk, big.pk, draft.pk]
    assert ids_on(web.get(URL, {"sort": "fecha"})) == [small.pk, draft.pk, big.pk]
    assert ids_on(web.get(URL, {"sort": "-fecha"})) == [big.pk, draft.pk, small.pk]
    assert ids_on(web.get(URL, {"sort": "cliente"})) == [big.pk, small.pk, draft.pk]
    assert ids_on(web.get(URL, {"sort": "-cliente"})) == [small.pk, big.pk, draft.pk]
    assert ids_on(web.get(URL, {"sort": "total"})) == [small.pk, draft.pk, big.pk]
    assert ids_on(web.get(URL, {"sort": "-total"})) == [big.pk, draft.pk, small.pk]
    # Drafts first, then the DTE's states as a document lives them (accepted before rejected).
    assert ids_on(web.get(URL, {"sort": "estado"})) == [draft.pk, small.pk, big.pk]
    assert ids_on(web.get(URL, {"sort": "-estado"})) == [big.pk, small.pk, draft.pk]


@pytest.mark.parametrize(
    "sort", ["monto_total", "-id", "partner__razon_social", "?", "--folio", "fecha;drop", "x" * 500]
)
def test_sort_outside_the_whitelist_is_ignored(web, issuer, sort):
    issued(issuer, folio=1, fecha_emision=date(2026, 10, 1))
    issued(issuer, folio=2, fecha_emision=date(2026, 11, 1))
    response = web.get(URL, {"sort": sort})
    assert response.status_code == 200
    assert response.context["sort"] == lists.DEFAULT_SORT
    assert [d.folio for d in response.context["page"]] == [2, 1]


def test_sort_links_toggle_and_keep_the_filters(web, issuer):
    issued(issuer, folio=1)
    html = web.get(URL, {"q": "Cliente", "sort": "folio", "per_page": "50"}).content.decode()
    assert 'aria-sort="ascending"' in html
    assert 'href="?q=Cliente&amp;sort=-folio&amp;per_page=50"' in html
    assert 'href="?q=Cliente&amp;sort=total&amp;per_page=50"' in html


# ---------------------------------------------------------------- page size and pager


def test_page_size_and_pager_keep_filters_and_sort(web, issuer):
    partner = PartnerFactory(company=issuer, razon_social="Mucho Comercio")
    SalesDocumentFactory.create_batch(60, company=issuer, partner=partner)
    SalesDocumentFactory(company=issuer)  # another customer: filtered out

    first = web.get(URL, {"q": "mucho", "sort": "-total"})
    assert len(ids_on(first)) == 25
    html = first.content.decode()
    assert "1–25 de 60" in html and "Página 1 de 3" in html
    assert 'href="?q=mucho&amp;sort=-total&page=2" rel="next"' in html
    assert 'href="?q=mucho&amp;sort=-total&page=3" class="pager-last"' in html

    fifty = web.get(URL, {"q": "mucho", "per_page": "50", "page": "2"})
    assert len(ids_on(fifty)) == 10
    html = fifty.content.decode()
    assert "51–60 de 60" in html
    assert 'href="?q=mucho&amp;per_page=50&page=1" rel="prev"' in html
    assert len(ids_on(web.get(URL, {"per_page": "100"}))) == 61
    for odd in ("7", "1000", "abc", "-25"):
        assert len(ids_on(web.get(URL, {"per_page": odd}))) == 25, odd
    assert web.get(URL, {"page": "999"}).status_code == 200  # the last page
    assert web.get(URL, {"page": "x"}).status_code == 200


def test_a_page_is_a_fixed_number_of_queries(client, issuer, clerk, django_assert_max_num_queries):
    client.force_login(clerk)
    client.get(URL)  # sessions, caches and the like warmed up
    issued(issuer, folio=1)
    with django_assert_max_num_queries(15) as few:
        assert len(ids_on(client.get(URL))) == 1
    for folio in range(2, 14):
        issued(issuer, folio=folio)
    SalesDocumentFactory.create_batch(12, company=issuer)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(ids_on(client.get(URL))) == 25
    page_query = [q["sql"] for q in few.captured_queries if '"erp_salesdocument"."id"' in q["sql"]]
    assert any('"dte_dte"' in sql and '"erp_partner"' in sql for sql in page_query)


# ---------------------------------------------------------------- export


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def test_csv_export_is_the_whole_filtered_list_for_excel(web, issuer):
    partner = PartnerFactory(
        company=issuer, rut="96790240-3", razon_social='=HYPERLINK("http://x")'
    )
    issued(issuer, folio=7, partner=partner, monto_total=1234567, fecha_emision=date(2026, 11, 3))
    SalesDocumentFactory.create_batch(30, company=issuer, tipo_dte=34)
    SalesDocumentFactory(company=issuer, tipo_dte=61)  # filtered out

    response = web.get(reverse("dte:document_export", args=["csv"]), {"tipo_dte": "34"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="documentos-76086428-5-' in response["Content-Disposition"]
    rows = _csv(response)
    assert rows[0] == list(lists.HEADERS)
    assert len(rows) == 31 and {r[0] for r in rows[1:]} == {"34"}  # not just a page of 25

    rows = _csv(web.get(reverse("dte:document_export", args=["csv"]), {"q": "7"}))
    assert rows[1] == [
        "33",
        "Factura electrónica",
        "7",
        "03-11-2026",
        "96.790.240-3",
        '\'=HYPERLINK("http://x")',  # a spreadsheet shows it, never runs it
        "Emitido",
        "Aceptado por el SII",
        "1000",
        "0",
        "190",
        "1234567",
    ]


def test_csv_export_keeps_the_sort(web, issuer):
    for folio, total in ((1, 300), (2, 100), (3, 200)):
        issued(issuer, folio=folio, monto_total=total)
    rows = _csv(web.get(reverse("dte:document_export", args=["csv"]), {"sort": "-total"}))
    assert [r[2] for r in rows[1:]] == ["1", "3", "2"]


def test_xlsx_export_has_numbers_and_dates(web, issuer):
    partner = PartnerFactory(company=issuer, rut="96790240-3", razon_social="@SUM(A1)")
    issued(issuer, folio=7, partner=partner, monto_total=1234567, fecha_emision=date(2026, 11, 3))
    SalesDocumentFactory.create_batch(3, company=issuer)
    response = web.get(reverse("dte:document_export", args=["xlsx"]), {"sort": "folio"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert response["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == lists.HEADERS and len(rows) == 5
    first = rows[1]
    assert first[:3] == (33, "Factura electrónica", 7)
    assert first[3].date() == date(2026, 11, 3)  # a date, not text
    assert first[4:8] == ("96.790.240-3", "'@SUM(A1)", "Emitido", "Aceptado por el SII")
    assert first[8:] == (1000, 0, 190, 1234567)
    total = sheet.cell(row=2, column=12)
    assert total.data_type == "n" and total.number_format == lists.CLP_FORMAT
    assert sheet.cell(row=2, column=4).number_format == lists.DATE_FORMAT
    assert rows[2][2] is None and rows[2][7] is None  # a draft: no folio, no SII state
    assert sheet.freeze_panes == "A2"


def test_export_reads_in_chunks(web, issuer, monkeypatch):
    """The export iterates the database (QuerySet.iterator) instead of loading the list."""
    from django.db.models.query import QuerySet

    SalesDocumentFactory.create_batch(5, company=issuer)
    calls = []
    original = QuerySet.iterator

    def counting(self, chunk_size=None):
        calls.append(chunk_size)
        return original(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", counting)
    assert len(_csv(web.get(reverse("dte:document_export", args=["csv"])))) == 6
    response = web.get(reverse("dte:document_export", args=["xlsx"]))
    assert len(list(load_workbook(io.BytesIO(b"".join(response.streaming_content))).active)) == 6
    assert calls == [lists.EXPORT_CHUNK, lists.EXPORT_CHUNK]


def test_export_refuses_bad_filters_and_unknown_formats(web, issuer):
    bad = web.get(reverse("dte:document_export", args=["csv"]), {"date_from": "ayer"})
    assert bad.status_code == 400 and "Revise los filtros" in bad.content.decode()
    assert web.get("/documentos/exportar/pdf/").status_code == 404
    ok = web.get(reverse("dte:document_export", args=["xlsx"]), {"sort": "nope", "per_page": "x"})
    assert ok.status_code == 200


def test_a_large_export_stays_in_bounded_memory(web, issuer):
    """20.000 rows: the CSV streams and the XLSX is written in write-only mode, so what Python
    holds does not grow with the list."""
    import tracemalloc

    partner = PartnerFactory(company=issuer)
    SalesDocument.objects.bulk_create(
        SalesDocument(
            company=issuer,
            tipo_dte=33,
            fecha_emision=date(2026, 11, 1),
            partner=partner,
            monto_neto=1000,
            iva=190,
            monto_total=1190,
            notes="x" * 200,
        )
        for _ in range(20_000)
    )
    url = reverse("dte:document_export", args=["csv"])
    tracemalloc.start()
    try:
        response = web.get(url)
        lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == 20_001
    assert peak < 15 * 1024 * 1024, peak


# ---------------------------------------------------------------- bulk actions


def _post(client, name, ids, **extra):
    return client.post(reverse(name), {"ids": [str(i) for i in ids], **extra})


def test_send_again_retries_what_needs_attention_and_wraps_what_was_left_signed(
    admin_web, issuer, admin_user
):
    stuck = issue(issuer)  # queued in its envelope; then the SII never answered
    Envelope.objects.filter(pk=stuck.envelope_id).update(status=EnvelopeState.NEEDS_ATTENTION)
    Dte.objects.filter(pk=stuck.pk).update(status=DteStatus.NEEDS_ATTENTION)
    draft = erp_draft(issuer)
    left = services.dte_issue(document=erp_draft(issuer), actor=None, envelope=False)
    accepted = issue(issuer)
    Dte.objects.filter(pk=accepted.pk).update(status=DteStatus.ACCEPTED)

    ids = [stuck.sales_document_id, draft.pk, left.sales_document_id, accepted.sales_document_id]
    response = _post(admin_web, "dte:document_bulk_send", ids, query="q=&sort=folio&page=2")
    assert response.status_code == 302
    assert response.url == "/documentos/?sort=folio&page=2"
    (message,) = messages_of(response)
    assert message.startswith("Envío al SII: 2 enviados, 1 omitido: borrador sin folio")
    assert f"1 omitido: ya aceptado por el SII (33 N° {accepted.folio})" in message

    stuck.refresh_from_db()
    assert stuck.status == DteStatus.QUEUED
    assert Envelope.objects.get(pk=stuck.envelope_id).status == EnvelopeState.QUEUED
    left.refresh_from_db()
    assert left.status == DteStatus.QUEUED and left.envelope_id is not None


def erp_draft(company):
    from erp import services as erp_services

    partner = PartnerFactory(company=company, email_dte="dte@cliente.example")
    return erp_services.sales_document_create(
        company=company,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 11, 20),
            "partner": partner.pk,
            "lines": [{"name": "Servicio", "quantity": 1, "unit_price": 1000}],
        },
    )


def test_a_clerk_cannot_retry_what_needs_an_administrator(web, issuer):
    stuck = issue(issuer)
    Envelope.objects.filter(pk=stuck.envelope_id).update(status=EnvelopeState.NEEDS_ATTENTION)
    Dte.objects.filter(pk=stuck.pk).update(status=DteStatus.NEEDS_ATTENTION)
    response = _post(web, "dte:document_bulk_send", [stuck.sales_document_id])
    (message,) = messages_of(response)
    assert message == (
        f"Envío al SII: 0 enviados, 1 omitido: {bulk.ADMIN_ONLY} (33 N° {stuck.folio})."
    )
    stuck.refresh_from_db()
    assert stuck.status == DteStatus.NEEDS_ATTENTION


def test_email_queues_each_issued_document_and_says_why_not(
    web, issuer, django_capture_on_commit_callbacks
):
    one = issue(issuer)
    nobody = issue(issuer, partner=PartnerFactory(company=issuer, email_dte=""))
    rejected = issue(issuer)
    Dte.objects.filter(pk=rejected.pk).update(status=DteStatus.REJECTED)
    draft = SalesDocumentFactory(company=issuer)
    ids = [d.sales_document_id for d in (one, nobody, rejected)] + [draft.pk]
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(web, "dte:document_bulk_email", ids)
    assert len(callbacks) == 1  # only `one` is queued
    (message,) = messages_of(response)
    assert message.startswith("Envío por correo: 1 en curso, ")
    assert "1 omitido: El receptor no tiene correo de intercambio: agréguelo en su ficha" in message
    assert "1 omitido: rechazado por el SII" in message
    assert f"1 omitido: borrador sin folio (borrador #{draft.pk})" in message


def test_print_is_one_pdf_with_a_page_per_document(web, issuer):
    documents = [issue(issuer) for _ in range(3)]
    draft = SalesDocumentFactory(company=issuer)
    ids = [d.sales_document_id for d in documents] + [draft.pk]
    response = _post(web, "dte:document_bulk_print", ids)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('inline; filename="documentos-')
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 3
    texts = [page.extract_text() for page in reader.pages]
    for page_text, dte in zip(texts, documents, strict=True):
        assert f"N° {dte.folio}" in page_text.replace("Nº", "N°")
    (message,) = messages_of(response)  # shown once back on the list
    expected = "Impresión: 3 documentos en el PDF, 1 omitido: borrador sin folio"
    assert message == f"{expected} (borrador #{draft.pk})."


def test_print_with_nothing_printable_goes_back_with_the_reason(web, issuer):
    draft = SalesDocumentFactory(company=issuer)
    response = _post(web, "dte:document_bulk_print", [draft.pk])
    assert response.status_code == 302
    assert messages_of(response) == [
        f"Impresión: 0 documentos en el PDF, 1 omitido: borrador sin folio (borrador #{draft.pk})."
    ]


def test_more_than_the_maximum_is_refused_whole(web, issuer):
    documents = SalesDocumentFactory.create_batch(3, company=issuer)
    ids = [d.pk for d in documents] + list(range(10**6, 10**6 + bulk.MAX_DOCUMENTS))
    for name in ("dte:document_bulk_send", "dte:document_bulk_email", "dte:document_bulk_print"):
        response = _post(web, name, ids)
        assert response.status_code == 302
        assert messages_of(web.get(response.url)) == [
            "Seleccione como máximo 200 documentos por acción (seleccionó 203)."
        ]
        response = _post(web, name, [])
        assert messages_of(web.get(response.url)) == ["Seleccione al menos un documento."]


def test_garbage_ids_are_not_found_never_a_500(web, issuer):
    for name in ("dte:document_bulk_send", "dte:document_bulk_email", "dte:document_bulk_print"):
        response = _post(web, name, ["abc", "-1", "9" * 40, "1.5"])
        assert response.status_code == 302, name
        assert "4 omitidos: no encontrado" in messages_of(web.get(response.url))[0]
    assert web.get(reverse("dte:document_bulk_send")).status_code == 405


def test_a_viewer_may_print_but_not_send_or_email(client, viewer, issuer):
    dte = issue(issuer)
    client.force_login(viewer)
    html = client.get(URL).content.decode()
    assert "Imprimir" in html and "Enviar de nuevo al SII" not in html
    for name in ("dte:document_bulk_send", "dte:document_bulk_email"):
        assert _post(client, name, [dte.sales_document_id]).status_code == 403
    assert _post(client, "dte:document_bulk_print", [dte.sales_document_id]).status_code == 200
    assert client.get(reverse("dte:document_export", args=["csv"])).status_code == 200
    membership = MembershipFactory(user=UserFactory(), company=issuer, role=Role.VIEWER)
    with pytest.raises(bulk.PermissionDenied):
        bulk.send_again(membership=membership, ids=[str(dte.sales_document_id)], actor=None)


def test_another_companys_documents_are_not_found(client, outsider, issuer, other_company):
    theirs = issue(issuer)
    Dte.objects.filter(pk=theirs.pk).update(status=DteStatus.NEEDS_ATTENTION)
    client.force_login(outsider)
    assert ids_on(client.get(URL, {"q": str(theirs.folio)})) == []
    rows = _csv(client.get(reverse("dte:document_export", args=["csv"])))
    assert rows == [list(lists.HEADERS)]
    for name in ("dte:document_bulk_send", "dte:document_bulk_email", "dte:document_bulk_print"):
        response = _post(client, name, [theirs.sales_document_id])
        assert response.status_code == 302, name
        (message,) = messages_of(client.get(response.url))
        assert f"1 omitido: no encontrado (#{theirs.sales_document_id})" in message
    theirs.refresh_from_db()
    assert theirs.status == DteStatus.NEEDS_ATTENTION
    assert not theirs.events.filter(message__icontains="correo").exists()
