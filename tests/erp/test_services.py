from datetime import date
from decimal import Decimal as D

import pytest

from erp import services
from erp.errors import DomainError
from erp.models import AuditEvent, DocumentState, Partner, SalesDocument
from tests.factories import PartnerFactory, ProductFactory, SalesDocumentFactory

pytestmark = pytest.mark.django_db


def partner_data(**overrides):
    return {
        "rut": "96.790.240-3",
        "razon_social": "Distribuidora Los Andes S.A.",
        "giro": "Mayorista",
        "comuna": "Las Condes",
        "email_dte": "dte@andes.example",
        **overrides,
    }


def doc_data(partner, **overrides):
    return {
        "tipo_dte": 33,
        "fecha_emision": date(2026, 11, 20),
        "partner": partner.pk,
        "lines": [
            {"name": "Consultoría", "quantity": D(2), "unit_price": D(45000)},
            {"name": "Licencia", "quantity": D(1), "unit_price": D(120000), "discount_pct": D(10)},
        ],
        **overrides,
    }


class TestPartner:
    def test_create_normalizes_rut_and_audits(self, company, clerk):
        partner = services.partner_create(company=company, actor=clerk, data=partner_data())
        assert partner.rut == "96790240-3"
        assert partner.created_by == clerk
        event = AuditEvent.objects.get(entity="partner", entity_id=partner.pk)
        assert event.action == "create" and event.actor == clerk
        assert event.changes["rut"] == "96790240-3"

    def test_invalid_rut_is_a_field_error(self, company, clerk):
        with pytest.raises(DomainError) as info:
            services.partner_create(company=company, actor=clerk, data=partner_data(rut="1-2"))
        assert "rut" in info.value.fields
        assert Partner.objects.count() == 0

    def test_rut_unique_per_company_only(self, company, other_company, clerk):
        services.partner_create(company=company, actor=clerk, data=partner_data())
        with pytest.raises(DomainError) as info:
            services.partner_create(
                company=company, actor=clerk, data=partner_data(rut="96790240-3")
            )
        assert info.value.code == "duplicate_rut"
        assert "rut" in info.value.fields
        services.partner_create(company=other_company, actor=clerk, data=partner_data())

    def test_update_records_who_changed_what(self, company, clerk, admin_user):
        partner = services.partner_create(company=company, actor=clerk, data=partner_data())
        services.partner_update(
            partner=partner, actor=admin_user, data={"comuna": "Vitacura", "giro": "Mayorista"}
        )
        partner.refresh_from_db()
        assert partner.updated_by == admin_user and partner.created_by == clerk
        event = AuditEvent.objects.filter(action="update").get()
        assert event.actor == admin_user
        assert event.changes == {"comuna": ["Las Condes", "Vitacura"]}

    def test_unknown_field_is_refused(self, company, clerk):
        with pytest.raises(DomainError) as info:
            services.partner_create(company=company, actor=clerk, data=partner_data(company=3))
        assert "company" in info.value.fields

    def test_cannot_delete_partner_with_documents(self, company, clerk):
        doc = SalesDocumentFactory(company=company)
        with pytest.raises(DomainError) as info:
            services.partner_delete(partner=doc.partner, actor=clerk)
        assert info.value.code == "in_use"


class TestProduct:
    def test_negative_price_is_a_field_error(self, company, clerk):
        with pytest.raises(DomainError) as info:
            services.product_create(
                company=company,
                actor=clerk,
                data={"code": "X", "name": "X", "unit_price": D(-1)},
            )
        assert "unit_price" in info.value.fields

    def test_code_unique_per_company(self, company, clerk):
        data = {"code": "A-1", "name": "Uno", "unit_price": D(10)}
        services.product_create(company=company, actor=clerk, data=data)
        with pytest.raises(DomainError) as info:
            services.product_create(company=company, actor=clerk, data=data)
        assert info.value.code == "duplicate_code"


class TestSalesDocument:
    def test_create_computes_and_stores_totals(self, company, clerk):
        partner = PartnerFactory(company=company)
        doc = services.sales_document_create(company=company, actor=clerk, data=doc_data(partner))
        assert doc.state == DocumentState.DRAFT
        assert [(ln.line_number, ln.amount) for ln in doc.lines.all()] == [(1, 90000), (2, 108000)]
        assert (doc.monto_neto, doc.iva, doc.monto_total) == (198000, 37620, 235620)
        assert doc.created_by == clerk

    def test_line_defaults_from_product(self, company, clerk):
        partner = PartnerFactory(company=company)
        product = ProductFactory(company=company, unit_price=D("4290"), name="Resma", unit="RM")
        exempt = ProductFactory(company=company, unit_price=D(80000), is_exempt=True)
        doc = services.sales_document_create(
            company=company,
            actor=clerk,
            data=doc_data(
                partner,
                lines=[
                    {"product": product.pk, "quantity": D(2)},
                    {"product": exempt.pk, "quantity": D(1)},
                ],
            ),
        )
        first, second = doc.lines.all()
        assert (first.name, first.unit, first.unit_price, first.amount) == (
            "Resma",
            "RM",
            4290,
            8580,
        )
        assert second.is_exempt
        assert (doc.monto_neto, doc.monto_exento, doc.iva) == (8580, 80000, 1630)

    @pytest.mark.parametrize(
        ("line", "field"),
        [
            ({"name": "X", "quantity": D(-1), "unit_price": D(10)}, "lines.0.quantity"),
            ({"name": "X", "quantity": D(1), "unit_price": D(-10)}, "lines.0.unit_price"),
            (
                {"name": "X", "quantity": D(1), "unit_price": D(10), "discount_pct": D(120)},
                "lines.0.discount_pct",
            ),
            ({"name": "", "quantity": D(1), "unit_price": D(10)}, "lines.0.name"),
            ({"name": "X" * 81, "quantity": D(1), "unit_price": D(10)}, "lines.0.name"),
            ({"product": 999999, "quantity": D(1)}, "lines.0.product"),
            ({"name": "X", "quantity": "abc", "unit_price": D(10)}, "lines.0.quantity"),
        ],
    )
    def test_bad_lines_are_field_errors_and_nothing_is_saved(self, company, clerk, line, field):
        partner = PartnerFactory(company=company)
        with pytest.raises(DomainError) as info:
            services.sales_document_create(
                company=company, actor=clerk, data=doc_data(partner, lines=[line])
            )
        assert field in info.value.fields, info.value.fields
        assert SalesDocument.objects.count() == 0
        assert AuditEvent.objects.filter(entity="salesdocument").count() == 0

    def test_product_of_another_company_is_unknown(self, company, other_company, clerk):
        partner = PartnerFactory(company=company)
        foreign = ProductFactory(company=other_company)
        with pytest.raises(DomainError) as info:
            services.sales_document_create(
                company=company,
                actor=clerk,
                data=doc_data(partner, lines=[{"product": foreign.pk, "quantity": D(1)}]),
            )
        assert "lines.0.product" in info.value.fields

    def test_partner_of_another_company_is_unknown(self, company, other_company, clerk):
        foreign = PartnerFactory(company=other_company)
        with pytest.raises(DomainError) as info:
            services.sales_document_create(company=company, actor=clerk, data=doc_data(foreign))
        assert "partner" in info.value.fields

    def test_factura_needs_an_affected_line(self, company, clerk):
        partner = PartnerFactory(company=company)
        lines = [{"name": "Curso", "quantity": D(1), "unit_price": D(10), "is_exempt": True}]
        with pytest.raises(DomainError) as info:
            services.sales_document_create(
                company=company, actor=clerk, data=doc_data(partner, lines=lines)
            )
        assert "lines" in info.value.fields

    def test_boleta_may_have_no_receiver_but_factura_may_not(self, company, clerk):
        data = {**doc_data(PartnerFactory(company=company)), "partner": None}
        with pytest.raises(DomainError) as info:
            services.sales_document_create(company=company, actor=clerk, data=data)
        assert "partner" in info.value.fields
        boleta = services.sales_document_create(
            company=company, actor=clerk, data={**data, "tipo_dte": 39}
        )
        assert boleta.partner is None
        # Boleta prices include IVA: 198.000 gross = 166.387 net + 31.613 IVA.
        assert (boleta.monto_neto, boleta.iva, boleta.monto_total) == (166387, 31613, 198000)

    def test_note_needs_a_reference_with_cod_ref(self, company, clerk):
        partner = PartnerFactory(company=company)
        with pytest.raises(DomainError) as info:
            services.sales_document_create(
                company=company, actor=clerk, data=doc_data(partner, tipo_dte=61)
            )
        assert "references" in info.value.fields
        ref = {"tipo_doc_ref": "33", "folio_ref": "120", "fecha_ref": date(2026, 11, 1)}
        with pytest.raises(DomainError) as info:
            services.sales_document_create(
                company=company,
                actor=clerk,
                data=doc_data(partner, tipo_dte=61, references=[ref]),
            )
        assert "references.0.cod_ref" in info.value.fields
        note = services.sales_document_create(
            company=company,
            actor=clerk,
            data=doc_data(
                partner, tipo_dte=61, references=[{**ref, "cod_ref": 3, "razon_ref": "Precio"}]
            ),
        )
        assert note.references.get().cod_ref == 3

    def test_due_date_before_issue_date(self, company, clerk):
        partner = PartnerFactory(company=company)
        with pytest.raises(DomainError) as info:
            services.sales_document_create(
                company=company,
                actor=clerk,
                data=doc_data(partner, fecha_vencimiento=date(2026, 11, 1)),
            )
        assert "fecha_vencimiento" in info.value.fields

    def test_update_replaces_lines_and_audits(self, company, clerk):
        partner = PartnerFactory(company=company)
        doc = services.sales_document_create(company=company, actor=clerk, data=doc_data(partner))
        services.sales_document_update(
            document=doc,
            actor=clerk,
            data={"lines": [{"name": "Uno", "quantity": D(1), "unit_price": D(1000)}]},
        )
        doc.refresh_from_db()
        assert doc.lines.count() == 1 and doc.monto_total == 1190
        event = AuditEvent.objects.get(entity="salesdocument", action="update")
        assert event.changes["lines"] == [2, 1]
        assert event.changes["monto_total"] == [235620, 1190]

    def test_partial_update_keeps_lines(self, company, clerk):
        partner = PartnerFactory(company=company)
        doc = services.sales_document_create(company=company, actor=clerk, data=doc_data(partner))
        services.sales_document_update(document=doc, actor=clerk, data={"notes": "Urgente"})
        doc.refresh_from_db()
        assert doc.notes == "Urgente" and doc.lines.count() == 2 and doc.monto_total == 235620

    def test_issued_documents_are_immutable(self, company, clerk):
        doc = SalesDocumentFactory(company=company, state=DocumentState.ISSUED, folio=10)
        for call in (
            lambda: services.sales_document_update(document=doc, actor=clerk, data={"notes": "x"}),
            lambda: services.sales_document_update(
                document=doc,
                actor=clerk,
                data={"lines": [{"name": "X", "quantity": D(1), "unit_price": D(1)}]},
            ),
            lambda: services.sales_document_delete(document=doc, actor=clerk),
        ):
            with pytest.raises(DomainError) as info:
                call()
            assert info.value.code == "document_not_draft"
        doc.refresh_from_db()
        assert doc.notes == "" and doc.lines.count() == 1

    def test_a_failed_update_changes_nothing(self, company, clerk):
        partner = PartnerFactory(company=company)
        doc = services.sales_document_create(company=company, actor=clerk, data=doc_data(partner))
        with pytest.raises(DomainError):
            services.sales_document_update(
                document=doc,
                actor=clerk,
                data={"notes": "x", "lines": [{"name": "X", "quantity": D(0), "unit_price": 1}]},
            )
        doc.refresh_from_db()
        assert doc.notes == "" and doc.lines.count() == 2 and doc.monto_total == 235620


def _cursor_class() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        return type(cursor.cursor).__name__


def test_server_bound_binds_apart_on_postgresql_and_restores_the_default_even_on_error():
    from django.db import connection

    default = _cursor_class()
    with services.server_bound():
        inside = _cursor_class()
        with connection.cursor() as cursor:  # a bytea value with every byte, bound apart
            cursor.execute("SELECT %s", [bytes(range(256))])
            assert bytes(cursor.fetchone()[0]) == bytes(range(256))
    with pytest.raises(RuntimeError), services.server_bound():
        raise RuntimeError("boom")
    assert _cursor_class() == default
    if connection.vendor == "postgresql":
        assert (default, inside) == ("Cursor", "ServerBindingCursor")
    else:
        assert inside == default
