"""Secrets at rest (certificate files and passwords, CAF private keys): Fernet with keys from
FIELD_ENCRYPTION_KEY. Several comma-separated keys rotate: the first encrypts, all decrypt.

The key never comes from SECRET_KEY: a deployment sets FIELD_ENCRYPTION_KEY, and a laptop run
uses a random key of its machine (ops/secrets.py). A local database made by an older version,
encrypted with a key derived from the public development SECRET_KEY, still decrypts there
(never encrypts) until `manage.py rotate_encryption_key` moves it to the current key.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# The public string older versions fell back to as SECRET_KEY (refused now outside DEBUG, see
# ops/secrets.py), and from which they derived the encryption key.
PUBLIC_DEVELOPMENT_KEY = "insecure-local-only-key-set-SECRET_KEY-in-production"


def legacy_development_key() -> str:
    """The Fernet key older versions derived from the public development SECRET_KEY."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"field-encryption", info=b"vault")
    raw = hkdf.derive(PUBLIC_DEVELOPMENT_KEY.encode("utf-8"))
    return base64.urlsafe_b64encode(raw).decode("ascii")


class VaultError(Exception):
    """A secret could not be decrypted: wrong or rotated-away FIELD_ENCRYPTION_KEY."""


def keys(configured: str) -> list[str]:
    return [k.strip() for k in configured.split(",") if k.strip()]


@cache
def _fernet(configured: str, legacy: bool) -> MultiFernet:
    raw_keys = keys(configured)
    if not raw_keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty.")
    if legacy:
        raw_keys.append(legacy_development_key())
    try:
        return MultiFernet([Fernet(k) for k in raw_keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from exc


def _current() -> MultiFernet:
    legacy = getattr(settings, "SECRETS_FROM_LOCAL_FILE", False) or settings.DEBUG
    return _fernet(settings.FIELD_ENCRYPTION_KEY, legacy)


def _read(operation, token: bytes) -> bytes:
    try:
        return operation(bytes(token))
    except InvalidToken as exc:
        raise VaultError(
            "No se pudo descifrar un secreto guardado (revise FIELD_ENCRYPTION_KEY)."
        ) from exc


def rotate(token: bytes) -> bytes:
    """The token re-encrypted under the first key (the old keys still decrypt it meanwhile)."""
    return _read(_current().rotate, token)


def encrypt(data: bytes) -> bytes:
    return _current().encrypt(data)


def decrypt(token: bytes) -> bytes:
    return _read(_current().decrypt, token)
