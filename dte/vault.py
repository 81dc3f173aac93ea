"""Secrets at rest (certificate files and passwords, CAF private keys): Fernet with keys from
FIELD_ENCRYPTION_KEY. Several comma-separated keys rotate: the first encrypts, all decrypt.

Without FIELD_ENCRYPTION_KEY (a laptop run) a key is derived from SECRET_KEY so that a local
database stays readable across restarts; production sets its own key.
"""

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class VaultError(Exception):
    """A secret could not be decrypted: wrong or rotated-away FIELD_ENCRYPTION_KEY."""


def _derived_key(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"field-encryption", info=b"vault")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))


@cache
def _fernet(configured: str, secret_key: str) -> MultiFernet:
    raw_keys = [k.strip() for k in configured.split(",") if k.strip()]
    if not raw_keys:
        raw_keys = [_derived_key(secret_key).decode("ascii")]
    try:
        return MultiFernet([Fernet(k) for k in raw_keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from exc


def _current() -> MultiFernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


def encrypt(data: bytes) -> bytes:
    return _current().encrypt(data)


def decrypt(token: bytes) -> bytes:
    try:
        return _current().decrypt(bytes(token))
    except InvalidToken as exc:
        raise VaultError(
            "No se pudo descifrar un secreto guardado (revise FIELD_ENCRYPTION_KEY)."
        ) from exc
