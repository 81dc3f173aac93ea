"""Each company talks to the SII of its own environment, within one deployment: a company in
certification to the certification hosts, one in production to the production hosts (here two
stand-ins, each the sandbox under its own base URL), with tokens of their own."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dte import sending, services, vault
from dte.core.caf import parse_caf
from dte.core.testmaterial import make_caf
from dte.models import Caf, Envelope
from erp.doctypes import TipoDte
from tests.dte.fixtures import CERT_PASSWORD
from tests.dte.sii import two_sandboxes
from tests.dte.sii.conftest import make_drafts
from tests.factories import CompanyFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _caf_row(company, tipo: int, idk: int, sii_key, caf_keys) -> Caf:
    """A CAF of IDK 100 or 300. Their real signer is the SII, whose key no test has: the row is
    stored as an upload would store it, signed by the sandbox's test key instead."""
    data = make_caf(
        sii_key=sii_key,
        idk=idk,
        rut_emisor=company.rut,
        razon_social=company.razon_social,
        tipo_dte=tipo,
        folio_desde=1,
        folio_hasta=50,
        fecha_autorizacion=timezone.localdate(),
        folio_key=caf_keys[tipo],
    )
    caf = parse_caf(data)
    return Caf.objects.create(
        company=company,
        tipo_dte=tipo,
        folio_desde=1,
        folio_hasta=50,
        next_folio=1,
        fecha_autorizacion=caf.fecha_autorizacion,
        expires_on=caf.expires_on(),
        idk=idk,
        caf_xml=caf.caf_xml,
        file_encrypted=vault.encrypt(data),
        is_test=True,
    )


@pytest.fixture
def two_hosts(live_server, settings):
    settings.SII_ENVIRONMENTS = ("sandbox", "certification", "production")
    settings.ROOT_URLCONF = "tests.dte.sii.two_sandboxes"
    settings.SII_SANDBOX_URL = f"{live_server.url}/_sii"
    settings.SII_CERTIFICATION_URL = f"{live_server.url}/_sii_cert"
    settings.SII_PRODUCTION_URL = f"{live_server.url}/_sii_prod"
    settings.SII_POLL_INTERVAL = 0
    settings.SII_TIMEOUT = 5
    from django.core.cache import cache

    cache.clear()
    two_sandboxes.HITS.clear()
    return two_sandboxes.HITS


def _issuer(rut, env, cert_pfx, sii_key, caf_keys):
    company = CompanyFactory(rut=rut, sii_environment=env)
    clerk = UserFactory()
    MembershipFactory(user=clerk, company=company, role="clerk")
    services.certificate_upload(company=company, actor=None, data=cert_pfx, password=CERT_PASSWORD)
    _caf_row(
        company,
        int(TipoDte.FACTURA),
        {"certification": 100, "production": 300}[env],
        sii_key,
        caf_keys,
    )
    (draft,) = make_drafts(company, clerk, amount=5000)
    return services.dte_issue(document=draft, actor=clerk)


def _run_outbox():
    for _ in range(10):
        to_send, to_poll = sending.outbox_claim(timezone.now() + timedelta(hours=1))
        for pk in to_send:
            sending.envelope_send(pk)
        for pk in to_poll:
            sending.envelope_refresh(pk)


def test_each_company_talks_to_its_own_environment(two_hosts, sandbox, cert_pfx, sii_key, caf_keys):
    certifying = _issuer("76086428-5", "certification", cert_pfx, sii_key, caf_keys)
    live = _issuer("77879240-0", "production", cert_pfx, sii_key, caf_keys)
    assert certifying.caf.idk == 100 and live.caf.idk == 300
    sending.envelope_send(certifying.envelope_id)
    cert_hits = list(two_hosts)
    two_hosts.clear()
    sending.envelope_send(live.envelope_id)
    prod_hits = list(two_hosts)
    # seed, token and upload: each on its own environment's host, none on the other's
    assert cert_hits and all(p.startswith("/_sii_cert/") for p in cert_hits), cert_hits
    assert prod_hits and all(p.startswith("/_sii_prod/") for p in prod_hits), prod_hits
    assert any(p.endswith("DTEUpload") for p in cert_hits)
    assert any(p.endswith("DTEUpload") for p in prod_hits)
    # a token of each environment: the production host asked for its own seed and token
    assert any("GetTokenFromSeed" in p for p in prod_hits)
    two_hosts.clear()
    _run_outbox()
    polled = {p.split("/")[1] for p in two_hosts}
    assert polled <= {"_sii_cert", "_sii_prod"} and "_sii" not in polled
    for dte in (certifying, live):
        envelope = Envelope.objects.get(pk=dte.envelope_id)
        assert envelope.status in ("processed", "sent", "needs_attention")
        assert envelope.track_id  # each host gave its own track id


def test_an_environment_the_deployment_does_not_allow_is_never_contacted(
    two_hosts, settings, sandbox, cert_pfx, sii_key, caf_keys
):
    dte = _issuer("76086428-5", "production", cert_pfx, sii_key, caf_keys)
    settings.SII_ENVIRONMENTS = ("sandbox", "certification")  # production switched off
    step = sending.envelope_send(dte.envelope_id)
    assert step.status == "needs_attention"
    assert "no está habilitado" in step.message
    assert not two_hosts
    dte.refresh_from_db()
    assert dte.status == "needs_attention"
