"""Where SECRET_KEY and FIELD_ENCRYPTION_KEY come from. No public fallback, ever.

A deployment sets both in its environment. Without them the app refuses to start
(ImproperlyConfigured), unless it runs on the embedded SQLite database (a laptop, the CLI,
`make run`, `make test`) or in DEBUG: then it uses random keys of this machine, made once
and kept in VAR_DIR/local-secrets.json (mode 0600), so that a copy of the database alone never
decrypts the stored certificates and CAF keys. `manage.py check --deploy` flags keys that come
from that file.

Databases made before these keys existed were encrypted with a key derived from the old public
development SECRET_KEY: on the embedded defaults that key still decrypts (never encrypts), until
`manage.py rotate_encryption_key` re-encrypts everything under the current key.
"""

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from dte.vault import PUBLIC_DEVELOPMENT_KEY

LOCAL_FILE = "local-secrets.json"
GENERATE_HINT = (
    "generate them with: python -c 'import secrets; print(secrets.token_urlsafe(50))' (SECRET_KEY) "
    "and python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' "
    "(FIELD_ENCRYPTION_KEY)"
)


@dataclass(frozen=True)
class Secrets:
    secret_key: str
    field_encryption_key: str
    local: bool  # taken from VAR_DIR/local-secrets.json, not from the environment


def _local(var_dir: Path) -> dict[str, str]:
    """This machine's keys, made on first use with owner-only permissions."""
    path = var_dir / LOCAL_FILE
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        pass
    from cryptography.fernet import Fernet

    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode("ascii"),
    }
    var_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return dict(json.loads(path.read_text()))
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


def resolve(environ: dict[str, str], *, debug: bool, embedded: bool, var_dir: Path) -> Secrets:
    secret_key = environ.get("SECRET_KEY", "").strip()
    field_key = environ.get("FIELD_ENCRYPTION_KEY", "").strip()
    if secret_key == PUBLIC_DEVELOPMENT_KEY and not debug:
        raise ImproperlyConfigured(
            "SECRET_KEY is the public development key: set a secret one; " + GENERATE_HINT
        )
    if secret_key and field_key:
        return Secrets(secret_key, field_key, local=False)
    if not (debug or embedded):
        missing = [
            n for n, v in (("SECRET_KEY", secret_key), ("FIELD_ENCRYPTION_KEY", field_key)) if not v
        ]
        raise ImproperlyConfigured(
            f"{' and '.join(missing)} must be set when DEBUG is off (the stored certificates "
            f"and CAF keys are encrypted with FIELD_ENCRYPTION_KEY); {GENERATE_HINT}"
        )
    local = _local(var_dir)
    return Secrets(
        secret_key or local["SECRET_KEY"],
        field_key or local["FIELD_ENCRYPTION_KEY"],
        local=not field_key or not secret_key,
    )
