"""Signing material for dte tests. Keys are made once per session (RSA key generation is slow);
each test gets its own rows in its own database."""

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from django.utils import timezone

from dte import services, vault
from dte.core.testmaterial import SANDBOX_IDK, generate_caf_key, make_caf, make_test_certificate
from dte.models import SandboxAuthority
from erp.doctypes import TipoDte
from tests.factories import PartnerFactory, ProductFactory

KEYS = Path(__file__).resolve().parents[1] / "data" / "keys"
CERT_PASSWORD = "clave-de-prueba"
SIGNER_RUT = "12345678-5"


@pytest.fixture(scope="session")
def sii_key():
    return serialization.load_pem_private_key((KEYS / "sandbox_sii_key.pem").read_bytes(), None)


@pytest.fixture(scope="session")
def caf_keys():
    return {int(tipo): generate_caf_key() for tipo in TipoDte}


@pytest.fixture(scope="session")
def cert_pfx():
    return (KEYS / "firmante_12345678-5.p12").read_bytes()


@pytest.fixture
def sandbox(db, sii_key):
    pem = sii_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SandboxAuthority.objects.create(
        idk=SANDBOX_IDK, private_key_encrypted=vault.encrypt(pem)
    )


@pytest.fixture
def make_caf_file(sii_key, caf_keys, company):
    def make(tipo=33, desde=1, hasta=100, fecha=None, rut=None, idk=SANDBOX_IDK, key=None):
        return make_caf(
            sii_key=key or sii_key,
            idk=idk,
            rut_emisor=rut or company.rut,
            razon_social=company.razon_social,
            tipo_dte=int(tipo),
            folio_desde=desde,
            folio_hasta=hasta,
            fecha_autorizacion=fecha or timezone.localdate(),
            folio_key=caf_keys[int(tipo)],
        )

    return make


@pytest.fixture
def issuer(company, sandbox, cert_pfx, make_caf_file):
    """The demo company with a certificate and a CAF (folios 1–100) for every type."""
    services.certificate_upload(company=company, actor=None, data=cert_pfx, password=CERT_PASSWORD)
    for tipo in TipoDte:
        services.caf_upload(company=company, actor=None, data=make_caf_file(tipo))
    return company


def fresh_certificate(*, days_valid: int, rut: str = SIGNER_RUT, key=None) -> bytes:
    """A test certificate valid from yesterday for `days_valid` days (negative: expired)."""
    now = timezone.now()
    return make_test_certificate(
        rut=rut,
        holder_name="OTRO FIRMANTE",
        password=CERT_PASSWORD,
        not_before=now - timedelta(days=400),
        not_after=now + timedelta(days=days_valid),
        key=key,
    )


@pytest.fixture
def demo_catalog(company):
    """The partners and products the example files in tests/data/issue/ refer to."""
    for rut in ("96790240-3", "77001234-1", "76543210-3", "12345678-5"):
        PartnerFactory(company=company, rut=rut)
    for code, price, exempt in (
        ("SERV-001", 45000, False),
        ("SOFT-LIC", 120000, False),
        ("CAP-001", 80000, True),
        ("PAP-500", 4290, False),
        ("TON-85A", 18990, False),
    ):
        ProductFactory(company=company, code=code, unit_price=price, is_exempt=exempt)
