"""Benchmarks run on throwaway databases: outside SQLite the settings refuse to start without a
deployment's SECRET_KEY and FIELD_ENCRYPTION_KEY, so a benchmark makes fresh ones when the
environment has none (its worker and server processes inherit them)."""

import os
import secrets


def ensure() -> None:
    from cryptography.fernet import Fernet

    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode("ascii"))
