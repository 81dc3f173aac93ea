"""The project's own envelopes (dte.services.dte_issue) are what the sandbox SII accepts."""

import json
from pathlib import Path

import pytest

from dte import services
from erp import services as erp_services
from erp.api.serializers import SalesDocumentSerializer
from erp.models import SalesDocument
from tests.dte.sandbox.conftest import body_groups, hdr

pytestmark = pytest.mark.django_db
ISSUE_DATA = Path(__file__).resolve().parents[2] / "data" / "issue"


def draft(company, tipo: int) -> SalesDocument:
    payload = json.loads((ISSUE_DATA / f"{tipo}.json").read_text(encoding="utf-8"))
    serializer = SalesDocumentSerializer(data=payload)
    assert serializer.is_valid(), serializer.errors
    return erp_services.sales_document_create(
        company=company, actor=None, data=serializer.validated_data
    )


def test_an_issued_factura_is_accepted(sii, issuer, demo_catalog, clerk, token):
    dte = services.dte_issue(document=draft(issuer, 33), actor=clerk)
    track_id = sii.send(bytes(dte.envelope.xml), token)
    root = sii.est_up(track_id, token)
    assert hdr(root, "ESTADO") == "EPR"
    assert body_groups(root)[0]["ACEPTADOS"] == "1"
    fecha = f"{dte.fecha_emision:%d-%m-%Y}"
    answer = sii.est_dte(
        token,
        tipo=33,
        folio=dte.folio,
        monto=dte.monto_total,
        fecha=fecha,
        receptor=dte.rut_receptor,
    )
    assert hdr(answer, "ESTADO") == "DOK"


def test_an_issued_boleta_is_accepted(sii, issuer, demo_catalog, clerk, boleta_token):
    dte = services.dte_issue(document=draft(issuer, 39), actor=clerk)
    track_id = sii.boleta_upload(bytes(dte.envelope.xml), boleta_token).json()["trackid"]
    body = sii.boleta_status(track_id, boleta_token).json()
    assert body["estado"] == "EPR"
    assert body["estadistica"][0]["aceptados"] == 1, body
