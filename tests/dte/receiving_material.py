"""Supplier envelopes for the receiving tests: a make-believe supplier (dte.sandbox.supplier)
with its own certificate and CAFs signed by the sandbox SII key, writing to the test company."""

from datetime import datetime

import pytest
from django.utils import timezone

from dte.core.domain import Receptor
from dte.sandbox.supplier import Supplier, default_supplier, envelope_for, supply


def receptor_for(company) -> Receptor:
    return Receptor(
        company.rut,
        company.razon_social,
        company.giro[:40],
        company.direccion,
        company.comuna,
    )


@pytest.fixture(scope="session")
def supplier(sii_key):
    return Supplier(default_supplier(), sii_key, timezone.now())


def supplier_envelope(supplier, company, *, count=1, tipo=33, now: datetime | None = None, **kw):
    """(envelope bytes, documents) from the supplier to `company`."""
    now = now or timezone.now()
    documents = supply(supplier, receptor_for(company), count=count, tipo=tipo, now=now, **kw)
    return envelope_for(supplier, documents, rut_receptor=company.rut, now=now), documents


def xmlsec1_verifies_all(data: bytes, tmp_path) -> bool:
    """Every Signature in `data` verifies with the xmlsec1 command, with the key of the
    certificate the signature carries (written out as PEM; KeyInfo itself is ignored)."""
    import base64
    import re
    import subprocess

    ns = "http://www.sii.cl/SiiDte"
    text = data.decode("iso-8859-1")
    certificates = re.findall(r"<X509Certificate>(.*?)</X509Certificate>", text, re.S)
    assert certificates, "no X509Certificate in the document"
    document = tmp_path / "signed.xml"
    document.write_bytes(data)
    for index, certificate in enumerate(certificates, start=1):
        der = base64.b64decode("".join(certificate.split()))
        pem = tmp_path / f"cert{index}.pem"
        body = base64.encodebytes(der).decode("ascii")
        pem.write_text(f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n")
        command = ["xmlsec1", "--verify", "--enabled-key-data", "key-name"]
        command += ["--pubkey-cert-pem", str(pem)]
        for node in ("Resultado", "SetRecibos", "DocumentoRecibo", "SetDTE", "Documento"):
            command += ["--id-attr:ID", f"{ns}:{node}"]
        command += ["--node-xpath", f"(//*[local-name()='Signature'])[{index}]", str(document)]
        if subprocess.run(command, capture_output=True, check=False).returncode != 0:
            return False
    return True
