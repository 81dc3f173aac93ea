"""The SII sandbox over real HTTP (the live server), with timings fit for tests, and drafts to
issue."""

from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import PartnerFactory


@pytest.fixture
def sii(live_server, settings):
    """Point the client at the sandbox; fast timings for tests."""
    settings.SII_ENV = "sandbox"
    settings.SII_SANDBOX_URL = f"{live_server.url}/_sii"
    settings.SII_TIMEOUT = 5
    settings.SII_BACKOFF_BASE = 0.01
    settings.SII_BACKOFF_MAX = 0.05
    settings.SII_POLL_INTERVAL = 0
    settings.SII_UPLOAD_GRACE = 0
    settings.SII_SANDBOX_POLLS_BEFORE_DONE = 1
    from django.core.cache import cache

    cache.clear()
    return settings


def make_drafts(company, clerk, *, tipo: int = 33, n: int = 1, amount: int = 1000, partner=None):
    """n drafts of one line each, amounts amount, amount + 1, …"""
    from erp import services as erp_services

    partner = partner or PartnerFactory(company=company)
    return [
        erp_services.sales_document_create(
            company=company,
            actor=clerk,
            data={
                "tipo_dte": tipo,
                "fecha_emision": timezone.localdate(),
                "partner": partner.pk,
                "lines": [
                    {"name": "Servicio", "quantity": Decimal(1), "unit_price": Decimal(amount + i)}
                ],
            },
        )
        for i in range(n)
    ]
