"""Batch issuing through the database (dte.services.dte_issue_many, the API's issue-batch, and
`manage.py issue` with a list): folios for a whole chunk in one lock, documents written in bulk,
a refusal that stops only its own document, no folio burned, and a query count that does not
grow with the number of documents."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dte import services
from dte.models import Caf, Dte, DteEvent, Envelope
from erp import services as erp_services
from erp.models import AuditEvent, ClosedPeriod, DocumentState, SalesDocument
from tests.dte.sii.conftest import make_drafts
from tests.dte.test_issue import draft_from_file
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db


def folios(company, tipo=33):
    return sorted(
        Dte.objects.filter(company=company, tipo_dte=tipo).values_list("folio", flat=True)
    )


def test_a_batch_is_issued_in_order_with_one_envelope_and_its_history(issuer, clerk):
    drafts = make_drafts(issuer, clerk, n=6)
    outcomes, envelopes = services.dte_issue_many(documents=drafts, actor=clerk)
    assert [o.document.pk for o in outcomes] == [d.pk for d in drafts]
    assert [o.dte.folio for o in outcomes] == [1, 2, 3, 4, 5, 6]
    assert len(envelopes) == 1 and envelopes[0].dtes.count() == 6
    assert Caf.objects.get(company=issuer, tipo_dte=33).next_folio == 7
    for outcome in outcomes:
        dte = Dte.objects.get(pk=outcome.dte.pk)
        assert dte.status == "queued" and dte.envelope_id == envelopes[0].pk
        history = list(dte.events.values_list("status", "message"))
        assert history == [
            ("signed", f"Folio {dte.folio} timbrado y firmado."),
            ("queued", "En cola para enviarse al SII."),
        ]
        doc = SalesDocument.objects.get(pk=outcome.document.pk)
        assert (doc.state, doc.folio, doc.updated_by) == (DocumentState.ISSUED, dte.folio, clerk)
        assert doc.issued_at is not None
        audit = AuditEvent.objects.get(entity="salesdocument", entity_id=doc.pk, action="update")
        assert audit.changes == {"state": ["draft", "issued"], "folio": [None, dte.folio]}
    assert envelopes[0].events.filter(status="queued").count() == 1


def test_refusals_stop_only_their_own_document_and_burn_no_folio(issuer, clerk):
    good = make_drafts(issuer, clerk, n=3)
    incomplete = PartnerFactory(company=issuer, giro="")  # a factura needs the receiver's giro
    (refused,) = make_drafts(issuer, clerk, n=1, partner=incomplete)
    last_month = (timezone.localdate().replace(day=1) - timedelta(days=1)).replace(day=1)
    closed = erp_services.sales_document_create(
        company=issuer,
        actor=clerk,
        data={
            "tipo_dte": 33,
            "fecha_emision": last_month,
            "partner": good[0].partner_id,
            "lines": [{"name": "Servicio", "quantity": Decimal(1), "unit_price": Decimal(10)}],
        },
    )
    ClosedPeriod.objects.create(company=issuer, periodo=last_month, closed_by=clerk)
    batch = [good[0], refused, good[1], closed, good[2]]
    outcomes, envelopes = services.dte_issue_many(documents=batch, actor=clerk)
    codes = [o.error.code if o.error else o.dte.folio for o in outcomes]
    assert codes == [1, "not_issuable", 2, "period_closed", 3]
    assert "giro" in outcomes[1].error.message
    assert Caf.objects.get(company=issuer, tipo_dte=33).next_folio == 4  # none burned
    for draft in (refused, closed):
        draft.refresh_from_db()
        assert draft.state == DocumentState.DRAFT and draft.folio is None
    assert len(envelopes) == 1


def test_a_caf_switch_and_running_out_within_one_batch(issuer, clerk, make_caf_file):
    Caf.objects.filter(company=issuer, tipo_dte=33).update(next_folio=98)
    services.caf_upload(company=issuer, actor=None, data=make_caf_file(33, 101, 104))
    drafts = make_drafts(issuer, clerk, n=9)
    outcomes, _ = services.dte_issue_many(documents=drafts, actor=clerk)
    issued = [o.dte.folio for o in outcomes if o.dte]
    assert issued == [98, 99, 100, 101, 102, 103, 104]
    assert [o.error.code for o in outcomes if o.error] == ["no_folios", "no_folios"]
    by_folio = {d.folio: d.caf.folio_desde for d in Dte.objects.select_related("caf")}
    assert by_folio[100] == 1 and by_folio[101] == 101  # each folio stamped with its own CAF
    for outcome in outcomes[:7]:
        assert services.sii_keys()  # the TED of each carries its CAF's range
        assert f"<F>{outcome.dte.folio}</F>".encode() in bytes(outcome.dte.xml)


def test_a_nota_modifies_a_factura_of_the_same_batch(issuer, demo_catalog, clerk):
    factura = draft_from_file(issuer, 33)
    nota = draft_from_file(issuer, 61)  # refers to the factura N° 1
    boleta = draft_from_file(issuer, 39)
    outcomes, envelopes = services.dte_issue_many(documents=[nota, factura, boleta], actor=clerk)
    assert [o.error for o in outcomes] == [None, None, None]
    assert [(o.document.tipo_dte, o.dte.folio) for o in outcomes] == [(61, 1), (33, 1), (39, 1)]
    assert sorted(e.kind for e in envelopes) == ["EnvioBOLETA", "EnvioDTE"]


def test_an_envelope_the_schema_refuses_sends_the_chunk_one_by_one(issuer, clerk, monkeypatch):
    """The fast path builds and validates the chunk's envelope before anything is stored; when
    that fails the chunk is rolled back and goes one document at a time, each validated alone."""
    real = services._validate_envelope
    calls = []

    def refuse_first(kind, xml):
        calls.append(kind)
        if len(calls) == 1:
            raise services.DomainError("schema_invalid", "El sobre no cumple el esquema.")
        return real(kind, xml)

    monkeypatch.setattr(services, "_validate_envelope", refuse_first)
    drafts = make_drafts(issuer, clerk, n=4)
    outcomes, envelopes = services.dte_issue_many(documents=drafts, actor=clerk)
    assert [o.dte.folio for o in outcomes] == [1, 2, 3, 4]  # the rolled-back folios, reused
    assert len(calls) == 2 and len(envelopes) == 1
    assert Envelope.objects.count() == 1
    assert Dte.objects.filter(status="queued").count() == 4


def test_the_query_count_does_not_grow_with_the_batch(issuer, clerk):
    def count(n):
        drafts = make_drafts(issuer, clerk, n=n)
        with CaptureQueriesContext(connection) as queries:
            outcomes, _ = services.dte_issue_many(documents=drafts, actor=clerk)
        assert all(o.dte for o in outcomes)
        return len(queries)

    count(1)  # warm caches (the certificate, the CAF)
    small, large = count(3), count(30)
    assert small == large, (small, large)
    assert large <= 30


def test_a_single_issue_takes_few_queries(issuer, clerk, django_assert_max_num_queries):
    services.dte_issue(document=make_drafts(issuer, clerk)[0], actor=clerk)  # warm caches
    (draft,) = make_drafts(issuer, clerk)
    with django_assert_max_num_queries(20):
        dte = services.dte_issue(document=draft, actor=clerk)
    assert dte.folio == 2 and dte.status == "queued"


def test_the_api_issues_a_batch(issuer, clerk, client):
    drafts = make_drafts(issuer, clerk, n=3)
    incomplete = PartnerFactory(company=issuer, giro="")
    (refused,) = make_drafts(issuer, clerk, partner=incomplete)
    client.force_login(clerk)
    ids = [drafts[0].pk, refused.pk, drafts[1].pk, 999999, drafts[2].pk]
    url = f"/api/v1/companies/{issuer.rut}/sales-documents/issue-batch/"
    response = client.post(url, {"documents": ids}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["issued"], body["refused"]) == (3, 2) and len(body["envelopes"]) == 1
    assert [r["document"] for r in body["results"]] == ids
    assert [r["folio"] for r in body["results"]] == [1, None, 2, None, 3]
    assert body["results"][1]["error"]["code"] == "not_issuable"
    assert body["results"][3]["error"]["code"] == "not_found"
    # Bad input: a field-level 400, nothing issued.
    for bad, field_message in (
        ({"documents": []}, "documents"),
        ({"documents": [drafts[0].pk, drafts[0].pk]}, "documents"),
        ({"documents": ["x"]}, "documents"),
        ({"documents": [2**70]}, "documents"),
        ({}, "documents"),
    ):
        response = client.post(url, bad, content_type="application/json")
        assert response.status_code == 400 and field_message in str(response.json())
    assert Dte.objects.count() == 3


def test_the_api_batch_needs_the_issue_permission(issuer, viewer, client):
    drafts = make_drafts(issuer, viewer, n=1)
    client.force_login(viewer)
    url = f"/api/v1/companies/{issuer.rut}/sales-documents/issue-batch/"
    response = client.post(url, {"documents": [drafts[0].pk]}, content_type="application/json")
    assert response.status_code == 403
    assert not Dte.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_and_single_issues_keep_folios_consecutive(
    company, sandbox, cert_pfx, make_caf_file, clerk
):
    """Four batches and two one-by-one issuers at once on PostgreSQL, across a CAF switch: every
    folio taken once, none skipped, and the drafts that cannot be issued burn none."""
    from tests.dte.fixtures import CERT_PASSWORD

    assert connection.vendor == "postgresql"
    services.certificate_upload(company=company, actor=None, data=cert_pfx, password=CERT_PASSWORD)
    services.caf_upload(company=company, actor=None, data=make_caf_file(33, 1, 150))
    services.caf_upload(company=company, actor=None, data=make_caf_file(33, 151, 1000))
    partner = PartnerFactory(company=company)
    broken = PartnerFactory(company=company, giro="")

    def draft(n, who=partner):
        return erp_services.sales_document_create(
            company=company,
            actor=clerk,
            data={
                "tipo_dte": 33,
                "fecha_emision": date(2026, 11, 20),
                "partner": who.pk,
                "lines": [{"name": f"Ítem {n}", "quantity": Decimal(1), "unit_price": Decimal(n)}],
            },
        )

    batches = [[draft(100 * b + n) for n in range(1, 51)] + [draft(0, broken)] for b in range(4)]
    singles = [[draft(1000 + 100 * s + n) for n in range(25)] for s in range(2)]
    failures: list[str] = []
    start = threading.Barrier(len(batches) + len(singles))

    def run_batch(documents):
        try:
            start.wait(timeout=30)
            outcomes, _ = services.dte_issue_many(documents=documents, actor=clerk)
            refused = [o.error.code for o in outcomes if o.error]
            if refused != ["not_issuable"]:
                failures.append(f"batch refused {refused}")
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            connections.close_all()

    def run_singles(documents):
        try:
            start.wait(timeout=30)
            for document in documents:
                services.dte_issue(document=document, actor=clerk)
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run_batch, args=(b,)) for b in batches]
    threads += [threading.Thread(target=run_singles, args=(s,)) for s in singles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures[:3]
    total = 4 * 50 + 2 * 25
    assert folios(company) == list(range(1, total + 1))
    cafs = dict(Caf.objects.filter(company=company).values_list("folio_desde", "next_folio"))
    assert cafs == {1: 151, 151: total + 1}
    for dte in Dte.objects.filter(company=company).select_related("caf"):
        assert dte.caf.folio_desde <= dte.folio <= dte.caf.folio_hasta
    assert SalesDocument.objects.filter(state=DocumentState.DRAFT).count() == 4  # the broken
    issued = SalesDocument.objects.exclude(folio=None).values_list("folio", flat=True)
    assert sorted(issued) == list(range(1, total + 1))
    assert DteEvent.objects.filter(status="signed").count() == total


def test_a_folio_stored_already_refuses_each_draft_and_stores_nothing(issuer, clerk):
    """A CAF whose next folio was put back by hand: the chunk's bulk insert collides, the chunk
    is rolled back, and each draft, issued alone, is refused with the reason."""
    services.dte_issue_many(documents=make_drafts(issuer, clerk, n=3), actor=clerk)
    Caf.objects.filter(company=issuer, tipo_dte=33).update(next_folio=2)
    drafts = make_drafts(issuer, clerk, n=2)
    outcomes, envelopes = services.dte_issue_many(documents=drafts, actor=clerk)
    assert envelopes == []
    assert [(o.error.code, o.error.message) for o in outcomes] == [
        ("no_folios", "El folio 2 ya fue usado.")
    ] * 2
    assert Dte.objects.count() == 3 and Envelope.objects.count() == 1
    for draft in drafts:
        draft.refresh_from_db()
        assert draft.state == DocumentState.DRAFT and draft.folio is None


XML_COLUMNS = {
    "dte_dte": "xml",
    "dte_envelope": "xml",
    "dte_receivedenvelope": "xml",
    "dte_receiveddte": "xml",
}


@pytest.mark.postgres
def test_on_postgresql_the_signed_xml_is_stored_whole_and_compressed_with_lz4(issuer, clerk):
    """The batch's inserts bind their values apart from the SQL (erp.services.server_bound) and
    the XML columns compress with LZ4 (migration dte/0017): what is read back is, byte for
    byte, what was signed, and the history and audit rows keep their values."""
    with connection.cursor() as cursor:
        for table, column in XML_COLUMNS.items():
            cursor.execute(
                "SELECT attcompression FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attname = %s",
                [table, column],
            )
            assert cursor.fetchone() == ("l",), table
    drafts = make_drafts(issuer, clerk, n=4)
    outcomes, (envelope,) = services.dte_issue_many(documents=drafts, actor=clerk)
    for outcome in outcomes:
        stored = Dte.objects.get(pk=outcome.dte.pk)
        assert bytes(stored.xml) == bytes(outcome.dte.xml)
        assert bytes(stored.xml).startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
        assert bytes(stored.ted) == bytes(outcome.dte.ted)
        assert stored.signature_value == outcome.dte.signature_value
        assert stored.monto_total == outcome.document.monto_total
    stored_envelope = Envelope.objects.get(pk=envelope.pk)
    assert bytes(stored_envelope.xml) == bytes(envelope.xml)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(xml) FROM dte_envelope WHERE id = %s", [envelope.pk]
        )
        assert cursor.fetchone() == ("lz4",)
    audit = AuditEvent.objects.filter(entity="salesdocument", action="update").order_by("pk")
    assert [a.changes["folio"] for a in audit] == [[None, f] for f in (1, 2, 3, 4)]
    assert DteEvent.objects.filter(status="queued", message__startswith="En cola").count() == 4
