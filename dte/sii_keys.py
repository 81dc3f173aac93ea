"""The SII's CAF-signing public keys, read-only, for checking CAFs (manage.py verify).

The official keys (IDK 100 certification, 300 production) ship as files with dte.core.caf. The
local sandbox's key (IDK 900, accepted only when SII_ENVIRONMENTS has sandbox) lives in the database
(dte_sandboxauthority): it is read only when a CAF of IDK 900 is checked, and only if it can be
read. Nothing here writes: a missing, unmigrated or unreachable database, or a sandbox that has
no key yet, makes `sandbox_public_key` raise SiiKeyUnavailable with a one-line reason, and the
CAF is reported as not verifiable. (dte.services.sandbox_authority is the one that creates the
key, on first use by the sandbox or the demo data.)

    sandbox_public_key(using="default") -> RSAPublicKey      # or SiiKeyUnavailable(reason)
    verification_keys() -> Mapping[int, RSAPublicKey]        # official + lazy sandbox key
"""

from collections.abc import Iterator, Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from django.conf import settings
from django.db import DatabaseError, ProgrammingError, connections

from dte.core.caf import SiiKeyUnavailable, official_sii_keys
from dte.core.testmaterial import SANDBOX_IDK

__all__ = [
    "SANDBOX_IDK",
    "SiiKeyUnavailable",
    "SiiKeys",
    "sandbox_mode",
    "sandbox_public_key",
    "verification_keys",
]


def sandbox_mode() -> bool:
    """This deployment serves the local SII sandbox (and trusts its CAF key)."""
    return "sandbox" in settings.SII_ENVIRONMENTS


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _missing_sqlite_file(using: str) -> str | None:
    """The SQLite file, when the database is one and the file does not exist: connecting
    would create an empty one, and there would be nothing to read in it anyway."""
    db = connections.databases[using]
    if db["ENGINE"] != "django.db.backends.sqlite3":
        return None
    name = str(db["NAME"])
    if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
        return None
    return None if Path(name).exists() else name


def sandbox_public_key(using: str = "default") -> RSAPublicKey:
    """The sandbox SII's CAF-signing public key (IDK 900), read from the database, never made.
    Raises SiiKeyUnavailable, with the reason, when it cannot be read."""
    from dte.models import SandboxAuthority

    missing = _missing_sqlite_file(using)
    if missing is not None:
        raise SiiKeyUnavailable(
            f"la clave del SII de pruebas se guarda en la base de datos y {missing} no existe"
        )
    try:
        row = (
            SandboxAuthority.objects.using(using)
            .filter(idk=SANDBOX_IDK)
            .only("private_key_encrypted")
            .first()
        )
    except DatabaseError as exc:
        detail = _one_line(exc)
        if isinstance(exc, ProgrammingError) or "no such table" in detail:
            detail += "; ¿falta manage.py migrate?"
        raise SiiKeyUnavailable(
            f"no se pudo leer la clave del SII de pruebas de la base de datos ({detail})"
        ) from exc
    if row is None:
        raise SiiKeyUnavailable(
            "la base de datos no tiene la clave del SII de pruebas (se crea con manage.py demo)"
        )
    try:
        key = row.private_key().public_key()
    except Exception as exc:  # vault.VaultError, or a key that does not load
        raise SiiKeyUnavailable(
            f"la clave del SII de pruebas no se pudo descifrar ({_one_line(exc)})"
        ) from exc
    if not isinstance(key, RSAPublicKey):
        raise SiiKeyUnavailable("la clave del SII de pruebas guardada no es una clave RSA")
    return key


class SiiKeys(Mapping[int, RSAPublicKey]):
    """The keys a CAF may be signed with here: the official ones and, in sandbox mode, the
    sandbox's, read from the database the first time it is asked for (and only then). When it
    cannot be read, asking for it raises SiiKeyUnavailable, every time, with the same reason."""

    def __init__(self, *, sandbox: bool, using: str = "default") -> None:
        self._keys: dict[int, RSAPublicKey] = dict(official_sii_keys())
        self._sandbox = sandbox
        self._using = using
        self._sandbox_error: SiiKeyUnavailable | None = None

    def __getitem__(self, idk: int) -> RSAPublicKey:
        if idk == SANDBOX_IDK and self._sandbox and idk not in self._keys:
            if self._sandbox_error is None:
                try:
                    self._keys[idk] = sandbox_public_key(self._using)
                except SiiKeyUnavailable as exc:
                    self._sandbox_error = exc
            if self._sandbox_error is not None:
                raise SiiKeyUnavailable(str(self._sandbox_error))
        return self._keys[idk]

    def _idks(self) -> list[int]:
        idks = set(self._keys)
        if self._sandbox:
            idks.add(SANDBOX_IDK)
        return sorted(idks)

    def __iter__(self) -> Iterator[int]:
        return iter(self._idks())

    def __len__(self) -> int:
        return len(self._idks())

    def __contains__(self, idk: object) -> bool:
        return idk in self._idks()


def verification_keys(using: str = "default") -> SiiKeys:
    """The keys `dte.core.verify.verify_xml` checks CAFs against, for SII_ENVIRONMENTS."""
    return SiiKeys(sandbox=sandbox_mode(), using=using)
