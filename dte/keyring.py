"""Signing material loaded for use: decrypted and parsed once per process.

PKCS#12 key derivation is deliberately slow and CAF parsing verifies a key pair, so both are
cached; the cache keys include content, so a reused id can never alias another row.
"""

from functools import lru_cache

from dte import vault
from dte.core.caf import Caf as CoreCaf
from dte.core.caf import parse_caf
from dte.core.certificate import Certificate as CoreCertificate
from dte.core.certificate import load_pkcs12
from dte.models import Caf, Certificate


@lru_cache(maxsize=32)
def load_certificate(pk: int, fingerprint: str) -> CoreCertificate:
    """Decrypt and parse once per process: PKCS#12 key derivation is deliberately slow."""
    row = Certificate.objects.get(pk=pk, fingerprint=fingerprint)
    password = vault.decrypt(row.password_encrypted).decode("utf-8")
    return load_pkcs12(vault.decrypt(row.pfx_encrypted), password)


@lru_cache(maxsize=64)
def load_caf(pk: int, caf_xml: bytes) -> CoreCaf:
    """Decrypt and parse once per process; keyed by content too, so a reused id can't alias."""
    return parse_caf(vault.decrypt(Caf.objects.get(pk=pk).file_encrypted))
