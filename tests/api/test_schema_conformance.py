"""The OpenAPI schema tells the truth: schemathesis generates requests for every operation from
/api/schema/ (valid and invalid ones), sends them in-process to the WSGI app as a clerk of a
company with data, and checks every answer against the schema: no 5xx, only documented status
codes, content types, headers and bodies, and invalid input refused. Bounded: a few examples per
operation, derandomized, so the run is the same each time and takes a minute or two."""

from datetime import date

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dte import services as dte_services
from erp import services as erp_services
from f29 import services as f29_services
from tests.dte.test_issue import draft_from_file
from tests.factories import PartnerFactory, ProductFactory, SalesDocumentFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

UNTYPED_BODIES = {"multipart/form-data", "application/x-www-form-urlencoded"}

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def in_process():
    """The WSGI handler closes the database connection after each request; Django's test client
    stops it from doing so (the test's transaction would go with it), and so does this."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(in_process, db, company, clerk, settings, issuer, demo_catalog):
    settings.API_THROTTLE_USER = None
    settings.API_THROTTLE_ANON = None
    cache.clear()
    partner = PartnerFactory(company=company)
    ProductFactory(company=company)
    SalesDocumentFactory(company=company, partner=partner)
    # Made by no user (an import, a command): `created_by` and `updated_by` are null.
    purchase = erp_services.purchase_document_create(
        company=company,
        actor=None,
        data={
            "tipo_doc": 33,
            "folio": 999,
            "partner": partner.pk,
            "fecha": date(2026, 10, 30),
            "monto_neto": 1000,
            "iva_recuperable": 190,
        },
    )
    f29_services.f29_compute(company=company, periodo=purchase.periodo, actor=None)
    # An issued DTE (signed, in its envelope; sending waits for a commit that never comes).
    dte_services.dte_issue(document=draft_from_file(issuer, 33), actor=clerk)
    token, _ = Token.objects.get_or_create(user=clerk)
    return {"Authorization": f"Token {token.key}"}


@schema.parametrize()
@settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_api_answers_as_documented(case, auth_headers, company):
    # The company's own RUT and its one F29 (2026-10), or every answer would be a 404; row ids
    # stay generated, so both a row's answer and the 404 are checked.
    path = case.path_parameters or {}
    if "company_rut" in path:
        path["company_rut"] = company.rut
    if "period" in path:
        path["period"] = "2026-10"
    checks = CHECKS
    if case.media_type in UNTYPED_BODIES:
        # A form body carries only text: `is_active=0` is a valid false, not a wrong type.
        checks = [check for check in CHECKS if check is not negative_data_rejection]
    case.call_and_validate(headers=auth_headers, checks=checks)
