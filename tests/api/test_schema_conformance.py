"""The OpenAPI schema tells the truth: schemathesis generates requests for every operation from
/api/schema/ (valid and invalid ones), sends them in-process to the WSGI app as a clerk of a
company with data, and checks every answer against the schema: no 5xx, only documented status
codes, content types, headers and bodies, and invalid input refused. Bounded: a few examples per
operation, derandomized, so the run is the same each time and takes a minute or two."""

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
def auth_headers(in_process, db, company, clerk, settings):
    settings.API_THROTTLE_USER = None
    settings.API_THROTTLE_ANON = None
    cache.clear()
    partner = PartnerFactory(company=company)
    ProductFactory(company=company)
    SalesDocumentFactory(company=company, partner=partner)
    token, _ = Token.objects.get_or_create(user=clerk)
    return {"Authorization": f"Token {token.key}"}


@schema.parametrize()
@settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_api_answers_as_documented(case, auth_headers, company):
    if "company_rut" in (case.path_parameters or {}):
        case.path_parameters["company_rut"] = company.rut
    checks = CHECKS
    if case.media_type in UNTYPED_BODIES:
        # A form body carries only text: `is_active=0` is a valid false, not a wrong type.
        checks = [check for check in CHECKS if check is not negative_data_rejection]
    case.call_and_validate(headers=auth_headers, checks=checks)
