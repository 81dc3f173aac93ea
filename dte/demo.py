"""Signing material for the demo company, made locally and marked as test material: a test
certificate and CAFs for every type, issued by the local SII sandbox's key (IDK 900). With them
issuing works on the first run. Idempotent."""

from datetime import date, datetime, timedelta

from django.db import transaction

from dte import services
from dte.core.testmaterial import SANDBOX_IDK, make_caf, make_test_certificate
from dte.models import Caf, Certificate
from erp.doctypes import TipoDte
from erp.models import Company

DEMO_CERT_PASSWORD = "demo-certificado"  # test material only: it signs nothing real
DEMO_HOLDER = ("12345678-5", "USUARIO DE PRUEBA DEMO")
DEMO_FOLIOS = 1000


@transaction.atomic
def load_demo_material(*, company: Company, now: datetime, today: date) -> None:
    if not Certificate.objects.filter(company=company, is_test=True, not_after__gt=now).exists():
        pfx = make_test_certificate(
            rut=DEMO_HOLDER[0],
            holder_name=DEMO_HOLDER[1],
            password=DEMO_CERT_PASSWORD,
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=365),
        )
        services.certificate_upload(
            company=company,
            actor=None,
            data=pfx,
            password=DEMO_CERT_PASSWORD,
            now=now,
            is_test=True,
        )
    sii_key = services.sandbox_authority().private_key()
    for tipo in TipoDte:
        usable = Caf.objects.filter(company=company, tipo_dte=tipo, is_test=True)
        if any(c.remaining > 0 and (c.expires_on is None or c.expires_on >= today) for c in usable):
            continue
        start = (
            max(
                (c.folio_hasta for c in Caf.objects.filter(company=company, tipo_dte=tipo)),
                default=0,
            )
            + 1
        )
        caf = make_caf(
            sii_key=sii_key,
            idk=SANDBOX_IDK,
            rut_emisor=company.rut,
            razon_social=company.razon_social,
            tipo_dte=int(tipo),
            folio_desde=start,
            folio_hasta=start + DEMO_FOLIOS - 1,
            fecha_autorizacion=today,
        )
        services.caf_upload(company=company, actor=None, data=caf, today=today, is_test=True)
