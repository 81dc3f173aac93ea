"""The hot queries use the indexes made for them (issue 18), checked on PostgreSQL's own plans.

A realistic table shape (a few thousand documents of three companies over two years, most DTEs
accepted, most envelopes processed, most received documents decided), ANALYZEd; then each hot
query is run through the code that makes it (API endpoints, pages' selectors, the outbox's
claims, the F29's aggregates) and every statement it sends is EXPLAINed (FORMAT JSON). Each must
use its index and none may read a big table whole (Seq Scan). Removing an index makes its case
fail: the plan names the index it expects, and `test_without_the_index_the_plan_scans` shows
that the query then falls back to reading the table (or sorting it).

Left out on purpose: a page's COUNT(*) (pagination) and the dashboard's company-wide totals
read every row of the company, whichever path; the certification's libros are a handful of
rows (PostgreSQL reads a small table whole, rightly).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dte import dashboard as dte_dashboard
from dte import lists, receiving, sending
from dte import selectors as dte_selectors
from dte.models import Caf, Certificate, Dte, DteEvent, Envelope, ReceivedDte, ReceivedEnvelope
from erp.models import (
    Company,
    DocumentState,
    Partner,
    PurchaseDocument,
    SalesDocument,
    SalesDocumentLine,
)
from f29 import selectors as f29_selectors
from f29.models import RcvEntry
from tests.factories import CompanyFactory, MembershipFactory, UserFactory, rut_from

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

BIG_TABLES = {
    "erp_partner",
    "erp_salesdocument",
    "erp_salesdocumentline",
    "erp_purchasedocument",
    "dte_dte",
    "dte_dteevent",
    "dte_envelope",
    "dte_receiveddte",
    "f29_rcventry",
}
MONTHS = 24
DOCS = {0: 2400, 1: 1600, 2: 1000}  # sales documents per company (the first is the one asked)
PARTNERS = 150
RECEIVED = 700
PURCHASES = 900
RCV = 1200
TODAY = timezone.localdate()
PERIOD = (TODAY.replace(day=1) - timedelta(days=1)).replace(day=1)  # last month


def _day(k: int, n: int) -> date:
    """The k-th of n documents spread evenly over the MONTHS before TODAY, oldest first."""
    return TODAY - timedelta(days=(MONTHS * 30) * (n - k) // n)


def _blob(size: int) -> bytes:
    """Stored XML of about that size, as compressible as a real one (tags repeat, the digests
    and signatures do not)."""
    random = base64.b64encode(os.urandom(size // 3)).decode()
    return (("<Detalle><NroLinDet>1</NroLinDet>" * (size // 64)) + random)[:size].encode()


def _chronological(rows: list, when) -> list:
    """Rows of every company in the order they happened: a live table is written over time by
    all its companies at once, so its physical order follows the date, not the company."""
    return sorted(rows, key=when)


def _build() -> list[Company]:
    """A few thousand rows per big table, bulk-inserted as a live database holds them."""
    now = timezone.now()
    companies = [CompanyFactory(razon_social=f"Empresa {i} SpA") for i in range(len(DOCS))]
    xml, ted, signature = _blob(4000), _blob(900), base64.b64encode(os.urandom(256)).decode()
    partners: dict[int, list[Partner]] = {}
    cafs: dict[int, Caf] = {}
    certs: dict[int, Certificate] = {}
    for ci, company in enumerate(companies):
        partners[ci] = Partner.objects.bulk_create(
            Partner(
                company=company,
                rut=rut_from(ci * 10_000 + k),
                razon_social=f"Cliente {k:04d} {ci} Ltda.",
                giro="Comercio",
                direccion="Calle 1",
                comuna="Providencia",
                ciudad="Santiago",
            )
            for k in range(PARTNERS)
        )
        cafs[ci] = Caf.objects.create(
            company=company,
            tipo_dte=33,
            folio_desde=1,
            folio_hasta=100_000,
            next_folio=DOCS[ci] + 1,
            fecha_autorizacion=date(2024, 1, 1),
            idk=900,
            caf_xml=b"<CAF/>",
            file_encrypted=b"x",
        )
        certs[ci] = Certificate.objects.create(
            company=company,
            holder_name="Titular",
            holder_rut="11111111-1",
            not_before=now - timedelta(days=400),
            not_after=now + timedelta(days=400),
            fingerprint=f"{ci:064d}",
            pfx_encrypted=b"x",
            password_encrypted=b"x",
        )
    documents = SalesDocument.objects.bulk_create(
        _chronological(
            [
                SalesDocument(
                    company=company,
                    tipo_dte=33,
                    state=DocumentState.ISSUED if k % 10 else DocumentState.DRAFT,
                    folio=k + 1 if k % 10 else None,
                    fecha_emision=_day(k, DOCS[ci]),
                    partner=partners[ci][k % PARTNERS],
                    monto_neto=1000 + k,
                    tasa_iva=19,
                    iva=190,
                    monto_total=1190 + k,
                    notes="Orden de compra 4500012345, despacho en bodega central",
                )
                for ci, company in enumerate(companies)
                for k in range(DOCS[ci])
            ],
            lambda d: d.fecha_emision,
        )
    )
    SalesDocumentLine.objects.bulk_create(
        SalesDocumentLine(
            document=doc, line_number=line, name="Servicio", quantity=1, unit_price=1000
        )
        for doc in documents
        for line in (1, 2)
    )
    index = {company.pk: ci for ci, company in enumerate(companies)}
    issued = [doc for doc in documents if doc.state == DocumentState.ISSUED]
    # One envelope per five documents of a company, in the order they were issued.
    by_company: dict[int, list[SalesDocument]] = {}
    for doc in issued:
        by_company.setdefault(doc.company_id, []).append(doc)
    groups = sorted(
        (docs[i : i + 5] for docs in by_company.values() for i in range(0, len(docs), 5)),
        key=lambda group: group[0].fecha_emision,
    )
    envelopes = Envelope.objects.bulk_create(
        Envelope(
            company_id=group[0].company_id,
            kind="EnvioDTE",
            xml=xml,
            certificate=certs[index[group[0].company_id]],
            status="processed",
            track_id=str(k),
        )
        for k, group in enumerate(groups)
    )
    dtes = Dte.objects.bulk_create(
        Dte(
            company_id=doc.company_id,
            sales_document=doc,
            tipo_dte=33,
            folio=doc.folio,
            caf=cafs[index[doc.company_id]],
            envelope=envelope,
            fecha_emision=doc.fecha_emision,
            rut_receptor=doc.partner.rut,
            monto_total=doc.monto_total,
            xml=xml,
            signature_value=signature,
            ted=ted,
            status="accepted" if doc.pk % 50 else "rejected",
        )
        for envelope, group in zip(envelopes, groups, strict=True)
        for doc in group
    )
    DteEvent.objects.bulk_create(
        DteEvent(dte=dte, status=status, kind="state")
        for dte in dtes
        for status in ("signed", "queued", "sent", dte.status)
    )
    intakes = {
        ci: ReceivedEnvelope.objects.create(
            company=company,
            source="upload",
            name="envio.xml",
            sha256=f"{ci:064d}",
            kind="EnvioDTE",
            estado_recep_env=0,
            xml=b"<EnvioDTE/>",
        )
        for ci, company in enumerate(companies)
    }
    ReceivedDte.objects.bulk_create(
        _chronological(
            [
                ReceivedDte(
                    company=company,
                    envelope=intakes[ci],
                    tipo_dte=33,
                    folio=k + 1,
                    rut_emisor=partners[ci][k % PARTNERS].rut,
                    fecha_emision=_day(k, RECEIVED),
                    monto_total=1190,
                    xml=xml,
                    estado_recep_dte=0,
                    # The last days' documents wait for a decision; older ones were decided.
                    status="received"
                    if k >= RECEIVED - 20
                    else ("accepted" if k % 7 else "claimed"),
                    sii_confirmation="DOK",
                    claim_deadline=now + timedelta(days=k % 10 - 2),
                )
                for ci, company in enumerate(companies)
                for k in range(RECEIVED)
            ],
            lambda r: r.fecha_emision,
        )
    )
    PurchaseDocument.objects.bulk_create(
        _chronological(
            [
                PurchaseDocument(
                    company=company,
                    tipo_doc=33,
                    folio=k + 1,
                    partner=partners[ci][k % PARTNERS],
                    rut_emisor=partners[ci][k % PARTNERS].rut,
                    fecha=_day(k, PURCHASES),
                    periodo=_day(k, PURCHASES).replace(day=1),
                    monto_neto=1000,
                    iva_recuperable=190,
                    monto_total=1190,
                )
                for ci, company in enumerate(companies)
                for k in range(PURCHASES)
            ],
            lambda p: p.fecha,
        )
    )
    RcvEntry.objects.bulk_create(
        _chronological(
            [
                RcvEntry(
                    company=company,
                    kind="compras" if k % 2 else "ventas",
                    estado="registro",
                    periodo=_day(k, RCV).replace(day=1),
                    tipo=33,
                    folio=k + 1,
                    rut=partners[ci][k % PARTNERS].rut,
                    razon_social=partners[ci][k % PARTNERS].razon_social,
                    fecha=_day(k, RCV),
                    monto_total=1190,
                )
                for ci, company in enumerate(companies)
                for k in range(RCV)
            ],
            lambda e: e.fecha,
        )
    )
    # The outbox as it stands on a busy day: a few envelopes queued, uploading, waiting for
    # the SII's verdict; thousands of final ones.
    open_rows = list(Envelope.objects.filter(company=companies[0]).order_by("-pk")[:12])
    for k, envelope in enumerate(open_rows):
        envelope.status = ("queued", "uploading", "sent", "uncertain")[k % 4]
        envelope.next_attempt_at = now - timedelta(seconds=30) if k % 2 else None
        envelope.upload_started_at = now - timedelta(minutes=10)
    Envelope.objects.bulk_update(open_rows, ["status", "next_attempt_at", "upload_started_at"])
    # Two documents signed and left without an envelope a while ago (a failed batch).
    stranded = list(Dte.objects.filter(company=companies[0]).order_by("-pk")[:2])
    Dte.objects.filter(pk__in=[d.pk for d in stranded]).update(
        status="signed", envelope=None, created_at=now - timedelta(hours=1)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return companies


@pytest.fixture
def companies(db) -> list[Company]:
    return _build()


# ---------------------------------------------------------------- plans


def _explain(sql: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    data = json.loads(raw) if isinstance(raw, str) else raw
    return data[0]["Plan"]


def _nodes(plan: dict[str, Any]):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


# A page's count of all the company's rows (pagination): it reads them all, whichever path.
_PAGE_COUNT = re.compile(
    r'SELECT COUNT\(\*\) AS "__count" FROM "\w+"( INNER JOIN .*)? WHERE "\w+"\."company_id" = \d+$'
)


def _statements(run: Callable[[], Any]) -> list[str]:
    """The statements `run` sends that touch a big table, but a page's count."""
    with CaptureQueriesContext(connection) as captured:
        run()
    statements = []
    for query in captured.captured_queries:
        sql = query["sql"]
        if sql.startswith("DECLARE "):  # .iterator(): a server-side cursor over the SELECT
            sql = sql[sql.index(" CURSOR FOR ") + len(" CURSOR FOR ") :]
        head = sql.lstrip().upper()
        if not head.startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
            continue
        if _PAGE_COUNT.match(sql.strip()):
            continue
        if not any(f'"{table}"' in sql for table in BIG_TABLES):
            continue
        statements.append(sql)
    return statements


# An UPDATE of rows named by their primary keys (the outbox claim's lease) has its index
# already; whether the planner walks it or the table depends on the table's size at that moment
# (CI once chose a Seq Scan over 1,200 envelopes for 12 ids), not on a missing index.
BY_PRIMARY_KEYS = re.compile(r'^UPDATE "\w+" SET .* WHERE "\w+"\."id" IN \([0-9, ]+\)$', re.S)


def _summary(run: Callable[[], Any]) -> tuple[set[str], list[tuple[str, ...]], list[str]]:
    """Indexes used; (node type, table) of each whole-table read or sort of a big table; SQL."""
    used: set[str] = set()
    bad: list[tuple[str, ...]] = []
    statements = _statements(run)
    for sql in statements:
        for node in _nodes(_explain(sql)):
            if "Index Name" in node:
                used.add(node["Index Name"])
            if (
                node["Node Type"] == "Seq Scan"
                and node.get("Relation Name") in BIG_TABLES
                and not BY_PRIMARY_KEYS.match(sql)
            ):
                bad.append(("Seq Scan", node["Relation Name"], sql[:400]))
    return used, bad, statements


def _api(company: Company):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = UserFactory()
    MembershipFactory(user=user, company=company, role="admin")
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _get(client, url: str) -> Callable[[], Any]:
    def run():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)

    return run


# Each hot query: what runs it, and the index it must use (None: any, as long as no big table
# is read whole).
Case = tuple[str, Callable[[list[Company], Any], Callable[[], Any]], str | None]


def _base(c: list[Company]) -> str:
    return f"/api/v1/companies/{c[0].rut}"


CASES: list[Case] = [
    (
        "API sales documents, newest first",
        lambda c, api: _get(api, f"{_base(c)}/sales-documents/"),
        "salesdoc_company_fecha",
    ),
    (
        "API sales document detail",
        lambda c, api: _get(
            api,
            f"{_base(c)}/sales-documents/"
            f"{SalesDocument.objects.filter(company=c[0]).latest('pk').pk}/",
        ),
        None,
    ),
    (
        "API purchase book, newest first",
        lambda c, api: _get(api, f"{_base(c)}/purchase-documents/"),
        "purchase_company_fecha",
    ),
    (
        "API partners by name",
        lambda c, api: _get(api, f"{_base(c)}/partners/"),
        "partner_company_name",
    ),
    (
        "API DTEs, newest first",
        lambda c, api: _get(api, f"{_base(c)}/dtes/"),
        "dte_company_recent",
    ),
    (
        "API received documents, newest first",
        lambda c, api: _get(api, f"{_base(c)}/received-dtes/"),
        "received_company_recent",
    ),
    (
        "Documentos page (default sort)",
        lambda c, api: lambda: list(lists.page_rows(lists.sales_documents(company=c[0]))[:25]),
        "salesdoc_company_fecha",
    ),
    (
        "F29 sales of a period",
        lambda c, api: lambda: f29_selectors.sales_aggregates(company=c[0], periodo=PERIOD),
        "salesdoc_company_fecha",
    ),
    (
        "F29 purchases of a period",
        lambda c, api: lambda: f29_selectors.purchase_aggregates(company=c[0], periodo=PERIOD),
        None,
    ),
    (
        "RCV register of a period (reconciliation)",
        lambda c, api: lambda: f29_selectors.rcv_side(company=c[0], periodo=PERIOD, kind="compras"),
        "rcv_entry_period",
    ),
    (
        "outbox claim (beat tick)",
        lambda c, api: lambda: sending.outbox_claim(),
        "envelope_outbox_open",
    ),
    (
        "stranded documents (beat tick)",
        lambda c, api: lambda: sending.stranded_documents(),
        None,
    ),
    (
        "received documents' SII sync (beat)",
        lambda c, api: lambda: receiving.sync_open(limit=500),
        "received_sync_due",
    ),
    (
        "dashboard: received waiting, by deadline",
        lambda c, api: (
            lambda: dte_dashboard.received_panel(
                company=c[0], today=timezone.localdate(), now=timezone.now()
            )
        ),
        "received_open_deadline",
    ),
    (
        "warning: claim deadlines within two days",
        lambda c, api: lambda: dte_selectors.receiving_warnings(company=c[0], now=timezone.now()),
        "received_open_deadline",
    ),
]


@pytest.fixture
def no_sii(monkeypatch):
    """sync_open's per-document call to the SII is not what is measured here."""
    monkeypatch.setattr(receiving, "sync_with_sii", lambda pk, now=None: "skipped")


def test_every_hot_query_uses_its_index(companies, no_sii):
    # What the plans are made on (a guard against a fixture that shrank).
    assert SalesDocument.objects.count() == sum(DOCS.values())
    assert Dte.objects.count() > 4000
    assert Envelope.objects.exclude(status="processed").count() == 12
    api = _api(companies[0])
    problems = {}
    for name, make, index in CASES:
        used, bad, statements = _summary(make(companies, api))
        assert statements, f"{name}: no statement on a big table was captured"
        if bad or (index and index not in used):
            problems[name] = {"expected": index, "used": sorted(used), "whole reads": bad}
    assert problems == {}, json.dumps(problems, indent=1)


# Indexes whose absence sends their query back to reading the whole table (or sorting all of
# the company's rows): the case that needs each, by name.
WITHOUT: dict[str, str] = {
    "envelope_outbox_open": "outbox claim (beat tick)",
    "received_sync_due": "received documents' SII sync (beat)",
    "salesdoc_company_fecha": "API sales documents, newest first",
    "purchase_company_fecha": "API purchase book, newest first",
    "dte_company_recent": "API DTEs, newest first",
    "received_company_recent": "API received documents, newest first",
    "rcv_entry_period": "RCV register of a period (reconciliation)",
    "partner_company_name": "API partners by name",
}


def _whole_or_sorted(run: Callable[[], Any]) -> list[tuple[str, str]]:
    found = []
    for sql in _statements(run):
        plan = _explain(sql)
        for node in _nodes(plan):
            table = node.get("Relation Name")
            if node["Node Type"] in ("Seq Scan", "Bitmap Heap Scan") and table in BIG_TABLES:
                found.append((node["Node Type"], table))
            if node["Node Type"] in ("Sort", "Incremental Sort"):
                found.append((node["Node Type"], ""))
    return found


def test_without_the_index_the_plan_scans(companies, no_sii):
    """The same query with its index dropped (in a savepoint, rolled back) reads the table
    whole or sorts it: the index is what made it cheap."""
    api = _api(companies[0])
    makers = {name: make for name, make, _ in CASES}
    still_cheap = {}
    for index, case in WITHOUT.items():
        run = makers[case](companies, api)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f'DROP INDEX "{index}"')
            used, _, _ = _summary(run)
            worse = _whole_or_sorted(run)
            transaction.set_rollback(True)
        if index in used or not worse:
            still_cheap[index] = sorted(used)
    assert still_cheap == {}
